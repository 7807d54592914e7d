"""Input pipelines: batches of normalised images on the training device, the same for every rank count.

Small in-memory datasets live on the device as uint8 tensors and are augmented there, a whole batch
at a time (random crop with zero padding and horizontal flip, He et al. 2016, sec. 4.2). Larger
ones, and image folders, go through DataLoader workers with per-image transforms. Every epoch's
randomness is drawn from a generator seeded with (seed, epoch), so epoch e is the same whether or
not the run was stopped before it; within an epoch, the on-device plan can also skip batches.
"""
from __future__ import annotations

import math
from typing import Iterator

import torch
import torch.nn.functional as F

from resdsl.train.data import ImageData, channel_stats
from resdsl.train.errors import TrainError

Batch = tuple[torch.Tensor, torch.Tensor]


def epoch_seed(seed: int, epoch: int) -> int:
    """A generator seed for one epoch: distinct for every (seed, epoch) pair."""
    return (seed * 1_000_003 + epoch * 7_919 + 12_345) % (2**63)


class Normalize:
    """x = (x / scale − mean) / std per channel, batched on the device (scale 255 for uint8 images,
    1 for float sequences, whose statistics are on their own scale); optionally channels-last."""

    def __init__(self, mean, std, device, channels_last: bool):
        self.mean, self.std = (torch.tensor(v, device=device) for v in (mean, std))
        self.fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.views: dict[tuple[int, bool], tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.dim(), x.dtype == torch.uint8)
        if key not in self.views:
            shape, scale = (1, -1) + (1,) * (x.dim() - 2), (255 if key[1] else 1)
            self.views[key] = (self.mean.view(shape) * scale, 1 / (self.std.view(shape) * scale))
        mean, inv = self.views[key]
        y = (x.float() - mean) * inv
        return y.contiguous(memory_format=self.fmt) if x.dim() == 4 else y


def crop_flip(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor, pad: int) -> torch.Tensor:
    """Random crop of each zero-padded image at offset (dy, dx), then a horizontal flip where `flip`
    (a batch of sequences, never augmented, passes through)."""
    if x.dim() != 4:
        return x
    if pad:
        b, c, h, w = x.shape
        xp = F.pad(x, (pad, pad, pad, pad))
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        bi = torch.arange(b, device=x.device)[:, None, None, None]
        ci = torch.arange(c, device=x.device)[None, :, None, None]
        x = xp[bi, ci, rows, cols]
    return torch.where(flip[:, None, None, None], x.flip(3), x)


class TensorPipeline:
    """Batches drawn from uint8 tensors on the device; each rank takes every world-th image."""

    def __init__(self, data: ImageData, batch_size: int, eval_batch_size: int, pad: int, hflip: float,
                 seed: int, device, rank: int = 0, world: int = 1, channels_last: bool = False):
        self.x, self.y = data.train_x.to(device), data.train_y.to(device)
        self.tx, self.ty = data.test_x.to(device), data.test_y.to(device)
        self.has_val = data.val_x is not None
        self.vx, self.vy = (data.val_x.to(device), data.val_y.to(device)) if self.has_val else (None, None)
        self.mean, self.std = channel_stats(data.train_x)
        self.norm = Normalize(self.mean, self.std, device, channels_last)
        self.bs, self.ebs, self.pad, self.hflip, self.seed = batch_size, eval_batch_size, pad, hflip, seed
        self.rank, self.world, self.device = rank, world, device
        self.per_rank = math.ceil(len(self.x) / world)
        n_batches, last = divmod(self.per_rank, batch_size)
        self.steps = n_batches + (last > 1)  # a batch of one image would break batch norm

    def _plan(self, epoch: int) -> tuple[torch.Tensor, ...]:
        """This rank's order, crop offsets and flips for one epoch (padded like DistributedSampler)."""
        g = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        n, total = len(self.x), self.per_rank * self.world
        perm = torch.randperm(n, generator=g)
        perm = torch.cat([perm, perm[: total - n]])
        offs = torch.randint(0, 2 * self.pad + 1, (2, total), generator=g)
        flip = torch.rand(total, generator=g) < self.hflip
        mine = slice(self.rank, total, self.world)
        return tuple(t.to(self.device) for t in (perm[mine], offs[0, mine], offs[1, mine], flip[mine]))

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        perm, dy, dx, flip = self._plan(epoch)
        for i in range(start, self.steps):
            s = slice(i * self.bs, (i + 1) * self.bs)
            idx = perm[s]
            x = crop_flip(self.x[idx], dy[s], dx[s], flip[s], self.pad)
            yield self.norm(x), self.y[idx]

    def eval_batches(self, split: str = "test") -> Iterator[Batch]:
        """This rank's share of the test (or validation) set (every world-th image, no padding), in order."""
        xs, ys = (self.vx, self.vy) if split == "val" else (self.tx, self.ty)
        idx = torch.arange(self.rank, len(xs), self.world, device=self.device)
        for i in range(0, len(idx), self.ebs):
            j = idx[i : i + self.ebs]
            yield self.norm(xs[j]), ys[j]


class _TensorImages(torch.utils.data.Dataset):
    """uint8 CHW images with a per-image transform, for DataLoader workers."""

    def __init__(self, x, y, transform=None):
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        x = self.x[i]
        return (self.transform(x) if self.transform else x), self.y[i]


