"""The `resdsl` command line: check, compile (and train, eval, render, profile from subpackages)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .cli_common import reports_errors, spec_options, split_sets


# Subcommands that import torch or heavy libraries are imported only when run, so that
# `resdsl check` starts fast: name -> "module:attribute".
LAZY_COMMANDS = {
    "train": "resdsl.train.cli:train",
    "eval": "resdsl.train.cli:evaluate",
    "profile": "resdsl.cost.cli:profile",
    "render": "resdsl.render.cli:render",
    "list": "resdsl.zoo.cli:list_cmd",
    "fmt": "resdsl.source_cli:fmt",
    "show": "resdsl.source_cli:show",
    "analyze": "resdsl.analyze.cli:analyze",
    "sweep": "resdsl.analyze.sweep_cli:sweep",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx, name):
        if name in LAZY_COMMANDS and name not in self.commands:
            import importlib

            module, _, attr = LAZY_COMMANDS[name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        """Ctrl-C anywhere in start-up (a lazy command importing torch) or in a command: exit 130
        with one word, as reports_errors does inside commands (click alone would say 'Aborted!', 1)."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="resdsl")
def main():
    """resdsl: describe residual networks in .res specs; check, draw, compile, train and profile them."""


@main.command()
@spec_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@reports_errors
def check(spec, network, sets, allow_imports, as_json):
    """Parse and validate SPEC; print a per-stage table of shapes, parameters and MACs."""
    from .api import graph_of, load_spec
    from .cost.static import jsonable
    from .cost.tables import drop_path, drop_text, human, section_rows, shape_str
    from .ir.shapes import totals

    net = load_spec(Path(spec), network, allow_imports=allow_imports, **split_sets(sets))
    g = graph_of(net)
    rows = section_rows(g)
    params, macs = totals(g)
    drops = [drop_path(g, r) for r in rows]          # stochastic depth: a column only where a unit drops
    if as_json:
        sections = [{**r.as_dict(), **({"drop_path": list(d)} if d else {})} for r, d in zip(rows, drops)]
        doc = {"network": net.name, "args": jsonable(net.args),
               "input_shape": list(net.input_shape), "output_shape": list(g.nodes[g.graph["output"]]["out_shape"]),
               "total_params": params, "total_macs": macs, "sections": sections}
        click.echo(json.dumps(doc, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    args = ", ".join(f"{k}={jsonable(v)}" for k, v in net.args.items())
    table = Table(title=f"{net.name}({args})  input {shape_str(net.input_shape)}", title_justify="left")
    extra = [("drop path", "right")] if any(drops) else []
    for col, just in (("section", "left"), ("blocks", "left"), ("output", "right"),
                      ("params", "right"), ("MACs", "right"), *extra):
        table.add_column(col, justify=just)
    for r, d in zip(rows, drops):
        table.add_row(r.name, r.what, shape_str(r.out_shape), f"{r.params:,}", human(r.macs),
                      *([drop_text(d)] if extra else []))
    table.add_section()
    table.add_row("total", "", shape_str(g.nodes[g.graph["output"]]["out_shape"]), f"{params:,}", human(macs),
                  *([""] if extra else []))
    Console(width=max(100, Console().width)).print(table)


@main.command("compile")
@spec_options
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Where to write; the format follows the extension: .pt2 (torch.export), .onnx, .safetensors, .py (PyTorch source).")
@click.option("--batch-size", type=click.IntRange(1), default=2, show_default=True,
              help="Batch size of the example input (the exported batch is dynamic either way).")
@click.option("--checkpoint", type=click.Path(exists=True), default=None,
              help="A run directory or checkpoint: export its trained weights, input normalisation inside.")
@click.option("--force", is_flag=True, help="Build even a network over the memory budget.")
@click.option("--fuse", "fused", is_flag=True,
              help="Export the inference form: BN folded, linear branches merged (resdsl.fuse).")
@reports_errors
def compile_cmd(spec, network, sets, allow_imports, output, batch_size, checkpoint, force, fused):
    """Compile SPEC (or a trained run with --checkpoint) and write it in the format of -o's extension."""
    from .api import load_program
    from .exporters import check_target, export

    check_target(output)                 # before the expensive part
    prog = load_program(Path(spec), allow_imports)
    args = split_sets(sets)
    model = export(prog, output, batch_size=batch_size, checkpoint=checkpoint, network=network, force=force,
                   fused=fused, **args)
    n = sum(p.numel() for p in model.parameters())
    how = {".pt2": f"torch.export.load('{output}').module()", ".onnx": f"onnxruntime.InferenceSession('{output}')",
           ".safetensors": f"safetensors.torch.load_file('{output}')",
           ".py": f"build() from '{output}' (plain PyTorch source)"}[Path(output).suffix]
    raw = "raw sequence values" if len(model.input_shape) == 2 else "raw pixels 0..255"
    trained = f", trained weights of {checkpoint} (input: {raw})" if checkpoint else ""
    if checkpoint and Path(output).suffix == ".py":
        weights = Path(output).with_suffix(".safetensors")
        trained = (f", trained weights of {checkpoint} in {weights}, which build() loads "
                   f"(input: {raw}, normalisation inside)")
    elif Path(output).suffix == ".py":
        trained = ", untrained (PyTorch's default initialisation)"
    click.echo(f"wrote {output}: {model.spec_name}, {n:,} parameters, input {tuple(model.input_shape)}{trained}; "
               f"load with {how}")


# -- commands from subpackages --
# (registered lazily in LAZY_COMMANDS above)
