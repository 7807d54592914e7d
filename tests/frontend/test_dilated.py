"""1-D sequences and Cohen, Tamari & Shashua's mixed dilated networks (specs/dilated_mixed.res):
parameters counted by hand, outputs equal to a tower written in plain torch, causality and the
exact receptive field by perturbation, misuse errors, and training on an npz of sequences."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import resdsl
from conftest import SPECS
from resdsl.cost.crosscheck import cross_check
from resdsl.cost.receptive import receptive_fields
from resdsl.render import render

SPEC = SPECS / "dilated_mixed.res"
SMALL = dict(channels=3, length=40, width=4, depth=4, segment=2, classes=5)


def hand_params(channels, width, depth, classes, **_) -> int:
    """Stem 1×1 conv (bias); two towers of `depth` WaveNet layers, each a size-2 conv w→w and a
    1×1 conv w→w, both with bias; fc w→classes."""
    layer = (2 * width * width + width) + (width * width + width)
    return (channels * width + width) + 2 * depth * layer + (width * classes + classes)


@pytest.mark.parametrize("mixed", [True, False])
def test_parameters_counted_by_hand(mixed):
    assert hand_params(40, 32, 8, 10) == 51_818                          # the spec's defaults
    g = resdsl.graph(SPEC, mixed=mixed)
    assert sum(d["params"] for _, d in g.nodes(data=True)) == 51_818
    model = resdsl.compile(SPEC, mixed=mixed, **SMALL)
    assert sum(p.numel() for p in model.parameters()) == hand_params(**SMALL) == (3 * 4 + 4) + 8 * (36 + 20) + (4 * 5 + 5)


# ---- the reference: the same two towers, written in plain torch ----

class WaveNetLayer(nn.Module):
    """x + W1·relu(W2 ⋆_d pad_left(x, d)): a causal size-2 conv with dilation d, residual."""

    def __init__(self, width: int, dilation: int):
        super().__init__()
        self.d = dilation
        self.dilated, self.mix = nn.Conv1d(width, width, 2, dilation=dilation), nn.Conv1d(width, width, 1)

    def forward(self, x):
        return x + self.mix(F.relu(self.dilated(F.pad(x, (self.d, 0)))))


class Reference(nn.Module):
    """Tower A: dilations 1, 2, 4, ...; tower B: reversed within each segment. Mixed: after every
    segment both towers continue from the sum of the two; unmixed: summed once, at the end."""

    def __init__(self, channels, width, depth, segment, classes, mixed):
        super().__init__()
        self.segment, self.mixed = segment, mixed
        b_order = [s + segment - 1 - r for s in range(0, depth, segment) for r in range(segment)]
        self.stem = nn.Conv1d(channels, width, 1)
        self.a = nn.ModuleList(WaveNetLayer(width, 2 ** i) for i in range(depth))
        self.b = nn.ModuleList(WaveNetLayer(width, 2 ** i) for i in b_order)
        self.fc = nn.Linear(width, classes)

    def features(self, x):
        h = self.stem(x)
        a = b = h
        for i, (la, lb) in enumerate(zip(self.a, self.b)):
            a, b = la(a), lb(b)
            if self.mixed and (i + 1) % self.segment == 0:
                a = b = a + b
        return a if self.mixed else a + b

    def forward(self, x):
        return self.fc(F.relu(self.features(x)).mean(-1))


def copy_into(ref: Reference, model) -> None:
    """Reference layer i of tower A is the spec's wavenet{2i+1}, of tower B wavenet{2i+2} (the
    body alternates a and b)."""
    sd = {"stem.conv1.weight": ref.stem.weight, "stem.conv1.bias": ref.stem.bias,
          "head.fc1.weight": ref.fc.weight, "head.fc1.bias": ref.fc.bias}
    for t, tower in enumerate((ref.a, ref.b)):
        for i, layer in enumerate(tower):
            pre = f"stages.0.blocks.0.residual.flow.wavenet{2 * i + t + 1}.residual"
            sd.update({f"{pre}.conv1.weight": layer.dilated.weight, f"{pre}.conv1.bias": layer.dilated.bias,
                       f"{pre}.conv2.weight": layer.mix.weight, f"{pre}.conv2.bias": layer.mix.bias})
    assert set(sd) == set(model.state_dict())
    model.load_state_dict(sd)


@pytest.mark.parametrize("mixed", [True, False])
def test_outputs_equal_a_hand_written_torch_tower(mixed):
    torch.manual_seed(0)
    ref = Reference(3, 4, 4, 2, 5, mixed).eval()
    model = resdsl.compile(SPEC, mixed=mixed, **SMALL).eval()
    copy_into(ref, model)
    x = torch.randn(2, 3, 40)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(model.forward_features(x), ref.features(x), rtol=1e-5, atol=1e-6)


# The same networks without named tensors: mixing as a stage of `parallel sum` segments (each
# segment's two branches summed, the sum read by both next branches), no mixing as one segment.
PARALLEL = """
import "dilated_mixed.res"

