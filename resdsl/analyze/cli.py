"""`resdsl analyze paths|lesion|shattering|norms` and `resdsl sweep`: a rich table, --json, -o FIGURE."""
from __future__ import annotations

import json
import shlex

import click

from ..errors import SpecError
from ..cli_common import print_table
from ..cli_common import network_option, reports_errors, sets_option

CHECKPOINT = click.option("--checkpoint", type=click.Path(exists=True), help="A run directory (its best.pt) or a checkpoint file.")
LIMIT = click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True,
                     help="Test images used (the first ones of the test split).")
DATA = click.option("--data", default=None, help="Dataset to measure on (default: the run's).")
JSON = click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
FIGURE = click.option("-o", "--output", "figure", type=click.Path(dir_okay=False),
                      help="Write the figure here (.png or .svg).")


SHATTERING_DEPTHS = ("n", "1,2,4,8")           # examples in help and errors: the parameter, its values
HESSIAN_DEPTHS = ("layers", "2,4,6")


def FAMILY(depth_param: str, depths: str):   # noqa: N802  (a decorator, named like the options above)
    """SPEC, its network and --set, more families (--vs), and the depths to build each at."""
    opts = [click.argument("spec", type=click.Path(exists=True, dir_okay=False)),
            network_option(),
            sets_option(),
            click.option("--vs", "vs", multiple=True, metavar="'SPEC [NAME=VALUE ...]'",
                         help="Another family to compare (repeatable)."),
            click.option("--depth-param", default=None, help=f"The parameter that sets depth (e.g. {depth_param})."),
            click.option("--depths", default=None, help=f"Values of --depth-param, e.g. {depths}.")]

    def apply(fn):
        for opt in reversed(opts):
            fn = opt(fn)
        return fn
    return apply


def _sets(sets: tuple[str, ...]) -> dict:
    from ..api import split_sets

    return split_sets(sets)


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SpecError(f"{what} expects integers like 1,2,4; got '{text}'") from None


def _emit(doc, as_json: bool, figure: str | None, draw) -> None:
    if figure:
        draw(figure)
    if as_json:
        click.echo(json.dumps(doc, indent=2))


@click.group()
def analyze():
    """Measure residual behaviour: paths, lesions, shattered gradients, residual norms."""


