"""Datasets named by `--data KIND[:PATH]`, loaded as uint8 NCHW tensors (or a lazy image folder),
or, for `seq:PATH`, as float32 (N, C, L) sequences."""
from __future__ import annotations

import glob
import gzip
import math
import os
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from resdsl.train.errors import TrainError

KINDS = ("digits", "cifar10", "cifar100", "mnist", "npz", "seq", "folder")
SEQ_DTYPES = "iuf"          # sequence values: integers or floats, stored as float32


@dataclass
class ImageData:
    """Train and test images with labels; `train_x` is uint8 (N, C, H, W), or None for a folder;
    or sequences: float32 (N, C, L), input_shape (C, L)."""

    name: str
    num_classes: int
    input_shape: tuple[int, ...]
    flip_invariant: bool
    train_x: torch.Tensor | None = None
    train_y: torch.Tensor | None = None
    test_x: torch.Tensor | None = None
    test_y: torch.Tensor | None = None
    folder: Path | None = None
    val_x: torch.Tensor | None = None       # a held-out validation split of the training set (train/split.py)
    val_y: torch.Tensor | None = None
    train_index: list[int] | None = None    # an image folder's cuts, as indices (train/split.py)
    val_index: list[int] | None = None
    test_index: list[int] | None = None
    prepared: bool = False                  # cut by train/split.prepare already
    split: dict | None = None               # what prepare did (train/val/test sizes, seed)

    @property
    def has_val(self) -> bool:
        return self.val_x is not None or bool(self.val_index)

    @property
    def test_folder(self) -> Path:
        return next(self.folder / d for d in ("test", "val") if (self.folder / d).is_dir())

    @property
    def in_memory(self) -> bool:
        return self.train_x is not None

    @property
    def sequences(self) -> bool:
        return len(self.input_shape) == 2

    def nbytes(self) -> int:
        extra = self.val_x.nbytes if self.val_x is not None else 0
        return 0 if not self.in_memory else self.train_x.nbytes + self.test_x.nbytes + extra


def load_data(spec: str) -> ImageData:
    """`digits`, `cifar10:PATH`, `cifar100:PATH`, `mnist:PATH`, `npz:PATH[,PATH...]`, `seq:PATH`, `folder:PATH`."""
    kind, _, path = spec.partition(":")
    if kind not in KINDS and spec.lower().endswith(".npz"):
        kind, path = "npz", spec                 # `--data x.npz` means npz:x.npz
    if kind not in KINDS:
        raise TrainError(f"unknown dataset kind '{kind}' in --data {spec!r}; expected one of: {', '.join(KINDS)}")
    if kind == "digits":
        return _digits()
    if not path:
        raise TrainError(f"--data {kind} needs a path: --data {kind}:PATH")
    loader = {"cifar10": _cifar, "cifar100": _cifar, "mnist": _mnist, "npz": _npz, "seq": _seq,
              "folder": _folder}[kind]
    try:
        return loader(kind, path)
    except TrainError:
        raise
    except (OSError, ValueError, KeyError, IndexError, RuntimeError, EOFError, struct.error, zipfile.BadZipFile) as e:
        raise TrainError(f"cannot read {kind} data at {path}: {e}") from None


def _paths(spec: str) -> tuple[str, list[str]]:
    kind, sep, path = spec.partition(":")
    if kind not in KINDS and spec.lower().endswith(".npz"):
        return "npz", [spec]
    return kind, ([p.strip() for p in path.split(",") if p.strip()] if sep and kind != "digits" else [])


def absolute_data(spec: str) -> str:
    """`--data` with every path made absolute (as a run records it), so eval and analyze of the run
    work from any folder."""
    kind, paths = _paths(spec)
    if not paths:
        return spec
    return f"{kind}:{','.join(os.path.abspath(os.path.expanduser(p)) for p in paths)}"


def data_from_run(spec: str, run: Path) -> str | None:
    """`--data` with paths relative to the run directory (kept in summary.json: a moved tree of runs
    and data is found again)."""
    kind, paths = _paths(spec)
    if not paths:
        return None
    try:
        return f"{kind}:{','.join(os.path.relpath(os.path.abspath(p), os.path.abspath(run)) for p in paths)}"
    except ValueError:          # another drive (Windows)
        return None


