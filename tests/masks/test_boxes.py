"""Box families: exact positions of the centred boxes, pixel-loop references of the official
box algorithms (same RNG draws, same order), and the stated side / position ranges over many
draws (every value of each range reached, nothing outside)."""

from __future__ import annotations

import numpy as np
import pytest

import masks


def _box(mask):
    """(top, left, rows, cols) of a mask that must be exactly one filled rectangle."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    top, left = rows[0], cols[0]
    n_rows, n_cols = rows[-1] - top + 1, cols[-1] - left + 1
    assert mask.sum() == n_rows * n_cols, "not a single filled rectangle"
    return int(top), int(left), int(n_rows), int(n_cols)


def _paint(height, width, top, left, rows, cols):
    """Slow reference rasteriser: a pixel loop."""
    out = np.zeros((height, width), np.uint8)
    for y in range(height):
        for x in range(width):
            if top <= y < top + rows and left <= x < left + cols:
                out[y, x] = 1
    return out


def _draws(family, n, height=256, width=256, **params):
    return [_box(masks.mask_for_index(family, 0, i, height, width, **params)) for i in range(n)]


@pytest.mark.parametrize(
    "height, width, size, expected",
    [
        (128, 128, 64, (32, 32, 64, 64)),  # Context Encoder: [32, 96)²
        (256, 256, 120, (68, 68, 120, 120)),  # Shift-Net: [68, 188)²
        (256, 256, None, (64, 64, 128, 128)),  # GMCNN: [64, 192)²
        (100, 60, (20, 30), (40, 15, 20, 30)),
        (101, 61, None, (25, 15, 50, 30)),
    ],
)
def test_center_box_positions(height, width, size, expected):
    mask = masks.make_mask("center_box", height, width, np.random.default_rng(0), size=size)
    assert _box(mask) == expected
    assert np.array_equal(mask, _paint(height, width, *expected))


def _ref_deepfill_v1(rng, height, width, box, delta, margin=0):
    """random_bbox (top-left exclusive upper bound) + bbox2mask (symmetric shrink)."""
    top = rng.integers(margin, height - margin - box[0])
    left = rng.integers(margin, width - margin - box[1])
    s_r = rng.integers(0, delta[0] // 2 + 1)
    s_c = rng.integers(0, delta[1] // 2 + 1)
    return _paint(height, width, top + s_r, left + s_c, box[0] - 2 * s_r, box[1] - 2 * s_c)


@pytest.mark.parametrize("size", [(256, 256), (512, 384), (96, 160)])
def test_box_deepfill_v1_matches_reference(size):
    height, width = size
    box = (round(height / 2), round(width / 2))
    delta = (round(height / 8), round(width / 8))
    for seed in range(5):
        got = masks.make_mask("box_deepfill_v1", height, width, np.random.default_rng(seed))
        ref = _ref_deepfill_v1(np.random.default_rng(seed), height, width, box, delta)
        assert np.array_equal(got, ref)


def test_box_deepfill_v1_ranges_at_256():
    boxes = _draws("box_deepfill_v1", 2000)
    rows = {b[2] for b in boxes}
    assert rows == set(range(96, 129, 2))  # even sides 96..128, each reached
    assert {b[3] for b in boxes} == rows
    top0 = [b[0] - (128 - b[2]) // 2 for b in boxes]  # top-left before the shrink
    left0 = [b[1] - (128 - b[3]) // 2 for b in boxes]
    assert min(top0) == 0 and max(top0) == 127 and min(left0) == 0 and max(left0) == 127
    fixed = _draws("box_deepfill_v1", 200, fixed=True)
    assert {b[0] + b[2] // 2 for b in fixed} == {128}  # centred, still shrunk
    assert len({b[2] for b in fixed}) > 10
    unshrunk = _draws("box_deepfill_v1", 20, fixed=True, max_delta=0)
    assert set(unshrunk) == {(64, 64, 128, 128)}


def test_box_deepfill_v1_scales_with_the_image():
    boxes = _draws("box_deepfill_v1", 1000, 512, 384)
    assert {b[2] for b in boxes} == set(range(192, 257, 2))
    assert {b[3] for b in boxes} == set(range(144, 193, 2))


def test_box_glcic_ranges():
    boxes = _draws("box_glcic", 1500)
    assert {b[2] for b in boxes} == set(range(96, 129)) == {b[3] for b in boxes}
    assert all(0 <= b[0] <= 256 - b[2] and 0 <= b[1] <= 256 - b[3] for b in boxes)
    assert min(b[0] for b in boxes) == 0 and max(b[0] + b[2] for b in boxes) == 256
    small = _draws("box_glcic", 500, 128, 128)
    assert {b[2] for b in small} == set(range(48, 65))


def _ref_mmagic(rng, height, width, shape=128, delta=40, margin=20):
    top = rng.integers(margin, height - margin - shape)
    left = rng.integers(margin, width - margin - shape)
    d_top = rng.integers(0, delta // 2 + 1)
    d_left = rng.integers(0, delta // 2 + 1)
    return _paint(height, width, top + d_top, left + d_left, shape - d_top, shape - d_left)


def test_box_mmagic_matches_reference_and_ranges():
    for seed in range(5):
        got = masks.make_mask("box_mmagic", 256, 256, np.random.default_rng(seed))
        assert np.array_equal(got, _ref_mmagic(np.random.default_rng(seed), 256, 256))
    boxes = _draws("box_mmagic", 1000)
    assert {b[2] for b in boxes} == set(range(108, 129)) == {b[3] for b in boxes}
    bottoms = [b[0] + b[2] for b in boxes]  # = first top + 128: fixed by the first draw
    assert min(bottoms) == 20 + 128 and max(bottoms) == 107 + 128
    assert 20 <= min(b[0] for b in boxes) and max(b[0] for b in boxes) <= 127


def test_box_gmcnn_offsets():
    boxes = _draws("box_gmcnn", 1200)
    assert {b[2:] for b in boxes} == {(128, 128)}
    assert {b[0] for b in boxes} == set(range(8, 120)) == {b[1] for b in boxes}


def test_edgeconnect_block_and_half():
    boxes = _draws("box_edgeconnect", 1500)
    assert {b[2:] for b in boxes} == {(128, 128)}
    assert {b[0] for b in boxes} == set(range(0, 129)) == {b[1] for b in boxes}
    halves = _draws("half_edgeconnect", 1000, 64, 65)
    assert set(halves) == {(0, 0, 64, 32), (0, 32, 64, 32)}
    left = sum(b[1] == 0 for b in halves)
    assert abs(left - 500) < 4 * np.sqrt(250)  # p = 0.5 within 4 sigma


@pytest.mark.parametrize(
    "family, params, message",
    [
        ("center_box", {"size": 300}, "larger than the image"),
        ("box_deepfill_v1", {"box_size": 256}, "no room"),
        ("box_deepfill_v1", {"max_delta": 256}, "shrink the box"),
        ("box_glcic", {"min_size": 100, "max_size": 90}, "min_size"),
        ("box_mmagic", {"min_margin": 70}, "margin"),
        ("box_gmcnn", {"size": 250}, "does not fit"),
    ],
)
def test_box_parameter_errors(family, params, message):
    with pytest.raises(ValueError, match=message):
        masks.make_mask(family, 256, 256, np.random.default_rng(0), **params)
