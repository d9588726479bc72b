"""Bad or unusual image files: each is read correctly or refused with the file named."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from benchmarks.data import DataError, folder_sources, load_image, make_test_set


def test_truncated_file_is_named_and_skippable(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        buf, "PNG"
    )
    (tmp_path / "cut.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "fine.png")
    with pytest.raises(DataError, match="cut.png"):
        load_image(tmp_path / "cut.png")
    with pytest.raises(DataError, match="cut.png"):
        make_test_set(folder_sources(tmp_path), 32, 0, crops_per_image=1)
    with pytest.warns(UserWarning, match="cut.png"):
        _, names = make_test_set(folder_sources(tmp_path), 32, 0, crops_per_image=1, skip_bad=True)
    assert names == ["fine_00"]


def test_sixteen_bit_png_is_scaled_to_eight_bits(tmp_path):
    values = np.array([[0, 257, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    img = load_image(tmp_path / "deep.png")
    assert img.dtype == np.uint8 and img.shape == (1, 3, 3)
    np.testing.assert_array_equal(img[0, :, 0], [0, 1, 255])


def test_grayscale_and_rgba(tmp_path):
    Image.fromarray(np.full((4, 5), 77, np.uint8)).save(tmp_path / "g.png")
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10  # nearly transparent red: alpha is dropped
    Image.fromarray(rgba).save(tmp_path / "a.png")
    np.testing.assert_array_equal(load_image(tmp_path / "g.png"), np.full((4, 5, 3), 77))
    np.testing.assert_array_equal(load_image(tmp_path / "a.png")[..., 0], np.full((4, 5), 200))
    np.testing.assert_array_equal(load_image(tmp_path / "a.png")[..., 1:], 0)


def test_exif_orientation_is_honoured(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(arr).save(tmp_path / "rot.jpg", exif=exif, quality=100)
    img = load_image(tmp_path / "rot.jpg")
    assert img.shape == (40, 20, 3)  # displayed upright: portrait
    assert img[:15].mean() > 200 and img[-15:].mean() < 50  # white half now on top


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 10,000 px > 2 x limit
    with pytest.raises(DataError, match="bomb.png"):
        load_image(tmp_path / "bomb.png")
