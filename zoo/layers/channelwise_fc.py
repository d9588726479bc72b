"""Channel-wise fully-connected layer (Context Encoder bottleneck).

Pathak, Krähenbühl, Donahue, Darrell, Efros, "Context Encoders: Feature Learning by
Inpainting", CVPR 2016 (arXiv 1604.07379), section 3.1: a fully-connected layer applied to each
feature map separately, with no connections between feature maps, so ``m`` maps of size
``n x n`` cost ``m * n^4`` weights instead of ``m^2 * n^4``; "followed by a stride 1
convolution to propagate information across channels".  For input ``x`` (N x C x H x W)::

    out[n, c] = reshape(W[c] @ flatten(x[n, c]) + b[c], H x W)    W[c]: (H*W) x (H*W)

``W[c]`` follows the ``nn.Linear`` layout (out_features x in_features), so channel ``c`` of this
layer is exactly ``nn.Linear(H*W, H*W)`` with weight ``weight[c]`` and bias ``bias[c]``.

Parameters: ``C * (H*W)^2`` (+ ``C * H*W`` with bias).  With ``mix_channels=True`` a 1x1
stride-1 convolution ``C -> C`` (with bias) follows, the cross-channel step of the paper (its
kernel size is not given in the paper; 1x1 is the smallest that propagates across channels).

Deviation note: the released Context Encoder code (pathak22/context-encoder, and the
BoyuanJiang/context_encoder_pytorch port) does **not** use this layer; its bottleneck is a
plain 4x4 convolution to 1 x 1 x ``nBottleneck`` (models.md section 1).  This layer is offered
for the paper's variant.  Weights are initialised like ``nn.Linear`` (uniform in
+-1/sqrt(H*W)).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

__all__ = ["ChannelwiseFC"]

Tensor = torch.Tensor


class ChannelwiseFC(nn.Module):
    """Per-channel ``nn.Linear`` over the H*W positions, no cross-channel weights.

    Args:
        channels: C (paper, AlexNet encoder: 256 maps of 6 x 6 for a 227 input).
        height, width: the fixed spatial size the layer is built for.
        bias: per-channel bias of size H*W.
        mix_channels: append the paper's stride-1 1x1 convolution C -> C (child ``mix``).
    Parameters: ``weight`` (C, H*W, H*W), ``bias`` (C, H*W).
    """

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        *,
        bias: bool = True,
        mix_channels: bool = False,
    ) -> None:
        super().__init__()
        if min(channels, height, width) < 1:
            raise ValueError(f"channels, height, width must be >= 1, got {channels, height, width}")
        self.channels, self.height, self.width = channels, height, width
        area = height * width
        self.weight = nn.Parameter(torch.empty(channels, area, area))
        self.bias = nn.Parameter(torch.empty(channels, area)) if bias else None
        self.mix = nn.Conv2d(channels, channels, kernel_size=1) if mix_channels else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.height * self.width)  # nn.Linear's default range
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, height={self.height}, width={self.width}, "
            f"bias={self.bias is not None}"
        )

    def forward(self, x: Tensor) -> Tensor:
        expected = (self.channels, self.height, self.width)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"ChannelwiseFC expects N x {expected[0]} x {expected[1]} x {expected[2]}, "
                f"got {tuple(x.shape)}"
            )
        n = x.shape[0]
        flat = x.reshape(n, self.channels, self.height * self.width)  # N x C x HW
        out = torch.einsum("cij,ncj->nci", self.weight, flat)  # N x C x HW
        if self.bias is not None:
            out = out + self.bias
        out = out.reshape(n, self.channels, self.height, self.width)  # N x C x H x W
        return self.mix(out) if self.mix is not None else out
