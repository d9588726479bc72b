"""Pixel and feature reconstruction losses of the classic inpainting papers.

Masks follow the project contract: N x 1 x H x W, **1 = hole**.  Every function documents its
normalisation; ``d = pred - target``, ``m`` the hole mask, ``C`` the channel count.

Masked L1 / L2 (:func:`masked_l1`, :func:`masked_l2`): ``hole_weight * L(m) + valid_weight *
L(1 - m)`` with two normalisations:

- ``normalization="all"``: ``L(w) = sum(w |d|) / (N C H W)``, the mean over *all* elements of
  the masked difference.  naoto0804/pytorch-inpainting-with-partial-conv ``loss.py``
  (``nn.L1Loss()((1 - mask) * output, (1 - mask) * gt)``, mask 1 = valid there; PartialConv
  hole 6 / valid 1), otenim/GLCIC-PyTorch (MSE of ``output * mask``), Context Encoder (weighted
  L2 ``.mean()``; overlap band x10 = ``valid_weight=10`` on the 64 x 64 centre).
- ``normalization="region"``: ``L(w) = sum(w |d|) / (C sum(w))`` (pooled over the batch), the
  mean over the region's elements, written in the official code as
  ``mean(w |d|) / mean(w)``: DeepFill v1 ``ae_loss`` (JiahuiYu/generative_inpainting v1.0.0
  ``inpaint_model.py``) and GMCNN ``G_loss_ae`` (shepnerd/inpainting_gmcnn
  ``pytorch/model/net.py``) on the known region.  An empty region contributes 0.

EdgeConnect (knazeri/edge-connect ``src/models.py``) divides the L1 of the *whole* image by the
hole fraction, ``mean(|d|) / mean(m)``: :func:`l1_over_hole_fraction`.

Spatial discounting (DeepFill v1, Yu et al. CVPR 2018 Sec. 3.1): the paper weights a hole pixel
by ``gamma ** l``, ``l`` its distance to the nearest known pixel.  :func:`spatial_discount_weights`
computes that for any mask (exact Euclidean, chessboard or city-block distance transform; 0 on
known pixels, so weight 1 there).  The official ``spatial_discounting_mask`` (``inpaint_ops.py``,
also copied in Shift-Net_pytorch ``models/modules/losses.py``) only handles the local patch of a
box hole, H x W, with ``w[i, j] = max(gamma ** min(i, H - i), gamma ** min(j, W - j))`` =
``gamma ** min(i, H - i, j, W - j)``: distances to the patch edges measured from row / column 0
and H / W, i.e. the paper form for the known set {row 0, column 0, row H, column W}.  Compared
with the hole-box-in-known-surroundings distance ``min(i + 1, H - i, j + 1, W - j)`` it is one
smaller at the top and left (the first row and column get weight 1, the last ones ``gamma``).
:func:`box_discount_weights` reproduces the official table; tests prove both identities.
``gamma`` = 0.9 in ``inpaint.yml`` and Shift-Net, 0.99 in the paper (unverified).

Confidence-driven loss (GMCNN, Wang et al. NeurIPS 2018 Sec. 3.2; PyTorch
``ConfidenceDrivenMaskLayer``): confidence propagated into the hole by ``iters`` rounds of a
``size`` x ``size`` blur (reflection padding) of the known region, ``c <- blur(c) * m + (1 - m)``;
the hole L1 is weighted by it and divided by the hole fraction.  The blur kernel is the repo's
``gauss_kernel(size, sigma)`` (differences of the normal CDF on a grid of ``size + 1`` points
spanning ``+-(sigma + interval / 2)``, ``interval = (2 sigma + 1) / size``, outer product,
square root, normalised); with the official ``sigma = 1/40`` it is almost a box filter.

Total variation (:func:`total_variation`): ``mode="hole_boundary"`` is the PartialConv paper's
(Liu et al. ECCV 2018 eq. 6; no official code) L1 of horizontal and vertical neighbour
differences over pairs that both lie in ``P``, "the 1-pixel dilation of the hole region", divided
by the number of elements of ``I_comp`` (``N C H W``).  The paper does not say which
neighbourhood dilates; a 3 x 3 square (8-neighbourhood) is used here, and the normalisation is
read from the paper's notation (both unverified against the PDF).  ``mode="whole"`` is naoto's
``total_variation_loss``, ``mean |dx| + mean |dy|`` over the whole image.

Feature matching (EdgeConnect edge model, Wang et al. pix2pixHD): ``sum_i mean |D_i(fake) -
D_i(real)|`` over the discriminator's intermediate features, real features detached.

Guidance loss (Shift-Net, Yan et al. ECCV 2018 eq. 3; ``models/shift_net/InnerCos.py`` with
``InnerCosFunction.py``): squared distance between the decoder feature in the hole and the
encoder feature of the ground truth, ``strength * sum(m (dec - gt)^2) / numel`` (official
``nn.MSELoss`` normalisation).  Deviation: the official code evaluates
``MSELoss(dec * m, gt)``, which adds the constant ``mean((1 - m) gt^2)`` (``official_value=True``
adds it), and its hand-written backward adds ``-2 gt / numel`` to the decoder gradient at *known*
positions as well (the mask is left out of the chain rule); here the gradient is the true one,
non-zero in the hole only, as in the paper.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

__all__ = [
    "masked_l1",
    "masked_l2",
    "l1_over_hole_fraction",
    "distance_to_known",
    "spatial_discount_weights",
    "box_discount_weights",
    "spatially_discounted_l1",
    "gaussian_kernel",
    "confidence_weights",
    "confidence_driven_l1",
    "total_variation",
    "feature_matching_loss",
    "guidance_loss",
]

Tensor = torch.Tensor
Normalization = Literal["all", "region"]
Metric = Literal["euclidean", "chessboard", "cityblock"]


def _check_pair(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if pred.dim() != 4:
        raise ValueError(f"expected N x C x H x W tensors, got {tuple(pred.shape)}")


def _check_mask(mask: Tensor, like: Tensor) -> None:
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must be N x 1 x H x W (1 = hole), got {tuple(mask.shape)}")
    if mask.shape[0] not in (1, like.shape[0]) or mask.shape[2:] != like.shape[2:]:
        raise ValueError(f"mask {tuple(mask.shape)} does not match {tuple(like.shape)}")


def _region_term(err: Tensor, weight: Tensor, normalization: Normalization) -> Tensor:
    """``sum(weight * err)`` over all elements, divided per ``normalization``."""
    weighted = (weight * err).sum()
    if normalization == "all":
        return weighted / err.numel()
    if normalization == "region":
        # mean(w err) / mean(w) over a batch-broadcast w = sum(w err) / (C sum(w expanded))
        area = weight.expand(err.shape[0], 1, *err.shape[2:]).sum() * err.shape[1]
        return weighted / area.clamp_min(torch.finfo(err.dtype).tiny)
    raise ValueError(f"normalization must be 'all' or 'region', got {normalization!r}")


def _masked(
    err: Tensor,
    mask: Tensor,
    hole_weight: float,
    valid_weight: float,
    normalization: Normalization,
) -> Tensor:
    mask = mask.to(err.dtype)
    total = err.new_zeros(())
    if hole_weight != 0:
        total = total + hole_weight * _region_term(err, mask, normalization)
    if valid_weight != 0:
        total = total + valid_weight * _region_term(err, 1 - mask, normalization)
    return total


def masked_l1(
    pred: Tensor,
    target: Tensor,
    mask: Tensor,
    *,
    hole_weight: float = 1.0,
    valid_weight: float = 1.0,
    normalization: Normalization = "all",
) -> Tensor:
    """``hole_weight * L1(hole) + valid_weight * L1(valid)``; see the module docstring for the
    two normalisations (``"all"``: naoto / PartialConv; ``"region"``: DeepFill v1, GMCNN)."""
    _check_pair(pred, target)
    _check_mask(mask, pred)
    return _masked((pred - target).abs(), mask, hole_weight, valid_weight, normalization)


def masked_l2(
    pred: Tensor,
    target: Tensor,
    mask: Tensor,
    *,
    hole_weight: float = 1.0,
    valid_weight: float = 1.0,
    normalization: Normalization = "all",
) -> Tensor:
    """As :func:`masked_l1` with squared differences (GLCIC hole MSE, Context Encoder L2)."""
    _check_pair(pred, target)
    _check_mask(mask, pred)
    return _masked((pred - target).pow(2), mask, hole_weight, valid_weight, normalization)


def l1_over_hole_fraction(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """EdgeConnect's inpainting L1: ``mean(|pred - target|) / mean(mask)`` (whole image)."""
    _check_pair(pred, target)
    _check_mask(mask, pred)
    return (pred - target).abs().mean() / mask.to(pred.dtype).mean()


