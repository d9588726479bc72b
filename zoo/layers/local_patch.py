"""The local patch around the hole: a fixed-size window centred on each sample's hole.

Three models of the zoo score or reconstruct a local patch around the completed region:

- GLCIC (Iizuka, Simo-Serra, Ishikawa, SIGGRAPH 2017, Sec. 3.2): the local context
  discriminator sees "a 128x128-pixel image patch centered around the completed region";
  the official code (satoshiiizuka/siggraph2017_inpainting) is inference only, and the port
  otenim/GLCIC-PyTorch ``train.py`` draws a random area containing the hole instead;
- DeepFill v1 (JiahuiYu/generative_inpainting, branch ``v1.0.0``, ``inpaint_ops.py``):
  ``random_bbox`` draws one box per batch, ``bbox2mask`` shrinks it by the same random amount
  on both ends of each axis, and ``local_patch`` crops the **unshrunk** box for the local
  critic and the spatially discounted L1;
- GMCNN (shepnerd/inpainting_gmcnn ``pytorch/model/net.py``, ``InpaintingModel_GMCNN``): with
  ``mask_type='rect'`` the local discriminator and the ID-MRF loss see the crop at the
  rectangle returned by ``generate_mask`` (the rectangle is the hole itself).

All three are the same rule for the masks those codes draw; for an arbitrary mask (several
blobs, free-form strokes, one mask per sample) the zoo uses :func:`hole_windows`: with the hole
rows ``[r0, r1]`` (bounding box of all hole pixels of the sample), the window of ``size`` rows
starts at ``floor((r0 + r1 + 1 - size) / 2)`` (the bounding box in the middle, one spare row
above when the slack is odd), clipped to ``[0, H - size]``; likewise for columns.  For a box
shrunk symmetrically (DeepFill v1) the window is the unshrunk box; for a box of exactly the
window's size (GMCNN) it is the box.  A sample without hole gets the centred window; a hole
larger than the window is cut.

Deviations from the official codes: one window per sample (TF and GMCNN crop one box for the
whole batch); the window of the real image is the fake one's (otenim crops an independent
random area of the real image).
"""

from __future__ import annotations

import torch

__all__ = ["hole_windows", "crop_windows", "scaled_window_size"]

Tensor = torch.Tensor
Size = int | tuple[int, int]


def _pair(size: Size) -> tuple[int, int]:
    if isinstance(size, bool) or not isinstance(size, int | tuple | list):
        raise TypeError(f"size must be an int or a pair of ints, got {size!r}")
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"size must be an int or a pair of ints, got {size!r}")
    return pair  # type: ignore[return-value]


def hole_windows(mask: Tensor, size: Size) -> Tensor:
    """Top-left corners (N x 2 int64: row, column) of ``size`` windows centred on each sample's
    hole bounding box and clipped to the image (rule: module docstring).

    Args:
        mask: N x 1 x H x W, 1 = hole (values above 0.5 count as hole).
        size: window height and width (an int for a square window), at most H x W.
    """
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must be N x 1 x H x W (1 = hole), got {tuple(mask.shape)}")
    wh, ww = _pair(size)
    h, w = mask.shape[-2:]
    if not (1 <= wh <= h and 1 <= ww <= w):
        raise ValueError(f"window {wh}x{ww} does not fit in the {h}x{w} image")
    hole = mask[:, 0] > 0.5  # N x H x W
    corners = []
    for hit, extent, win in ((hole.any(dim=2), h, wh), (hole.any(dim=1), w, ww)):
        # hit: N x extent, True on the rows (columns) holding a hole pixel
        idx = torch.arange(extent, device=mask.device)
        first = torch.where(hit, idx, extent).amin(dim=1)  # N
        last = torch.where(hit, idx, -1).amax(dim=1)  # N, -1 without hole
        empty = last < 0
        first = torch.where(empty, torch.zeros_like(first), first)  # no hole: the whole axis
        last = torch.where(empty, torch.full_like(last, extent - 1), last)
        start = torch.div(first + last + 1 - win, 2, rounding_mode="floor")
        corners.append(start.clamp(0, extent - win))
    return torch.stack(corners, dim=1)  # N x 2 (top, left)


def crop_windows(x: Tensor, corners: Tensor, size: Size) -> Tensor:
    """``x[n, :, top:top + size_h, left:left + size_w]`` for every sample n (differentiable).

    ``x``: N x C x H x W; ``corners``: N x 2 (top, left), e.g. from :func:`hole_windows`.
    """
    wh, ww = _pair(size)
    if x.dim() != 4:
        raise ValueError(f"x must be N x C x H x W, got {tuple(x.shape)}")
    if tuple(corners.shape) != (x.shape[0], 2):
        raise ValueError(
            f"corners must be N x 2 for {x.shape[0]} samples, got {tuple(corners.shape)}"
        )
    tops, lefts = corners[:, 0].tolist(), corners[:, 1].tolist()
    patches = [xi[:, t : t + wh, c : c + ww] for xi, t, c in zip(x, tops, lefts)]
    return torch.stack(patches)  # N x C x size_h x size_w


def scaled_window_size(
    local_size: int, image_size: int, height: int, width: int
) -> tuple[int, int]:
    """The local window of a ``height x width`` batch for a model built for ``image_size``
    images and ``local_size`` windows: ``local_size`` scaled by ``H / image_size`` (rounded
    down, at least 1), and likewise for W."""
    if not 1 <= local_size <= image_size:
        raise ValueError(f"need 1 <= local_size <= image_size, got {local_size}, {image_size}")
    return (
        max(1, height * local_size // image_size),
        max(1, width * local_size // image_size),
    )
