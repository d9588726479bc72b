"""The evaluation protocol: frozen mask sets are the test masks, external predictions are
scored like a run's own, metric conventions are recorded, the experiments compose, and a
sweep with the joblib launcher finishes and writes its report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException
from PIL import Image

import masks
import zoo
from benchmarks import run as runmod
from benchmarks.config import register_configs
from benchmarks.data import DataError
from benchmarks.metrics import image_metrics

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
BASE = ("model=telea", "data.resolution=64", "data.test_crops=2", "eval.lpips=off")

register_configs()


def _cfg(*overrides: str, hydra: bool = False):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="bench", overrides=list(overrides), return_hydra_config=hydra)


def _run(run_dir: Path, *overrides: str) -> dict:
    return runmod.run(_cfg(*BASE, *overrides), run_dir)


def _png_stack(folder: Path, names: list[str]) -> torch.Tensor:
    arrays = [np.array(Image.open(folder / f"{n}.png")) for n in names]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).double() / 127.5 - 1


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if a model is built."""

    def refuse(cfg):
        raise AssertionError("a model was built")

    monkeypatch.setattr(runmod, "build_model", refuse)


# ---------------------------------------------------------------------- frozen masks
def test_frozen_set_provides_mask_i_for_test_image_i(tmp_path):
    frozen = tmp_path / "frozen"
    manifest = masks.write_frozen("box_glcic", 4, 64, 64, 7, frozen)
    record = _run(tmp_path / "run", f"eval.masks={frozen}", "mask=center_box")
    info = record["protocol"]["test_masks"]
    assert info["source"] == "frozen" and info["family"] == "box_glcic" and info["seed"] == 7
    assert record["mask"] == "frozen:frozen"
    frame = pd.read_csv(tmp_path / "run" / "per_image.csv")
    expected = [e["hole_ratio"] for e in manifest["files"]]
    np.testing.assert_allclose(frame["hole_ratio"].to_numpy(), expected, rtol=0, atol=0)
    loaded = masks.load_frozen(frozen)
    for name, mask in zip(frame["name"], loaded):  # mask i belongs to test image i
        saved = np.array(Image.open(tmp_path / "run" / "test_masks" / f"{name}.png")) // 255
        np.testing.assert_array_equal(saved, mask)
    # the training family (center_box) is not what was scored
    centre = masks.mask_for_index("center_box", 0, 0, 64, 64)
    assert not np.array_equal(loaded[0], centre)


def test_frozen_set_mismatches_are_errors_before_any_model(tmp_path, no_model):
    frozen = tmp_path / "frozen"
    masks.write_frozen("center_box", 4, 32, 32, 0, frozen)
    with pytest.raises(DataError, match=r"32x32 but data.resolution=64"):
        _run(tmp_path / "a", f"eval.masks={frozen}")
    with pytest.raises(DataError, match=r"holds 4 masks but the test set has 6 images"):
        _run(tmp_path / "b", f"eval.masks={frozen}", "data.resolution=32", "data.test_crops=3")
    (frozen / "00001.png").write_bytes(masks.frozen.encode_png(np.ones((32, 32), np.uint8)))
    with pytest.raises(ValueError, match="changed"):
        _run(tmp_path / "c", f"eval.masks={frozen}", "data.resolution=32")


# -------------------------------------------------------------- external predictions
def test_external_predictions_score_like_the_run_itself(tmp_path, monkeypatch):
    first = _run(tmp_path / "own")
    monkeypatch.setattr(runmod, "build_model", lambda cfg: pytest.fail("a model was built"))
    ext = _run(tmp_path / "ext", f"eval.predictions={tmp_path / 'own' / 'predictions'}")
    assert ext["predictions"]["external"] is True and ext["protocol"]["external_predictions"]
    assert ext["predictions"]["known_region_max_abs_diff_levels"] == 0  # composites
    assert ext["params"] is None and ext["train"] is None
    own = pd.read_csv(tmp_path / "own" / "per_image.csv")
    scored = pd.read_csv(tmp_path / "ext" / "per_image.csv")
    pd.testing.assert_frame_equal(own, scored, check_exact=True)
    assert ext["overall"] == first["overall"]


def test_baselines_are_scored_on_the_same_images_and_masks(tmp_path):
    """metrics.json "baselines" equals the baseline's own run on the same protocol."""
    telea = _run(tmp_path / "telea", "eval.baselines=[mean_fill,telea]")
    assert set(telea["baselines"]) == {"mean_fill"}  # the model itself is not repeated
    mean_fill = _run(tmp_path / "mean_fill", "model=mean_fill", "eval.baselines=[]")
    assert mean_fill["baselines"] == {}
    assert telea["baselines"]["mean_fill"] == mean_fill["overall"]
    assert telea["baselines"]["mean_fill"]["psnr_hole"] < telea["overall"]["psnr_hole"]


