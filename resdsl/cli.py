"""The `resdsl` command line: check, compile (and train, eval, render, profile from subpackages)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from . import limits
from .cli_common import reports_errors, spec_options, split_sets


# Subcommands that import torch or heavy libraries are imported only when run, so that
# `resdsl check` starts fast: name -> "module:attribute".
LAZY_COMMANDS = {
    "train": "resdsl.train.cli:train",
    "eval": "resdsl.train.cli:evaluate",
    "profile": "resdsl.cost.cli:profile",
    "render": "resdsl.render.cli:render",
    "list": "resdsl.zoo.cli:list_cmd",
    "fmt": "resdsl.source.cli:fmt",
    "show": "resdsl.source.cli:show",
    "analyze": "resdsl.analyze.cli:analyze",
    "sweep": "resdsl.analyze.sweep_cli:sweep",
    "runs": "resdsl.train.runs_cli:runs",
    "serve": "resdsl.serve.cli:serve",
}


# One line each for `resdsl --help`, which must not import torch to list them (a test checks that
# each equals the first line of the command's own help).
LAZY_HELP = {
    "train": 'Train the network of SPEC on --data; write a run directory (see --output).',
    "eval": "Score a checkpoint of SPEC on the test split of --data (or --split val: the run's validation split): loss and top-1 accuracy.",
    "profile": 'Cost of SPEC from its graph: parameters, MACs, FLOPs, memory, receptive field; optionally measured.',
    "render": 'Draw SPEC as an architecture diagram: stages, units, layers, shortcuts styled by kind.',
    "list": 'List the zoo: every network in the specs folder with parameters, MACs, input and reference.',
    "fmt": 'Rewrite .res FILES (or every .res under a folder) in the canonical layout; `-`: stdin to stdout.',
    "show": 'Print SPEC resolved: every block with evaluated arguments, every layer with all attributes.',
    "analyze": 'Measure residual behaviour: paths, lesions, shattered gradients, residual norms.',
    "sweep": 'Train SPEC at every --grid setting; table of params, MACs, validation and test accuracy (mean ± std over seeds), time; curves.',
    "runs": 'Tabulate (and plot) run directories: the options that differ between them, validation and test accuracy.',
    "serve": 'Edit a spec in the browser and watch its diagram, costs and errors update as you type.',
}


class LazyGroup(click.Group):
    def format_commands(self, ctx, formatter):
        """The command list from LAZY_HELP for commands not imported yet (no torch for --help)."""
        rows = []
        for name in self.list_commands(ctx):
            if name in LAZY_COMMANDS and name not in self.commands:
                rows.append((name, LAZY_HELP.get(name, "")))
            else:
                cmd = self.get_command(ctx, name)
                if cmd is not None and not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(formatter.width - 6 - max(len(n) for n in self.list_commands(ctx)))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

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
@click.option("--batch-size", type=click.IntRange(1, limits.EXAMPLE_BATCH.value), default=2, show_default=True,
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
