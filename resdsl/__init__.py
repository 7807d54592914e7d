"""resdsl: a declarative language for residual networks, and its compiler to PyTorch."""
TYPE_CHECKING = False              # typing.TYPE_CHECKING without importing typing (checkers know the idiom)
if TYPE_CHECKING:
    from .api import compile, graph, graph_of, load_program, load_spec, parse_value
    from .errors import SpecError

__version__ = "0.1.0"

# The API's names, imported on first use: `import resdsl` runs no heavy import (pydantic, networkx,
# lark), so the `resdsl` command's entry (resdsl/__main__.py) holds every one of them inside its
# Ctrl-C guard, and `python -m resdsl`, the Pygments lexer and `resdsl.cli` load only what they use.
_LAZY = {"compile": ".api", "graph": ".api", "graph_of": ".api", "load_program": ".api", "load_spec": ".api",
         "parse_value": ".api", "SpecError": ".errors"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY})


def transfer_weights(src, dst, **kwargs):
    """Copy parameters and buffers from a structurally equal model (see resdsl.backend.transfer)."""
    from .backend.transfer import transfer_weights as _transfer

    return _transfer(src, dst, **kwargs)


def transfer_partial(src, dst):
    """Copy what fits from `src` into `dst` (same kinds and shapes, in structural order) and return
    a report of what was copied, shape-mismatched and skipped (see resdsl.backend.finetune)."""
    from .backend.finetune import transfer_partial as _partial

    return _partial(src, dst)


def features(model, names=None):
    """A module returning the feature maps of the named parts (`stages.2`, ...; default: every stage)."""
    from .backend.finetune import features as _features

    return _features(model, names)


def export(model_or_spec, path, **kwargs):
    """Write a model, spec or trained run to `path`; the extension picks the format (resdsl/exporters.py)."""
    from .exporters import export as _export

    return _export(model_or_spec, path, **kwargs)


def emit_source(model, net=None) -> str:
    """Standalone PyTorch source (no resdsl import) of a compiled network (see resdsl.backend.emit);
    given the explicit net (resdsl.load_spec), block classes are named after their definitions."""
    from .backend.emit import emit_source as _emit

    return _emit(model, net)


def fuse(model, report=False, **kwargs):
    """An equivalent eval-mode module with BN folded and linear branches merged (see resdsl.backend.fuse)."""
    from .backend.fuse import fuse as _fuse

    return _fuse(model, report=report, **kwargs)


__all__ = ["export", "load_program", "compile", "emit_source", "fuse", "graph", "graph_of", "load_spec", "parse_value", "transfer_weights",
           "transfer_partial", "features", "SpecError"]
