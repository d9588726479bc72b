"""The family contract and the registry API: every family gives binary uint8 (H, W) masks,
deterministic per seed, different across seeds, at square and non-square sizes; unknown names
and parameters are refused with the valid ones listed; buckets, hole ratio, tensors."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest
import torch
from PIL import Image

import masks

DETERMINISTIC = {"center_box", "file"}  # the same mask for every seed (file: per index)
SIZES = [(256, 256), (96, 160), (160, 96), (257, 255)]


@pytest.fixture(scope="module")
def mask_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mask_files")
    rng = np.random.default_rng(7)
    for i in range(3):
        arr = (rng.random((64, 80)) < 0.3).astype(np.uint8) * 255
        Image.fromarray(arr).save(folder / f"m{i}.png")
    return folder


def _params(name, folder):
    return {"path": str(folder)} if name == "file" else {}


def _digest(mask):
    return hashlib.sha256(mask.tobytes()).hexdigest()


@pytest.mark.parametrize("name", sorted(masks.FAMILIES))
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_family_contract(name, size, mask_folder):
    height, width = size
    params = _params(name, mask_folder)
    digests = set()
    for seed in range(4):
        a = masks.mask_for_index(name, seed, 3, height, width, **params)
        b = masks.mask_for_index(name, seed, 3, height, width, **params)
        assert a.dtype == np.uint8 and a.shape == (height, width)
        assert set(np.unique(a)) <= {0, 1}
        assert a.tobytes() == b.tobytes()  # deterministic per (seed, index)
        digests.add(_digest(a))
    if name in DETERMINISTIC:
        assert len(digests) == 1
    else:
        assert len(digests) >= 2, f"{name}: four seeds gave the same mask"


@pytest.mark.parametrize("name", sorted(set(masks.FAMILIES) - {"file"}))
def test_mask_for_index_is_default_rng_of_seed_and_index(name):
    expected = masks.make_mask(name, 64 * 3, 64 * 3, np.random.default_rng([11, 5]))
    assert np.array_equal(masks.mask_for_index(name, 11, 5, 192, 192), expected)


def test_masks_depend_on_index():
    a = masks.mask_for_index("strokes_deepfill_v2", 0, 0, 128, 128)
    b = masks.mask_for_index("strokes_deepfill_v2", 0, 1, 128, 128)
    assert not np.array_equal(a, b)


def test_file_family_receives_the_index(mask_folder):
    files = sorted(mask_folder.glob("*.png"))
    for index in range(5):
        got = masks.mask_for_index("file", 0, index, 64, 80, path=str(mask_folder))
        raw = np.asarray(Image.open(files[index % 3])) > 127
        assert np.array_equal(got, raw.astype(np.uint8))


def test_unknown_family_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown mask family 'nope'.*strokes_deepfill_v2"):
        masks.make_mask("nope", 64, 64, np.random.default_rng(0))


def test_unknown_parameter_names_it_and_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown parameter 'sise'.*center_box.*valid: size"):
        masks.make_mask("center_box", 64, 64, np.random.default_rng(0), sise=3)
    with pytest.raises(ValueError, match="no_param.*valid: \\(none\\)"):
        masks.make_mask("box_edgeconnect", 64, 64, np.random.default_rng(0), no_param=1)


def test_bad_rng_and_sizes():
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        masks.make_mask("center_box", 64, 64, np.random.RandomState(0))
    with pytest.raises(ValueError, match="height"):
        masks.make_mask("center_box", 0, 64, np.random.default_rng(0))
    with pytest.raises(ValueError, match="seed"):
        masks.mask_for_index("center_box", -1, 0, 64, 64)


def test_global_rngs_untouched():
    random.seed(5)
    py_state = random.getstate()
    np.random.seed(123)
    _, keys, pos, *_ = np.random.get_state()
    for name in sorted(set(masks.FAMILIES) - {"file"}):
        masks.mask_for_index(name, 1, 2, 256, 256)
    _, keys_after, pos_after, *_ = np.random.get_state()
    assert np.array_equal(keys_after, keys) and pos_after == pos
    assert random.getstate() == py_state


def test_mask_spec_from_config():
    spec = masks.MaskSpec.from_config({"family": "center_box", "params": {"size": [64, 32]}})
    assert spec.params == {"size": (64, 32)}
    mask = spec(128, 128, np.random.default_rng(0))
    assert mask[32:96, 48:80].all() and mask.sum() == 64 * 32
    assert np.array_equal(spec.for_index(0, 9, 128, 128), mask)
    assert spec.to_dict() == {"family": "center_box", "params": {"size": [64, 32]}}
    assert masks.MaskSpec.from_config({"family": "box_glcic"}).params == {}
    with pytest.raises(ValueError, match="unknown parameter 'bad'"):
        masks.MaskSpec("center_box", {"bad": 1})
    with pytest.raises(ValueError, match="unknown mask family"):
        masks.MaskSpec.from_config({"family": "x"})
    with pytest.raises(ValueError, match="unknown mask config keys"):
        masks.MaskSpec.from_config({"family": "center_box", "size": 3})


def test_family_params_lists_defaults():
    assert masks.family_params("strokes_paper") == {
        "parts": 10,
        "max_vertex": 20,
        "max_length": 100,
        "max_brush_width": 24,
        "max_angle": 360,
    }


def test_to_tensor():
    a = masks.mask_for_index("box_glcic", 0, 0, 32, 48)
    b = masks.mask_for_index("box_glcic", 0, 1, 32, 48)
    one = masks.to_tensor(a)
    assert one.dtype == torch.float32 and one.shape == (1, 1, 32, 48)
    assert torch.equal(one[0, 0], torch.from_numpy(a).float())
    two = masks.to_tensor([a, b])
    assert two.shape == (2, 1, 32, 48) and torch.equal(two[1, 0], torch.from_numpy(b).float())
    with pytest.raises(ValueError, match="differ in size"):
        masks.to_tensor([a, a[:, :10]])
    with pytest.raises(ValueError, match="0 or 1"):
        masks.to_tensor(a * 255)


def test_hole_ratio_and_buckets():
    mask = np.zeros((100, 100), np.uint8)
    mask[:10] = 1
    assert masks.hole_ratio(mask) == 0.1
    assert masks.hole_ratio(torch.from_numpy(mask).float()) == 0.1
    assert list(masks.BUCKETS) == [
        "0.01-0.1",
        "0.1-0.2",
        "0.2-0.3",
        "0.3-0.4",
        "0.4-0.5",
        "0.5-0.6",
    ]
    # (low, high]: left-open, right-closed, as the PartialConv buckets
    cases = {
        0.0: None,
        0.01: None,
        0.010001: "0.01-0.1",
        0.1: "0.01-0.1",
        0.1000001: "0.1-0.2",
        0.25: "0.2-0.3",
        0.6: "0.5-0.6",
        0.61: None,
        1.0: None,
    }
    for ratio, label in cases.items():
        assert masks.bucket_of(ratio) == label, ratio
    assert masks.bucket_of(masks.hole_ratio(mask)) == "0.01-0.1"


@pytest.mark.parametrize(
    "name",
    ["strokes_deepfill_v2", "strokes_paper", "irregular_mmagic", "lama_thin_256", "noise_blob"],
)
def test_non_square_masks_cover_the_long_axis(name):
    """The official stroke codes swap H and W (harmless when square); here strokes must reach
    the far end of a 64 x 512 and of a 512 x 64 image."""
    wide = sum(masks.mask_for_index(name, 0, i, 64, 512) for i in range(8))
    tall = sum(masks.mask_for_index(name, 0, i, 512, 64) for i in range(8))
    assert wide[:, 384:].sum() > 0 and tall[384:, :].sum() > 0
