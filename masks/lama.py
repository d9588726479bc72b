"""LaMa evaluation masks: random thin / medium / thick at 256 and 512 (Suvorov et al., WACV
2022, "narrow / medium / wide").

Follows advimman/lama ``saicinpainting/training/data/masks.py`` (``MixedMaskGenerator``,
``RandomIrregularMaskGenerator`` -> ``make_random_irregular_mask``,
``RandomRectangleMaskGenerator`` -> ``make_random_rectangle_mask``), driven as
``bin/gen_mask_dataset.py`` drives it, with ``configs/data_gen/random_{thin,medium,thick}_
{256,512}.yaml`` (``protocol.md`` section 3.9):

- one generator per mask, irregular with probability ``1 / (1 + box_proba)``, box otherwise
  (``rng.choice`` over the renormalised probabilities; no union);
- irregular: ``integers(min_times, max_times + 2)`` strokes, i.e. min_times..max_times + 1.
  The "+1" is the official behaviour: without a ramp ``RandomIrregularMaskGenerator`` passes
  ``max_times + 1`` to ``make_random_irregular_mask``, which draws ``randint(min, max + 1)``.
  Per stroke ``i``: start x (column), then y (row), uniform; ``1 + integers(0, 5)`` segments;
  per segment ``angle = 0.01 + integers(0, max_angle)`` rad (``2 * 3.1415926 - angle`` when
  the *stroke* index is even), ``length = 10 + integers(0, max_len)``, ``width = 5 +
  integers(0, max_width)``; end = start + length * (sin, cos)(angle) on (x, y), truncated,
  clipped to [0, W] x [0, H]; an OpenCV line;
- box: ``integers(min_times, max_times + 1)`` boxes; side cap ``min(bbox_max_size + 1, H - 2
  margin, W - 2 margin)`` (the "+1" again from the ramp-free generator), each side
  ``integers(bbox_min_size, cap)`` (width first), top-left uniform inside the margin;
- ``gen_mask_dataset.py`` draws 5 candidates per image and drops those covering more than
  ``max_tamper_area = 0.5``; keeping the first candidate at or below 0.5 has the same
  distribution, so masks are redrawn (at most ``max_tries`` times, ``ValueError`` after).

Deviations: the official generators use the global NumPy RNG (no seed); here ``rng``.  The
official dataset generates masks on the image resized to short side 256/512 (non-square) and
then takes a random square crop overlapping the mask; here the mask is drawn directly at
(H, W) (identical for square images).  The never-firing "empty mask" guard is not reproduced.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from ._common import as_int, check_size

__all__ = [
    "lama_mixed",
    "lama_irregular",
    "lama_box",
    "LAMA_PRESETS",
    "lama_thin_256",
    "lama_medium_256",
    "lama_thick_256",
    "lama_thin_512",
    "lama_medium_512",
    "lama_thick_512",
]

_TWO_PI_OFFICIAL = 2 * 3.1415926  # the official constant, not math.tau


def lama_irregular(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    max_angle: int,
    max_len: int,
    max_width: int,
    min_times: int,
    max_times: int,
) -> np.ndarray:
    """``make_random_irregular_mask`` with ``max_times`` already including the ramp's +1."""
    mask = np.zeros((height, width), np.uint8)
    for i in range(int(rng.integers(min_times, max_times + 1))):
        x = int(rng.integers(0, width))
        y = int(rng.integers(0, height))
        for _ in range(1 + int(rng.integers(0, 5))):
            angle = 0.01 + int(rng.integers(0, max_angle))
            if i % 2 == 0:
                angle = _TWO_PI_OFFICIAL - angle
            length = 10 + int(rng.integers(0, max_len))
            brush = 5 + int(rng.integers(0, max_width))
            end_x = min(max(int(x + length * math.sin(angle)), 0), width)
            end_y = min(max(int(y + length * math.cos(angle)), 0), height)
            cv2.line(mask, (x, y), (end_x, end_y), 1, brush)
            x, y = end_x, end_y
    return mask


def lama_box(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    margin: int,
    bbox_min_size: int,
    bbox_max_size: int,
    min_times: int,
    max_times: int,
) -> np.ndarray:
    """``make_random_rectangle_mask`` with ``bbox_max_size`` already including the ramp's +1."""
    mask = np.zeros((height, width), np.uint8)
    cap = min(bbox_max_size, height - margin * 2, width - margin * 2)
    if cap <= bbox_min_size:
        raise ValueError(
            f"LaMa box: bbox_min_size {bbox_min_size} does not fit a {height}x{width} image "
            f"with margin {margin}"
        )
    for _ in range(int(rng.integers(min_times, max_times + 1))):
        box_w = int(rng.integers(bbox_min_size, cap))
        box_h = int(rng.integers(bbox_min_size, cap))
        x = int(rng.integers(margin, width - margin - box_w + 1))
        y = int(rng.integers(margin, height - margin - box_h + 1))
        mask[y : y + box_h, x : x + box_w] = 1
    return mask


