"""Shell completion (click): spec files and zoo specs for SPEC, network parameters for `--set`.

Enable with `eval "$(_RESDSL_COMPLETE=bash_source resdsl)"` (zsh_source, fish_source likewise).
Completion never raises: a spec that does not parse completes nothing.
"""
from __future__ import annotations

from pathlib import Path

from click.shell_completion import CompletionItem


def complete_spec(ctx, param, incomplete: str) -> list[CompletionItem]:
    """Zoo specs (`specs/resnet.res`) and .res files under the current folder matching the prefix."""
    from ..zoo import SPECS

    found = {str(p) for p in Path(".").glob(f"{incomplete}*.res")}
    found |= {str(p) for p in Path(".").glob(f"{incomplete}*/*.res")}
    found |= {str(p) for p in SPECS.glob("*.res") if p.name.startswith(Path(incomplete).name)}
    return [CompletionItem(p) for p in sorted(found)] or [CompletionItem(incomplete, type="file")]


def complete_set(ctx, param, incomplete: str) -> list[CompletionItem]:
    """`--set NAME=`: the parameters of the chosen network of the spec given before."""
    # while completing an option, click leaves the positional SPEC unparsed in ctx.args
    spec = ctx.params.get("spec") or next((a for a in ctx.args if a.endswith(".res")), None)
    if not spec or "=" in incomplete:
        return []
    try:
        from ..frontend.load import load

        program = load(spec)
        net = program.network(ctx.params.get("network"))
    except Exception:          # completion must never fail the shell: a bad spec completes nothing
        return []
    return [CompletionItem(f"{p.name}=", help="network parameter") for p in net.params
            if p.name.startswith(incomplete)]
