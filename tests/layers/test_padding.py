"""TF 'SAME' padding: amounts against TensorFlow's formula, windows against a brute-force
convolution loop, and stride-1 equality with PyTorch's own padding='same'."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from zoo.layers.padding import SamePad2d, conv2d_same, same_pad, same_pad_amounts


def tf_same(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow ops_util GetWindowedOutputSize(Padding::SAME), written out."""
    out = math.ceil(size / s)
    eff = (k - 1) * d + 1
    total = max((out - 1) * s + eff - size, 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize("size", list(range(1, 18)))
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("s", [1, 2, 3])
@pytest.mark.parametrize("d", [1, 2, 4])
def test_amounts_match_tf_formula(size: int, k: int, s: int, d: int) -> None:
    assert same_pad_amounts(size, k, s, d) == tf_same(size, k, s, d)


@pytest.mark.parametrize(
    "size, k, s, expected",
    [
        (256, 3, 2, (0, 1)),  # even size, 3x3 stride 2: the extra row goes after
        (256, 5, 2, (1, 2)),
        (255, 3, 2, (1, 1)),
        (255, 5, 2, (2, 2)),
        (64, 3, 1, (1, 1)),
        (64, 4, 2, (1, 1)),  # contextual attention raw patches, rate 2
        (63, 4, 2, (1, 2)),
        (64, 2, 1, (0, 1)),  # even kernel, stride 1
    ],
)
def test_golden_amounts(size: int, k: int, s: int, expected: tuple[int, int]) -> None:
    assert same_pad_amounts(size, k, s) == expected


def _loop_conv_same(x: torch.Tensor, w: torch.Tensor, s: int, d: int) -> torch.Tensor:
    """Brute-force TF 'SAME' convolution: output i reads input rows i*s - before + j*d."""
    _, _, h, wd = x.shape
    k = w.shape[-1]
    top, _ = tf_same(h, k, s, d)
    left, _ = tf_same(wd, k, s, d)
    out = torch.zeros(x.shape[0], w.shape[0], math.ceil(h / s), math.ceil(wd / s), dtype=x.dtype)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            for a in range(k):
                for b in range(k):
                    r, c = i * s - top + a * d, j * s - left + b * d
                    if 0 <= r < h and 0 <= c < wd:  # outside = zero padding
                        out[:, :, i, j] += x[:, :, r, c] @ w[:, :, a, b].T
    return out


@pytest.mark.parametrize("h, w", [(7, 8), (8, 8), (9, 6)])
@pytest.mark.parametrize("k, s, d", [(3, 2, 1), (5, 2, 1), (3, 1, 2), (4, 2, 1), (2, 1, 1)])
def test_padded_conv_matches_loop(h: int, w: int, k: int, s: int, d: int) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, h, w, generator=g, dtype=torch.float64)
    wt = torch.randn(4, 3, k, k, generator=g, dtype=torch.float64)
    got = F.conv2d(same_pad(x, k, s, d), wt, stride=s, dilation=d)
    ref = _loop_conv_same(x, wt, s, d)
    assert got.shape == ref.shape == (2, 4, math.ceil(h / s), math.ceil(w / s))
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_stride1_equals_torch_same(k: int, d: int) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, 11, 10, generator=g, dtype=torch.float64)
    wt = torch.randn(3, 2, k, k, generator=g, dtype=torch.float64)
    got = F.conv2d(same_pad(x, k, 1, d), wt, dilation=d)
    ref = F.conv2d(x, wt, dilation=d, padding="same")
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)


def test_rectangular_args_and_module() -> None:
    x = torch.arange(2 * 6 * 7, dtype=torch.float64).view(1, 2, 6, 7)
    got = same_pad(x, (3, 5), (2, 1), (1, 2), value=-1.0)
    top, bottom = tf_same(6, 3, 2, 1)
    left, right = tf_same(7, 5, 1, 2)
    ref = F.pad(x, (left, right, top, bottom), value=-1.0)
    torch.testing.assert_close(got, ref, rtol=0, atol=0)
    torch.testing.assert_close(
        SamePad2d((3, 5), (2, 1), (1, 2), value=-1.0)(x), ref, rtol=0, atol=0
    )


def test_no_padding_returns_input() -> None:
    x = torch.randn(1, 1, 4, 4)
    assert same_pad(x, 1, 1) is x


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"kernel_size": 0}, ValueError),
        ({"kernel_size": 3, "stride": 0}, ValueError),
        ({"kernel_size": 3, "dilation": -1}, ValueError),
        ({"kernel_size": 2.5}, TypeError),
        ({"kernel_size": (3, 3, 3)}, TypeError),
    ],
)
def test_bad_arguments(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        same_pad(torch.zeros(1, 1, 4, 4), **kwargs)


@pytest.mark.parametrize("h, w", [(7, 8), (8, 8), (9, 6), (1, 2)])
@pytest.mark.parametrize(
    "k, s, d", [(3, 2, 1), (5, 2, 1), (3, 1, 2), (4, 2, 1), (2, 1, 1), (3, 1, 1), (5, 1, 1)]
)
def test_conv2d_same_matches_loop_and_padded_conv(h: int, w: int, k: int, s: int, d: int) -> None:
    """conv2d_same (symmetric part as conv padding, remainder by F.pad) == the loop, and the
    explicitly padded convolution, with and without bias, in both memory layouts."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, h, w, generator=g, dtype=torch.float64)
    wt = torch.randn(4, 3, k, k, generator=g, dtype=torch.float64)
    bias = torch.randn(4, generator=g, dtype=torch.float64)
    ref = _loop_conv_same(x, wt, s, d)
    torch.testing.assert_close(conv2d_same(x, wt, None, s, d), ref, rtol=0, atol=1e-12)
    padded = F.conv2d(same_pad(x, k, s, d), wt, bias, stride=s, dilation=d)
    torch.testing.assert_close(conv2d_same(x, wt, bias, s, d), padded, rtol=0, atol=1e-12)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(conv2d_same(x_cl, wt, bias, s, d), padded, rtol=0, atol=1e-12)


def test_conv2d_same_bad_input() -> None:
    with pytest.raises(ValueError, match="4-D"):
        conv2d_same(torch.zeros(3, 8, 8), torch.zeros(4, 3, 3, 3))
    with pytest.raises(ValueError, match="stride"):
        conv2d_same(torch.zeros(1, 3, 8, 8), torch.zeros(4, 3, 3, 3), stride=0)
