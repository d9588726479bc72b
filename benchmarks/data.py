"""Image sources, train/test splits and batch sampling.

Two sources:

- ``embedded``: the colour photographs that ship inside scikit-image, split **by source
  photograph** so that no test crop comes from a training photograph (the two views of the
  stereo motorcycle pair count as one source);
- ``folder``: any folder of images (recursively) or a ``.flist`` file with one path per line
  (EdgeConnect's format), for Places2, CelebA-HQ, Paris StreetView, ...

Resize/crop policy (the same for both):

- training: if the short side is below ``resolution`` the image is first resized (bicubic) so
  that it equals ``resolution``; then a uniformly random ``resolution``-square crop and a
  random horizontal flip;
- test: ``test_policy="crops"`` takes ``test_crops`` fixed, seeded random crops per test image
  (same resize rule), ``test_policy="center"`` resizes the short side to ``resolution`` and
  takes the centre square (EdgeConnect's centre-crop + resize).

Sampling is *stateless*: the batch of training step ``s`` is a pure function of
``(seed, s)``, so a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "EMBEDDED_SOURCES",
    "EMBEDDED_TEST",
    "DataError",
    "ImageSource",
    "load_image",
    "embedded_sources",
    "folder_sources",
    "TrainSampler",
    "make_test_set",
    "to_tensor",
    "decode_workers",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

#: scikit-image data files used by ``data=embedded``: source name -> file names (one source
#: may span several files: the stereo pair is one scene)
EMBEDDED_SOURCES: dict[str, tuple[str, ...]] = {
    "astronaut": ("astronaut.png",),
    "chelsea": ("chelsea.png",),
    "coffee": ("coffee.png",),
    "hubble_deep_field": ("hubble_deep_field.jpg",),
    "ihc": ("ihc.png",),
    "motorcycle": ("motorcycle_left.png", "motorcycle_right.png"),
    "retina": ("retina.jpg",),
    "rocket": ("rocket.jpg",),
}
#: sources held out for testing; every other embedded source is for training
EMBEDDED_TEST = ("chelsea", "coffee")


class DataError(ValueError):
    """A data problem found before any model is built (missing folder, bad image, ...)."""


@dataclass(frozen=True)
class ImageSource:
    """One image file and the photograph (scene) it belongs to."""

    path: Path
    source: str


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image as H x W x 3 uint8 RGB, honouring EXIF orientation.

    Grayscale is replicated to 3 channels, alpha is dropped, 16-bit images are scaled to 8
    bits.  Anything unreadable raises :class:`DataError` naming the file.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                scale = 65535.0 if arr.max() > 255 else 255.0
                arr = np.clip(np.round(arr / scale * 255.0), 0, 255).astype(np.uint8)
                return np.repeat(arr[..., None], 3, axis=2)
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from exc


def embedded_sources() -> list[ImageSource]:
    """The scikit-image photographs (read from the installed package, never downloaded)."""
    import skimage.data

    root = Path(skimage.data.__file__).parent
    out = []
    for source, files in EMBEDDED_SOURCES.items():
        for name in files:
            path = root / name
            if not path.is_file():
                raise DataError(f"embedded image {name} is missing from {root}")
            out.append(ImageSource(path, source))
    return out


def folder_sources(root: str | os.PathLike) -> list[ImageSource]:
    """Every image below ``root`` (a folder, searched recursively, or a ``.flist`` file).

    Each file is its own source.  A missing or empty folder is a :class:`DataError`.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"data.root does not exist: {root}")
    if root.is_file():
        if root.suffix != ".flist":
            raise DataError(f"data.root must be a folder or a .flist file, got {root}")
        lines = [ln.strip() for ln in root.read_text().splitlines()]
        paths = [Path(ln) if Path(ln).is_absolute() else root.parent / ln for ln in lines if ln]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise DataError(f"{root} lists {len(missing)} missing files, e.g. {missing[0]}")
    else:
        paths = sorted(
            p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
        )
    if not paths:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {root}")
    return [ImageSource(p, str(p)) for p in paths]


