"""PartialConv2d against a per-window loop of the paper's formula (float64), plus identities.

Reference (Liu et al. 2018 eq. 1-2, NVIDIA normalisation, mask 1 = hole, V = 1 - mask):
out(w) = sum(W * X * V) * winsize / sum(V) + b if sum(V) > 0 else 0; new hole = (sum(V) == 0).
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.testing import assert_close

from zoo.layers.partial_conv import PartialConv2d, naoto_to_nvidia_weight, nvidia_to_naoto_weight

DT = torch.float64


def _windows(t: torch.Tensor, k, s, p, d):
    """Yield (i, j, window C x kh x kw) of the zero-padded tensor t (C x H x W)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = k, s, p, d
    tp = F.pad(t, (pw, pw, ph, ph))
    out_h = (tp.shape[1] - dh * (kh - 1) - 1) // sh + 1
    out_w = (tp.shape[2] - dw * (kw - 1) - 1) // sw + 1
    for i, j in itertools.product(range(out_h), range(out_w)):
        r, c = i * sh, j * sw
        yield i, j, tp[:, r : r + dh * (kh - 1) + 1 : dh, c : c + dw * (kw - 1) + 1 : dw]


def reference_pconv(x, hole, weight, bias, k, s, p, d, multi, naoto=False):
    """Slow per-window partial convolution.  ``naoto=True`` divides by the raw count instead
    (naoto0804 ``PartialConv``: (conv(X*V) - b) / count + b), i.e. no winsize factor."""
    n, c_in = x.shape[:2]
    valid = (1.0 - hole).expand(n, c_in, *x.shape[2:])  # a 1-channel mask is broadcast
    c_out = weight.shape[0]
    outs, holes = [], []
    for b in range(n):
        xw = list(_windows(x[b] * valid[b], k, s, p, d))
        vw = list(_windows(valid[b], k, s, p, d))
        oh, ow = xw[-1][0] + 1, xw[-1][1] + 1
        out = torch.zeros(c_out, oh, ow, dtype=DT)
        new_hole = torch.ones(oh, ow, dtype=DT)
        for (i, j, xs), (_, _, vs) in zip(xw, vw):
            count = vs.sum() if multi else vs[0].sum()
            if count == 0:
                continue
            winsize = (c_in if multi else 1) * k[0] * k[1]
            scale = 1.0 / count if naoto else winsize / count
            out[:, i, j] = (weight * xs).sum(dim=(1, 2, 3)) * scale
            if bias is not None:
                out[:, i, j] += bias
            new_hole[i, j] = 0.0
        outs.append(out)
        holes.append(new_hole.expand(c_out if multi else 1, oh, ow))
    return torch.stack(outs), torch.stack(holes)


def _random_mask(n, c, h, w, gen):
    """Random holes plus a solid 4x4 hole block so that all-hole windows occur."""
    m = (torch.rand(n, c, h, w, generator=gen) < 0.4).to(DT)
    m[:, :, 1:5, 2:6] = 1.0
    return m


def _layer(c_in, c_out, k, s, p, d, bias, multi, seed=0):
    torch.manual_seed(seed)
    layer = PartialConv2d(
        c_in, c_out, k, stride=s, padding=p, dilation=d, bias=bias, multi_channel=multi
    ).to(DT)
    if bias:
        nn.init.normal_(layer.bias)
    return layer