def test_trained_models_are_refused_as_baselines(tmp_path, no_model):
    with pytest.raises(ValueError, match="deepfill_v2.*needs training"):
        _run(tmp_path, "eval.baselines=[deepfill_v2]")
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        _run(tmp_path, "eval.baselines=[nope]")


def test_external_raw_outputs_are_flagged(tmp_path):
    """Files that change known pixels (raw outputs, not composites) are scored as given and
    the largest change outside the hole is recorded."""
    _run(tmp_path / "own", "mask=center_box")
    preds = tmp_path / "own" / "predictions"
    name = sorted(preds.glob("*.png"))[0]
    arr = np.array(Image.open(name))
    arr[0, 0] = (arr[0, 0].astype(int) + 9) % 256  # a corner pixel: outside every hole here
    Image.fromarray(arr).save(name)
    record = _run(tmp_path / "ext", f"eval.predictions={preds}", "mask=center_box")
    assert record["predictions"]["known_region_max_abs_diff_levels"] == pytest.approx(9, abs=1e-4)


def test_external_prediction_errors_name_the_files(tmp_path, no_model):
    folder = tmp_path / "preds"
    folder.mkdir()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(folder / "chelsea_00.png")
    with pytest.raises(DataError, match=r"3 of 4 prediction files are missing .*chelsea_01.png"):
        _run(tmp_path / "a", f"eval.predictions={folder}")
    for name in ("chelsea_01", "coffee_00", "coffee_01"):
        Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(folder / f"{name}.png")
    with pytest.raises(DataError, match=r"chelsea_01.png is 48x64 .* test images are 64x64"):
        _run(tmp_path / "b", f"eval.predictions={folder}")
    with pytest.raises(DataError, match="is not a folder"):
        _run(tmp_path / "c", f"eval.predictions={tmp_path / 'nope'}")


# ------------------------------------------------------------------- conventions
@pytest.mark.parametrize("convention", ["mmagic", "edgeconnect"])
def test_convention_is_applied_and_recorded(tmp_path, convention):
    record = _run(tmp_path / "run", f"eval.convention={convention}")
    assert record["convention"]["name"] == convention
    assert record["protocol"]["convention"] == convention
    frame = pd.read_csv(tmp_path / "run" / "per_image.csv")
    names = list(frame["name"])
    truth = _png_stack(tmp_path / "run" / "ground_truth", names)
    holes = torch.stack(
        [
            torch.from_numpy(np.array(Image.open(tmp_path / "run" / "test_masks" / f"{n}.png")))
            for n in names
        ]
    )[:, None].double()
    preds = _png_stack(tmp_path / "run" / "predictions", names)
    want = image_metrics(preds, truth, holes / 255, convention)
    # telea's composites are 8-bit levels held in float32: edgeconnect truncates them back to
    # exactly those levels; mmagic scores the floats, which differ from the PNG's levels by
    # float32 rounding only
    rtol = 1e-6 if convention == "mmagic" else 0
    for key in ("psnr", "ssim", "l1", "l1_hole"):
        np.testing.assert_allclose(frame[key].to_numpy(), want[key].numpy(), rtol=rtol, atol=1e-12)


def test_unknown_convention_is_an_error(tmp_path, no_model):
    with pytest.raises(ValueError, match="eval.convention must be one of"):
        _run(tmp_path / "run", "eval.convention=lama")


def test_fit_resolution_builds_discriminators_for_the_data_size():
    cfg = _cfg("model=glcic", "data.resolution=128", "model.fit_resolution=true")
    assert runmod.model_kwargs(cfg)["image_size"] == 128
    assert runmod.model_kwargs(_cfg("model=glcic"))["image_size"] == 256  # paper default
    assert "image_size" not in runmod.model_kwargs(_cfg("model=telea", "model.fit_resolution=1"))


# ------------------------------------------------------------------- experiments
PAPER_MASKS = {
    "context_encoder": ("center_box_ce", 128),
    "msnps": ("center_box_ce", 128),
    "glcic": ("box_glcic", 256),
    "pggan": ("center_box", 256),
    "shift_net": ("center_box_shiftnet", 256),
    "deepfill_v1": ("box_deepfill_v1", 256),
    "gmcnn": ("box_gmcnn", 256),
    "partial_conv": ("irregular_mmagic", 256),
    "edge_connect": ("irregular_mmagic", 256),
    "deepfill_v2": ("deepfill_v2_train", 256),
}


