"""Irregular masks with a hole ratio in a requested PartialConv bucket: a stand-in for the
NVIDIA irregular mask test set (Liu et al., "Image Inpainting for Irregular Holes Using
Partial Convolutions", ECCV 2018, section 5.1; ``protocol.md`` section 3.7).

The NVIDIA set (12,000 PNGs at 512²: 6 hole-ratio buckets (0.01, 0.1], ..., (0.5, 0.6], each
1,000 masks "with" and 1,000 "without" a border constraint) comes from video occlusion
masks and cannot be downloaded here, so this family only matches its *bucket statistics*, not
its shapes.  Use the ``file`` family with the real set whenever it is available.

Generator (documented, not from a paper): strokes in the style of LaMa / mmagic
(``protocol.md`` section 3.2c) are added one at a time to an empty canvas.  Each stroke: a
uniform start point, ``integers(1, max_segments + 1)`` segments, each with a continuous
angle ``U(0, 2 pi)``, a length ``integers(min_length, max_length + 1)`` and a width
``integers(min_width, max_width + 1)`` (all given at 512² and scaled by ``min(H, W) / 512``),
drawn as OpenCV lines.  With ``border=True`` the band of ``margin`` pixels along the edges is
cleared after every stroke (default margin ``round(50 * min(H, W) / 512)``: no hole pixel
within 50 px of the edge at 512²; this is the border *constraint* of half of each NVIDIA
bucket, whose naming "with / without border" is ambiguous: check real files by their hole
pixels near the edge, ``protocol.md`` section 3.7).  Each try draws a target
ratio ``U(low, high)`` and adds strokes until the hole ratio exceeds both the target and the
bucket's low end; the try is accepted if the ratio is also <= the high end, otherwise it is
rejected and restarted.  After ``max_tries`` rejected tries: ``ValueError``.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from ._common import BUCKETS, as_int, check_size, scaled

__all__ = ["irregular_bucket", "resolve_bucket"]

_REF = 512  # NVIDIA masks are 512²
_MAX_STROKES_PER_TRY = 10_000


def resolve_bucket(bucket: Any) -> tuple[str, float, float]:
    """A bucket label ("0.1-0.2") or index (0..5) -> (label, low, high)."""
    labels = list(BUCKETS)
    if isinstance(bucket, str) and bucket in BUCKETS:
        return (bucket, *BUCKETS[bucket])
    if not isinstance(bucket, (str, bool)) and isinstance(bucket, (int, np.integer)):
        if 0 <= int(bucket) < len(labels):
            label = labels[int(bucket)]
            return (label, *BUCKETS[label])
    raise ValueError(f"unknown bucket {bucket!r}; valid: {', '.join(labels)} (or index 0..5)")


def irregular_bucket(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    bucket: Any = "0.1-0.2",
    border: bool = False,
    margin: Any = None,  # default round(50 * min(H, W) / 512)
    min_width: int = 10,  # at 512²
    max_width: int = 40,  # at 512²
    min_length: int = 20,  # at 512²
    max_length: int = 100,  # at 512²
    max_segments: int = 5,
    max_tries: int = 100,
) -> np.ndarray:
    """Irregular strokes whose hole ratio r satisfies low < r <= high of ``bucket``."""
    height, width = check_size(height, width)
    label, low, high = resolve_bucket(bucket)
    side = min(height, width)
    widths = tuple(
        max(1, scaled(as_int(v, n, 1), side, _REF))
        for v, n in ((min_width, "min_width"), (max_width, "max_width"))
    )
    lengths = tuple(
        scaled(as_int(v, n, 0), side, _REF)
        for v, n in ((min_length, "min_length"), (max_length, "max_length"))
    )
    if widths[0] > widths[1] or lengths[0] > lengths[1]:
        raise ValueError("min_width/min_length must not exceed max_width/max_length")
    max_segments = as_int(max_segments, "max_segments", 1)
    max_tries = as_int(max_tries, "max_tries", 1)
    band = 0
    if border:
        band = scaled(50, side, _REF) if margin is None else as_int(margin, "margin", 0)
    inner = max(height - 2 * band, 0) * max(width - 2 * band, 0) / (height * width)
    if inner <= low:
        raise ValueError(
            f"bucket {label} is unreachable: a border of {band} px leaves only {inner:.3f} of "
            f"a {height}x{width} image for holes"
        )

    ratio = 0.0
    for _ in range(max_tries):
        target = rng.uniform(low, high)  # spreads the ratios over the bucket
        mask = np.zeros((height, width), np.uint8)
        ratio = 0.0
        for _ in range(_MAX_STROKES_PER_TRY):
            if ratio > low and ratio >= target:
                break
            _add_stroke(mask, rng, widths, lengths, max_segments)
            if band:
                _clear_border(mask, band)
            ratio = np.count_nonzero(mask) / mask.size
        if low < ratio <= high:
            return mask
    raise ValueError(
        f"irregular_bucket: no mask in bucket {label} after {max_tries} tries at "
        f"{height}x{width} (last ratio {ratio:.4f}); strokes too large for the bucket? "
        "lower max_width/max_length or raise max_tries"
    )


def _add_stroke(
    mask: np.ndarray,
    rng: np.random.Generator,
    widths: tuple[int, int],
    lengths: tuple[int, int],
    max_segments: int,
) -> None:
    height, width = mask.shape
    x = int(rng.integers(0, width))
    y = int(rng.integers(0, height))
    for _ in range(int(rng.integers(1, max_segments + 1))):
        angle = rng.uniform(0.0, 2 * math.pi)
        length = int(rng.integers(lengths[0], lengths[1] + 1))
        brush = int(rng.integers(widths[0], widths[1] + 1))
        end_x = min(max(int(round(x + length * math.cos(angle))), 0), width - 1)
        end_y = min(max(int(round(y + length * math.sin(angle))), 0), height - 1)
        cv2.line(mask, (x, y), (end_x, end_y), 1, brush)
        x, y = end_x, end_y


def _clear_border(mask: np.ndarray, band: int) -> None:
    mask[:band, :] = 0
    mask[-band:, :] = 0
    mask[:, :band] = 0
    mask[:, -band:] = 0
