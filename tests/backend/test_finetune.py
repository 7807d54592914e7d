"""Issue 22 items 5 and 6: fine-tuning a 224-px zoo net on 32×32 images — input size override
(shape check again), pretrained weights through torchvision's own loader (monkeypatched: nothing
is downloaded) transferred by structure, a partial transfer with a report, a replaceable head,
intermediate features by stage name, freezing by stage. References come from torchvision."""
import json

import numpy as np
import pytest
import torch
import torchvision
from click.testing import CliRunner
from torch import nn

import resdsl
from resdsl.cli import main


@pytest.fixture
def tv_resnet18(monkeypatch):
    """torchvision's resnet18 with seeded random weights, served by torchvision's own loader."""
    torch.manual_seed(0)
    ref = torchvision.models.resnet18().eval()
    for m in ref.modules():                       # non-trivial BN statistics, so a missed buffer shows
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    calls = []

    def get_model(name, weights=None):
        calls.append((name, weights))
        return ref

    monkeypatch.setattr(torchvision.models, "get_model", get_model)
    return ref, calls


def test_pretrained_weights_through_torchvision_give_torchvisions_outputs(tv_resnet18):
    ref, calls = tv_resnet18
    model = resdsl.compile("resnet18", weights="DEFAULT").eval()
    assert calls == [("resnet18", "DEFAULT")]
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(model(x), ref(x))
    n_weighted = sum(1 for m in ref.modules() if list(m.parameters(recurse=False)))
    assert len(model.transfer_report.copied) == n_weighted and not model.transfer_report.mismatched


def test_fine_tune_at_32px_with_a_new_head_copies_all_but_the_classifier(tv_resnet18):
    ref, _ = tv_resnet18
    model = resdsl.compile("resnet18", weights="DEFAULT", input_size=32, classes=10).eval()
    rep = model.transfer_report
    n_weighted = sum(1 for m in ref.modules() if list(m.parameters(recurse=False)))
    assert len(rep.copied) == n_weighted - 1 and [n for n, _ in rep.mismatched] == ["head.fc1"]
    assert "[1000, 512] -> [10, 512]" in str(rep) and model.input_shape == (3, 32, 32)
    # features by stage name equal torchvision's layer2 / layer4 outputs (create_feature_extractor)
    from torchvision.models.feature_extraction import create_feature_extractor

    x = torch.randn(2, 3, 32, 32)
    tv = create_feature_extractor(ref, {"layer2": "a", "layer4": "b"})(x)
    ours = resdsl.features(model, ["stages.3", "stages.1"])(x)
    assert [t.shape for t in ours] == [tv["a"].shape, tv["b"].shape] == [(2, 128, 4, 4), (2, 512, 1, 1)]
    torch.testing.assert_close(ours[0], tv["a"])
    torch.testing.assert_close(ours[1], tv["b"])
    with pytest.raises(resdsl.SpecError, match="no part named layer9"):
        resdsl.features(model, ["layer9"])


def test_head_is_replaceable_as_with_torchvision_or_timm():
    model = resdsl.compile("resnet18", input_size=32).eval()
    model.head.fc1 = nn.Linear(512, 7)                    # torchvision users write model.fc = nn.Linear(...)
    x = torch.randn(2, 3, 32, 32)
    feats = model.forward_features(x).mean((2, 3))
    torch.testing.assert_close(model(x), model.head.fc1(feats))
    model.reset_classifier(5)                             # timm's spelling
    assert model(x).shape == (2, 5) and model.num_classes == 5 and model.get_classifier().out_features == 5


def test_freezing_by_stage_keeps_weights_and_batch_norm_statistics():
    torch.manual_seed(0)
    model = resdsl.compile("resnet18", input_size=32, classes=10)
    model.freeze(["stem", "stages.0"])
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3])).backward()
    opt.step()
    after = model.state_dict()
    frozen = [k for k in before if k.startswith(("stem.", "stages.0."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)   # running stats too
    assert not torch.equal(before["head.fc1.weight"], after["head.fc1.weight"])             # the rest trains
    assert not all(torch.equal(before[k], after[k]) for k in before if k.startswith("stages.1."))
    with pytest.raises(ValueError, match="no part named stages.9"):
        model.freeze(["stages.9"])


def test_input_size_reruns_the_shape_check():
    spec = "network t(classes = 10) {\n  input 1x8x8\n  stem { conv 4 k5 p0; relu }\n  head { avgpool; fc classes }\n}\n"
    assert resdsl.compile(spec, input_size=16).input_shape == (1, 16, 16)
    with pytest.raises(resdsl.SpecError) as e:
        resdsl.compile(spec, input_size=4)
    assert "shrinks below 1×1" in e.value.render() and ":3:" in e.value.render()
    with pytest.raises(resdsl.SpecError, match="input size expects"):
        resdsl.compile(spec, input_size="ax3")


@pytest.fixture
def tiny_cifar(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=rng.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8), y_train=np.arange(60) % 10,
             x_test=rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8), y_test=np.arange(20) % 10)
    return path


def test_train_fine_tunes_a_zoo_net_from_a_weights_file_and_from_torchvision(tmp_path, tiny_cifar, tv_resnet18):
    ref, _ = tv_resnet18
    torch.save(ref.state_dict(), tmp_path / "resnet18.pth")          # weights from a file
    common = ["resnet18", "--input-size", "32", "--set", "classes=10", "--data", f"npz:{tiny_cifar}", "-b", "16",
              "--max-steps", "2", "--device", "cpu", "-j", "0", "--output", tmp_path / "runs",
              "--freeze", "stem"]
    r = CliRunner().invoke(main, ["train", *map(str, common), "--init", str(tmp_path / "resnet18.pth"),
                                  "--experiment", "file"])
    assert r.exit_code == 0, r.output
    assert "2 shape-mismatched" in r.output and "head.fc1.weight" in r.output    # the classifier's weight and bias
    args = json.loads((tmp_path / "runs" / "file" / "args.json").read_text())
    assert args["input_size"] == "32" and args["freeze"] == ["stem"]
    r = CliRunner().invoke(main, ["train", *map(str, common), "--init", "torchvision:resnet18", "--experiment", "tv"])
    assert r.exit_code == 0, r.output
    assert "weights from torchvision:resnet18" in r.output and "shape mismatch head.fc1" in r.output
    r = CliRunner().invoke(main, ["eval", "--checkpoint", str(tmp_path / "runs" / "tv"), "--json",
                                  "--data", f"npz:{tiny_cifar}"])   # a checkpoint never chooses a file to read
    assert r.exit_code == 0, r.output                     # the run's input size is used again
    assert json.loads(r.output)["images"] == 20


def test_a_224px_net_on_32px_data_without_input_size_says_what_to_do(tmp_path, tiny_cifar):
    r = CliRunner().invoke(main, ["train", "resnet18", "--set", "classes=10", "--data", f"npz:{tiny_cifar}",
                                  "--device", "cpu", "--output", str(tmp_path)])
    assert r.exit_code != 0 and "--input-size 32" in r.output and "Traceback" not in r.output
