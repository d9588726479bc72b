"""Dilated blocks against explicit functional references, and receptive-field arithmetic against
empirical receptive fields (support of the gradient of one output pixel w.r.t. the input)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.testing import assert_close

from zoo.layers.dilated import DilatedConvBlock, DilatedResidualBlock, same_padding
from zoo.layers.receptive_field import (
    LayerGeometry,
    input_span,
    layers_from_module,
    receptive_field,
    receptive_field_of_module,
)

DT = torch.float64


def zero_inserted(weight: torch.Tensor, d: int) -> torch.Tensor:
    """The dilated kernel written out: d-1 zeros between taps, size d*(k-1)+1."""
    c_out, c_in, kh, kw = weight.shape
    big = torch.zeros(c_out, c_in, d * (kh - 1) + 1, d * (kw - 1) + 1, dtype=weight.dtype)
    big[:, :, ::d, ::d] = weight
    return big


# ------------------------------------------------------------------------- dilated blocks
@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("d", [1, 2, 3, 4])
@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_dilated_conv_is_conv_with_zero_inserted_kernel(k, d, mode):
    torch.manual_seed(0)
    block = DilatedConvBlock(3, 4, kernel_size=k, dilation=d, act_layer=None, padding_mode=mode)
    block = block.to(DT)
    x = torch.randn(2, 3, 19, 17, dtype=DT)
    pad = d * (k - 1) // 2
    xp = F.pad(x, (pad,) * 4, mode="constant" if mode == "zeros" else "reflect")
    w = block.conv.weight.detach()
    expected = F.conv2d(xp, zero_inserted(w, d), block.conv.bias.detach())
    out = block(x)
    assert out.shape[-2:] == x.shape[-2:]  # size preserved
    err = (out - expected).abs().max().item()
    assert_close(out, expected, rtol=0, atol=1e-10, msg=f"max |diff| {err:.3e}")


@pytest.mark.parametrize("norm_after_act", [False, True])
def test_block_order_and_norm(norm_after_act):
    torch.manual_seed(1)
    block = DilatedConvBlock(
        3, 5, dilation=2, norm_layer=nn.BatchNorm2d, norm_after_act=norm_after_act
    ).to(DT)
    bn = block.norm
    with torch.no_grad():  # non-trivial eval-mode statistics
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.normal_()
        bn.bias.normal_()
    block.eval()
    x = torch.randn(2, 3, 12, 12, dtype=DT)
    y = F.conv2d(x, block.conv.weight, block.conv.bias, padding=2, dilation=2)

    def norm(t):
        return F.batch_norm(t, bn.running_mean, bn.running_var, bn.weight, bn.bias, False)

    expected = norm(F.relu(y)) if norm_after_act else F.relu(norm(y))
    assert_close(block(x), expected, rtol=0, atol=1e-12)
    other = F.relu(norm(y)) if norm_after_act else norm(F.relu(y))
    assert not torch.allclose(expected, other)  # the two orders really differ


def reference_resnet_block(x, w1, b1, w2, b2, d):
    """EdgeConnect ResnetBlock written with plain functional calls."""
    h = F.conv2d(F.pad(x, (d,) * 4, mode="reflect"), w1, b1, dilation=d)
    h = F.relu(F.instance_norm(h, eps=1e-5))
    h = F.conv2d(F.pad(h, (1,) * 4, mode="reflect"), w2, b2)
    return x + F.instance_norm(h, eps=1e-5)


@pytest.mark.parametrize("d", [1, 2, 4])
@pytest.mark.parametrize("bias", [True, False])
def test_residual_block_matches_reference(d, bias):
    torch.manual_seed(2)
    block = DilatedResidualBlock(6, dilation=d, bias=bias).to(DT)
    x = torch.randn(2, 6, 11, 13, dtype=DT)
    c1, c2 = block.conv_block[1], block.conv_block[5]
    expected = reference_resnet_block(x, c1.weight, c1.bias, c2.weight, c2.bias, d)
    assert_close(block(x), expected, rtol=0, atol=1e-10)


def test_residual_identity_when_second_conv_is_zero():
    torch.manual_seed(3)
    block = DilatedResidualBlock(4, dilation=2).to(DT)
    with torch.no_grad():
        block.conv_block[5].weight.zero_()
        block.conv_block[5].bias.zero_()
    x = torch.randn(2, 4, 9, 9, dtype=DT)
    assert_close(block(x), x, rtol=0, atol=0)


def test_residual_spectral_norm_wrapper_and_official_keys():
    block = DilatedResidualBlock(4, dilation=2, bias=False, conv_wrapper=nn.utils.spectral_norm)
    keys = set(block.state_dict())
    # EdgeConnect's legacy spectral-norm layout: conv_block.1 / conv_block.5, no biases
    assert keys == {
        f"conv_block.{i}.{n}" for i in (1, 5) for n in ("weight_orig", "weight_u", "weight_v")
    }
    plain = DilatedResidualBlock(4, dilation=2)
    assert set(plain.state_dict()) == {
        f"conv_block.{i}.{n}" for i in (1, 5) for n in ("weight", "bias")
    }


def test_same_padding_validation():
    assert same_padding(3, 16) == 16 and same_padding(7, 2) == 6
    with pytest.raises(ValueError, match="odd"):
        same_padding(4, 1)


# ------------------------------------------------------------------------ receptive field
def _positive_init(net: nn.Module, seed: int = 0) -> nn.Module:
    """Positive weights and zero biases: no cancellations, so the gradient support is exactly
    the set of input pixels an output pixel depends on."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen, dtype=DT) + 0.1)
                if m.bias is not None:
                    m.bias.zero_()
    return net.to(DT).eval()


