"""Property tests: no input makes the front end crash or hang; random valid specs compile exactly.

(a) Random text and random token/character mutations of the real specs go through
    parse + lower + graph: a SpecError is the only exception allowed.
(b) Random small valid specs (stem, 1–3 stages of basic/bottleneck, any shortcut kind) compile,
    and the compiled forward's output shape and parameter count equal what the graph says.
"""
import os
import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SPECS
from resdsl import api
from resdsl.errors import SpecError
from resdsl.frontend.load import prelude_text

SOURCES = [p.read_text() for p in sorted(SPECS.glob("*.res"))] + [prelude_text()]
_TOKEN = re.compile(r"\w+|[^\w\s]|\s+")
VOCAB = sorted({t for s in SOURCES for t in _TOKEN.findall(s)} | {
    "{", "}", "(", ")", "[", "]", ",", ";", "\n", ":", "?", "=", "-", "//", "**", "/", "%", "#",
    '"', "0", "-1", "1e9", "999999999", "0.5", "x", "in", "import", '"missing.res"', "block", "network",
    "stage", "residual", "shortcut", "identity", "zeropad", "projection_all", "none", "groups", "p0",
    "k0", "s0", "true", "not", "and", "or", "len", "min", "3x0x0", "1x1x1", "\t", "\r\n", "é", "\x00"})

# 2 shared CPU cores: generous deadlines, modest example counts (the whole file runs in ~10 s).
# RESDSL_FUZZ=20 runs 20 times as many random (not derandomized) examples, for a deeper search.
SCALE = int(os.environ.get("RESDSL_FUZZ", "1"))
FUZZ = settings(max_examples=150 * SCALE, deadline=5000, derandomize=SCALE == 1,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def front_end(text: str) -> None:
    """parse + lower + build + infer_shapes + lint; a SpecError is a correct answer to bad input."""
    try:
        api.graph_of(api.load_spec(text + "\n"))
    except SpecError as e:
        e.render()                   # rendering must not crash either


@st.composite
def mutated_spec(draw):
    tokens = _TOKEN.findall(draw(st.sampled_from(SOURCES)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["insert", "delete", "replace", "char_delete", "char_insert", "swap"]))
        i = draw(st.integers(0, len(tokens) - 1))
        if op == "insert":
            tokens.insert(i, draw(st.sampled_from(VOCAB)))
        elif op == "delete":
            del tokens[i]
        elif op == "replace":
            tokens[i] = draw(st.sampled_from(VOCAB))
        elif op == "swap":
            j = draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif tokens[i]:
            k = draw(st.integers(0, len(tokens[i]) - 1))
            ch = "" if op == "char_delete" else draw(st.characters(codec="utf-8"))
            tokens[i] = tokens[i][:k] + ch + tokens[i][k + 1 if op == "char_delete" else k:]
    return "".join(tokens)


@FUZZ
@given(mutated_spec())
def test_mutated_specs_only_raise_spec_errors(text):
    front_end(text)


@settings(FUZZ, max_examples=100 * SCALE)
@given(st.lists(st.sampled_from(VOCAB), max_size=60).map(" ".join))
def test_token_soup_only_raises_spec_errors(text):
    front_end(text)


@settings(FUZZ, max_examples=50 * SCALE)
@given(st.text(max_size=200))
def test_random_text_only_raises_spec_errors(text):
    front_end(text)


@settings(FUZZ, max_examples=100 * SCALE)
@given(st.lists(st.sampled_from(VOCAB), max_size=12).map("".join))
def test_set_values_only_raise_spec_errors(text):
    try:
        api.parse_value(text, "x")
    except SpecError as e:
        e.render()


# ---- (b) random small valid specs ----

@st.composite
def valid_spec(draw):
    size = draw(st.integers(4, 24))
    c_in = draw(st.sampled_from([1, 3]))
    width = draw(st.sampled_from([4, 8, 16]))
    stem = [f"conv {width} k{draw(st.sampled_from([1, 3, 5]))} s{draw(st.sampled_from([1, 2]))}", "bn", "relu"]
    if draw(st.booleans()):
        stem.append("maxpool k3 s2")
    lines, c = [f"network rand(classes = {draw(st.integers(1, 12))}) {{", f"  input {c_in}x{size}x{size}",
                "  stem { " + "; ".join(stem) + " }"], width
    for _ in range(draw(st.integers(1, 3))):
        unit = draw(st.sampled_from(["basic", "bottleneck"]))
        w = draw(st.sampled_from([4, 8, 12, 16]))
        stride = draw(st.sampled_from([1, 2]))
        out = w * (4 if unit == "bottleneck" else 1)
        kinds = ["projection", "projection_all", "none"] + ["zeropad"] * (out >= c)
        kinds += ["identity"] * (out == c and stride == 1)
        skip = draw(st.sampled_from(kinds))
        extra = ", cardinality = 2, base_width = 32" if unit == "bottleneck" and draw(st.booleans()) else ""
        lines.append(f"  stage x {draw(st.integers(1, 2))} {unit}({w}, skip = {skip}{extra})"
                     + (f" stride {stride}" if stride > 1 else ""))
        c = out
    lines += ["  head { avgpool; fc classes }", "}"]
    return "\n".join(lines) + "\n"


@settings(FUZZ, max_examples=25 * SCALE)
@given(valid_spec(), st.booleans())
def test_random_valid_specs_compile_to_what_the_graph_says(text, train):
    g = api.graph(text)
    model = api.compile(text)
    params = sum(d["params"] for _, d in g.nodes(data=True))
    assert sum(p.numel() for p in model.parameters()) == params
    out_shape = g.nodes[g.graph["output"]]["out_shape"]
    x = torch.randn(2, *g.graph["input_shape"])
    model.train(train)
    with torch.no_grad():
        y = model(x)
    assert tuple(y.shape) == (2, *out_shape)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("text", [
    "network n() {\n input 3x8x8\n stage x 200001 basic(4)\n}",
    "network n(k = 2 ** 40) {\n input 3x8x8\n stem { conv k k3 }\n}",
    "network n() {\n input 3x8x8\n let l = [1] * 10000\n stem { conv len(l) k3 }\n}",
])
def test_huge_specs_fail_fast_or_stay_symbolic(text):
    """Sizes are arithmetic until compile: nothing here may allocate or hang."""
    front_end(text)


# -- CLI options of compile, eval and train (issue 11): one message and exit 1/2, never a traceback --
from click.testing import CliRunner  # noqa: E402

from resdsl.cli import main  # noqa: E402

DIGITS = str(SPECS / "digits_resnet.res")
CLI_FUZZ = settings(max_examples=12 * SCALE, deadline=None, derandomize=SCALE == 1,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
NUMBERS = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(["0", "-1", "1", "inf", "-inf", "nan", "1e400", "", "x", "0x10", "1_000", "\x00"]))
TEXTS = st.one_of(st.text(max_size=12), st.sampled_from(["meta", "cuda:99", "cpu", "../x", "/abs", "a{b}", "é"]))


def _invoke(args: list) -> None:
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), (args, repr(r.exception))
    assert r.exit_code in (0, 1, 2, 3), (args, r.exit_code, r.output)


