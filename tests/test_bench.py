"""The command line end to end: a baseline run writes a complete run directory, saved
predictions re-score to the same numbers, and data errors stop the run before any model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

import masks
from benchmarks.data import EMBEDDED_TEST, embedded_sources, make_test_set, split_sources
from benchmarks.metrics import image_metrics

REPO = Path(__file__).resolve().parents[1]


def bench(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(REPO / "bench.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_telea_run_directory_is_complete(tmp_path):
    run = tmp_path / "telea"
    res = bench(
        "model=telea",
        "mask=box_deepfill_v1",
        "data.resolution=64",
        "data.test_crops=2",
        "eval.lpips=off",
        f"hydra.run.dir={run}",
    )
    assert res.returncode == 0, res.stderr
    for name in ("config.yaml", "metrics.json", "per_image.csv", "grid.png"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["model"] == "telea"
    assert metrics["overall"]["images"] == 4 and metrics["convention"]["name"] == "inpaintbench"
    assert metrics["lpips"]["available"] is False
    assert Image.open(run / "grid.png").size == (4 * 64, 4 * 64)

    # scoring the saved PNG predictions gives exactly the recorded per-image numbers
    frame = pd.read_csv(run / "per_image.csv")
    _, test = split_sources(embedded_sources(), EMBEDDED_TEST, 0.0)
    images, names = make_test_set(test, 64, 0, crops_per_image=2)
    m = masks.to_tensor(
        [masks.mask_for_index("box_deepfill_v1", 0, i, 64, 64) for i in range(len(images))]
    )
    preds = (
        torch.stack(
            [
                torch.from_numpy(np.array(Image.open(run / "predictions" / f"{n}.png"))).permute(
                    2, 0, 1
                )
                for n in names
            ]
        ).float()
        / 127.5
        - 1
    )
    got = image_metrics(preds, images, m)
    np.testing.assert_allclose(got["psnr"].numpy(), frame["psnr"].to_numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(got["l1_hole"].numpy(), frame["l1_hole"].to_numpy(), atol=1e-12)


def test_missing_data_root_fails_before_model(tmp_path):
    run = tmp_path / "bad"
    res = bench(
        "model=telea", "data=folder", f"data.root={tmp_path / 'nope'}", f"hydra.run.dir={run}"
    )
    assert res.returncode != 0
    assert "does not exist" in res.stderr
    record = json.loads((run / "metrics.json").read_text())
    assert record["status"] == "failed" and "does not exist" in record["error"]


def test_help_lists_groups():
    res = bench("--help")
    assert res.returncode == 0
    for group in ("model:", "data:", "mask:", "train:", "eval:"):
        assert group in res.stdout


def test_sweep_records_failures_and_skips_finished_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    args = (
        "-m",
        "model=telea",
        "seed=0,-1",
        "data.resolution=32",
        "data.test_crops=1",
        "eval.lpips=off",
        "eval.save_predictions=false",
        f"hydra.sweep.dir={sweep}",
    )
    res = bench(*args)
    assert res.returncode == 0, res.stderr  # the failing job did not stop the sweep
    ok, failed = (json.loads((sweep / f"{i}_telea" / "metrics.json").read_text()) for i in (0, 1))
    assert ok["status"] == "ok" and failed["status"] == "failed"
    assert "seed" in failed["error"].lower() or "negative" in failed["error"].lower()
    stamp = (sweep / "0_telea" / "metrics.json").stat().st_mtime_ns
    res = bench(*args)
    assert res.returncode == 0 and "skipping telea" in res.stdout + res.stderr
    assert (sweep / "0_telea" / "metrics.json").stat().st_mtime_ns == stamp
