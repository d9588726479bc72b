"""Contextual attention (DeepFill v1/v2), batched and optionally chunked.

Paper: Yu, Lin, Yang, Shen, Lu, Huang, "Generative Image Inpainting with Contextual Attention",
CVPR 2018 (arXiv 1801.07892), Sec. 4.1: cosine similarity of foreground patch f and background
patch b, ``s = <f / |f|, b / |b|>``, a scaled softmax ``s* = softmax(lambda * s)`` over
background positions, optional score fusion ("propagation") with an identity kernel, and
reconstruction by a transposed convolution with the raw background patches.

Official code followed line by line: JiahuiYu/generative_inpainting (master = v2.0.0)
``inpaint_ops.py`` ``contextual_attention``, as DeepFill v2 calls it
(``contextual_attention(x, x, mask_s, 3, 1, rate=2)``, i.e. fuse on):

1. raw background patches of size ``2 * rate`` with stride ``rate * stride`` are taken from the
   full-resolution background (TF ``'SAME'`` padding) and used only for pasting;
2. foreground, background and mask are resized by ``1 / rate`` with neuralgym ``resize``
   (``tf.image.resize_nearest_neighbor``, ``align_corners=True``: :func:`resize_nearest_tf`);
3. ``ksize x ksize`` background patches (stride ``stride``, ``'SAME'``) of the resized
   background are L2-normalised with a norm floor of 1e-4 and correlated with the resized
   foreground (stride 1, ``'SAME'``): scores S[p, l] of foreground position p and background
   patch l;
4. fuse (``fuse=True``): the score matrix laid out as (foreground flat, background flat) in
   row-major order is convolved with a ``fuse_k x fuse_k`` identity kernel (``'SAME'``), then
   the same in column-major order (the official reshape/transpose/reshape) -- both flat indices
   move together, wrapping across rows/columns exactly as the official reshapes do;
5. a background patch is unusable when its ``ksize x ksize`` window of the resized mask holds
   any hole pixel (official: mean == 0 test; identical for {0, 1} masks); unusable scores are
   multiplied by 0 **before** the softmax (they keep weight ``exp(0)``, as in TF) and the
   attention is multiplied by 0 **after** it; softmax over background positions of
   ``softmax_scale * S``;
6. paste: transposed convolution of the attention map with the raw patches, stride ``rate``,
   cropped as TF's ``conv2d_transpose(padding='SAME')`` does, divided by 4 (official constant).

Implementation: all batch elements at once with ``bmm`` (no per-sample loop), scores laid out
as (foreground position, background position) with the background axis contiguous; the
transposed convolution is written as ``bmm`` + ``F.fold``.  Patch norms are ``k x k`` box sums
of the per-pixel squared channel norm (the same sum in another order); when ``f is b`` (as in
DeepFill) the foreground windows are the unnormalised background patches.  With
``chunk_size=None`` (default) the whole N x F x L score matrix is built by one ``bmm`` and each
fusion pass is a sum of diagonal shifts of it (slices: both flat indices move together, which
is the official flat-index wrap-around), the column-major pass between two transposing copies;
without autograd the masking, softmax flushing and scaling run in place.  With a
``chunk_size``, each fusion pass is a shift of the background flat index (a slice) plus a
gather of foreground rows at their row-major / column-major neighbours, so the foreground
positions are processed in chunks with memory ``O(chunk * L)`` instead of ``O(F * L)``: a
chunk computes the raw scores of just the positions its two passes read (the chunk, about one
grid row on each side, and the few positions the official flat-index wrap-around reaches).
Both do the same arithmetic per position (up to the summation order of the fusion).

Deliberate deviations from the official code:

- **per-sample masks**: TF uses the mask of batch element 0 for the whole batch (``m = m[0]``;
  DeepFill v2 training uses one mask per batch); here each element uses its own mask (a
  1 x 1 x H x W mask is broadcast, which reproduces TF exactly);
- offsets (optional) are ``(dy, dx)`` in the matching grid, the argmax position split with the
  background grid width (TF splits with the foreground width: the same whenever foreground and
  background have the same size, as in DeepFill); the colour-wheel flow image is not produced;
- attention weights below the smallest normal float (``torch.finfo(dtype).tiny``; fused
  scores reach 90 before the softmax, so many weights underflow) are set to 0.  TensorFlow
  runs its CPU kernels with flush-to-zero (``port::ScopedFlushDenormal`` in its thread pools),
  so the official code did not keep subnormal weights either; on x86 this also avoids
  subnormal arithmetic, which made the paste ``bmm`` about 4x slower here;
- spatial sizes must be divisible by ``rate`` (TF fails on other sizes), and ``fuse`` needs
  ``stride == 1`` (TF's fuse reshape fails otherwise).

Compared with nipponjo/deepfillv2-pytorch ``model/networks_tf.py`` ``ContextualAttention``:
that port calls it with ``fuse=False`` from its ``Generator`` and resizes the full-resolution
mask by 8 in one step (TF resizes to 1/4 in ``resize_mask_like``, then by 1/rate here, which
selects different rows); it also uses batch element 0's mask and a Python loop over the batch.

Options reproducing daa233/generative-inpainting-pytorch ``model/networks.py``
``ContextualAttention`` (the DeepFill v1 port; defaults = the official TF layer):

- ``resize="torch_floor"``: foreground, background and mask are downsampled with
  ``F.interpolate(mode="nearest", scale_factor=1 / factor)`` (source row ``floor(factor *
  y)``: rows 0, r, 2r, ...) instead of neuralgym's align-corners rounding (``"tf"``);
- ``norm="additive"``: the patch norm is ``sqrt(sum(w^2 + norm_eps))`` (the epsilon added to
  every squared element; daa233's is ``torch.FloatTensor([1e-4])``, i.e. float32's nearest
  value to 1e-4) instead of ``max(|w|, norm_eps)`` (``"max_floor"``);
- ``mask_scale=4``: the mask is the full-resolution image mask of DeepFill's 1/4 feature maps
  and is resized to the matching grid in one step (by ``1 / (4 rate)``), where TF first
  resizes it to the feature size (``resize_mask_like``, done by the caller) and then by
  ``1 / rate`` here (``mask_scale=1``).

Everything else (TF ``'SAME'`` patch extraction, fusion, masking, softmax) is shared.  daa233
pastes with ``conv_transpose2d(padding=1)``, the TF ``'SAME'`` crop for rate 2 and 3 (DeepFill
uses 2); its shifted paste at other rates is not reproduced.  daa233 also reads batch element
0's mask (per-sample masks here, as above) and keeps subnormal attention weights (flushed here,
as above: each changes an output by less than the smallest normal float times a feature).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.layers.padding import same_pad, same_pad_amounts

__all__ = [
    "ContextualAttention",
    "resize_nearest_tf",
    "resize_nearest_floor",
    "tf_nearest_indices",
    "fuse_neighbours",
]

Tensor = torch.Tensor
RESIZES = ("tf", "torch_floor")
NORMS = ("max_floor", "additive")


class FuseMaps(NamedTuple):
    """Neighbour tables of :func:`fuse_neighbours`."""

    shifts: tuple[int, ...]
    row: Tensor  # D x F row-major neighbours
    row_ok: Tensor  # D x F
    col: Tensor  # D x F column-major neighbours (as row-major indices)
    col_ok: Tensor  # D x F


def tf_nearest_indices(in_size: int, out_size: int, align_corners: bool = True) -> np.ndarray:
    """Source rows of TF 1.x ``resize_nearest_neighbor`` (legacy, ``half_pixel_centers=False``).

    TF computes in float32: ``scale = (in - 1) / (out - 1)`` with ``align_corners`` (else
    ``in / out``), ``src = roundf(y * scale)`` (else ``floorf``), clipped to ``in - 1``;
    ``roundf`` rounds halves away from zero.
    """
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be >= 1, got in={in_size}, out={out_size}")
    if align_corners and out_size > 1:
        scale = np.float32(in_size - 1) / np.float32(out_size - 1)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    pos = np.arange(out_size, dtype=np.float32) * np.float32(scale)  # float32 product, as TF
    pos64 = pos.astype(np.float64)  # exact; +0.5 below is exact too
    src = np.floor(pos64 + 0.5) if align_corners else np.floor(pos64)
    return np.minimum(src.astype(np.int64), in_size - 1)


def resize_nearest_tf(x: Tensor, size: tuple[int, int], align_corners: bool = True) -> Tensor:
    """Nearest-neighbour resize of N x C x H x W ``x`` to ``size`` with TF 1.x semantics.

    neuralgym ``resize`` (used by DeepFill for every nearest resize) passes
    ``align_corners=True``.  This differs from ``F.interpolate(mode="nearest")`` when
    downsampling: 64 -> 32 picks rows 0, 2, ..., 30, 33, 35, ..., 63 instead of 0, 2, ..., 62.
    """
    if x.dim() != 4:
        raise ValueError(f"expected N x C x H x W, got shape {tuple(x.shape)}")
    out_h, out_w = int(size[0]), int(size[1])
    rows = torch.from_numpy(tf_nearest_indices(x.shape[-2], out_h, align_corners)).to(x.device)
    cols = torch.from_numpy(tf_nearest_indices(x.shape[-1], out_w, align_corners)).to(x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def resize_nearest_floor(x: Tensor, factor: int) -> Tensor:
    """Downsample N x C x H x W ``x`` by an integer ``factor`` as daa233's port does:
    ``F.interpolate(mode="nearest", scale_factor=1 / factor)``, i.e. rows and columns 0,
    factor, 2 factor, ... (source index ``floor(factor * y)``)."""
    if x.dim() != 4:
        raise ValueError(f"expected N x C x H x W, got shape {tuple(x.shape)}")
    return F.interpolate(x, scale_factor=1.0 / factor, mode="nearest")


def fuse_neighbours(h: int, w: int, fuse_k: int, device: torch.device | None = None) -> FuseMaps:
    """Flat-index neighbours used by the two fusion passes on an ``h x w`` foreground grid.

    For each shift ``d`` in ``-(k-1)//2 .. k//2`` (TF ``'SAME'`` with a ``k x k`` identity
    kernel): ``row[i, p]`` is the row-major neighbour ``p + d`` and ``col[i, p]`` the
    column-major neighbour (index ``x * h + y + d`` converted back), both as row-major flat
    indices and clamped, with ``row_ok``/``col_ok`` False where the shift leaves ``[0, h*w)``.
    """
    n = h * w
    before = (fuse_k - 1) // 2
    shifts = tuple(range(-before, fuse_k - before))
    idx = torch.arange(n, device=device)
    y, x = idx // w, idx % w
    rows, row_ok, cols, col_ok = [], [], [], []
    for d in shifts:
        r = idx + d  # row-major flat index
        rows.append(r.clamp(0, n - 1))
        row_ok.append((r >= 0) & (r < n))
        t = x * h + y + d  # column-major flat index
        col_ok.append((t >= 0) & (t < n))
        t = t.clamp(0, n - 1)
        cols.append((t % h) * w + t // h)  # back to row-major
    return FuseMaps(
        shifts, torch.stack(rows), torch.stack(row_ok), torch.stack(cols), torch.stack(col_ok)
    )


def _shift_add(acc: Tensor, src: Tensor, d: int) -> None:
    """``acc[..., l] += src[..., l + d]`` along the last axis, zero outside (in place)."""
    size = acc.shape[-1]
    if abs(d) >= size:
        return
    if d >= 0:
        acc[..., : size - d] += src[..., d:]
    else:
        acc[..., -d:] += src[..., : size + d]


def _diagonal_add(acc: Tensor, src: Tensor, d: int) -> None:
    """``acc[..., p, l] += src[..., p + d, l + d]`` where both indices exist (in place)."""
    nf, nb = acc.shape[-2:]
    if abs(d) >= nf or abs(d) >= nb:
        return
    if d > 0:
        acc[..., : nf - d, : nb - d] += src[..., d:, d:]
    else:
        acc[..., -d:, -d:] += src[..., : nf + d, : nb + d]


def _to_column_major(x: Tensor, grid: tuple[int, int]) -> Tensor:
    """Reorder the last axis (gh*gw, row-major) to column-major order."""
    return x.unflatten(-1, grid).transpose(-1, -2).flatten(-2)


def _to_row_major(x: Tensor, grid: tuple[int, int]) -> Tensor:
    """Inverse of :func:`_to_column_major`."""
    return x.unflatten(-1, (grid[1], grid[0])).transpose(-1, -2).flatten(-2)


def _paste_columns(raw: Tensor, attn: Tensor, valid: Tensor) -> Tensor:
    """``raw @ attn^T`` (N x C*kr*kr x L times N x q x L -> N x C*kr*kr x q) summed over the
    background positions usable in some batch element only: the attention of an unusable
    position is exactly 0 (``valid`` N x 1 x L), so its terms add nothing."""
    keep = valid.amax(dim=(0, 1)) > 0  # L
    if bool(keep.all()):
        return torch.bmm(raw, attn.transpose(1, 2))
    # runs of consecutive usable positions: slices concatenated (a row-wise copy, several
    # times faster than an index gather along the last axis)
    flags = keep.tolist()
    runs, start = [], None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append((start, i))
            start = None
    if not runs:
        return raw.new_zeros(raw.shape[0], raw.shape[1], attn.shape[1])
    raw_k = torch.cat([raw[..., a:b] for a, b in runs], dim=-1)  # N x C*kr*kr x L'
    attn_k = torch.cat([attn[..., a:b] for a, b in runs], dim=-1)  # N x q x L'
    return torch.bmm(raw_k, attn_k.transpose(1, 2))


class ContextualAttention(nn.Module):
    """Contextual attention of ``inpaint_ops.contextual_attention`` (no parameters).

    Args:
        ksize: matching patch size (official 3).
        stride: stride of the background patches (official 1).
        rate: downsampling factor for matching; raw paste patches are ``2 * rate`` wide with
            stride ``rate`` (official function default 1; DeepFill v1/v2 call it with 2).
        fuse_k: size of the identity fusion kernel (official 3).
        softmax_scale: lambda of the scaled softmax (official 10).
        fuse: apply the two-pass score fusion (official True; nipponjo's port uses False).
        chunk_size: foreground positions (of the 1/rate matching grid) processed at a time;
            ``None`` processes all at once.  Numerically the same either way.
        norm_eps: epsilon of the background-patch norm (official 1e-4): its lower bound with
            ``norm="max_floor"``, the term added to each squared element with ``"additive"``.
        paste_divisor: the pasted sum is divided by this (official constant 4).
        resize: downsampling of foreground, background and mask to the matching grid:
            ``"tf"`` (official: neuralgym align-corners nearest, :func:`resize_nearest_tf`) or
            ``"torch_floor"`` (daa233: :func:`resize_nearest_floor`).
        norm: background-patch normalisation: ``"max_floor"`` (official ``w / max(|w|,
            norm_eps)``) or ``"additive"`` (daa233 ``w / sqrt(sum(w^2 + norm_eps))``).
        mask_scale: the mask is given at ``mask_scale`` times ``b``'s resolution and resized
            to the matching grid in one step (official 1; daa233 4: the full-resolution
            image mask of the 1/4 feature maps).
    """

    def __init__(
        self,
        ksize: int = 3,
        stride: int = 1,
        rate: int = 2,
        fuse_k: int = 3,
        softmax_scale: float = 10.0,
        fuse: bool = True,
        chunk_size: int | None = None,
        norm_eps: float = 1e-4,
        paste_divisor: float = 4.0,
        *,
        resize: str = "tf",
        norm: str = "max_floor",
        mask_scale: int = 1,
    ) -> None:
        super().__init__()
        for name, v in (
            ("ksize", ksize),
            ("stride", stride),
            ("rate", rate),
            ("fuse_k", fuse_k),
            ("mask_scale", mask_scale),
        ):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if resize not in RESIZES:
            raise ValueError(f"resize must be one of {RESIZES}, got {resize!r}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
            raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
        if fuse and stride != 1:
            raise ValueError("fuse=True needs stride=1 (the official fuse reshape assumes it)")
        self.ksize = ksize
        self.stride = stride
        self.rate = rate
        self.fuse_k = fuse_k
        self.softmax_scale = float(softmax_scale)
        self.fuse = bool(fuse)
        self.chunk_size = chunk_size
        self.norm_eps = float(norm_eps)
        self.paste_divisor = float(paste_divisor)
        self.resize, self.norm, self.mask_scale = resize, norm, mask_scale

    def extra_repr(self) -> str:
        return (
            f"ksize={self.ksize}, stride={self.stride}, rate={self.rate}, fuse_k={self.fuse_k}, "
            f"softmax_scale={self.softmax_scale}, fuse={self.fuse}, chunk_size={self.chunk_size}, "
            f"resize={self.resize!r}, norm={self.norm!r}, mask_scale={self.mask_scale}"
        )

    # ------------------------------------------------------------------ checks
    def _check(self, f: Tensor, b: Tensor, mask: Tensor | None) -> None:
        if f.dim() != 4 or b.dim() != 4:
            raise ValueError(
                f"f and b must be N x C x H x W, got {tuple(f.shape)}, {tuple(b.shape)}"
            )
        if f.shape[:2] != b.shape[:2]:
            raise ValueError(
                f"f and b need the same batch and channels, got {tuple(f.shape)}, {tuple(b.shape)}"
            )
        for name, t in (("f", f), ("b", b)):
            if t.shape[-2] % self.rate or t.shape[-1] % self.rate:
                raise ValueError(
                    f"{name} spatial size {tuple(t.shape[-2:])} must be divisible by "
                    f"rate={self.rate}"
                )
        if mask is not None:
            mh, mw = self.mask_scale * b.shape[-2], self.mask_scale * b.shape[-1]
            if mask.dim() != 4 or mask.shape[1] != 1 or tuple(mask.shape[-2:]) != (mh, mw):
                where = "b's size" if self.mask_scale == 1 else f"{self.mask_scale} x b's size"
                raise ValueError(
                    f"mask must be N x 1 x {mh} x {mw} ({where}, 1 = hole), got {tuple(mask.shape)}"
                )
            if mask.shape[0] not in (1, b.shape[0]):
                raise ValueError(f"mask batch {mask.shape[0]} must be 1 or {b.shape[0]}")

    # ------------------------------------------------------------------ pieces
    def _downsample(self, x: Tensor, factor: int) -> Tensor:
        """N x C x H x W -> N x C x H/factor x W/factor with the ``resize`` option."""
        if self.resize == "torch_floor":
            return resize_nearest_floor(x, factor)
        return resize_nearest_tf(x, (x.shape[-2] // factor, x.shape[-1] // factor))

    def _patch_norms(self, b_d: Tensor, patches: int) -> Tensor:
        """N x 1 x L norms of the ``k x k`` background patches of ``b_d`` (``norm`` option).

        The squared norm of a patch is the ``k x k`` box sum (stride ``stride``, TF ``'SAME'``
        zero padding, like the patches) of the per-pixel squared norm over channels: the same
        sum as over the unfolded patch in another order, with C times fewer operations.
        ``patches`` = C*k*k, the element count of a patch (for the additive epsilon).
        """
        k, s = self.ksize, self.stride
        sq = b_d.pow(2).sum(dim=1, keepdim=True)  # N x 1 x hb x wb
        box = sq.new_ones(1, 1, k, k)
        sq = F.conv2d(same_pad(sq, k, s), box, stride=s).flatten(1).unsqueeze(1)  # N x 1 x L
        if self.norm == "additive":  # sum(w^2 + eps) = sum(w^2) + C*k*k*eps
            return (sq + patches * self.norm_eps).sqrt()
        return sq.sqrt().clamp_min(self.norm_eps)

    def _background_valid(self, mask: Tensor | None, b: Tensor, grid: tuple[int, int]) -> Tensor:
        """N x L float: 1 where the background patch touches no hole pixel."""
        n, num = b.shape[0], grid[0] * grid[1]
        if mask is None:
            return b.new_ones(n, num)
        k, s = self.ksize, self.stride
        m = self._downsample(mask.to(b.dtype), self.mask_scale * self.rate)  # N' x 1 x hb x wb
        m = F.unfold(same_pad(m, k, s), k, stride=s)  # N' x k*k x L
        valid = (m == 0).all(dim=1).to(b.dtype)  # N' x L
        return valid.expand(n, num)

    def forward(
        self, f: Tensor, b: Tensor, mask: Tensor | None = None, return_offsets: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Reconstruct ``f`` (N x C x H x W) from patches of ``b`` (N x C x Hb x Wb).

        ``mask``: N x 1 x Hb x Wb (or 1 x 1 x Hb x Wb), 1 = hole, at ``b``'s resolution
        (``mask_scale`` times it); ``None`` = every background patch usable.  Returns N x C x H
        x W, and with ``return_offsets`` also N x 2 x H/rate x W/rate int64 ``(dy, dx)`` of the
        best patch.
        """
        self._check(f, b, mask)
        same = b is f  # DeepFill attends a feature map to itself: resize it once
        f = f.contiguous()  # patch extraction is faster on N x C x H x W memory
        b = f if same else b.contiguous()
        n, c, fh, fw = f.shape
        bh, bw = b.shape[-2:]
        k, s, r = self.ksize, self.stride, self.rate
        kr = 2 * r

        # 1. raw patches for pasting, from the full-resolution background
        raw = F.unfold(same_pad(b, kr, r * s), kr, stride=r * s)  # N x C*kr*kr x L
        # 2. matching at 1/rate
        f_d = self._downsample(f, r)  # N x C x h x w
        b_d = f_d if same else self._downsample(b, r)  # N x C x hb x wb
        h, w = f_d.shape[-2:]
        grid = (-(-b_d.shape[-2] // s), -(-b_d.shape[-1] // s))  # background patch grid
        num_bg, num_fg = grid[0] * grid[1], h * w
        if raw.shape[-1] != num_bg:  # guaranteed by the divisibility check
            raise RuntimeError(f"raw patch grid {raw.shape[-1]} != matching grid {num_bg}")
        # 3. normalised background patches and foreground windows
        b_pat = F.unfold(same_pad(b_d, k, s), k, stride=s)  # N x C*k*k x L
        wpat = b_pat / self._patch_norms(b_d, b_pat.shape[1])  # N x C*k*k x L
        if same and s == 1:  # the foreground windows are the background patches
            f_rows = b_pat.transpose(1, 2)  # N x F x C*k*k
        else:
            f_rows = F.unfold(same_pad(f_d, k, 1), k).transpose(1, 2)  # N x F x C*k*k
        # 5. usable background patches
        valid = self._background_valid(mask, b, grid).unsqueeze(1)  # N x 1 x L

        chunk = num_fg if self.chunk_size is None else self.chunk_size
        if chunk >= num_fg:  # everything at once: no gathers
            cols, offsets = self._attend_all(f_rows, wpat, raw, valid, (h, w), grid, return_offsets)
        else:
            cols, offsets = self._attend_chunks(
                f_rows, wpat, raw, valid, (h, w), grid, chunk, return_offsets
            )

        # 6. paste = adjoint of the 'SAME' strided patch extraction, then crop
        full = F.fold(cols, ((h - 1) * r + kr, (w - 1) * r + kr), kr, stride=r)  # N x C x .. x ..
        top = same_pad_amounts(fh, kr, r)[0]
        left = same_pad_amounts(fw, kr, r)[0]
        y = full[:, :, top : top + fh, left : left + fw] / self.paste_divisor  # N x C x H x W
        if offsets is None:
            return y
        by, bx = offsets // grid[1], offsets % grid[1]  # N x F
        fy = torch.arange(num_fg, device=f.device) // w
        fx = torch.arange(num_fg, device=f.device) % w
        flow = torch.stack([by - fy, bx - fx], dim=1).view(n, 2, h, w)  # N x 2 x h x w
        return y, flow

    def _attention(self, scores: Tensor, valid: Tensor) -> Tensor:
        """Steps 5: masked scaled softmax of N x q x L ``scores`` (consumed), subnormal weights
        flushed.  In place (same arithmetic) unless autograd needs the softmax output."""
        scores = scores.mul_(valid * self.softmax_scale)  # exact: the factor is 0 or scale
        attn = torch.softmax(scores, dim=-1)
        if torch.is_grad_enabled() and attn.requires_grad:
            attn = attn * valid
            return attn.masked_fill(attn < torch.finfo(attn.dtype).tiny, 0.0)
        # x > largest subnormal  <=>  x >= tiny: keeps exactly what masked_fill(x < tiny) keeps
        tiny = torch.tensor(torch.finfo(attn.dtype).tiny, dtype=attn.dtype)
        below_tiny = torch.nextafter(tiny, torch.zeros_like(tiny)).item()
        return F.threshold_(attn.mul_(valid), below_tiny, 0.0)

    def _attend_all(
        self,
        f_rows: Tensor,
        wpat: Tensor,
        raw: Tensor,
        valid: Tensor,
        fg: tuple[int, int],
        grid: tuple[int, int],
        return_offsets: bool,
    ) -> tuple[Tensor, Tensor | None]:
        """Steps 3-6 for all foreground positions at once: pasted columns N x C*kr*kr x F and
        the argmax offsets (N x F) if asked."""
        scores = torch.bmm(f_rows, wpat)  # N x F x L
        if self.fuse:
            scores = self._fuse_all(scores, fg, grid)
        attn = self._attention(scores, valid)  # N x F x L
        offsets = attn.argmax(dim=-1) if return_offsets else None
        return _paste_columns(raw, attn, valid), offsets  # N x C*kr*kr x F

    def _fuse_all(self, scores: Tensor, fg: tuple[int, int], grid: tuple[int, int]) -> Tensor:
        """Step 4 on the whole N x F x L score matrix: a diagonal sum over row-major flat
        indices, then the same over column-major ones; reuses ``scores``' memory."""
        n, num_fg, num_bg = scores.shape
        (h, w), (gh, gw) = fg, grid
        before = (self.fuse_k - 1) // 2
        shifts = [d for d in range(-before, self.fuse_k - before) if d != 0]
        out = scores.clone()  # the d = 0 term
        for d in shifts:  # pass 1: row-major
            _diagonal_add(out, scores, d)
        col_major = scores.view(n, w, h, gw, gh)  # the raw scores are not needed any more
        col_major.copy_(out.view(n, h, w, gh, gw).permute(0, 2, 1, 4, 3))  # both axes transposed
        out.copy_(scores)
        for d in shifts:  # pass 2: column-major
            _diagonal_add(out, scores, d)
        scores.view(n, h, w, gh, gw).copy_(out.view(n, w, h, gw, gh).permute(0, 2, 1, 4, 3))
        return scores  # N x F x L, row-major again

    def _attend_chunks(
        self,
        f_rows: Tensor,
        wpat: Tensor,
        raw: Tensor,
        valid: Tensor,
        fg: tuple[int, int],
        grid: tuple[int, int],
        chunk: int,
        return_offsets: bool,
    ) -> tuple[Tensor, Tensor | None]:
        """:meth:`_attend_all` in chunks of ``chunk`` foreground positions (memory ``O(chunk *
        L)``); the fusion reads the neighbours of each chunk through :func:`fuse_neighbours`."""
        n, num_fg = f_rows.shape[:2]
        device = f_rows.device
        maps = fuse_neighbours(fg[0], fg[1], self.fuse_k, device) if self.fuse else None
        cols = f_rows.new_empty(n, raw.shape[1], num_fg)  # N x C*kr*kr x F
        offsets = (
            torch.empty(n, num_fg, dtype=torch.long, device=device) if return_offsets else None
        )
        for start in range(0, num_fg, chunk):
            pos = torch.arange(start, min(start + chunk, num_fg), device=device)  # q
            if maps is not None:
                scores = self._fused_scores(f_rows, wpat, pos, maps, grid)  # N x q x L
            else:
                scores = torch.bmm(f_rows[:, start : start + pos.numel()], wpat)  # N x q x L
            attn = self._attention(scores, valid)  # N x q x L
            del scores
            if offsets is not None:
                offsets[:, pos] = attn.argmax(dim=-1)
            cols[:, :, pos] = torch.bmm(raw, attn.transpose(1, 2))  # N x C*kr*kr x q
            del attn
        return cols, offsets

    @staticmethod
    def _fused_scores(
        f_rows: Tensor, wpat: Tensor, pos: Tensor, maps: FuseMaps, grid: tuple[int, int]
    ) -> Tensor:
        """Fused scores N x q x L of the foreground positions ``pos`` (step 4).

        Pass 2 reads pass-1 results at the column-major neighbours of ``pos``; pass 1 reads
        raw scores at their row-major neighbours.  Only those raw scores are computed.  Along
        the background axis both passes are shifts of the (row- or column-major) flat index.
        """
        n, num_bg = f_rows.shape[0], wpat.shape[-1]
        need2, loc2 = torch.unique(maps.col[:, pos], return_inverse=True)  # u2, D x q
        need1, loc1 = torch.unique(maps.row[:, need2], return_inverse=True)  # u1, D x u2
        raw_scores = torch.bmm(f_rows[:, need1], wpat)  # N x u1 x L
        # pass 1: row-major shifts of both flat indices
        first = raw_scores.new_zeros(n, need2.numel(), num_bg)  # N x u2 x L
        for i, d in enumerate(maps.shifts):
            rows = raw_scores.index_select(1, loc1[i])  # N x u2 x L
            rows.mul_(maps.row_ok[i, need2].view(1, -1, 1).to(rows.dtype))
            _shift_add(first, rows, d)
        del raw_scores
        # pass 2: column-major shifts of both flat indices
        first = _to_column_major(first, grid)  # N x u2 x L (background column-major)
        second = first.new_zeros(n, pos.numel(), num_bg)  # N x q x L
        for i, d in enumerate(maps.shifts):
            rows = first.index_select(1, loc2[i])  # N x q x L
            rows.mul_(maps.col_ok[i, pos].view(1, -1, 1).to(rows.dtype))
            _shift_add(second, rows, d)
        return _to_row_major(second, grid)  # N x q x L
