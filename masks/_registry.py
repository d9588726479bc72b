"""The mask-family registry: ``FAMILIES``, ``make_mask``, ``MaskSpec``, ``mask_for_index``,
``to_tensor``.

A family is ``fn(height, width, rng, **params) -> (H, W) uint8`` with values in {0, 1} (1 =
hole) whose parameters are keyword-only; those keyword names are the only valid ``params``.
``mask_for_index(family, seed, index, ...)`` draws from ``np.random.default_rng([seed,
index])``: the mask of test image ``index`` depends on nothing else (not on the order, the
batch size or the other images; across machines it is the same as long as NumPy's ``PCG64``
stream and the Pillow / OpenCV rasterisers are), and families that take an ``index``
parameter (``file``) receive it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ._common import as_int, check_binary_mask, check_rng, check_size, plain
from .boxes import (
    box_deepfill_v1,
    box_edgeconnect,
    box_glcic,
    box_gmcnn,
    box_mmagic,
    center_box,
    half_edgeconnect,
)
from .deepfill_v2 import mask_deepfill_v2_train, strokes_deepfill_v2
from .file_masks import file
from .irregular_bucket import irregular_bucket
from .irregular_mmagic import irregular_mmagic
from .lama import (
    lama_medium_256,
    lama_medium_512,
    lama_mixed,
    lama_thick_256,
    lama_thick_512,
    lama_thin_256,
    lama_thin_512,
)
from .noise_blob import noise_blob
from .strokes_paper import strokes_paper

__all__ = ["FAMILIES", "family_params", "make_mask", "MaskSpec", "mask_for_index", "to_tensor"]

MaskFn = Callable[..., np.ndarray]

FAMILIES: dict[str, MaskFn] = {
    fn.__name__: fn
    for fn in (
        center_box,
        box_deepfill_v1,
        box_glcic,
        box_mmagic,
        box_gmcnn,
        box_edgeconnect,
        half_edgeconnect,
        strokes_deepfill_v2,
        mask_deepfill_v2_train,
        strokes_paper,
        irregular_mmagic,
        lama_thin_256,
        lama_medium_256,
        lama_thick_256,
        lama_thin_512,
        lama_medium_512,
        lama_thick_512,
        lama_mixed,
        irregular_bucket,
        noise_blob,
        file,
    )
}


def _family(name: Any) -> MaskFn:
    if not isinstance(name, str) or name not in FAMILIES:
        raise ValueError(f"unknown mask family {name!r}; valid: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]


def family_params(name: str) -> dict[str, Any]:
    """The valid parameters of family ``name`` and their defaults."""
    sig = inspect.signature(_family(name))
    return {p.name: p.default for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY}


def _check_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    valid = family_params(name)
    for key in params:
        if key not in valid:
            raise ValueError(
                f"unknown parameter {key!r} for mask family {name!r}; "
                f"valid: {', '.join(valid) or '(none)'}"
            )
    return {k: plain(v) for k, v in params.items()}


def make_mask(
    family: str, height: int, width: int, rng: np.random.Generator, **params: Any
) -> np.ndarray:
    """One (H, W) uint8 {0, 1} mask (1 = hole) of ``family`` drawn from ``rng``."""
    fn = _family(family)
    params = _check_params(family, params)
    height, width = check_size(height, width)
    mask = fn(height, width, check_rng(rng), **params)
    check_binary_mask(mask, height, width)
    return mask


def mask_for_index(
    family: str, seed: int, index: int, height: int, width: int, **params: Any
) -> np.ndarray:
    """The mask of test image ``index`` under ``seed``: ``make_mask`` with
    ``np.random.default_rng([seed, index])`` (and ``index=index`` for families taking it)."""
    seed = as_int(seed, "seed", 0)
    index = as_int(index, "index", 0)
    if "index" in family_params(family) and "index" not in params:
        params = {**params, "index": index}
    return make_mask(family, height, width, np.random.default_rng([seed, index]), **params)


@dataclass(frozen=True)
class MaskSpec:
    """A family name and its parameters, e.g. from a config ``{family: ..., params: {...}}``.

    ``spec(height, width, rng)`` draws a mask; ``spec.for_index(seed, index, height, width)``
    is ``mask_for_index``.  Unknown families or parameters fail at construction.
    """

    family: str
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _family(self.family)
        if not isinstance(self.params, Mapping):
            raise TypeError(f"MaskSpec params must be a mapping, got {type(self.params).__name__}")
        object.__setattr__(self, "params", _check_params(self.family, self.params))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MaskSpec:
        """From ``{family: name, params: {...}}`` (``params`` optional; other keys refused)."""
        if not isinstance(config, Mapping) or "family" not in config:
            raise ValueError(f"a mask config needs a 'family' key, got {config!r}")
        extra = set(config) - {"family", "params"}
        if extra:
            raise ValueError(f"unknown mask config keys {sorted(extra)}; valid: family, params")
        return cls(str(config["family"]), dict(config.get("params") or {}))

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "params": _jsonable(self.params)}

    def __call__(self, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        return make_mask(self.family, height, width, rng, **self.params)

    def for_index(self, seed: int, index: int, height: int, width: int) -> np.ndarray:
        return mask_for_index(self.family, seed, index, height, width, **self.params)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_jsonable(v) for v in value]
    return value


def to_tensor(mask: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
    """float32 1 x 1 x H x W for one mask, N x 1 x H x W for a list of equal-sized masks."""
    if isinstance(mask, np.ndarray):
        if mask.ndim != 2:
            raise ValueError(f"to_tensor expects a (H, W) mask or a list of them, got {mask.shape}")
        masks = [mask]
    else:
        masks = list(mask)
        if not masks:
            raise ValueError("to_tensor got an empty list of masks")
    for m in masks:
        check_binary_mask(m)
        if m.shape != masks[0].shape:
            raise ValueError(f"to_tensor: masks differ in size, {m.shape} vs {masks[0].shape}")
    stacked = np.stack(masks)[:, None]  # N x 1 x H x W
    return torch.from_numpy(stacked.astype(np.float32))