# ---------------------------------------------------------------- spatial discounting
def distance_to_known(mask: Tensor, *, metric: Metric = "euclidean") -> Tensor:
    """Distance of every pixel to the nearest known pixel (0 on known pixels).

    Exact separable transform: ``g`` = distance to the nearest known pixel in the same column,
    then ``D[i, j] = min_l phi(g[i, l], |j - l|)`` with ``phi`` = ``sqrt(a^2 + b^2)``,
    ``max(a, b)`` or ``a + b``.  Only pixels inside the image count as known (as
    ``scipy.ndimage.distance_transform_edt``).  Costs ``O(H W (H + W))`` per image.
    """
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must be N x 1 x H x W (1 = hole), got {tuple(mask.shape)}")
    if metric not in ("euclidean", "chessboard", "cityblock"):
        raise ValueError(f"metric must be euclidean, chessboard or cityblock, got {metric!r}")
    dtype = mask.dtype if mask.is_floating_point() else torch.float32
    h, w = mask.shape[-2:]
    inf = torch.tensor(math.inf, dtype=dtype, device=mask.device)
    rows = torch.arange(h, dtype=dtype, device=mask.device)
    cols = torch.arange(w, dtype=dtype, device=mask.device)
    row_gap = (rows[:, None] - rows[None, :]).abs()  # H x H, |i - k|
    col_gap = (cols[:, None] - cols[None, :]).abs()  # W x W, |j - l|
    out = []
    for known in mask[:, 0] == 0:  # per image, H x W
        if not bool(known.any()):
            raise ValueError("a mask has no known pixel: the distance to known pixels is undefined")
        # column pass: g[i, j] = min_k |i - k| over known k in column j; (H, H, W) -> (H, W)
        g = torch.where(known[None, :, :], row_gap[:, :, None], inf).amin(dim=1)
        # row pass: (H, W_j, W_l) -> (H, W)
        a, b = g[:, None, :], col_gap[None, :, :]
        if metric == "euclidean":
            d = (a.pow(2) + b.pow(2)).amin(dim=2).sqrt()
        elif metric == "chessboard":
            d = torch.maximum(a, b).amin(dim=2)
        else:
            d = (a + b).amin(dim=2)
        out.append(d)
    return torch.stack(out)[:, None]


