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
test_gated_conv.py`` checks it against the TF formula), i.e. ``F.interpolate(scale_factor=2,
mode="nearest")``.

Implementation of ``gen_deconv`` (:func:`upsample_conv3x3`): a 3x3 stride-1 ``'SAME'``
convolution of the x2 nearest-upsampled input is, at each of the four output phases ``(py,
px)`` (output row ``2i + py``, column ``2j + px``), a 2x2 convolution of the input itself: the
upsampled rows ``2i + py - 1 .. 2i + py + 1`` are input rows ``i - 1, i, i`` (``py = 0``) or
``i, i, i + 1`` (``py = 1``), so the taps that read the same input row are summed
(``[w0, w1 + w2]`` or ``[w0 + w1, w2]``, likewise for columns), and the zero padding of the
upsampled image is the zero padding of the input.  One convolution with the four phase kernels
(2x2, padding 1) at the input resolution, then an interleave, gives the same values (up to the
rounding of the summed weights) with 16 instead of 36 multiply-adds per input pixel and output
channel and no upsampled copy.

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

from zoo.layers import native
from zoo.layers.fast_deconv import interleave_phases, is_channels_last
from zoo.layers.padding import conv2d_same, same_pad_amounts

__all__ = [
    "GatedConv2d",
    "GatedDeconv2d",
    "gated_activation",
    "upsample_conv3x3",
    "phase_weights",
    "conv2d_gated_rows",
]

Tensor = torch.Tensor
ActivationFactory = Callable[[], nn.Module]


#: rows of the x2-upsampled 3x3 window -> the 2 input rows each phase reads (``[py][row, tap]``)
_PHASE_TAPS = ((1.0, 0.0, 0.0), (0.0, 1.0, 1.0)), ((1.0, 1.0, 0.0), (0.0, 0.0, 1.0))


#: floats per step of PyTorch's vectorised CPU loops (2 AVX-512 vectors)
_VECTOR_CHUNK = 32


def upsample_conv3x3(x: Tensor, weight: Tensor, bias: Tensor | None, halves: int = 1) -> Tensor:
    """Phase outputs of ``conv3x3_same(nearest_x2(x))`` computed at ``x``'s resolution.

    ``x``: N x Cin x H x W; ``weight``: O x Cin x 3 x 3 (``O = halves * C``, ``halves = 2``
    for a gated convolution's [feature, gate]).  Returns N x 4O x (H + 1) x (W + 1) with
    channel ``(h * 4 + 2 py + px) * C + c``: the phase ``(py, px)`` of output channel ``h * C +
    c``, valid on rows ``py .. py + H - 1`` and columns ``px .. px + W - 1``
    (:func:`~zoo.layers.fast_deconv.interleave_phases` assembles them; module docstring).
    The halves stay contiguous blocks so that a gated activation can split them before the
    interleave.
    """
    phases, bias = phase_weights(weight, bias, halves)
    return F.conv2d(x, phases, bias, 1, 1)  # N x 4O x H+1 x W+1


