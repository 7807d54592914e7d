"""Hostile or mistaken datasets: one clear message, or the right result, never a silent change."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from resdsl.train import TrainError, load_data, run
from resdsl.train.pipeline import LoaderPipeline, TensorPipeline


def arrays(n_train=20, n_test=10, hw=8, classes=3, seed=0):
    r = np.random.default_rng(seed)
    return {"x_train": r.integers(0, 255, (n_train, hw, hw), dtype=np.uint8),
            "y_train": np.arange(n_train) % classes,
            "x_test": r.integers(0, 255, (n_test, hw, hw), dtype=np.uint8),
            "y_test": np.arange(n_test) % classes}


def save(tmp_path, name="d.npz", **over):
    d = {**arrays(), **over}
    d = {k: v for k, v in d.items() if v is not None}
    path = tmp_path / name
    with open(path, "wb") as f:
        np.savez(f, **d)
    return path


def test_npy_named_npz(tmp_path):
    path = tmp_path / "x.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(TrainError, match="single .npy array"):
        load_data(f"npz:{path}")


def test_data_without_npz_prefix_works(tmp_path):
    path = save(tmp_path)
    assert load_data(str(path)).num_classes == 3


def test_idx_train_shorter_than_x_train(tmp_path):
    path = save(tmp_path, idx_train=np.arange(5))
    with pytest.raises(TrainError, match="idx_train"):
        load_data(f"npz:{path}")


def test_idx_train_restores_order(tmp_path):
    a = arrays()
    perm = np.random.default_rng(1).permutation(20)
    path = save(tmp_path, x_train=a["x_train"][perm], y_train=a["y_train"][perm], idx_train=perm + 1000)
    d = load_data(f"npz:{path}")
    assert torch.equal(d.train_x[:, 0], torch.from_numpy(a["x_train"]))


def test_fractional_labels_are_refused(tmp_path):
    path = save(tmp_path, y_train=np.linspace(0, 2, 20))
    with pytest.raises(TrainError, match="fractional"):
        load_data(f"npz:{path}")


def test_whole_float_labels_are_accepted(tmp_path):
    path = save(tmp_path, y_train=(np.arange(20) % 3).astype(np.float32))
    assert load_data(f"npz:{path}").train_y.dtype == torch.int64


@pytest.mark.parametrize("bad", [np.full(20, np.nan), np.array(["a"] * 20), -np.ones(20, int), np.zeros((20, 2), int)])
def test_bad_labels(tmp_path, bad):
    path = save(tmp_path, y_train=bad)
    with pytest.raises(TrainError):
        load_data(f"npz:{path}")


def test_one_image_training_set(tmp_path):
    path = save(tmp_path, x_train=arrays()["x_train"][:1], y_train=np.array([0]))
    with pytest.raises(TrainError, match="at least 2 images"):
        load_data(f"npz:{path}")


def test_object_arrays_are_never_unpickled(tmp_path):
    path = save(tmp_path, y_train=np.array([object()] * 20, dtype=object))
    with pytest.raises(TrainError):
        load_data(f"npz:{path}")


def test_missing_key_and_mixed_shapes(tmp_path):
    with pytest.raises(TrainError, match="y_test"):
        load_data(f"npz:{save(tmp_path, y_test=None)}")
    a, b = save(tmp_path, "a.npz"), save(tmp_path, "b.npz", x_train=np.zeros((20, 4, 4), np.uint8))
    with pytest.raises(TrainError, match="different shapes"):
        load_data(f"npz:{a},{b}")


@pytest.mark.parametrize("n", [129, 257])
def test_last_batch_of_one_is_dropped_in_both_pipelines(tmp_path, n):
    data = load_data(f"npz:{save(tmp_path, **arrays(n_train=n))}")
    common = dict(batch_size=128, eval_batch_size=64, pad=0, hflip=0.0, seed=0, device=torch.device("cpu"))
    for pipe in (TensorPipeline(data, **common), LoaderPipeline(data, workers=0, **common)):
        sizes = [len(y) for _, y in pipe.train_batches(0)]
        assert pipe.steps == len(sizes) and min(sizes) > 1 and sum(sizes) == n - 1


BN_1x1 = """network tiny(classes = 3) {
  input 1x8x8
  stem { conv 4 k3 s2; bn; relu; conv 4 k3 s2; bn; relu; conv 4 k3 s2; bn; relu }
  head { avgpool; fc classes }
}
"""


def test_bn_net_with_1x1_maps_trains_a_whole_epoch_through_workers(tmp_path):
    """A last batch of one image would crash batch norm after a whole epoch; it is dropped."""
    path = save(tmp_path, **arrays(n_train=129))
    summary = run(BN_1x1, {"data": f"npz:{path}", "epochs": 1, "batch_size": 64, "on_device_max_mb": 0,
                           "workers": 0}, tmp_path / "runs")
    assert summary["status"] == "completed"


def test_batch_size_one_on_a_1x1_bn_net_is_a_clear_error(tmp_path):
    path = save(tmp_path)
    with pytest.raises(TrainError, match="batch norm"):
        run(BN_1x1, {"data": f"npz:{path}", "epochs": 1, "batch_size": 1}, tmp_path / "runs")
