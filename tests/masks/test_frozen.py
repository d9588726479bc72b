"""Frozen sets: byte-identical reruns, the manifest's numbers, the masks equal
``mask_for_index``, and ``load_frozen`` refusing modified, missing or extra files; the CLI."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import masks
from masks.freeze import main, parse_param

ROOT = Path(__file__).resolve().parents[2]


def _freeze(out, family="strokes_deepfill_v2", count=6, size=64, seed=3, **params):
    return masks.write_frozen(family, count, size, size, seed, out, params)


def _tree(directory):
    return {p.name: p.read_bytes() for p in sorted(Path(directory).iterdir())}


def test_same_seed_same_bytes(tmp_path):
    _freeze(tmp_path / "a")
    _freeze(tmp_path / "b")
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert sorted(a) == [
        "00000.png",
        "00001.png",
        "00002.png",
        "00003.png",
        "00004.png",
        "00005.png",
        "manifest.json",
    ]
    assert a == b
    _freeze(tmp_path / "c", seed=4)
    assert _tree(tmp_path / "c")["00000.png"] != a["00000.png"]


def test_manifest_and_contents(tmp_path):
    manifest = _freeze(tmp_path, family="irregular_bucket", count=4, size=96, bucket="0.2-0.3")
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["family"] == "irregular_bucket" and manifest["seed"] == 3
    assert manifest["resolution"] == [96, 96] and manifest["count"] == 4
    assert manifest["params"] == {"bucket": "0.2-0.3"}
    assert manifest["params_with_defaults"]["max_tries"] == 100
    loaded = masks.load_frozen(tmp_path)
    for i, (entry, mask) in enumerate(zip(manifest["files"], loaded, strict=True)):
        expected = masks.mask_for_index("irregular_bucket", 3, i, 96, 96, bucket="0.2-0.3")
        assert mask.dtype == np.uint8 and np.array_equal(mask, expected)
        data = (tmp_path / entry["name"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["pixel_sha256"] == hashlib.sha256(expected.tobytes()).hexdigest()
        assert entry["hole_ratio"] == masks.hole_ratio(expected)
        assert entry["bucket"] == "0.2-0.3"
        png = Image.open(tmp_path / entry["name"])
        assert png.mode == "L" and set(np.unique(np.asarray(png))) <= {0, 255}
        assert png.info == {}  # no metadata (time stamps, dpi, text)
        assert np.array_equal(np.asarray(png) == 255, expected == 1)  # 255 = hole
    assert manifest["mean_hole_ratio"] == pytest.approx(np.mean([m.mean() for m in loaded]))


def test_load_frozen_refuses_changes(tmp_path):
    _freeze(tmp_path)
    png = tmp_path / "00002.png"
    original = png.read_bytes()
    png.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(ValueError, match="'00002.png' changed"):
        masks.load_frozen(tmp_path)
    png.write_bytes(original)
    masks.load_frozen(tmp_path)
    png.unlink()
    with pytest.raises(ValueError, match="missing file '00002.png'"):
        masks.load_frozen(tmp_path)
    png.write_bytes(original)
    (tmp_path / "00006.png").write_bytes(original)
    with pytest.raises(ValueError, match="extra file '00006.png'"):
        masks.load_frozen(tmp_path)
    (tmp_path / "00006.png").unlink()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["files"][0]["sha256"] = "0" * 64
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="'00000.png' changed"):
        masks.load_frozen(tmp_path)
    with pytest.raises(ValueError, match="no manifest.json"):
        masks.load_frozen(tmp_path / "..")


def test_out_folder_rules(tmp_path):
    _freeze(tmp_path)
    with pytest.raises(ValueError, match="not empty"):
        _freeze(tmp_path)
    masks.write_frozen("center_box", 2, 32, 32, 0, tmp_path, {"size": 8}, overwrite=True)
    assert sorted(_tree(tmp_path)) == ["00000.png", "00001.png", "manifest.json"]
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="other files"):
        masks.write_frozen("center_box", 2, 32, 32, 0, tmp_path, overwrite=True)
    with pytest.raises(ValueError, match="unknown parameter"):
        masks.write_frozen("center_box", 2, 32, 32, 0, tmp_path / "x", {"bad": 1})


def test_cli(tmp_path, capsys):
    out = tmp_path / "cli"
    args = [
        "--family",
        "center_box",
        "--count",
        "3",
        "--resolution",
        "48x64",
        "--seed",
        "0",
        "--out",
        str(out),
        "--param",
        "size=[10,20]",
    ]
    assert main(args) == 0
    assert "wrote 3 center_box masks (48x64" in capsys.readouterr().out
    assert masks.read_manifest(out)["params"] == {"size": [10, 20]}
    assert [m.sum() for m in masks.load_frozen(out)] == [200, 200, 200]
    assert main(args) == 2  # not empty
    assert "not empty" in capsys.readouterr().err
    assert main(["--list-params", "strokes_paper"]) == 0
    assert "max_brush_width = 24" in capsys.readouterr().out
    assert parse_param("bucket=0.3-0.4") == ("bucket", "0.3-0.4")
    assert parse_param("border=true") == ("border", True)
    assert parse_param("size=(64, 32)") == ("size", (64, 32))


def test_module_help():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "masks.freeze", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0
    for text in ("--family", "--param", "255 = hole", "load_frozen", "strokes_deepfill_v2"):
        assert text in result.stdout
