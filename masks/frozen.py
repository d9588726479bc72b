"""Frozen evaluation mask sets: write once with a seed, verify on every load.

``protocol.md`` section 2, pitfall 11: mmagic redraws test masks every run and LaMa fixes no
seed, so their rows are not reproducible.  A frozen set is a folder

- ``00000.png``, ``00001.png``, ...: 8-bit grayscale PNG, **255 = hole**, 0 = valid, written by
  Pillow with fixed settings and no metadata (no time stamp), so the same software and seed
  give the same bytes;
- ``manifest.json``: family, params (as given, and merged with the code defaults), seed,
  resolution [H, W], count, the RNG rule
  (``np.random.default_rng([seed, index])``, see ``mask_for_index``), library versions, and
  per file its ``sha256`` (of the PNG bytes), ``pixel_sha256`` (of the (H, W) uint8 {0, 1}
  array, C order: comparable across zlib builds that compress differently), hole ratio and
  PartialConv bucket.

``load_frozen`` refuses (``ValueError`` naming the file) a set with a missing, extra or
modified file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import PIL
from PIL import Image

from ._common import bucket_of, check_size, hole_ratio
from ._registry import MaskSpec, family_params

__all__ = ["write_frozen", "load_frozen", "read_manifest", "encode_png", "MANIFEST", "FORMAT"]

MANIFEST = "manifest.json"
FORMAT = "inpaintbench-frozen-masks/1"
_NAME = re.compile(r"^\d{5,}\.png$")


def _file_name(index: int, count: int) -> str:
    return f"{index:0{max(5, len(str(count - 1)))}d}.png"


def encode_png(mask: np.ndarray) -> bytes:
    """PNG bytes (mode L, 0/255, 255 = hole) of a {0, 1} mask, deterministic."""
    buffer = io.BytesIO()
    Image.fromarray((mask * 255).astype(np.uint8)).save(
        buffer, format="PNG", optimize=False, compress_level=9
    )
    return buffer.getvalue()


def _pixel_sha256(mask: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(mask, dtype=np.uint8).tobytes()).hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"{str(out)!r} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    present = sorted(p.name for p in out.iterdir())
    if not present:
        return
    if not overwrite:
        raise ValueError(f"{str(out)!r} is not empty; pass overwrite=True (--overwrite)")
    foreign = [n for n in present if n != MANIFEST and not _NAME.match(n)]
    if foreign:
        raise ValueError(f"refusing to overwrite {str(out)!r}: it holds other files {foreign[:5]}")
    for name in present:
        (out / name).unlink()


def write_frozen(
    family: str,
    count: int,
    height: int,
    width: int,
    seed: int,
    out: str | os.PathLike,
    params: dict[str, Any] | None = None,
    *,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write ``count`` masks of ``family`` (mask i = ``mask_for_index(family, seed, i, ...)``)
    and the manifest into ``out``; returns the manifest."""
    spec = MaskSpec(family, dict(params or {}))
    height, width = check_size(height, width)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive int, got {count!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    out = Path(out)
    _prepare_out(out, overwrite)
    entries = []
    for index in range(count):
        mask = spec.for_index(seed, index, height, width)
        data = encode_png(mask)
        name = _file_name(index, count)
        (out / name).write_bytes(data)
        ratio = hole_ratio(mask)
        entries.append(
            {
                "name": name,
                "sha256": hashlib.sha256(data).hexdigest(),
                "pixel_sha256": _pixel_sha256(mask),
                "hole_ratio": ratio,
                "bucket": bucket_of(ratio),
            }
        )
    manifest = {
        "format": FORMAT,
        "family": spec.family,
        "params": _jsonable(spec.params),
        "params_with_defaults": _jsonable({**family_params(spec.family), **spec.params}),
        "seed": seed,
        "resolution": [height, width],
        "count": count,
        "rng": "numpy.random.default_rng([seed, index]); masks.mask_for_index",
        "encoding": "8-bit grayscale PNG, 255 = hole, 0 = valid",
        "versions": {"numpy": np.__version__, "Pillow": PIL.__version__, "opencv": cv2.__version__},
        "mean_hole_ratio": float(np.mean([e["hole_ratio"] for e in entries])),
        "files": entries,
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (out / MANIFEST).write_text(text, encoding="utf-8")
    return manifest


def read_manifest(directory: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``manifest.json`` of a frozen set (``ValueError`` if absent or malformed)."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ValueError(f"{str(directory)!r} is not a frozen mask set: no {MANIFEST}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{str(path)!r} is not valid JSON: {exc}") from exc
    needed = {"format", "family", "params", "seed", "resolution", "count", "files"}
    if not isinstance(manifest, dict) or not needed <= set(manifest):
        raise ValueError(f"{str(path)!r} lacks keys {sorted(needed - set(manifest or {}))}")
    if manifest["format"] != FORMAT:
        raise ValueError(f"{str(path)!r}: unknown format {manifest['format']!r}")
    if len(manifest["files"]) != manifest["count"]:
        raise ValueError(f"{str(path)!r}: count {manifest['count']} != {len(manifest['files'])}")
    return manifest


def load_frozen(directory: str | os.PathLike) -> list[np.ndarray]:
    """The masks of a frozen set as (H, W) uint8 {0, 1} arrays, after verifying every file."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    listed = [e["name"] for e in manifest["files"]]
    present = {p.name for p in directory.iterdir()} - {MANIFEST}
    missing = [n for n in listed if n not in present]
    if missing:
        raise ValueError(f"frozen set {str(directory)!r}: missing file {missing[0]!r}")
    extra = sorted(present - set(listed))
    if extra:
        raise ValueError(f"frozen set {str(directory)!r}: unexpected extra file {extra[0]!r}")
    height, width = manifest["resolution"]
    masks = []
    for entry in manifest["files"]:
        data = (directory / entry["name"]).read_bytes()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise ValueError(
                f"frozen set {str(directory)!r}: file {entry['name']!r} changed (sha256 mismatch)"
            )
        with Image.open(io.BytesIO(data)) as img:
            arr = np.asarray(img)
        if arr.shape != (height, width) or not np.isin(arr, (0, 255)).all():
            raise ValueError(f"frozen set {str(directory)!r}: file {entry['name']!r} is malformed")
        mask = (arr == 255).astype(np.uint8)
        if _pixel_sha256(mask) != entry["pixel_sha256"]:
            raise ValueError(f"frozen set {str(directory)!r}: pixels of {entry['name']!r} changed")
        masks.append(mask)
    return masks
