"""Free-form stroke families: golden masks, statistics, parameter plumbing.

Golden values: sha256 (first 16 hex digits) and hole-pixel count of
``mask_for_index(family, 2024, i, 256, 256)``, computed once.  The same code was checked bit
for bit against the official functions (DeepFill v2 ``brush_stroke_mask``, DeepFill v1
``random_bbox``/``bbox2mask``, GMCNN ``generate_stroke_mask`` with its three parameter sets,
mmagic ``get_irregular_mask``/``random_bbox``, the six LaMa dataset configs), transliterated
outside the repository with ``np.random`` replaced by the same ``Generator``: 300 of 300 seeds
(150 for LaMa) identical.  Goldens depend on NumPy's ``PCG64``/``Generator`` streams and on the
Pillow / OpenCV rasterisers (Pillow 13.0, OpenCV 5.0 here).

Hole-ratio statistics of every family: ``test_statistics.py``.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import masks

GOLDEN = {
    "strokes_deepfill_v2": [
        ("413722dcb3326323", 704),
        ("8a7908cce91f2c50", 12226),
        ("ee562ac524827435", 9206),
    ],
    "mask_deepfill_v2_train": [
        ("a10ad7591fcd978e", 18569),
        ("79fa158931351c96", 24621),
        ("8bbf9642b8c90621", 17685),
    ],
    "strokes_paper": [
        ("95999ed746e1bfac", 34501),
        ("7cfdc73b08314e85", 49942),
        ("314001458eeca0f4", 39459),
    ],
    "irregular_mmagic": [
        ("1546625ff2c44f17", 29426),
        ("e0e8cbd9429d2cbe", 31346),
        ("c8b8e1f21d701b07", 20293),
    ],
    "lama_thick_256": [
        ("cc1c388c45532319", 11187),
        ("a41f13a5df345b1f", 14667),
        ("d487983bae214d9b", 16512),
    ],
    "lama_medium_512": [
        ("b4eb0d2f87ada49c", 23922),
        ("b2aa4aacf57be743", 21608),
        ("2ff7aa8ce12f1ae8", 18404),
    ],
    "box_deepfill_v1": [
        ("3c8e5ceb460d2af1", 15372),
        ("abdd96ddeb0f2386", 14112),
        ("ddc8085c9934eeab", 12540),
    ],
}


@pytest.mark.parametrize("family", sorted(GOLDEN))
def test_golden_masks(family):
    for index, (digest, count) in enumerate(GOLDEN[family]):
        mask = masks.mask_for_index(family, 2024, index, 256, 256)
        assert int(mask.sum()) == count
        assert hashlib.sha256(mask.tobytes()).hexdigest()[:16] == digest


def test_deepfill_v2_strokes_parameters():
    rng = np.random.default_rng(3)
    # one stroke (max_loops=2), fixed width 12, angles fixed at mean_angle: all vertices on
    # a zig-zag line; every mask is non-empty and the stroke stays thinner than a full disc
    for _ in range(20):
        mask = masks.make_mask(
            "strokes_deepfill_v2", 256, 256, rng, max_loops=2, min_width=12, max_width=13
        )
        assert 0 < mask.sum() < 0.2 * mask.size
    # widths scale the area: thin brushes give smaller holes on the same draws
    thin = [
        masks.mask_for_index("strokes_deepfill_v2", 1, i, 256, 256, min_width=4, max_width=5).sum()
        for i in range(30)
    ]
    thick = [
        masks.mask_for_index(
            "strokes_deepfill_v2", 1, i, 256, 256, min_width=40, max_width=41
        ).sum()
        for i in range(30)
    ]
    assert all(a < b for a, b in zip(thin, thick, strict=True))
    with pytest.raises(ValueError, match="min_width"):
        masks.make_mask("strokes_deepfill_v2", 64, 64, rng, min_width=40, max_width=12)


def test_deepfill_v2_train_mask_contains_a_v1_box():
    for index in range(20):
        full = masks.mask_for_index("mask_deepfill_v2_train", 5, index, 256, 256)
        box = masks.make_mask("box_deepfill_v1", 256, 256, np.random.default_rng([5, index]))
        assert np.all(full >= box) and full.sum() > box.sum()


def test_strokes_paper_structure():
    rng = np.random.default_rng(0)
    # no vertices: every part is the final radius-0 circle, a single pixel
    dots = masks.make_mask("strokes_paper", 128, 128, rng, parts=7, max_vertex=0)
    assert 1 <= dots.sum() <= 7
    # max_angle=0, one vertex: one horizontal segment (angle 2 pi) of width w <= 24 with
    # circle outlines of radius w / 2 at both ends.  sin(2 pi) = -2.4e-16 and the official
    # truncation move the end one row up (quirk kept), so a part spans at most w + 2 rows.
    spans = []
    for _ in range(40):
        mask = masks.make_mask(
            "strokes_paper", 256, 256, rng, parts=1, max_vertex=1, max_angle=0, max_brush_width=24
        )
        rows = np.flatnonzero(mask.any(axis=1))
        spans.append(rows[-1] - rows[0] + 1)
    assert max(spans) == 26 and min(spans) == 1  # widest brush; no vertex -> one dot
    with pytest.raises(ValueError, match="max_brush_width"):
        masks.make_mask("strokes_paper", 64, 64, rng, max_brush_width=8)


def test_irregular_mmagic_area_constraint_and_bound():
    ratios = [
        masks.hole_ratio(masks.mask_for_index("irregular_mmagic", 4, i, 256, 256))
        for i in range(200)
    ]
    assert 0.15 < min(ratios) and max(ratios) < 0.65
    narrow = [
        masks.hole_ratio(
            masks.mask_for_index("irregular_mmagic", 4, i, 256, 256, area_ratio_range=(0.3, 0.35))
        )
        for i in range(50)
    ]
    assert 0.3 < min(narrow) and max(narrow) < 0.35
    with pytest.raises(ValueError, match="after 5 draws"):
        masks.make_mask(
            "irregular_mmagic",
            256,
            256,
            np.random.default_rng(0),
            area_ratio_range=(0.99, 1.0),
            max_tries=5,
        )
