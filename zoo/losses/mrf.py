"""MSNPS neural-patch (MRF) texture loss, with its content and TV companions.

Paper: Yang, Lu, Lin, Shechtman, Wang, Li, "High-Resolution Image Inpainting using Multi-Scale
Neural Patch Synthesis", CVPR 2017 (arXiv 1611.09969), Sec. 3, the texture term
``E_t = sum_{i in R} || h(phi(x), i) - h(phi(x), NN(i)) ||^2``: every 3 x 3 feature patch ``i``
of the synthesised image centred in the hole ``R`` is pulled towards its nearest neighbour
``NN(i)``, by normalised cross-correlation, among the patches of the known region.  The
patch-matching energy is CNNMRF's (Li & Wand, CVPR 2016, eq. 2); MSNPS used it at relu3_1 and
relu4_1 (paper) and at relu4_1 only in the released "faster" code
(leehomyc/Faster-High-Res-Neural-Inpainting ``mylib/mrf.lua`` ``MRFMM``, via
``transfer_CNNMRF_wrapper.lua``: 3 x 3 patches, weight 1e-4, content relu4_2 x 20, TV 1e-4).

:func:`mrf_loss` works on feature maps and a feature-resolution mask (1 = hole):

- query patches: ``patch_size`` x ``patch_size`` windows of ``features`` at ``stride`` whose
  centre (``query="center"``), any pixel (``"any"``) or every pixel (``"all"``) is in the hole;
- source patches: windows of ``source`` (default: ``features`` detached) at ``source_stride``
  lying entirely in the known region (``source_mask``, default ``mask``);
- ``NN(i) = argmax_j <q_i, s_j> / (|q_i| |s_j|)`` (computed without gradient, in chunks of
  ``chunk_size`` queries: memory ``chunk_size x #sources``); the source patches are constants;
- loss ``sum_i ||q_i - s_NN(i)||^2`` summed over the batch (``reduction="sum"``, the paper's
  energy) or divided by the number of query elements (``"mean"``).

Deviations from the released Lua code, which hand-writes the gradient instead of a loss: it
adds ``(s_NN(i) - q_i)`` over overlapping patches and divides each pixel by its overlap count
(not the gradient of any scalar), patches are sampled on the whole image with stride 2 and
matched against 3 x 3 rotated / scaled copies of the source, and the indices are kept from the
first iteration of each scale.  Here the loss is the paper's energy and autograd takes its
exact gradient (``2 (q_i - s_NN(i))`` per patch); source norms are floored at 1e-12 (the Lua
code divides by the raw norm).

:func:`content_loss` is the MSE of ``nn.ContentLoss`` (``mylib/content.lua``,
``nn.MSECriterion``); :func:`msnps_tv_loss` is the energy whose gradient ``mylib/tv.lua``
writes by hand (squared differences on the top-left ``(H - 1) x (W - 1)`` grid, halved).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

__all__ = ["mrf_loss", "nearest_patch_indices", "content_loss", "msnps_tv_loss"]

Tensor = torch.Tensor
QueryRule = Literal["center", "any", "all"]


def nearest_patch_indices(
    queries: Tensor, sources: Tensor, *, chunk_size: int = 1024, norm_eps: float = 1e-12
) -> Tensor:
    """``argmax_j <q_i, s_j> / |s_j|`` for every row ``q_i`` (Q x D) against ``sources`` (S x D).

    The query norm is constant per row, so this is the normalised cross-correlation argmax.
    Computed in chunks of ``chunk_size`` queries, without gradient.
    """
    if queries.dim() != 2 or sources.dim() != 2 or queries.shape[1] != sources.shape[1]:
        raise ValueError(
            f"need Q x D queries and S x D sources, got {tuple(queries.shape)} and "
            f"{tuple(sources.shape)}"
        )
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    with torch.no_grad():
        unit = sources / sources.norm(dim=1, keepdim=True).clamp_min(norm_eps)
        parts = [
            (queries[i : i + chunk_size] @ unit.T).argmax(dim=1)  # chunk x S -> chunk
            for i in range(0, queries.shape[0], chunk_size)
        ]
    if not parts:
        return torch.zeros(0, dtype=torch.long, device=queries.device)
    return torch.cat(parts)


def _patches(x: Tensor, size: int, stride: int) -> Tensor:
    """1 x C x H x W -> L x (C size size) rows, windows in row-major order."""
    return F.unfold(x, kernel_size=size, stride=stride)[0].T


def mrf_loss(
    features: Tensor,
    mask: Tensor,
    *,
    source: Tensor | None = None,
    source_mask: Tensor | None = None,
    patch_size: int = 3,
    stride: int = 1,
    source_stride: int = 1,
    query: QueryRule = "center",
    reduction: Literal["sum", "mean"] = "sum",
    chunk_size: int = 1024,
) -> Tensor:
    """MSNPS texture energy of ``features`` (N x C x H x W) with hole ``mask`` (N x 1 x H x W).

    See the module docstring for the patch sets and the matching.  ``source`` /
    ``source_mask`` default to ``features.detach()`` / ``mask``.
    """
    if features.dim() != 4:
        raise ValueError(f"features must be N x C x H x W, got {tuple(features.shape)}")
    if source is None:
        source = features
    if source_mask is None:
        source_mask = mask
    for name, m, f in (("mask", mask, features), ("source_mask", source_mask, source)):
        if (
            m.dim() != 4
            or m.shape[1] != 1
            or m.shape[0] != f.shape[0]
            or m.shape[2:] != f.shape[2:]
        ):
            raise ValueError(
                f"{name} must be N x 1 x H x W at the feature resolution {tuple(f.shape)}, "
                f"got {tuple(m.shape)}"
            )
    if source.shape[:2] != features.shape[:2]:
        raise ValueError(f"source {tuple(source.shape)} must match features in N and C")
    if query not in ("center", "any", "all"):
        raise ValueError(f"query must be 'center', 'any' or 'all', got {query!r}")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    k = patch_size
    if k < 1 or min(features.shape[-2:]) < k or min(source.shape[-2:]) < k:
        raise ValueError(f"patch_size {k} does not fit maps {tuple(features.shape[-2:])}")
    source = source.detach()
    total = features.new_zeros(())
    count = 0
    for n in range(features.shape[0]):
        q_all = _patches(features[n : n + 1], k, stride)  # L x D
        q_mask = _patches(mask[n : n + 1].to(features.dtype), k, stride)  # L x k*k
        if query == "center":
            chosen = q_mask[:, (k // 2) * k + k // 2] > 0.5
        elif query == "any":
            chosen = q_mask.amax(dim=1) > 0.5
        else:
            chosen = q_mask.amin(dim=1) > 0.5
        if not bool(chosen.any()):
            continue
        s_all = _patches(source[n : n + 1], k, source_stride)
        s_mask = _patches(source_mask[n : n + 1].to(source.dtype), k, source_stride)
        s = s_all[s_mask.amax(dim=1) < 0.5]  # windows with no hole pixel
        if s.shape[0] == 0:
            raise ValueError(f"sample {n}: no {k}x{k} source patch lies in the known region")
        q = q_all[chosen]
        nearest = nearest_patch_indices(q, s, chunk_size=chunk_size)
        total = total + (q - s[nearest]).pow(2).sum()
        count += q.numel()
    if reduction == "mean":
        return total / max(count, 1)
    return total


def content_loss(pred_features: Tensor, target_features: Tensor) -> Tensor:
    """Mean squared difference (MSNPS ``nn.ContentLoss``); the target is detached."""
    if pred_features.shape != target_features.shape:
        raise ValueError(
            f"shapes differ: {tuple(pred_features.shape)} vs {tuple(target_features.shape)}"
        )
    return F.mse_loss(pred_features, target_features.detach())


def msnps_tv_loss(image: Tensor) -> Tensor:
    """``1/2 sum [(x[i,j] - x[i,j+1])^2 + (x[i,j] - x[i+1,j])^2]`` over ``i < H-1, j < W-1``,
    all channels and samples: the energy of ``mylib/tv.lua``'s hand-written gradient."""
    if image.dim() != 4:
        raise ValueError(f"image must be N x C x H x W, got {tuple(image.shape)}")
    corner = image[..., :-1, :-1]  # N x C x (H-1) x (W-1)
    dx = corner - image[..., :-1, 1:]
    dy = corner - image[..., 1:, :-1]
    return 0.5 * (dx.pow(2).sum() + dy.pow(2).sum())
