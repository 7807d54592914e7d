"""Two CPU processes (gloo) as under torchrun: identical weights on both ranks, one run directory."""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from tests.conftest import SPECS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    import resdsl
    from resdsl.train import TrainConfig, fit, load_data, seed_everything
    from resdsl.train.progress import Reporter

    seed_everything(0, deterministic=True)
    model = resdsl.compile(SPECS / "digits_resnet.res", width=8, n=1)
    cfg = TrainConfig(epochs=2, batch_size=32, lr=0.05, deterministic=True, device="cpu", output=os.path.join(out, "runs"))
    summary = fit(model, load_data("digits"), cfg, reporter=Reporter(quiet=True))
    torch.save({"state": model.state_dict(), "summary": summary}, os.path.join(out, f"rank{rank}.pt"))


def test_two_cpu_processes_train_one_model(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "last.pt").is_file()
    assert a["summary"]["world_size"] == 2 and a["summary"]["final_test_acc"] == b["summary"]["final_test_acc"]
    # 1437 images less the 10% validation split (142) = 1295 / 2 ranks = 648 / 32 per batch = 21 steps per epoch
    assert a["summary"]["global_step"] == 2 * 21
