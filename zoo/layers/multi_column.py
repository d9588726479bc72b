"""GMCNN multi-column blocks: one encoder-decoder column per kernel size, and the merge.

Wang, Tao, Qi, Shen, Jia, "Image Inpainting via Generative Multi-column Convolutional Neural
Networks", NeurIPS 2018 (arXiv 1810.08771), section 3.1.  Follows the official PyTorch code,
shepnerd/inpainting_gmcnn ``pytorch/model/net.py`` (``GMCNN``), not the differently shaped
``tensorflow/`` version.

Each column (``EB1``: 7x7, ``EB2``: 5x5, ``EB3``: 3x3 kernels, width ``cnum = 32``) is

    12 convolutions, all k x k:  cnum; 2cnum s2; 2cnum; 4cnum s2; 4cnum; 4cnum;
                                 4cnum d2, d4, d8, d16; 4cnum; 4cnum           (1/4 resolution)
    EB1 tail: bilinear x4                                               -> 4cnum channels
    EB2 tail: nearest x2, conv 2cnum, conv 2cnum, bilinear x2           -> 2cnum channels
    EB3 tail: nearest x2, conv 2cnum, conv 2cnum, nearest x2, conv cnum, conv cnum -> cnum

Every convolution is preceded by reflection padding ``d*(k-1)/2`` (so stride-1 layers keep the
size and stride-2 layers halve an even size) and followed by ELU; the parameter-free
upsampling entries have no activation; all convolutions have biases; bilinear upsampling uses
``align_corners=True`` and nearest the PyTorch default, both to an exact ``x scale`` size, as the
official ``PureUpsampling``.  The merge (``decoding_layers``) concatenates the three columns
(7 cnum = 224 channels), then reflection-pad 1 + 3x3 conv to ``cnum/2`` + ELU, reflection-pad 1
+ 3x3 conv to the output channels, and clamps to [-1, 1].

Weight layout.  :class:`MultiColumnBranch` and :class:`MultiColumnMerge` are ``nn.ModuleList``
subclasses whose entries sit at the official indices, upsampling entries included.  A generator
holding them as attributes ``EB1``, ``EB2``, ``EB3`` and ``decoding_layers`` therefore has the
official state-dict keys one to one: ``EB1.0`` ... ``EB1.11`` (``EB1.12`` = upsampling, no
parameters); ``EB2.0`` ... ``EB2.11``, ``EB2.13``, ``EB2.14`` (12 and 15 upsampling);
``EB3.0`` ... ``EB3.11``, ``EB3.13``, ``EB3.14``, ``EB3.16``, ``EB3.17`` (12 and 15 upsampling);
``decoding_layers.0``, ``decoding_layers.1``.  The official ``pads`` list of
``ReflectionPad2d`` modules holds no tensors and has no counterpart here.  With
``in_channels = 4`` and ``cnum = 32`` the three columns plus the merge have 12,561,891
parameters, the count of the official ``GMCNN(4, 3, cnum=32)``.

Options of the official class kept here: ``use_instance_norm`` (official ``using_norm``, default
off: ``F.instance_norm`` after *every* entry, upsampling included, before the activation) and
the activation function (official ``act=F.elu``).

Input size: reflection padding must be smaller than the padded map, so the 7x7 column needs
feature maps larger than 48 pixels at 1/4 resolution (inputs of at least 196 x 196), the 5x5
column 132, the 3x3 column 68; H and W must be multiples of 4 for the columns to line up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["MultiColumnBranch", "MultiColumnMerge", "branch_out_channels"]

Tensor = torch.Tensor
Activation = Callable[[Tensor], Tensor]

#: encoder of every column: (output width in units of cnum, stride, dilation)
_ENCODER = (
    (1, 1, 1), (2, 2, 1), (2, 1, 1), (4, 2, 1), (4, 1, 1), (4, 1, 1),
    (4, 1, 2), (4, 1, 4), (4, 1, 8), (4, 1, 16), (4, 1, 1), (4, 1, 1),
)  # fmt: skip

#: decoder tail per kernel size: ("up", scale, mode) or ("conv", width in units of cnum)
_TAILS: dict[int, tuple[tuple, ...]] = {
    7: (("up", 4, "bilinear"),),
    5: (("up", 2, "nearest"), ("conv", 2), ("conv", 2), ("up", 2, "bilinear")),
    3: (
        ("up", 2, "nearest"), ("conv", 2), ("conv", 2),
        ("up", 2, "nearest"), ("conv", 1), ("conv", 1),
    ),
}  # fmt: skip


def branch_out_channels(kernel_size: int, cnum: int = 32) -> int:
    """Output channels of a column: 4 cnum (7x7), 2 cnum (5x5), cnum (3x3)."""
    if kernel_size not in _TAILS:
        raise ValueError(f"GMCNN columns use kernel sizes 7, 5, 3; got {kernel_size}")
    widths = [step[1] for step in _TAILS[kernel_size] if step[0] == "conv"]
    return (widths[-1] if widths else 4) * cnum


class _Resize(nn.Module):
    """Parameter-free upsampling to exactly ``scale`` x the input size (official
    ``PureUpsampling``: bilinear with ``align_corners=True``, nearest with the default)."""

    def __init__(self, scale: int, mode: str) -> None:
        super().__init__()
        if mode not in ("nearest", "bilinear"):
            raise ValueError(f"mode must be 'nearest' or 'bilinear', got {mode!r}")
        self.scale, self.mode = scale, mode

    def extra_repr(self) -> str:
        return f"scale={self.scale}, mode={self.mode!r}"

    def forward(self, x: Tensor) -> Tensor:
        size = (x.shape[-2] * self.scale, x.shape[-1] * self.scale)
        if self.mode == "nearest":
            return F.interpolate(x, size=size, mode="nearest")
        return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def _reflect_conv(conv: nn.Conv2d, x: Tensor, where: str) -> Tensor:
    """Reflection padding ``d*(k-1)/2`` then the (unpadded) convolution."""
    pad = conv.dilation[0] * (conv.kernel_size[0] - 1) // 2
    if pad >= min(x.shape[-2:]):
        raise ValueError(
            f"{where}: reflection padding {pad} needs feature maps larger than {pad} pixels, "
            f"got {tuple(x.shape[-2:])}; GMCNN needs inputs of at least 196 x 196 (7x7 column)"
        )
    return conv(F.pad(x, (pad, pad, pad, pad), mode="reflect"))


class MultiColumnBranch(nn.ModuleList):
    """One GMCNN column (official ``EB1``/``EB2``/``EB3`` for kernel 7/5/3).

    Args:
        kernel_size: 7, 5 or 3; selects the official decoder tail (see module docstring).
        in_channels: input channels (official: 4 = masked RGB in [-1, 1] + mask, 1 = hole).
        cnum: base width (official: 32).
        act: activation after every convolution (official: ``F.elu``).
        use_instance_norm: official ``using_norm`` (default off).
    Entries: ``nn.Conv2d`` (padding 0; reflection padding is applied in ``forward``) and
    parameter-free ``_Resize`` modules, at the official indices.
    """

    def __init__(
        self,
        kernel_size: int,
        *,
        in_channels: int = 4,
        cnum: int = 32,
        act: Activation = F.elu,
        use_instance_norm: bool = False,
    ) -> None:
        if kernel_size not in _TAILS:
            raise ValueError(f"GMCNN columns use kernel sizes 7, 5, 3; got {kernel_size}")
        entries: list[nn.Module] = []
        c_in = in_channels
        for width, stride, dilation in _ENCODER:
            c_out = width * cnum
            entries.append(nn.Conv2d(c_in, c_out, kernel_size, stride=stride, dilation=dilation))
            c_in = c_out
        for step in _TAILS[kernel_size]:
            if step[0] == "up":
                entries.append(_Resize(step[1], step[2]))
            else:
                c_out = step[1] * cnum
                entries.append(nn.Conv2d(c_in, c_out, kernel_size))
                c_in = c_out
        super().__init__(entries)
        self.kernel_size = kernel_size
        self.in_channels = in_channels
        self.out_channels = c_in
        object.__setattr__(self, "act", act)  # never a registered (iterated) list entry
        self.use_instance_norm = use_instance_norm

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, out_channels={self.out_channels}"

    def forward(self, x: Tensor) -> Tensor:
        """N x in_channels x H x W -> N x out_channels x H x W (H, W multiples of 4)."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected N x {self.in_channels} x H x W, got {tuple(x.shape)}")
        for i, entry in enumerate(self):
            if isinstance(entry, nn.Conv2d):
                x = _reflect_conv(entry, x, f"{self.kernel_size}x{self.kernel_size} column [{i}]")
                if self.use_instance_norm:
                    x = F.instance_norm(x)
                x = self.act(x)
            else:  # upsampling: no activation (official: pad 0 -> no act)
                x = entry(x)
                if self.use_instance_norm:
                    x = F.instance_norm(x)
        return x


