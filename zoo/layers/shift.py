"""Shift connection (Shift-Net): copy, into each hole position, the best-matching known encoder
feature vector.

Yan, Li, Li, Zuo, Shan, "Shift-Net: Image Inpainting via Deep Feature Rearrangement", ECCV 2018
(arXiv 1801.09392), section 3.2 (eq. 4-6).  Follows the official PyTorch code,
Zhaoyi-Yan/Shift-Net_pytorch: ``models/shift_net/InnerShiftTriple.py``,
``InnerShiftTripleFunction.py``, ``util/NonparametricShift.py`` (``Batch_NonShift``) and
``util/util.py`` (``cal_feat_mask``, ``cal_flag_given_mask_thred``).

Semantics (shift size 1 x 1, stride 1, the only setting of ``InnerShiftTriple``).  The layer
input is the concatenation ``[decoder, encoder]`` (the U-Net block's ``cat([up(x), x])`` after
the up-path ReLU, 256 + 256 channels at 32 x 32 in ``unet_shift_triple``).  With ``P_hole`` the
hole positions of the feature mask and ``P_known`` the others, for every ``p`` in ``P_hole``::

    q*(p) = argmax_{q in P_known} <dec[:, p], enc[:, q]> / sqrt(|dec[:, p]|^2 |enc[:, q]|^2)
    shifted[:, p] = enc[:, q*(p)];   shifted[:, p] = 0 for p in P_known

i.e. the **decoder** feature of the hole queries the **known positions of the encoder** feature
and the encoder vector is copied.  The output is ``cat([decoder, encoder, shifted])`` in that
order (256 -> 768 channels).  Ties go to the first known position in raster order (what
``torch.max`` over the official filtered list returns).

Backward (official ``InnerShiftTripleFunction.backward``): the decoder and encoder parts pass
their gradients through; the gradient of the shifted map at each hole ``p`` is added, times
``triple_weight`` (official default 1), to the encoder gradient at its source ``q*(p)``.  The
argmax itself is not differentiated.  With ``triple_weight = 1`` this is exactly the autograd
gradient of the copy; a custom ``autograd.Function`` implements it for any ``triple_weight``.

Feature-level mask (``cal_feat_mask(mask, layer_to_last=3)`` then
``cal_flag_given_mask_thred(..., shift_sz=1, stride=1, mask_thred=1)``): the image mask
(1 = hole) is resized to ``H/2^L x W/2^L`` with ``F.interpolate(mode="nearest")`` and a position
is a hole when its value is ``>= mask_thred``.  This is the current official code (since commit
4db4eea, Jan 2019).  Earlier versions (until bcbef32, Dec 2018) instead ran ``L`` bias-free 4x4
stride-2 padding-1 convolutions with all weights 1/16 and thresholded the result ``> 5/16``
(``opt.threshold``); ``method="conv"`` reproduces that variant.

Deliberate deviations from the official code:

- Stateless: the mask is an argument of ``forward`` (official: ``set_mask`` stores it on the
  module), and every sample of the batch has its own mask and its own number of holes (official:
  the same number of holes per sample, or the batch reshape fails).
- Zero vectors: the official cosine divides by ``sqrt(|dec|^2 |enc|^2)`` without a guard, so a
  zero vector (common after the ReLU) produces NaN similarities and ``torch.max`` then selects
  the NaN entry (a zero encoder vector wins every hole).  Here a similarity with a zero norm is
  0.  For non-zero vectors the formula and the selection are the official ones.
- A sample with holes but no known position gets an all-zero shifted map (the official code
  raises an error on the empty maximum).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["feature_hole_mask", "shift_sources", "shift", "ShiftConnection"]

Tensor = torch.Tensor


def feature_hole_mask(
    mask: Tensor,
    layer_to_last: int = 3,
    *,
    method: str = "nearest",
    threshold: float = 5.0 / 16.0,
) -> Tensor:
    """Image hole mask (N x 1 x H x W, 1 = hole) -> feature mask N x 1 x H/2^L x W/2^L.

    ``method="nearest"``: official ``cal_feat_mask`` (nearest resize to ``H // 2^L``).
    ``method="conv"``: the pre-2019 variant, ``L`` times a 4x4 / stride 2 / padding 1
    convolution with weights 1/16, then ``> threshold`` (official ``opt.threshold`` = 5/16).
    """
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must be N x 1 x H x W (1 = hole), got {tuple(mask.shape)}")
    if layer_to_last < 0:
        raise ValueError(f"layer_to_last must be >= 0, got {layer_to_last}")
    m = mask if mask.is_floating_point() else mask.float()
    if method == "nearest":
        factor = 2**layer_to_last
        size = (m.shape[2] // factor, m.shape[3] // factor)
        if min(size) < 1:
            raise ValueError(f"mask {tuple(mask.shape)} is too small for 2^{layer_to_last}")
        return F.interpolate(m, size=size, mode="nearest")
    if method == "conv":
        kernel = m.new_full((1, 1, 4, 4), 1.0 / 16.0)
        for _ in range(layer_to_last):
            m = F.conv2d(m, kernel, stride=2, padding=1)
        return (m > threshold).to(m.dtype)
    raise ValueError(f"method must be 'nearest' or 'conv', got {method!r}")


def shift_sources(
    decoder_feat: Tensor, encoder_feat: Tensor, hole: Tensor
) -> tuple[Tensor, Tensor]:
    """Source index (raster, ``h*w``) for every position, and which positions are shifted.

    Args:
        decoder_feat, encoder_feat: N x C x h x w.
        hole: N x h*w bool, True = hole position.
    Returns:
        ``src`` N x h*w long (meaningful where ``use``), ``use`` N x h*w bool (hole positions of
        samples that have at least one known position).
    """
    n, c = decoder_feat.shape[:2]
    with torch.no_grad():
        dec = decoder_feat.reshape(n, c, -1)  # N x C x P
        enc = encoder_feat.reshape(n, c, -1)  # N x C x P
        num = torch.einsum("ncp,ncq->npq", dec, enc)  # N x P(query) x P(source)
        norm_dec = (dec * dec).sum(1)  # N x P
        norm_enc = (enc * enc).sum(1)  # N x P
        den = torch.sqrt(norm_dec[:, :, None] * norm_enc[:, None, :])  # N x P x P
        cos = torch.where(den > 0, num / den.clamp_min(torch.finfo(den.dtype).tiny), 0.0)
        cos = cos.masked_fill(hole[:, None, :], float("-inf"))  # sources must be known
        src = cos.argmax(dim=2)  # first maximum = first known position in raster order
        use = hole & (~hole).any(dim=1, keepdim=True)
    return src, use


class _CopyFromSources(torch.autograd.Function):
    """``out[n, :, p] = enc[n, :, src[n, p]]`` where ``use[n, p]``, else 0; the backward adds
    ``triple_weight * grad_out[n, :, p]`` to ``enc[n, :, src[n, p]]`` (official backward)."""

    @staticmethod
    def forward(ctx, enc: Tensor, src: Tensor, use: Tensor, triple_weight: float) -> Tensor:
        index = src[:, None, :].expand(-1, enc.shape[1], -1)  # N x C x P
        keep = use[:, None, :].to(enc.dtype)  # N x 1 x P
        ctx.save_for_backward(index, keep)
        ctx.triple_weight = triple_weight
        return enc.gather(2, index) * keep

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor):
        index, keep = ctx.saved_tensors
        grad_enc = torch.zeros_like(grad_out).scatter_add_(2, index, grad_out * keep)
        return grad_enc * ctx.triple_weight, None, None, None


def _check_features(decoder_feat: Tensor, encoder_feat: Tensor, hole_mask: Tensor) -> None:
    if decoder_feat.dim() != 4 or decoder_feat.shape != encoder_feat.shape:
        raise ValueError(
            f"decoder and encoder features must both be N x C x h x w, got "
            f"{tuple(decoder_feat.shape)} and {tuple(encoder_feat.shape)}"
        )
    n, _, h, w = decoder_feat.shape
    if hole_mask.dim() != 4 or hole_mask.shape[1] != 1 or hole_mask.shape[2:] != (h, w):
        raise ValueError(
            f"feature hole mask must be N x 1 x {h} x {w}, got {tuple(hole_mask.shape)}"
        )
    if hole_mask.shape[0] not in (1, n):
        raise ValueError(f"feature hole mask batch {hole_mask.shape[0]} does not match {n}")


def shift(
    decoder_feat: Tensor,
    encoder_feat: Tensor,
    hole_mask: Tensor,
    *,
    mask_thred: float = 1.0,
    triple_weight: float = 1.0,
) -> Tensor:
    """The shifted map (N x C x h x w): hole positions filled with the known encoder vector of
    maximal cosine similarity to the decoder vector, zeros elsewhere.

    Args:
        decoder_feat, encoder_feat: N x C x h x w (official: the two halves of the input).
        hole_mask: feature-level mask N x 1 x h x w (or 1 x 1 x h x w); a position is a hole
            when its value is ``>= mask_thred`` (official ``mask_thred = 1``).
        triple_weight: scale of the gradient sent back to the copied encoder vectors.
    """
    _check_features(decoder_feat, encoder_feat, hole_mask)
    n, c, h, w = decoder_feat.shape
    hole = (hole_mask >= mask_thred).reshape(hole_mask.shape[0], h * w).expand(n, -1)  # N x P
    src, use = shift_sources(decoder_feat, encoder_feat, hole)
    enc = encoder_feat.reshape(n, c, h * w)  # N x C x P
    shifted = _CopyFromSources.apply(enc, src, use, float(triple_weight))
    return shifted.reshape(n, c, h, w)


class ShiftConnection(nn.Module):
    """Official ``InnerShiftTriple``: ``[decoder, encoder] -> [decoder, encoder, shifted]``.

    Args:
        layer_to_last: the features are ``2^layer_to_last`` times smaller than the image
            (official: 3, the 32 x 32 layer of a 256 x 256 U-Net).
        mask_thred: feature-mask threshold for a hole position (official: 1).
        triple_weight: gradient weight of the shifted copy (official: 1).
        mask_method: ``"nearest"`` (current official) or ``"conv"`` (pre-2019 official).
        conv_threshold: threshold of ``mask_method="conv"`` (official ``opt.threshold`` 5/16).
    ``forward(x, mask)``: ``x`` N x 2C x h x w, ``mask`` the image mask N x 1 x H x W
    (1 = hole) with ``H = h * 2^layer_to_last``; returns N x 3C x h x w.  No parameters.
    """

    def __init__(
        self,
        *,
        layer_to_last: int = 3,
        mask_thred: float = 1.0,
        triple_weight: float = 1.0,
        mask_method: str = "nearest",
        conv_threshold: float = 5.0 / 16.0,
    ) -> None:
        super().__init__()
        if mask_method not in ("nearest", "conv"):
            raise ValueError(f"mask_method must be 'nearest' or 'conv', got {mask_method!r}")
        self.layer_to_last = layer_to_last
        self.mask_thred = mask_thred
        self.triple_weight = triple_weight
        self.mask_method = mask_method
        self.conv_threshold = conv_threshold

    def extra_repr(self) -> str:
        return (
            f"layer_to_last={self.layer_to_last}, mask_thred={self.mask_thred}, "
            f"triple_weight={self.triple_weight}, mask_method={self.mask_method!r}"
        )

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] % 2:
            raise ValueError(f"input must be N x 2C x h x w ([decoder, encoder]), got {x.shape}")
        feat_mask = feature_hole_mask(
            mask, self.layer_to_last, method=self.mask_method, threshold=self.conv_threshold
        )
        if feat_mask.shape[2:] != x.shape[2:]:
            raise ValueError(
                f"mask {tuple(mask.shape)} reduced by 2^{self.layer_to_last} gives "
                f"{tuple(feat_mask.shape[2:])}, but the features are {tuple(x.shape[2:])}"
            )
        decoder, encoder = x.chunk(2, dim=1)  # N x C x h x w each
        shifted = shift(
            decoder,
            encoder,
            feat_mask.to(x.dtype),
            mask_thred=self.mask_thred,
            triple_weight=self.triple_weight,
        )
        return torch.cat([decoder, encoder, shifted], dim=1)  # N x 3C x h x w
