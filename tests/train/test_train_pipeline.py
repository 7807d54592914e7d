"""The on-device input pipeline and the recipes: augmentation, sharding, schedules, weight decay groups."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resdsl.train.config import TrainConfig
from resdsl.train.data import ImageData
from resdsl.train.pipeline import TensorPipeline, crop_flip, make_pipeline
from resdsl.train.optim import LrFactor, make_optimizer, make_scheduler, param_groups


def _data(n=37, c=3, hw=8, classes=5):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, c, hw, hw), dtype=torch.uint8, generator=g)
    y = torch.arange(n) % classes
    return ImageData("toy", classes, (c, hw, hw), True, x, y, x[:11].clone(), y[:11].clone())


def test_crop_flip_matches_per_image_reference():
    x = torch.randint(0, 256, (6, 2, 5, 7), dtype=torch.uint8)
    dy, dx = torch.tensor([0, 1, 2, 3, 4, 0]), torch.tensor([4, 3, 2, 1, 0, 2])
    flip = torch.tensor([True, False, True, False, False, True])
    out = crop_flip(x, dy, dx, flip, pad=2)
    for i in range(6):
        ref = F.pad(x[i], (2, 2, 2, 2))[:, dy[i] : dy[i] + 5, dx[i] : dx[i] + 7]
        assert torch.equal(out[i], ref.flip(2) if flip[i] else ref)


def test_epoch_plan_is_a_function_of_seed_and_epoch():
    d = _data()
    a = TensorPipeline(d, 8, 16, pad=1, hflip=0.5, seed=3, device="cpu")
    b = TensorPipeline(d, 8, 16, pad=1, hflip=0.5, seed=3, device="cpu")
    e2 = [x for x, _ in a.train_batches(2)]
    assert all(torch.equal(u, v) for u, v in zip(e2, (x for x, _ in b.train_batches(2))))
    assert not torch.equal(e2[0], next(a.train_batches(1))[0])
    resumed = [x for x, _ in b.train_batches(2, start=3)]  # skipping batches reproduces the rest
    assert all(torch.equal(u, v) for u, v in zip(e2[3:], resumed)) and len(resumed) == len(e2) - 3


def test_ranks_share_out_every_image():
    d = _data(n=40)
    seen = []
    for rank in range(3):
        p = TensorPipeline(d, 4, 16, pad=0, hflip=0.0, seed=0, device="cpu", rank=rank, world=3)
        assert p.steps == math.ceil(14 / 4)
        seen += [y for _, y in p.train_batches(0)]
        assert sum(len(y) for _, y in p.eval_batches()) in (3, 4)
    assert sum(len(y) for y in seen) == 42
    lone = TensorPipeline(_data(n=13), 4, 16, pad=0, hflip=0.0, seed=0, device="cpu")
    assert lone.steps == 3  # a last batch of one image would break batch norm: dropped  # 40 padded to a multiple of 3, as DistributedSampler does


def test_batches_are_normalised_with_training_statistics():
    p = make_pipeline(_data(n=200), TrainConfig(batch_size=200, crop_pad=0, hflip=0.0), (3, 8, 8), "cpu")
    x, _ = next(p.train_batches(0))
    assert x.dtype == torch.float32 and abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-2


def test_large_data_goes_through_dataloader_workers():
    cfg = TrainConfig(batch_size=8, on_device_max_mb=0, workers=0)
    p = make_pipeline(_data(), cfg, (3, 8, 8), "cpu")
    assert type(p).__name__ == "LoaderPipeline"
    assert sum(len(y) for _, y in p.train_batches(0)) == 37
    assert sum(len(y) for _, y in p.eval_batches()) == 11


def test_step_schedule_divides_by_ten_at_milestones():
    f = LrFactor("step", steps_per_epoch=10, epochs=8, warmup_epochs=0, milestones=(), decay_rate=0.1, min_ratio=0)
    assert [round(f(e * 10), 6) for e in range(8)] == [1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01]


def test_cosine_with_warmup():
    f = LrFactor("cosine", steps_per_epoch=10, epochs=10, warmup_epochs=1, milestones=(), decay_rate=0.1, min_ratio=0)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0) and f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5) and f(100) == pytest.approx(0.0)


def test_onecycle_peaks_at_lr():
    model = nn.Linear(2, 2)
    cfg = TrainConfig(sched="onecycle", lr=0.4, epochs=4)
    opt = make_optimizer(model, cfg)
    sched = make_scheduler(opt, cfg, steps_per_epoch=5)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert max(lrs) == pytest.approx(0.4, rel=1e-3) and lrs[0] < 0.1 and lrs[-1] < 1e-3


def test_weight_decay_skips_bn_and_biases_when_asked():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    decay, no_decay = param_groups(model, 5e-4, exclude_bn_bias=True)
    assert len(decay["params"]) == 2 and len(no_decay["params"]) == 4 and no_decay["weight_decay"] == 0
    assert len(param_groups(model, 5e-4, exclude_bn_bias=False)) == 1
    opt = make_optimizer(model, TrainConfig(opt="nesterov"))
    assert opt.param_groups[0]["nesterov"] and isinstance(make_optimizer(model, TrainConfig(opt="adamw")), torch.optim.AdamW)
