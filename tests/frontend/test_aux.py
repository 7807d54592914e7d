"""Auxiliary classifiers (`aux` heads): side outputs in training, absent in eval, their loss
added by `train` with its weight; GoogLeNet's equal torchvision's aux1/aux2 outputs."""
import pytest
import torch
import torch.nn.functional as F
import torchvision

import resdsl
from resdsl.ir.shapes import lint, totals
from resdsl.train.loop import training_loss
from conftest import emitted_twin

TINY = """
network tiny(classes = 10) {
  input 3x32x32
  stem { conv 16 k3; bn; relu }
  aux { avgpool size 4; conv 8 k1; relu; flatten; fc classes }
  transition { conv 32 k3 s2; bn; relu }
  aux weight 0.5 { avgpool; fc classes }
  head { avgpool; fc classes }
}
"""


def test_aux_heads_run_in_training_only():
    model = resdsl.compile(TINY)
    x = torch.randn(2, 3, 32, 32)
    model.train()
    y = model(x)
    assert [tuple(a.shape) for a in model.aux_outputs] == [(2, 10), (2, 10)] and model.aux_weights == [0.3, 0.5]
    model.eval()
    model.aux_outputs = []
    with torch.no_grad():
        assert torch.equal(model(x), model.head(model.transitions[0](model.stem(x))))
    assert model.aux_outputs == [] and y.shape == (2, 10)


def test_aux_is_a_side_output_of_the_graph():
    g = resdsl.graph(TINY)
    lint(g)
    assert [a["output"] for a in g.graph["aux"]] == ["aux.0.fc1", "aux.1.fc1"]
    assert g.graph["output"] == "head.fc1"
    # the transition reads the stem, not the aux head; aux params count, their MACs do not
    assert list(g.predecessors("transitions.0.conv1")) == ["stem.relu1"]
    aux_params = sum(d["params"] for n, d in g.nodes(data=True) if n.startswith("aux."))
    assert aux_params == (16 * 8 + 128 * 10 + 10) + (32 * 10 + 10)
    assert all(d["macs"] == 0 for n, d in g.nodes(data=True) if n.startswith("aux."))
    assert totals(g)[0] == sum(p.numel() for p in resdsl.compile(TINY).parameters())


def test_training_loss_adds_weighted_aux_losses():
    model = resdsl.compile(TINY).train()
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    out = model(x)
    a0, a1 = model.aux_outputs
    expected = F.cross_entropy(out, y) + 0.3 * F.cross_entropy(a0, y) + 0.5 * F.cross_entropy(a1, y)
    assert torch.allclose(training_loss(model, out, y, 0.0), expected)
    plain = resdsl.compile("network p() {\n  input 3x8x8\n  head { avgpool; fc 3 }\n}\n")
    o = plain(torch.randn(2, 3, 8, 8))
    assert torch.equal(training_loss(plain, o, y[:2], 0.0), F.cross_entropy(o, y[:2]))


def test_googlenet_aux_outputs_equal_torchvisions_in_training():
    """torchvision's GoogLeNet in train mode returns (logits, aux2, aux1); dropout off on both
    sides, BN on batch statistics: ours gives the same three tensors."""
    ours = resdsl.compile("googlenet")
    torch.manual_seed(0)
    ref = torchvision.models.googlenet(init_weights=False)
    resdsl.transfer_weights(ref, ours)
    for m in (*ref.modules(), *ours.modules()):
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    ref.train(), ours.train()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits, aux2, aux1 = ref(x)
        out = ours(x)
    for a, b in ((logits, out), (aux1, ours.aux_outputs[0]), (aux2, ours.aux_outputs[1])):
        assert ((a - b).norm() / a.norm()).item() < 1e-5


def test_aux_standalone_source_is_bit_equal_in_training():
    model = resdsl.compile(TINY)
    other = emitted_twin(model)
    x = torch.randn(2, 3, 32, 32)
    model.train(), other.train()
    torch.manual_seed(0)
    a = model(x)
    torch.manual_seed(0)
    b = other(x)
    assert torch.equal(a, b) and all(torch.equal(p, q) for p, q in zip(model.aux_outputs, other.aux_outputs))


@pytest.mark.parametrize("text", ["aux weight -1 { avgpool; fc 3 }", "aux { avgpool }"])
def test_bad_aux_heads_are_refused(text):
    with pytest.raises(resdsl.SpecError):
        resdsl.graph(f"network p() {{\n  input 3x8x8\n  stem {{ conv 4 k3 }}\n  {text}\n  head {{ avgpool; fc 3 }}\n}}\n")


def test_fmt_and_show_keep_aux_heads():
    from resdsl.source.fmt import format_text
    from resdsl.source.show import show_net

    assert format_text(TINY.lstrip("\n")) == TINY.lstrip("\n")
    shown = show_net(resdsl.load_spec(TINY))
    assert "aux weight 0.3 {" in shown and "aux weight 0.5 {" in shown
    a, b = resdsl.compile(TINY), resdsl.compile(shown)
    assert list(a.state_dict()) == list(b.state_dict()) and a.aux_weights == b.aux_weights
