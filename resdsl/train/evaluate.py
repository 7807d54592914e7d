"""Score a saved checkpoint on a dataset's test split (`resdsl eval`)."""
from __future__ import annotations

import tempfile
from pathlib import Path

from resdsl.train import distributed as D
from resdsl.train.checkpoint import load_checkpoint, load_weights
from resdsl.train.data import check_compatible, load_data
from resdsl.train.errors import TrainError
from resdsl.train.loop import evaluate
from resdsl.train.pipeline import Normalize, TensorPipeline, LoaderPipeline


def _model(spec: str | None, network: str | None, params: dict | None, ck: dict):
    """The spec given, or the one saved in the checkpoint, compiled with the run's parameters."""
    from resdsl.train.cli import load_model

    cfg = ck.get("config", {})
    params = cfg.get("params", {}) if params is None else params
    if spec is not None:
        return load_model(spec, network or cfg.get("network"), params)[0]
    if not ck.get("spec_text"):
        raise TrainError("the checkpoint holds no spec; name one: resdsl eval SPEC --checkpoint ...")
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"{ck.get('spec_name', 'model')}.res"
        p.write_text(ck["spec_text"])
        return load_model(str(p), network or cfg.get("network"), params)[0]


def evaluate_checkpoint(spec, network, params, path: Path, data_spec, batch_size: int, precision: str,
                        device: str) -> dict:
    ck = load_checkpoint(path)
    model = _model(spec, network, params, ck)
    load_weights(model, ck["model"], str(path))
    data = load_data(data_spec or ck.get("config", {}).get("data", "digits"))
    shape = tuple(model.input_shape)
    check_compatible(data, shape, model.num_classes)
    place = D.Place(0, 1, D.resolve_device(device))
    common = dict(batch_size=batch_size, eval_batch_size=batch_size, pad=0, hflip=0.0, seed=0, device=place.device)
    if data.in_memory:
        pipe = TensorPipeline(data, **common)
    else:
        pipe = LoaderPipeline(data, input_hw=shape[1:], **common)
    if ck.get("mean") and len(ck["mean"]) == shape[0]:  # the training set's statistics, as in training
        pipe.norm = Normalize(ck["mean"], ck["std"], place.device, False)
    loss, acc, n = evaluate(model.to(place.device), pipe.eval_batches(), precision, place)
    return {"spec_name": getattr(model, "spec_name", "model"), "checkpoint": str(path), "data": data.name,
            "epoch": ck.get("epoch"), "images": n, "test_loss": loss, "test_acc": acc}
