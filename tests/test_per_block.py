"""Per-block variation (block_index, net_index), stage x 0, if and repeat in sequences."""
import pytest
import torch

import resdsl


def test_block_index_varies_widths_and_stage_x_0_adds_nothing():
    text = """
network t() {
  input 3x16x16
  stem { conv 8 k3 }
  stage x 3 basic(8 + 4 * net_index, skip = projection)
  stage x 0 basic(99)
  stage x 2 basic(block_index == 0 ? 40 : 44, skip = projection) stride 2
  head { avgpool; fc 2 }
}"""
    g = resdsl.graph(text)
    adds = [d["out_shape"][0] for n, d in g.nodes(data=True) if n.endswith(".add")]
    assert adds == [8, 12, 16, 40, 44]
    assert not any(n.startswith("stages.2") for n in g)


@pytest.mark.parametrize("flag,expected", [("true", 3), ("false", 1)])
def test_if_and_repeat_in_a_sequence(flag, expected):
    g = resdsl.graph(f"""
network t(deep = {flag}) {{
  input 3x8x8
  stem {{ conv 4 k3; if deep {{ repeat 2 as r {{ conv 4 + r k3 }} }} }}
  head {{ avgpool; fc 2 }}
}}""")
    assert sum(d["kind"] == "conv" for _, d in g.nodes(data=True)) == expected


