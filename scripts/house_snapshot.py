"""Snapshot every zoo network's outputs, to show a refactor changes no behaviour.

    python scripts/house_snapshot.py OUT_DIR [NAME ...]

For every zoo network at its default arguments it writes, under OUT_DIR/NAME/: `check --json`,
`profile --json` (stage and block levels), `show`, the render .dot at block and layer level
(and with --fuse), the emitted PyTorch source (`compile -o model.py`), and, for networks of at
most 30M parameters (as tests/zoo/test_zoo.py), the outputs of the compiled and the fused model on a
seeded input with seeded BN statistics, plus the fuse report. Compare two snapshots with
`python scripts/house_snapshot.py --diff A B`.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
from click.testing import CliRunner

import resdsl
from resdsl.cli import main
from resdsl.zoo import SPECS
from resdsl.zoo.catalog import zoo

MAX_COMPILED = 30_000_000


def _cli(args: list[str]) -> str:
    r = CliRunner().invoke(main, args)
    return f"exit {r.exit_code}\n{r.output}"


def _seed_stats(model: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def snapshot(entry, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    spec, net = str(entry.spec), ["--network", entry.name]
    (out / "check.json").write_text(_cli(["check", spec, *net, "--json"]))
    for level in ("stage", "block"):
        (out / f"profile_{level}.json").write_text(_cli(["profile", spec, *net, "--json", "--level", level]))
    (out / "show.res").write_text(_cli(["show", spec, *net]))
    with tempfile.TemporaryDirectory() as tmp:
        for level in ("block", "layer"):
            for fused in ((), ("--fuse",)):
                name = f"render_{level}{'_fused' if fused else ''}.dot"
                msg = _cli(["render", spec, *net, "--level", level, "-o", f"{tmp}/{name}", *fused])
                dot = Path(tmp, name).read_text() if Path(tmp, name).exists() else ""
                (out / name).write_text(msg.replace(tmp, "TMP") + dot)
        if entry.params <= MAX_COMPILED:
            msg = _cli(["compile", spec, *net, "-o", f"{tmp}/model.py"])
            (out / "model.py").write_text(msg.replace(tmp, "TMP") + Path(tmp, "model.py").read_text())
    if entry.params > MAX_COMPILED:
        return
    torch.manual_seed(0)
    model = resdsl.compile(entry.spec, entry.name).eval()
    _seed_stats(model)
    x = torch.randn(2, *entry.input_shape, generator=torch.Generator().manual_seed(2))
    fused, rep = resdsl.fuse(model, report=True)
    with torch.no_grad():
        torch.save({"y": model(x), "fused": fused(x)}, out / "outputs.pt")
    (out / "fuse_report.txt").write_text(str(rep) + f"\n{fused}\n")


def _text(p: Path) -> str:
    """The file's text with the spec folder's location (which differs between trees) left out."""
    import re

    return re.sub(r"[^\s\"']*/resdsl/zoo/specs/", "SPECS/", p.read_text())


def diff(a: Path, b: Path) -> int:
    import difflib

    bad = 0
    names = sorted({p.relative_to(a) for p in a.rglob("*") if p.is_file()} |
                   {p.relative_to(b) for p in b.rglob("*") if p.is_file()})
    for rel in names:
        pa, pb = a / rel, b / rel
        if not (pa.exists() and pb.exists()):
            print(f"only in {'A' if pa.exists() else 'B'}: {rel}")
            bad += 1
        elif rel.suffix == ".pt":
            ta, tb = torch.load(pa), torch.load(pb)
            for k in ta:
                if not torch.equal(ta[k], tb[k]):
                    print(f"{rel}[{k}]: max |diff| {(ta[k] - tb[k]).abs().max().item():.3g}")
                    bad += 1
        elif _text(pa) != _text(pb):
            bad += 1
            lines = difflib.unified_diff(_text(pa).splitlines(), _text(pb).splitlines(), str(pa), str(pb),
                                         lineterm="", n=1)
            print("\n".join(list(lines)[:30]))
    print(f"{len(names)} files compared, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1] == "--diff":
        sys.exit(diff(Path(sys.argv[2]), Path(sys.argv[3])))
    root, only = Path(sys.argv[1]), set(sys.argv[2:])
    for e in zoo(SPECS):
        if not only or e.name in only:
            print(e.name, flush=True)
            snapshot(e, root / e.name)
