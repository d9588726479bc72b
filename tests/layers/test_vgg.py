"""VGGFeatures: torchvision layer order and keys, offline weight loading, input conversion.

References are independent of zoo.layers.vgg: torchvision's own ``make_layers(cfgs[...])``
Sequential, loaded with the generated checkpoint, sliced by hand.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from torchvision.models.vgg import cfgs, make_layers

from zoo._weights import MissingWeightsError
from zoo.layers.vgg import VGGFeatures, layer_index, layer_names

CFG = {"vgg16": "D", "vgg19": "E"}
FILES = {"vgg16": "vgg16-397923af.pth", "vgg19": "vgg19-dcbb9e9d.pth"}
MEAN = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)


def torchvision_features(arch: str, path=None) -> nn.Sequential:
    seq = make_layers(cfgs[CFG[arch]], batch_norm=False)
    if path is not None:
        state = torch.load(path, weights_only=True)
        seq.load_state_dict({k[len("features.") :]: v for k, v in state.items() if "features" in k})
    return seq.double().eval()


# ------------------------------------------------------------------ layer table
@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_layer_names_follow_torchvision_module_order(arch):
    seq = torchvision_features(arch)
    names = layer_names(arch)
    assert len(names) == len(seq)
    block, conv_in_block = 1, 0
    for i, (name, module) in enumerate(zip(names, seq)):
        assert layer_index(arch, name) == i
        if isinstance(module, nn.Conv2d):
            conv_in_block += 1
            assert name == f"conv{block}_{conv_in_block}"
        elif isinstance(module, nn.ReLU):
            assert name == f"relu{block}_{conv_in_block}"
        else:
            assert isinstance(module, nn.MaxPool2d) and name == f"pool{block}"
            block, conv_in_block = block + 1, 0
    assert block == 6


def test_layer_indices_used_by_the_official_losses():
    # NVIDIA / naoto / Shift-Net slices [0:5], [5:10], [10:17] end at pool1..pool3
    assert [layer_index("vgg16", n) for n in ("pool1", "pool2", "pool3")] == [4, 9, 16]
    # EdgeConnect's VGG19 slices end at these indices
    expected = {"relu1_1": 1, "relu2_1": 6, "relu2_2": 8, "relu3_1": 11, "relu3_4": 17}
    expected |= {"relu4_1": 20, "relu4_4": 26, "relu5_1": 29, "relu5_2": 31}
    assert {n: layer_index("vgg19", n) for n in expected} == expected
    with pytest.raises(ValueError, match="relu3_4"):
        layer_index("vgg16", "relu3_4")
    with pytest.raises(ValueError, match="arch"):
        layer_names("vgg11")


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_state_dict_keys_and_shapes_match_torchvision(arch):
    ours = VGGFeatures(arch, ["pool5"], weights="random", input_range=(0, 1), normalize="none")
    ref = {f"features.{k}": v for k, v in torchvision_features(arch).state_dict().items()}
    got = ours.state_dict()
    assert list(got) == list(ref)
    assert all(got[k].shape == ref[k].shape for k in ref)


def test_only_layers_up_to_the_deepest_request_are_built():
    vgg = VGGFeatures(
        "vgg19", ["relu3_1", "relu1_1"], weights="random", input_range=(0, 1), normalize="none"
    )
    assert len(vgg.features) == layer_index("vgg19", "relu3_1") + 1
    out = vgg(torch.zeros(1, 3, 8, 8))
    assert list(out) == ["relu3_1", "relu1_1"]


# ------------------------------------------------------------------ weights
@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_imagenet_weights_load_from_torch_cache(fake_torch_home, arch):
    vgg = VGGFeatures(arch, ["pool5"], weights="imagenet", input_range=(0, 1), normalize="none")
    assert vgg.pretrained
    state = torch.load(fake_torch_home / FILES[arch], weights_only=True)
    got = vgg.state_dict()
    for key, value in got.items():
        assert torch.equal(value, state[key]), key
    assert len(got) == sum(k.startswith("features.") for k in state)


def test_missing_file_names_file_and_folder(empty_torch_home):
    with pytest.raises(MissingWeightsError) as err:
        VGGFeatures("vgg19", ["relu1_1"], input_range=(0, 1), normalize="none")
    msg = str(err.value)
    assert "vgg19-dcbb9e9d.pth" in msg and str(empty_torch_home) in msg


@pytest.mark.parametrize("layout", ["full", "features_prefixed", "features_bare"])
def test_full_and_features_only_checkpoints_load_identically(write_fake_checkpoint, layout):
    path = write_fake_checkpoint(
        "vgg16", features_only=layout != "full", prefix=layout != "features_bare", seed=3
    )
    vgg = VGGFeatures("vgg16", ["relu3_3"], input_range=(0, 1), normalize="none")
    state = torch.load(path, weights_only=True)
    key = "10.weight" if layout == "features_bare" else "features.10.weight"
    assert torch.equal(vgg.features[10].weight, state[key])
    if layout == "full":
        assert state["classifier.0.weight"].shape == (4096, 25088)  # torchvision layout


def test_bad_checkpoint_shapes_are_a_clear_error(write_fake_checkpoint):
    path = write_fake_checkpoint("vgg16")
    state = torch.load(path, weights_only=True)
    state["features.2.weight"] = torch.zeros(64, 64, 1, 1)
    torch.save(state, path)
    with pytest.raises(ValueError, match="features.2.weight"):
        VGGFeatures("vgg16", ["relu2_1"], input_range=(0, 1), normalize="none")


def test_random_weights_are_seeded_and_marked():
    kw = dict(weights="random", input_range=(0, 1), normalize="none")
    a = VGGFeatures("vgg16", ["relu2_2"], seed=1, **kw)
    b = VGGFeatures("vgg16", ["relu2_2"], seed=1, **kw)
    c = VGGFeatures("vgg16", ["relu2_2"], seed=2, **kw)
    assert not a.pretrained
    assert torch.equal(a.features[7].weight, b.features[7].weight)
    assert not torch.equal(a.features[7].weight, c.features[7].weight)


# ------------------------------------------------------------------ forward
CONVERSIONS = {
    "pconv": ((0, 1), "imagenet", lambda x: ((x + 1) / 2 - MEAN) / STD),
    "edgeconnect": ((0, 1), "none", lambda x: (x + 1) / 2),
    "shiftnet": ((-1, 1), "none", lambda x: x),
    "gmcnn": ((0, 1), "imagenet_mean", lambda x: (x + 1) / 2 - MEAN),
}


@pytest.mark.parametrize("preset", sorted(CONVERSIONS))
@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_features_equal_torchvision_slices(fake_torch_home, arch, preset):
    input_range, normalize, convert = CONVERSIONS[preset]
    names = ["relu1_1", "pool1", "conv2_2", "relu3_1", "pool3"]
    vgg = VGGFeatures(arch, names, input_range=input_range, normalize=normalize).double()
    ref_seq = torchvision_features(arch, fake_torch_home / FILES[arch])
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 12, dtype=torch.float64) * 2 - 1
    torch.testing.assert_close(vgg.input_transform(x), convert(x), rtol=0, atol=1e-14)
    out = vgg(x)
    for name in names:
        ref = ref_seq[: layer_index(arch, name) + 1](convert(x))
        err = (out[name] - ref).abs().max().item()
        torch.testing.assert_close(out[name], ref, rtol=0, atol=1e-10, msg=f"{name}: {err}")


def test_frozen_eval_and_differentiable_in_input():
    vgg = VGGFeatures("vgg16", ["pool2"], weights="random", input_range=(0, 1), normalize="none")
    parent = nn.Sequential(vgg)
    parent.train()
    assert not vgg.training and not any(m.training for m in vgg.modules())
    assert all(not p.requires_grad for p in vgg.parameters())
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    vgg(x)["pool2"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())


def test_bad_arguments_are_value_errors():
    kw = dict(weights="random")
    with pytest.raises(ValueError, match="input_range"):
        VGGFeatures("vgg16", ["relu1_1"], input_range=(0, 255), normalize="none", **kw)
    with pytest.raises(ValueError, match="0, 1"):
        VGGFeatures("vgg16", ["relu1_1"], input_range=(-1, 1), normalize="imagenet", **kw)
    with pytest.raises(ValueError, match="weights"):
        VGGFeatures("vgg16", ["relu1_1"], weights="places", input_range=(0, 1), normalize="none")
    with pytest.raises(TypeError):
        VGGFeatures("vgg16", "relu1_1", input_range=(0, 1), normalize="none", **kw)
    vgg = VGGFeatures("vgg16", ["relu1_1"], input_range=(0, 1), normalize="none", **kw)
    with pytest.raises(ValueError, match="N x 3"):
        vgg(torch.zeros(1, 1, 8, 8))
