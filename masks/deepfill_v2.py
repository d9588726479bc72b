"""DeepFill v2 free-form brush strokes (Yu et al., "Free-Form Image Inpainting with Gated
Convolution", ICCV 2019, Algorithm 1 as released).

Follows JiahuiYu/generative_inpainting (``master``) ``inpaint_ops.py`` ``brush_stroke_mask``
(``protocol.md`` section 3.2a), drawn with PIL ``ImageDraw`` as the official code does:

- strokes: ``integers(1, max_loops)`` -> 1..3;
- per stroke: ``num_vertex = integers(min_num_vertex, max_num_vertex)`` -> 4..11;
  ``angle_min = mean_angle - U(0, angle_range)``, ``angle_max = mean_angle + U(0,
  angle_range)``; one ``U(angle_min, angle_max)`` per vertex, ``2*pi - angle`` on even
  indices; start point uniform; step ``r ~ N(R, R // 2)`` clipped to [0, 2R] with
  ``R = sqrt(H^2 + W^2) / 8``; the next point is clipped to [0, W] x [0, H] and truncated to
  int; ``width = int(U(min_width, max_width))`` -> 12..39; a polyline of that width plus a
  filled disc of diameter ``2 * (width // 2)`` at every vertex.

The random draws come from ``rng`` in exactly the official order (vertex count, the two angle
offsets, the per-vertex angles, start x then y, the per-vertex radii, the width), so feeding an
official-code shim with the same generator gives the same mask bit for bit at square sizes.

Quirks kept: the exclusive upper bounds (3 strokes at most, widths up to 39), ``R // 2`` (a
floor) as the standard deviation, clipping to W and H (one past the last pixel).
Quirks dropped: (1) the two random flips, which are no-ops in the official code (``transpose``
returns a new image that is discarded), are not drawn at all: no extra RNG draws; (2) the
official ``h, w = mask.size`` swaps height and width (harmless on square images); here x is
drawn in [0, W) and clipped to W, y in [0, H) and clipped to H, so non-square masks are right.

``mask_deepfill_v2_train`` is the official training mask: these strokes OR a DeepFill v1 box
(``inpaint_model.py`` ``build_graph_with_losses``); the box is drawn first.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ._common import as_int, check_size
from .boxes import box_deepfill_v1

__all__ = ["strokes_deepfill_v2", "mask_deepfill_v2_train"]


def strokes_deepfill_v2(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    max_loops: int = 4,  # official randint(1, 4): 1..3 strokes
    min_num_vertex: int = 4,  # official
    max_num_vertex: int = 12,  # official, exclusive: 4..11 vertices
    mean_angle: float = 2 * math.pi / 5,  # official
    angle_range: float = 2 * math.pi / 15,  # official
    min_width: float = 12,  # official
    max_width: float = 40,  # official, width = int(U(12, 40)) -> 12..39
) -> np.ndarray:
    """Official DeepFill v2 brush strokes (1 = hole); see the module docstring."""
    height, width = check_size(height, width)
    max_loops = as_int(max_loops, "max_loops", 2)
    min_num_vertex = as_int(min_num_vertex, "min_num_vertex", 1)
    max_num_vertex = as_int(max_num_vertex, "max_num_vertex", min_num_vertex + 1)
    if not 0 < min_width < max_width:
        raise ValueError(f"need 0 < min_width < max_width, got {min_width}, {max_width}")
    if angle_range < 0:
        raise ValueError(f"angle_range must be >= 0, got {angle_range}")

    average_radius = math.sqrt(height * height + width * width) / 8
    canvas = Image.new("L", (width, height), 0)  # PIL size is (W, H)
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(1, max_loops))):
        num_vertex = int(rng.integers(min_num_vertex, max_num_vertex))
        angle_min = mean_angle - rng.uniform(0, angle_range)
        angle_max = mean_angle + rng.uniform(0, angle_range)
        angles = []
        for i in range(num_vertex):
            angle = rng.uniform(angle_min, angle_max)
            angles.append(2 * math.pi - angle if i % 2 == 0 else angle)
        vertices = [(int(rng.integers(0, width)), int(rng.integers(0, height)))]
        for i in range(num_vertex):
            radius = np.clip(
                rng.normal(loc=average_radius, scale=average_radius // 2), 0, 2 * average_radius
            )
            new_x = np.clip(vertices[-1][0] + radius * math.cos(angles[i]), 0, width)
            new_y = np.clip(vertices[-1][1] + radius * math.sin(angles[i]), 0, height)
            vertices.append((int(new_x), int(new_y)))
        brush = int(rng.uniform(min_width, max_width))
        draw.line(vertices, fill=1, width=brush)
        half = brush // 2
        for x, y in vertices:
            draw.ellipse((x - half, y - half, x + half, y + half), fill=1)
    return np.asarray(canvas, dtype=np.uint8).copy()


def mask_deepfill_v2_train(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    box_size: Any = None,
    max_delta: Any = None,
    margin: Any = 0,
    max_loops: int = 4,
    min_num_vertex: int = 4,
    max_num_vertex: int = 12,
    mean_angle: float = 2 * math.pi / 5,
    angle_range: float = 2 * math.pi / 15,
    min_width: float = 12,
    max_width: float = 40,
) -> np.ndarray:
    """DeepFill v2 training mask: ``box_deepfill_v1`` (drawn first) OR ``strokes_deepfill_v2``.

    ``box_size``, ``max_delta``, ``margin`` go to the box, the rest to the strokes.
    """
    box = box_deepfill_v1(height, width, rng, box_size=box_size, max_delta=max_delta, margin=margin)
    strokes = strokes_deepfill_v2(
        height,
        width,
        rng,
        max_loops=max_loops,
        min_num_vertex=min_num_vertex,
        max_num_vertex=max_num_vertex,
        mean_angle=mean_angle,
        angle_range=angle_range,
        min_width=min_width,
        max_width=max_width,
    )
    return np.maximum(box, strokes)
