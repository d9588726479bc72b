"""Adversarial losses against hand formulas; WGAN-GP against finite differences (float64)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from zoo.losses.adversarial import AdversarialLoss, gradient_penalty, interpolate_batches

KINDS = ["vanilla", "lsgan", "hinge", "wgan"]


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def hand_g(kind: str, fake: list[float]) -> float:
    terms = {
        "vanilla": [-math.log(1 / (1 + math.exp(-s))) for s in fake],  # -log sigmoid(s)
        "lsgan": [(s - 1) ** 2 for s in fake],
        "hinge": [-s for s in fake],
        "wgan": [-s for s in fake],
    }[kind]
    return sum(terms) / len(terms)


def hand_d(kind: str, real: list[float], fake: list[float]) -> tuple[float, float]:
    if kind == "vanilla":  # -log sigmoid(r), -log(1 - sigmoid(f))
        r = [-math.log(1 / (1 + math.exp(-s))) for s in real]
        f = [-math.log(1 - 1 / (1 + math.exp(-s))) for s in fake]
    elif kind == "lsgan":
        r, f = [(s - 1) ** 2 for s in real], [s**2 for s in fake]
    elif kind == "hinge":
        r, f = [max(0.0, 1 - s) for s in real], [max(0.0, 1 + s) for s in fake]
    else:
        r, f = [-s for s in real], list(fake)
    return sum(r) / len(r), sum(f) / len(f)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", [(4,), (2, 1, 3, 5)])
@pytest.mark.parametrize("average", [False, True])
def test_losses_match_hand_formulas(kind, shape, average):
    gen = torch.Generator().manual_seed(len(shape))
    real = torch.randn(shape, generator=gen, dtype=torch.float64) * 2
    fake = torch.randn(shape, generator=gen, dtype=torch.float64) * 2
    loss = AdversarialLoss(kind, average_real_fake=average)
    r, f = hand_d(kind, real.flatten().tolist(), fake.flatten().tolist())
    expected_d = (r + f) / 2 if average else r + f
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(expected_d, abs=1e-12)
    assert loss.real_loss(real).item() == pytest.approx(r, abs=1e-12)
    assert loss.fake_loss(fake).item() == pytest.approx(f, abs=1e-12)
    assert loss.generator_loss(fake).item() == pytest.approx(
        hand_g(kind, fake.flatten().tolist()), abs=1e-12
    )


def test_vanilla_equals_bce_after_sigmoid_as_the_official_codes():
    gen = torch.Generator().manual_seed(1)
    real, fake = torch.randn(2, 1, 4, 4, generator=gen), torch.randn(2, 1, 4, 4, generator=gen)
    bce = nn.BCELoss()
    loss = AdversarialLoss("vanilla", average_real_fake=True)  # EdgeConnect nsgan
    d_ref = (
        bce(real.sigmoid(), torch.ones_like(real)) + bce(fake.sigmoid(), torch.zeros_like(fake))
    ) / 2
    torch.testing.assert_close(loss.discriminator_loss(real, fake), d_ref)
    torch.testing.assert_close(
        loss.generator_loss(fake), bce(fake.sigmoid(), torch.ones_like(fake))
    )


def test_large_logits_stay_finite():
    s = torch.tensor([200.0, -200.0])
    loss = AdversarialLoss("vanilla")
    assert torch.isfinite(loss.discriminator_loss(s, s)) and torch.isfinite(loss.generator_loss(s))


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        AdversarialLoss("relativistic")
    with pytest.raises(TypeError, match="scores"):
        AdversarialLoss("hinge").generator_loss((torch.zeros(2), [torch.zeros(2)]))


# ------------------------------------------------------------------ gradient penalty
class TinyCritic(nn.Module):
    """A non-linear float64 critic returning (scores, features) like the project's Ds."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1).double()
        self.head = nn.Conv2d(4, 1, 3, stride=2).double()

    def forward(self, x):
        f = torch.tanh(self.conv(x))
        return self.head(f * f + f), [f]  # N x 1 x h x w patch scores


def finite_difference_gradient(fn, x: torch.Tensor, h: float = 1e-5) -> torch.Tensor:
    grad = torch.zeros_like(x)
    flat, gflat = x.view(-1), grad.view(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + h
        up = fn(x).item()
        flat[i] = old - h
        down = fn(x).item()
        flat[i] = old
        gflat[i] = (up - down) / (2 * h)
    return grad


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("size", [(2, 3, 5, 5), (3, 3, 4, 6)])
def test_gradient_penalty_matches_finite_differences(masked, size):
    critic = TinyCritic()
    gen = torch.Generator().manual_seed(7)
    real = torch.randn(size, generator=gen, dtype=torch.float64)
    fake = torch.randn(size, generator=gen, dtype=torch.float64)
    alpha = torch.rand(size[0], generator=gen, dtype=torch.float64)
    mask = None
    if masked:
        mask = (torch.rand(size[0], 1, *size[2:], generator=gen) > 0.5).double()
    got = gradient_penalty(critic, real, fake, mask=mask, alpha=alpha)

    points = real + alpha.view(-1, 1, 1, 1) * (fake - real)
    expected = 0.0
    with torch.no_grad():
        for n in range(size[0]):
            g = finite_difference_gradient(lambda x: critic(x)[0].sum(), points[n : n + 1].clone())
            sq = g**2 if mask is None else g**2 * mask[n : n + 1]
            expected += (sq.sum().sqrt().item() - 1.0) ** 2 / size[0]
    assert got.item() == pytest.approx(expected, abs=1e-8)


def test_gradient_penalty_options():
    critic = TinyCritic()
    gen = torch.Generator().manual_seed(3)
    real = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    fake = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    alpha = torch.tensor([0.25, 0.75], dtype=torch.float64)
    at_points = gradient_penalty(critic, interpolate_batches(real, fake, alpha), interpolate=False)
    torch.testing.assert_close(gradient_penalty(critic, real, fake, alpha=alpha), at_points)
    # a mask of ones is the plain penalty; alpha drawn from a seeded generator is reproducible
    ones = torch.ones(2, 1, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(
        gradient_penalty(critic, real, fake, alpha=alpha, mask=ones), at_points
    )
    a = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(5))
    b = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(5))
    assert a.item() == b.item()
    # the penalty trains the critic: it is differentiable in the critic's parameters
    at_points.backward()
    assert critic.conv.weight.grad is not None and critic.conv.weight.grad.abs().sum() > 0
    # a linear critic x -> sum(w x) has gradient w everywhere: slope = ||w||
    w = torch.randn(1, 3, 4, 4, generator=gen, dtype=torch.float64)
    linear = gradient_penalty(lambda x: (x * w).flatten(1).sum(1), real, fake)
    assert linear.item() == pytest.approx((w.norm().item() - 1) ** 2, abs=1e-12)
    with pytest.raises(ValueError, match="fake"):
        gradient_penalty(critic, real, interpolate=True)
    with pytest.raises(ValueError, match="no fake"):
        gradient_penalty(critic, real, fake, interpolate=False)