def _from_arrays(name: str, xtr, ytr, xte, yte, flip: bool, classes: int | None = None) -> ImageData:
    """Check uint8 NHWC/NHW arrays with integer labels and turn them into NCHW tensors."""
    xs = []
    for what, x in (("train", xtr), ("test", xte)):
        x = np.asarray(x)
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4 or x.dtype != np.uint8:
            raise TrainError(f"{name}: {what} images must be uint8 (N, H, W, C); got {x.dtype} {x.shape}"
                             + ("; for (N, C, L) sequences use --data seq:PATH" if x.ndim == 3 else ""))
        xs.append(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))))
    ys = [_labels(name, what, y) for what, y in (("train", ytr), ("test", yte))]
    for x, y, what in zip(xs, ys, ("train", "test")):
        if len(x) != len(y) or len(x) == 0:
            raise TrainError(f"{name}: {len(x)} {what} images but {len(y)} labels")
    if len(xs[0]) < 2:
        raise TrainError(f"{name}: training needs at least 2 images (batch norm and mini-batches); got {len(xs[0])}")
    if xs[0].shape[1:] != xs[1].shape[1:]:
        raise TrainError(f"{name}: train images are {tuple(xs[0].shape[1:])} but test images {tuple(xs[1].shape[1:])}")
    lo, hi = min(int(y.min()) for y in ys), max(int(y.max()) for y in ys)
    if lo < 0:
        raise TrainError(f"{name}: labels must be 0..K-1; found {lo}")
    k = classes or hi + 1
    return ImageData(name, k, tuple(xs[0].shape[1:]), flip, xs[0], ys[0], xs[1], ys[1])


def _labels(name: str, what: str, y) -> torch.Tensor:
    """Integer class labels, one per image; floats only when every value is a whole number."""
    y = np.asarray(y)
    if y.ndim > 1 and y.size == len(y):
        y = y.reshape(-1)
    if y.ndim != 1:
        raise TrainError(f"{name}: {what} labels must be one class index per image; got shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise TrainError(f"{name}: {what} labels are fractional numbers ({y.dtype}); "
                             "labels must be class indices 0..K-1 (integers)")
    elif y.dtype.kind not in "iub":
        raise TrainError(f"{name}: {what} labels must be integers 0..K-1; got {y.dtype}")
    if y.size and (y.max() > 1_000_000):
        raise TrainError(f"{name}: {what} label {int(y.max()):,} is not a plausible class index (limit 1,000,000)")
    return torch.from_numpy(y.astype(np.int64))


def _digits() -> ImageData:
    """scikit-learn's 8x8 digits (bundled, values 0..16), a fixed stratified 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = np.round(d.images * (255 / 16)).astype(np.uint8)
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.2, stratify=d.target, random_state=0)
    return _from_arrays("digits", xtr, ytr, xte, yte, flip=False, classes=10)


def _cifar(kind: str, path: str) -> ImageData:
    """CIFAR-10/100 in the official python-pickle layout, through torchvision (never downloading)."""
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if kind == "cifar10" else CIFAR100
    root = Path(path).expanduser()
    if root.name == cls.base_folder:
        root = root.parent
    if not (root / cls.base_folder).is_dir():
        raise TrainError(f"no {kind} data at {path}: expected a folder '{cls.base_folder}' (python-pickle layout)")
    tr, te = cls(str(root), train=True, download=False), cls(str(root), train=False, download=False)
    k = 10 if kind == "cifar10" else 100
    return _from_arrays(kind, tr.data, tr.targets, te.data, te.targets, flip=True, classes=k)


def _read_idx(path: Path) -> np.ndarray:
    """An MNIST idx file (optionally gzipped): magic 0x00000800|type|ndim, big-endian dims, data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise TrainError(f"{path} is not an idx file of unsigned bytes")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise TrainError(f"{path} is truncated: {data.size} bytes of data for shape {dims}")
    return data.reshape(dims).copy()


def _mnist(kind: str, path: str) -> ImageData:
    """MNIST idx files (train-images-idx3-ubyte[.gz], ...) in PATH or PATH/MNIST/raw."""
    root = Path(path).expanduser()
    for cand in (root, root / "raw", root / "MNIST" / "raw"):
        found = {}
        for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
            hits = [p for p in (cand / stem, cand / f"{stem}.gz") if p.is_file()]
            if hits:
                found[stem] = hits[0]
        if len(found) == 4:
            a = [_read_idx(p) for p in found.values()]
            return _from_arrays("mnist", a[0], a[1], a[2], a[3], flip=False, classes=10)
    raise TrainError(f"no MNIST idx files in {path} (expected train-images-idx3-ubyte[.gz] and the other three)")


