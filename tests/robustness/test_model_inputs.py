"""The tensor contract is enforced at every model's entrance with a message naming the
problem, for every registered model."""

from __future__ import annotations

import pytest
import torch

import zoo


@pytest.fixture(scope="module")
def model():
    return zoo.create_model("mean_fill").eval()


GOOD = (torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 8))


@pytest.mark.parametrize(
    ("image", "mask", "message"),
    [
        (torch.zeros(3, 8, 8), GOOD[1], "N x 3 x H x W"),
        (torch.zeros(1, 4, 8, 8), GOOD[1], "N x 3 x H x W"),
        (GOOD[0], torch.zeros(1, 3, 8, 8), "N x 1 x H x W"),
        (GOOD[0], torch.zeros(1, 1, 8, 9), "does not match"),
        (GOOD[0], torch.full((1, 1, 8, 8), 0.5), "binary"),
        (torch.full((1, 3, 8, 8), 2.0), GOOD[1], r"\[-1, 1\]"),
        (torch.full((1, 3, 8, 8), float("nan")), GOOD[1], "NaN"),
        (GOOD[0], torch.zeros(1, 1, 8, 8, dtype=torch.uint8), "floating-point"),
    ],
)
def test_contract_violations_are_named(model, image, mask, message):
    with pytest.raises(ValueError, match=message):
        model(image, mask)


@pytest.mark.parametrize("name", zoo.list_models())
def test_every_model_checks_its_inputs(name):
    kwargs = (
        {"vgg": "random"}
        if "vgg" in __import__("inspect").signature(zoo._registry.model_entrypoint(name)).parameters
        else {}
    )
    m = zoo.create_model(name, **kwargs).eval()
    with pytest.raises(ValueError, match="binary"):
        m(torch.zeros(1, 3, 128, 128), torch.full((1, 1, 128, 128), 0.3))


def test_fixed_size_model_says_so():
    m = zoo.models.InpaintModel()
    m.input_size = 128
    with pytest.raises(ValueError, match="only accepts 128x128.*data.resolution=128"):
        m(torch.zeros(1, 3, 64, 64), torch.zeros(1, 1, 64, 64))