def empirical_span(net, size, out_pos, axis, channels=1):
    """First/last input row (axis 0) or column (axis 1) with a nonzero gradient of one output
    pixel; the other coordinate sits in the middle of the output."""
    x = torch.rand(1, channels, size, size, dtype=DT, requires_grad=True)
    y = net(x)
    mid = y.shape[-1] // 2
    pixel = y[0, 0, out_pos, mid] if axis == 0 else y[0, 0, mid, out_pos]
    (g,) = torch.autograd.grad(pixel, x)
    support = (g[0].abs().sum(0) != 0).nonzero()[:, axis]
    return support.min().item(), support.max().item()


def _act():
    return nn.LeakyReLU(0.1)  # strictly monotone: never blocks a gradient


SMALL_NETS = {
    "strided_dilated": lambda: nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), _act(), nn.Conv2d(2, 2, 3, stride=2, padding=1),
        nn.BatchNorm2d(2), _act(), nn.Conv2d(2, 2, 3, padding=2, dilation=2), _act(),
        nn.AvgPool2d(2), nn.Conv2d(2, 1, 5, stride=2, dilation=3, padding=6),
    ),
    "transposed": lambda: nn.Sequential(
        nn.Conv2d(1, 2, 3, stride=2, padding=1), _act(),
        nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1), _act(),
        nn.ConvTranspose2d(2, 2, 3, stride=3, padding=0, dilation=2), _act(),
        nn.Conv2d(2, 1, 3, padding=1),
    ),
    "upsampling": lambda: nn.Sequential(
        nn.ReflectionPad2d((1, 2, 3, 0)), nn.Conv2d(1, 2, 3, stride=2), _act(),
        nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(2, 2, 3, padding=1), _act(),
        nn.Upsample(scale_factor=3, mode="bilinear"), nn.Conv2d(2, 2, (3, 5), padding=(1, 2)),
        nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(2, 1, 1),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SMALL_NETS))
@pytest.mark.parametrize("axis", [0, 1])
def test_receptive_field_matches_gradient_support(name, axis):
    torch.manual_seed(4)
    net = _positive_init(SMALL_NETS[name]())
    layers = layers_from_module(net, axis=axis)
    size = 100
    with torch.no_grad():
        out_size = net(torch.zeros(1, 1, size, size, dtype=DT)).shape[-1]
    period = 1
    for layer in layers:
        period *= layer.upsampling
    start = out_size // 2 - period
    extents = []
    for o in range(start, start + period):
        lo, hi = empirical_span(net, size, o, axis)
        assert 0 < lo and hi < size - 1, "probe too close to the border"
        assert input_span(layers, o) == (lo, hi), f"output {o}"  # exact position, not only size
        extents.append(hi - lo + 1)
    assert receptive_field(layers) == max(extents)


def test_plain_conv_chain_is_the_classic_formula():
    layers = [
        LayerGeometry("conv", kernel_size=k, stride=s, dilation=d)
        for k, s, d in [(5, 1, 1), (3, 2, 1), (3, 1, 4), (7, 2, 2), (3, 1, 16)]
    ]
    rf, jump = 1, 1
    for layer in layers:
        rf += layer.dilation * (layer.kernel_size - 1) * jump
        jump *= layer.stride
    assert receptive_field(layers) == rf == 1 + 4 + 2 + 16 + 24 + 128


