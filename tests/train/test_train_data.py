"""Datasets for `resdsl train --data`: formats, checks, and clear errors for bad input."""
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from resdsl.train.data import channel_stats, check_compatible, load_data
from resdsl.train.errors import TrainError

SHARED = Path(__file__).parents[2].parent / "shared" / "data"


def test_digits_is_a_fixed_stratified_split():
    a, b = load_data("digits"), load_data("digits")
    assert a.train_x.shape == (1437, 1, 8, 8) and a.test_x.shape == (360, 1, 8, 8)
    assert a.train_x.dtype == torch.uint8 and int(a.train_x.max()) == 255
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    counts = torch.bincount(a.test_y, minlength=10)
    assert int(counts.min()) >= 35 and int(counts.max()) <= 37  # 20% of each class
    assert a.num_classes == 10 and not a.flip_invariant


def _npz(path, n=20, hw=(6, 6, 3), test=True, idx=None, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {"x_train": rng.integers(0, 256, (n, *hw), dtype=np.uint8), "y_train": rng.integers(0, 4, n)}
    if idx is not None:
        arrays["idx_train"] = np.asarray(idx)
    if test:
        arrays.update(x_test=rng.integers(0, 256, (8, *hw), dtype=np.uint8), y_test=np.arange(8) % 4)
    np.savez(path, **arrays)
    return arrays


def test_npz_several_files_restore_official_order(tmp_path):
    a = _npz(tmp_path / "a.npz", n=3, idx=[4, 0, 2])
    b = _npz(tmp_path / "b.npz", n=2, test=False, idx=[3, 1], seed=1)
    d = load_data(f"npz:{tmp_path / 'a.npz'},{tmp_path / 'b.npz'}")
    x = np.concatenate([a["x_train"], b["x_train"]])[np.argsort([4, 0, 2, 3, 1])]
    assert torch.equal(d.train_x, torch.from_numpy(x.transpose(0, 3, 1, 2)))
    assert d.input_shape == (3, 6, 6) and d.num_classes == 4 and d.flip_invariant
    assert torch.equal(load_data(f"npz:{tmp_path}").train_x, d.train_x)  # a folder of .npz files


@pytest.mark.parametrize("bad, message", [
    ("nope.npz", "no such file"),
    ("float.npz", "must be uint8"),
    ("empty.npz", "neither x_train nor x_test"),
])
def test_npz_errors_are_clear(tmp_path, bad, message):
    np.savez(tmp_path / "float.npz", x_train=np.zeros((2, 4, 4, 1)), y_train=[0, 1],
             x_test=np.zeros((2, 4, 4, 1)), y_test=[0, 1])
    np.savez(tmp_path / "empty.npz", z=np.zeros(3))
    with pytest.raises(TrainError, match=message):
        load_data(f"npz:{tmp_path / bad}")


def test_truncated_npz_is_a_clear_error(tmp_path):
    _npz(tmp_path / "a.npz")
    raw = (tmp_path / "a.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(TrainError, match="cannot read npz"):
        load_data(f"npz:{tmp_path / 'cut.npz'}")


def _idx(path, arr: np.ndarray, gz: bool):
    head = struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    (gzip.open if gz else open)(path, "wb").write(head + arr.astype(np.uint8).tobytes())


def test_mnist_idx_files(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (5, 28, 28))
    _idx(raw / "train-images-idx3-ubyte.gz", x, True)
    _idx(raw / "train-labels-idx1-ubyte", np.arange(5), False)
    _idx(raw / "t10k-images-idx3-ubyte", x[:2], False)
    _idx(raw / "t10k-labels-idx1-ubyte.gz", np.arange(2), True)
    d = load_data(f"mnist:{tmp_path}")
    assert d.train_x.shape == (5, 1, 28, 28) and torch.equal(d.train_x[:, 0], torch.from_numpy(x.astype(np.uint8)))
    assert d.test_y.tolist() == [0, 1]


def test_image_folder(tmp_path):
    from PIL import Image

    for split in ("train", "val"):
        for c in ("cat", "dog"):
            (tmp_path / split / c).mkdir(parents=True)
            Image.new("RGB", (10, 12), (200, 10, 10)).save(tmp_path / split / c / "0.png")
    d = load_data(f"folder:{tmp_path}")
    assert d.num_classes == 2 and d.input_shape == (3, 12, 10) and not d.in_memory


@pytest.mark.parametrize("spec, message", [
    ("imagenet:/x", "unknown dataset kind 'imagenet'"),
    ("cifar10", "needs a path"),
    ("cifar10:/nonexistent", "cifar-10-batches-py"),
    ("mnist:/nonexistent", "no MNIST idx files"),
    ("folder:/nonexistent", "train/ and test/"),
])
def test_bad_data_arguments(spec, message):
    with pytest.raises(TrainError, match=message):
        load_data(spec)


def test_model_and_data_must_agree():
    d = load_data("digits")
    check_compatible(d, (1, 8, 8), 10)
    with pytest.raises(TrainError, match="takes 3x32x32 images but digits has 1x8x8"):
        check_compatible(d, (3, 32, 32), 10)
    with pytest.raises(TrainError, match="predicts 100 classes but digits has 10"):
        check_compatible(d, (1, 8, 8), 100)


def test_channel_stats_match_numpy():
    x = torch.randint(0, 256, (50, 3, 4, 4), dtype=torch.uint8)
    mean, std = channel_stats(x, chunk=7)
    ref = x.numpy().astype(np.float64) / 255
    assert np.allclose(mean, ref.mean((0, 2, 3))) and np.allclose(std, ref.std((0, 2, 3)))


def test_shared_cifar_npz_has_the_documented_shapes():
    path = SHARED / "cifar10_subset.npz"
    if not path.exists():
        pytest.skip(f"{path} not present (../shared/data beside the clone)")
    d = load_data(f"npz:{path}")
    assert d.train_x.shape == (10000, 3, 32, 32) and d.test_x.shape == (10000, 3, 32, 32)
    mean, _ = channel_stats(d.train_x)
    assert abs(mean[0] - 0.4913) < 0.01
