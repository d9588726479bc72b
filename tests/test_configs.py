"""Hydra configuration: every group composes, typos are rejected, model configs hold the
constructor defaults (the paper's hyperparameters), mask configs name real families."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

import masks
import zoo
from benchmarks.config import register_configs
from zoo._registry import model_parameters

CONF = Path(__file__).resolve().parents[1] / "conf"


register_configs()


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="bench", overrides=list(overrides))


def test_default_is_deepfill_v2_on_embedded_data():
    cfg = _compose()
    assert cfg.model.name == "deepfill_v2" and cfg.data.name == "embedded"
    assert OmegaConf.select(cfg, "experiment") is None


@pytest.mark.parametrize("override", ["train.stepz=5", "data.colour=1", "model.kwargs.cnumm=3"])
def test_unknown_keys_are_rejected(override):
    with pytest.raises(ConfigCompositionException):
        _compose(override)


@pytest.mark.parametrize(
    "override", ["train.steps=abc", "data.skip_bad=maybe", "data.resolution=1.5", "seed=x"]
)
def test_wrong_types_are_rejected(override):
    with pytest.raises(ConfigCompositionException):
        _compose(override)


def test_overrides_apply():
    cfg = _compose("train.steps=50", "data.resolution=64", "model=telea")
    assert cfg.train.steps == 50 and cfg.data.resolution == 64 and cfg.model.name == "telea"


@pytest.mark.parametrize("path", sorted((CONF / "model").glob("*.yaml")), ids=lambda p: p.stem)
def test_model_config_matches_constructor_defaults(path):
    spec = yaml.safe_load(path.read_text())
    assert spec["name"] == path.stem and spec["name"] in zoo.list_models()
    params = model_parameters(spec["name"])
    for key, value in (spec.get("kwargs") or {}).items():
        assert key in params, f"{path.name}: {key} is not an argument of {spec['name']}"
        default = params[key].default
        if isinstance(default, tuple):
            default = list(default)
        assert value == default, f"{path.name}: {key}={value!r} but the code default is {default!r}"


def test_every_registered_model_has_a_config():
    configured = {p.stem for p in (CONF / "model").glob("*.yaml")}
    assert set(zoo.list_models()) <= configured


@pytest.mark.parametrize("path", sorted((CONF / "mask").glob("*.yaml")), ids=lambda p: p.stem)
def test_mask_configs_name_real_families(path):
    spec = yaml.safe_load(path.read_text())
    assert spec["name"] == path.stem and spec["family"] in masks.FAMILIES
    params = spec.get("params") or {}
    unknown = set(params) - set(masks.family_params(spec["family"]))
    assert not unknown, f"{path.name}: {unknown} are not parameters of {spec['family']}"
    if "???" in params.values():  # a required value (e.g. the folder of mask files)
        return
    size = 512 if "512" in path.stem else 256
    mask = masks.make_mask(spec["family"], size, size, np.random.default_rng(0), **params)
    assert mask.shape == (size, size) and set(np.unique(mask)) <= {0, 1}
