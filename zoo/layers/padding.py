"""TensorFlow ``padding='SAME'`` for PyTorch convolutions, pooling and patch extraction.

TensorFlow pads a ``'SAME'`` operation so that the output has ``ceil(size / stride)`` positions
along each spatial axis, and splits the padding unevenly when it is odd: the extra row/column
goes to the **bottom/right**.  With stride 2 the total can be odd (a 3x3 kernel on an even size
needs 1: 0 before, 1 after; a 5x5 kernel needs 3: 1 before, 2 after), which symmetric PyTorch
``padding=k // 2`` cannot reproduce, so weights ported from TF give shifted outputs without it.

The formula (TF ``GetWindowedOutputSize`` with ``Padding::SAME``, per axis)::

    out          = ceil(size / stride)
    k_eff        = (kernel_size - 1) * dilation + 1
    pad_total    = max((out - 1) * stride + k_eff - size, 0)
    pad_before   = pad_total // 2
    pad_after    = pad_total - pad_before

Used by the DeepFill v2 port (JiahuiYu/generative_inpainting ``inpaint_ops.py``: every
``gen_conv`` runs with ``padding='SAME'``, and ``contextual_attention`` extracts patches and
pastes them with ``'SAME'``); the same helper appears as ``same_padding`` in
nipponjo/deepfillv2-pytorch ``model/networks_tf.py`` and as ``pad_same`` in timm
``timm/layers/padding.py``.  Padding is with a constant (zeros by default), as TF's.

:func:`conv2d_same` runs a convolution with TF ``'SAME'`` zero padding without copying the
input where it can: the symmetric part of the padding is the convolution's own ``padding``
argument and only an asymmetric remainder (stride 2 on even sizes) goes through ``F.pad``.
Zero padding is zero padding, so the result is the one of ``same_pad`` + ``padding=0``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["same_pad_amounts", "same_pad", "conv2d_same", "SamePad2d"]

Tensor = torch.Tensor
IntPair = int | tuple[int, int]


def _pair(value: IntPair, name: str) -> tuple[int, int]:
    if isinstance(value, bool) or not isinstance(value, int | tuple | list):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return pair  # type: ignore[return-value]


def same_pad_amounts(
    size: int, kernel_size: int, stride: int = 1, dilation: int = 1
) -> tuple[int, int]:
    """(before, after) padding of TF ``'SAME'`` along one axis of length ``size``."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    for name, v in (("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    out = -(-size // stride)  # ceil(size / stride)
    k_eff = (kernel_size - 1) * dilation + 1
    total = max((out - 1) * stride + k_eff - size, 0)
    return total // 2, total - total // 2


def same_pad(
    x: Tensor,
    kernel_size: IntPair,
    stride: IntPair = 1,
    dilation: IntPair = 1,
    value: float = 0.0,
) -> Tensor:
    """Pad the last two axes of ``x`` (N x C x H x W) as TF ``'SAME'`` would.

    A following operation with the same kernel/stride/dilation and ``padding=0`` then returns
    ``ceil(H / stride) x ceil(W / stride)`` positions, identical to TensorFlow's.
    """
    if x.dim() < 2:
        raise ValueError(
            f"same_pad needs a tensor with two spatial axes, got shape {tuple(x.shape)}"
        )
    kh, kw = _pair(kernel_size, "kernel_size")
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    top, bottom = same_pad_amounts(x.shape[-2], kh, sh, dh)
    left, right = same_pad_amounts(x.shape[-1], kw, sw, dw)
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), mode="constant", value=value)


def conv2d_same(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntPair = 1,
    dilation: IntPair = 1,
) -> Tensor:
    """``F.conv2d`` of N x C x H x W ``x`` with TF ``'SAME'`` zero padding.

    Equal to ``F.conv2d(same_pad(x, k, stride, dilation), weight, bias, stride, 0, dilation)``
    (``k`` = the kernel size of ``weight``), but the padding shared by both sides of an axis is
    handed to the convolution (no padded copy of ``x``); only the remainder of an asymmetric
    padding (one extra bottom row / right column) is added with ``F.pad``.
    """
    if x.dim() != 4 or weight.dim() != 4:
        raise ValueError(
            f"conv2d_same needs 4-D input and weight, got {tuple(x.shape)}, {tuple(weight.shape)}"
        )
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    top, bottom = same_pad_amounts(x.shape[-2], weight.shape[-2], sh, dh)
    left, right = same_pad_amounts(x.shape[-1], weight.shape[-1], sw, dw)
    ph, pw = min(top, bottom), min(left, right)  # symmetric part: the convolution pads it
    if (top, bottom, left, right) != (ph, ph, pw, pw):
        x = F.pad(x, (left - pw, right - pw, top - ph, bottom - ph))  # remainder only
    return F.conv2d(x, weight, bias, (sh, sw), (ph, pw), (dh, dw))


class SamePad2d(nn.Module):
    """Module form of :func:`same_pad` (stateless: the amounts depend on each input's size)."""

    def __init__(
        self, kernel_size: IntPair, stride: IntPair = 1, dilation: IntPair = 1, value: float = 0.0
    ) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.dilation = _pair(dilation, "dilation")
        self.value = float(value)

    def forward(self, x: Tensor) -> Tensor:
        return same_pad(x, self.kernel_size, self.stride, self.dilation, self.value)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, dilation={self.dilation}"
