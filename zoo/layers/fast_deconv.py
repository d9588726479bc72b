"""Faster CPU forms of the 4 x 4, stride-2, padding-1 transposed convolution.

The x2 upsampling layer of the pix2pix / DCGAN family (EdgeConnect's decoder,
knazeri/edge-connect ``src/networks.py``; the Shift-Net U-Net, Zhaoyi-Yan/Shift-Net_pytorch
``models/modules/shift_unet.py``) is ``nn.ConvTranspose2d(C_in, C_out, 4, stride=2,
padding=1)``.  On CPU oneDNN's transposed-convolution kernel re-lays out the weight on every
call and is slow both for small maps with large weights (1024 -> 512 channels at 2 x 2:
about 1 GFLOP/s) and for large maps.  Two exact rewrites (equal up to the order of the
floating-point sums) are used instead:

- **matrix product + fold** (:func:`conv_transpose_4x4_s2_gemm`, small maps): every input
  pixel's contribution ``x[:, i, j]^T W`` (C_out x 4 x 4 values) is one row of the product of
  the N x HW x C_in input with the C_in x 16 C_out weight read in its stored layout, and
  ``F.fold`` adds the 4 x 4 blocks at stride 2 (offset -1);
- **phases** (:func:`conv_transpose_4x4_s2`, large maps): output pixel ``(2i + a, 2j + b)``
  depends on a 2 x 2 input neighbourhood only::

      y[co, 2i + a, 2j + b] = bias[co] + sum_ci sum_{s, t in {0, 1}}
          x[ci, i + a + s - 1, j + b + t - 1] * W[ci, co, K[a][s], K[b][t]],  K = ((3, 1), (2, 0))

  (zero outside the input), so the four phases ``(a, b)`` are one plain 2 x 2 convolution of
  the input padded by one pixel with ``4 C_out`` outputs; phase ``(a, b)`` takes the ``H x W``
  window at offset ``(a, b)`` of its ``(H + 1) x (W + 1)`` block, and the phases are
  interleaved (the sub-pixel view of Shi et al., CVPR 2016, "Efficient Sub-Pixel CNN").

:class:`FastConvTranspose2d` (same parameters and state-dict keys as ``nn.ConvTranspose2d``)
picks the form by the input's H x W, with thresholds measured on this project's CPU (one
thread): at most ``small_pixels`` (16 x 16) the matrix product (1024 -> 512 channels at
1 x 1 .. 8 x 8: 2.5 to 15x faster), at least ``large_pixels`` (64 x 64) the phases (1.2x at
256 -> 128 channels and 64 x 64, 1.5x at 128 -> 64 and 128 x 128), the stock kernel in
between (768 -> 128 channels at 32 x 32, where both rewrites lose).  Channels-last inputs
are better left to the stock kernel (GLCIC keeps it).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "PHASE_TAPS",
    "is_channels_last",
    "interleave_phases",
    "conv_transpose_4x4_s2",
    "conv_transpose_4x4_s2_gemm",
    "FastConvTranspose2d",
]

Tensor = torch.Tensor

#: kernel index used by output phase ``a`` (0: even, 1: odd row/column) for tap ``s``
PHASE_TAPS = ((3, 1), (2, 0))


def is_channels_last(x: Tensor) -> bool:
    """``x`` is stored N x H x W x C (``torch.channels_last``) and not also plain contiguous."""
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def interleave_phases(z: Tensor, channels: int) -> Tensor:
    """N x 4C x (H + 1) x (W + 1) phase outputs (channel ``(2 py + px) * C + c``, valid at
    rows ``py ..``, columns ``px ..``) -> N x C x 2H x 2W, in ``z``'s memory layout.

    The last step of every phase form here and of DeepFill's upsampling convolutions
    (:func:`zoo.layers.gated_conv.upsample_conv3x3`)."""
    n, _, h1, w1 = z.shape
    h, w = h1 - 1, w1 - 1
    zv = z.unflatten(1, (2, 2, channels))  # N x 2 x 2 x C x H+1 x W+1
    if is_channels_last(z):
        # allocated N x C x 2H x 2W channels_last (a view would give a size-1 N an odd stride
        # that the convolution does not recognise as channels_last)
        out = torch.empty(
            n, channels, 2 * h, 2 * w, dtype=z.dtype, device=z.device,
            memory_format=torch.channels_last,
        )  # fmt: skip
        ov = out.permute(0, 2, 3, 1).view(n, h, 2, w, 2, channels).permute(0, 5, 1, 2, 3, 4)
    else:
        out = z.new_empty(n, channels, 2 * h, 2 * w)
        ov = out.view(n, channels, h, 2, w, 2)  # N x C x H x 2 x W x 2
    for py in (0, 1):
        for px in (0, 1):
            ov[:, :, :, py, :, px] = zv[:, py, px, :, py : py + h, px : px + w]
    return out


def _check(x: Tensor, weight: Tensor) -> None:
    if x.dim() != 4 or weight.dim() != 4 or tuple(weight.shape[2:]) != (4, 4):
        raise ValueError(
            f"expected N x C x H x W input and a C_in x C_out x 4 x 4 weight, got "
            f"{tuple(x.shape)} and {tuple(weight.shape)}"
        )
    if x.shape[1] != weight.shape[0]:
        raise ValueError(f"input has {x.shape[1]} channels, the weight {weight.shape[0]}")


def _phase_weight(weight: Tensor) -> Tensor:
    """C_in x C_out x 4 x 4 transposed-conv weight -> 4 C_out x C_in x 2 x 2 conv weight,
    phase blocks in the order (a, b) = (0, 0), (0, 1), (1, 0), (1, 1)."""
    c_in, c_out = weight.shape[:2]
    taps = torch.tensor(PHASE_TAPS, device=weight.device)  # a x s
    w = weight.permute(1, 0, 2, 3)  # C_out x C_in x 4 x 4
    w = w[:, :, taps][:, :, :, :, taps]  # C_out x C_in x a x s x b x t
    return w.permute(2, 4, 0, 1, 3, 5).reshape(4 * c_out, c_in, 2, 2)


def conv_transpose_4x4_s2(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.conv_transpose2d(x, weight, bias, stride=2, padding=1)`` for a C_in x C_out x 4 x 4
    ``weight``, as one 2 x 2 convolution of the four output phases (module docstring).

    ``x``: N x C_in x H x W; returns N x C_out x 2H x 2W.
    """
    _check(x, weight)
    phase_bias = None if bias is None else bias.repeat(4)
    z = F.conv2d(F.pad(x, (1, 1, 1, 1)), _phase_weight(weight), phase_bias)  # N x 4C_out x ..
    return interleave_phases(z, weight.shape[1])


