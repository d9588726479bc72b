"""Data sources and splits: no leakage, determinism, clear errors before any model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.data import (
    EMBEDDED_TEST,
    DataError,
    TrainSampler,
    embedded_sources,
    folder_sources,
    load_image,
    make_test_set,
    split_sources,
)


@pytest.fixture(scope="module")
def embedded_split():
    return split_sources(embedded_sources(), EMBEDDED_TEST, 0.0)


def test_embedded_split_has_no_leakage(embedded_split):
    train, test = embedded_split
    train_src, test_src = {s.source for s in train}, {s.source for s in test}
    assert train_src.isdisjoint(test_src)
    assert test_src == set(EMBEDDED_TEST)
    assert len(train_src) >= 5
    # the stereo pair is one scene: both views are on the same side of the split
    motorcycle = [s for s in train + test if "motorcycle" in s.path.name]
    assert len(motorcycle) == 2 and all(s in train for s in motorcycle)
    # and no training file has the same pixels as a test file
    test_hashes = {load_image(s.path).tobytes().__hash__() for s in test}
    assert all(load_image(s.path).tobytes().__hash__() not in test_hashes for s in train)


def test_test_crops_come_only_from_test_photographs(embedded_split):
    train, test = embedded_split
    images, names = make_test_set(test, 64, seed=0, crops_per_image=3)
    assert images.shape == (6, 3, 64, 64) and len(set(names)) == 6
    sources = [load_image(s.path) for s in test]
    for img in images:
        crop = np.round((img.permute(1, 2, 0).numpy() + 1) * 127.5).astype(np.uint8)
        assert any(_contains(src, crop) for src in sources)


def _contains(big: np.ndarray, crop: np.ndarray) -> bool:
    """Whether ``crop`` occurs in ``big`` at some offset (search on the first row)."""
    h, w = crop.shape[:2]
    for top in range(big.shape[0] - h + 1):
        for left in np.flatnonzero((big[top, : big.shape[1] - w + 1] == crop[0, 0]).all(-1)):
            if np.array_equal(big[top : top + h, left : left + w], crop):
                return True
    return False


def test_sampling_is_a_pure_function_of_seed_and_step(embedded_split):
    train, _ = embedded_split
    a = TrainSampler(train, 32, seed=7).batch(5, 3)
    b = TrainSampler(train, 32, seed=7).batch(5, 3)
    c = TrainSampler(train, 32, seed=7).batch(6, 3)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= -1 and a.max() <= 1
    assert torch.equal(make_test_set(train, 32, 3)[0], make_test_set(train, 32, 3)[0])


def test_folder_errors_come_first(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        folder_sources(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        folder_sources(tmp_path / "empty")


def test_unreadable_image_is_named_or_skipped(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(3):
        Image.fromarray(np.full((40, 50, 3), 60 * i, np.uint8)).save(root / f"ok{i}.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    sources = folder_sources(root)
    with pytest.raises(DataError, match="broken.png"):
        make_test_set(sources, 32, 0)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        images, names = make_test_set(sources, 32, 0, crops_per_image=1, skip_bad=True)
    assert sorted(names) == ["ok0_00", "ok1_00", "ok2_00"]


def test_flist_and_small_images_and_grayscale(tmp_path):
    Image.fromarray(np.full((20, 30), 200, np.uint8)).save(tmp_path / "gray.png")
    Image.fromarray(np.zeros((64, 64, 4), np.uint8)).save(tmp_path / "rgba.png")
    (tmp_path / "list.flist").write_text("gray.png\nrgba.png\n")
    sources = folder_sources(tmp_path / "list.flist")
    images, _ = make_test_set(sources, 32, 0, policy="center")
    assert images.shape == (2, 3, 32, 32)  # the 20x30 image was resized up, gray -> RGB
    torch.testing.assert_close(images[0], torch.full((3, 32, 32), 200 / 127.5 - 1))
    (tmp_path / "bad.flist").write_text("gray.png\nmissing.png\n")
    with pytest.raises(DataError, match="missing"):
        folder_sources(tmp_path / "bad.flist")