@analyze.command()
@click.argument("spec", required=False, type=click.Path(exists=True, dir_okay=False))
@network_option()
@sets_option()
@CHECKPOINT
@click.option("--gradients", is_flag=True, help="Also sample gradient by path length (at init, BN calibrated on the inputs, without --checkpoint).")
@click.option("--lengths", default=None, help="Path lengths to sample, e.g. 0,2,4 [all].")
@click.option("--draws", type=click.IntRange(1, 1000), default=3, show_default=True, help="Draws per length.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=16, show_default=True, help="Images per draw.")
@DATA
@JSON
@FIGURE
@reports_errors
def paths(spec, network, sets, checkpoint, gradients, lengths, draws, limit, data, as_json, figure):
    """Paths per length of the unrolled network (Veit et al. 2016); with --checkpoint, gradient per length."""
    from .common import check_figure_path
    from .paths import count_paths

    check_figure_path(figure)
    g, model, x, y = _paths_inputs(spec, network, sets, checkpoint, gradients, limit, data)
    pc = count_paths(g)
    doc = pc.as_dict()
    if model is not None:
        from .gradients import gradient_by_length

        ks = _ints(lengths, "--lengths") if lengths else None
        doc["gradient"] = gradient_by_length(model, g, x, y, ks, draws).as_dict()
        doc["gradient"]["source"] = checkpoint or "initialisation"
    from .plots import paths_figure

    _emit(doc, as_json, figure, lambda p: paths_figure(doc, p))
    if not as_json:
        _paths_table(doc)


def _paths_inputs(spec, network, sets, checkpoint, gradients, limit, data):
    """(graph, model or None, images, labels) for `analyze paths`."""
    from .. import api

    if checkpoint:
        from .common import load_run

        tr = load_run(checkpoint, limit, data)
        return tr.graph, tr.model, tr.x, tr.y
    if spec is None:
        raise SpecError("analyze paths needs SPEC or --checkpoint RUN")
    net = api.load_spec(spec, network, **_sets(sets))
    g = api.graph_of(net)
    if not gradients:
        return g, None, None, None
    import torch

    torch.manual_seed(0)
    from .common import calibrate_bn

    model = api.model_of(net, g)
    shape = tuple(model.input_shape)
    x = torch.randn(limit, *shape)
    return g, calibrate_bn(model, x), x, torch.randint(0, model.num_classes, (limit,))


def _paths_table(doc: dict) -> None:
    grad = doc.get("gradient", {})
    routes = grad.get("routes", {})
    # a route takes a branch whole: where branches have parallel layers inside, it holds several paths
    by_route = any(routes.get(k, c) != c for k, c in doc["counts"].items())
    rows = []
    for k, c in doc["counts"].items():
        row = [k, f"{c:,}", f"{c / doc['total_paths']:.3g}"]
        if by_route:
            row.append(f"{routes[k]:,}" if k in routes else "")
        if grad:
            pp = grad["per_path_gradient"].get(k)
            row += ["" if pp is None else f"{pp:.3g}", "" if pp is None else f"{grad['total_gradient'][k]:.3g}"]
        rows.append(row)
    cols = ["length", "paths", "fraction"] + (["routes"] if by_route else []) + \
        ([f"grad/{'route' if by_route else 'path'}", "total grad"] if grad else [])
    print_table(f"{doc['network']}: {doc['blocks']} blocks, {doc['total_paths']:,} paths, mean length "
                f"{doc['mean_length']:.2f}", cols, rows)


@analyze.command()
@click.argument("run", required=False, type=click.Path(exists=True))
@click.option("--checkpoint", type=click.Path(exists=True), help="A trained run (directory or .pt); or give it as RUN.")
@click.option("--vs", "vs", type=click.Path(exists=True), help="A second run, side by side (e.g. the plain net).")
@click.option("--max-k", type=click.IntRange(1, 1000), default=5, show_default=True, help="Most blocks deleted at once.")
@click.option("--draws", type=click.IntRange(1, 1000), default=10, show_default=True, help="Random draws per k.")
@LIMIT
@DATA
@JSON
@FIGURE
@reports_errors
def lesion(run, checkpoint, vs, max_k, draws, limit, data, as_json, figure):
    """Test accuracy after deleting blocks and swapping adjacent ones (Veit et al. 2016): RUN, a
    run directory or checkpoint (or --checkpoint); a ViT's attention and MLP units alike."""
    from .common import check_figure_path, load_run
    from .lesion import lesion_study
    from .plots import lesion_figure

    if run and checkpoint:
        raise SpecError(f"lesion: give the run once, as RUN or --checkpoint, not both ({run}, {checkpoint})")
    checkpoint = run or checkpoint
    if not checkpoint:
        raise SpecError("lesion needs a trained run: resdsl analyze lesion RUN (a run directory or its best.pt)")
    check_figure_path(figure)
    docs = []
    for run in filter(None, (checkpoint, vs)):
        tr = load_run(run, limit, data)
        docs.append(lesion_study(tr.model, tr.graph, tr.x, tr.y, max_k, draws, source=tr.source).as_dict())
    labels = [d["source"] for d in docs]
    _emit(docs if vs else docs[0], as_json, figure, lambda p: lesion_figure(docs, labels, p))
    if not as_json:
        for d in docs:
            _lesion_table(d)


def _lesion_table(d: dict) -> None:
    base = d["baseline_acc"]
    rows = [["intact", f"{base:.2%}", ""]]
    units, losses = d.get("units", {}), d.get("single_deletion_loss", {})
    rows[0] += [f"{d['baseline_loss']:.4f}"] if "baseline_loss" in d else [""]
    rows += [[f"delete {b}" + (f" ({units[b]})" if b in units else ""), f"{a:.2%}", f"{a - base:+.2%}",
              f"{losses[b]:.4f}" if b in losses else ""] for b, a in d["single_deletion_acc"].items()]
    rows += [[f"delete {k} random (±std)", f"{v['mean']:.2%} ± {v['std']:.2%}", f"{v['mean'] - base:+.2%}", ""]
             for k, v in d["random_deletion_acc"].items()]
    rows += [[f"swap {p}", f"{a:.2%}", f"{a - base:+.2%}", ""] for p, a in d["adjacent_swap_acc"].items()]
    rows += [[f"kept {b}", "", why, ""] for b, why in d["not_lesioned"].items()]
    print_table(f"lesion: {d['source']}", ["change", "test accuracy", "vs intact", "test loss"], rows)


@analyze.command()
@FAMILY(*SHATTERING_DEPTHS)
@CHECKPOINT
@click.option("--points", type=click.IntRange(8, 4096), default=128, show_default=True, help="Inputs on the line.")
@click.option("--draws", type=click.IntRange(1, 100), default=4, show_default=True, help="Random lines and read-outs.")
@JSON
@FIGURE
@reports_errors
def shattering(spec, network, sets, vs, depth_param, depths, checkpoint, points, draws, as_json, figure):
    """Gradient autocorrelation along a line of inputs, per depth (Balduzzi et al. 2017)."""
    from .common import check_figure_path
    from .plots import shattering_figure
    from .shattering import measure

    check_figure_path(figure)
    _check_depths(depth_param, depths, *SHATTERING_DEPTHS)
    if checkpoint:
        from .common import load_run

        tr = load_run(checkpoint, 1)
        results = [measure(tr.model, tr.source, _depth(tr.graph), points, draws).as_dict()]
    else:
        results = [_measure_family(s, network, p, depth_param, v, points, draws)
                   for s, p, v in _grid(spec, sets, vs, depths)]
    _emit(results, as_json, figure, lambda p: shattering_figure(results, p))
    if not as_json:
        print_table("shattered gradients at initialisation" if not checkpoint else f"shattered gradients: {checkpoint}",
                    ["network", "depth", "C(1)", "C(4)", "C(16)"],
                    [[r["label"], r["depth"], f"{r['corr_lag1']:.3f}"] +
                     [f"{r['autocorr'][k]:.3f}" if len(r["autocorr"]) > k else "" for k in (4, 16)] for r in results])


def _family(text: str) -> tuple[str, dict]:
    """`--vs 'specs/x.res skip=none'` -> (path, {skip: none})."""
    from pathlib import Path

    parts = shlex.split(text)
    if not parts or not Path(parts[0]).is_file():
        raise SpecError(f"--vs expects 'SPEC [NAME=VALUE ...]' with an existing SPEC file; got '{text}'")
    return parts[0], _sets(tuple(parts[1:]))


def _check_depths(depth_param, depths, example_param: str, example_depths: str) -> None:
    if bool(depth_param) != bool(depths):
        raise SpecError(f"--depth-param and --depths go together, e.g. --depth-param {example_param} "
                        f"--depths {example_depths}")


def _grid(spec, sets, vs, depths) -> list[tuple]:
    """(spec, parameters, depth) for the family of SPEC and each --vs family, at every --depths value."""
    families = [(spec, _sets(sets))] + [_family(v) for v in vs]
    values = _ints(depths, "--depths") if depths else [None]
    return [(s, p, v) for s, p in families for v in values]


def _depth(g) -> int:
    from .shattering import weighted_depth

    return weighted_depth(g)


def _member(spec, network, params, depth_param, value):
    """One member of a family at depth `value`, built after seeding 0: (graph, model, label)."""
    import torch

    from .. import api

    if depth_param:
        params = {**params, depth_param: value}
    torch.manual_seed(0)
    net = api.load_spec(spec, network, **params)
    g = api.graph_of(net)
    model = api.model_of(net, g)
    shown = " ".join(f"{k}={getattr(v, 'name', v)}" for k, v in params.items() if k != depth_param)
    return g, model, f"{g.graph['name']} {shown}".strip()


def _measure_family(spec, network, params, depth_param, value, points, draws) -> dict:
    import torch

    from .common import calibrate_bn
    from .shattering import measure

    g, model, label = _member(spec, network, params, depth_param, value)
    calibrate_bn(model, torch.randn(32, *model.input_shape))   # BN as at the first training step
    return measure(model, label, _depth(g), points, draws).as_dict()


@analyze.command()
@click.option("--checkpoint", type=click.Path(exists=True), required=True, help="A trained run (directory or .pt).")
@click.option("--vs", "vs", type=click.Path(exists=True), help="A second run, side by side.")
@LIMIT
@DATA
@JSON
@FIGURE
@reports_errors
def norms(checkpoint, vs, limit, data, as_json, figure):
    """Per block ‖F(x)‖/‖x‖ and cos(F(x), x) on test images (Greff et al. 2017)."""
    from .common import check_figure_path, load_run
    from .norms import block_norms
    from .plots import norms_figure

    check_figure_path(figure)
    docs = []
    for run in filter(None, (checkpoint, vs)):
        tr = load_run(run, limit, data)
        docs.append({"source": tr.source, "blocks": [b.as_dict() for b in block_norms(tr.model, tr.graph, tr.x)]})
    _emit(docs if vs else docs[0], as_json, figure, lambda p: norms_figure(docs, [d["source"] for d in docs], p))
    if not as_json:
        for d in docs:
            print_table(f"residual norms: {d['source']}", ["block", "‖F(x)‖/‖x‖", "cos(F(x), x)"],
                        [[b["block"], f"{b['norm_ratio']:.3f}", f"{b['cosine']:+.3f}"] for b in d["blocks"]])


@analyze.command()
@FAMILY(*HESSIAN_DEPTHS)
@click.option("--at", "start", type=click.Choice(["zero", "small", "init"]), default="zero", show_default=True,
              help="Starting point: all weights 0, N(0, 0.01²), or the spec's initialisation.")
@click.option("--max-exact", type=click.IntRange(1, 20_000), default=3000, show_default=True,
              help="Exact Hessian up to this many parameters, Lanczos above.")
@JSON
@FIGURE
@reports_errors
def hessian(spec, network, sets, vs, depth_param, depths, start, max_exact, as_json, figure):
    """Condition number of the loss Hessian at a starting point, per depth (Li et al. 2016)."""
    from .common import check_figure_path
    from .plots import hessian_figure

    check_figure_path(figure)
    _check_depths(depth_param, depths, *HESSIAN_DEPTHS)
    results = [_hessian_of(s, network, p, depth_param, v, start, max_exact) for s, p, v in _grid(spec, sets, vs, depths)]
    _emit(results, as_json, figure, lambda p: hessian_figure(results, p))
    if not as_json:
        print_table(f"loss Hessian at {start}", ["network", "depth", "params", "method", "max |λ|", "min |λ|", "κ"],
                    [[r["label"], r["depth"], r["params"], r["method"], f"{r['max_abs_eigenvalue']:.3g}",
                      f"{r['min_abs_eigenvalue']:.3g}", "flat (H = 0)" if r["flat"] else
                      ("inf" if r["condition_number"] is None else f"{r['condition_number']:.3g}")] for r in results])


def _hessian_of(spec, network, params, depth_param, value, start, max_exact) -> dict:
    from .hessian import set_start, spectrum

    g, model, label = _member(spec, network, params, depth_param, value)
    set_start(model, start)
    return {"label": label, "depth": _depth(g), **spectrum(model, max_exact, progress=_progress(label)).as_dict()}


def _progress(label: str):
    """Hessian progress on stderr (it can take minutes): a live line on a terminal, else every 10%."""
    import sys
    import time

    tty, last = sys.stderr.isatty(), [0.0, -1]

    def tick(done: int, total: int) -> None:
        pct = 100 * done // max(total, 1)
        now = time.monotonic()
        if tty and (now - last[0] > 0.2 or done == total):
            click.echo(f"\rhessian {label}: {done}/{total} Hessian-vector products ({pct}%)",
                       err=True, nl=done == total)
            last[0] = now
        elif not tty and pct // 10 != last[1] and (pct % 10 == 0 or done == total):
            click.echo(f"hessian {label}: {done}/{total} Hessian-vector products ({pct}%)", err=True)
            last[1] = pct // 10
    return tick
