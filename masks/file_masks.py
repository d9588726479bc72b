"""Masks read from image files: the NVIDIA irregular set, QD-IMD, LaMa's frozen sets, any
folder of mask images (EdgeConnect ``MASK=3``/``6``, ``protocol.md`` section 3.8).

``file(height, width, rng, path=..., index=i)`` returns file ``i % count``; without ``index``
a file is picked with ``rng`` (EdgeConnect's random external masks).  ``path`` is a folder
(image files with the extensions below, **sorted by name**) or a ``.flist``/``.txt`` file with
one path per line (kept in the listed order; relative paths are relative to the list file).

Decoding, in this order:

1. channels: palette images are expanded first; 3-channel (RGB) masks use the per-pixel
   **maximum** over R, G, B (a hole painted in any colour counts); images with alpha (RGBA,
   LA) are composited over black, value = colour * alpha / full scale, so transparent pixels
   are valid and opaque white ones are holes;
2. full scale: 1 when every value is <= 1 (masks stored as 0/1 or 1-bit), else 255, or 65535
   for 16/32-bit and float images with values above 255;
3. binarisation: hole = value > ``threshold`` * full scale (default 0.5; EdgeConnect's
   ``> 0`` is ``threshold=0``); if any value is neither 0 nor full scale (anti-aliased edges,
   JPEG), a ``UserWarning`` says so;
4. ``invert=True`` flips the result (for 1 = valid sets, e.g. NVIDIA's white-is-valid PNGs
   and naoto0804's masks; ``protocol.md`` section 2, pitfall 8);
5. resizing to (H, W) with nearest neighbour (PIL ``NEAREST``) after binarisation;
6. polarity check: a hole ratio above ``polarity_warning`` (0.9) gives a ``UserWarning``
   suggesting ``invert=True``.

Missing path, an empty folder or list, or an unreadable file -> ``ValueError``.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ._common import as_int, check_size

__all__ = ["file", "list_mask_files", "read_mask_file", "MASK_EXTENSIONS"]

MASK_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
_LIST_SUFFIXES = (".flist", ".txt", ".lst")


def list_mask_files(path: str | os.PathLike) -> list[Path]:
    """The ordered list of mask files named by ``path`` (folder or list file)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ValueError(f"mask path {str(p)!r} does not exist")
    stamp = p.stat().st_mtime_ns
    return list(_list_cached(str(p.resolve()), stamp))


@functools.lru_cache(maxsize=32)
def _list_cached(path: str, _stamp: int) -> tuple[Path, ...]:
    p = Path(path)
    if p.is_dir():
        files = sorted(
            f for f in p.iterdir() if f.is_file() and f.suffix.lower() in MASK_EXTENSIONS
        )
        if not files:
            raise ValueError(
                f"mask folder {path!r} holds no mask images ({', '.join(MASK_EXTENSIONS)})"
            )
        return tuple(files)
    if p.suffix.lower() not in _LIST_SUFFIXES:
        raise ValueError(f"mask path {path!r} is neither a folder nor a list file {_LIST_SUFFIXES}")
    lines = [ln.strip() for ln in p.read_text().splitlines()]
    files = [Path(ln) if Path(ln).is_absolute() else p.parent / ln for ln in lines if ln]
    if not files:
        raise ValueError(f"mask list {path!r} is empty")
    return tuple(files)


def _to_single_channel(img: Image.Image) -> tuple[np.ndarray, int]:
    """(H, W) float64 values and the bit depth's full scale (255 or 65535)."""
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode == "1":
        return np.asarray(img, np.float64), 1
    arr = np.asarray(img).astype(np.float64)
    full = 255  # 8-bit modes; 16/32-bit and float images whose values exceed 255 -> 65535
    if img.mode.startswith(("I", "F")) and arr.size and arr.max() > 255:
        full = 65535
    if arr.ndim == 2:
        return arr, full
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        colour, alpha = arr[..., :-1].max(axis=-1), arr[..., -1]
        return colour * alpha / full, full
    return arr[..., :3].max(axis=-1), full


def read_mask_file(
    path: str | os.PathLike,
    height: int | None = None,
    width: int | None = None,
    *,
    threshold: float = 0.5,
    invert: bool = False,
    polarity_warning: float = 0.9,
) -> np.ndarray:
    """Decode one mask file to (H, W) uint8 {0, 1}, 1 = hole (see the module docstring)."""
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    try:
        with Image.open(path) as img:
            img.load()
            values, full = _to_single_channel(img)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read mask file {str(path)!r}: {exc}") from exc
    if values.size and values.max() <= 1:
        full = 1
    binary_levels = (values == 0) | (values == full)
    if not binary_levels.all():
        warnings.warn(
            f"mask {str(path)!r} is not binary ({int((~binary_levels).sum())} pixels neither 0 "
            f"nor {full}: anti-aliased or JPEG?); thresholded at > {threshold} * {full}",
            UserWarning,
            stacklevel=3,
        )
    mask = (values > threshold * full).astype(np.uint8)
    if invert:
        mask = 1 - mask
    if height is not None and width is not None and mask.shape != (height, width):
        resized = Image.fromarray(mask).resize((width, height), Image.Resampling.NEAREST)
        mask = np.asarray(resized, np.uint8).copy()
    ratio = float(mask.mean()) if mask.size else 0.0
    if ratio > polarity_warning:
        warnings.warn(
            f"mask {str(path)!r} has hole ratio {ratio:.3f} > {polarity_warning}: it is probably "
            "stored with 1 = valid (white = known); pass invert=True (or invert it on disk)",
            UserWarning,
            stacklevel=3,
        )
    return mask


def file(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    path: Any = None,
    index: Any = None,
    threshold: float = 0.5,
    invert: bool = False,
    polarity_warning: float = 0.9,
) -> np.ndarray:
    """Mask ``index % count`` of the folder/list ``path`` (random file when ``index`` is None)."""
    height, width = check_size(height, width)
    if path is None:
        raise ValueError("the file family needs path= (a folder of mask images or a .flist)")
    files = list_mask_files(path)
    if index is None:
        chosen = files[int(rng.integers(0, len(files)))]
    else:
        chosen = files[as_int(index, "index", 0) % len(files)]
    return read_mask_file(
        chosen,
        height,
        width,
        threshold=threshold,
        invert=invert,
        polarity_warning=polarity_warning,
    )