def spatial_discount_weights(
    mask: Tensor, gamma: float = 0.9, *, metric: Metric = "euclidean"
) -> Tensor:
    """``gamma ** distance_to_known(mask)``: the paper's weight in the hole, 1 on known pixels.

    For a hole-only loss multiply by the mask: ``mask * spatial_discount_weights(mask, g)``.
    ``gamma`` 0.9 is the official code's (``SPATIAL_DISCOUNTING_GAMMA``), 0.99 the paper's.
    """
    if not 0 < gamma <= 1:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    return torch.pow(gamma, distance_to_known(mask, metric=metric))


def box_discount_weights(
    height: int,
    width: int,
    gamma: float = 0.9,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """The official ``spatial_discounting_mask`` for a ``height`` x ``width`` hole patch:
    ``gamma ** min(i, H - i, j, W - j)``, shape 1 x 1 x H x W (see the module docstring)."""
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be positive, got {height} x {width}")
    i = torch.arange(height, dtype=dtype, device=device)[:, None]
    j = torch.arange(width, dtype=dtype, device=device)[None, :]
    exponent = torch.minimum(torch.minimum(i, height - i), torch.minimum(j, width - j))
    return torch.pow(gamma, exponent)[None, None]


def spatially_discounted_l1(pred: Tensor, target: Tensor, weights: Tensor) -> Tensor:
    """``mean(|pred - target| * weights)`` over all N C H W elements (DeepFill v1 ``l1_loss``,
    Shift-Net ``Discounted_L1``); ``weights`` broadcast (1 or N) x 1 x H x W."""
    _check_pair(pred, target)
    _check_mask(weights, pred)
    return ((pred - target).abs() * weights.to(pred.dtype)).mean()


# ---------------------------------------------------------------- confidence (GMCNN)
def gaussian_kernel(size: int, sigma: float, *, dtype: torch.dtype = torch.float64) -> Tensor:
    """GMCNN's ``gauss_kernel(size, sigma)`` as a ``size`` x ``size`` tensor (sums to 1)."""
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    interval = (2 * sigma + 1.0) / size
    x = torch.linspace(-sigma - interval / 2, sigma + interval / 2, size + 1, dtype=torch.float64)
    ker1d = torch.diff(torch.special.ndtr(x))  # normal CDF differences, size
    kernel = torch.sqrt(torch.outer(ker1d, ker1d))
    return (kernel / kernel.sum()).to(dtype)


def confidence_weights(
    mask: Tensor, size: int = 65, sigma: float = 1.0 / 40, iters: int = 7
) -> Tensor:
    """GMCNN ``ConfidenceDrivenMaskLayer``: confidence in the hole, 0 on known pixels.

    ``c = 1 - m``; ``iters`` times: ``conf = blur(c) * m``, ``c = conf + (1 - m)``; returns
    ``conf``.  ``blur`` = reflection padding ``size // 2`` + the :func:`gaussian_kernel`
    (official: 65, 1/40, 7; reflection needs H, W > ``size // 2``).
    """
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must be N x 1 x H x W (1 = hole), got {tuple(mask.shape)}")
    if size % 2 != 1:
        raise ValueError(f"size must be odd for a same-size blur, got {size}")
    if iters < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    pad = size // 2
    if min(mask.shape[-2:]) <= pad:
        raise ValueError(
            f"reflection padding {pad} needs H and W > {pad}, got {tuple(mask.shape[-2:])}"
        )
    m = mask.to(torch.get_default_dtype() if not mask.is_floating_point() else mask.dtype)
    kernel = gaussian_kernel(size, sigma, dtype=m.dtype).to(m.device)[None, None]
    init = 1 - m
    conf = m
    for _ in range(iters):
        conf = F.conv2d(F.pad(init, (pad, pad, pad, pad), mode="reflect"), kernel) * m
        init = conf + (1 - m)
    return conf


def confidence_driven_l1(
    pred: Tensor,
    target: Tensor,
    mask: Tensor,
    *,
    confidence: Tensor | None = None,
    size: int = 65,
    sigma: float = 1.0 / 40,
    iters: int = 7,
) -> Tensor:
    """GMCNN ``G_loss_reconstruction``: ``mean(|pred - target| * conf) / mean(mask)``.

    ``confidence`` defaults to :func:`confidence_weights` of ``mask`` (pass it to reuse it);
    the official code feeds the composite, which equals ``pred`` where ``conf > 0``.
    """
    _check_pair(pred, target)
    _check_mask(mask, pred)
    if confidence is None:
        confidence = confidence_weights(mask, size=size, sigma=sigma, iters=iters)
    _check_mask(confidence, pred)
    err = (pred - target).abs() * confidence.to(pred.dtype)
    return err.mean() / mask.to(pred.dtype).mean()


# ---------------------------------------------------------------- total variation
def total_variation(
    image: Tensor,
    mask: Tensor | None = None,
    *,
    mode: Literal["hole_boundary", "whole"] = "hole_boundary",
) -> Tensor:
    """Anisotropic L1 total variation (see the module docstring for the two modes).

    ``"hole_boundary"`` (PartialConv paper, needs ``mask``): neighbour pairs inside the hole
    dilated by one pixel, summed and divided by ``image.numel()``.  ``"whole"`` (naoto):
    ``mean |x[..., 1:] - x[..., :-1]|`` over columns plus the same over rows.
    """
    if image.dim() != 4:
        raise ValueError(f"image must be N x C x H x W, got {tuple(image.shape)}")
    dx = (image[..., :, 1:] - image[..., :, :-1]).abs()  # N x C x H x (W-1)
    dy = (image[..., 1:, :] - image[..., :-1, :]).abs()  # N x C x (H-1) x W
    if mode == "whole":
        return dx.mean() + dy.mean()
    if mode != "hole_boundary":
        raise ValueError(f"mode must be 'hole_boundary' or 'whole', got {mode!r}")
    if mask is None:
        raise ValueError("mode='hole_boundary' needs the hole mask")
    _check_mask(mask, image)
    region = F.max_pool2d(mask.to(image.dtype), kernel_size=3, stride=1, padding=1)
    pair_x = region[..., :, 1:] * region[..., :, :-1]
    pair_y = region[..., 1:, :] * region[..., :-1, :]
    return ((dx * pair_x).sum() + (dy * pair_y).sum()) / image.numel()


# ---------------------------------------------------------------- feature losses
def feature_matching_loss(
    real_features: Sequence[Tensor], fake_features: Sequence[Tensor]
) -> Tensor:
    """EdgeConnect: ``sum_i mean |fake_i - real_i.detach()|`` over discriminator features."""
    if len(real_features) != len(fake_features) or len(real_features) == 0:
        raise ValueError(
            f"need the same non-zero number of real and fake features, got "
            f"{len(real_features)} and {len(fake_features)}"
        )
    total = None
    for i, (real, fake) in enumerate(zip(real_features, fake_features)):
        if real.shape != fake.shape:
            raise ValueError(f"feature {i}: {tuple(real.shape)} vs {tuple(fake.shape)}")
        term = (fake - real.detach()).abs().mean()
        total = term if total is None else total + term
    return total


def guidance_loss(
    decoder_feature: Tensor,
    target_feature: Tensor,
    feature_mask: Tensor,
    *,
    strength: float = 1.0,
    official_value: bool = False,
) -> Tensor:
    """Shift-Net guidance: ``strength * sum(m (dec - gt)^2) / numel`` (module docstring).

    Args:
        decoder_feature: N x C x h x w decoder feature at the shift layer.
        target_feature: the encoder feature of the ground-truth image at the same layer
            (detached here).
        feature_mask: N x 1 x h x w hole mask at that resolution (official: the image mask
            nearest-downsampled by 2**3).
        strength: weight (official ``--strength`` 1).
        official_value: add the constant ``mean((1 - m) gt^2)`` so the value equals the
            official ``MSELoss(dec * m, gt)`` (gradient unchanged).
    """
    _check_pair(decoder_feature, target_feature)
    _check_mask(feature_mask, decoder_feature)
    m = feature_mask.to(decoder_feature.dtype)
    target = target_feature.detach()
    loss = (m * (decoder_feature - target)).pow(2).mean()
    if official_value:
        loss = loss + ((1 - m) * target).pow(2).mean()
    return strength * loss
