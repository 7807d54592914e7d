"""Everything that decides a training run, written once and saved in the run directory."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, ValidationInfo

from .errors import TrainError


class TrainConfig(BaseModel):
    """A training recipe; option names follow timm's train.py where one exists."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    data: str = "digits"
    epochs: int = Field(30, ge=1, le=1_000_000)
    batch_size: int = Field(128, ge=1, le=1 << 20)
    opt: Literal["sgd", "nesterov", "adamw"] = "sgd"
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(5e-4, ge=0)
    wd_exclude_bn_bias: bool = True
    sched: Literal["step", "cosine", "onecycle", "none"] = "cosine"
    warmup_epochs: float = Field(0.0, ge=0, le=1_000_000)
    min_lr: float = Field(0.0, ge=0)
    decay_milestones: tuple[int, ...] = ()
    decay_rate: float = Field(0.1, gt=0)
    smoothing: float = Field(0.0, ge=0, lt=1)
    clip_grad: Optional[float] = Field(None, gt=0)
    clip_mode: Literal["norm", "value"] = "norm"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    channels_last: bool = False
    compile: bool = False
    crop_pad: Optional[int] = Field(None, ge=0, le=4096)
    hflip: Optional[float] = Field(None, ge=0, le=1)
    seed: int = Field(42, ge=0, lt=2**63)
    deterministic: bool = False
    device: str = "auto"
    workers: int = Field(2, ge=0, le=256)
    sync_bn: bool = False
    log_interval: int = Field(10, ge=1, le=1_000_000)
    eval_batch_size: int = Field(1024, ge=1, le=1 << 20)
    on_device_max_mb: int = Field(2048, ge=0, le=1 << 30)
    output: str = "runs"
    experiment: Optional[str] = Field(None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.+=@,-]+$")
    network: Optional[str] = None
    params: dict[str, str] = Field(default_factory=dict)  # --set NAME=VALUE, as written
    grow: tuple[int, ...] = ()         # multi-level training: double the depth after these epochs (train/grow.py)
    grow_param: str = Field("n", min_length=1, max_length=100, pattern=r"^[A-Za-z_][A-Za-z_0-9]*$")
    # what the run sees of the data (train/split.py): best.pt is chosen on the validation split
    val_split: float = Field(0.1, ge=0, lt=1)           # fraction of the training set held out for validation
    split_seed: int = Field(0, ge=0, lt=2**63)          # draws the subset and the split (same for every --seed)
    subset: Optional[int] = Field(None, ge=2)           # train on this many training images (before the split)
    test_subset: Optional[int] = Field(None, ge=1)      # report on this many test images
    # fine-tuning (backend/finetune.py): another input size for the net, parts kept frozen
    input_size: Optional[str] = Field(None, pattern=r"^\d+(x\d+){0,2}$")   # 32, 32x32 or 3x32x32
    freeze: tuple[str, ...] = ()                        # stem, stages.0, ...: no gradient, BN in eval mode
    # how long the run may go (a run stopped by one of these is "completed", its stop stated in summary.json)
    max_steps: Optional[int] = Field(None, ge=1)
    time_budget: Optional[float] = Field(None, gt=0)    # seconds of training (evaluation not counted)

    @field_validator("grow")
    @classmethod
    def _grow_epochs(cls, v: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
        from resdsl.train.grow import check_schedule

        if "epochs" in info.data:
            check_schedule(v, info.data["epochs"])
        return v

    @field_validator("experiment")
    @classmethod
    def _plain_name(cls, v: Optional[str]) -> Optional[str]:
        """A run directory name inside --output: no folders, not '.' or '..'."""
        if v is not None and v.strip(".") == "":
            raise ValueError("must be a plain folder name (letters, digits, _ . - +), not '.' or '..'")
        return v


def recipe_from_options(options: dict) -> dict:
    """The TrainConfig fields given on the command line (None means "not given")."""
    given = {k: v for k, v in options.items() if v is not None}
    amp, amp_dtype = given.pop("amp", None), given.pop("amp_dtype", None)
    if amp and "precision" not in given:
        given["precision"] = {"float16": "fp16", "bfloat16": "bf16"}.get(amp_dtype, "amp")
    if isinstance(given.get("decay_milestones"), str):
        try:
            given["decay_milestones"] = tuple(int(m) for m in given["decay_milestones"].split(",") if m.strip())
        except ValueError:
            raise TrainError(f"--decay-milestones expects epochs like 91,136; got {options['decay_milestones']!r}") from None
    if isinstance(given.get("grow"), str):
        from resdsl.train.grow import parse_grow

        given["grow"] = parse_grow(given["grow"])
    if isinstance(given.get("freeze"), str):
        given["freeze"] = tuple(p.strip() for p in given["freeze"].split(",") if p.strip())
    if isinstance(given.get("input_size"), int):
        given["input_size"] = str(given["input_size"])
    if isinstance(given.get("time_budget"), str):
        given["time_budget"] = parse_duration(given["time_budget"])
    if given.get("precision") == "amp":
        import torch

        given["precision"] = "fp16" if torch.cuda.is_available() and given.get("device", "auto") != "cpu" else "bf16"
    return given


def parse_duration(text: str) -> float:
    """Seconds from `90`, `90s`, `10m`, `1.5h`."""
    t = text.strip().lower()
    scale = {"s": 1, "m": 60, "h": 3600}.get(t[-1:], None)
    try:
        value = float(t[:-1] if scale else t) * (scale or 1)
    except ValueError:
        raise TrainError(f"--time-budget expects seconds or a duration like 90s, 10m, 1.5h; got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise TrainError(f"--time-budget must be a positive duration; got {text!r}")
    return value


def build_config(options: dict, base: dict | None = None):
    """A TrainConfig from the given options over `base` (a resumed run's config) and the defaults."""
    return TrainConfig(**{**(base or {}), **recipe_from_options(options)})