def phase_weights(
    weight: Tensor, bias: Tensor | None, halves: int = 1
) -> tuple[Tensor, Tensor | None]:
    """The 4O x Cin x 2 x 2 phase kernels (and 4O biases) of :func:`upsample_conv3x3`, to be
    applied with padding 1."""
    o, cin, kh, kw = weight.shape
    if (kh, kw) != (3, 3) or o % halves:
        raise ValueError(f"expected an O x Cin x 3 x 3 weight, O divisible by {halves}")
    taps = weight.new_tensor(_PHASE_TAPS)  # py x 2 x 3
    # O x Cin x 3 x 3 -> (py, px, O, Cin, 2, 2): taps reading the same input row/column summed
    phases = torch.einsum("yra,ocab,xsb->yxocrs", taps, weight, taps)
    phases = phases.reshape(4, halves, o // halves, cin, 2, 2).transpose(0, 1)
    phases = phases.reshape(4 * o, cin, 2, 2)  # (half, phase, c) order
    if bias is not None:
        bias = bias.view(halves, 1, o // halves).expand(halves, 4, o // halves).reshape(4 * o)
    return phases, bias


def _activate_(feature: Tensor, act: nn.Module) -> Tensor:
    """``act(feature)``, in place for the known activations (inference only)."""
    if type(act) is nn.ELU:
        return F.elu(feature, act.alpha, inplace=True)
    if type(act) is nn.ReLU:
        return feature.relu_()
    return act(feature)


def gated_activation(y: Tensor, out_channels: int, act: nn.Module) -> Tensor:
    """``act(feature) * sigmoid(gate)`` of the conv output ``y`` = [feature, gate] (N x 2C x H x
    W, C = ``out_channels``) -> N x C x H x W.

    Without autograd (inference) the activation and the sigmoid run in place (same arithmetic,
    fewer temporaries).  In ``channels_last`` layout the two halves interleave pixel by pixel:
    PyTorch's vectorised CPU loops take 32 floats at a time, so on rows of C channels with
    ``C % 32 != 0`` (C = 12, 24, 48 in DeepFill v2) much of the work runs scalar, several times
    slower; such halves are first copied to dense tensors.  With autograd everything
    runs out of place, because both results are saved for the backward pass.

    Where it applies (inference, float32 CPU, dense layout), the fused C kernel of
    :mod:`zoo.layers.native` computes the same values (to a few ulp) in one pass, about 4x
    faster; the PyTorch ops below are the fallback and the reference.
    """
    fused = native.gated_activation(y, out_channels, act)
    if fused is not None:
        return fused
    feature, gate = y[:, :out_channels], y[:, out_channels:]  # (feature, gate) halves
    if torch.is_grad_enabled() and y.requires_grad:
        return act(feature) * torch.sigmoid(gate)
    if out_channels % _VECTOR_CHUNK and is_channels_last(y):
        feature = feature.contiguous(memory_format=torch.channels_last)  # dense copies
        gate = gate.contiguous(memory_format=torch.channels_last)
    feature = _activate_(feature, act)
    gate = gate.sigmoid_()
    return feature.mul_(gate) if feature.data_ptr() != y.data_ptr() else feature * gate


#: floats of one row tile's convolution output in :func:`conv2d_gated_rows` (~1 MB in float32:
#: the tile is activated while it is still in the core's cache)
TILE_FLOATS = 1 << 18


def conv2d_gated_rows(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    padding: tuple[int, int, int, int],
    stride: int,
    dilation: int,
    out_channels: int,
    act: nn.Module,
    tile_floats: int | None = None,
) -> Tensor:
    """``gated_activation(F.conv2d(F.pad(x, padding), weight, bias, stride, 0, dilation),
    out_channels, act)`` computed in tiles of output rows (inference only; zero padding
    ``(left, right, top, bottom)`` as ``F.pad``).

    Each tile of output rows ``r0 .. r1`` convolves only the input rows it reads (``s r0 - top
    .. s (r1 - 1) - top + d (kh - 1)``; zero rows beyond the image edge and an asymmetric
    column remainder are padded onto the tile's small slice, the symmetric column padding is
    the convolution's), and is activated and multiplied into the output while it is in the
    cache: the full 2C-channel convolution output is never written to memory.  Each output
    value is the same dot product as in the whole-image convolution (up to the summation
    order).  ``x``: N x Cin x H x W (best channels_last); returns N x C x Hout x Wout in
    ``x``'s layout.
    """
    n, _, h, w = x.shape
    kh, kw = weight.shape[-2:]
    left, right, top, bottom = padding
    s, d = stride, dilation
    h_out = (h + top + bottom - d * (kh - 1) - 1) // s + 1
    w_out = (w + left + right - d * (kw - 1) - 1) // s + 1
    pw = min(left, right)  # symmetric column padding: the convolution's own
    c = out_channels
    layout = torch.channels_last if is_channels_last(x) else torch.contiguous_format
    out = torch.empty(n, c, h_out, w_out, dtype=x.dtype, device=x.device, memory_format=layout)
    tile = TILE_FLOATS if tile_floats is None else tile_floats
    rows = max(1, tile // max(1, n * 2 * c * w_out))  # output rows per tile
    for r0 in range(0, h_out, rows):
        r1 = min(r0 + rows, h_out)
        lo, hi = s * r0 - top, s * (r1 - 1) - top + d * (kh - 1) + 1  # input rows read
        xs = x[:, :, max(lo, 0) : min(hi, h)]  # N x Cin x rows read x W
        extra = (left - pw, right - pw, max(-lo, 0), max(hi - h, 0))
        if any(extra):  # edge tile / asymmetric columns: pad the slice (a small copy)
            xs = F.pad(xs, extra).contiguous(memory_format=layout)
        y = F.conv2d(xs, weight, bias, s, (0, pw), d)  # N x 2C x (r1 - r0) x Wout
        feature = _activate_(y[:, :c].contiguous(memory_format=layout), act)
        gate = y[:, c:].contiguous(memory_format=layout).sigmoid_()
        torch.mul(feature, gate, out=out[:, :, r0:r1])
    return out


#: use :func:`conv2d_gated_rows` in the layers' inference path.  Off: measured interleaved
#: against nipponjo's port (1 thread, 256x256), tiles helped only while the shared machine was
#: heavily loaded (memory-bound) and cost ~10 % at load ~2.5 (more, smaller convolutions).
ROW_TILES = False


def _use_rows(x: Tensor, conv_out: int) -> bool:
    """Row tiles (when enabled) for inference on large outputs (several tiles of cache size)."""
    return (
        ROW_TILES
        and not torch.is_grad_enabled()
        and x.shape[0] * conv_out * x.shape[-2] * x.shape[-1] >= 4 * TILE_FLOATS
    )


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
        if self.gated and _use_rows(x, 2 * self.out_channels):  # conv + activation in tiles
            k, s, d = self.kernel_size, self.stride, self.dilation
            top, bottom = same_pad_amounts(x.shape[-2], k, s, d)
            left, right = same_pad_amounts(x.shape[-1], k, s, d)
            return conv2d_gated_rows(
                x, self.conv.weight, self.conv.bias, (left, right, top, bottom), s, d,
                self.out_channels, self.act,
            )  # fmt: skip
        # TF 'SAME' zero padding; N x conv_out x ceil(H/s) x ceil(W/s)
        y = conv2d_same(x, self.conv.weight, self.conv.bias, self.stride, self.dilation)
        if not self.gated:
            return y
        return gated_activation(y, self.out_channels, self.act)

    def extra_repr(self) -> str:
        return f"gated={self.gated}"


class GatedDeconv2d(nn.Module):
    """Nearest x2 upsampling followed by a 3x3 stride-1 :class:`GatedConv2d` (``gen_deconv``),
    computed as phase convolutions at the input resolution (:func:`upsample_conv3x3`)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        activation: ActivationFactory | None = nn.ELU,
    ) -> None:
        super().__init__()
        self.conv = GatedConv2d(in_channels, out_channels, 3, 1, 1, activation=activation)

    def forward(self, x: Tensor) -> Tensor:
        gconv = self.conv
        if x.dim() != 4 or x.shape[1] != gconv.conv.in_channels:
            raise ValueError(
                f"expected N x {gconv.conv.in_channels} x H x W input, got {tuple(x.shape)}"
            )
        c = gconv.out_channels
        if gconv.gated and _use_rows(x, 8 * c):  # phase conv + activation in row tiles
            phases, bias = phase_weights(gconv.conv.weight, gconv.conv.bias, 2)
            z = conv2d_gated_rows(x, phases, bias, (1, 1, 1, 1), 1, 1, 4 * c, gconv.act)
            return interleave_phases(z, c)  # N x C x 2H x 2W
        z = upsample_conv3x3(x, gconv.conv.weight, gconv.conv.bias, 2 if gconv.gated else 1)
        if gconv.gated:  # the activation is pointwise: apply it before the interleave
            z = gated_activation(z, 4 * c, gconv.act)  # N x 4C x H+1 x W+1
        return interleave_phases(z, c)  # N x C x 2H x 2W
