"""The ``file`` family: threshold, polarity warning and ``invert``, channel reduction (RGB
max, RGBA over black, palette, 1-bit, 16-bit, 0/1-coded), nearest-neighbour resizing against
a pixel-loop reference, ordering / modulo indexing, list files, clear errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

import masks
from masks.file_masks import read_mask_file


def _save(path, array, mode=None):
    img = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    img.save(path)
    return path


def _read(path, height=None, width=None, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails: the file must be clean
        return read_mask_file(path, height, width, **kwargs)


def test_threshold_and_non_binary_warning(tmp_path):
    levels = np.array([[0, 100, 200, 255]], np.uint8)
    path = _save(tmp_path / "grey.png", levels)
    with pytest.warns(UserWarning, match=r"not binary \(2 pixels.*> 0.5 \* 255"):
        assert read_mask_file(path).tolist() == [[0, 0, 1, 1]]
    with pytest.warns(UserWarning, match="not binary"):
        assert read_mask_file(path, threshold=0.3).tolist() == [[0, 1, 1, 1]]
    with pytest.warns(UserWarning, match="not binary"):  # EdgeConnect: any non-zero is a hole
        assert read_mask_file(path, threshold=0.0).tolist() == [[0, 1, 1, 1]]
    with pytest.raises(ValueError, match="threshold"):
        read_mask_file(path, threshold=1.0)


def test_jpeg_mask_is_thresholded_with_a_warning(tmp_path):
    mask = np.zeros((64, 64), np.uint8)
    mask[16:40, 8:50] = 1
    path = tmp_path / "m.jpg"
    Image.fromarray(mask * 255).save(path, quality=75)
    with pytest.warns(UserWarning, match="anti-aliased or JPEG"):
        got = read_mask_file(path)
    assert np.mean(got != mask) < 0.01


def test_polarity_warning_and_invert(tmp_path):
    valid_white = np.full((50, 40), 255, np.uint8)  # NVIDIA style: white = valid
    valid_white[10:14, 5:9] = 0  # 16 hole pixels
    path = _save(tmp_path / "nvidia.png", valid_white)
    with pytest.warns(UserWarning, match="hole ratio 0.992 > 0.9.*invert=True"):
        read_mask_file(path)
    flipped = _read(path, invert=True)
    assert flipped.sum() == 16 and flipped[10:14, 5:9].all()
    got = masks.make_mask("file", 50, 40, np.random.default_rng(0), path=str(tmp_path), invert=True)
    assert np.array_equal(got, flipped)


def test_channel_reduction(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)  # a hole painted red still counts (max over channels)
    rgb[1, 1] = (255, 255, 255)
    assert np.flatnonzero(_read(_save(tmp_path / "rgb.png", rgb))).tolist() == [0, 5]

    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 0] = (255, 255, 255, 255)  # opaque white: hole
    rgba[0, 1] = (255, 255, 255, 0)  # transparent white: valid
    rgba[0, 2] = (0, 0, 0, 255)  # opaque black: valid
    rgba[1, :] = (255, 255, 255, 255)
    assert _read(_save(tmp_path / "rgba.png", rgba)).tolist() == [[1, 0, 0], [1, 1, 1]]

    grey = np.array([[0, 255], [255, 0]], np.uint8)
    for mode in ("P", "LA", "1"):
        assert _read(_save(tmp_path / f"m_{mode}.png", grey, mode)).tolist() == [[0, 1], [1, 0]]


def test_zero_one_and_16_bit_encodings(tmp_path):
    coded01 = np.array([[0, 1, 1], [0, 0, 1]], np.uint8)  # 0/1 PNG: full scale 1
    assert _read(_save(tmp_path / "01.png", coded01)).tolist() == coded01.tolist()
    deep = (coded01.astype(np.uint16) * 65535).astype(np.uint16)
    path = tmp_path / "16.png"
    Image.fromarray(deep).save(path)
    assert _read(path).tolist() == coded01.tolist()


@pytest.mark.parametrize("src, dst", [((7, 5), (20, 13)), ((20, 13), (7, 5)), ((8, 8), (8, 8))])
def test_nearest_neighbour_resize(tmp_path, src, dst):
    mask = (np.random.default_rng(1).random(src) < 0.5).astype(np.uint8)
    path = _save(tmp_path / "m.png", mask * 255)
    got = _read(path, *dst, polarity_warning=1.0)
    ref = np.zeros(dst, np.uint8)  # pixel centres: source index floor((i + 0.5) * src / dst)
    for y in range(dst[0]):
        for x in range(dst[1]):
            ref[y, x] = mask[int((y + 0.5) * src[0] / dst[0]), int((x + 0.5) * src[1] / dst[1])]
    assert np.array_equal(got, ref)


def test_sorted_order_modulo_and_random_choice(tmp_path):
    for name, row in (("b.png", 1), ("a.png", 0), ("c.png", 2)):
        arr = np.zeros((3, 3), np.uint8)
        arr[row] = 255
        _save(tmp_path / name, arr)
    (tmp_path / "notes.txt").write_text("not a mask")
    for index in range(7):
        got = masks.mask_for_index("file", 9, index, 3, 3, path=str(tmp_path))
        assert np.flatnonzero(got.any(axis=1)).tolist() == [index % 3]
    a = masks.make_mask("file", 3, 3, np.random.default_rng(4), path=str(tmp_path))
    b = masks.make_mask("file", 3, 3, np.random.default_rng(4), path=str(tmp_path))
    assert np.array_equal(a, b)
    rows = {
        int(
            np.flatnonzero(
                masks.make_mask("file", 3, 3, np.random.default_rng(s), path=str(tmp_path)).any(
                    axis=1
                )
            )[0]
        )
        for s in range(30)
    }
    assert rows == {0, 1, 2}


def test_flist_keeps_listed_order_and_resolves_relative_paths(tmp_path):
    sub = tmp_path / "m"
    sub.mkdir()
    for row in range(2):
        arr = np.zeros((2, 2), np.uint8)
        arr[row] = 255
        _save(sub / f"{row}.png", arr)
    flist = tmp_path / "test.flist"
    flist.write_text(f"m/1.png\n{sub / '0.png'}\n\n")
    first = masks.mask_for_index("file", 0, 0, 2, 2, path=str(flist))
    second = masks.mask_for_index("file", 0, 1, 2, 2, path=str(flist))
    assert first.tolist() == [[0, 0], [1, 1]] and second.tolist() == [[1, 1], [0, 0]]
    flist.write_text("m/1.png\nm/missing.png\n")
    with pytest.raises(ValueError, match="cannot read mask file .*missing.png"):
        masks.mask_for_index("file", 0, 1, 2, 2, path=str(flist))


def test_missing_and_empty_sources(tmp_path):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="does not exist"):
        masks.make_mask("file", 8, 8, rng, path=str(tmp_path / "nope"))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("x")
    with pytest.raises(ValueError, match="holds no mask images"):
        masks.make_mask("file", 8, 8, rng, path=str(empty))
    (tmp_path / "e.flist").write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        masks.make_mask("file", 8, 8, rng, path=str(tmp_path / "e.flist"))
    with pytest.raises(ValueError, match="needs path="):
        masks.make_mask("file", 8, 8, rng)
    (empty / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read mask file .*bad.png"):
        masks.make_mask("file", 8, 8, rng, path=str(empty))
