"""Contract tests generated from the registry: every registered model is checked here.

- the composite keeps known pixels exactly, and the output does not depend on hole pixels;
- the same seed builds the same model (same output);
- trainable models: every trainable parameter receives a gradient from its loss (is connected
  to it: a bias right before InstanceNorm has a mathematically zero gradient), and a few
  training steps through the generic loop leave every parameter finite;
- sizes that are not a multiple of the model's stride are padded and cropped back.
"""

from __future__ import annotations

import pytest
import torch

import zoo
from benchmarks.train import TrainOptions, train
from zoo._registry import accepts

MODELS = zoo.list_models()
LATE_STEP = 10**9  # past every warm-up phase, so adversarial terms are on


def build(name: str, seed: int = 0) -> zoo.InpaintModel:
    torch.manual_seed(seed)
    kwargs = {"vgg": "random"} if accepts(name, "vgg") else {}
    return zoo.create_model(name, **kwargs)


def test_size(model: zoo.InpaintModel) -> int:
    return model.input_size or max(64, model.pad_multiple)


test_size.__test__ = False  # a helper, not a test


def batch(size: int, n: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    mask = torch.zeros(n, 1, size, size)
    q = size // 4
    mask[0, :, q : 3 * q, q : 3 * q] = 1  # a centred box (what every model accepts)
    mask[1:, :, q : 3 * q, q : 3 * q] = 1
    return image, mask


@pytest.mark.parametrize("name", MODELS)
def test_composite_keeps_known_pixels_and_ignores_hole_content(name):
    model = build(name).eval()
    image, mask = batch(test_size(model))
    with torch.no_grad():
        out = model(image, mask)
        scrambled = image * (1 - mask) + mask * torch.rand_like(image).mul(2).sub(1)
        out2 = model(scrambled, mask)
    assert out["output"].shape == image.shape
    known = (1 - mask).bool().expand_as(image)
    assert torch.equal(out["composite"][known], image[known])
    assert torch.isfinite(out["output"]).all()
    torch.testing.assert_close(out2["output"], out["output"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_model(name):
    a, b = build(name, seed=3).eval(), build(name, seed=3).eval()
    image, mask = batch(test_size(a))
    with torch.no_grad():
        torch.testing.assert_close(
            a(image, mask)["output"], b(image, mask)["output"], rtol=0, atol=0
        )


@pytest.mark.parametrize("name", [n for n in MODELS if build(n).trainable])
def test_every_parameter_gets_a_gradient(name):
    model = build(name).train()
    image, mask = batch(test_size(model))
    out = model(image, mask)
    loss, logs = model.generator_loss(image, mask, out, LATE_STEP)
    loss.backward()
    missing = [
        k for k, p in model.generator.named_parameters() if p.requires_grad and p.grad is None
    ]
    assert not missing, f"generator parameters without gradient: {missing[:5]}"
    if len(model.discriminators):
        model.zero_grad(set_to_none=True)
        detached = {k: v.detach() for k, v in model(image, mask).items()}
        d_loss, _ = model.discriminator_loss(image, mask, detached, LATE_STEP)
        d_loss.backward()
        missing = [
            k
            for k, p in model.discriminators.named_parameters()
            if p.requires_grad and p.grad is None
        ]
        assert not missing, f"discriminator parameters without gradient: {missing[:5]}"


@pytest.mark.parametrize("name", [n for n in MODELS if build(n).trainable])
def test_a_few_steps_stay_finite(name, tmp_path):
    model = build(name)
    size = test_size(model)

    def batches(step, k):
        return batch(size, seed=step * 10 + k)

    opts = TrainOptions(steps=2, batch_size=2, checkpoint_every=2, log_every=1, progress=False)
    summary = train(model, batches, opts, tmp_path, torch.device("cpu"))
    assert summary["steps"] == 2 and all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("name", [n for n in MODELS if build(n).input_size is None])
def test_odd_sizes_are_padded_and_cropped_back(name):
    model = build(name).eval()
    size = test_size(model)
    image, mask = batch(size + 3)
    image, mask = image[..., : size + 3, : size - 5], mask[..., : size + 3, : size - 5]
    with torch.no_grad():
        out = model(image, mask)
    assert out["output"].shape == image.shape and torch.isfinite(out["output"]).all()
