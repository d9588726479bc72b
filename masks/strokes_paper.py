"""Free-form strokes of the DeepFill v2 paper's Algorithm 1 (Yu et al., ICCV 2019, arXiv
1806.03589), as transcribed by GMCNN.

Follows shepnerd/inpainting_gmcnn ``pytorch/util/utils.py`` ``np_free_form_mask`` and
``generate_stroke_mask(im_size, parts, maxVertex, maxLength, maxBrushWidth, maxAngle)``
(same code in ``tensorflow/net/ops.py``; ``protocol.md`` section 3.2b).  Each of ``parts``
strokes:

1. ``numVertex = integers(0, max_vertex + 1)``; start column, then start row, uniform;
2. per vertex ``i``: ``angle = integers(0, max_angle + 1)`` degrees -> radians, ``2*pi -
   angle`` when ``i`` is even; ``length = integers(0, max_length + 1)``; ``brushWidth =
   integers(10, max_brush_width + 1) // 2 * 2``; end = start + length * (cos, sin)(angle) as
   (column, row), clipped to the image and truncated; an OpenCV line of width ``brushWidth``
   and a one-pixel-thick circle outline of radius ``brushWidth // 2`` at the start point;
3. a last circle outline at the final point (radius from the last vertex; 0 -> a single dot).

The strokes are OR-ed (the official code sums and clips to 1).

Parameter sets (``parts, max_vertex, max_length, max_brush_width, max_angle``): function
defaults 10, 20, 100, 24, 360 (the defaults here); GMCNN PyTorch test 8, 20, 100, 20, 360;
GMCNN TF training 8, 16, 80, 20, 360.

Quirk dropped: the official code passes ``(startY, startX)`` to OpenCV, which reads points as
(x, y), so its "Y" coordinate (drawn in [0, h)) is used as a column; on square images that is
harmless.  Here the first coordinate is drawn in [0, W) and used as the column, the second in
[0, H) as the row, the displacement is ``(length*cos, length*sin)`` on (column, row) and each is
clipped to its own axis: identical masks, bit for bit, on square images (same draws in the same
order), correct ones on non-square images.  The TF ``free_form_mask_tf`` (one stroke group
added 8 times) is not reproduced.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ._common import as_int, check_size

__all__ = ["strokes_paper"]


def _free_form_stroke(
    canvas: np.ndarray,
    rng: np.random.Generator,
    max_vertex: int,
    max_length: int,
    max_brush_width: int,
    max_angle: int,
) -> None:
    """Draw one ``np_free_form_mask`` stroke into ``canvas`` (in place, value 1)."""
    height, width = canvas.shape
    num_vertex = int(rng.integers(0, max_vertex + 1))
    col = int(rng.integers(0, width))
    row = int(rng.integers(0, height))
    brush = 0
    for i in range(num_vertex):
        angle = int(rng.integers(0, max_angle + 1)) / 360.0 * 2 * math.pi
        if i % 2 == 0:
            angle = 2 * math.pi - angle
        length = int(rng.integers(0, max_length + 1))
        brush = int(rng.integers(10, max_brush_width + 1)) // 2 * 2
        next_col = int(min(max(col + length * math.cos(angle), 0), width - 1))
        next_row = int(min(max(row + length * math.sin(angle), 0), height - 1))
        cv2.line(canvas, (col, row), (next_col, next_row), 1, brush)
        cv2.circle(canvas, (col, row), brush // 2, 1, 1)
        col, row = next_col, next_row
    cv2.circle(canvas, (col, row), brush // 2, 1, 1)


def strokes_paper(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    parts: int = 10,  # generate_stroke_mask default (GMCNN test: 8)
    max_vertex: int = 20,  # maxVertex
    max_length: int = 100,  # maxLength
    max_brush_width: int = 24,  # maxBrushWidth (GMCNN: 20); widths are even, >= 10
    max_angle: int = 360,  # maxAngle, degrees
) -> np.ndarray:
    """Union of ``parts`` Algorithm-1 strokes (1 = hole); see the module docstring."""
    height, width = check_size(height, width)
    parts = as_int(parts, "parts", 1)
    max_vertex = as_int(max_vertex, "max_vertex", 0)
    max_length = as_int(max_length, "max_length", 0)
    max_brush_width = as_int(max_brush_width, "max_brush_width", 10)
    max_angle = as_int(max_angle, "max_angle", 0)
    canvas = np.zeros((height, width), np.uint8)
    for _ in range(parts):
        _free_form_stroke(canvas, rng, max_vertex, max_length, max_brush_width, max_angle)
    return canvas
