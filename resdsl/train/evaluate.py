"""Score a saved checkpoint on a dataset's test split (`resdsl eval`)."""
from __future__ import annotations

from pathlib import Path

from resdsl.train import distributed as D
from resdsl.train.data import check_compatible, load_data
from resdsl.train.loop import evaluate
from resdsl.train.pipeline import LoaderPipeline, Normalize, TensorPipeline


def evaluate_checkpoint(spec, network, params, path: Path, data_spec, batch_size: int, precision: str,
                        device: str, allow_imports=(), split: str = "test") -> dict:
    """Loss and accuracy of a run (its best.pt) or checkpoint on the test split of `data_spec`
    (default: the run's data), the spec being the run's own copy unless `spec` is given."""
    from resdsl.train.restore import load_run, run_data

    model, ck = load_run(path, spec, network, params, allow_imports=allow_imports)
    cfg = ck.get("config", {}) if isinstance(ck.get("config"), dict) else {}
    data = load_data(data_spec or run_data(cfg.get("data"), path))
    if split == "val":     # the run's own validation split, drawn again from its config
        data = _val_as_test(data, cfg, data_spec)
    precision = precision or cfg.get("precision", "fp32")
    shape = tuple(model.input_shape)
    check_compatible(data, shape, model.num_classes)
    place = D.Place(0, 1, D.resolve_device(device))
    common = dict(batch_size=batch_size, eval_batch_size=batch_size, pad=0, hflip=0.0, seed=0, device=place.device)
    if data.in_memory:
        pipe = TensorPipeline(data, **common)
    else:
        pipe = LoaderPipeline(data, input_hw=shape[1:], **common)
    if ck.get("mean") and len(ck["mean"]) == shape[0]:  # (types checked at load: checkpoint.check_fields)  # the training set's statistics, as in training
        pipe.norm = Normalize(ck["mean"], ck["std"], place.device, False)
    loss, acc, n = evaluate(model.to(place.device), pipe.eval_batches(), precision, place)
    return {"spec_name": getattr(model, "spec_name", "model"), "checkpoint": str(path), "data": data.name,
            "epoch": ck.get("epoch"), "split": split, "images": n, "test_loss": loss, "test_acc": acc}


def _val_as_test(data, cfg: dict, data_spec):
    """The run's validation images in the test slot (so one pipeline scores either split)."""
    import dataclasses

    from resdsl.train.config import TrainConfig
    from resdsl.train.errors import TrainError
    from resdsl.train.split import prepare

    if data_spec and data_spec != cfg.get("data"):
        raise TrainError("--split val scores the run's own validation images: leave out --data")
    keys = ("val_split", "split_seed", "subset")
    if not cfg.get("val_split"):
        raise TrainError("this run has no validation split (it was trained with --val-split 0 or before splits "
                         "existed); use --split test")
    if not data.in_memory:
        raise TrainError("--split val is for in-memory datasets; an image folder's validation images are listed "
                         "by index in the run (score them with a val/ folder of their own)")
    cut = prepare(data, TrainConfig(**{k: cfg[k] for k in keys if k in cfg}))
    return dataclasses.replace(cut, test_x=cut.val_x, test_y=cut.val_y)
