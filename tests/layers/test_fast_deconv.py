"""The two rewrites of the 4 x 4 stride-2 transposed convolution against a loop that
scatters every input pixel through the kernel (float64, the definition), and the module
against ``nn.ConvTranspose2d`` with the same state dict, forward and backward, on each of
its three paths."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.layers.fast_deconv import (
    FastConvTranspose2d,
    conv_transpose_4x4_s2,
    conv_transpose_4x4_s2_gemm,
)

DT = torch.float64
EXACT = {"rtol": 0.0, "atol": 1e-12}
FORMS = [conv_transpose_4x4_s2, conv_transpose_4x4_s2_gemm]


def scatter_reference(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """Definition of a transposed convolution (stride 2, padding 1): input pixel (i, j) adds
    ``x[:, ci, i, j] * W[ci, co, ky, kx]`` at output (2i - 1 + ky, 2j - 1 + kx)."""
    n, c_in, h, wd = x.shape
    c_out = w.shape[1]
    full = torch.zeros(n, c_out, 2 * h + 2, 2 * wd + 2, dtype=x.dtype)  # before cropping 1
    for i in range(h):
        for j in range(wd):
            for ky in range(4):
                for kx in range(4):
                    contrib = torch.einsum("nc,cd->nd", x[:, :, i, j], w[:, :, ky, kx])
                    full[:, :, 2 * i + ky, 2 * j + kx] += contrib
    out = full[:, :, 1 : 2 * h + 1, 1 : 2 * wd + 1]
    return out if b is None else out + b.view(1, -1, 1, 1)


def _case(seed: int, n: int, c_in: int, c_out: int, h: int, w: int, bias: bool):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c_in, h, w, generator=g, dtype=DT)
    weight = torch.randn(c_in, c_out, 4, 4, generator=g, dtype=DT)
    b = torch.randn(c_out, generator=g, dtype=DT) if bias else None
    return x, weight, b


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("n", "c_in", "c_out", "h", "w"), [(1, 1, 1, 1, 1), (2, 3, 5, 4, 6),
                                                            (1, 4, 2, 7, 3)])  # fmt: skip
@pytest.mark.parametrize("bias", [True, False])
def test_rewrites_equal_the_scatter_definition(form, n, c_in, c_out, h, w, bias) -> None:
    x, weight, b = _case(h * 10 + w, n, c_in, c_out, h, w, bias)
    expected = scatter_reference(x, weight, b)
    torch.testing.assert_close(form(x, weight, b), expected, **EXACT)
    stock = F.conv_transpose2d(x, weight, b, stride=2, padding=1)
    torch.testing.assert_close(stock, expected, **EXACT)  # the loop is the torch layer


@pytest.mark.parametrize("form", FORMS)
def test_channels_last_input_gives_the_same_result(form) -> None:
    x, weight, b = _case(3, 2, 6, 3, 5, 4, True)
    nhwc = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(form(nhwc, weight, b), scatter_reference(x, weight, b), **EXACT)


@pytest.mark.parametrize("side", [2, 4, 6])  # matrix product / stock / phases
def test_module_matches_conv_transpose_forward_and_backward(side: int) -> None:
    torch.manual_seed(side)
    stock = nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1).to(DT)
    fast = FastConvTranspose2d(4, 3, small_pixels=4, large_pixels=36).to(DT)
    fast.load_state_dict(stock.state_dict(), strict=True)
    assert list(fast.state_dict()) == ["weight", "bias"]
    x = torch.randn(2, 4, side, side, dtype=DT, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    y, y2 = stock(x), fast(x2)
    torch.testing.assert_close(y2, y, **EXACT)
    grad = torch.randn_like(y)
    y.backward(grad)
    y2.backward(grad)
    torch.testing.assert_close(x2.grad, x.grad, **EXACT)
    torch.testing.assert_close(fast.weight.grad, stock.weight.grad, **EXACT)
    torch.testing.assert_close(fast.bias.grad, stock.bias.grad, **EXACT)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="kernel-4, stride-2, padding-1"):
        FastConvTranspose2d(2, 2, kernel_size=3)
    for form in FORMS:
        with pytest.raises(ValueError, match="4 x 4 weight"):
            form(torch.zeros(1, 2, 3, 3), torch.zeros(2, 2, 3, 3))
        with pytest.raises(ValueError, match="channels"):
            form(torch.zeros(1, 2, 3, 3), torch.zeros(3, 2, 4, 4))
