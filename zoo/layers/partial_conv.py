"""Partial convolution: a convolution over the valid pixels only, renormalised, with a mask update.

Liu, Reda, Shih, Wang, Tao, Catanzaro, "Image Inpainting for Irregular Holes Using Partial
Convolutions", ECCV 2018 (arXiv 1804.07723), eq. 1-2.  Follows the NVIDIA layer
(NVIDIA/partialconv: ``models/partialconv2d.py``, ``PartialConv2d``), with every window ``w``
and ``V = 1 - mask`` the valid indicator::

    count(w) = sum(V over w)                       # over k*k pixels, or C_in*k*k with a
                                                   # multi-channel mask
    out(w)   = (conv(X * V)(w) - b) * winsize / count(w) + b    if count(w) > 0
             = 0                                                otherwise
    new V(w) = 1 if count(w) > 0 else 0             (clamp(count, 0, 1), as NVIDIA)

``winsize`` is ``k_h*k_w`` for a single-channel mask and ``C_in*k_h*k_w`` for a multi-channel
one (NVIDIA's ``slide_winsize``); the bias is subtracted before and added after the
renormalisation, and the result is multiplied by the updated mask, exactly as NVIDIA does.  The
weight is a plain ``nn.Conv2d`` weight, so ``nn.Conv2d``-shaped checkpoints load unchanged.

Project contract: ``mask`` is **1 = hole** (the inverse of NVIDIA's valid mask); the layer
converts internally and returns the updated mask in the same convention (1 = hole).

Choices and deviations from NVIDIA's layer (all deliberate):

- **Stateless.**  NVIDIA caches ``update_mask``/``mask_ratio`` on the module and reuses them when
  the next call has the same input shape and no mask (a stale-mask hazard); nothing is cached
  here, every call recomputes from its own mask.
- ``forward`` always returns ``(out, new_mask)`` (NVIDIA: only with ``return_mask=True``).
- ``mask=None`` means **"no holes"**: it is exactly ``mask = zeros`` (all pixels valid).  Like
  NVIDIA's all-ones mask, this still renormalises windows that overlap the zero padding (a 3x3
  window in a corner with ``padding=1`` sees 4 valid pixels and is scaled by 9/4), so it equals
  ``nn.Conv2d`` only with ``padding=0`` (or in the interior).  This is the "partial-convolution
  based padding" behaviour of the NVIDIA code, kept on purpose.
- **No ``eps``.**  NVIDIA computes ``winsize / (count + 1e-8)`` (its README: ``1e-6`` under
  mixed precision) only to avoid dividing by zero, then multiplies by ``clamp(count, 0, 1)``,
  which zeroes the empty windows anyway.  In float32 ``c + 1e-8 == c`` for every count
  ``c >= 1``, so NVIDIA's ratio is already exact there; in float64 the constant would leave a
  relative error of ``1e-8/c``.  Here empty windows are selected explicitly
  (``torch.where(count > 0, winsize / count, 0)``), so the ratio is exact in every dtype and
  never NaN/Inf; on binary masks the output equals NVIDIA's float32 output up to rounding
  (NVIDIA adds the bias and subtracts it again).
- Only ``groups=1`` and ``padding_mode="zeros"`` are accepted: the mask is always counted with
  zero padding (padding is not valid data), and a per-group renormalisation is ambiguous.
- With a multi-channel mask the returned mask has ``C_out`` identical channels (as NVIDIA's
  ``C_out x C_in x k x k`` all-ones mask kernel produces), so it feeds the next multi-channel
  layer; with a single-channel mask it has one channel.

Weights of naoto0804/pytorch-inpainting-with-partial-conv (``PartialConv``, the reference
``PConvUNet``) are trained for a *different normalisation*: that layer divides by the raw valid
count, ``(conv(X*V) - b) / count + b`` (multi-channel mask, ``count`` over ``C_in*k*k``), with no
``winsize`` factor.  Hence ``W_naoto = W_ours * C_in*k_h*k_w``; :func:`naoto_to_nvidia_weight`
divides by that factor (biases unchanged), after which this layer (``multi_channel=True``)
reproduces naoto's outputs (up to rounding).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["PartialConv2d", "naoto_to_nvidia_weight", "nvidia_to_naoto_weight"]

Tensor = torch.Tensor


class PartialConv2d(nn.Conv2d):
    """``nn.Conv2d`` renormalised over valid pixels; ``forward(x, mask) -> (out, new_mask)``.

    Args (beyond ``nn.Conv2d``'s, which keep their meaning):
        multi_channel: ``False`` (default, NVIDIA's default): ``mask`` is N x 1 x H x W,
            broadcast over the input channels, ``winsize = k_h*k_w``, returned mask N x 1.
            ``True``: ``mask`` is N x C_in x H x W, ``winsize = C_in*k_h*k_w``, returned mask
            N x C_out (identical channels).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        *,
        multi_channel: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if groups != 1:
            raise ValueError(f"PartialConv2d supports groups=1 only, got groups={groups}")
        if padding_mode != "zeros":
            raise ValueError(
                f"PartialConv2d needs padding_mode='zeros' (the mask is zero-padded), "
                f"got {padding_mode!r}"
            )
        if isinstance(padding, str):
            raise ValueError("PartialConv2d needs explicit integer padding, not a string")
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=1,
            bias=bias,
            padding_mode="zeros",
            device=device,
            dtype=dtype,
        )
        self.multi_channel = bool(multi_channel)

    @property
    def window_size(self) -> int:
        """NVIDIA's ``slide_winsize``: ``k_h*k_w``, times ``C_in`` with a multi-channel mask."""
        kh, kw = self.kernel_size
        return kh * kw * (self.in_channels if self.multi_channel else 1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, multi_channel={self.multi_channel}"

    def _check(self, x: Tensor, mask: Tensor | None) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"input must be N x {self.in_channels} x H x W, got {tuple(x.shape)}")
        if mask is None:
            return
        want_c = self.in_channels if self.multi_channel else 1
        if mask.dim() != 4 or mask.shape[1] != want_c:
            kind = "multi-channel" if self.multi_channel else "single-channel"
            raise ValueError(
                f"{kind} PartialConv2d needs a mask of shape N x {want_c} x H x W "
                f"(1 = hole), got {tuple(mask.shape)}"
            )
        if mask.shape[0] != x.shape[0] or mask.shape[2:] != x.shape[2:]:
            raise ValueError(
                f"mask shape {tuple(mask.shape)} does not match input shape {tuple(x.shape)}"
            )

    def _valid_count(self, valid: Tensor) -> Tensor:
        """Number of valid pixels in each window: N x 1 x H' x W' (zero padding = invalid)."""
        c = valid.shape[1]  # 1 (single-channel) or C_in (multi-channel)
        ones = valid.new_ones(1, c, *self.kernel_size)
        return F.conv2d(
            valid, ones, stride=self.stride, padding=self.padding, dilation=self.dilation
        )

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Partial convolution of ``x`` (N x C_in x H x W) given ``mask`` (1 = hole, or None
        for "no holes").  Returns ``(out, new_mask)``, ``new_mask`` 1 = hole."""
        self._check(x, mask)
        with torch.no_grad():
            if mask is None:
                c = self.in_channels if self.multi_channel else 1
                valid = x.new_ones(x.shape[0], c, *x.shape[2:])  # no holes
            else:
                valid = 1.0 - mask.to(dtype=x.dtype)
            count = self._valid_count(valid)  # N x 1 x H' x W'
            new_valid = count.clamp(0.0, 1.0)
            # exact winsize / count; empty windows get 0 (no eps, no 0/0)
            ratio = torch.where(
                count > 0, self.window_size / count.clamp_min(1e-30), torch.zeros_like(count)
            )
            ratio = ratio * new_valid
        raw = self._conv_forward(x * valid, self.weight, None)  # N x C_out x H' x W'
        if self.bias is None:
            out = raw * ratio
        else:
            # NVIDIA: (conv(x*m) - b) * ratio + b, then times the updated mask; ``raw`` has no
            # bias yet, so ``conv(x*m) - b`` is ``raw`` itself.
            out = (raw * ratio + self.bias.view(1, -1, 1, 1)) * new_valid
        if self.multi_channel:
            new_valid = new_valid.expand(-1, self.out_channels, -1, -1).contiguous()
        return out, 1.0 - new_valid


def _window_factor(weight: Tensor) -> int:
    if weight.dim() != 4:
        raise ValueError(f"expected a conv weight C_out x C_in x k_h x k_w, got {weight.shape}")
    return weight.shape[1] * weight.shape[2] * weight.shape[3]


def naoto_to_nvidia_weight(weight: Tensor) -> Tensor:
    """Convert a naoto0804 ``PartialConv.input_conv.weight`` for :class:`PartialConv2d`
    (``multi_channel=True``): divide by ``C_in*k_h*k_w`` (biases are unchanged).

    naoto's layer divides by the raw valid count, NVIDIA's multiplies by
    ``C_in*k_h*k_w / count``; see the module docstring.
    """
    return weight / _window_factor(weight)


def nvidia_to_naoto_weight(weight: Tensor) -> Tensor:
    """Inverse of :func:`naoto_to_nvidia_weight`: multiply by ``C_in*k_h*k_w``."""
    return weight * _window_factor(weight)
