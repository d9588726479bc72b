"""The coarse-to-fine generator layout of DeepFill v1 and v2, and v1's convolution block.

Papers: Yu, Lin, Yang, Shen, Lu, Huang, "Generative Image Inpainting with Contextual Attention",
CVPR 2018 (arXiv 1801.07892), Sec. 3.1 and Fig. 2; "Free-Form Image Inpainting with Gated
Convolution", ICCV 2019 (arXiv 1806.03589), Sec. 3.3, which keeps that generator and replaces
every convolution by a gated one.

Official code: JiahuiYu/generative_inpainting ``inpaint_model.py`` ``build_inpaint_net`` on
branch ``v1.0.0`` (``gen_conv`` = convolution + ELU: :class:`GenConv2d`) and on ``master`` =
``v2.0.0`` (``gen_conv`` = gated convolution: :mod:`zoo.layers.gated_conv`).  Both declare the
same 42 layers with the same names, kernels, strides and dilations (``models.md`` sections 6
and 10); the tables below list them once and :class:`DeepFillStage` builds them with a model's
conv block.  The ports keep the names (daa233 renames a few, see its converter).

Table rows are ``(name, in, out, kernel, stride, dilation, activation)``.  Widths are in units
of the base width ``c`` (v1: ``cnum = 32``; v2: the effective width ``cnum / 2 = 24``, half of
each TF convolution being the gate): ``0.5`` = ``c // 2``, ``in = 0`` = the stage's input
channels, ``out = 0`` = 3 RGB channels (no activation).  ``*_upsample`` layers are
``gen_deconv``: nearest x2 resize, then the 3x3 convolution.

- stage 1 (``STAGE1``): ``conv1 .. conv17``, down to 1/4 by two stride-2 convs, dilations
  2, 4, 8, 16, back up by two ``*_upsample`` layers;
- stage 2 (``STAGE2``): a dilated branch ``STAGE2_CONV`` (``xconv1 .. xconv10_atrous``), an
  attention branch ``STAGE2_ATTENTION`` (``pmconv1 .. pmconv6``, ``pmconv6`` with ReLU), then
  contextual attention (:mod:`zoo.layers.contextual_attention`, run by the model), then
  ``STAGE2_AFTER_ATTENTION`` (``pmconv9``, ``pmconv10``), and ``STAGE2_MERGE`` (``allconv11 ..
  allconv17``) on the concatenation of both branches.

:class:`GenConv2d` padding: ``"same"`` is TF ``'SAME'`` zero padding (asymmetric for stride 2,
:mod:`zoo.layers.padding`), as the official code; ``"symmetric"`` pads ``d (k - 1) / 2`` zeros
on every side, as daa233/generative-inpainting-pytorch ``Conv2dBlock`` (1 on each side for
the 3x3 stride-2 convs, so the two differ only there).  Initialisation: TF ``tf.layers``
defaults (Glorot-uniform kernel, zero bias).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.layers.fast_deconv import interleave_phases
from zoo.layers.gated_conv import upsample_conv3x3
from zoo.layers.padding import conv2d_same

__all__ = [
    "STAGE1",
    "STAGE2_CONV",
    "STAGE2_ATTENTION",
    "STAGE2_AFTER_ATTENTION",
    "STAGE2_MERGE",
    "STAGE2",
    "GenConv2d",
    "DeepFillStage",
]

Tensor = torch.Tensor
Row = tuple[str, float, float, int, int, int, str | None]
#: ``layer(in_channels, out_channels, kernel_size, stride, dilation, *, activation, upsample)``
LayerFactory = Callable[..., nn.Module]

STAGE1: tuple[Row, ...] = (
    ("conv1", 0, 1, 5, 1, 1, "elu"),
    ("conv2_downsample", 1, 2, 3, 2, 1, "elu"),
    ("conv3", 2, 2, 3, 1, 1, "elu"),
    ("conv4_downsample", 2, 4, 3, 2, 1, "elu"),
    ("conv5", 4, 4, 3, 1, 1, "elu"),
    ("conv6", 4, 4, 3, 1, 1, "elu"),
    ("conv7_atrous", 4, 4, 3, 1, 2, "elu"),
    ("conv8_atrous", 4, 4, 3, 1, 4, "elu"),
    ("conv9_atrous", 4, 4, 3, 1, 8, "elu"),
    ("conv10_atrous", 4, 4, 3, 1, 16, "elu"),
    ("conv11", 4, 4, 3, 1, 1, "elu"),
    ("conv12", 4, 4, 3, 1, 1, "elu"),
    ("conv13_upsample", 4, 2, 3, 1, 1, "elu"),
    ("conv14", 2, 2, 3, 1, 1, "elu"),
    ("conv15_upsample", 2, 1, 3, 1, 1, "elu"),
    ("conv16", 1, 0.5, 3, 1, 1, "elu"),
    ("conv17", 0.5, 0, 3, 1, 1, None),
)
STAGE2_CONV: tuple[Row, ...] = (
    ("xconv1", 0, 1, 5, 1, 1, "elu"),
    ("xconv2_downsample", 1, 1, 3, 2, 1, "elu"),
    ("xconv3", 1, 2, 3, 1, 1, "elu"),
    ("xconv4_downsample", 2, 2, 3, 2, 1, "elu"),
    ("xconv5", 2, 4, 3, 1, 1, "elu"),
    ("xconv6", 4, 4, 3, 1, 1, "elu"),
    ("xconv7_atrous", 4, 4, 3, 1, 2, "elu"),
    ("xconv8_atrous", 4, 4, 3, 1, 4, "elu"),
    ("xconv9_atrous", 4, 4, 3, 1, 8, "elu"),
    ("xconv10_atrous", 4, 4, 3, 1, 16, "elu"),
)
STAGE2_ATTENTION: tuple[Row, ...] = (
    ("pmconv1", 0, 1, 5, 1, 1, "elu"),
    ("pmconv2_downsample", 1, 1, 3, 2, 1, "elu"),
    ("pmconv3", 1, 2, 3, 1, 1, "elu"),
    ("pmconv4_downsample", 2, 4, 3, 2, 1, "elu"),
    ("pmconv5", 4, 4, 3, 1, 1, "elu"),
    ("pmconv6", 4, 4, 3, 1, 1, "relu"),
)
STAGE2_AFTER_ATTENTION: tuple[Row, ...] = (
    ("pmconv9", 4, 4, 3, 1, 1, "elu"),
    ("pmconv10", 4, 4, 3, 1, 1, "elu"),
)
STAGE2_MERGE: tuple[Row, ...] = (
    ("allconv11", 8, 4, 3, 1, 1, "elu"),
    ("allconv12", 4, 4, 3, 1, 1, "elu"),
    ("allconv13_upsample", 4, 2, 3, 1, 1, "elu"),
    ("allconv14", 2, 2, 3, 1, 1, "elu"),
    ("allconv15_upsample", 2, 1, 3, 1, 1, "elu"),
    ("allconv16", 1, 0.5, 3, 1, 1, "elu"),
    ("allconv17", 0.5, 0, 3, 1, 1, None),
)
STAGE2 = STAGE2_CONV + STAGE2_ATTENTION + STAGE2_AFTER_ATTENTION + STAGE2_MERGE
PADDINGS = ("same", "symmetric")
ACTIVATIONS = ("elu", "relu", None)


class GenConv2d(nn.Module):
    """DeepFill v1 ``gen_conv`` (convolution + activation), or ``gen_deconv`` (nearest x2, then
    the convolution) when ``upsample``: the ungated counterpart of
    :class:`zoo.layers.gated_conv.GatedConv2d`.

    Args:
        in_channels, out_channels: convolution channels.
        kernel_size, stride, dilation: square kernel, stride and dilation (TF ``rate``).
        activation: ``"elu"`` (official), ``"relu"`` (``pmconv6``) or ``None`` (RGB output).
        upsample: nearest x2 before the convolution (``*_upsample`` layers).
        padding: ``"same"`` (TF ``'SAME'``, official) or ``"symmetric"`` (daa233), see the
            module docstring.

    The convolution is ``self.conv`` (``padding=0``; the padding is applied in ``forward``), so
    checkpoint keys are ``<layer>.conv.weight`` / ``.bias``.  TF ``'SAME'`` runs through
    :func:`zoo.layers.padding.conv2d_same` (no padded copy where the padding is symmetric); an
    upsampling 3x3 stride-1 layer runs as phase convolutions at the input resolution
    (:func:`zoo.layers.gated_conv.upsample_conv3x3`, same values, 16 instead of 36
    multiply-adds per input pixel); activations run in place on the convolution output.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        *,
        activation: str | None = "elu",
        upsample: bool = False,
        padding: str = "same",
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be 'elu', 'relu' or None, got {activation!r}")
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, dilation=dilation)
        nn.init.xavier_uniform_(self.conv.weight)  # TF glorot_uniform
        nn.init.zeros_(self.conv.bias)
        self.activation, self.upsample, self.padding = activation, upsample, padding

    def extra_repr(self) -> str:
        return f"activation={self.activation}, upsample={self.upsample}, padding={self.padding!r}"

    def _activate(self, x: Tensor) -> Tensor:
        # in place: ELU/ReLU backward read their output, the convolution's does not need it
        if self.activation == "elu":
            return F.elu(x, inplace=True)
        if self.activation == "relu":
            return F.relu(x, inplace=True)
        return x

    def forward(self, x: Tensor) -> Tensor:
        conv = self.conv
        k, s, d = conv.kernel_size[0], conv.stride[0], conv.dilation[0]
        if self.upsample and (k, s, d) == (3, 1, 1):  # both paddings are 1 on every side here
            # nearest x2 + 3x3 conv as phase convolutions at the input resolution
            z = self._activate(upsample_conv3x3(x, conv.weight, conv.bias))  # N x 4C x H+1 x W+1
            return interleave_phases(z, conv.out_channels)  # N x C_out x 2H x 2W
        if self.upsample:  # neuralgym resize x2, align_corners=True == floor(y / 2) for x2
            x = F.interpolate(x, scale_factor=2, mode="nearest")  # N x C x 2H x 2W
        if self.padding == "same":  # TF 'SAME' (the symmetric part by the convolution itself)
            x = conv2d_same(x, conv.weight, conv.bias, conv.stride, conv.dilation)
        else:  # d (k - 1) / 2 zeros on every side
            x = F.conv2d(x, conv.weight, conv.bias, conv.stride, d * (k - 1) // 2, conv.dilation)
        return self._activate(x)  # N x C_out x ceil(H / s) x ceil(W / s)


def _channels(units: float, width: int) -> int:
    """Channels of a table width (``out = 0`` is RGB; ``in = 0`` is handled by the caller)."""
    if units == 0:
        return 3
    return width // 2 if units == 0.5 else int(units * width)


class DeepFillStage(nn.Module):
    """The layers of a table as children named as TF names them; :meth:`run` applies a table.

    Args:
        table: the rows to build, in order (e.g. ``STAGE1``, or ``STAGE2`` for all branches of
            stage 2).
        width: base width ``c`` of the table's units.
        in_channels: channels of the stage input (the ``in = 0`` layers).
        layer: factory of the model's conv block, called as ``layer(in_channels,
            out_channels, kernel_size, stride, dilation, activation=..., upsample=...)``.
    """

    def __init__(
        self, table: tuple[Row, ...], *, width: int, in_channels: int, layer: LayerFactory
    ) -> None:
        super().__init__()
        if not isinstance(width, int) or width < 2 or width % 2:
            raise ValueError(f"width must be a positive even int, got {width!r}")
        for name, c_in, c_out, k, s, d, act in table:
            block = layer(
                in_channels if c_in == 0 else _channels(c_in, width),
                _channels(c_out, width),
                k,
                s,
                d,
                activation=act,
                upsample=name.endswith("_upsample"),
            )
            self.add_module(name, block)

    def run(self, x: Tensor, table: tuple[Row, ...]) -> Tensor:
        """Apply the layers of ``table`` (a sub-table of the built one) in order."""
        for row in table:
            x = getattr(self, row[0])(x)
        return x
