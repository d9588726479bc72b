"""Collect benchmark runs: every ``metrics.json`` below some folders, as rows.

:func:`collect` finds the runs (finished and failed), :func:`results_frame` turns them into
the rows of a report's ``results.csv`` (one per run and scope: ``overall`` and each
hole-ratio bucket), :func:`protocol_fields` flattens a run's protocol (data, resolution,
masks, test images, budget, convention, device, library versions) for the report headers.
Only the files are read: nothing here depends on the code version that wrote them, beyond
the keys of ``metrics.json`` (``benchmarks/run.py``); missing keys read as unknown.

Runs are named by their path relative to the *name* of the folder given, so the same sweep
passed as a relative or an absolute path gives the same rows.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from masks import BUCKETS

from .metrics import METRICS

__all__ = [
    "Run",
    "collect",
    "results_frame",
    "row_labels",
    "protocol_fields",
    "convention_name",
    "metric_value",
    "marks",
    "scope_rank",
    "scope_label",
    "finite",
    "lookup",
    "SCOPE_ORDER",
    "VGG_MARK",
    "EXTERNAL_MARK",
]

#: report scopes in order: overall, the PartialConv buckets, outside them
SCOPE_ORDER = ["overall", *BUCKETS, "other"]
#: row marks: trained with random VGG loss weights / scored external predictions
VGG_MARK = "†"
EXTERNAL_MARK = "‡"


@dataclass(frozen=True)
class Run:
    """One run directory and its ``metrics.json``."""

    path: Path  # the run directory
    key: str  # <name of the folder given>/<path relative to it>: stable across machines
    record: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.record.get("status") == "ok"

    @property
    def model(self) -> str:
        return str(self.record.get("model", "?"))


# ------------------------------------------------------------------------------ collect
def collect(paths: Iterable[str | os.PathLike]) -> list[Run]:
    """Every run below ``paths`` (a run folder or any folder holding run folders), sorted by
    model and key; the same run reached twice is counted once."""
    runs: dict[Path, Run] = {}
    for given in paths:
        root = Path(given).expanduser()
        if not root.is_dir():
            raise ValueError(f"{root} is not a folder")
        base = root.resolve().name
        for file in sorted(root.rglob("metrics.json")):
            run_dir = file.parent
            rel = run_dir.relative_to(root).as_posix()
            key = base if rel == "." else f"{base}/{rel}"
            try:
                record = json.loads(file.read_text())
            except json.JSONDecodeError as exc:
                raise ValueError(f"{file} is not valid JSON: {exc}") from exc
            runs.setdefault(run_dir.resolve(), Run(run_dir, key, record))
    if not runs:
        raise ValueError(
            "no metrics.json found below " + ", ".join(str(p) for p in paths) + " (give a "
            "sweep folder such as outputs/multiruns/<sweep>, or run folders)"
        )
    return sorted(runs.values(), key=lambda r: (r.model, r.key))


def row_labels(runs: list[Run]) -> dict[str, str]:
    """Row label per run key: the model name, or ``model [run]`` where a model repeats."""
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.model] = counts.get(r.model, 0) + 1
    return {r.key: r.model if counts[r.model] == 1 else f"{r.model} [{r.key}]" for r in runs}


def lookup(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _mask_text(spec: Any) -> str | None:
    """A test- or training-mask description from ``metrics.json``'s protocol entry."""
    if not isinstance(spec, dict):
        return None if spec is None else str(spec)
    params = json.dumps(spec.get("params"), sort_keys=True)
    if spec.get("source") == "frozen":
        text = f"frozen set {spec.get('path')}"
        if spec.get("family") is not None:  # known once the set was read
            text += f" ({spec['family']}, params {params}, seed {spec.get('seed')})"
        return text
    text = f"{spec.get('name')} (family {spec.get('family')}, params {params}"
    return text + (f", seed {spec['seed']})" if "seed" in spec else ")")


def _data_text(data: dict[str, Any], fallback: Any) -> str:
    text = str(data.get("name", fallback))
    if data.get("root"):
        text += f" (root {data['root']}"
        text += f", test {data['test_root']})" if data.get("test_root") else ")"
    if data.get("test_policy"):
        text += f", test policy {data['test_policy']}"
        if data["test_policy"] == "crops":
            text += f", {data.get('test_crops')} crop(s) per test photograph"
    return text