@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("k,s,p,d", [
    (1, 1, 0, 1), (3, 1, 1, 1), (3, 2, 1, 1), (3, 1, 2, 2), (4, 2, 1, 1),
    (5, 2, 2, 1), (5, 1, 0, 2), (7, 2, 3, 1), ((3, 5), (1, 2), (1, 2), (2, 1)),
])  # fmt: skip
def test_matches_per_window_reference(k, s, p, d, bias, multi):
    gen = torch.Generator().manual_seed(1)
    c_in, c_out = 3, 4
    layer = _layer(c_in, c_out, k, s, p, d, bias, multi)
    x = torch.randn(3, c_in, 9, 10, generator=gen, dtype=DT)
    hole = _random_mask(3, c_in if multi else 1, 9, 10, gen)
    hole[2] = 1.0  # a fully masked sample: every window is empty
    out, new_hole = layer(x, hole)
    ref_out, ref_hole = reference_pconv(
        x,
        hole,
        layer.weight.detach(),
        None if layer.bias is None else layer.bias.detach(),
        layer.kernel_size,
        layer.stride,
        layer.padding,
        layer.dilation,
        multi,
    )
    err = (out - ref_out).abs().max().item()
    assert_close(out, ref_out, rtol=0, atol=1e-10, msg=f"max |diff| {err:.3e}")
    assert_close(new_hole, ref_hole, rtol=0, atol=0)
    assert new_hole.shape[1] == (c_out if multi else 1)
    # the test must exercise both empty and partial windows
    assert ref_hole.sum() > 0 and (ref_hole == 0).any()


@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("k,s,d", [(1, 1, 1), (3, 1, 1), (3, 2, 2), (5, 2, 1)])
def test_no_hole_no_padding_equals_conv2d(k, s, d, multi):
    layer = _layer(3, 5, k, s, 0, d, True, multi)
    conv = nn.Conv2d(3, 5, k, stride=s, dilation=d).to(DT)
    conv.load_state_dict(layer.state_dict())
    x = torch.randn(2, 3, 11, 12, dtype=DT)
    expected = conv(x)
    zeros = torch.zeros(2, 3 if multi else 1, 11, 12, dtype=DT)
    for mask in (zeros, None):
        out, new_hole = layer(x, mask)
        assert_close(out, expected, rtol=0, atol=1e-12)
        assert new_hole.abs().sum() == 0


def test_mask_none_is_no_holes_and_renormalises_border():
    """Pinned ``mask=None`` semantics: identical to an all-zero hole mask; a corner window of a
    3x3 conv with padding 1 sees 4 valid pixels and is scaled by 9/4 (NVIDIA's behaviour)."""
    layer = _layer(2, 3, 3, 1, 1, 1, True, False)
    x = torch.randn(1, 2, 6, 7, dtype=DT)
    out_none, hole_none = layer(x, None)
    out_zero, hole_zero = layer(x, torch.zeros(1, 1, 6, 7, dtype=DT))
    assert_close(out_none, out_zero, rtol=0, atol=0)
    assert_close(hole_none, hole_zero, rtol=0, atol=0)
    w, b = layer.weight.detach(), layer.bias.detach()
    corner = (w[:, :, 1:, 1:] * x[0, :, :2, :2]).sum(dim=(1, 2, 3)) * 9 / 4 + b
    assert_close(out_none[0, :, 0, 0], corner, rtol=0, atol=1e-12)
    plain = F.conv2d(x, w, b, padding=1)
    assert_close(out_none[..., 1:-1, 1:-1], plain[..., 1:-1, 1:-1], rtol=0, atol=1e-12)
    assert not torch.allclose(out_none[..., 0, 0], plain[..., 0, 0])


def test_all_hole_window_gives_zero_and_hole():
    layer = _layer(3, 4, 3, 1, 1, 1, True, False)
    x = torch.randn(1, 3, 8, 8, dtype=DT)
    hole = torch.zeros(1, 1, 8, 8, dtype=DT)
    hole[..., 2:7, 2:7] = 1.0  # 5x5 hole: the 3x3 windows centred in its inner 3x3 are empty
    out, new_hole = layer(x, hole)
    assert (out[..., 3:6, 3:6] == 0).all()
    assert (new_hole[..., 3:6, 3:6] == 1).all()
    assert new_hole.sum() == 9 and (out[..., new_hole[0, 0] == 0] != 0).all()
    # values under the hole do not matter
    x2 = x.clone()
    x2[..., 2:7, 2:7] = 1e6
    assert_close(layer(x2, hole)[0], out, rtol=0, atol=1e-9)