def conv_transpose_4x4_s2_gemm(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.conv_transpose2d(x, weight, bias, stride=2, padding=1)`` for a C_in x C_out x 4 x 4
    ``weight``, as a matrix product with the stored weight and an overlap-add (``F.fold``).

    ``x``: N x C_in x H x W; returns N x C_out x 2H x 2W.
    """
    _check(x, weight)
    n, c_in, h, w = x.shape
    c_out = weight.shape[1]
    rows = x.reshape(n, c_in, h * w).transpose(1, 2)  # N x HW x C_in
    blocks = torch.matmul(rows, weight.reshape(c_in, c_out * 16))  # N x HW x (C_out*4*4)
    y = F.fold(blocks.transpose(1, 2), (2 * h, 2 * w), 4, stride=2, padding=1)
    return y if bias is None else y + bias.view(1, -1, 1, 1)


class FastConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d(C_in, C_out, 4, stride=2, padding=1)`` (same parameters and
    state-dict keys) computed by :func:`conv_transpose_4x4_s2_gemm` for inputs of at most
    ``small_pixels`` positions (H x W), by :func:`conv_transpose_4x4_s2` for at least
    ``large_pixels``, and by the stock kernel otherwise (and for channels-last inputs).

    Args:
        in_channels, out_channels, bias: as ``nn.ConvTranspose2d``.
        small_pixels: largest H x W for the matrix product (default 16 x 16).
        large_pixels: smallest H x W for the phase form (default 64 x 64).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 4,
        stride: int = 2,
        padding: int = 1,
        *,
        bias: bool = True,
        small_pixels: int = 16 * 16,
        large_pixels: int = 64 * 64,
    ) -> None:
        if (kernel_size, stride, padding) != (4, 2, 1):
            raise ValueError(
                "FastConvTranspose2d is the kernel-4, stride-2, padding-1 layer only, got "
                f"kernel_size={kernel_size}, stride={stride}, padding={padding}"
            )
        super().__init__(in_channels, out_channels, 4, stride=2, padding=1, bias=bias)
        self.small_pixels = int(small_pixels)
        self.large_pixels = int(large_pixels)

    def forward(self, input: Tensor, output_size: list[int] | None = None) -> Tensor:
        if output_size is not None or input.dim() != 4:
            return super().forward(input, output_size)
        if is_channels_last(input):
            return super().forward(input)
        pixels = input.shape[-2] * input.shape[-1]
        if pixels <= self.small_pixels:
            return conv_transpose_4x4_s2_gemm(input, self.weight, self.bias)
        if pixels >= self.large_pixels:
            return conv_transpose_4x4_s2(input, self.weight, self.bias)
        return super().forward(input)
