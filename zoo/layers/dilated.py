"""Size-preserving dilated convolution blocks (GLCIC / PGGAN middle layers, EdgeConnect ResNet).

A k x k convolution with dilation d covers ``d*(k-1) + 1`` pixels per side; padding
``d*(k-1)/2`` (odd k) keeps the spatial size at stride 1.  Used by

- Iizuka, Simo-Serra, Ishikawa, "Globally and Locally Consistent Image Completion", SIGGRAPH
  2017, Table 1: 3x3 convolutions with dilation 2, 4, 8, 16 at 1/4 resolution, each followed by
  BN and ReLU.  otenim/GLCIC-PyTorch (``models.py``, ``CompletionNetwork``) applies the BN
  **after** the ReLU (``bn(act(conv(x)))``); :class:`DilatedConvBlock` offers that order with
  ``norm_after_act=True`` so otenim weights run unchanged.
- Demir, Unal, "Patch-Based Image Inpainting with GANs" (PGGAN), arXiv 1803.07422: dilated
  residual blocks in the generator (no official code; built from the paper by its model file).
- Nazeri et al., "EdgeConnect", ICCVW 2019; knazeri/edge-connect ``src/networks.py``
  ``ResnetBlock``: ReflectionPad(d) -> conv3x3 (dilation d) -> InstanceNorm -> ReLU ->
  ReflectionPad(1) -> conv3x3 -> InstanceNorm, ``out = x + block(x)``, no final ReLU;
  InstanceNorm without affine parameters and without running statistics.  Convs have biases
  unless spectral norm is on (``bias = not use_spectral_norm`` there).
  :class:`DilatedResidualBlock` keeps the official child indices (``conv_block.1`` and
  ``conv_block.5`` hold the convolutions) so EdgeConnect state dicts map one to one.

Deviation: spectral norm is not hard-wired; pass ``conv_wrapper`` (e.g.
``torch.nn.utils.parametrizations.spectral_norm``, or the legacy ``torch.nn.utils.spectral_norm``
whose ``weight_orig``/``weight_u``/``weight_v`` keys match EdgeConnect's checkpoints).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

__all__ = ["same_padding", "DilatedConvBlock", "DilatedResidualBlock"]

Tensor = torch.Tensor
ModuleFactory = Callable[[int], nn.Module]


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding ``d*(k-1)/2`` that keeps the size of a stride-1 convolution (odd ``k`` only)."""
    if kernel_size < 1 or dilation < 1:
        raise ValueError(f"kernel_size and dilation must be >= 1, got {kernel_size}, {dilation}")
    if kernel_size % 2 == 0:
        raise ValueError(
            f"size-preserving symmetric padding needs an odd kernel, got {kernel_size}"
        )
    return dilation * (kernel_size - 1) // 2


class DilatedConvBlock(nn.Module):
    """conv(k, dilation d, padding d*(k-1)/2) -> [norm] -> [act]  (or conv -> act -> norm).

    Args:
        in_channels, out_channels: channel counts (GLCIC: 256 -> 256).
        kernel_size: odd kernel size (GLCIC: 3).
        dilation: dilation rate (GLCIC: 2, 4, 8, 16).
        stride: convolution stride (1 keeps the size; GLCIC's dilated layers use 1).
        bias: convolution bias (GLCIC: True).
        norm_layer: factory ``channels -> module`` (e.g. ``nn.BatchNorm2d``), or None.
        act_layer: factory ``() -> module`` (default ``nn.ReLU``), or None for no activation.
        norm_after_act: ``False`` = paper order conv -> norm -> act; ``True`` = otenim's
            conv -> act -> norm.
        padding_mode: ``nn.Conv2d`` padding mode ("zeros" as GLCIC; "reflect" for others).
    Children: ``conv``, ``norm`` (if any), ``act`` (if any).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int = 3,
        dilation: int = 1,
        stride: int = 1,
        bias: bool = True,
        norm_layer: ModuleFactory | None = None,
        act_layer: Callable[[], nn.Module] | None = nn.ReLU,
        norm_after_act: bool = False,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=same_padding(kernel_size, dilation),
            dilation=dilation,
            bias=bias,
            padding_mode=padding_mode,
        )
        self.norm = norm_layer(out_channels) if norm_layer is not None else None
        self.act = act_layer() if act_layer is not None else None
        self.norm_after_act = norm_after_act

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        stages = (self.act, self.norm) if self.norm_after_act else (self.norm, self.act)
        for stage in stages:
            if stage is not None:
                x = stage(x)
        return x


def _identity(module: nn.Module) -> nn.Module:
    return module


class DilatedResidualBlock(nn.Module):
    """EdgeConnect ``ResnetBlock``: ``x + IN(conv3x3(pad1(ReLU(IN(conv3x3_d(pad_d(x)))))))``.

    Args:
        channels: feature channels (EdgeConnect: 256).
        dilation: dilation of the first convolution (EdgeConnect: 2).
        bias: convolution biases (EdgeConnect: ``not use_spectral_norm``).
        conv_wrapper: applied to each convolution (spectral norm), or None.
    Children: ``conv_block`` = Sequential(0 ReflectionPad2d(d), 1 conv, 2 IN, 3 ReLU,
    4 ReflectionPad2d(1), 5 conv, 6 IN), the official indices.
    """

    def __init__(
        self,
        channels: int,
        *,
        dilation: int = 2,
        bias: bool = True,
        conv_wrapper: Callable[[nn.Module], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        wrap = conv_wrapper if conv_wrapper is not None else _identity
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(dilation),
            wrap(nn.Conv2d(channels, channels, 3, dilation=dilation, bias=bias)),
            nn.InstanceNorm2d(channels, track_running_stats=False),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            wrap(nn.Conv2d(channels, channels, 3, bias=bias)),
            nn.InstanceNorm2d(channels, track_running_stats=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)  # no activation after the sum (EdgeConnect)