@CLI_FUZZ
@given(batch=NUMBERS, ext=st.sampled_from([".pt2", ".safetensors", ".bin", "", ".onnx.tmp"]),
       sets=st.lists(st.tuples(st.sampled_from(["width", "n", "classes", "nope", "1x"]), NUMBERS), max_size=2))
def test_compile_options_fuzz(tmp_path_factory, batch, ext, sets):
    out = tmp_path_factory.mktemp("c") / f"m{ext}"
    args = ["compile", DIGITS, "-o", out, "--batch-size", batch]
    for k, v in sets:
        args += ["--set", f"{k}={v}"]
    _invoke(args)


@CLI_FUZZ
@given(batch=NUMBERS, precision=TEXTS, device=TEXTS, data=TEXTS)
def test_eval_options_fuzz(tmp_path_factory, batch, precision, device, data):
    missing = tmp_path_factory.mktemp("e") / "none.pt"
    _invoke(["eval", DIGITS, "--checkpoint", missing, "-b", batch, "--precision", precision, "--device", device,
             "--data", data])


TRAIN_OPTIONS = ["--epochs", "-b", "--lr", "--momentum", "--weight-decay", "--warmup-epochs", "--min-lr", "--seed",
                 "--smoothing", "--clip-grad", "--crop-pad", "--hflip", "--log-interval", "--eval-batch-size",
                 "-j", "--decay-milestones", "--decay-rate", "--device", "--experiment", "--sched", "--precision"]


@CLI_FUZZ
@given(opts=st.lists(st.tuples(st.sampled_from(TRAIN_OPTIONS), st.one_of(NUMBERS, TEXTS)), min_size=1, max_size=4))
def test_train_options_fuzz(tmp_path_factory, opts):
    """Data that cannot load keeps every case short: options are validated before anything runs."""
    root = tmp_path_factory.mktemp("t")
    args = ["train", DIGITS, "--data", f"npz:{root / 'missing.npz'}", "--output", root / "runs"]
    for k, v in opts:
        args += [k, v]
    _invoke(args)
    assert not (root / "runs").exists() or not any(p.is_file() for p in (root / "runs").rglob("*"))


# -- peak memory of `check` on hostile specs stays under a budget --
@settings(max_examples=8 * SCALE, deadline=None, derandomize=SCALE == 1)
@given(doublings=st.integers(10, 60), nest=st.integers(10, 80), side=st.sampled_from([8, 8000, 10**6]),
       repeat=st.sampled_from([1, 20, 10**6, 10**7]))
def test_check_peak_memory_under_budget(doublings, nest, side, repeat):
    import tracemalloc

    lets = "  let x0 = [1, 2]\n" + "".join(f"  let x{i + 1} = x{i} + x{i}\n" for i in range(doublings))
    lets += "  let y0 = 1\n" + "".join(f"  let y{i + 1} = [y{i}, y{i}]\n" for i in range(nest))
    text = ("block b(c) {\n  residual { conv c k3 }\n  shortcut identity\n}\n"
            f"network n() {{\n  input 3x{side}x{side}\n{lets}  stem {{ conv 4 k3 }}\n"
            f"  stage x {repeat} b(4)\n  head {{ avgpool; fc 2 }}\n}}\n")
    tracemalloc.start()
    try:
        front_end(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 << 20, f"check peaked at {peak / 2**20:.0f} MiB"
