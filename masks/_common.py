"""Helpers shared by every mask family: argument checks, size scaling, hole ratio, buckets.

Conventions (see ``masks/__init__.py``): a mask is a (H, W) ``uint8`` array with values in
{0, 1}, **1 = hole**; every random draw comes from the ``np.random.Generator`` passed in.

Hole-ratio buckets are the six of the PartialConv test set (Liu et al., ECCV 2018, Table 1;
``protocol.md`` section 3.7): (0.01, 0.1], (0.1, 0.2], ..., (0.5, 0.6], left-open and
right-closed.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "BUCKETS",
    "bucket_of",
    "hole_ratio",
    "check_binary_mask",
    "check_rng",
    "check_size",
    "as_int",
    "as_pair",
    "scaled",
    "plain",
]

# label -> (low, high): a ratio r is in the bucket when low < r <= high.
BUCKETS: dict[str, tuple[float, float]] = {
    "0.01-0.1": (0.01, 0.1),
    "0.1-0.2": (0.1, 0.2),
    "0.2-0.3": (0.2, 0.3),
    "0.3-0.4": (0.3, 0.4),
    "0.4-0.5": (0.4, 0.5),
    "0.5-0.6": (0.5, 0.6),
}


def bucket_of(ratio: float) -> str | None:
    """Label of the PartialConv bucket holding ``ratio`` (``None`` outside (0.01, 0.6])."""
    ratio = float(ratio)
    if not np.isfinite(ratio):
        raise ValueError(f"hole ratio must be finite, got {ratio}")
    for label, (low, high) in BUCKETS.items():
        if low < ratio <= high:
            return label
    return None


def hole_ratio(mask: Any) -> float:
    """Fraction of hole pixels (non-zero entries) of a mask (numpy array or torch tensor)."""
    arr = np.asarray(mask.detach().cpu() if hasattr(mask, "detach") else mask)
    if arr.size == 0:
        raise ValueError("hole_ratio of an empty mask")
    return float(np.count_nonzero(arr)) / float(arr.size)


def check_binary_mask(mask: Any, height: int | None = None, width: int | None = None) -> None:
    """Raise ``ValueError`` unless ``mask`` is a (H, W) uint8 array with values in {0, 1}."""
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"a mask must be a numpy array, got {type(mask).__name__}")
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise ValueError(f"a mask must be a 2-D uint8 array, got {mask.dtype} {mask.shape}")
    if height is not None and mask.shape != (height, width):
        raise ValueError(f"mask shape {mask.shape} != requested {(height, width)}")
    if mask.size and int(mask.max()) > 1:
        raise ValueError(f"mask values must be 0 or 1, found {int(mask.max())}")


def check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            "rng must be a numpy.random.Generator (e.g. np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    return rng


def as_int(value: Any, name: str, minimum: int | None = None) -> int:
    """``value`` as a Python int (integral floats such as 6.0 accepted), checked >= minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if int(value) != value:
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_size(height: Any, width: Any) -> tuple[int, int]:
    return as_int(height, "height", 1), as_int(width, "width", 1)


def as_pair(value: Any, name: str, minimum: int | None = None) -> tuple[int, int]:
    """An int or a 2-sequence (rows, cols) as a pair of ints."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (rows, cols), got {value!r}")
        return as_int(value[0], name, minimum), as_int(value[1], name, minimum)
    v = as_int(value, name, minimum)
    return v, v


def scaled(value_at_ref: float, side: int, ref_size: int) -> int:
    """``round(value_at_ref * side / ref_size)``: a length given at ``ref_size`` scaled to
    ``side`` (half-way cases round to even, as Python's ``round``)."""
    return int(round(value_at_ref * side / ref_size))


def plain(value: Any) -> Any:
    """Config values (OmegaConf containers, lists, numpy scalars) as plain Python values:
    mappings -> dict, sequences -> tuple, numpy scalars -> int/float/bool."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return tuple(plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value