def _npz_paths(path: str) -> list[Path]:
    paths: list[Path] = []
    for part in filter(None, (p.strip() for p in path.split(","))):
        p = Path(part).expanduser()
        if p.is_dir():
            paths += sorted(p.glob("*.npz"))
        elif any(c in part for c in "*?["):
            paths += sorted(Path(h) for h in glob.glob(os.path.expanduser(part)))
        elif p.is_file():
            paths.append(p)
        else:
            raise TrainError(f"no such file: {part}")
    if not paths:
        raise TrainError(f"no .npz files in {path}")
    return paths


def _npz(kind: str, path: str) -> ImageData:
    """One or several .npz files (comma-separated, a glob or a folder) with x_train, y_train, x_test, y_test."""
    parts = {k: [] for k in ("x_train", "y_train", "idx_train", "x_test", "y_test")}
    for p in _npz_paths(path):
        if not zipfile.is_zipfile(p):
            raise TrainError(f"cannot read npz data at {p}: not an .npz archive" + (" (it is a single .npy array)" if _is_npy(p) else "")
                             + "; save with numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)")
        with np.load(p, allow_pickle=False) as z:
            if "x_train" not in z and "x_test" not in z:
                raise TrainError(f"{p} has neither x_train nor x_test (keys: {', '.join(z.files)})")
            for k in parts:
                if k in z:
                    parts[k].append(z[k])
    for k in ("x_train", "y_train", "x_test", "y_test"):
        if not parts[k]:
            raise TrainError(f"--data npz:{path}: no file has '{k}'")
    shapes = {x.shape[1:] for x in parts["x_train"] + parts["x_test"]}
    if len(shapes) > 1:
        raise TrainError(f"--data npz:{path}: files hold images of different shapes {sorted(shapes)}; name the files")
    xtr, ytr = np.concatenate(parts["x_train"]), np.concatenate(parts["y_train"])
    if parts["idx_train"]:  # restore the official order (shared/data README)
        idx = np.concatenate(parts["idx_train"])
        if len(parts["idx_train"]) != len(parts["x_train"]) or len(idx) != len(xtr) or len(np.unique(idx)) != len(idx):
            raise TrainError(f"--data npz:{path}: idx_train must hold one distinct index per training image, in "
                             f"every file; got {len(idx)} indices ({len(np.unique(idx))} distinct) for {len(xtr)} images")
        order = np.argsort(idx, kind="stable")
        xtr, ytr = xtr[order], ytr[order]
    xte, yte = np.concatenate(parts["x_test"]), np.concatenate(parts["y_test"])
    color = xtr.ndim == 4 and xtr.shape[-1] == 3
    return _from_arrays(f"npz:{path}", xtr, ytr, xte, yte, flip=color)


def _is_npy(p: Path) -> bool:
    with open(p, "rb") as f:
        return f.read(6) == b"\x93NUMPY"


def _seq(kind: str, path: str) -> ImageData:
    """One .npz of sequences: x_train, x_test (N, C, L) numbers, y_train, y_test class indices.
    Each array's header is read first, and the whole is refused before anything is allocated when
    its float32 copy would exceed the memory budget (limits.py); nothing is ever unpickled."""
    from resdsl import limits

    p = Path(path).expanduser()
    if not p.is_file() or not zipfile.is_zipfile(p):
        raise TrainError(f"cannot read seq data at {path}: not an .npz archive; save with "
                         "numpy.savez(path, x_train=(N, C, L), y_train=(N,), x_test=..., y_test=...)")
    keys = ("x_train", "y_train", "x_test", "y_test")
    heads = _npz_headers(p, keys)
    for k in ("x_train", "x_test"):
        shape, dtype = heads[k]
        if len(shape) != 3 or dtype.kind not in SEQ_DTYPES or min(shape, default=0) == 0:
            raise TrainError(f"seq:{path}: {k} must be non-empty (N, C, L) numbers; got {dtype} {shape}")
    need = sum(4 * math.prod(heads[k][0]) + heads[k][1].itemsize * math.prod(heads[k][0]) for k in keys)
    budget = limits.memory_budget()
    if need > budget:
        raise TrainError(f"seq:{path}: loading needs {need / 2**30:.2f} GiB, over the memory budget of "
                         f"{budget / 2**30:.2f} GiB (RESDSL_LIMIT_MEMORY=BYTES sets it)")
    with np.load(p, allow_pickle=False) as z:
        a = {k: z[k] for k in keys}
    xs = [torch.from_numpy(np.ascontiguousarray(a[k], dtype=np.float32)) for k in ("x_train", "x_test")]
    if not all(bool(torch.isfinite(x).all()) for x in xs):
        raise TrainError(f"seq:{path}: sequences hold NaN or infinite values")
    if xs[0].shape[1:] != xs[1].shape[1:]:
        raise TrainError(f"seq:{path}: train sequences are {tuple(xs[0].shape[1:])} but test sequences "
                         f"{tuple(xs[1].shape[1:])}")
    ys = [_labels(f"seq:{path}", w, a[k]) for w, k in (("train", "y_train"), ("test", "y_test"))]
    for x, y, w in zip(xs, ys, ("train", "test")):
        if len(x) != len(y):
            raise TrainError(f"seq:{path}: {len(x)} {w} sequences but {len(y)} labels")
    if len(xs[0]) < 2:
        raise TrainError(f"seq:{path}: training needs at least 2 sequences; got {len(xs[0])}")
    if min(int(y.min()) for y in ys) < 0:
        raise TrainError(f"seq:{path}: labels must be 0..K-1")
    k = max(int(y.max()) for y in ys) + 1
    return ImageData(f"seq:{path}", k, tuple(xs[0].shape[1:]), False, xs[0], ys[0], xs[1], ys[1])


