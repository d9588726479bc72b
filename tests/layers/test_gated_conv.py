"""GatedConv2d / GatedDeconv2d against references written here: two separate convolutions with
sliced weights, an explicit window loop, saturated gates, and the TF align_corners resize."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import zoo.layers.gated_conv as gated_conv_module
from zoo.layers.fast_deconv import interleave_phases
from zoo.layers.gated_conv import (
    GatedConv2d,
    GatedDeconv2d,
    conv2d_gated_rows,
    gated_activation,
    phase_weights,
    upsample_conv3x3,
)

DT = torch.float64


def tf_pad(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TF 'SAME': ceil output, extra padding after."""
    total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def reference_two_convs(layer: GatedConv2d, x: torch.Tensor, act) -> torch.Tensor:
    """feature conv and gate conv run separately with the halves of the fused weight."""
    w, b = layer.conv.weight, layer.conv.bias
    c = layer.out_channels
    k, s, d = layer.kernel_size, layer.stride, layer.dilation
    top, bottom = tf_pad(x.shape[-2], k, s, d)
    left, right = tf_pad(x.shape[-1], k, s, d)
    xp = F.pad(x, (left, right, top, bottom))
    feature = F.conv2d(xp, w[:c], b[:c], stride=s, dilation=d)
    gate = F.conv2d(xp, w[c:], b[c:], stride=s, dilation=d)
    return act(feature) * torch.sigmoid(gate)


def make(in_ch: int, out_ch: int, k: int, s: int = 1, d: int = 1, act=nn.ELU, seed: int = 0):
    torch.manual_seed(seed)
    layer = GatedConv2d(in_ch, out_ch, k, s, d, activation=act).to(DT)
    with torch.no_grad():
        layer.conv.bias.normal_()  # official init is zero; random biases test the split
    return layer


