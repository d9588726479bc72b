"""The hole-centred local window (zoo/layers/local_patch.py) against a per-pixel loop written
here, over multi-blob, border-touching and empty masks, plus the official boxes of DeepFill v1
(``random_bbox`` + symmetric ``bbox2mask`` shrink: the window is the unshrunk box) and GMCNN
(a rectangle of the window's size: the window is the rectangle), the crop and the resolution
scaling shared by DeepFill v1 and GMCNN."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zoo.layers.local_patch import crop_windows, hole_windows, scaled_window_size

DT = torch.float64


def loop_window(mask2d: torch.Tensor, size: tuple[int, int]) -> tuple[int, int]:
    """Corner of the window centred on the hole bounding box, one pixel at a time."""
    h, w = mask2d.shape
    rows = [r for r in range(h) for c in range(w) if mask2d[r, c] > 0.5]
    cols = [c for r in range(h) for c in range(w) if mask2d[r, c] > 0.5]
    r0, r1 = (min(rows), max(rows)) if rows else (0, h - 1)
    c0, c1 = (min(cols), max(cols)) if cols else (0, w - 1)
    top = min(max(math.floor((r0 + r1 + 1 - size[0]) / 2), 0), h - size[0])
    left = min(max(math.floor((c0 + c1 + 1 - size[1]) / 2), 0), w - size[1])
    return top, left


def blob_masks(seed: int, n: int = 8, h: int = 32, w: int = 40) -> torch.Tensor:
    """Several random boxes per sample (borders included), a sparse-noise sample, an empty one
    and one touching the top-right corner."""
    rng = np.random.default_rng(seed)
    masks = torch.zeros(n, 1, h, w, dtype=DT)
    for i in range(n - 3):
        for _ in range(int(rng.integers(1, 4))):
            t, left = int(rng.integers(0, h)), int(rng.integers(0, w))
            dh, dw = int(rng.integers(1, 14)), int(rng.integers(1, 14))
            masks[i, 0, t : t + dh, left : left + dw] = 1
    g = torch.Generator().manual_seed(seed)
    masks[n - 3] = (torch.rand(1, h, w, generator=g) > 0.97).to(DT)  # scattered pixels
    masks[n - 2] = 0  # no hole: the centred window
    masks[n - 1, :, 0:3, w - 5 : w] = 1  # at the border: clipped
    return masks


@pytest.mark.parametrize(
    "size", [(8, 8), (11, 11), (12, 20), (16, 16), (31, 31), (31, 7), (32, 40)]
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_windows_match_pixel_loop(size, seed) -> None:
    masks = blob_masks(seed)
    corners = hole_windows(masks, size)
    want = [loop_window(m[0], size) for m in masks]
    assert corners.dtype == torch.int64
    assert corners.tolist() == [list(c) for c in want]
    for m, (t, left) in zip(masks, want):  # a hole that fits lies inside its window
        rows, cols = np.nonzero(m[0].numpy())
        if len(rows) and np.ptp(rows) < size[0] and np.ptp(cols) < size[1]:
            assert t <= rows.min() and rows.max() < t + size[0]
            assert left <= cols.min() and cols.max() < left + size[1]


def test_int_size_is_square_and_threshold_is_half() -> None:
    masks = blob_masks(3)
    assert torch.equal(hole_windows(masks, 9), hole_windows(masks, (9, 9)))
    assert torch.equal(hole_windows(masks * 0.75, 9), hole_windows(masks, 9))  # > 0.5 is hole
    assert torch.equal(hole_windows(masks * 0.25, 9), hole_windows(masks * 0, 9))


def test_official_deepfill_v1_box_is_recovered() -> None:
    """random_bbox (128 x 128 in 256 x 256) shrunk by bbox2mask by the same random amount at
    both ends of each axis: the window is the unshrunk box."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        t, left = (int(v) for v in rng.integers(0, 129, size=2))
        dh, dw = (int(v) for v in rng.integers(0, 17, size=2))
        mask = torch.zeros(1, 1, 256, 256)
        mask[..., t + dh : t + 128 - dh, left + dw : left + 128 - dw] = 1
        assert hole_windows(mask, (128, 128)).tolist() == [[t, left]]


def test_official_gmcnn_rectangle_is_the_window() -> None:
    rng = np.random.default_rng(1)
    mask = torch.zeros(6, 1, 256, 256)
    boxes = [(int(a), int(b)) for a, b in rng.integers(0, 129, size=(6, 2))]
    for i, (t, left) in enumerate(boxes):
        mask[i, :, t : t + 128, left : left + 128] = 1
    assert hole_windows(mask, 128).tolist() == [list(b) for b in boxes]


def test_crop_windows_is_slicing_and_differentiable() -> None:
    g = torch.Generator().manual_seed(4)
    x = torch.rand(3, 2, 10, 12, generator=g, dtype=DT, requires_grad=True)
    corners = torch.tensor([[0, 5], [4, 0], [2, 3]])
    patches = crop_windows(x, corners, (6, 7))
    for i, (t, left) in enumerate(corners.tolist()):
        assert torch.equal(patches[i], x[i, :, t : t + 6, left : left + 7])
    patches.sum().backward()
    counts = torch.zeros_like(x)
    for i, (t, left) in enumerate(corners.tolist()):
        counts[i, :, t : t + 6, left : left + 7] = 1
    assert torch.equal(x.grad, counts)
    assert torch.equal(crop_windows(x, corners, 5), crop_windows(x, corners, (5, 5)))


@pytest.mark.parametrize(
    "local, image, h, w, want",
    [(128, 256, 256, 256, (128, 128)), (128, 256, 64, 32, (32, 16)), (16, 32, 40, 24, (20, 12)),
     (100, 256, 64, 64, (25, 25)), (8, 256, 16, 16, (1, 1)), (256, 256, 48, 40, (48, 40))],
)  # fmt: skip
def test_scaled_window_size(local, image, h, w, want) -> None:
    assert scaled_window_size(local, image, h, w) == want
    assert want == (max(1, math.floor(h * local / image)), max(1, math.floor(w * local / image)))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        hole_windows(torch.zeros(1, 1, 10, 10), 11)
    with pytest.raises(ValueError, match="does not fit"):
        hole_windows(torch.zeros(1, 1, 10, 10), (4, 0))
    with pytest.raises(ValueError, match="N x 1"):
        hole_windows(torch.zeros(1, 3, 10, 10), 4)
    with pytest.raises(TypeError, match="pair of ints"):
        hole_windows(torch.zeros(1, 1, 10, 10), (4, 4, 4))
    with pytest.raises(ValueError, match="corners must be N x 2"):
        crop_windows(torch.zeros(2, 3, 8, 8), torch.zeros(3, 2, dtype=torch.long), 4)
    with pytest.raises(ValueError, match="local_size"):
        scaled_window_size(300, 256, 64, 64)