def lama_mixed(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    irregular_proba: float = 1.0,
    max_angle: int = 4,
    max_len: int = 100,
    max_width: int = 50,
    min_times: int = 4,
    max_times: int = 5,
    box_proba: float = 0.3,
    box_margin: int = 0,
    bbox_min_size: int = 10,
    bbox_max_size: int = 50,
    box_min_times: int = 1,
    box_max_times: int = 5,
    max_tamper_area: float = 0.5,  # gen_mask_dataset: masks covering more are dropped
    max_tries: int = 100,
) -> np.ndarray:
    """LaMa ``MixedMaskGenerator`` (irregular + box, one per mask) with the dataset filter.

    Parameter names follow the YAML configs (``irregular_kwargs``: max_angle, max_len,
    max_width, min_times, max_times; ``box_kwargs`` prefixed ``box_``/``bbox_``); defaults are
    ``random_medium_256``.  The presets ``lama_{thin,medium,thick}_{256,512}`` fix them.
    """
    height, width = check_size(height, width)
    if irregular_proba < 0 or box_proba < 0 or irregular_proba + box_proba <= 0:
        raise ValueError("irregular_proba and box_proba must be >= 0 with a positive sum")
    if not 0 < max_tamper_area <= 1:
        raise ValueError(f"max_tamper_area must be in (0, 1], got {max_tamper_area}")
    irregular = dict(
        max_angle=as_int(max_angle, "max_angle", 1),
        max_len=as_int(max_len, "max_len", 1),
        max_width=as_int(max_width, "max_width", 1),
        min_times=as_int(min_times, "min_times", 0),
        max_times=as_int(max_times, "max_times", 0) + 1,  # RandomIrregularMaskGenerator
    )
    box = dict(
        margin=as_int(box_margin, "box_margin", 0),
        bbox_min_size=as_int(bbox_min_size, "bbox_min_size", 1),
        bbox_max_size=as_int(bbox_max_size, "bbox_max_size", 1) + 1,  # RandomRectangle...
        min_times=as_int(box_min_times, "box_min_times", 0),
        max_times=as_int(box_max_times, "box_max_times", 0),
    )
    if irregular["max_times"] <= irregular["min_times"] or box["max_times"] < box["min_times"]:
        raise ValueError("max_times must be >= min_times")
    gens: list[Callable[[], np.ndarray]] = []
    probas: list[float] = []
    if irregular_proba > 0:
        gens.append(lambda: lama_irregular(height, width, rng, **irregular))
        probas.append(float(irregular_proba))
    if box_proba > 0:
        gens.append(lambda: lama_box(height, width, rng, **box))
        probas.append(float(box_proba))
    p = np.asarray(probas, np.float32)  # float32 and renormalised, as MixedMaskGenerator
    p /= p.sum()
    for _ in range(as_int(max_tries, "max_tries", 1)):
        kind = int(rng.choice(len(gens), p=p))  # drawn even with one generator, as official
        mask = gens[kind]()
        if np.count_nonzero(mask) / mask.size <= max_tamper_area:
            return mask
    raise ValueError(
        f"lama_mixed: no mask covering <= {max_tamper_area} of a {height}x{width} image in "
        f"{max_tries} draws (each preset is made for its nominal size, 256 or 512)"
    )


# Name -> parameters from advimman/lama configs/data_gen/random_<name>.yaml.
LAMA_PRESETS: dict[str, dict[str, Any]] = {
    "thin_256": dict(
        max_angle=4, max_len=40, max_width=10, min_times=4, max_times=50, box_proba=0.0
    ),
    "medium_256": dict(
        max_angle=4,
        max_len=100,
        max_width=50,
        min_times=4,
        max_times=5,
        box_proba=0.3,
        box_margin=0,
        bbox_min_size=10,
        bbox_max_size=50,
        box_min_times=1,
        box_max_times=5,
    ),
    "thick_256": dict(
        max_angle=4,
        max_len=200,
        max_width=100,
        min_times=1,
        max_times=5,
        box_proba=0.3,
        box_margin=10,
        bbox_min_size=30,
        bbox_max_size=150,
        box_min_times=1,
        box_max_times=3,
    ),
    "thin_512": dict(
        max_angle=4, max_len=100, max_width=20, min_times=4, max_times=70, box_proba=0.0
    ),
    "medium_512": dict(
        max_angle=4,
        max_len=200,
        max_width=100,
        min_times=4,
        max_times=10,
        box_proba=0.3,
        box_margin=0,
        bbox_min_size=30,
        bbox_max_size=150,
        box_min_times=1,
        box_max_times=5,
    ),
    "thick_512": dict(
        max_angle=4,
        max_len=450,
        max_width=250,
        min_times=1,
        max_times=5,
        box_proba=0.3,
        box_margin=10,
        bbox_min_size=30,
        bbox_max_size=300,
        box_min_times=1,
        box_max_times=4,
    ),
}


def _preset(name: str) -> Callable[..., np.ndarray]:
    preset = LAMA_PRESETS[name]

    def family(
        height: int,
        width: int,
        rng: np.random.Generator,
        *,
        max_tamper_area: float = 0.5,
        max_tries: int = 100,
    ) -> np.ndarray:
        return lama_mixed(
            height, width, rng, max_tamper_area=max_tamper_area, max_tries=max_tries, **preset
        )

    family.__name__ = family.__qualname__ = f"lama_{name}"
    family.__doc__ = (
        f"LaMa ``random_{name}`` masks (``configs/data_gen/random_{name}.yaml``): "
        + ", ".join(f"{k}={v}" for k, v in preset.items())
        + ".  See ``lama_mixed`` for the algorithm; use ``lama_mixed`` to change parameters."
    )
    return family


lama_thin_256 = _preset("thin_256")
lama_medium_256 = _preset("medium_256")
lama_thick_256 = _preset("thick_256")
lama_thin_512 = _preset("thin_512")
lama_medium_512 = _preset("medium_512")
lama_thick_512 = _preset("thick_512")
