"""Issue 22 item 9: long commands show progress with an estimate; short ones stay quiet."""
import io

from resdsl.progress import Progress


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_progress_estimates_the_time_left_from_the_mean_step():
    clock, out = Clock(), io.StringIO()
    with Progress("lesion", 62, "evaluations", after=3, every=5, stream=out, clock=clock) as p:
        for i in range(62):
            clock.t += 2.0                      # 2 s per evaluation: after 10 of them, 52 × 2 s = 104 s are left
            p.step()
            if i == 9:
                assert p.estimate() == 104.0
    lines = out.getvalue().splitlines()
    assert lines[0] == "lesion: 2/62 evaluations, 4s elapsed, about 2m00s left"      # 60 × 2 s
    assert "lesion: 5/62 evaluations, 10s elapsed, about 1m54s left" in lines       # one line per 5 s at most
    assert lines[-1] == "lesion: 62/62 evaluations done in 2m04s"


def test_short_work_prints_nothing():
    clock, out = Clock(), io.StringIO()
    with Progress("x", 100, stream=out, clock=clock) as p:
        for _ in range(100):
            clock.t += 0.01
            p.step()
    assert out.getvalue() == ""


def test_lesion_reports_progress_on_stderr(monkeypatch, capsys):
    """The lesion study counts every evaluation it makes (1 + singles + draws·k + swaps)."""
    import resdsl
    from resdsl.analyze import lesion
    from tests.conftest import SPECS

    seen = []
    real, real_with_loss = lesion.accuracy, lesion.accuracy_and_loss

    def counting(*a, **k):
        seen.append(1)
        return real(*a, **k)

    def counting_with_loss(*a, **k):         # intact and single deletions: accuracy and loss in one pass
        seen.append(1)
        return real_with_loss(*a, **k)

    import resdsl.progress as P

    made = []
    orig = P.Progress.__init__

    def init(self, what, total, *a, **k):
        orig(self, what, total, *a, **{**k, "after": 0, "every": 0})
        made.append(self)

    monkeypatch.setattr(P.Progress, "__init__", init)
    monkeypatch.setattr(lesion, "accuracy", counting)
    monkeypatch.setattr(lesion, "accuracy_and_loss", counting_with_loss)
    import torch

    model = resdsl.compile(SPECS / "digits_resnet.res", width=4, n=2).eval()
    g = resdsl.graph(SPECS / "digits_resnet.res", width=4, n=2)
    x, y = torch.randn(8, 1, 8, 8), torch.arange(8) % 10
    lesion.lesion_study(model, g, x, y, max_k=2, draws=3)
    (p,) = made
    assert p.total == len(seen) == p.done
    err = capsys.readouterr().err
    assert f"lesion: {p.total}/{p.total} evaluations done" in err


def test_profile_run_on_cpu_measures_the_step_over_its_baseline():
    """Issue 22 item 10: `profile --run` on CPU said "peak memory over baseline 0 B" (the freed heap
    of the warm-up steps stayed resident); a CIFAR ResNet-20 step at batch 32 keeps well over 8 MiB
    of activations (16×32×32 fp32 maps are 2 MiB each at this batch)."""
    import json
    import sys

    import pytest
    from click.testing import CliRunner

    from resdsl.cli import main
    from tests.conftest import SPECS

    if not sys.platform.startswith("linux"):
        pytest.skip("VmHWM is Linux's")
    r = CliRunner().invoke(main, ["profile", str(SPECS / "cifar_resnet.res"), "--run", "--device", "cpu", "--json",
                                  "--repeats", "1", "--warmup", "1"])
    assert r.exit_code == 0, r.output
    pm = json.loads(r.output)["measured"]["peak_memory"]
    assert pm["increase_bytes"] > 8 * 2**20
