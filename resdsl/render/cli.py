"""`resdsl render SPEC -o OUT.{svg,png,pdf,dot}`: draw a spec with Graphviz."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..atomic import write_atomic
from ..cli_common import reports_errors, spec_options, split_sets
from ..errors import SpecError
from .levels import LEVELS

BIG = 600          # boxes beyond which a drawing is slow (seconds per thousand) and hard to read
INSTALL_HINT = ("install Graphviz, e.g. `apt-get install graphviz` (Debian/Ubuntu) or "
                "`brew install graphviz` (macOS)")


@click.command()
@spec_options
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Where to draw; the format follows the extension: .svg, .png, .pdf or .dot.")
@click.option("--level", type=click.Choice(LEVELS), default=None,
              help="Detail: network (stages as boxes), stage (repeated units collapsed ×N), block "
                   "(every unit), layer (every op). Default: stage, or layer with --focus.")
@click.option("--focus", metavar="PATH", default=None,
              help="Draw only one stage, block or section, e.g. stages.1 or stages.0.blocks.0.")
@click.option("--rankdir", type=click.Choice(["TB", "LR"], case_sensitive=False), default="TB",
              show_default=True, help="Top to bottom or left to right.")
@click.option("--costs", is_flag=True, help="Show parameter counts and MACs on every node.")
@click.option("--fuse", "fused", is_flag=True,
              help="Draw the inference form (resdsl.fuse): BN folded into convs, linear branches merged.")
@reports_errors
def render(spec, network, sets, allow_imports, output, level, focus, rankdir, costs, fused):
    """Draw SPEC as an architecture diagram: stages, units, layers, shortcuts styled by kind."""
    import graphviz

    from ..api import graph
    from . import FORMATS, level_for, to_dot, view

    out = Path(output)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise click.BadParameter(f"cannot tell the format of '{output}': use .svg, .png, .pdf or .dot",
                                 param_hint="'-o'")
    if not out.parent.is_dir():
        raise SpecError(f"cannot write '{output}': folder {out.parent} does not exist")
    g = graph(Path(spec), network, allow_imports=allow_imports, **split_sets(sets))
    if fused:
        from ..backend.fuse_graph import inference_graph
        g, _ = inference_graph(g)
    drawn = view(g, level_for(level, focus), focus)
    boxes = len(drawn.nodes)
    if boxes > BIG:
        click.echo(f"note: drawing {boxes:,} boxes, which takes a while and is hard to read; "
                   "--level stage, or --focus on one stage or block, draws less", err=True)
    dot = to_dot(drawn, rankdir=rankdir.upper(), show_cost=costs)
    if fmt == "dot":
        data = dot.source.encode("utf-8")
    else:
        if fmt == "png":
            dot.attr(dpi="144")
        try:
            data = dot.pipe(format=fmt)
        except (graphviz.ExecutableNotFound, graphviz.CalledProcessError) as e:
            _no_dot(e, out, dot.source)
    write_atomic(out, lambda tmp: Path(tmp).write_bytes(data))
    click.echo(f"wrote {output} ({drawn.level} level, {boxes} boxes)")


def _no_dot(e: Exception, out: Path, source: str) -> None:
    """Keep the drawing as DOT text and say how to get the `dot` program; exit non-zero."""
    import graphviz

    dot_path = out.with_suffix(".dot")
    if dot_path.exists():               # never replace a file the user did not name
        dot_path = Path(f"{out}.resdsl.dot")
        if dot_path.exists():
            click.echo(f"error: cannot draw {out}: Graphviz `dot` is unavailable ({e}); {out.with_suffix('.dot')} "
                       f"and {dot_path} exist already, so no DOT text was written\nnote: {INSTALL_HINT}", err=True)
            sys.exit(1)
    write_atomic(dot_path, lambda tmp: Path(tmp).write_text(source, encoding="utf-8"))
    if isinstance(e, graphviz.ExecutableNotFound):
        click.echo(f"error: cannot draw {out}: the Graphviz program `dot` was not found on PATH\n"
                   f"note: wrote the drawing as DOT text to {dot_path}\n"
                   f"note: {INSTALL_HINT}; then `dot -T{out.suffix.lstrip('.')} {dot_path} -o {out}`",
                   err=True)
    else:
        click.echo(f"error: Graphviz `dot` failed to draw {out}: {e}\n"
                   f"note: wrote the drawing as DOT text to {dot_path}", err=True)
    sys.exit(1)
