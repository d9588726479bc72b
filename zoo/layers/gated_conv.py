"""Gated convolution (DeepFill v2) in the form of the official code.

Paper: Yu, Lin, Yang, Shen, Lu, Huang, "Free-Form Image Inpainting with Gated Convolution",
ICCV 2019 (arXiv 1806.03589), Sec. 3.1::

    Gating  = sum W_g . I            Feature = sum W_f . I
    O       = phi(Feature) * sigmoid(Gating)          (phi = ELU in the released model)

Official code: JiahuiYu/generative_inpainting (master = v2.0.0) ``inpaint_ops.py`` ``gen_conv``
and ``gen_deconv``.  ``gen_conv`` runs **one** convolution with twice the effective width and
splits its output channels in halves, the first half the feature and the second the gate.  A
layer whose convolution has 3 outputs, or whose activation is ``None``, is a plain convolution
(the RGB output layers ``conv17``/``allconv17``).  ``gen_deconv`` is a nearest-neighbour x2
resize followed by a 3x3 ``gen_conv``.

Padding: ``gen_conv`` accepts ``'SAME'``, ``'SYMMETRIC'`` or ``'REFELECT'`` [sic]; master's
``build_inpaint_net`` and ``inpaint.yml`` (``padding: 'SAME'``) both select ``'SAME'``, i.e.
TensorFlow zero padding, asymmetric for stride 2 (:mod:`zoo.layers.padding`).  The reflect /
symmetric branches are not used by the released model and are not implemented here.

Upsampling: neuralgym's ``resize`` calls ``tf.image.resize_nearest_neighbor`` with
``align_corners=True`` (source index ``round(y * (n - 1) / (2n - 1))``).  For an exact x2
enlargement that index equals ``floor(y / 2)`` for every output row ``y`` (``tests/layers/
test_gated_conv.py`` checks it against the TF formula), so :class:`GatedDeconv2d` uses
``F.interpolate(scale_factor=2, mode="nearest")``.

Conventions of this module (shared with nipponjo/deepfillv2-pytorch ``GConv``/``GDeConv``, so
checkpoint keys ``<layer>.conv.weight`` and ``<layer>.conv.conv.weight`` match): the constructor
takes the **effective** output width; the convolution is ``self.conv``.

Initialisation: TF ``tf.layers.conv2d`` defaults, Glorot-uniform kernels and zero biases.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.layers.padding import same_pad

__all__ = ["GatedConv2d", "GatedDeconv2d"]

Tensor = torch.Tensor
ActivationFactory = Callable[[], nn.Module]


class GatedConv2d(nn.Module):
    """``act(feature) * sigmoid(gate)`` from one convolution with ``2 * out_channels`` outputs.

    Args:
        in_channels: input channels.
        out_channels: effective output channels (the convolution has twice as many when gated).
        kernel_size: square kernel size.
        stride: convolution stride (TF ``'SAME'`` padding, so the output is ``ceil(H / stride)``).
        dilation: dilation rate (TF ``rate``).
        activation: factory of the feature activation (a class such as ``nn.ELU``, the official
            default, or ``nn.ReLU`` for ``pmconv6``); ``None`` makes the layer a plain
            convolution, as does ``out_channels == 3`` (official ``gen_conv`` rule).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        activation: ActivationFactory | None = nn.ELU,
    ) -> None:
        super().__init__()
        for name, v in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("kernel_size", kernel_size),
            ("stride", stride),
            ("dilation", dilation),
        ):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if activation is not None and not callable(activation):
            raise TypeError(
                f"activation must be a module factory (e.g. nn.ELU) or None, got {activation!r}"
            )
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.dilation = dilation
        self.gated = out_channels != 3 and activation is not None
        self.act = activation() if self.gated else nn.Identity()
        conv_out = 2 * out_channels if self.gated else out_channels
        self.conv = nn.Conv2d(
            in_channels, conv_out, kernel_size, stride=stride, padding=0, dilation=dilation
        )
        nn.init.xavier_uniform_(self.conv.weight)  # TF glorot_uniform (same fans for conv)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.conv.in_channels:
            raise ValueError(
                f"expected N x {self.conv.in_channels} x H x W input, got {tuple(x.shape)}"
            )
        x = same_pad(x, self.kernel_size, self.stride, self.dilation)
        y = self.conv(x)  # N x conv_out x ceil(H/s) x ceil(W/s)
        if not self.gated:
            return y
        feature, gate = torch.split(y, self.out_channels, dim=1)  # (feature, gate) halves
        return self.act(feature) * torch.sigmoid(gate)

    def extra_repr(self) -> str:
        return f"gated={self.gated}"


class GatedDeconv2d(nn.Module):
    """Nearest x2 upsampling followed by a 3x3 stride-1 :class:`GatedConv2d` (``gen_deconv``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        activation: ActivationFactory | None = nn.ELU,
    ) -> None:
        super().__init__()
        self.conv = GatedConv2d(in_channels, out_channels, 3, 1, 1, activation=activation)

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")  # N x C x 2H x 2W
        return self.conv(x)
