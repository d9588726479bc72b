"""Score a folder of predicted PNGs against a folder of ground-truth PNGs.

``python -m benchmarks.score_folder PRED_DIR GT_DIR [--masks DIR] [--convention inpaintbench]
[--batch 32] [--workers N] [--lpips auto|required|off] [--out per_image.csv] [--json FILE]``

The same functions a run uses for ``eval.predictions=DIR`` (:func:`benchmarks.evaluate.score`
and :func:`benchmarks.evaluate.summarize`), over pairs ``PRED_DIR/<name>.png`` /
``GT_DIR/<name>.png`` (and ``--masks DIR/<name>.png``, 255 = hole, as a run's
``test_masks/``; without masks the hole metrics are not applicable).  A run directory's
``predictions/``, ``ground_truth/`` and ``test_masks/`` re-score to its ``per_image.csv``.

Files are decoded on a thread pool (PIL releases the GIL while decoding), one batch ahead of
the scoring, so memory holds two batches, not the folder.  Every name must have its pair;
sizes must agree; an unreadable file is an error naming it.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from masks.file_masks import read_mask_file

from .data import DataError, decode_workers, load_image
from .evaluate import score, summarize, write_json
from .metrics import CONVENTIONS, LPIPSScorer, check_convention

__all__ = ["pair_names", "read_pairs", "iter_batches", "score_folder", "main"]


def _pngs(folder: Path, what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(f"{what}: {folder} is not a folder")
    return {p.stem: p for p in sorted(folder.glob("*.png")) if p.is_file()}


def _few(names: list[str]) -> str:
    return ", ".join(f"{n}.png" for n in names[:3]) + (" ..." if len(names) > 3 else "")


def pair_names(
    pred_dir: str | os.PathLike, gt_dir: str | os.PathLike, mask_dir: str | os.PathLike | None
) -> list[str]:
    """The sorted names ``<name>.png`` present in every folder; a name missing in any of
    them is a ``DataError`` naming the files."""
    gt = _pngs(Path(gt_dir), "ground truth")
    if not gt:
        raise DataError(f"ground truth: no .png files in {gt_dir}")
    pred = _pngs(Path(pred_dir), "predictions")
    names = sorted(gt)
    missing = [n for n in names if n not in pred]
    if missing:
        raise DataError(
            f"{len(missing)} of {len(names)} predictions are missing in {pred_dir}: "
            f"{_few(missing)} (one <name>.png per ground-truth image)"
        )
    extra = sorted(set(pred) - set(gt))
    if extra:
        raise DataError(
            f"{len(extra)} predictions in {pred_dir} have no ground truth: {_few(extra)}"
        )
    if mask_dir is not None:
        masks = _pngs(Path(mask_dir), "masks")
        missing = [n for n in names if n not in masks]
        if missing:
            raise DataError(f"{len(missing)} masks are missing in {mask_dir}: {_few(missing)}")
    return names


def _read_one(
    pred_dir: Path, gt_dir: Path, mask_dir: Path | None, name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """H x W x 3 uint8 prediction and ground truth, H x W uint8 mask (1 = hole) or None."""
    gt = load_image(gt_dir / f"{name}.png")  # DataError naming the file when unreadable
    pred = load_image(pred_dir / f"{name}.png")
    if pred.shape != gt.shape:
        raise DataError(
            f"{pred_dir / (name + '.png')} is {pred.shape[0]}x{pred.shape[1]} (HxW) but "
            f"{gt_dir / (name + '.png')} is {gt.shape[0]}x{gt.shape[1]}"
        )
    if mask_dir is None:
        return pred, gt, None
    try:
        mask = read_mask_file(mask_dir / f"{name}.png", polarity_warning=1.0)
    except ValueError as exc:
        raise DataError(str(exc)) from exc
    if mask.shape != gt.shape[:2]:
        raise DataError(
            f"{mask_dir / (name + '.png')} is {mask.shape[0]}x{mask.shape[1]} (HxW) but "
            f"{gt_dir / (name + '.png')} is {gt.shape[0]}x{gt.shape[1]}"
        )
    return pred, gt, mask


def _to_tensor(arrays: list[np.ndarray]) -> torch.Tensor:
    """uint8 N x H x W x 3 -> float32 N x 3 x H x W in [-1, 1] (as benchmarks.data makes
    test images and load_predictions reads predictions)."""
    planes = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()  # N x 3 x H x W
    return planes.float() / 127.5 - 1.0  # converted here, on the read-ahead thread


def read_pairs(
    pool: ThreadPoolExecutor,
    pred_dir: str | os.PathLike,
    gt_dir: str | os.PathLike,
    mask_dir: str | os.PathLike | None,
    names: list[str],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Prediction, ground truth (N x 3 x H x W in [-1, 1]) and masks (N x 1 x H x W, 1 =
    hole; zeros without ``mask_dir``) of ``names``, decoded on ``pool``."""
    md = None if mask_dir is None else Path(mask_dir)
    rows = list(pool.map(lambda n: _read_one(Path(pred_dir), Path(gt_dir), md, n), names))
    h, w = rows[0][1].shape[:2]
    for name, (_, gt, _) in zip(names, rows):
        if gt.shape[:2] != (h, w):
            raise DataError(
                f"{Path(gt_dir) / (name + '.png')} is {gt.shape[0]}x{gt.shape[1]} but "
                f"{Path(gt_dir) / (names[0] + '.png')} is {h}x{w}: one batch needs one size"
            )
    pred, gt = _to_tensor([r[0] for r in rows]), _to_tensor([r[1] for r in rows])
    if md is None:
        masks = torch.zeros(len(names), 1, h, w)
    else:
        masks = torch.from_numpy(np.stack([r[2] for r in rows]))[:, None].float()
    return pred, gt, masks


