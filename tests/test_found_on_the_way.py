"""Issue 22 item 10, the small ones: `resdsl --help` without torch, every name `resdsl list` shows
is accepted by `check`, a resumed epoch's throughput counts only its own images."""
import json
import subprocess
import sys

import click
import pytest

from resdsl.cli import LAZY_COMMANDS, LAZY_HELP, main
from tests.conftest import ROOT, SPECS, emitted_twin


def test_help_lists_every_command_without_importing_torch():
    code = ("import sys; from resdsl.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": ""}, timeout=120).stdout
    assert out.strip().endswith("NO-TORCH")
    for name in LAZY_COMMANDS:
        assert f"  {name}  " in out or f"  {name} " in out


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_the_static_help_line_is_the_commands_own(name):
    cmd = main.get_command(click.Context(main), name)
    assert LAZY_HELP[name] == " ".join(cmd.help.strip().split("\n\n")[0].split())


def test_every_name_resdsl_list_shows_is_a_name_check_accepts():
    from resdsl.zoo.catalog import zoo
    from resdsl.zoo.names import resolve

    for entry in zoo():
        path, network, _ = resolve(entry.name, None, {})
        assert network == entry.name and path.endswith(f"{entry.family}.res"), entry
    import resdsl

    for name in ("cifar_resnet", "resnet_d", "preact_resnet", "wide_resnet"):
        assert resdsl.load_spec(name).name == name


def test_a_misspelt_family_name_suggests_that_family():
    from resdsl.errors import SpecError
    from resdsl.zoo.names import resolve

    with pytest.raises(SpecError) as e:
        resolve("cifar_resnett", None, {})
    assert "did you mean 'cifar_resnet'?" in e.value.render()


def test_a_resumed_epoch_reports_its_own_throughput(tmp_path):
    """Resumed near the end of an epoch, the throughput counted every image of the epoch over the
    few seconds since the restart (about 10× too high). Stopped after 19 of 21 steps, the resumed
    epoch trains 2 steps: its rate must be in line with the unstopped epoch's, not 10× it."""
    from resdsl.train import Interrupted, TrainConfig, fit, load_data
    from resdsl.train.progress import Reporter
    import resdsl

    data = load_data("digits")
    cfg = dict(epochs=1, batch_size=64, device="cpu", output=str(tmp_path), experiment="r", workers=0)
    with pytest.raises(Interrupted):
        fit(resdsl.compile(SPECS / "digits_resnet.res", width=4, n=1), data, TrainConfig(**cfg),
            reporter=Reporter(quiet=True), stop_after_steps=19)
    fit(resdsl.compile(SPECS / "digits_resnet.res", width=4, n=1), data, TrainConfig(**cfg),
        resume=tmp_path / "r", reporter=Reporter(quiet=True))
    import csv

    with open(tmp_path / "r" / "metrics.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    steps = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    images_after_resume = 1295 - 19 * 64          # 1,437 less the 10% validation split; 19 steps of 64 done
    assert len(steps) == 21
    assert float(row["images_per_s"]) == pytest.approx(images_after_resume / float(row["epoch_s"]), rel=1e-3)


def test_make_demo_installs_only_the_core_and_make_test_the_test_extras(tmp_path):
    """Issue 22 item 11, checked by running setup.sh's install logic with pip replaced by echo."""
    import os
    import shutil

    tmp = tmp_path / "checkout"
    try:
        (tmp / "scripts").mkdir(parents=True)
        (tmp / ".venv/bin").mkdir(parents=True)
        shutil.copy(ROOT / "scripts/setup.sh", tmp / "scripts/setup.sh")
        # a fake venv python: `-c import torch` fails, `-m pip ...` prints what it would install
        (tmp / ".venv/bin/python").write_text('#!/bin/sh\n[ "$1" = "-c" ] && exit 1\nshift 2; echo "PIP $*"\n')
        os.chmod(tmp / ".venv/bin/python", 0o755)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp)}
        fake_dot = tmp / "bin"
        fake_dot.mkdir()
        (fake_dot / "dot").write_text("#!/bin/sh\n")
        os.chmod(fake_dot / "dot", 0o755)
        env["PATH"] = f"{fake_dot}:/usr/bin:/bin"

        def run(**extra):
            return subprocess.run(["bash", str(tmp / "scripts/setup.sh")], capture_output=True, text=True,
                                  env={**env, **extra}, timeout=60).stdout

        demo = run()
        assert "PIP install -q -e ." in demo and "[test]" not in demo
        assert "PIP install -q torch==2.14.1 torchvision==0.29.1" in demo
        assert "PIP install -q -e .[test]" in run(EXTRAS="test")
        cpu = run(TORCH_INDEX="https://download.pytorch.org/whl/cpu")
        assert "--index-url https://download.pytorch.org/whl/cpu torch==2.14.1" in cpu
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    makefile = (ROOT / "Makefile").read_text()
    assert "test: setup-test" in makefile and "EXTRAS=test bash scripts/setup.sh" in makefile
    assert "demo: setup\n" in makefile


def test_the_lr_legend_draws_each_sample_edge_across_its_own_row():
    """`--rankdir LR`: each legend row's sample edge runs left to right at its own height (it ran
    up through the labels of the rows above)."""
    import shutil

    import resdsl
    from resdsl.render import render

    if shutil.which("dot") is None:
        pytest.skip("Graphviz dot is not installed")
    d = render(resdsl.graph(SPECS / "cifar_resnet.res", n=1), rankdir="LR")
    layout = json.loads(d.pipe(format="json"))
    pos = {o["name"]: tuple(map(float, o["pos"].split(","))) for o in layout["objects"] if "pos" in o}
    rows = sorted({n.split(".")[1] for n in pos if n.startswith("legend.") and n.count(".") == 2})
    assert len(rows) == 2                                      # identity and zero-pad
    ys = []
    for i in rows:
        (ax, ay), (bx, by) = pos[f"legend.{i}.a"], pos[f"legend.{i}.b"]
        assert bx > ax and ay == by                           # horizontal, left to right
        ys.append(ay)
    assert abs(ys[0] - ys[1]) > 15                            # rows apart (points)


def test_emitted_source_of_trained_layer_scales_keeps_one_class_per_block_definition():
    """`compile --checkpoint -o model.py`: trained γ (different in every block) became each block's
    "init" argument, one class per block; the spec's init is the constructor's, γ the weights'."""
    import torch

    import resdsl

    spec = ("block b(dim) {\n  residual {\n    conv dim k3 bias; relu\n    layer_scale 1e-6\n  }\n}\n"
            "network t(classes = 10) {\n  input 3x8x8\n  stem { conv 8 k3 bias }\n  stage x 3 b(8)\n"
            "  head { avgpool; fc classes }\n}\n")
    net = resdsl.load_spec(spec)
    model = resdsl.compile(spec)
    with torch.no_grad():                                   # as after training: every γ its own
        for i, (name, p) in enumerate(n for n in model.named_parameters() if n[0].endswith("layer_scale")):
            p.fill_(0.1 * (i + 1))
    src = resdsl.emit_source(model, net)
    assert src.count("LayerScale(8, 1e-06") == 1 and "LayerScale(8, 0.1" not in src
    twin = emitted_twin(model, src)
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(twin.eval()(x), model.eval()(x))