def test_stateless_masked_unmasked_masked():
    layer = _layer(3, 4, 3, 1, 1, 1, True, False)
    x = torch.randn(2, 3, 8, 8, dtype=DT)
    hole = _random_mask(2, 1, 8, 8, torch.Generator().manual_seed(3))
    first = layer(x, hole)
    free = layer(x, None)
    again = layer(x, hole)
    assert_close(first, again, rtol=0, atol=0)
    assert_close(layer(x, None), free, rtol=0, atol=0)
    assert not any(isinstance(v, torch.Tensor) for v in vars(layer).values())


@pytest.mark.parametrize("k,s,p", [(3, 1, 1), (5, 2, 2), (7, 2, 3)])
def test_naoto_weights_converted_agree(k, s, p):
    """naoto's formula (slow reference with naoto=True, weights W_naoto) == our layer with
    W_naoto / (C_in*k*k) and a multi-channel mask."""
    gen = torch.Generator().manual_seed(5)
    c_in, c_out = 3, 2
    w_naoto = torch.randn(c_out, c_in, k, k, generator=gen, dtype=DT)
    b = torch.randn(c_out, generator=gen, dtype=DT)
    x = torch.randn(2, c_in, 10, 9, generator=gen, dtype=DT)
    hole = _random_mask(2, c_in, 10, 9, gen)
    ref, ref_hole = reference_pconv(
        x, hole, w_naoto, b, (k, k), (s, s), (p, p), (1, 1), True, naoto=True
    )
    layer = PartialConv2d(c_in, c_out, k, stride=s, padding=p, multi_channel=True).to(DT)
    with torch.no_grad():
        layer.weight.copy_(naoto_to_nvidia_weight(w_naoto))
        layer.bias.copy_(b)
    out, new_hole = layer(x, hole)
    assert_close(out, ref, rtol=0, atol=1e-10)
    assert_close(new_hole, ref_hole, rtol=0, atol=0)
    assert_close(nvidia_to_naoto_weight(layer.weight.detach()), w_naoto, rtol=0, atol=1e-12)
    # without the conversion the two normalisations disagree by the factor C_in*k*k
    with torch.no_grad():
        layer.weight.copy_(w_naoto)
    assert not torch.allclose(layer(x, hole)[0], ref)


@pytest.mark.parametrize("multi", [False, True])
def test_gradients_flow(multi):
    layer = _layer(2, 3, 3, 2, 1, 1, True, multi)
    x = torch.randn(1, 2, 6, 6, dtype=DT, requires_grad=True)
    hole = _random_mask(1, 2 if multi else 1, 6, 6, torch.Generator().manual_seed(2))

    def f(x, w, b):
        return torch.func.functional_call(layer, {"weight": w, "bias": b}, (x, hole))[0]

    assert torch.autograd.gradcheck(f, (x, layer.weight, layer.bias))
    out, _ = layer(x, hole)
    out.sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    assert layer.bias.grad.abs().sum() > 0
    # no gradient reaches hole pixels
    hole_pixels = hole.expand_as(x).bool()
    assert (x.grad[hole_pixels] == 0).all() and (x.grad[~hole_pixels] != 0).any()


def test_bad_inputs():
    with pytest.raises(ValueError, match="groups"):
        PartialConv2d(4, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode"):
        PartialConv2d(4, 4, 3, padding_mode="reflect")
    layer = PartialConv2d(3, 4, 3, padding=1)
    x = torch.randn(1, 3, 8, 8)
    with pytest.raises(ValueError, match="single-channel"):
        layer(x, torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="does not match"):
        layer(x, torch.zeros(1, 1, 7, 8))
    with pytest.raises(ValueError, match="N x 3"):
        layer(torch.randn(1, 2, 8, 8), None)
    multi = PartialConv2d(3, 4, 3, padding=1, multi_channel=True)
    with pytest.raises(ValueError, match="multi-channel"):
        multi(x, torch.zeros(1, 1, 8, 8))