def iter_batches(
    pred_dir: str | os.PathLike,
    gt_dir: str | os.PathLike,
    mask_dir: str | os.PathLike | None,
    names: list[str],
    batch_size: int,
    workers: int,
) -> Iterator[tuple[list[str], torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(names, prediction, ground truth, masks) per batch; the next batch is decoded while
    the caller scores this one."""
    if batch_size < 1 or workers < 1:
        raise ValueError(f"batch_size and workers must be >= 1, got {batch_size}, {workers}")
    chunks = [names[i : i + batch_size] for i in range(0, len(names), batch_size)]
    with (
        ThreadPoolExecutor(workers, thread_name_prefix="score-read") as pool,
        ThreadPoolExecutor(1, thread_name_prefix="score-batch") as ahead,
    ):

        def submit(chunk: list[str]) -> Future:
            return ahead.submit(read_pairs, pool, pred_dir, gt_dir, mask_dir, chunk)

        pending = submit(chunks[0]) if chunks else None
        for i, chunk in enumerate(chunks):
            batch = pending.result()
            pending = submit(chunks[i + 1]) if i + 1 < len(chunks) else None
            yield (chunk, *batch)


def score_folder(
    pred_dir: str | os.PathLike,
    gt_dir: str | os.PathLike,
    mask_dir: str | os.PathLike | None = None,
    convention: str = "inpaintbench",
    batch_size: int = 32,
    workers: int | None = None,
    lpips: LPIPSScorer | None = None,
) -> pd.DataFrame:
    """One row per image pair (the columns of a run's ``per_image.csv``)."""
    check_convention(convention)
    names = pair_names(pred_dir, gt_dir, mask_dir)
    workers = workers or decode_workers()
    frames = [
        score(pred, gt, masks, chunk, lpips, batch_size=batch_size, convention=convention)
        for chunk, pred, gt, masks in iter_batches(
            pred_dir, gt_dir, mask_dir, names, batch_size, workers
        )
    ]
    return pd.concat(frames, ignore_index=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pred_dir", type=Path, help="folder of <name>.png predictions")
    parser.add_argument("gt_dir", type=Path, help="folder of <name>.png ground truth")
    parser.add_argument("--masks", type=Path, default=None, help="<name>.png masks, 255 = hole")
    parser.add_argument("--convention", default="inpaintbench", choices=list(CONVENTIONS))
    parser.add_argument("--batch", type=int, default=32, help="pairs scored at once")
    parser.add_argument("--workers", type=int, default=None, help="decoding threads")
    parser.add_argument("--threads", type=int, default=None, help="torch / SSIM threads")
    parser.add_argument("--lpips", default="auto", choices=["auto", "required", "off"])
    parser.add_argument("--out", type=Path, default=None, help="per-image CSV")
    parser.add_argument("--json", type=Path, default=None, help="summary JSON")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    lpips = LPIPSScorer(args.lpips)
    frame = score_folder(
        args.pred_dir, args.gt_dir, args.masks, args.convention, args.batch, args.workers, lpips
    )
    summary = summarize(frame, args.convention)
    summary["lpips"] = {"available": lpips.available, "reason": lpips.reason}
    if args.out is not None:
        frame.to_csv(args.out, index=False)
    if args.json is not None:
        write_json(args.json, summary)
    overall = {k: v for k, v in summary["overall"].items() if not k.endswith("_count")}
    print(json.dumps(overall, indent=2, default=float))
    return summary


if __name__ == "__main__":
    main()