class MultiColumnMerge(nn.ModuleList):
    """Official ``decoding_layers``: concat columns -> pad1 conv3x3 (cnum/2) -> act ->
    pad1 conv3x3 (out_channels) -> clamp.

    Args:
        in_channels: sum of the column widths (official: 7 cnum = 224).
        hidden_channels: official ``cnum // 2`` = 16.
        out_channels: 3 (RGB in [-1, 1]).
        clamp: output range (official: (-1, 1)); None for no clamping.
        act: activation after the first convolution (official: ``F.elu``).
    """

    def __init__(
        self,
        in_channels: int = 224,
        hidden_channels: int = 16,
        out_channels: int = 3,
        *,
        clamp: tuple[float, float] | None = (-1.0, 1.0),
        act: Activation = F.elu,
    ) -> None:
        super().__init__(
            [
                nn.Conv2d(in_channels, hidden_channels, 3),
                nn.Conv2d(hidden_channels, out_channels, 3),
            ]
        )
        self.in_channels = in_channels
        self.clamp = clamp
        object.__setattr__(self, "act", act)  # never a registered (iterated) list entry

    def forward(self, columns: Sequence[Tensor]) -> Tensor:
        """``columns``: the column outputs in the official order (EB1, EB2, EB3)."""
        shapes = {tuple(c.shape[-2:]) for c in columns}
        if len(shapes) != 1:
            raise ValueError(
                f"column outputs differ in size {sorted(shapes)}; H and W must be multiples of 4"
            )
        x = torch.cat(list(columns), dim=1)  # N x sum(C_i) x H x W
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"columns have {x.shape[1]} channels in all, expected {self.in_channels}"
            )
        x = self.act(_reflect_conv(self[0], x, "merge [0]"))
        x = _reflect_conv(self[1], x, "merge [1]")
        return x.clamp(*self.clamp) if self.clamp is not None else x
