"""The data a run actually uses: an optional seeded subset, a held-out validation split taken from
the training set, and an optional test subset — all drawn from a generator seeded with
--split-seed, so every seed of a sweep sees the same images, and all stated in the run's config.

The validation split is stratified (each class keeps its share), as in scikit-learn's
`train_test_split(..., stratify=y)`; the checkpoint kept as best.pt is chosen on it, and the test
set is only reported (never used to choose anything).
"""
from __future__ import annotations

import dataclasses

import torch

from resdsl.train.data import ImageData
from resdsl.train.errors import TrainError


def _pick(n: int, k: int, g: torch.Generator) -> torch.Tensor:
    """k of range(n) in a seeded random order, then sorted (the data's own order is kept)."""
    return torch.randperm(n, generator=g)[:k].sort().values


def stratified(labels: torch.Tensor, fraction: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(keep, held): indices, `fraction` of each class held out (at least one image when the
    fraction is positive and the class has two or more)."""
    held = []
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().flatten()
        k = int(round(fraction * len(idx)))
        k = max(k, 1 if fraction > 0 and len(idx) > 1 else 0)
        held.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    held_t = torch.cat(held).sort().values if held else torch.zeros(0, dtype=torch.long)
    mask = torch.ones(len(labels), dtype=torch.bool)
    mask[held_t] = False
    return mask.nonzero().flatten(), held_t


def prepare(data: ImageData, cfg) -> ImageData:
    """`data` cut as `cfg` says (subset, test_subset, val_split with split_seed); a copy, or
    `data` itself when nothing is cut. Already prepared data passes through."""
    if data.prepared:
        return data
    g = torch.Generator().manual_seed(cfg.split_seed)
    subset, test_subset, frac = cfg.subset, cfg.test_subset, cfg.val_split
    if not data.in_memory:
        return _prepare_folder(data, cfg, g)
    tx, ty, x, y = data.test_x, data.test_y, data.train_x, data.train_y
    if subset is not None:
        if subset > len(x):
            raise TrainError(f"--subset {subset:,} is more than the {len(x):,} training images of {data.name}")
        keep = _pick(len(x), subset, g)
        x, y = x[keep], y[keep]
    if test_subset is not None:
        keep = _pick(len(tx), min(test_subset, len(tx)), g)
        tx, ty = tx[keep], ty[keep]
    vx = vy = None
    if frac > 0:
        keep, held = stratified(y, frac, g)
        if len(keep) < 2 or len(held) == 0:
            raise TrainError(f"--val-split {frac} of {len(y):,} training images leaves {len(keep)} to train on and "
                             f"{len(held)} to validate on; use a larger --subset or another --val-split (0 for none)")
        x, y, vx, vy = x[keep], y[keep], x[held], y[held]
    return dataclasses.replace(data, train_x=x, train_y=y, test_x=tx, test_y=ty, val_x=vx, val_y=vy,
                               prepared=True, split=describe(cfg, len(x), 0 if vx is None else len(vx), len(tx)))


def _prepare_folder(data: ImageData, cfg, g) -> ImageData:
    """An image folder: the same cuts as index lists, applied by the DataLoader pipeline."""
    from torchvision.datasets import ImageFolder

    train = ImageFolder(str(data.folder / "train"))
    labels = torch.tensor(train.targets)
    idx = torch.arange(len(labels))
    if cfg.subset is not None:
        if cfg.subset > len(idx):
            raise TrainError(f"--subset {cfg.subset:,} is more than the {len(idx):,} training images of {data.name}")
        idx = _pick(len(idx), cfg.subset, g)
    held = torch.zeros(0, dtype=torch.long)
    if cfg.val_split > 0:
        keep, held = stratified(labels[idx], cfg.val_split, g)
        idx, held = idx[keep], idx[held]
    test_index = None
    if cfg.test_subset is not None:
        n_test = len(ImageFolder(str(data.test_folder)))
        test_index = _pick(n_test, min(cfg.test_subset, n_test), g).tolist()
    return dataclasses.replace(data, train_index=idx.tolist(), val_index=held.tolist() if len(held) else None,
                               test_index=test_index, prepared=True,
                               split=describe(cfg, len(idx), len(held), None if test_index is None else len(test_index)))


def describe(cfg, n_train: int, n_val: int, n_test: int | None) -> dict:
    """What the run trained, selected and reported on (stored in summary.json)."""
    return {"train_images": n_train, "val_images": n_val, "test_images": n_test, "val_split": cfg.val_split,
            "split_seed": cfg.split_seed, "subset": cfg.subset, "test_subset": cfg.test_subset,
            "selected_on": "val" if n_val else "test"}
