"""Offline weight files: where the standard torch cache keeps them, and safe loading.

Nothing here downloads.  ImageNet backbones (VGG for losses, AlexNet for LPIPS) are looked up
under ``$TORCH_HOME/hub/checkpoints/`` with torchvision's file names; a missing file is an
error that names the file and the folder to put it in.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

__all__ = [
    "TORCHVISION_FILES",
    "MissingWeightsError",
    "checkpoint_dir",
    "find_checkpoint",
    "require_checkpoint",
    "load_state_dict",
    "sha256sum",
]

#: torchvision ImageNet checkpoints used by the suite (file name = URL basename)
TORCHVISION_FILES = {
    "vgg16": "vgg16-397923af.pth",
    "vgg19": "vgg19-dcbb9e9d.pth",
    "alexnet": "alexnet-owt-7be5be79.pth",
}


class MissingWeightsError(FileNotFoundError):
    """A weight file the run needs is not on disk (and will not be downloaded)."""


def checkpoint_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` as torch.hub resolves it (no network access)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_checkpoint(filename: str) -> Path | None:
    path = checkpoint_dir() / filename
    return path if path.is_file() else None


def require_checkpoint(filename: str, purpose: str) -> Path:
    """Path of ``filename`` in the torch cache, or a :class:`MissingWeightsError` saying where
    it belongs and what needs it."""
    path = find_checkpoint(filename)
    if path is None:
        folder = checkpoint_dir()
        raise MissingWeightsError(
            f"{purpose} needs the ImageNet weight file {filename!r}, which is not in "
            f"{folder}. Nothing is downloaded at run time: copy the file into that folder "
            f"(TORCH_HOME={os.environ.get('TORCH_HOME', '<unset>')}), or set TORCH_HOME to "
            f"a folder whose hub/checkpoints/ holds it."
        )
    return path


def sha256sum(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_state_dict(path: str | os.PathLike, sha256: str | None = None) -> dict:
    """``torch.load(weights_only=True)`` with a clear error for pickled code and an optional
    checksum.  Returns whatever mapping the file holds (tensors and plain containers only)."""
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"weight file not found: {path}")
    if sha256 is not None:
        actual = sha256sum(path)
        if actual != sha256:
            raise ValueError(f"{path}: sha256 {actual} does not match the recorded {sha256}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError for anything beyond tensors
        if "weights_only" in str(exc) or "Unsupported" in str(exc) or "global" in str(exc):
            raise ValueError(
                f"{path} is refused: it contains pickled Python objects beyond tensors and "
                f"plain containers, which could run code when loaded. Re-save it as a plain "
                f"state dict (torch.save(model.state_dict(), ...))."
            ) from exc
        raise
