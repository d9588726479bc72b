"""Rectangular hole families: centred boxes and the random boxes of the box-trained papers.

Every function follows the family signature ``fn(height, width, rng, **params) -> (H, W)
uint8`` (1 = hole) and draws only from ``rng``.  Sizes given by the official code for a 256²
image are, by default, scaled per axis to other sizes: a length ``L`` at 256 becomes
``round(L * side / 256)`` on an axis of ``side`` pixels (``_common.scaled``), so at 256² every
default equals the official constant.  Explicit integer parameters are used as given.

Sources (``protocol.md`` sections 3.1, 3.3-3.6, 3.8):

- ``center_box``: Context Encoder (pathak22/context-encoder ``train.lua``: 64² hole at
  [32, 96)² of 128²), Shift-Net (Zhaoyi-Yan/Shift-Net_pytorch: 120² at [68, 188)² of 256²),
  GMCNN (shepnerd/inpainting_gmcnn ``pytorch/util/utils.py`` ``generate_rect_mask``
  ``rand_mask=False``: 128² at [64, 192)² of 256²).
- ``box_deepfill_v1``: JiahuiYu/generative_inpainting ``inpaint_ops.py`` ``random_bbox`` +
  ``bbox2mask`` (v1.0.0 ``inpaint.yml``: 128² box, MAX_DELTA 32, margins 0).
- ``box_glcic``: Iizuka et al. 2017 section 3 (no released training code): each side uniform
  in [96, 128] on a 256² crop.
- ``box_mmagic``: open-mmlab/mmagic ``mmagic/utils/trans_utils.py`` ``random_bbox`` +
  ``bbox2mask`` (GL / DeepFill v1 configs: ``max_bbox_shape=128, max_bbox_delta=40,
  min_margin=20``).
- ``box_gmcnn``: GMCNN ``generate_rect_mask`` with ``rand_mask=True`` (128² box, offset in
  [8, 120) at 256²).
- ``box_edgeconnect`` / ``half_edgeconnect``: knazeri/edge-connect ``src/dataset.py``
  ``load_mask`` modes 1 and 2 with ``src/utils.py`` ``create_mask``.

Deviations: the official DeepFill v1 top-left comes from TensorFlow's RNG and the shrink from
the global NumPy RNG; here all four numbers come from ``rng`` (top, left, shrink rows, shrink
columns, in that order).  GLCIC's hole position is not specified by the paper; it is uniform
over all positions that keep the hole inside the image.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import as_pair, check_size, scaled

__all__ = [
    "center_box",
    "box_deepfill_v1",
    "box_glcic",
    "box_mmagic",
    "box_gmcnn",
    "box_edgeconnect",
    "half_edgeconnect",
]

_REF = 256  # image side at which the official constants are given


def _pair_or_scaled(value: Any, name: str, at_ref: int, height: int, width: int, minimum: int):
    """``value`` as (rows, cols); ``None`` -> the official ``at_ref`` scaled to (H, W)."""
    if value is None:
        return scaled(at_ref, height, _REF), scaled(at_ref, width, _REF)
    return as_pair(value, name, minimum)


def _box_mask(height: int, width: int, top: int, left: int, rows: int, cols: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    mask[top : top + rows, left : left + cols] = 1
    return mask


def center_box(
    height: int, width: int, rng: np.random.Generator, *, size: Any = None
) -> np.ndarray:
    """A centred ``size`` box (int or (rows, cols)); default half of each side.

    CE: ``center_box(128, 128, rng, size=64)`` -> [32, 96)²; Shift-Net: ``size=120`` at 256 ->
    [68, 188)²; GMCNN: default at 256 -> [64, 192)².  The top-left corner is
    ``((H - rows) // 2, (W - cols) // 2)``.  ``rng`` is not used (deterministic family).  The CE
    ``overlapPred`` variant (only the inner 56² blanked) is the model's business, not the mask's.
    """
    height, width = check_size(height, width)
    rows, cols = (height // 2, width // 2) if size is None else as_pair(size, "size", 1)
    if rows > height or cols > width:
        raise ValueError(f"size {(rows, cols)} larger than the image {(height, width)}")
    return _box_mask(height, width, (height - rows) // 2, (width - cols) // 2, rows, cols)


def box_deepfill_v1(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    box_size: Any = None,  # paper/official: 128 at 256²
    max_delta: Any = None,  # official MAX_DELTA_HEIGHT/WIDTH: 32 at 256²
    margin: Any = 0,  # official VERTICAL/HORIZONTAL_MARGIN: 0
    fixed: bool = False,
) -> np.ndarray:
    """DeepFill v1 box: ``random_bbox`` then the symmetric random shrink of ``bbox2mask``.

    Top-left uniform in [margin, side - margin - box) (exclusive, as ``tf.random_uniform``);
    then ``d = integers(0, max_delta // 2 + 1)`` rows are removed at the top *and* the bottom
    (likewise columns), so at 256² the sides are even numbers in [96, 128].  ``fixed=True`` is
    the validation ("static view") box: centred, still shrunk (pass ``max_delta=0`` for the
    unshrunk v1 inference box).  Defaults scale with the image: box = side/2, max_delta =
    side/8 (rounded, per axis).
    """
    height, width = check_size(height, width)
    rows, cols = _pair_or_scaled(box_size, "box_size", 128, height, width, 1)
    delta_r, delta_c = _pair_or_scaled(max_delta, "max_delta", 32, height, width, 0)
    margin_r, margin_c = as_pair(margin, "margin", 0)
    if height - margin_r - rows <= margin_r or width - margin_c - cols <= margin_c:
        raise ValueError(
            f"box {(rows, cols)} with margin {(margin_r, margin_c)} leaves no room for a random "
            f"position in a {(height, width)} image"
        )
    if 2 * (delta_r // 2) >= rows or 2 * (delta_c // 2) >= cols:
        raise ValueError(f"max_delta {(delta_r, delta_c)} would shrink the box {(rows, cols)} away")
    if fixed:
        top, left = (height - rows) // 2, (width - cols) // 2
    else:
        top = int(rng.integers(margin_r, height - margin_r - rows))
        left = int(rng.integers(margin_c, width - margin_c - cols))
    shrink_r = int(rng.integers(0, delta_r // 2 + 1))
    shrink_c = int(rng.integers(0, delta_c // 2 + 1))
    return _box_mask(
        height, width, top + shrink_r, left + shrink_c, rows - 2 * shrink_r, cols - 2 * shrink_c
    )


def box_glcic(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    min_size: Any = None,  # paper: 96 at 256²
    max_size: Any = None,  # paper: 128 at 256²
) -> np.ndarray:
    """GLCIC hole: each side uniform in [min_size, max_size] (inclusive), uniform position.

    Draw order: rows, cols, top, left.  Defaults 96 and 128 at 256², scaled per axis.
    """
    height, width = check_size(height, width)
    lo_r, lo_c = _pair_or_scaled(min_size, "min_size", 96, height, width, 1)
    hi_r, hi_c = _pair_or_scaled(max_size, "max_size", 128, height, width, 1)
    if lo_r > hi_r or lo_c > hi_c:
        raise ValueError(f"min_size {(lo_r, lo_c)} > max_size {(hi_r, hi_c)}")
    if hi_r > height or hi_c > width:
        raise ValueError(f"max_size {(hi_r, hi_c)} larger than the image {(height, width)}")
    rows = int(rng.integers(lo_r, hi_r + 1))
    cols = int(rng.integers(lo_c, hi_c + 1))
    top = int(rng.integers(0, height - rows + 1))
    left = int(rng.integers(0, width - cols + 1))
    return _box_mask(height, width, top, left, rows, cols)


def box_mmagic(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    max_bbox_shape: Any = None,  # configs: 128 at 256²
    max_bbox_delta: Any = None,  # configs: 40 at 256²
    min_margin: Any = None,  # configs: 20 at 256²
) -> np.ndarray:
    """mmagic ``random_bbox``: only the top-left moves and the box shrinks by the same delta.

    top in [margin, H - margin - max_h) (exclusive), ``d_top`` in [0, delta // 2]; the box is
    (top + d_top, left + d_left, max_h - d_top, max_w - d_left): at 256² sides 108..128, top in
    [20, 127], bottom edge fixed by the first draw.  Draw order: top, left, d_top, d_left.
    """
    height, width = check_size(height, width)
    max_r, max_c = _pair_or_scaled(max_bbox_shape, "max_bbox_shape", 128, height, width, 1)
    delta_r, delta_c = _pair_or_scaled(max_bbox_delta, "max_bbox_delta", 40, height, width, 0)
    margin_r, margin_c = _pair_or_scaled(min_margin, "min_margin", 20, height, width, 0)
    if max_r > height or max_c > width:
        raise ValueError(f"max_bbox_shape {(max_r, max_c)} larger than the image")
    if 2 * (delta_r // 2) >= max_r or 2 * (delta_c // 2) >= max_c:
        raise ValueError(f"max_bbox_delta {(delta_r, delta_c)} must be smaller than the box")
    max_top, max_left = height - margin_r - max_r, width - margin_c - max_c
    if max_top <= margin_r or max_left <= margin_c:
        raise ValueError(
            f"margin {(margin_r, margin_c)} cannot be satisfied for box {(max_r, max_c)} in a "
            f"{(height, width)} image"
        )
    top = int(rng.integers(margin_r, max_top))
    left = int(rng.integers(margin_c, max_left))
    d_top = int(rng.integers(0, delta_r // 2 + 1))
    d_left = int(rng.integers(0, delta_c // 2 + 1))
    return _box_mask(height, width, top + d_top, left + d_left, max_r - d_top, max_c - d_left)


def box_gmcnn(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    size: Any = None,  # official mask_shape: 128 at 256²
    margin: Any = None,  # official margin: 8 at 256²
) -> np.ndarray:
    """GMCNN random rectangle: offset uniform in [margin, side - size - margin) per axis."""
    height, width = check_size(height, width)
    rows, cols = (height // 2, width // 2) if size is None else as_pair(size, "size", 1)
    margin_r, margin_c = _pair_or_scaled(margin, "margin", 8, height, width, 0)
    if height - rows - margin_r <= margin_r or width - cols - margin_c <= margin_c:
        raise ValueError(f"box {(rows, cols)} with margin {(margin_r, margin_c)} does not fit")
    top = int(rng.integers(margin_r, height - rows - margin_r))
    left = int(rng.integers(margin_c, width - cols - margin_c))
    return _box_mask(height, width, top, left, rows, cols)


def box_edgeconnect(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """EdgeConnect mode 1: a (H//2) x (W//2) block, top-left uniform (inclusive bounds);
    the column is drawn first, as ``create_mask``."""
    height, width = check_size(height, width)
    rows, cols = height // 2, width // 2
    if rows < 1 or cols < 1:
        raise ValueError("box_edgeconnect needs an image of at least 2 x 2")
    left = int(rng.integers(0, width - cols + 1))
    top = int(rng.integers(0, height - rows + 1))
    return _box_mask(height, width, top, left, rows, cols)


def half_edgeconnect(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """EdgeConnect mode 2: the left half (probability 0.5) or the right half, W//2 columns
    starting at 0 or W//2 (for odd W the last column stays valid, as the official code)."""
    height, width = check_size(height, width)
    cols = width // 2
    if cols < 1:
        raise ValueError("half_edgeconnect needs an image at least 2 pixels wide")
    left = 0 if rng.random() < 0.5 else cols
    return _box_mask(height, width, 0, left, height, cols)