block segments(width, n, segment, first = 0) {
  let seg_start = [first + r // segment * segment for r in range(n)]
  residual {
    parallel sum {
      branch { repeat n as r { wavenet width dilation (2 ** (first + r)) } }
      branch { repeat n as r { wavenet width dilation (2 ** (seg_start[r] + segment - 1 - r % segment)) } }
    }
  }
  shortcut none
}

network parallel_spelling(mixed = true, depth = 4, segment = 2, width = 4, classes = 5, channels = 3, length = 40) {
  input [channels, length]
  stem { conv width k1 bias }
  stage x (mixed ? depth // segment : 1) segments(width, mixed ? segment : depth, segment, first = block_index * segment)
  head { relu; avgpool; fc classes }
}
"""


@pytest.mark.parametrize("mixed", [True, False])
def test_named_tensors_and_parallel_branches_spell_the_same_network(tmp_path, mixed):
    """The reference's weights in both spellings: equal outputs, equal costs."""
    (tmp_path / "dilated_mixed.res").write_text(SPEC.read_text())
    (tmp_path / "parallel.res").write_text(PARALLEL)
    torch.manual_seed(0)
    ref = Reference(3, 4, 4, 2, 5, mixed).eval()
    named = resdsl.compile(SPEC, mixed=mixed, **SMALL).eval()
    copy_into(ref, named)
    par = resdsl.compile(tmp_path / "parallel.res", network="parallel_spelling", mixed=mixed).eval()
    sd = {"stem.conv1.weight": ref.stem.weight, "stem.conv1.bias": ref.stem.bias,
          "head.fc1.weight": ref.fc.weight, "head.fc1.bias": ref.fc.bias}
    for t, tower in enumerate((ref.a, ref.b)):
        for i, layer in enumerate(tower):
            s, r = (i // 2, i % 2) if mixed else (0, i)
            pre = f"stages.0.blocks.{s}.residual.parallel1.{t}.wavenet{r + 1}.residual"
            sd.update({f"{pre}.conv1.weight": layer.dilated.weight, f"{pre}.conv1.bias": layer.dilated.bias,
                       f"{pre}.conv2.weight": layer.mix.weight, f"{pre}.conv2.bias": layer.mix.bias})
    par.load_state_dict(sd)
    x = torch.randn(2, 3, 40)
    with torch.no_grad():
        torch.testing.assert_close(par(x), named(x), rtol=1e-5, atol=1e-6)
    g1, g2 = resdsl.graph(SPEC, mixed=mixed, **SMALL), resdsl.graph(tmp_path / "parallel.res", "parallel_spelling",
                                                                    mixed=mixed)
    costs = [tuple(sum(d[k] for _, d in g.nodes(data=True)) for k in ("params", "macs")) for g in (g1, g2)]
    assert costs[0] == costs[1]


def test_mixing_changes_the_function():
    """Same weights, with and without the interconnections: different outputs (mixing is not a no-op)."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 40)
    with torch.no_grad():
        outs = [Reference(3, 4, 4, 2, 5, m).eval() for m in (True, False)]
        outs[1].load_state_dict(outs[0].state_dict())
        assert not torch.allclose(outs[0].features(x), outs[1].features(x))


@pytest.mark.parametrize("mixed", [True, False])
def test_causal_with_the_receptive_field_of_2_to_the_depth(mixed):
    """Perturbing input t0 changes exactly the outputs t0 .. t0 + 2^depth − 1: nothing before t0
    (causal), nothing at or past t0 + 2^depth (the field) — and the registry's field says 2^depth."""
    depth, t0, n = 4, 10, 40
    torch.manual_seed(0)
    model = resdsl.compile(SPEC, mixed=mixed, **SMALL).eval()
    x = torch.randn(1, 3, n)
    x2 = x.clone()
    x2[0, :, t0] += 1.0
    with torch.no_grad():
        diff = (model.forward_features(x2) - model.forward_features(x)).abs().amax(1)[0]
    inside = torch.tensor([t0 <= t < t0 + 2 ** depth for t in range(n)])
    assert diff[~inside].max() == 0                        # exactly: before t0 and past the field
    assert diff[t0] > 0 and diff[t0 + 2 ** depth - 1] > 0  # both ends of the field are reached
    g = resdsl.graph(SPEC, mixed=mixed, **SMALL)
    last = next(n for n, d in g.nodes(data=True) if d["kind"] == "relu" and d["scope"]["section"] == "head")
    field = receptive_fields(g)[next(iter(g.predecessors(last)))]
    assert (field.rf, field.stride) == (2 ** depth, 1)


def test_costs_agree_with_flop_counter_and_the_drawing_says_causal():
    g = resdsl.graph(SPEC, **SMALL)
    model = resdsl.compile(SPEC, **SMALL).eval()
    check = cross_check(model, g)
    assert check["ok"], check
    # MACs by hand: every conv output position costs C_in · k multiply-adds per output channel
    L, w = 40, 4
    per_layer = L * w * (2 * w) + L * w * w
    assert sum(d["macs"] for _, d in g.nodes(data=True)) == L * w * 3 + 2 * 4 * per_layer + w * 5
    dot = render(g, "layer").source
    assert "k2 conv 4, d2, causal, +bias" in dot and "k1 conv 4, +bias" in dot


SEQ = "network t() {{\n  input {inp}\n  stem {{ {layers} }}\n  head {{ avgpool; fc 3 }}\n}}\n"


@pytest.mark.parametrize("layers, inp, message, at", [
    ("conv 8 k3 causal", "3x16x16", "causal padding needs a C×L sequence", "causal"),
    ("conv 8 k1x7", "3x64", "conv kernel 1×7 gives 2 sizes for a 1-D input", "k1x7"),
    ("conv 8 k2", "3x64", "conv kernel 2 is even", "k2"),
    ("conv 8 k3 p1 causal", "3x64", "a causal conv pads (k − 1)·d = 2 on the left", "p1"),
    ("conv 8 k3; se", "3x64", "se needs a C×H×W input, got 8×64 (a C×L sequence)", "se"),
    ("conv 8 k3; shuffle 2", "3x64", "shuffle needs a C×H×W input, got 8×64 (a C×L sequence)", "shuffle"),
    ("conv 8 k5 s4; conv 8 k5 s4; conv 8 k5 s4 p0", "3x16", "sequence 1 shrinks below 1", "conv"),
])
def test_misuse_is_a_located_error(layers, inp, message, at):
    """The message, at the line and column of what is wrong (its last occurrence on the line)."""
    text = SEQ.format(inp=inp, layers=layers)
    with pytest.raises(resdsl.SpecError) as e:
        resdsl.graph(text)
    assert message in str(e.value)
    line = text.splitlines()[2]
    assert (e.value.span.line, e.value.span.column) == (3, line.rfind(at) + 1), str(e.value)


def test_fc_on_a_sequence_needs_a_global_pool():
    with pytest.raises(resdsl.SpecError, match="fc needs a vector, C×1 or C×1×1 input, got 3×64"):
        resdsl.graph("network t() {\n  input 3x64\n  head { fc 3 }\n}\n")


def test_sequence_layers_compile_to_1d_modules():
    """Every windowed kind builds its 1-D torch module on a sequence; the table and the graph agree."""
    text = ("network t() {\n  input 4x64\n  stem { conv 8 k3 d2; bn; relu; maxpool k2; avgpool k2 s1; "
            "layernorm; groupnorm 2; layer_scale 0.5 }\n  stage x 1 basic(16, stride = 2)\n  head { avgpool; fc 3 }\n}\n")
    g = resdsl.graph(text)
    model = resdsl.compile(text).eval()
    kinds = {type(m).__name__ for m in model.modules()}
    assert {"Conv1d", "BatchNorm1d", "MaxPool1d", "AvgPool1d", "AdaptiveAvgPool1d"} <= kinds
    assert "Conv2d" not in kinds and "BatchNorm2d" not in kinds
    assert sum(p.numel() for p in model.parameters()) == sum(d["params"] for _, d in g.nodes(data=True))
    with torch.no_grad():
        assert model(torch.randn(2, 4, 64)).shape == (2, 3)
    out = {n: d["out_shape"] for n, d in g.nodes(data=True)}
    # 64 → maxpool k2 → 32 → avgpool k2 s1 → 31 → strided basic block: ceil(31 / 2) = 16
    assert out["stem.maxpool1"] == (8, 32) and out["stem.avgpool1"] == (8, 31)
    assert out["stages.0.blocks.0.shortcut.conv1"] == (16, 16)
    assert cross_check(model, g)["ok"]


# ---- training on an npz of sequences ----

def write_sequences(path, n_train=24, n_test=12, channels=3, length=40, classes=5, **over):
    r = np.random.default_rng(0)
    d = {"x_train": r.normal(size=(n_train, channels, length)).astype(np.float32),
         "y_train": np.arange(n_train) % classes,
         "x_test": r.normal(size=(n_test, channels, length)).astype(np.float32),
         "y_test": np.arange(n_test) % classes, **over}
    np.savez(path, **{k: v for k, v in d.items() if v is not None})
    return path


def test_trains_on_an_npz_of_sequences(tmp_path):
    import io

    from resdsl.train import run
    from resdsl.train.progress import Reporter

    data = write_sequences(tmp_path / "seq.npz")
    args = {k: str(v) for k, v in SMALL.items()}
    out = io.StringIO()
    summary = run(SPEC, {"data": f"seq:{data}", "epochs": 2, "batch_size": 8, "lr": 0.01}, tmp_path / "runs",
                  args=args, reporter=Reporter(stream=out))
    epochs = [ln for ln in out.getvalue().splitlines() if ln.startswith("epoch ")]
    assert len(epochs) == 2 and all(ln.endswith(" samples/s") for ln in epochs) and "img/s" not in out.getvalue()
    assert summary["status"] == "completed" and summary["epochs_done"] == 2
    assert summary["global_step"] == 2 * 3                   # 24 sequences in batches of 8
    assert summary["params"] == hand_params(**SMALL) and np.isfinite(summary["final_test_loss"])
    assert summary["data"] == f"seq:{data}"
    assert (tmp_path / "runs" / summary["run_dir"].rsplit("/", 1)[1] / "best.pt").exists()


def test_progress_lines_count_samples_of_sequences():
    import io

    from resdsl.train.progress import Reporter

    out = io.StringIO()
    rep = Reporter(stream=out, live=False)
    rep.start_epoch(0, 1, 20, 0, unit="samples/s")
    rep.update(10, 1.5, 0.25, 1234.0)
    assert out.getvalue().rstrip().endswith("acc 25.00%  1,234 samples/s")


def test_sequence_data_is_checked_before_loading(tmp_path, monkeypatch):
    from resdsl.train import TrainError, load_data

    d = load_data(f"seq:{write_sequences(tmp_path / 'ok.npz')}")
    assert d.input_shape == (3, 40) and d.num_classes == 5 and d.train_x.dtype == torch.float32
    bad = [(dict(x_train=np.zeros((4, 40), np.float32)), "x_train must be non-empty (N, C, L)"),
           (dict(x_train=np.array([[[object()]]] * 4, dtype=object)), "holds Python objects"),
           (dict(y_test=None), "has no 'y_test'"),
           (dict(x_test=np.full((12, 3, 40), np.nan, np.float32)), "NaN or infinite"),
           (dict(x_test=np.zeros((12, 3, 41), np.float32)), "train sequences are (3, 40) but test sequences (3, 41)")]
    for i, (over, message) in enumerate(bad):
        with pytest.raises(TrainError, match=message.replace("(", r"\(").replace(")", r"\)")):
            load_data(f"seq:{write_sequences(tmp_path / f'bad{i}.npz', **over)}")
    # a header claiming more than the budget is refused before its data is read
    monkeypatch.setenv("RESDSL_LIMIT_MEMORY", "10000")
    with pytest.raises(TrainError, match="over the memory budget"):
        load_data(f"seq:{tmp_path / 'ok.npz'}")


def test_exports_with_torch_export(tmp_path):
    """`resdsl compile -o X.pt2` of the causal network: the loaded program computes the same outputs."""
    import resdsl.exporters as ex

    torch.manual_seed(0)
    model = resdsl.compile(SPEC, **SMALL).eval()
    ex.export(model, tmp_path / "dm.pt2")
    loaded = torch.export.load(str(tmp_path / "dm.pt2")).module()
    x = torch.randn(3, 3, 40)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
