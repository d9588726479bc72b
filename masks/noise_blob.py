"""Context Encoder "random region" masks: a window of thresholded, upsampled uniform noise.

Follows pathak22/context-encoder ``train_random.lua`` (Pathak et al., CVPR 2016, section
3.3) and its port in Zhaoyi-Yan/Shift-Net_pytorch ``util/util.py`` ``wrapper_gmask`` /
``create_gMask`` (``protocol.md`` sections 3.4 and 3.5):

- official: a ``res * MAX_SIZE``-square uniform noise image (res 0.06; MAX_SIZE 10000 in CE,
  350 in Shift-Net) is upsampled to MAX_SIZE² (CE: Torch ``image.scale`` bicubic; Shift-Net:
  ``F.interpolate`` bilinear) and thresholded ``< density`` (0.25) into a fixed blob pattern;
  each mask is a random fineSize² window of it, accepted only when its hole area is
  **strictly** between 20 % and 30 %.
- here: each try draws fresh noise for just the window (plus a margin of cells so the
  interpolation never sees an edge) and a random sub-cell phase, upsamples it by the same
  factor ``1 / res`` (one noise sample per 16.7 pixels), thresholds it and accepts it when the
  hole ratio is strictly inside (``min_ratio``, ``max_ratio``); at most ``max_tries`` tries,
  then ``ValueError``.  A window of a 10000² pattern built from i.i.d. noise and a fresh window
  have the same distribution away from the pattern's border, so generating only the window
  is equivalent and avoids a 10^8-pixel pattern; the blob size is in pixels, as in the
  official code (it does not scale with the image).

Interpolation kernels: ``"bicubic"`` is Torch7 ``image.scale``'s cubic convolution (Catmull-
Rom, a = -0.5) on the coordinate ``src = dst * res``; ``"bilinear"`` is linear interpolation on
the same coordinate (Shift-Net; ``F.interpolate`` only differs by a half-pixel phase, which
the random phase absorbs).

Measured (not documented upstream): thresholding at 0.25 does **not** give 25 % holes; the
hole fraction of the pattern is about 16.7 % (bicubic) and 10.9 % (bilinear), so the area test
keeps only the upper tail of the windows.  Acceptance per try: 21 % for 128² bicubic (CE),
7 % for 256² bicubic, about 0 for 256² bilinear (Shift-Net) and 512² bicubic.  Shift-Net's
``create_gMask(limit_cnt=1)`` therefore almost always falls back to its second window, whose
area is about 11 %: reproduce that with ``interpolation="bilinear", max_tries=2,
accept_last=True``.  For large windows with the 20-30 % condition raise ``density`` (256²
bicubic: density 0.32 gives a mean of 25 %).

Deviations: CE uses one pattern for a whole run and one mask per batch; by default every mask
here satisfies the area condition (``accept_last=False``; ``ValueError`` after ``max_tries``).
"""

from __future__ import annotations

import math

import numpy as np

from ._common import as_int, check_size

__all__ = ["noise_blob", "interpolation_matrix"]


def _cubic_weights(t: np.ndarray) -> np.ndarray:
    """Catmull-Rom weights (a = -0.5) of the 4 taps at offsets -1, 0, 1, 2 for fraction t."""
    t2, t3 = t * t, t * t * t
    return np.stack(
        [
            0.5 * (-t3 + 2 * t2 - t),
            0.5 * (3 * t3 - 5 * t2 + 2),
            0.5 * (-3 * t3 + 4 * t2 + t),
            0.5 * (t3 - t2),
        ],
        axis=-1,
    )


def interpolation_matrix(coords: np.ndarray, n_src: int, mode: str) -> np.ndarray:
    """(len(coords), n_src) matrix M with ``M @ samples`` = the interpolated values at
    ``coords`` (in source-sample units); coords must keep all taps inside [0, n_src)."""
    base = np.floor(coords).astype(np.int64)
    frac = coords - base
    matrix = np.zeros((coords.size, n_src), np.float64)
    rows = np.arange(coords.size)
    if mode == "bicubic":
        taps, weights = base[:, None] + np.arange(-1, 3), _cubic_weights(frac)
    elif mode == "bilinear":
        taps, weights = base[:, None] + np.arange(0, 2), np.stack([1 - frac, frac], axis=-1)
    else:
        raise ValueError(f"interpolation must be 'bicubic' or 'bilinear', got {mode!r}")
    if taps.min() < 0 or taps.max() >= n_src:
        raise ValueError("interpolation taps outside the source grid")
    for k in range(taps.shape[1]):
        np.add.at(matrix, (rows, taps[:, k]), weights[:, k])
    return matrix


def _pattern(
    height: int, width: int, rng: np.random.Generator, res: float, mode: str
) -> np.ndarray:
    """Upsampled noise (H, W): noise cell size 1/res pixels, random phase."""
    n_rows = math.ceil(height * res) + 5
    n_cols = math.ceil(width * res) + 5
    noise = rng.random((n_rows, n_cols))
    phase_r, phase_c = rng.random(2) / res  # sub-cell offset in pixels, in [0, 1/res)
    coords_r = 1.0 + (np.arange(height) + phase_r) * res
    coords_c = 1.0 + (np.arange(width) + phase_c) * res
    m_r = interpolation_matrix(coords_r, n_rows, mode)  # (H, n_rows)
    m_c = interpolation_matrix(coords_c, n_cols, mode)  # (W, n_cols)
    return m_r @ noise @ m_c.T  # (H, W)


def noise_blob(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    res: float = 0.06,  # official: noise samples per pixel
    density: float = 0.25,  # official threshold: hole where pattern < density
    interpolation: str = "bicubic",  # CE; Shift-Net: "bilinear"
    min_ratio: float = 0.2,  # official: area > 20 %
    max_ratio: float = 0.3,  # official: area < 30 %
    max_tries: int = 1000,
    accept_last: bool = False,  # Shift-Net: True (with max_tries=2)
) -> np.ndarray:
    """Random blob region with hole ratio strictly in (min_ratio, max_ratio) (1 = hole);
    with ``accept_last=True`` the last try is returned when none satisfies the condition."""
    height, width = check_size(height, width)
    max_tries = as_int(max_tries, "max_tries", 1)
    if not 0 < res <= 1:
        raise ValueError(f"res must be in (0, 1], got {res}")
    if not 0 <= min_ratio < max_ratio <= 1:
        raise ValueError(f"need 0 <= min_ratio < max_ratio <= 1, got {min_ratio}, {max_ratio}")
    if interpolation not in ("bicubic", "bilinear"):
        raise ValueError(f"interpolation must be 'bicubic' or 'bilinear', got {interpolation!r}")
    for _ in range(max_tries):
        mask = (_pattern(height, width, rng, res, interpolation) < density).astype(np.uint8)
        if min_ratio < np.count_nonzero(mask) / mask.size < max_ratio:
            return mask
    if accept_last:
        return mask
    raise ValueError(
        f"noise_blob: no window with hole ratio in ({min_ratio}, {max_ratio}) after "
        f"{max_tries} tries at {height}x{width} (res={res}, density={density}, "
        f"{interpolation}); the pattern averages about 17 % (bicubic) / 11 % (bilinear) holes at "
        "density 0.25: raise density (e.g. 0.32), max_tries, or use accept_last=True"
    )
