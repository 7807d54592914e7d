"""`resdsl profile`: static cost tables, a cross-check against flop_counter, measured timings, --vs."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from resdsl.cli_common import reports_errors, spec_options, split_sets

from .memory import BYTES
from .tables import LEVELS


@click.command()
@spec_options
@click.option("--level", type=click.Choice(LEVELS), default="stage", show_default=True,
              help="Rows per network, stage (stem, stages, transitions, head), residual block or layer.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Batch size for activation memory and for --run.")
@click.option("--precision", type=click.Choice(list(BYTES)), default="fp32", show_default=True,
              help="Bytes per activation; with --run, bf16/fp16 run under torch.autocast.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of tables.")
@click.option("--check", "cross_check", is_flag=True,
              help="Compare the graph's MACs with torch.utils.flop_counter on the compiled model (exit 1 if they differ).")
@click.option("--run", is_flag=True, help="Measure forward and forward+backward latency, throughput, peak memory.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True, help="Timed steps (median).")
@click.option("--warmup", type=click.IntRange(min=0), default=2, show_default=True, help="Untimed steps first.")
@click.option("--channels-last", is_flag=True, help="Run in channels-last memory format.")
@click.option("--compile", "use_compile", is_flag=True, help="Run through torch.compile.")
@click.option("--fuse", "fused", is_flag=True,
              help="With --run: measure the inference form (resdsl.fuse: BN folded, linear branches merged).")
@click.option("--vs", "vs_spec", type=click.Path(dir_okay=False), default=None,
              help="A second spec to print side by side, with B/A ratios; --run times both interleaved.")
@click.option("--vs-set", "vs_sets", multiple=True, metavar="NAME=VALUE", help="--set for the --vs spec.")
@click.option("--vs-network", default=None, help="Which network of the --vs file (default: the first).")
@reports_errors
def profile(spec, network, sets, allow_imports, level, batch_size, precision, as_json, cross_check, run, device, repeats,
            warmup, channels_last, use_compile, vs_spec, vs_sets, vs_network, fused):
    """Cost of SPEC from its graph: parameters, MACs, FLOPs, memory, receptive field; optionally measured."""
    from resdsl.api import graph_of, load_spec

    from .static import SCHEMA, profile as static_profile

    specs = [(spec, network, split_sets(sets))]
    if vs_spec:
        specs.append((vs_spec, vs_network, split_sets(vs_sets)))
    elif vs_sets or vs_network:
        raise click.UsageError("--vs-set and --vs-network need --vs")
    if fused and not run:
        raise click.UsageError("--fuse changes what --run measures: add --run")
    nets = [load_spec(Path(s), n, allow_imports=allow_imports, **p) for s, n, p in specs]
    graphs = [graph_of(net) for net in nets]
    docs = [static_profile(net, g, level, batch_size, precision) for net, g in zip(nets, graphs)]
    for d, (s, _, _) in zip(docs, specs):
        d["spec"] = str(s)
    if cross_check:
        from .crosscheck import cross_check as check_macs
        for d, m, g in zip(docs, _compile(nets, graphs, meta=True), graphs):
            d["check"] = check_macs(m, g)
    if run:
        _measure(docs, _compile(nets, graphs, fused=fused), nets, device, batch_size, precision, channels_last, use_compile,
                 repeats, warmup)
    if as_json:
        out = docs[0] if len(docs) == 1 else _vs_doc(SCHEMA, *docs)
        click.echo(json.dumps(out, indent=2))
    else:
        _print(docs)
    if any(not d.get("check", {"ok": True})["ok"] for d in docs):
        sys.exit(1)


def _compile(nets, graphs, meta: bool = False, fused: bool = False) -> list:
    """The compiled models; on the meta device (shapes only, no memory, no arithmetic) for --check;
    in inference form (resdsl.fuse) with --fuse."""
    import contextlib

    import torch

    from resdsl.backend.compile import compile_graph

    with torch.device("meta") if meta else contextlib.nullcontext():
        models = [compile_graph(g, force=meta) for g in graphs]
    if fused:
        from resdsl.backend.fuse import fuse
        models = [fuse(m) for m in models]
    return models


def _measure(docs, models, nets, device, batch_size, precision, channels_last, use_compile, repeats, warmup):
    import torch

    from .measure import Settings, measure

    if device == "cuda" and not torch.cuda.is_available():
        raise click.UsageError("--device cuda: torch sees no CUDA device on this machine")
    settings = Settings(device, batch_size, precision, channels_last, use_compile, repeats, warmup)
    for d, r in zip(docs, measure(models, [net.input_shape for net in nets], settings)):
        d["measured"] = r


def _vs_doc(schema: str, a: dict, b: dict) -> dict:
    from .report import ratios

    return {"schema": schema + "+vs", "a": a, "b": b, "ratios_b_over_a": ratios(a, b)}


def _print(docs: list[dict]) -> None:
    from rich.console import Console

    from . import report

    console = Console(width=max(160, Console().width))      # a pipe gets 80 columns otherwise
    for d in docs:
        console.print(report.profile_table(d))
        if "check" in d:
            console.print(report.check_table(d["check"]))
            console.print("[green]MACs agree[/]" if d["check"]["ok"] else "[red]MACs differ[/]")
        if "measured" in d:
            console.print(report.measured_table(d))
    if len(docs) == 2:
        console.print(f"A: {report.title(docs[0])}\nB: {report.title(docs[1])}")
        if docs[0]["level"] != "network":
            console.print(report.vs_rows_table(*docs))
        console.print(report.vs_table(*docs))
