"""Training and evaluation of compiled networks: `fit(model, load_data("digits"), TrainConfig())`."""
from resdsl.train.config import TrainConfig
from resdsl.train.data import ImageData, load_data
from resdsl.train.errors import DivergedError, TrainError
from resdsl.train.fit import fit
from resdsl.train.loop import Interrupted, seed_everything
from resdsl.train.session import run

__all__ = ["run", "TrainConfig", "ImageData", "load_data", "fit", "seed_everything", "TrainError", "DivergedError", "Interrupted"]