@pytest.mark.parametrize("h, w", [(9, 9), (8, 10), (13, 6)])
@pytest.mark.parametrize(
    "k, s, d", [(3, 1, 1), (3, 2, 1), (5, 1, 1), (5, 2, 1), (3, 1, 2), (3, 1, 4)]
)
@pytest.mark.parametrize("act, fn", [(nn.ELU, F.elu), (nn.ReLU, F.relu)])
def test_equals_two_sliced_convs(h: int, w: int, k: int, s: int, d: int, act, fn) -> None:
    layer = make(4, 6, k, s, d, act)
    x = torch.randn(2, 4, h, w, dtype=DT, generator=torch.Generator().manual_seed(1))
    got = layer(x)
    ref = reference_two_convs(layer, x, fn)
    assert got.shape == (2, 6, math.ceil(h / s), math.ceil(w / s))
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("k, s, d", [(3, 2, 1), (5, 2, 1), (3, 1, 2)])
def test_matches_window_loop(k: int, s: int, d: int) -> None:
    """Every output pixel from an explicit sum over its (TF-placed) window."""
    layer = make(2, 3 + 1, k, s, d)  # 4 effective channels, gated
    x = torch.randn(1, 2, 7, 8, dtype=DT, generator=torch.Generator().manual_seed(2))
    w, b = layer.conv.weight, layer.conv.bias
    top, _ = tf_pad(7, k, s, d)
    left, _ = tf_pad(8, k, s, d)
    out = layer(x)
    c = layer.out_channels
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            acc = b.clone()
            for a in range(k):
                for bb in range(k):
                    r, q = i * s - top + a * d, j * s - left + bb * d
                    if 0 <= r < 7 and 0 <= q < 8:
                        acc += w[:, :, a, bb] @ x[0, :, r, q]
            ref = F.elu(acc[:c]) * torch.sigmoid(acc[c:])
            torch.testing.assert_close(out[0, :, i, j], ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("act, fn", [(nn.ELU, F.elu), (nn.ReLU, F.relu)])
def test_saturated_gate_is_plain_activation(act, fn) -> None:
    layer = make(3, 5, 3, 2, 1, act)
    with torch.no_grad():
        layer.conv.bias[5:] = 1e4  # sigmoid(gate) == 1 exactly in float64
    x = torch.randn(2, 3, 10, 11, dtype=DT, generator=torch.Generator().manual_seed(3))
    top, bottom = tf_pad(10, 3, 2, 1)
    left, right = tf_pad(11, 3, 2, 1)
    feature = F.conv2d(
        F.pad(x, (left, right, top, bottom)), layer.conv.weight[:5], layer.conv.bias[:5], stride=2
    )
    torch.testing.assert_close(layer(x), fn(feature), rtol=0, atol=1e-12)
    with torch.no_grad():
        layer.conv.bias[5:] = -1e4  # closed gate
    assert layer(x).abs().max().item() == 0.0


@pytest.mark.parametrize("out_ch, act", [(3, nn.ELU), (4, None)])
def test_plain_conv_cases(out_ch: int, act) -> None:
    """Official gen_conv: 3 outputs or no activation -> plain convolution, no split."""
    layer = make(5, out_ch, 3, 1, 1, act)
    assert layer.conv.out_channels == out_ch and not layer.gated
    x = torch.randn(1, 5, 6, 7, dtype=DT, generator=torch.Generator().manual_seed(4))
    ref = F.conv2d(F.pad(x, (1, 1, 1, 1)), layer.conv.weight, layer.conv.bias)
    torch.testing.assert_close(layer(x), ref, rtol=0, atol=1e-12)


def test_official_shapes_keys_and_init() -> None:
    layer = GatedConv2d(5, 24, 5)  # DeepFill v2 conv1: TF declares 48 outputs
    assert layer.conv.weight.shape == (48, 5, 5, 5)
    assert sum(p.numel() for p in layer.parameters()) == 48 * 5 * 25 + 48
    assert set(layer.state_dict()) == {"conv.weight", "conv.bias"}
    assert layer.conv.bias.abs().max().item() == 0.0
    bound = math.sqrt(6.0 / (5 * 25 + 48 * 25))  # glorot_uniform
    assert layer.conv.weight.abs().max().item() <= bound
    deconv = GatedDeconv2d(96, 48)
    assert set(deconv.state_dict()) == {"conv.conv.weight", "conv.conv.bias"}
    assert deconv.conv.conv.weight.shape == (96, 96, 3, 3)


def tf_align_corners_index(y: int, n_in: int, n_out: int) -> int:
    """tf.image.resize_nearest_neighbor(align_corners=True): round-half-away(y*(in-1)/(out-1))."""
    if n_out == 1:
        return 0
    return min(int(math.floor(y * (n_in - 1) / (n_out - 1) + 0.5)), n_in - 1)


@pytest.mark.parametrize("n", list(range(1, 70)) + [128, 255, 512])
def test_x2_nearest_equals_tf_align_corners(n: int) -> None:
    """The x2 upsampling of GatedDeconv2d picks the rows neuralgym's resize picks."""
    x = torch.arange(n, dtype=DT).view(1, 1, n, 1)
    up = F.interpolate(x, scale_factor=2, mode="nearest")[0, 0, :, 0].long().tolist()
    assert up == [tf_align_corners_index(y, n, 2 * n) for y in range(2 * n)]


@pytest.mark.parametrize("h, w", [(4, 4), (5, 7)])
def test_deconv_is_upsample_then_gated_conv(h: int, w: int) -> None:
    torch.manual_seed(5)
    deconv = GatedDeconv2d(3, 4).to(DT)
    with torch.no_grad():
        deconv.conv.conv.bias.normal_()
    x = torch.randn(2, 3, h, w, dtype=DT)
    up = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # N x C x 2H x 2W
    ref = reference_two_convs(deconv.conv, up, F.elu)
    out = deconv(x)
    assert out.shape == (2, 4, 2 * h, 2 * w)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


CL = torch.channels_last


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("halves", [1, 2])
@pytest.mark.parametrize("n, h, w", [(1, 4, 4), (2, 5, 7), (1, 1, 3)])
def test_phase_convolution_equals_upsample_then_conv(channels_last, halves, n, h, w) -> None:
    """upsample_conv3x3 + interleave_phases == nearest x2 then 3x3 conv with padding 1."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(n, 3, h, w, generator=g, dtype=DT)
    weight = torch.randn(4 * halves, 3, 3, 3, generator=g, dtype=DT)
    bias = torch.randn(4 * halves, generator=g, dtype=DT)
    up = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    ref = F.conv2d(up, weight, bias, padding=1)  # N x 4*halves x 2H x 2W
    if channels_last:
        x = x.contiguous(memory_format=CL)
    z = upsample_conv3x3(x, weight, bias, halves)
    assert z.shape == (n, 16 * halves, h + 1, w + 1)
    c = 4
    # channel (half * 4 + phase) * C + c: each half interleaves to its block of outputs
    got = torch.cat(
        [interleave_phases(z[:, i * 4 * c : (i + 1) * 4 * c], c) for i in range(halves)], dim=1
    )
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
    out = interleave_phases(z, 4 * halves) if halves == 1 else None
    if out is not None:
        assert out.is_contiguous(memory_format=CL if channels_last else torch.contiguous_format)
        # exact strides (also of a size-1 batch axis): convolutions pick their layout from them
        layout = CL if channels_last else torch.contiguous_format
        assert out.stride() == torch.empty(out.shape, memory_format=layout).stride()


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("act", [nn.ELU, None])
def test_deconv_channels_last_and_gradients(channels_last: bool, act) -> None:
    """Phase path: same values and input/weight gradients as upsample + conv, either layout."""
    torch.manual_seed(8)
    deconv = GatedDeconv2d(3, 4, activation=act).to(DT)
    with torch.no_grad():
        deconv.conv.conv.bias.normal_()
    x = torch.randn(2, 3, 5, 6, dtype=DT)
    if channels_last:
        x = x.contiguous(memory_format=CL)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out = deconv(x1)
    up = F.interpolate(x2, scale_factor=2, mode="nearest")
    y = F.conv2d(up, deconv.conv.conv.weight, deconv.conv.conv.bias, padding=1)
    ref = F.elu(y[:, :4]) * torch.sigmoid(y[:, 4:]) if act is not None else y
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    g = torch.randn_like(ref)
    gx1, gw1 = torch.autograd.grad(out, (x1, deconv.conv.conv.weight), g)
    gx2, gw2 = torch.autograd.grad(ref, (x2, deconv.conv.conv.weight), g)
    torch.testing.assert_close(gx1, gx2, rtol=0, atol=1e-12)
    torch.testing.assert_close(gw1, gw2, rtol=0, atol=1e-11)
    with torch.inference_mode():
        torch.testing.assert_close(deconv(x), out.detach(), rtol=0, atol=0)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("c", [3, 32, 40])  # dense copies for C % 32 != 0 in channels_last
@pytest.mark.parametrize("act", [nn.ELU(), nn.ReLU(), nn.Tanh()])
def test_gated_activation_in_place_equals_autograd_path(channels_last, c, act) -> None:
    g = torch.Generator().manual_seed(9)
    y = torch.randn(2, 2 * c, 5, 4, generator=g, dtype=DT)
    ref = act(y[:, :c]) * torch.sigmoid(y[:, c:])
    if channels_last:
        y = y.contiguous(memory_format=CL)
    # vectorised and scalar CPU loops may round ELU/sigmoid differently by an ulp
    yg = y.clone().requires_grad_()
    with_grad = gated_activation(yg, c, act)
    torch.testing.assert_close(with_grad, ref, rtol=0, atol=1e-15)
    with torch.no_grad():  # in place on a copy; the caller's tensor is the conv output
        torch.testing.assert_close(gated_activation(y.clone(), c, act), ref, rtol=0, atol=1e-15)
    torch.testing.assert_close(yg.detach(), y, rtol=0, atol=0)  # autograd path: no in-place


@pytest.mark.parametrize("k, s, d", [(3, 1, 1), (3, 2, 1), (5, 1, 1), (5, 2, 1), (3, 1, 4)])
def test_gated_conv_channels_last_and_inference(k: int, s: int, d: int) -> None:
    layer = make(4, 40, k, s, d)
    x = torch.randn(2, 4, 9, 8, dtype=DT, generator=torch.Generator().manual_seed(10))
    ref = reference_two_convs(layer, x, F.elu)
    with torch.inference_mode():
        torch.testing.assert_close(layer(x), ref, rtol=0, atol=1e-12)
        out = layer(x.contiguous(memory_format=CL))
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


def test_bad_input() -> None:
    layer = GatedConv2d(3, 4, 3)
    with pytest.raises(ValueError, match="expected N x 3"):
        layer(torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="out_channels"):
        GatedConv2d(3, 0, 3)
    with pytest.raises(TypeError, match="activation"):
        GatedConv2d(3, 4, 3, activation="elu")  # type: ignore[arg-type]


def reference_rows_loop(x, weight, bias, pad, s, d, c, act) -> torch.Tensor:
    """Every output pixel as an explicit window dot product, then act(feature) * sigmoid(gate)."""
    xp = F.pad(x, pad)
    n, _, h, w = xp.shape
    k = weight.shape[-1]
    ho, wo = (h - d * (k - 1) - 1) // s + 1, (w - d * (k - 1) - 1) // s + 1
    y = torch.empty(n, weight.shape[0], ho, wo, dtype=x.dtype)
    for i in range(ho):
        for j in range(wo):
            win = xp[:, :, i * s : i * s + d * (k - 1) + 1 : d, j * s : j * s + d * (k - 1) + 1 : d]
            y[:, :, i, j] = torch.einsum("nckl,ockl->no", win, weight) + bias
    return act(y[:, :c]) * torch.sigmoid(y[:, c:])


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("tile", [1, 40, 300, 1 << 20])  # 1 row per tile .. a single tile
@pytest.mark.parametrize(
    "k, s, d, pad, n, h, w",
    [
        (3, 1, 1, (1, 1, 1, 1), 1, 9, 7),
        (5, 1, 1, (2, 2, 2, 2), 2, 8, 6),
        (3, 2, 1, (0, 1, 0, 1), 1, 10, 8),  # TF 'SAME' stride 2: extra bottom row / right col
        (5, 2, 1, (1, 2, 1, 2), 2, 9, 8),
        (3, 1, 3, (3, 3, 3, 3), 1, 7, 9),
        (2, 1, 1, (1, 1, 1, 1), 1, 6, 5),  # phase kernels of the upsampling layers
    ],
)
def test_row_tiles_equal_whole_image(channels_last, tile, k, s, d, pad, n, h, w) -> None:
    """conv2d_gated_rows == explicit window loop (every tile size, edge tiles, strides)."""
    g = torch.Generator().manual_seed(11)
    c = 3
    x = torch.randn(n, 4, h, w, generator=g, dtype=DT)
    weight = torch.randn(2 * c, 4, k, k, generator=g, dtype=DT)
    bias = torch.randn(2 * c, generator=g, dtype=DT)
    ref = reference_rows_loop(x, weight, bias, pad, s, d, c, F.elu)
    if channels_last:
        x = x.contiguous(memory_format=CL)
    with torch.inference_mode():
        out = conv2d_gated_rows(x, weight, bias, pad, s, d, c, nn.ELU(), tile_floats=tile)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    layout = CL if channels_last else torch.contiguous_format
    assert out.is_contiguous(memory_format=layout)


@pytest.mark.parametrize("act", [nn.ELU, nn.ReLU])
@pytest.mark.parametrize("k, s, d", [(5, 1, 1), (3, 2, 1), (3, 1, 2)])
def test_layers_use_row_tiles_in_inference(monkeypatch, act, k, s, d) -> None:
    """With a tiny tile size the inference path of GatedConv2d / GatedDeconv2d runs in row
    tiles and still equals the two-convolution reference / upsample + conv."""
    monkeypatch.setattr(gated_conv_module, "ROW_TILES", True)
    monkeypatch.setattr(gated_conv_module, "TILE_FLOATS", 16)
    torch.manual_seed(12)
    layer = make(4, 6, k, s, d, act=act)
    x = torch.randn(2, 4, 10, 8, dtype=DT).contiguous(memory_format=CL)
    ref = reference_two_convs(layer, x, act())
    calls = []
    real = gated_conv_module.conv2d_gated_rows
    monkeypatch.setattr(
        gated_conv_module, "conv2d_gated_rows", lambda *a, **kw: calls.append(1) or real(*a, **kw)
    )
    with torch.inference_mode():
        torch.testing.assert_close(layer(x), ref, rtol=0, atol=1e-12)
        deconv = GatedDeconv2d(4, 5, activation=act).to(DT)
        deconv.conv.conv.bias.normal_()
        up = F.interpolate(x, scale_factor=2, mode="nearest")
        y = F.conv2d(up, deconv.conv.conv.weight, deconv.conv.conv.bias, padding=1)
        torch.testing.assert_close(
            deconv(x), act()(y[:, :5]) * torch.sigmoid(y[:, 5:]), rtol=0, atol=1e-12
        )
    assert len(calls) == 2
    phases, pb = phase_weights(deconv.conv.conv.weight, deconv.conv.conv.bias, 2)
    assert phases.shape == (40, 4, 2, 2) and pb.shape == (40,)
