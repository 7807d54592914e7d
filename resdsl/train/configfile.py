"""`resdsl train --config run.toml`: every option of `resdsl train` in a TOML file, and the
config.toml each run writes — the options it actually used — so that
`resdsl train --config runs/x/config.toml` trains the same run again.

Keys are the option names with `_` or `-` (`batch_size`, `val-split`), plus `spec`, `network`,
`init` and a `[set]` table of network arguments. Options given on the command line win over the
file; a relative `spec`, `init` or data path is read relative to the file's folder.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from resdsl.train.errors import TrainError

EXTRA = ("spec", "network", "init", "set")        # train options outside TrainConfig
NOT_WRITTEN = ("experiment", "network", "params")  # a rerun gets a new run directory; network/set written apart


def _relative_to(base: Path, value: str) -> str:
    p = Path(value).expanduser()
    return value if p.is_absolute() or not (base / p).exists() else str(base / p)


def _data_relative_to(base: Path, data: str) -> str:
    kind, sep, path = data.partition(":")
    if not sep or not path:
        return data
    return f"{kind}:{','.join(_relative_to(base, p.strip()) for p in path.split(','))}"


def read_config(path: str | Path) -> dict:
    """The file's options as {option: value}; `set` as {name: text}. Unknown keys are refused."""
    import tomllib

    from resdsl.train.config import TrainConfig

    path = Path(path).expanduser()
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise TrainError(f"--config {path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise TrainError(f"--config {path}: not valid TOML ({e})") from None
    fields = set(TrainConfig.model_fields) - {"params"}
    out: dict = {}
    for key, value in doc.items():
        name = key.replace("-", "_")
        if name not in fields and name not in EXTRA:
            import difflib

            near = difflib.get_close_matches(name, sorted(fields | set(EXTRA)), n=1)
            raise TrainError(f"--config {path}: unknown option '{key}'" + (f"; did you mean '{near[0]}'?" if near else ""))
        out[name] = value
    if "set" in out:
        if not isinstance(out["set"], dict):
            raise TrainError(f"--config {path}: [set] must be a table of NAME = value")
        out["set"] = {k: v if isinstance(v, str) else _toml_value(v) for k, v in out["set"].items()}
    base = path.parent
    for key in ("spec", "init"):
        if isinstance(out.get(key), str) and not out[key].startswith(("torchvision:", "timm:")):
            out[key] = _relative_to(base, out[key])
    if isinstance(out.get("data"), str):
        out["data"] = _data_relative_to(base, out["data"])
    return out


def merge(options: dict, file_options: dict) -> dict:
    """Command-line options (None: not given) over the file's."""
    merged = dict(options)
    for k, v in file_options.items():
        if k not in EXTRA and merged.get(k) is None:
            merged[k] = v
    return merged


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not math.isfinite(v):
            raise TrainError(f"cannot write {v} to TOML")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)              # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TrainError(f"cannot write {type(v).__name__} to TOML")


def config_text(cfg: dict, spec: str | None, init: str | None) -> str:
    """config.toml: the options a run used (every TrainConfig field), readable by read_config."""
    lines = ["# The options this run used: resdsl train --config THIS_FILE trains it again",
             "# (into a new run directory; options on the command line win over these)."]
    if spec is not None:
        lines.append(f"spec = {_toml_value(spec)}")
    if cfg.get("network") is not None:
        lines.append(f"network = {_toml_value(cfg['network'])}")
    if init is not None:
        lines.append(f"init = {_toml_value(init)}")
    for k in sorted(cfg):
        if k in NOT_WRITTEN or k == "world_size":
            continue
        if cfg[k] is None:
            lines.append(f"# {k} = (not set)")
        else:
            lines.append(f"{k} = {_toml_value(cfg[k])}")
    if cfg.get("params"):
        lines += ["", "[set]"] + [f"{k} = {_toml_value(str(v))}" for k, v in cfg["params"].items()]
    return "\n".join(lines) + "\n"
