"""Gram / perceptual / style losses and the three presets against the official formulas.

The references run torchvision's own ``make_layers`` VGG loaded with the generated ImageNet
file (``fake_torch_home``), sliced as the official code slices it, and compute Grams with an
explicit einsum; the code under test goes through zoo.layers.vgg.VGGFeatures.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn
from torchvision.models.vgg import cfgs, make_layers

from zoo.layers.vgg import VGGFeatures, layer_index
from zoo.losses.perceptual import (
    PerceptualLoss,
    StyleLoss,
    edgeconnect_losses,
    gram_matrix,
    pconv_losses,
    shiftnet_losses,
)

TIGHT = dict(rtol=0, atol=1e-10)
MEAN = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)


def official_vgg(folder, arch: str) -> nn.Sequential:
    name = {"vgg16": "vgg16-397923af.pth", "vgg19": "vgg19-dcbb9e9d.pth"}[arch]
    seq = make_layers(cfgs["D" if arch == "vgg16" else "E"])
    state = torch.load(folder / name, weights_only=True)
    seq.load_state_dict({k[len("features.") :]: v for k, v in state.items() if "features" in k})
    return seq.double().eval()


def slices(seq: nn.Sequential, bounds: list[tuple[int, int]], x: torch.Tensor) -> list:
    """Run consecutive official slices ``seq[a:b]`` and keep each output."""
    out = []
    for a, b in bounds:
        x = seq[a:b](x)
        out.append(x)
    return out


def gram_ref(f: torch.Tensor) -> torch.Tensor:
    n, c, h, w = f.shape
    return torch.einsum("nchw,ndhw->ncd", f, f) / (c * h * w)


def l1(a, b):
    return (a - b).abs().mean()


def mse(a, b):
    return (a - b).pow(2).mean()


def images(n=2, size=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    out = [torch.rand(n, 3, size, size, generator=gen, dtype=torch.float64) * 2 - 1 for _ in "ab"]
    mask = torch.zeros(n, 1, size, size, dtype=torch.float64)
    mask[..., size // 4 : size // 2 + 3, 5 : size - 7] = 1
    return out[0], out[1], mask


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 4, 5), (3, 4, 2, 7)])
def test_gram_matrix_by_loop(shape):
    n, c, h, w = shape
    f = torch.randn(shape, generator=torch.Generator().manual_seed(c), dtype=torch.float64)
    ref = torch.zeros(n, c, c, dtype=torch.float64)
    for i, a, b in itertools.product(range(n), range(c), range(c)):
        ref[i, a, b] = sum(f[i, a, y, x] * f[i, b, y, x] for y in range(h) for x in range(w))
    torch.testing.assert_close(gram_matrix(f), ref / (c * h * w), rtol=0, atol=1e-12)


@pytest.mark.parametrize("criterion", ["l1", "mse"])
@pytest.mark.parametrize("arch, layers", [("vgg16", ["relu1_2", "pool2"]), ("vgg19", ["relu3_4"])])
def test_generic_losses_against_reference(fake_torch_home, criterion, arch, layers):
    weights = {name: 0.5 + i for i, name in enumerate(layers)}
    vgg = VGGFeatures(arch, layers, input_range=(0, 1), normalize="none").double()
    perceptual = PerceptualLoss(vgg, weights, criterion=criterion)
    style = StyleLoss(vgg, weights, criterion=criterion)
    pred, target, _ = images(size=16)
    seq = official_vgg(fake_torch_home, arch)
    crit = l1 if criterion == "l1" else mse
    exp_p, exp_s = 0.0, 0.0
    for name, w in weights.items():
        stop = layer_index(arch, name) + 1
        fp, ft = seq[:stop]((pred + 1) / 2), seq[:stop]((target + 1) / 2)
        exp_p = exp_p + w * crit(fp, ft)
        exp_s = exp_s + w * crit(gram_ref(fp), gram_ref(ft))
    torch.testing.assert_close(perceptual(pred, target), exp_p, **TIGHT)
    torch.testing.assert_close(style(pred, target), exp_s, **TIGHT)
    with pytest.raises(ValueError, match="not computed"):
        PerceptualLoss(vgg, {"pool5": 1.0})


def test_pconv_preset_is_naoto_inpainting_loss(fake_torch_home):
    losses = pconv_losses().double()
    output, target, mask = images()
    composite = mask * output + (1 - mask) * target
    seq = official_vgg(fake_torch_home, "vgg16")
    bounds = [(0, 5), (5, 10), (10, 17)]  # naoto / NVIDIA enc_1..enc_3

    def feats(x):
        return slices(seq, bounds, ((x + 1) / 2 - MEAN) / STD)

    f_out, f_comp, f_gt = feats(output), feats(composite), feats(target)
    prc = sum(l1(f_out[i], f_gt[i]) + l1(f_comp[i], f_gt[i]) for i in range(3))
    style_out = sum(l1(gram_ref(f_out[i]), gram_ref(f_gt[i])) for i in range(3))
    style_comp = sum(l1(gram_ref(f_comp[i]), gram_ref(f_gt[i])) for i in range(3))
    got = losses(output, composite, target)
    torch.testing.assert_close(got["perceptual"], prc, **TIGHT)
    torch.testing.assert_close(got["style"], style_out + style_comp, **TIGHT)
    torch.testing.assert_close(got["style_output"], style_out, **TIGHT)
    torch.testing.assert_close(got["style_composite"], style_comp, **TIGHT)
    assert got["perceptual"] > 0 and got["style"] > 0


def test_edgeconnect_preset_is_official_perceptual_and_style(fake_torch_home):
    losses = edgeconnect_losses().double()
    output, target, mask = images(seed=1)
    seq = official_vgg(fake_torch_home, "vgg19")
    relu_ends = [2, 4, 7, 9, 12, 14, 16, 18, 21, 23, 25, 27, 30, 32, 34, 36]  # src/loss.py VGG19
    names = [f"relu{b}_{k}" for b, n in zip(range(1, 6), [2, 2, 4, 4, 4]) for k in range(1, n + 1)]
    bounds = list(zip([0] + relu_ends[:-1], relu_ends))

    def feats(x01):
        return dict(zip(names, slices(seq, bounds, x01)))

    out01, gt01 = (output + 1) / 2, (target + 1) / 2
    fo, fg = feats(out01), feats(gt01)
    perceptual = sum(
        l1(fo[n], fg[n]) for n in ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    )
    fom, fgm = feats(out01 * mask), feats(gt01 * mask)
    style = sum(
        l1(gram_ref(fom[n]), gram_ref(fgm[n])) for n in ["relu2_2", "relu3_4", "relu4_4", "relu5_2"]
    )
    got = losses(output, target, mask)
    torch.testing.assert_close(got["perceptual"], perceptual, **TIGHT)
    torch.testing.assert_close(got["style"], style, **TIGHT)
    assert got["style"] > 0


def test_shiftnet_preset_is_official_style_and_content(fake_torch_home):
    losses = shiftnet_losses().double()
    output, target, _ = images(seed=2)
    seq = official_vgg(fake_torch_home, "vgg16")
    f_out = slices(seq, [(0, 5), (5, 10), (10, 17)], output)  # fed [-1, 1] directly
    f_gt = slices(seq, [(0, 5), (5, 10), (10, 17)], target)
    got = losses(output, target)
    style = sum(mse(gram_ref(f_out[i]), gram_ref(f_gt[i])) for i in range(3))
    content = sum(mse(f_out[i], f_gt[i]) for i in range(3))
    torch.testing.assert_close(got["style"], style, **TIGHT)
    torch.testing.assert_close(got["content"], content, **TIGHT)


def test_identical_images_give_zero_and_gradients_reach_the_output():
    losses = pconv_losses(weights="random").double()
    output, target, mask = images(size=16, seed=3)
    got = losses(target, target, target)
    assert got["perceptual"].item() == 0 and got["style"].item() == 0
    output.requires_grad_(True)
    total = sum(losses(output, mask * output + (1 - mask) * target, target).values())
    total.backward()
    assert output.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in losses.parameters())
