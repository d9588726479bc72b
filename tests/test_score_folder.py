"""Scoring a folder of PNG pairs (benchmarks.score_folder): the same numbers as scoring the
tensors in memory, batch by batch, under every convention; clear errors naming the file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from benchmarks.data import DataError
from benchmarks.evaluate import save_masks, save_pngs, score
from benchmarks.metrics import CONVENTIONS, METRICS
from benchmarks.score_folder import main, score_folder


def _set(n=5, h=40, w=48, seed=0):
    """8-bit images in [-1, 1] (as benchmarks.data makes them), predictions off the grid,
    masks with holes (the first without one)."""
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, 256, (n, 3, h, w), generator=g).float() / 127.5 - 1
    pred = (target + torch.randn(n, 3, h, w, generator=g) * 0.1).clamp(-1, 1)
    masks = torch.zeros(n, 1, h, w)
    for i in range(1, n):
        top, left = torch.randint(0, h // 2, (2,), generator=g).tolist()
        masks[i, :, top : top + h // 3, left : left + w // 3] = 1
    composite = masks * pred + (1 - masks) * target
    return composite, target, masks, [f"img{i:02d}" for i in range(n)]


def _write(tmp_path, composite, target, masks, names):
    save_pngs(tmp_path / "pred", composite, names)
    save_pngs(tmp_path / "gt", target, names)
    save_masks(tmp_path / "masks", masks, names)
    # what a PNG holds: the composite on the 8-bit grid, read back as benchmarks.data does
    return torch.round((composite + 1) * 127.5) / 127.5 - 1


@pytest.mark.parametrize("convention", list(CONVENTIONS))
def test_folder_scores_equal_in_memory_scores(tmp_path, convention):
    """Equal up to the summation order of torch's reductions, which depends on the batch."""
    composite, target, masks, names = _set(h=56, w=60)
    saved = _write(tmp_path, composite, target, masks, names)
    want = score(saved.float(), target, masks, names, None, convention=convention)
    got = score_folder(
        tmp_path / "pred", tmp_path / "gt", tmp_path / "masks", convention, batch_size=2,
        workers=3,
    )  # fmt: skip
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12, atol=1e-15)
    assert np.isnan(got.loc[0, "psnr_hole"]) and got.loc[1:, "psnr_hole"].notna().all()


def test_without_masks_hole_metrics_are_not_applicable(tmp_path):
    composite, target, masks, names = _set()
    saved = _write(tmp_path, composite, target, masks, names)
    got = score_folder(tmp_path / "pred", tmp_path / "gt", None, batch_size=4)
    want = score(saved.float(), target, torch.zeros_like(masks), names, None)
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12, atol=1e-15)
    assert got["l1_hole"].isna().all() and (got["hole_ratio"] == 0).all()


def test_command_line_writes_the_per_image_csv(tmp_path, capsys):
    composite, target, masks, names = _set()
    saved = _write(tmp_path, composite, target, masks, names)
    out = tmp_path / "per_image.csv"
    summary = main(
        [str(tmp_path / "pred"), str(tmp_path / "gt"), "--masks", str(tmp_path / "masks"),
         "--batch", "3", "--lpips", "off", "--out", str(out), "--json", str(tmp_path / "s.json")]
    )  # fmt: skip
    frame = pd.read_csv(out)
    want = score(saved.float(), target, masks, names, None)
    for m in METRICS[:-1]:
        np.testing.assert_allclose(frame[m], want[m], rtol=1e-12, equal_nan=True)
    assert summary["overall"]["images"] == 5 and summary["overall"]["psnr_hole_count"] == 4
    assert (tmp_path / "s.json").is_file() and '"psnr"' in capsys.readouterr().out


def test_errors_name_the_files(tmp_path):
    composite, target, masks, names = _set()
    _write(tmp_path, composite, target, masks, names)
    pred, gt, mk = tmp_path / "pred", tmp_path / "gt", tmp_path / "masks"
    (pred / "img03.png").rename(tmp_path / "moved.png")
    with pytest.raises(DataError, match=r"1 of 5 predictions are missing.*img03\.png"):
        score_folder(pred, gt, mk)
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(pred / "img03.png")
    with pytest.raises(DataError, match=r"img03\.png is 40x50 \(HxW\) but .*img03\.png is 40x48"):
        score_folder(pred, gt, mk)
    (pred / "img03.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"cannot read image .*pred/img03\.png"):
        score_folder(pred, gt, mk)
    (tmp_path / "moved.png").rename(pred / "img03.png")
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(pred / "extra.png")
    with pytest.raises(DataError, match=r"have no ground truth: extra\.png"):
        score_folder(pred, gt, mk)
    (pred / "extra.png").unlink()
    Image.fromarray(np.zeros((20, 48), np.uint8)).save(mk / "img01.png")
    with pytest.raises(DataError, match=r"masks/img01\.png is 20x48"):
        score_folder(pred, gt, mk)
    (mk / "img01.png").unlink()
    with pytest.raises(DataError, match=r"1 masks are missing .*img01\.png"):
        score_folder(pred, gt, mk)
    with pytest.raises(DataError, match="is not a folder"):
        score_folder(tmp_path / "nope", gt)
