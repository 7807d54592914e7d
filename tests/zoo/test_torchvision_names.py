"""All of torchvision's classification models, by the list torchvision itself gives
(`list_models(module=torchvision.models)`, 80 names): each is a resdsl zoo name, and its parameter
count equals torchvision's (graphs and meta-device models: nothing is allocated).

MACs and outputs are compared per family in test_torchvision_zoo.py; this is the completeness check.
"""
import pytest
import torchvision

import resdsl
from resdsl.ir.shapes import totals
from resdsl.zoo.names import table
from test_torchvision_zoo import reference

NAMES = torchvision.models.list_models(module=torchvision.models)

# The transformers arrive with the token layouts and attention of issue 20's other half; until that
# branch is merged they are expected to fail here. Delete this set when it lands.

def _param(name: str):
    return pytest.param(name, id=name)


def test_the_list_is_torchvisions_eighty():
    assert len(NAMES) == len(set(NAMES)) == 80


@pytest.mark.parametrize("name", [_param(n) for n in NAMES])
def test_every_torchvision_model_is_a_zoo_name_with_its_parameter_count(name):
    assert name in table(), f"{name}: no `# name: {name} = ...` line in any zoo spec"
    ref = reference(name)                 # meta device
    assert totals(resdsl.graph(name))[0] == sum(p.numel() for p in ref.parameters())