def protocol_fields(run: Run) -> dict[str, Any]:
    """Protocol facts of a run, flattened (what the header states or the runs table lists)."""
    rec = run.record
    proto = rec.get("protocol") or {}
    data = proto.get("data") or {}
    env = rec.get("environment") or {}
    train = proto.get("train")
    versions = sorted((env.get("versions") or {}).items())
    return {
        "data": _data_text(data, rec.get("data")),
        "resolution": rec.get("resolution", data.get("resolution")),
        "test_images": proto.get("test_images"),
        "test_masks": _mask_text(proto.get("test_masks", rec.get("mask"))),
        "train_masks": _mask_text(proto.get("train_masks")),
        "budget": f"{train['steps']} steps x batch {train['batch_size']}" if train else None,
        "seed": proto.get("seed", rec.get("seed")),
        "convention": convention_name(rec),
        "device": env.get("device"),
        "threads": env.get("threads"),
        "versions": ", ".join(f"{k} {v}" for k, v in versions) or None,
    }


def convention_name(rec: dict[str, Any]) -> str | None:
    conv = rec.get("convention")
    if isinstance(conv, dict):
        return conv.get("name")
    return lookup(rec, "protocol", "convention")


# ------------------------------------------------------------------------- results.csv
def results_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per run and scope (overall, then each bucket in order); failed runs one row."""
    labels = row_labels(runs)
    rows = []
    for run in runs:
        rec = run.record
        fields = protocol_fields(run)
        train = rec.get("train") or {}
        params = rec.get("params") or {}
        base = {
            "run": run.key,
            "model": run.model,
            "label": labels[run.key],
            "status": rec.get("status"),
            "convention": fields["convention"],
            "data": fields["data"],
            "resolution": fields["resolution"],
            "test_images": fields["test_images"],
            "test_masks": fields["test_masks"],
            "train_masks": fields["train_masks"],
            "train_steps": train.get("steps"),
            "batch_size": train.get("batch_size"),
            "loss_vgg": rec.get("loss_vgg"),
            "external_predictions": bool(lookup(rec, "predictions", "external")),
            "params_generator": params.get("generator"),
            "params_total": sum(params.values()) if params else None,
            "train_seconds": train.get("seconds"),
            "predict_seconds_per_image": rec.get("predict_seconds_per_image"),
            "seconds": rec.get("seconds"),
            "device": fields["device"],
            "lpips_available": lookup(rec, "lpips", "available"),
            "error": rec.get("error"),
        }
        if not run.ok:
            rows.append({**base, "scope": "overall"})
            continue
        scopes = {"overall": rec.get("overall") or {}, **(rec.get("buckets") or {})}
        for scope in sorted(scopes, key=scope_rank):
            vals = scopes[scope]
            row = {**base, "scope": scope, "images": vals.get("images")}
            row["hole_ratio"] = vals.get("hole_ratio") if scope == "overall" else None
            for m in METRICS:
                row[m] = vals.get(m)
                row[f"{m}_count"] = vals.get(f"{m}_count")
            rows.append(row)
    columns = [
        "run",
        "model",
        "label",
        "status",
        "scope",
        "images",
        "hole_ratio",
        *[c for m in METRICS for c in (m, f"{m}_count")],
        "convention",
        "data",
        "resolution",
        "test_images",
        "test_masks",
        "train_masks",
        "train_steps",
        "batch_size",
        "loss_vgg",
        "external_predictions",
        "params_generator",
        "params_total",
        "train_seconds",
        "predict_seconds_per_image",
        "seconds",
        "device",
        "lpips_available",
        "error",
    ]
    return pd.DataFrame(rows, columns=columns)


def scope_rank(scope: str) -> int:
    """Sort key of a scope: overall, the buckets in order, then anything else."""
    return SCOPE_ORDER.index(scope) if scope in SCOPE_ORDER else len(SCOPE_ORDER)


def scope_label(scope: str) -> str:
    """``"0.2-0.3"`` -> ``"(0.2, 0.3]"`` (the buckets are left-open); others unchanged."""
    if scope in BUCKETS:
        low, high = BUCKETS[scope]
        return f"({low:g}, {high:g}]"
    return scope


def metric_value(run: Run, scope: str, metric: str) -> tuple[float | None, int | None]:
    """(mean, count of images with a value) of ``metric`` in ``scope``; (None, None) when the
    run has no such scope (a failed run, a bucket without images)."""
    vals = run.record.get("overall") if scope == "overall" else lookup(run.record, "buckets", scope)
    if not isinstance(vals, dict):
        return None, None
    v = vals.get(metric)
    return (None if v is None else float(v)), vals.get(f"{metric}_count")


def marks(run: Run) -> str:
    """The row marks of a run: VGG_MARK (random VGG loss weights), EXTERNAL_MARK."""
    mark = ""
    if run.record.get("loss_vgg") == "random":
        mark += f" {VGG_MARK}"
    if lookup(run.record, "predictions", "external"):
        mark += f" {EXTERNAL_MARK}"
    return mark


def finite(value: float | None) -> bool:
    """A defined number (neither None nor NaN)."""
    return value is not None and not math.isnan(value)