# GLCIC completion network, models.md section 3 (= paper Table 1 = otenim):
# (type, kernel, dilation, stride, out channels); "deconv" = 4x4 stride-1/2 transposed conv.
GLCIC_TABLE = [
    ("conv", 5, 1, 1, 64), ("conv", 3, 1, 2, 128), ("conv", 3, 1, 1, 128),
    ("conv", 3, 1, 2, 256), ("conv", 3, 1, 1, 256), ("conv", 3, 1, 1, 256),
    ("conv", 3, 2, 1, 256), ("conv", 3, 4, 1, 256), ("conv", 3, 8, 1, 256),
    ("conv", 3, 16, 1, 256), ("conv", 3, 1, 1, 256), ("conv", 3, 1, 1, 256),
    ("deconv", 4, 1, 2, 128), ("conv", 3, 1, 1, 128), ("deconv", 4, 1, 2, 64),
    ("conv", 3, 1, 1, 32), ("conv", 3, 1, 1, 3),
]  # fmt: skip


def glcic_completion(width_div=1, dilated=True, resize_conv=False):
    """The completion network from the table (conv + BN + ReLU, sizes kept).  ``width_div``
    shrinks the channels for the empirical check; ``resize_conv`` replaces each deconvolution
    by nearest x2 upsampling + 4x4 conv (the reading that gives the paper's 307)."""
    layers, c_in = [], 4 if width_div == 1 else 1
    for i, (kind, k, d, s, c) in enumerate(GLCIC_TABLE):
        c_out = max(1, c // width_div)
        d = d if dilated else 1
        if kind == "deconv" and resize_conv:
            layers += [
                nn.Upsample(scale_factor=s, mode="nearest"),
                nn.ZeroPad2d((1, 2, 1, 2)),
                nn.Conv2d(c_in, c_out, k),
            ]
        elif kind == "deconv":
            layers.append(nn.ConvTranspose2d(c_in, c_out, k, stride=s, padding=1))
        else:
            layers.append(nn.Conv2d(c_in, c_out, k, stride=s, padding=d * (k - 1) // 2, dilation=d))
        if i < len(GLCIC_TABLE) - 1:
            layers += [nn.BatchNorm2d(c_out), nn.ReLU() if width_div == 1 else _act()]
        c_in = c_out
    return nn.Sequential(*layers)


def test_glcic_receptive_field():
    full = glcic_completion()  # real channel counts: geometry only, no forward pass
    # models.md section 0.1: otenim CompletionNetwork, 6,072,131 parameters (measured)
    assert sum(p.numel() for p in full.parameters()) == 6_072_131
    layers = layers_from_module(full)
    convs = [m for m in full if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert len(convs) == 17
    # at the last 1/4-resolution layer (conv12): 1 + 4 + 2 + 2*2 + 2*2*4 + (4+8+16+32)*4 + 2*8
    assert receptive_field(layers[:12]) == 287
    # exact at the output, true transposed convolutions: 303 (worst case), 299 at other rows
    assert receptive_field(layers) == 303
    assert {s[1] - s[0] + 1 for o in range(8) if (s := input_span(layers, o))} == {299, 303}
    # the paper's 307: deconvolutions read as x2 upsampling + 4x4 conv
    resize = layers_from_module(glcic_completion(resize_conv=True))
    assert receptive_field(resize) == 307
    # same reading without dilation: 99 (the paper's figure for that case, as recalled)
    assert (
        receptive_field(layers_from_module(glcic_completion(dilated=False, resize_conv=True))) == 99
    )
    assert receptive_field(layers_from_module(glcic_completion(dilated=False))) == 95


@pytest.mark.parametrize("resize_conv,expected", [(False, 303), (True, 307)])
def test_glcic_receptive_field_empirical(resize_conv, expected):
    net = _positive_init(glcic_completion(width_div=256, resize_conv=resize_conv))
    layers = layers_from_module(net)
    size = 392
    extents = []
    for o in range(size // 2 - 4, size // 2 + 4):
        lo, hi = empirical_span(net, size, o, axis=0)
        assert input_span(layers, o) == (lo, hi)
        extents.append(hi - lo + 1)
    assert max(extents) == expected == receptive_field(layers)


def test_layers_from_module_refuses_unknown_layers():
    with pytest.raises(TypeError, match="Flatten"):
        layers_from_module(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Flatten()))
    with pytest.raises(ValueError, match="align_corners"):
        layers_from_module(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True))
    assert layers_from_module(
        nn.Sequential(nn.Conv2d(1, 1, 3), nn.Flatten()), pointwise=(nn.Flatten,)
    )
    # spectral-norm parametrized convs keep their geometry
    sn = nn.utils.parametrizations.spectral_norm(nn.Conv2d(1, 1, 5, dilation=2))
    assert receptive_field_of_module(nn.Sequential(sn, nn.ReLU())) == 9