def split_sources(
    sources: list[ImageSource], test_sources: tuple[str, ...] | None, test_fraction: float
) -> tuple[list[ImageSource], list[ImageSource]]:
    """Split by source: named test sources, or a stable hash of the source name."""

    def is_test(src: str) -> bool:
        if test_sources is not None:
            return src in test_sources
        h = int(hashlib.sha256(src.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        return h < test_fraction

    train = [s for s in sources if not is_test(s.source)]
    test = [s for s in sources if is_test(s.source)]
    if not train or not test:
        raise DataError(
            f"split left {len(train)} training and {len(test)} test images; "
            f"give data.test_root or change data.test_fraction"
        )
    return train, test


def ensure_min_side(img: np.ndarray, size: int) -> np.ndarray:
    """Resize (bicubic) so that the short side is at least ``size``."""
    h, w = img.shape[:2]
    if min(h, w) >= size:
        return img
    scale = size / min(h, w)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    return np.asarray(Image.fromarray(img).resize(new, Image.BICUBIC))


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 -> 3 x H x W float in [-1, 1]."""
    return torch.from_numpy(np.array(img, copy=True)).permute(2, 0, 1).float() / 127.5 - 1.0


def decode_workers() -> int:
    """Threads that decode image files in parallel (PIL releases the GIL): min(8, CPUs)."""
    return min(8, os.cpu_count() or 1)


#: folders with at most this many images have every file's header checked up front, so an
#: unreadable file is reported before any model is built; larger folders are checked as read
VERIFY_UP_FRONT = 10_000


class _ImageCache:
    """Decoded images, loaded lazily; an unreadable file raises :class:`DataError` naming it,
    or with ``skip_bad`` is left out and counted in a warning."""

    def __init__(self, sources: list[ImageSource], resolution: int, skip_bad: bool) -> None:
        self.sources = list(sources)
        self.resolution = resolution
        self.skip_bad = skip_bad
        self.bad: set[int] = set()
        self._images: dict[int, np.ndarray] = {}
        if len(self.sources) <= VERIFY_UP_FRONT:
            for i, src in enumerate(self.sources):
                try:
                    with Image.open(src.path) as im:
                        im.verify()
                except Exception as exc:  # noqa: BLE001 - PIL raises many types
                    self._reject(i, exc)
        if len(self.bad) == len(self.sources):
            raise DataError(f"none of the {len(self.sources)} images is readable")

    def _reject(self, i: int, exc: Exception) -> None:
        path = self.sources[i].path
        if not self.skip_bad:
            raise DataError(f"cannot read image {path}: {exc} (data.skip_bad=true skips it)")
        self.bad.add(i)
        warnings.warn(
            f"skipped {len(self.bad)} unreadable images so far, e.g. {path}", stacklevel=3
        )

    def __len__(self) -> int:
        return len(self.sources)

    def get(self, i: int) -> np.ndarray | None:
        """The image ``i`` (short side at least ``resolution``), or None if it is skipped."""
        if i in self.bad:
            return None
        if i not in self._images:
            try:
                img = ensure_min_side(load_image(self.sources[i].path), self.resolution)
            except DataError as exc:
                self._reject(i, exc)
                return None
            if len(self._images) > 256:  # bounded cache for large folders
                self._images.pop(next(iter(self._images)))
            self._images[i] = img
        return self._images[i]


def _random_crop(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    top = int(rng.integers(0, h - size + 1))
    left = int(rng.integers(0, w - size + 1))
    return img[top : top + size, left : left + size]


class TrainSampler:
    """Training batches as a pure function of (seed, step)."""

    def __init__(
        self, sources: list[ImageSource], resolution: int, seed: int, skip_bad: bool = False
    ) -> None:
        self.images = _ImageCache(sources, resolution, skip_bad)
        self.resolution = resolution
        self.seed = seed

    def batch(self, step: int, batch_size: int, k: int = 0) -> torch.Tensor:
        """Batch ``k`` of training step ``step``: N x 3 x R x R float in [-1, 1]."""
        rng = np.random.default_rng([self.seed, 1, step, k])
        crops = []
        for _ in range(batch_size):
            img = None
            for _attempt in range(100):  # skipped (unreadable) images are redrawn
                img = self.images.get(int(rng.integers(len(self.images))))
                if img is not None:
                    break
            if img is None:
                raise DataError("100 draws in a row hit unreadable images")
            crop = _random_crop(img, self.resolution, rng)
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            crops.append(to_tensor(crop))
        return torch.stack(crops)


def make_test_set(
    sources: list[ImageSource],
    resolution: int,
    seed: int,
    policy: str = "crops",
    crops_per_image: int = 8,
    skip_bad: bool = False,
) -> tuple[torch.Tensor, list[str]]:
    """Fixed test images (N x 3 x R x R in [-1, 1]) and a name for each."""
    images = _ImageCache(sources, resolution, skip_bad)
    out, names = [], []
    for i, src in enumerate(images.sources):
        img = images.get(i)
        if img is None:
            continue
        stem = Path(src.path).stem
        if policy == "center":
            h, w = img.shape[:2]
            s = min(h, w)
            sq = img[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
            sq = np.asarray(Image.fromarray(sq).resize((resolution,) * 2, Image.BICUBIC))
            out.append(to_tensor(sq))
            names.append(stem)
        elif policy == "crops":
            rng = np.random.default_rng([seed, 2, i])
            for k in range(crops_per_image):
                out.append(to_tensor(_random_crop(img, resolution, rng)))
                names.append(f"{stem}_{k:02d}")
        else:
            raise ValueError(f"unknown test policy {policy!r} (crops | center)")
    return torch.stack(out), names
