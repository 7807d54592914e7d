"""Score a saved checkpoint on a dataset's test split (`resdsl eval`)."""
from __future__ import annotations

from pathlib import Path

from resdsl.train import distributed as D
from resdsl.train.data import check_compatible, load_data
from resdsl.train.loop import evaluate
from resdsl.train.pipeline import LoaderPipeline, Normalize, TensorPipeline


def evaluate_checkpoint(spec, network, params, path: Path, data_spec, batch_size: int, precision: str,
                        device: str, allow_imports=()) -> dict:
    """Loss and accuracy of a run (its best.pt) or checkpoint on the test split of `data_spec`
    (default: the run's data), the spec being the run's own copy unless `spec` is given."""
    from resdsl.models import load_run, run_data

    model, ck = load_run(path, spec, network, params, allow_imports=allow_imports)
    cfg = ck.get("config", {}) if isinstance(ck.get("config"), dict) else {}
    data = load_data(data_spec or run_data(cfg.get("data"), path))
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
            "epoch": ck.get("epoch"), "images": n, "test_loss": loss, "test_acc": acc}
