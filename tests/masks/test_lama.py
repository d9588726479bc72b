"""LaMa families: the preset table against protocol.md section 3.9, the mixing probability, the
box side and stroke-count bounds including the official "+1" of the ramp-free generators, and
the dataset's 50 % area filter.  (Bit-exactness against the official code: test_strokes.py.)"""

from __future__ import annotations

import numpy as np
import pytest

import masks
import masks.lama as lama

# protocol.md section 3.9: irregular (min_times, max_times, max_width, max_angle, max_len);
# box (box_proba, margin, min size, max size, min_times, max_times)
TABLE = {
    "thin_256": ((4, 50, 10, 4, 40), None),
    "medium_256": ((4, 5, 50, 4, 100), (0.3, 0, 10, 50, 1, 5)),
    "thick_256": ((1, 5, 100, 4, 200), (0.3, 10, 30, 150, 1, 3)),
    "thin_512": ((4, 70, 20, 4, 100), None),
    "medium_512": ((4, 10, 100, 4, 200), (0.3, 0, 30, 150, 1, 5)),
    "thick_512": ((1, 5, 250, 4, 450), (0.3, 10, 30, 300, 1, 4)),
}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_presets_match_the_protocol_table(name):
    preset = lama.LAMA_PRESETS[name]
    irregular, box = TABLE[name]
    keys = ("min_times", "max_times", "max_width", "max_angle", "max_len")
    assert tuple(preset[k] for k in keys) == irregular
    if box is None:
        assert preset["box_proba"] == 0
    else:
        keys = (
            "box_proba",
            "box_margin",
            "bbox_min_size",
            "bbox_max_size",
            "box_min_times",
            "box_max_times",
        )
        assert tuple(preset[k] for k in keys) == box
    assert "lama_" + name in masks.FAMILIES


def _box_sides(mask):
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    n_rows, n_cols = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    assert mask.sum() == n_rows * n_cols
    return rows[0], cols[0], n_rows, n_cols


def test_single_box_sides_reach_bbox_max_size():
    boxes = [
        _box_sides(
            masks.mask_for_index(
                "lama_mixed",
                0,
                i,
                128,
                96,
                irregular_proba=0,
                box_proba=1,
                box_margin=10,
                bbox_min_size=10,
                bbox_max_size=50,
                box_min_times=1,
                box_max_times=1,
            )
        )
        for i in range(800)
    ]
    # sides in [10, 50], 50 included (RandomRectangleMaskGenerator passes bbox_max_size + 1)
    assert {b[2] for b in boxes} == set(range(10, 51)) == {b[3] for b in boxes}
    assert min(b[0] for b in boxes) == 10 and max(b[0] + b[2] for b in boxes) == 118
    assert min(b[1] for b in boxes) == 10 and max(b[1] + b[3] for b in boxes) == 86
    # the side cap min(bbox_max_size + 1, H - 2 margin, W - 2 margin) bounds the sides
    capped = masks.make_mask(
        "lama_mixed",
        40,
        40,
        np.random.default_rng(0),
        irregular_proba=0,
        box_margin=5,
        bbox_min_size=10,
        bbox_max_size=100,
    )
    assert capped[:5].sum() == capped[-5:].sum() == 0


def test_irregular_stroke_count_includes_the_ramp_plus_one():
    # min_times = max_times = 0: the official generator draws randint(0, 0 + 2) strokes
    counts = [
        masks.mask_for_index(
            "lama_mixed", 1, i, 64, 64, box_proba=0, min_times=0, max_times=0
        ).sum()
        for i in range(100)
    ]
    empty = sum(c == 0 for c in counts)
    assert 25 < empty < 75  # about half the masks have one stroke


def test_stroke_width_and_length_bounds():
    # max_width=1, max_len=1: every segment is 10 px long and 5 px wide, at most
    # 5 segments per stroke and 2 strokes (min_times=max_times=1, +1): the hole is small
    for i in range(50):
        mask = masks.mask_for_index(
            "lama_mixed",
            2,
            i,
            256,
            256,
            box_proba=0,
            min_times=1,
            max_times=1,
            max_width=1,
            max_len=1,
        )
        assert 0 < mask.sum() <= 2 * 5 * (10 + 5) * 6


def test_box_probability(monkeypatch):
    calls = {"box": 0}
    real_box = lama.lama_box

    def counting_box(*args, **kwargs):
        calls["box"] += 1
        return real_box(*args, **kwargs)

    monkeypatch.setattr(lama, "lama_box", counting_box)
    n = 1500
    for i in range(n):
        masks.mask_for_index("lama_medium_256", 3, i, 64, 64, max_tamper_area=1.0)
    p = 0.3 / 1.3
    assert abs(calls["box"] / n - p) < 4 * np.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("name, size", [("lama_thick_256", 256), ("lama_thin_256", 256)])
def test_tamper_area_filter(name, size):
    ratios = [masks.hole_ratio(masks.mask_for_index(name, 0, i, size, size)) for i in range(150)]
    assert max(ratios) <= 0.5
    strict = [
        masks.hole_ratio(masks.mask_for_index(name, 0, i, size, size, max_tamper_area=0.2))
        for i in range(50)
    ]
    assert max(strict) <= 0.2
    with pytest.raises(ValueError, match="in 3 draws"):
        masks.make_mask(
            name, size, size, np.random.default_rng(0), max_tamper_area=1e-6, max_tries=3
        )