def _npz_headers(p: Path, keys) -> dict:
    """(shape, dtype) of each named array of an .npz, from its .npy header alone."""
    out = {}
    with zipfile.ZipFile(p) as zf:
        names = set(zf.namelist())
        for k in keys:
            if f"{k}.npy" not in names:
                raise TrainError(f"{p} has no '{k}' (keys: {', '.join(sorted(n[:-4] for n in names))})")
            with zf.open(f"{k}.npy") as f:
                version = np.lib.format.read_magic(f)
                shape, _, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0(f))
            if dtype.hasobject:
                raise TrainError(f"{p}: '{k}' holds Python objects; only numbers are read")
            out[k] = (tuple(shape), dtype)
    return out


def _folder(kind: str, path: str) -> ImageData:
    """An ImageFolder tree: PATH/train/<class>/*.png and PATH/test (or PATH/val)/<class>/*."""
    from torchvision.datasets import ImageFolder

    root = Path(path).expanduser()
    test = next((root / d for d in ("test", "val") if (root / d).is_dir()), None)
    if not (root / "train").is_dir() or test is None:
        raise TrainError(f"folder data at {path} needs subfolders train/ and test/ (or val/), one folder per class")
    tr, te = ImageFolder(str(root / "train")), ImageFolder(str(test))
    if tr.classes != te.classes:
        raise TrainError(f"{path}: train classes {tr.classes} differ from {test.name} classes {te.classes}")
    img = tr[0][0]
    shape = (len(img.getbands()), img.size[1], img.size[0])
    return ImageData(f"folder:{path}", len(tr.classes), shape, True, folder=root)


def check_compatible(data: ImageData, input_shape: tuple[int, ...], num_classes: int) -> None:
    """The model must take the data's images (or sequences) and predict exactly its classes."""
    want, have = tuple(input_shape), tuple(data.input_shape)
    same = (len(want) == len(have) and want[0] == have[0]
            and (not data.in_memory or want[1:] == have[1:]))
    if not same:
        what = "sequences" if len(want) == 2 or data.sequences else "images"
        hint = (f" (try --input-size {'x'.join(map(str, have[1:]))} if the net is fully convolutional)"
                if what == "images" and len(have) == 3 and want[0] == have[0] else "")
        raise TrainError(f"the model takes {'x'.join(map(str, want))} {what} but {data.name} has "
                         f"{'x'.join(map(str, have))}{hint}")
    if num_classes != data.num_classes:
        raise TrainError(
            f"the model predicts {num_classes} classes but {data.name} has {data.num_classes}"
            f" (try --set classes={data.num_classes} if the spec has that parameter)"
        )


def channel_stats(x: torch.Tensor, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and std, in float64: of uint8 images on the [0, 1] scale, of sequences as stored."""
    scale = 255 if x.dtype == torch.uint8 else 1
    axes = (0, *range(2, x.dim()))
    s = torch.zeros(x.shape[1], dtype=torch.float64)
    s2 = torch.zeros_like(s)
    for i in range(0, len(x), chunk):
        b = x[i : i + chunk].to(torch.float64) / scale
        s += b.sum(axes)
        s2 += (b * b).sum(axes)
    n = len(x) * math.prod(x.shape[2:])
    mean = s / n
    std = (s2 / n - mean * mean).clamp_min(1e-12).sqrt()
    return mean.tolist(), std.tolist()
