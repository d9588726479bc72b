"""mmagic "irregular" free-form masks (DeepFill v2 and PConv configs of open-mmlab/mmagic).

Follows open-mmlab/mmagic ``mmagic/utils/trans_utils.py`` ``random_irregular_mask`` and
``get_irregular_mask`` (``protocol.md`` section 3.2c), with the parameters of the
``mask_mode='irregular'`` configs (``configs/deepfillv2/*``, ``configs/partial_conv/*``):
``num_vertices=(4, 10)``, ``max_angle=6``, ``length_range=(20, 128)``, ``brush_width=(10, 45)``,
``area_ratio_range=(0.15, 0.65)`` at 256².  All ranges are NumPy-style half-open [low, high):

- ``integers(*num_vertices)`` strokes (4..9);
- per stroke ``i``: start row, then start column, uniform; ``integers(1, 6)`` segments (1..5);
  per segment ``angle = 0.01 + integers(0, max_angle)`` radians (``2*pi - angle`` when the
  *stroke* index ``i`` is even), ``length`` in [20, 128), ``width`` in [10, 45) (the three
  lists drawn as arrays, as the official code); end = start + length * (sin, cos)(angle) on
  (row, column), truncated to int and **not clipped** (later segments may leave the image);
  an OpenCV line of that width;
- the whole mask is redrawn until the hole ratio is strictly inside ``area_ratio_range``.

Deviations: (1) the official redraw loop is unbounded and uses the global RNG; here it is
bounded by ``max_tries`` (``ValueError`` when exhausted) and draws from ``rng``; (2) the
official code passes ``(start_y, start_x)`` to OpenCV, which reads (x, y), so its "x" (drawn in
[0, w)) is a row; here the row is drawn in [0, H) and the column in [0, W): bit-identical on
square images, correct on non-square ones.  Lengths and widths are pixels, not rescaled.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from ._common import as_int, as_pair, check_size

__all__ = ["irregular_mmagic", "random_irregular_mmagic"]


def _half_open(value: Any, name: str, minimum: int) -> tuple[int, int]:
    low, high = as_pair(value, name, minimum)
    if high <= low:
        raise ValueError(f"{name} must be a half-open range (low, high) with high > low")
    return low, high


def random_irregular_mmagic(
    height: int,
    width: int,
    rng: np.random.Generator,
    num_vertices: tuple[int, int],
    max_angle: int,
    length_range: tuple[int, int],
    brush_width: tuple[int, int],
) -> np.ndarray:
    """One draw of ``random_irregular_mask`` (no area constraint); ranges already checked."""
    mask = np.zeros((height, width), np.uint8)
    for i in range(int(rng.integers(*num_vertices))):
        row = int(rng.integers(0, height))
        col = int(rng.integers(0, width))
        directions = int(rng.integers(1, 6))
        angles = rng.integers(0, max_angle, size=directions)
        lengths = rng.integers(length_range[0], length_range[1], size=directions)
        widths = rng.integers(brush_width[0], brush_width[1], size=directions)
        for d in range(directions):
            angle = 0.01 + float(angles[d])
            if i % 2 == 0:
                angle = 2 * math.pi - angle
            end_row = int(row + lengths[d] * math.sin(angle))
            end_col = int(col + lengths[d] * math.cos(angle))
            cv2.line(mask, (col, row), (end_col, end_row), 1, int(widths[d]))
            row, col = end_row, end_col
    return mask


def irregular_mmagic(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    num_vertices: Any = (4, 10),  # configs; [4, 10) strokes
    max_angle: Any = 6,  # configs: 6.0; angles 0.01 + {0..5} rad
    length_range: Any = (20, 128),  # configs, pixels, [20, 128)
    brush_width: Any = (10, 45),  # configs, pixels, [10, 45)
    area_ratio_range: Any = (0.15, 0.65),  # configs (function default (0.15, 0.5))
    max_tries: int = 1000,  # not in the official code (unbounded loop)
) -> np.ndarray:
    """mmagic ``get_irregular_mask`` with a bounded, seeded redraw loop (1 = hole)."""
    height, width = check_size(height, width)
    num_vertices = _half_open(num_vertices, "num_vertices", 0)
    max_angle = as_int(max_angle, "max_angle", 1)
    length_range = _half_open(length_range, "length_range", 0)
    brush_width = _half_open(brush_width, "brush_width", 1)
    max_tries = as_int(max_tries, "max_tries", 1)
    if len(area_ratio_range) != 2 or not 0 <= area_ratio_range[0] < area_ratio_range[1] <= 1:
        raise ValueError(f"area_ratio_range must be (low, high) in [0, 1], got {area_ratio_range}")
    low, high = float(area_ratio_range[0]), float(area_ratio_range[1])
    for _ in range(max_tries):
        mask = random_irregular_mmagic(
            height, width, rng, num_vertices, max_angle, length_range, brush_width
        )
        if low < np.count_nonzero(mask) / mask.size < high:
            return mask
    raise ValueError(
        f"irregular_mmagic: no mask with hole ratio in ({low}, {high}) after {max_tries} draws "
        f"at {height}x{width}; widen area_ratio_range, raise max_tries or adapt the stroke sizes"
    )
