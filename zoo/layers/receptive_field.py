"""Receptive field of a chain of convolution-like layers, by exact index arithmetic.

The receptive field (RF) of an output pixel is the extent, in input pixels along one axis, of
the input positions it depends on (the bounding interval, holes of dilated kernels included).
For plain convolutions this is the classic ``1 + sum_l (d_l*(k_l-1)) * prod_{m<l} s_m`` and it is
the same at every output position.  Transposed convolutions and upsampling make it depend on the
output position (an output pixel of a stride-2 4x4 transposed convolution sees 2 input pixels,
but a run of n outputs sees n/2 + 1 or n/2 + 2 of them, depending on parity), so
:func:`receptive_field` returns the **largest** extent over output positions, computed exactly:
each layer maps a range of output indices to the range of input indices it reads,

- convolution / pooling (k, s, p, d): output ``o`` reads ``o*s - p + t*d``, ``t = 0..k-1``;
- transposed convolution (k, s, p, d): output ``o`` reads every ``i`` with
  ``o = i*s - p + t*d`` for some ``t`` (the zero-insertion definition of ``nn.ConvTranspose2d``);
- nearest upsampling by an integer ``s``: ``o`` reads ``floor(o/s)``;
- bilinear upsampling (``align_corners=False``): ``o`` reads ``floor(c)`` and ``floor(c) + 1``
  with ``c = (o + 1/2)/s - 1/2`` (only ``floor(c)`` when ``c`` is an integer);
- explicit padding layers shift indices by their leading pad;

on an unbounded axis (image borders ignored).  Composing bounding ranges is exact because every
map is monotone.  Pointwise layers (activations, normalisation, dropout) are skipped; note that
instance/batch normalisation in training mode has image-wide statistics, which RF arithmetic
ignores by convention.

:func:`layers_from_module` extracts the layer sequence of a chain-shaped module (children in
registration order = execution order, as in ``nn.Sequential``); it refuses layers it does not
understand rather than guessing.

GLCIC (Iizuka et al. 2017, section 3.1) states a 307 x 307 receptive field for its completion
network.  With the layer table of models.md section 3 (true 4x4 stride-1/2 transposed
convolutions) the exact figure at the final output is **303** for half of the output rows
(299 for the other half); 287 at the last 1/4-resolution layer.  307 is obtained when each
"deconvolution" is counted as a x2 upsampling followed by a 4x4 convolution at the upsampled
resolution (r += (k + s - 2) * j_out per deconvolution, or equivalently the worst-case position
of a nearest-upsample + 4x4 conv network); the same reading gives 99 for the network without
dilation, the figure we recall the paper quoting for that case (unverified).  The test
``tests/layers/test_dilated.py`` checks both readings against empirical gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Literal

import torch.nn as nn

__all__ = [
    "LayerGeometry",
    "input_span",
    "receptive_field",
    "layers_from_module",
    "receptive_field_of_module",
]

Kind = Literal["conv", "conv_transpose", "upsample", "pad"]


@dataclass(frozen=True)
class LayerGeometry:
    """One layer along one axis.

    kind: ``"conv"`` (also pooling), ``"conv_transpose"``, ``"upsample"`` or ``"pad"``.
    kernel_size, stride, dilation, padding: as in ``nn.Conv2d`` / ``nn.ConvTranspose2d``
        (``padding`` = leading pad; for ``"pad"`` the number of pixels added before index 0).
    scale: integer upsampling factor (``"upsample"``).
    mode: ``"nearest"`` or ``"bilinear"`` (``align_corners=False``) for ``"upsample"``.
    """

    kind: Kind
    kernel_size: int = 1
    stride: int = 1
    dilation: int = 1
    padding: int = 0
    scale: int = 1
    mode: str = "nearest"

    def __post_init__(self) -> None:
        if self.kind not in ("conv", "conv_transpose", "upsample", "pad"):
            raise ValueError(f"unknown layer kind {self.kind!r}")
        if min(self.kernel_size, self.stride, self.dilation, self.scale) < 1:
            raise ValueError(f"kernel_size, stride, dilation, scale must be >= 1: {self}")
        if self.kind == "upsample" and self.mode not in ("nearest", "bilinear"):
            raise ValueError(f"upsample mode must be 'nearest' or 'bilinear', got {self.mode!r}")

    @property
    def upsampling(self) -> int:
        """Output pixels per input pixel (1 for convolutions)."""
        if self.kind == "conv_transpose":
            return self.stride
        return self.scale if self.kind == "upsample" else 1

    def reads(self, o: int) -> list[int]:
        """Input indices read by output index ``o`` (unbounded axis)."""
        k, s, p, d = self.kernel_size, self.stride, self.padding, self.dilation
        if self.kind == "conv":
            return [o * s - p + t * d for t in range(k)]
        if self.kind == "conv_transpose":
            return [(o + p - t * d) // s for t in range(k) if (o + p - t * d) % s == 0]
        if self.kind == "pad":
            return [o - p]
        if self.mode == "nearest":
            return [o // self.scale]
        # bilinear, align_corners=False: source coordinate (2o + 1 - s) / (2s)
        num, den = 2 * o + 1 - self.scale, 2 * self.scale
        return [num // den] if num % den == 0 else [num // den, num // den + 1]


def _layer_range(layer: LayerGeometry, lo: int, hi: int) -> tuple[int, int] | None:
    """Bounding input range read by output indices ``lo..hi``; None if they read nothing."""
    period = layer.upsampling  # reads(o + period) == reads(o) + 1
    head = [i for o in range(lo, min(hi, lo + period - 1) + 1) for i in layer.reads(o)]
    tail = [i for o in range(max(lo, hi - period + 1), hi + 1) for i in layer.reads(o)]
    if not head or not tail:
        return None
    return min(head), max(tail)


def input_span(layers: list[LayerGeometry], position: int) -> tuple[int, int] | None:
    """First and last input index that output index ``position`` of the chain depends on
    (None when it depends on no input, e.g. a stride-2, 1x1 transposed conv's odd outputs)."""
    span: tuple[int, int] | None = (position, position)
    for layer in reversed(layers):
        span = _layer_range(layer, *span)
        if span is None:
            return None
    return span


def receptive_field(layers: list[LayerGeometry]) -> int:
    """Largest receptive-field extent (input pixels, one axis) over all output positions.

    The extent is periodic in the output position with a period dividing the product of the
    upsampling factors, so that many consecutive positions are examined.
    """
    if not layers:
        return 1
    period = prod(layer.upsampling for layer in layers)
    extents = [
        span[1] - span[0] + 1 for o in range(period) if (span := input_span(layers, o)) is not None
    ]
    if not extents:
        raise ValueError("no output position depends on the input")
    return max(extents)


# --------------------------------------------------------------------- module extraction
_POINTWISE: tuple[type[nn.Module], ...] = (
    nn.Identity,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardtanh,
    nn.Softplus,
    nn.Dropout,
    nn.Dropout2d,
    nn.BatchNorm2d,
    nn.InstanceNorm2d,
    nn.GroupNorm,
    nn.LocalResponseNorm,
)
_PADS = (nn.ReflectionPad2d, nn.ReplicationPad2d, nn.ZeroPad2d, nn.ConstantPad2d)


def _pick(value: int | float | tuple, axis: int):
    return value[axis] if isinstance(value, (tuple, list)) else value


def _geometry(module: nn.Module, axis: int, name: str) -> LayerGeometry | None:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        if isinstance(module.padding, str):
            raise ValueError(f"{name}: string padding {module.padding!r} is not supported")
        kind: Kind = "conv_transpose" if isinstance(module, nn.ConvTranspose2d) else "conv"
        return LayerGeometry(
            kind,
            kernel_size=_pick(module.kernel_size, axis),
            stride=_pick(module.stride, axis),
            dilation=_pick(module.dilation, axis),
            padding=_pick(module.padding, axis),
        )
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        if module.ceil_mode:
            raise ValueError(f"{name}: ceil_mode pooling is not supported")
        dilation = module.dilation if isinstance(module, nn.MaxPool2d) else 1
        stride = module.stride if module.stride is not None else module.kernel_size
        return LayerGeometry(
            "conv",
            kernel_size=_pick(module.kernel_size, axis),
            stride=_pick(stride, axis),
            dilation=_pick(dilation, axis),
            padding=_pick(module.padding, axis),
        )
    if isinstance(module, nn.Upsample):
        scale = module.scale_factor
        if module.size is not None or scale is None:
            raise ValueError(f"{name}: Upsample needs an integer scale_factor, not a size")
        scale = _pick(scale, axis)
        if float(scale) != int(scale):
            raise ValueError(f"{name}: non-integer scale factor {scale}")
        if module.mode not in ("nearest", "bilinear") or module.align_corners:
            raise ValueError(
                f"{name}: only nearest and bilinear (align_corners=False) upsampling have a "
                f"size-independent index map, got mode={module.mode!r}, "
                f"align_corners={module.align_corners}"
            )
        return LayerGeometry("upsample", scale=int(scale), mode=module.mode)
    if isinstance(module, _PADS):
        left, _right, top, _bottom = module.padding
        return LayerGeometry("pad", padding=top if axis == 0 else left)
    return None


def layers_from_module(
    module: nn.Module,
    *,
    axis: int = 0,
    pointwise: tuple[type[nn.Module], ...] = (),
) -> list[LayerGeometry]:
    """The geometric layer sequence of a chain-shaped module along ``axis`` (0 = H, 1 = W).

    Leaves are visited in registration order, which must be the execution order (true for
    ``nn.Sequential`` and for modules that register their layers in the order they run them;
    not for branching networks).  ``Conv2d``, ``ConvTranspose2d`` (also when parametrized,
    e.g. spectral norm), ``MaxPool2d``/``AvgPool2d``, ``Upsample`` and padding layers carry
    geometry; activations, normalisation and dropout (plus the extra ``pointwise`` types) are
    skipped; anything else raises ``TypeError``.
    """
    if axis not in (0, 1):
        raise ValueError(f"axis must be 0 (height) or 1 (width), got {axis}")
    out: list[LayerGeometry] = []

    def visit(mod: nn.Module, name: str) -> None:
        geometry = _geometry(mod, axis, name)
        if geometry is not None:
            out.append(geometry)
            return
        children = list(mod.named_children())
        if children:
            for child_name, child in children:
                visit(child, f"{name}.{child_name}" if name else child_name)
        elif not isinstance(mod, _POINTWISE + tuple(pointwise)):
            raise TypeError(
                f"{name or type(mod).__name__}: {type(mod).__name__} has no known geometry; "
                f"pass its type in `pointwise` if it acts pixel by pixel"
            )

    visit(module, "")
    return out


def receptive_field_of_module(module: nn.Module, *, axis: int = 0) -> int:
    """:func:`receptive_field` of :func:`layers_from_module` (chain-shaped modules only)."""
    return receptive_field(layers_from_module(module, axis=axis))