def test_quickstart_keeps_deepfill_v2_and_scales_only_the_budget():
    cfg = _cfg("experiment=quickstart")
    paper = _cfg()
    assert cfg.model.name == "deepfill_v2" and cfg.mask.name == "deepfill_v2_train"
    assert cfg.model.kwargs.lr == 1e-3 and cfg.model.kwargs.gan_loss_alpha == 0.1
    changed = {k for k in cfg.model.kwargs if cfg.model.kwargs[k] != paper.model.kwargs[k]}
    assert changed == {"lr", "gan_loss_alpha"}  # architecture and the other losses as official
    assert cfg.train.lr_schedule == "cosine" and cfg.data.resolution == 64
    assert cfg.train.amp == "bf16" and paper.train.amp == "none"  # master weights stay float32
    assert cfg.eval.amp == "none"  # scored in float32
    assert cfg.data.test_crops == 32 and paper.data.test_crops == 8
    # the official 12-40 px stroke widths at 256 px, scaled to 64 px
    assert (cfg.mask.params.min_width, cfg.mask.params.max_width) == (3, 10)
    assert list(cfg.eval.baselines) == ["mean_fill", "telea"]


def test_cpu_smoke_protocol():
    cfg = _cfg("experiment=cpu_smoke", hydra=True)
    assert cfg.data.resolution == 128 and cfg.mask.name == "center_box"
    assert cfg.loss.vgg == "random" and cfg.eval.lpips == "auto" and cfg.device == "cpu"
    assert cfg.model.fit_resolution is True
    assert cfg.hydra.sweeper.params == {"model": "glob(*)"}
    assert cfg.hydra.sweep.dir == "outputs/multiruns/cpu_smoke"  # re-running skips finished jobs
    assert cfg.hydra.callbacks.report.out == "reports"
    assert cfg.hydra.callbacks.report.name == "cpu_smoke"
    # glob(*) over the model group = every registered model (and both baselines)
    assert {p.stem for p in (CONF / "model").glob("*.yaml")} == set(zoo.list_models())


def test_gpu_protocol_lists_models_that_accept_free_form_masks():
    cfg = _cfg("experiment=gpu_256", hydra=True)
    assert cfg.data.resolution == 256 and cfg.device == "cuda" and cfg.train.amp
    assert cfg.mask.name == "deepfill_v2_train"
    models = set(cfg.hydra.sweeper.params.model.split(","))
    assert models == set(zoo.list_models()) - {"context_encoder", "msnps"}


@pytest.mark.parametrize("experiment", ["paper_places2", "paper_celebahq"])
def test_paper_protocols_give_each_model_its_papers_masks(experiment, tmp_path, no_model):
    jobs = {p.stem for p in (CONF / "experiment" / "paper").glob("*.yaml")}
    assert jobs == set(PAPER_MASKS) == set(zoo.list_models()) - {"mean_fill", "telea"}
    for model, (mask, res) in PAPER_MASKS.items():
        cfg = _cfg(f"experiment={experiment}", f"+experiment/paper={model}", "data.root=/x")
        assert (cfg.model.name, cfg.mask.name, cfg.data.resolution) == (model, mask, res)
        assert cfg.data.name == "folder" and cfg.train.steps >= 100_000
    cfg = _cfg(f"experiment={experiment}", hydra=True)
    assert cfg.hydra.sweeper.params == {"+experiment/paper": "glob(*)"}
    with pytest.raises(ValueError, match="needs data.root"):  # required on the command line
        runmod.run(_cfg(f"experiment={experiment}", "device=cpu"), tmp_path / "run")


def test_slurm_launcher_config():
    """Usable when hydra-submitit-launcher is installed; otherwise selecting it names the
    missing plugin config (it is an optional extra, never required)."""
    try:
        import hydra_plugins.hydra_submitit_launcher  # noqa: F401
    except ImportError:
        with pytest.raises(MissingConfigException, match="hydra/launcher/submitit_slurm"):
            _cfg("hydra/launcher=slurm", hydra=True)
        return
    cfg = _cfg("hydra/launcher=slurm", hydra=True)
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    assert cfg.hydra.launcher.gpus_per_node == 1


def test_joblib_sweep_finishes_and_writes_its_report(tmp_path):
    sweep = tmp_path / "sweep"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench.py"),
            "-m",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "model=telea,mean_fill",
            "data.resolution=32",
            "data.test_crops=1",
            "eval.lpips=off",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    for job in ("0_telea", "1_mean_fill"):
        record = json.loads((sweep / job / "metrics.json").read_text())
        assert record["status"] == "ok" and record["overall"]["images"] == 2
    table = (sweep / "report" / "table.md").read_text()  # the on_multirun_end callback
    assert "| telea |" in table and "| mean_fill |" in table
    results = pd.read_csv(sweep / "report" / "results.csv")
    assert set(results["model"]) == {"telea", "mean_fill"}