class LoaderPipeline:
    """Batches from DataLoader workers (per-image transforms), for data too large or too lazy for the device."""

    def __init__(self, data: ImageData, batch_size: int, eval_batch_size: int, pad: int, hflip: float,
                 seed: int, device, rank: int = 0, world: int = 1, channels_last: bool = False,
                 workers: int = 2, input_hw: tuple[int, int] | None = None):
        from torchvision.transforms import v2

        hw = tuple(input_hw or data.input_shape[1:])
        aug = [v2.RandomCrop(hw, padding=pad)] if pad else []
        aug += [v2.RandomHorizontalFlip(hflip)] if hflip else []
        self.train_set, self.test_set, self.val_set = self._datasets(data, v2, hw, aug)
        self.has_val = self.val_set is not None
        self.mean, self.std = self._stats()
        self.norm = Normalize(self.mean, self.std, device, channels_last)
        self.bs, self.ebs, self.seed, self.workers = batch_size, eval_batch_size, seed, workers
        self.rank, self.world, self.device = rank, world, device
        self.sampler = torch.utils.data.DistributedSampler(
            self.train_set, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=False)
        n_batches, last = divmod(len(self.sampler), batch_size)
        self.steps = n_batches + (last > 1)  # a last batch of one image would break batch norm: dropped

    @staticmethod
    def _datasets(data, v2, hw, aug):
        if data.in_memory:
            val = _TensorImages(data.val_x, data.val_y) if data.val_x is not None else None
            return (_TensorImages(data.train_x, data.train_y, v2.Compose(aug) if aug else None),
                    _TensorImages(data.test_x, data.test_y), val)
        from torch.utils.data import Subset
        from torchvision.datasets import ImageFolder

        base = [v2.PILToTensor(), v2.Resize(hw, antialias=True)]
        train = ImageFolder(str(data.folder / "train"), v2.Compose(base + aug))
        test = ImageFolder(str(data.test_folder), v2.Compose(base))
        val = None
        if data.val_index:
            val = Subset(ImageFolder(str(data.folder / "train"), v2.Compose(base)), data.val_index)
        if data.train_index is not None:
            train = Subset(train, data.train_index)
        if data.test_index is not None:
            test = Subset(test, data.test_index)
        return train, test, val

    def _stats(self):
        if isinstance(self.train_set, _TensorImages):
            return channel_stats(self.train_set.x)
        g = torch.Generator().manual_seed(0)  # a fixed sample of up to 1,000 test-transformed training images
        pick = torch.randperm(len(self.train_set), generator=g)[:1000].tolist()
        train, test = self.train_set, self.test_set
        if isinstance(train, torch.utils.data.Subset):
            pick, train = [train.indices[i] for i in pick], train.dataset
        tf = (test.dataset if isinstance(test, torch.utils.data.Subset) else test).transform
        return channel_stats(torch.stack([tf(train.loader(train.samples[i][0])) for i in pick]))

    def _loader(self, dataset, sampler, batch_size, seed):
        g = torch.Generator().manual_seed(seed)
        return torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, num_workers=self.workers, generator=g,
            pin_memory=str(self.device).startswith("cuda"), drop_last=False)

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """Exact at epoch boundaries; a mid-epoch start skips batches but redraws their augmentation."""
        self.sampler.set_epoch(epoch)
        order = list(self.sampler)[start * self.bs :]
        loader = self._loader(self.train_set, order, self.bs, epoch_seed(self.seed, epoch))
        for x, y in loader:
            if len(y) == 1 and self.bs > 1:
                continue
            yield self.norm(x.to(self.device, non_blocking=True)), y.to(self.device, non_blocking=True)

    def eval_batches(self, split: str = "test") -> Iterator[Batch]:
        dataset = self.val_set if split == "val" else self.test_set
        order = list(range(self.rank, len(dataset), self.world))
        for x, y in self._loader(dataset, order, self.ebs, 0):
            yield self.norm(x.to(self.device, non_blocking=True)), y.to(self.device, non_blocking=True)


def make_pipeline(data: ImageData, cfg, input_shape, device, rank: int = 0, world: int = 1):
    """On the device when the images fit under --on-device-max-mb, else DataLoader workers.
    Sequences are not augmented: a crop or a flip would move or reverse time."""
    if data.sequences:
        if cfg.crop_pad or cfg.hflip:
            raise TrainError(f"{data.name} holds sequences: --crop-pad and --hflip are for images (leave them out)")
        pad, hflip = 0, 0.0
    else:
        h = input_shape[1] if len(input_shape) > 1 else data.input_shape[1]
        pad = cfg.crop_pad if cfg.crop_pad is not None else h // 8
        hflip = cfg.hflip if cfg.hflip is not None else (0.5 if data.flip_invariant else 0.0)
    common = dict(batch_size=cfg.batch_size, eval_batch_size=cfg.eval_batch_size, pad=pad, hflip=hflip,
                  seed=cfg.seed, device=device, rank=rank, world=world,
                  channels_last=cfg.channels_last and not data.sequences)
    if data.in_memory and data.nbytes() <= cfg.on_device_max_mb * 2**20:
        return TensorPipeline(data, **common)
    return LoaderPipeline(data, workers=cfg.workers, input_hw=tuple(input_shape[1:3]), **common)
