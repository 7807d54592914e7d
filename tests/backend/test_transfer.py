import pytest
import torch
from torch import nn

import resdsl
from resdsl.backend.transfer import TransferError
from conftest import SPECS


def test_mismatch_is_reported_with_module_names():
    a = resdsl.compile(SPECS / "cifar_resnet.res", n=3)
    b = resdsl.compile(SPECS / "cifar_resnet.res", n=3, classes=100)
    with pytest.raises(TransferError, match="head.fc1"):
        resdsl.transfer_weights(a, b)


def test_execution_order_fallback():
    class Src(nn.Module):       # registers b before a, runs a first
        def __init__(self):
            super().__init__()
            self.b = nn.Linear(3, 5)
            self.a = nn.Linear(4, 3)

        def forward(self, x):
            return self.b(self.a(x))

    class Dst(nn.Module):
        input_shape = (4,)

        def __init__(self):
            super().__init__()
            self.first = nn.Linear(4, 3)
            self.second = nn.Linear(3, 5)

        def forward(self, x):
            return self.second(self.first(x))

    s, d = Src(), Dst()
    rep = resdsl.transfer_weights(s, d)
    assert rep.order == "execution"
    x = torch.randn(2, 4)
    torch.testing.assert_close(d(x), s(x))
