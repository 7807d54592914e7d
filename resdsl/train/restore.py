"""A trained model restored from a run directory or a checkpoint, for eval, analyze, export and resume.

    load_run(path)                      a run directory or checkpoint -> (model, checkpoint dict)
    run_program(run)                    the spec a run was trained from
    run_data(name, path)                the dataset a run was trained on, where it may be taken from the run

A run directory holds its spec as `spec.json` (every file the spec imports, see
frontend/load.py `bundle`), so a run is evaluated or resumed without reading the source folder.
Compiling a spec with its arguments is `resdsl.api.load_model`.
"""
from __future__ import annotations

import glob
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from resdsl.api import load_model, load_program
from resdsl.errors import SpecError
from resdsl.frontend.load import Program, load_bundle
from resdsl.train.checkpoint import load_checkpoint, load_weights
from resdsl.train.data import _paths
from resdsl.train.errors import TrainError
from resdsl.train.grow import grown_model
from resdsl.train.rundir import read_summary

BUNDLE = "spec.json"


def program_from_bundle(doc: Mapping) -> Program:
    """The Program of a bundle document ({"main": key, "files": {key: text}})."""
    if (not isinstance(doc, Mapping) or not isinstance(doc.get("files"), Mapping) or not isinstance(doc.get("main"), str)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in doc["files"].items())):
        raise SpecError("not a resdsl spec bundle (expected {\"main\": NAME, \"files\": {NAME: TEXT, ...}})")
    files = dict(doc["files"])
    return load_bundle(files, doc["main"])


def run_program(run: Path, ck: Mapping | None = None) -> Program | None:
    """The spec a run was trained from: RUN/spec.json, else the checkpoint's copy (older runs)."""
    path = Path(run) / BUNDLE
    if path.is_file():
        try:
            return program_from_bundle(json.loads(path.read_text()))
        except (ValueError, UnicodeDecodeError) as e:
            raise SpecError(f"cannot read {path}: {e}") from None
    if ck and isinstance(ck.get("spec_bundle"), Mapping):
        return program_from_bundle(ck["spec_bundle"])
    if ck and isinstance(ck.get("spec_text"), str) and ck["spec_text"]:
        return spec_of_checkpoint(ck["spec_text"])   # runs written before spec.json: top-level text only
    return None


def spec_of_checkpoint(text: str) -> Program:
    """A checkpoint's spec_text is spec TEXT, never a path: it is loaded as a one-file bundle, so no
    string a checkpoint holds can make resdsl read (and echo) a file the user did not name; its
    imports, if any, must be in the bundle (they are not: a clear error)."""
    return load_bundle({"<checkpoint spec>": text}, "<checkpoint spec>")


def run_data(name: str | None, path) -> str:
    """The dataset a run was trained on, as its checkpoint records it, when the user names none. A
    checkpoint never chooses a file: only a dataset that names no path (`digits`) is taken from it;
    for any other the user must name it with --data (it would read a file, and CIFAR's is a pickle).
    The error names the recorded dataset and, when the run also recorded its data relative to the run
    directory (summary.json `data_from_run`), that path resolved against where the run is now; the
    data file itself is never opened here."""
    name = name or "digits"
    if name == "digits":
        return name
    recorded = name[:200]
    moved = _data_from_run(path, name)
    if moved and moved != recorded and _exists(moved) and not _exists(recorded):
        hint = (f"pass --data {moved} (the recorded data, found relative to the run directory: the runs and "
                f"their data moved together) or another dataset to evaluate it")
    else:
        hint = f"pass --data {recorded} (or another dataset) to evaluate it"
        if moved and moved != recorded:
            hint += f"; relative to the run directory it is --data {moved}"
    raise TrainError(f"{path} was trained on --data {recorded}; a checkpoint never chooses a file to read: {hint}")


def _data_from_run(path, name: str) -> str | None:
    """summary.json's `data_from_run` (paths relative to the run directory) resolved against the run
    directory as it is now, as --data text; None when the run did not record it."""
    p = Path(path).expanduser()
    run = p if p.is_dir() else p.parent
    try:
        rel = read_summary(run).get("data_from_run")
    except TrainError:             # a corrupt summary: no hint, the error still names the recorded data
        return None
    if not isinstance(rel, str) or not rel or len(rel) > 4096:
        return None
    kind, paths = _paths(rel)
    if not paths or kind != _paths(name)[0]:
        return None
    return f"{kind}:{','.join(os.path.normpath(run / q) for q in paths)}"[:200]


def _exists(spec: str) -> bool:
    """Every path (or glob) a --data text names is there: a directory listing, no file is read."""
    paths = _paths(spec)[1]
    return bool(paths) and all(glob.glob(os.path.expanduser(q)) for q in paths)


def load_run(path: str | Path, spec: str | Path | None = None, network: str | None = None,
             args: Mapping[str, Any] | None = None, *, allow_imports: Iterable[str | Path] = ()):
    """A trained model from a run directory (its best.pt) or a checkpoint file: (model, checkpoint).
    The checkpoint is read with weights_only=True (resdsl/train/checkpoint.py)."""
    path = Path(path).expanduser()
    ck_path = path / "best.pt" if path.is_dir() and (path / "best.pt").is_file() else path
    ck = load_checkpoint(ck_path)
    cfg = ck.get("config", {}) if isinstance(ck.get("config"), dict) else {}
    run = ck_path.parent if ck_path.is_file() else ck_path
    prog = load_program(spec, allow_imports) if spec is not None else run_program(run, ck)
    if prog is None:
        raise TrainError(f"{path} holds no spec; name one: resdsl eval SPEC --checkpoint {path}")
    grow = ck.get("grow")
    if isinstance(grow, dict) and args is None:     # a --grow run: the net of its level (train/grow.py)
        model = grown_model(prog, network or cfg.get("network"), (cfg.get("params") or {}), grow)
    else:
        model, _ = load_model(prog, network or cfg.get("network"), (cfg.get("params") or {}) if args is None else args,
                              input_size=cfg.get("input_size"))
    load_weights(model, ck["model"], str(ck_path))
    return model, ck
