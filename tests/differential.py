"""The differential check of one network spec: every backend computes the same function.

    differential(text, seed, heavy=True) -> {"backend": seconds, ...}  or raises Mismatch

For the spec: `compile`'s module (BN statistics and every weight randomised, eval mode) against
  emit     the emitted model.py (exec'd, the module's state_dict loaded)
  fuse     resdsl.fuse's inference form
  pt2      torch.export's program (heavy)
  onnx     torch.onnx + onnxruntime (heavy)
  fmt      `fmt`'s text: the same graph (nodes, kinds, shapes, costs, edges), and fmt is idempotent
  show     `show`'s resolved text: the same graph, and with the module's weights the same outputs
  cost     `check`'s parameter count equals the module's; its MACs equal flop_counter's (cross_check)
all within TOL·max(1, max|y|) on a random input (batch 2).
"""
from __future__ import annotations

import copy
import io
import time

import torch

TOL = 1e-5


class Mismatch(AssertionError):
    def __init__(self, backend: str, detail: str):
        super().__init__(f"{backend}: {detail}")
        self.backend = backend


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """BN statistics and affine parameters far from (0, 1), so a wrong fold or order shows; the
    other weights keep their (random) initialisation."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)


def _close(backend: str, got, want) -> None:
    got = torch.as_tensor(got)
    if got.shape != want.shape:
        raise Mismatch(backend, f"shape {tuple(got.shape)} != {tuple(want.shape)}")
    if not torch.isfinite(got).all():
        raise Mismatch(backend, "non-finite output")
    err = (got.double() - want.double()).abs().max().item()
    scale = max(1.0, want.abs().max().item())
    if err > TOL * scale:
        raise Mismatch(backend, f"max |diff| {err:.3g} (output scale {scale:.3g})")


def signature(g) -> tuple:
    """A graph as comparable data: every node's kind, shapes and costs, and every edge."""
    nodes = tuple(sorted((n, d.get("kind"), str(d.get("out_shape")), d.get("params"), d.get("macs"))
                         for n, d in g.nodes(data=True)))
    return nodes, tuple(sorted(g.edges()))


def differential(text: str, seed: int = 0, heavy: bool = True) -> dict:
    from resdsl import api, emit_source, fuse
    from resdsl.cost.crosscheck import cross_check
    from resdsl.source.fmt import format_text
    from resdsl.source.show import show_net

    times = {}
    t = time.perf_counter()
    net = api.load_spec(text)
    g = api.graph_of(net)
    model = api.model_of(net, g)
    model.eval()
    _randomise(model, seed)
    x = torch.randn(2, *model.input_shape, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        y = model(x)
    if not torch.isfinite(y).all():
        raise Mismatch("compile", "non-finite output of the compiled module")
    times["compile"] = time.perf_counter() - t

    t = time.perf_counter()
    ns: dict = {}
    exec(compile(emit_source(model, net), "model.py", "exec"), ns)
    twin = ns["build"]().eval()
    missing = twin.load_state_dict(model.state_dict(), strict=True)
    assert not missing.missing_keys
    with torch.no_grad():
        _close("emit", twin(x), y)
    times["emit"] = time.perf_counter() - t

    t = time.perf_counter()
    fused = fuse(copy.deepcopy(model)).eval()
    with torch.no_grad():
        _close("fuse", fused(x), y)
    times["fuse"] = time.perf_counter() - t

    t = time.perf_counter()
    params = sum(d.get("params", 0) for _, d in g.nodes(data=True))
    have = sum(p.numel() for p in model.parameters())
    if params != have:
        raise Mismatch("cost", f"check says {params} parameters, the module has {have}")
    c = cross_check(model, g)
    if not c["ok"]:
        raise Mismatch("cost", f"MACs differ from flop_counter: {c['by_kind']} {c['layers'][:3]}")
    times["cost"] = time.perf_counter() - t

    t = time.perf_counter()
    formatted = format_text(text, "gen.res")
    if format_text(formatted, "gen.res") != formatted:
        raise Mismatch("fmt", "not idempotent")
    if signature(api.graph_of(api.load_spec(formatted))) != signature(g):
        raise Mismatch("fmt", "formatted text gives another graph")
    times["fmt"] = time.perf_counter() - t

    t = time.perf_counter()
    shown = show_net(net, "gen.res")
    net2 = api.load_spec(shown)
    g2 = api.graph_of(net2)
    if signature(g2) != signature(g):
        a, b = signature(g2), signature(g)
        diff = sorted(set(a[0]) ^ set(b[0]))[:4]
        raise Mismatch("show", f"shown text gives another graph: {diff}")
    other = api.model_of(net2, g2).eval()
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        _close("show", other(x), y)
    times["show"] = time.perf_counter() - t

    if heavy:
        t = time.perf_counter()
        ep = torch.export.export(model, (x,))
        with torch.no_grad():
            _close("pt2", ep.module()(x), y)
        times["pt2"] = time.perf_counter() - t
        t = time.perf_counter()
        _close("onnx", _onnx(model, x), y)
        times["onnx"] = time.perf_counter() - t
    return times


def _onnx(model, x):
    import warnings

    import onnxruntime as ort

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buf, dynamo=False, input_names=["input"], output_names=["logits"],
                          opset_version=17)
    s = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    return torch.from_numpy(s.run(None, {"input": x.numpy()})[0])
