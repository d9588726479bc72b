"""ChannelwiseFC against an explicit loop of per-channel nn.Linear layers (float64)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.testing import assert_close

from zoo.layers.channelwise_fc import ChannelwiseFC

DT = torch.float64


def reference(x, layer: ChannelwiseFC):
    """Channel by channel: an nn.Linear(H*W, H*W) holding weight[c], bias[c]."""
    n, c, h, w = x.shape
    outs = []
    for ch in range(c):
        fc = nn.Linear(h * w, h * w, bias=layer.bias is not None).to(DT)
        with torch.no_grad():
            fc.weight.copy_(layer.weight[ch])
            if layer.bias is not None:
                fc.bias.copy_(layer.bias[ch])
        outs.append(fc(x[:, ch].reshape(n, h * w)).reshape(n, h, w))
    return torch.stack(outs, dim=1)


@pytest.mark.parametrize("c,h,w", [(1, 1, 1), (3, 4, 4), (5, 3, 6), (2, 7, 2)])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_per_channel_linear(c, h, w, bias):
    torch.manual_seed(0)
    layer = ChannelwiseFC(c, h, w, bias=bias).to(DT)
    x = torch.randn(3, c, h, w, dtype=DT)
    err = (layer(x) - reference(x, layer)).abs().max().item()
    assert_close(layer(x), reference(x, layer), rtol=0, atol=1e-12, msg=f"max |diff| {err:.3e}")


def test_no_cross_channel_connections():
    torch.manual_seed(1)
    layer = ChannelwiseFC(4, 3, 3).to(DT)
    x = torch.randn(2, 4, 3, 3, dtype=DT)
    y = x.clone()
    y[:, 2] += torch.randn(2, 3, 3, dtype=DT)  # change one channel only
    diff = (layer(x) - layer(y)).abs().sum(dim=(0, 2, 3))
    assert diff[2] > 0 and (diff[[0, 1, 3]] == 0).all()


def test_every_output_position_sees_every_input_position():
    layer = ChannelwiseFC(1, 4, 5).to(DT)
    x = torch.randn(1, 1, 4, 5, dtype=DT, requires_grad=True)
    (g,) = torch.autograd.grad(layer(x)[0, 0, 3, 0], x)
    assert (g != 0).all()  # fully connected within the map


@pytest.mark.parametrize("c,h,w", [(256, 6, 6), (512, 4, 4), (3, 5, 7)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("mix", [False, True])
def test_parameter_count(c, h, w, bias, mix):
    layer = ChannelwiseFC(c, h, w, bias=bias, mix_channels=mix)
    expected = c * (h * w) ** 2 + (c * h * w if bias else 0) + ((c * c + c) if mix else 0)
    assert sum(p.numel() for p in layer.parameters()) == expected
    if (c, h, w, bias, mix) == (256, 6, 6, False, False):
        assert expected == 331_776  # paper: m n^4 = 256 * 6^4


def test_mix_channels_is_a_1x1_conv_after_the_fc():
    torch.manual_seed(2)
    layer = ChannelwiseFC(3, 4, 4, mix_channels=True).to(DT)
    x = torch.randn(2, 3, 4, 4, dtype=DT)
    expected = F.conv2d(reference(x, layer), layer.mix.weight, layer.mix.bias)
    assert_close(layer(x), expected, rtol=0, atol=1e-12)


def test_gradcheck_and_bad_shape():
    torch.manual_seed(3)
    layer = ChannelwiseFC(2, 3, 2).to(DT)
    x = torch.randn(2, 2, 3, 2, dtype=DT, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))
    with pytest.raises(ValueError, match="N x 2 x 3 x 2"):
        layer(torch.randn(1, 2, 2, 3, dtype=DT))
