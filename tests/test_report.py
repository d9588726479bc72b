"""``python -m benchmarks.report``: every run (finished and failed) lands in results.csv with
the numbers of its metrics.json, the tables state the protocol and mark the best values and
the rows that do not follow the paper, the grid holds each model's own predictions, and the
report regenerates byte for byte."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from PIL import Image

from benchmarks import report
from benchmarks.config import register_configs
from benchmarks.run import record_failure, run

CONF = Path(__file__).resolve().parents[1] / "conf"
OVERRIDES = ("data.resolution=64", "data.test_crops=2", "eval.lpips=off", "mask=center_box")

register_configs()


def _cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="bench", overrides=[*OVERRIDES, *overrides])


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A sweep folder: telea and mean_fill (real runs), a copy of telea relabelled as a model
    trained with random VGG losses, and a failed job."""
    root = tmp_path_factory.mktemp("report") / "sweep"
    run(_cfg("model=telea"), root / "telea")
    run(_cfg("model=mean_fill"), root / "mean_fill")
    shutil.copytree(root / "telea", root / "vgg_model")
    path = root / "vgg_model" / "metrics.json"
    record = json.loads(path.read_text())
    record.update(model="partial_conv", loss_vgg="random")
    path.write_text(json.dumps(record))
    try:
        raise RuntimeError("out of memory in step 3")
    except RuntimeError as exc:
        record_failure(root / "broken", _cfg("model=glcic"), exc)
    return root


def _metrics(sweep: Path, job: str) -> dict:
    return json.loads((sweep / job / "metrics.json").read_text())


def test_regenerates_byte_identically(sweep, tmp_path, monkeypatch):
    first = report.write_report([sweep], "smoke", tmp_path / "a")
    second = report.write_report([sweep], "smoke", tmp_path / "b")
    monkeypatch.chdir(sweep.parent)  # a relative path names the runs the same way
    assert report.main(["sweep", "--name", "smoke", "--out", str(tmp_path / "c")]) == 0
    third = tmp_path / "c" / "smoke"
    written = sorted(p.name for p in first.iterdir())
    assert written == sorted(report.OUTPUT_FILES)
    for name in written:
        data = (first / name).read_bytes()
        assert data == (second / name).read_bytes() == (third / name).read_bytes(), name
    assert b"Software" not in (first / "grid.png").read_bytes()  # no version stamp


def test_results_csv_holds_every_run_and_scope(sweep, tmp_path):
    folder = report.write_report([sweep], "smoke", tmp_path)
    frame = pd.read_csv(folder / "results.csv")
    assert set(frame["run"]) == {
        f"sweep/{j}" for j in ("telea", "mean_fill", "vgg_model", "broken")
    }
    failed = frame[frame["status"] == "failed"]
    assert len(failed) == 1 and "out of memory in step 3" in failed["error"].iloc[0]
    for job in ("telea", "mean_fill"):
        record = _metrics(sweep, job)
        rows = frame[frame["run"] == f"sweep/{job}"]
        assert list(rows["scope"]) == ["overall", *record["buckets"]]
        for _, row in rows.iterrows():
            want = (
                record["overall"] if row["scope"] == "overall" else record["buckets"][row["scope"]]
            )
            for metric in ("psnr", "ssim", "l1_hole", "psnr_hole", "l1"):
                assert (
                    row[metric] == want[metric]
                    and row[f"{metric}_count"] == want[f"{metric}_count"]
                )
            assert math.isnan(row["lpips"]) and row["lpips_count"] == 0


def test_table_states_protocol_marks_rows_and_bolds_the_best(sweep, tmp_path):
    folder = report.write_report([sweep], "smoke", tmp_path)
    md = (folder / "table.md").read_text()
    train = _cfg().train  # the default budget (conf/train/default.yaml)
    for line in (
        "| resolution | 64 x 64 |",
        "| test images | 4 |",
        f"| training budget (trainable models) | {train.steps} steps x batch {train.batch_size} |",
        "| metric convention | inpaintbench |",
        "| test masks | center_box (family center_box, params {}, seed 0) |",
        "## Results: metric convention `inpaintbench`",
        "LPIPS: n/a (disabled (eval.lpips=off)).",
        "- `glcic` (`sweep/broken`): RuntimeError: out of memory in step 3",
    ):
        assert line in md, line
    assert "| device | CPU" in md and "torch 2." in md
    assert "partial_conv †" in md and "† trained with random VGG weights" in md
    assert "not the paper's objective" in md
    telea, mean = _metrics(sweep, "telea")["overall"], _metrics(sweep, "mean_fill")["overall"]
    psnr = md.split("### PSNR (dB) (higher is better)")[1].split("###")[0]
    best, other = (telea, mean) if telea["psnr"] > mean["psnr"] else (mean, telea)
    assert f"**{best['psnr']:.2f}**" in psnr and f"| {other['psnr']:.2f} |" in psnr
    l1 = md.split("### L1 (hole) (lower is better)")[1].split("###")[0]
    low = min(telea["l1_hole"], mean["l1_hole"])
    assert f"**{low:.4f}**" in l1
    tex = (folder / "table.tex").read_text()
    assert f"\\textbf{{{best['psnr']:.2f}}}" in tex and "partial\\_conv $^\\dagger$" in tex
    assert "\\begin{tabular}" in tex and "inpaintbench" in tex


def test_grid_shows_each_models_own_predictions(sweep, tmp_path):
    folder = report.write_report([sweep], "smoke", tmp_path, grid_rows=3)
    grid = np.asarray(Image.open(folder / "grid.png").convert("RGB"))
    names = sorted(p.stem for p in (sweep / "telea" / "ground_truth").glob("*.png"))
    picked = [names[i] for i in (0, 2, 3)]  # 3 of 4, evenly spaced: rounded linspace(0, 3, 3)
    size, gap, top = 128, 2, 30  # 64 px images enlarged pixel by pixel
    columns = ["input", "mean_fill", "partial_conv", "telea", "ground truth"]
    assert grid.shape == (top + 3 * size + 2 * gap, 5 * size + 4 * gap, 3)

    def tile(row, col):
        y, x = top + row * (size + gap), col * (size + gap)
        return grid[y : y + size, x : x + size]

    def enlarged(path):
        return np.asarray(Image.open(path).convert("RGB")).repeat(2, 0).repeat(2, 1)

    for row, name in enumerate(picked):
        truth = enlarged(sweep / "telea" / "ground_truth" / f"{name}.png")
        hole = enlarged(sweep / "telea" / "test_masks" / f"{name}.png")[..., :1] > 127
        np.testing.assert_array_equal(tile(row, 0), np.where(hole, 255, truth))
        for col, job in ((1, "mean_fill"), (2, "vgg_model"), (3, "telea")):
            pred = enlarged(sweep / job / "predictions" / f"{name}.png")
            np.testing.assert_array_equal(tile(row, col), pred, err_msg=f"{columns[col]} {name}")
        np.testing.assert_array_equal(tile(row, 4), truth)
    assert (
        "columns: masked input (hole white), mean_fill, partial_conv, telea"
        in (folder / "table.md").read_text()
    )


def test_nothing_to_collect_is_an_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        report.main([str(tmp_path)])
    assert err.value.code == 2 and "no metrics.json found" in capsys.readouterr().err
