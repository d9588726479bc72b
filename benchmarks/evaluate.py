"""Predict, score and summarise: the evaluation half of a benchmark run.

Prediction and scoring are separate steps: :func:`predict` runs a model, :func:`score`
compares any composites with the ground truth (so saved predictions, or an official
repository's outputs, go through the same code).  :func:`summarize` averages per image,
overall and per hole-ratio bucket.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

import masks as maskslib

from .metrics import CONVENTION, METRICS, LPIPSScorer, aggregate, image_metrics, quantize

__all__ = ["predict", "score", "summarize", "save_pngs", "save_grid", "write_json"]


@torch.inference_mode()
def predict(
    model: torch.nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor,
    batch_size: int,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """``output`` and ``composite`` for every test image (CPU tensors in [-1, 1])."""
    model.to(device).eval()
    outs: dict[str, list[torch.Tensor]] = {"output": [], "composite": []}
    for i in range(0, len(images), batch_size):
        res = model(images[i : i + batch_size].to(device), masks[i : i + batch_size].to(device))
        for key in outs:
            outs[key].append(res[key].float().clamp(-1, 1).cpu())
    return {k: torch.cat(v) for k, v in outs.items()}


def score(
    composite: torch.Tensor,
    target: torch.Tensor,
    masks: torch.Tensor,
    names: list[str],
    lpips: LPIPSScorer | None = None,
    batch_size: int = 32,
) -> pd.DataFrame:
    """One row per image: name, hole ratio, bucket and every metric."""
    parts: dict[str, list[torch.Tensor]] = {m: [] for m in METRICS}
    for i in range(0, len(target), batch_size):
        sl = slice(i, i + batch_size)
        vals = image_metrics(composite[sl], target[sl], masks[sl])
        vals["lpips"] = (
            lpips(composite[sl], target[sl])
            if lpips is not None
            else torch.full((len(target[sl]),), math.nan, dtype=torch.float64)
        )
        for m in METRICS:
            parts[m].append(vals[m])
    ratio = masks.flatten(1).double().mean(dim=1).numpy()
    frame = pd.DataFrame({"name": names, "hole_ratio": ratio})
    frame["bucket"] = [maskslib.bucket_of(float(r)) or "other" for r in ratio]
    for m in METRICS:
        frame[m] = torch.cat(parts[m]).numpy()
    return frame


def summarize(frame: pd.DataFrame) -> dict[str, Any]:
    """Overall means and per-bucket means (NaN-aware, with counts)."""
    overall = aggregate({m: frame[m].to_numpy() for m in METRICS})
    overall["hole_ratio"] = float(frame["hole_ratio"].mean())
    buckets = {}
    for bucket, sub in frame.groupby("bucket", sort=True):
        buckets[bucket] = aggregate({m: sub[m].to_numpy() for m in METRICS})
    return {"overall": overall, "buckets": buckets, "convention": CONVENTION}


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """3 x H x W in [-1, 1] -> H x W x 3 uint8 (the quantisation the metrics use)."""
    return (quantize(x) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def save_pngs(folder: str | os.PathLike, images: torch.Tensor, names: list[str]) -> None:
    """Save each image losslessly as ``<name>.png``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for img, name in zip(images, names):
        Image.fromarray(_to_uint8(img)).save(folder / f"{name}.png")


def save_grid(
    path: str | os.PathLike,
    image: torch.Tensor,
    mask: torch.Tensor,
    output: torch.Tensor,
    composite: torch.Tensor,
    rows: int = 8,
) -> None:
    """A PNG with one row per test image: masked input | raw output | composite | truth."""
    masked = image * (1 - mask) + mask  # hole shown in white
    n = min(rows, len(image))
    tiles = [
        np.concatenate([_to_uint8(t[i]) for t in (masked, output, composite, image)], axis=1)
        for i in range(n)
    ]
    Image.fromarray(np.concatenate(tiles, axis=0)).save(path)


def write_json(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write JSON atomically (NaN written as null)."""
    path = Path(path)

    def clean(o: Any) -> Any:
        if isinstance(o, float) and (math.isnan(o) or math.isinf(o)):
            return None
        if isinstance(o, dict):
            return {str(k): clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        if isinstance(o, (np.floating, np.integer)):
            return clean(o.item())
        return o

    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(clean(payload), indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
