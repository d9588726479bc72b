"""Reconstruction losses against loops, scipy distance transforms and the official formulas."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import ndimage
from scipy.stats import norm

from zoo.losses.reconstruction import (
    box_discount_weights,
    confidence_driven_l1,
    confidence_weights,
    distance_to_known,
    feature_matching_loss,
    gaussian_kernel,
    guidance_loss,
    l1_over_hole_fraction,
    masked_l1,
    masked_l2,
    spatial_discount_weights,
    spatially_discounted_l1,
    total_variation,
)

EXACT = dict(rtol=0, atol=1e-12)


def data(n=2, c=3, h=5, w=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    pred = torch.randn(n, c, h, w, generator=gen, dtype=torch.float64)
    target = torch.randn(n, c, h, w, generator=gen, dtype=torch.float64)
    mask = (torch.rand(n, 1, h, w, generator=gen) > 0.6).double()
    mask[0, 0, 0, 0], mask[0, 0, -1, -1] = 1.0, 0.0  # both regions present
    return pred, target, mask


# ------------------------------------------------------------------ masked L1 / L2
@pytest.mark.parametrize("power", [1, 2])
@pytest.mark.parametrize("normalization", ["all", "region"])
@pytest.mark.parametrize("weights", [(6.0, 1.0), (1.0, 0.0), (0.0, 10.0)])
@pytest.mark.parametrize("shape", [(2, 3, 5, 6), (1, 1, 4, 4), (3, 2, 3, 7)])
def test_masked_losses_by_hand(power, normalization, weights, shape):
    pred, target, mask = data(*shape, seed=sum(shape))
    hole_w, valid_w = weights
    sums = {"hole": 0.0, "valid": 0.0}
    counts = {"hole": 0, "valid": 0}
    n, c, h, w = shape
    for i, ch, y, x in itertools.product(range(n), range(c), range(h), range(w)):
        region = "hole" if mask[i, 0, y, x] == 1 else "valid"
        sums[region] += abs(pred[i, ch, y, x].item() - target[i, ch, y, x].item()) ** power
        counts[region] += 1
    denom = {r: (n * c * h * w if normalization == "all" else max(counts[r], 1)) for r in sums}
    expected = hole_w * sums["hole"] / denom["hole"] + valid_w * sums["valid"] / denom["valid"]
    fn = masked_l1 if power == 1 else masked_l2
    got = fn(
        pred, target, mask, hole_weight=hole_w, valid_weight=valid_w, normalization=normalization
    )
    assert got.item() == pytest.approx(expected, abs=1e-12)


def test_region_normalisation_is_deepfill_formula_with_a_shared_mask():
    pred, target, _ = data(4, 3, 6, 6)
    mask = torch.zeros(1, 1, 6, 6, dtype=torch.float64)
    mask[..., 1:4, 2:5] = 1  # DeepFill v1: one bbox mask for the whole batch
    official = ((pred - target).abs() * (1 - mask)).mean() / (1 - mask).mean()
    got = masked_l1(pred, target, mask, hole_weight=0, valid_weight=1, normalization="region")
    torch.testing.assert_close(got, official, **EXACT)


def test_naoto_normalisation_is_l1loss_on_masked_tensors():
    pred, target, mask = data()
    nn_l1 = torch.nn.L1Loss()
    valid = 1 - mask  # naoto's mask is 1 = valid
    expected = 6 * nn_l1(mask * pred, mask * target) + nn_l1(valid * pred, valid * target)
    got = masked_l1(pred, target, mask, hole_weight=6, valid_weight=1, normalization="all")
    torch.testing.assert_close(got, expected, **EXACT)


def test_empty_region_contributes_zero_and_edgeconnect_l1():
    pred, target, _ = data()
    zeros = torch.zeros(2, 1, 5, 6, dtype=torch.float64)
    got = masked_l1(pred, target, zeros, hole_weight=1, valid_weight=0, normalization="region")
    assert got.item() == 0.0
    _, _, mask = data()
    expected = (pred - target).abs().sum() / (3 * mask.sum())  # mean|d| / mean(mask)
    torch.testing.assert_close(l1_over_hole_fraction(pred, target, mask), expected, **EXACT)
    with pytest.raises(ValueError, match="mask"):
        masked_l1(pred, target, mask.expand(2, 3, 5, 6))


# ------------------------------------------------------------------ spatial discounting
SCIPY_DT = {
    "euclidean": lambda m: ndimage.distance_transform_edt(m),
    "chessboard": lambda m: ndimage.distance_transform_cdt(m, metric="chessboard"),
    "cityblock": lambda m: ndimage.distance_transform_cdt(m, metric="taxicab"),
}


@pytest.mark.parametrize("metric", sorted(SCIPY_DT))
@pytest.mark.parametrize("size", [(7, 7), (9, 13), (16, 5)])
@pytest.mark.parametrize("density", [0.3, 0.8])
def test_distance_to_known_matches_scipy(metric, size, density):
    gen = torch.Generator().manual_seed(size[0] * size[1])
    mask = (torch.rand(2, 1, *size, generator=gen) < density).double()
    mask[:, 0, 0, 0] = 0  # at least one known pixel
    got = distance_to_known(mask, metric=metric)
    for n in range(2):
        ref = torch.from_numpy(np.asarray(SCIPY_DT[metric](mask[n, 0].numpy()), np.float64))
        torch.testing.assert_close(got[n, 0], ref, **EXACT)
    gamma = 0.9
    weights = spatial_discount_weights(mask, gamma, metric=metric)
    torch.testing.assert_close(weights, gamma**got, **EXACT)


@pytest.mark.parametrize("hw", [(1, 1), (4, 4), (5, 8), (12, 7)])
@pytest.mark.parametrize("gamma", [0.9, 0.99])
def test_box_weights_equal_the_official_loop(hw, gamma):
    h, w = hw
    official = np.ones((h, w))
    for i in range(h):  # DeepFill v1 spatial_discounting_mask
        for j in range(w):
            official[i, j] = max(gamma ** min(i, h - i), gamma ** min(j, w - j))
    got = box_discount_weights(h, w, gamma, dtype=torch.float64)
    assert got.shape == (1, 1, h, w)
    torch.testing.assert_close(got[0, 0], torch.from_numpy(official), **EXACT)


@pytest.mark.parametrize("metric", sorted(SCIPY_DT))
@pytest.mark.parametrize("hw", [(4, 4), (5, 8), (9, 6)])
def test_box_case_of_the_general_form(metric, hw):
    h, w, gamma = *hw, 0.9
    # the official table = gamma ** (distance to {row 0, col 0, row H, col W}) on the patch
    grid = torch.zeros(1, 1, h + 1, w + 1, dtype=torch.float64)
    grid[..., 1:h, 1:w] = 1
    general = spatial_discount_weights(grid, gamma, metric=metric)[..., :h, :w]
    torch.testing.assert_close(
        general, box_discount_weights(h, w, gamma, dtype=torch.float64), **EXACT
    )
    # a box hole inside known surroundings: gamma ** min(i + 1, H - i, j + 1, W - j)
    canvas = torch.zeros(1, 1, h + 6, w + 6, dtype=torch.float64)
    canvas[..., 3 : 3 + h, 3 : 3 + w] = 1
    inner = spatial_discount_weights(canvas, gamma, metric=metric)[..., 3 : 3 + h, 3 : 3 + w]
    i = torch.arange(h, dtype=torch.float64)[:, None]
    j = torch.arange(w, dtype=torch.float64)[None, :]
    d = torch.minimum(torch.minimum(i + 1, h - i), torch.minimum(j + 1, w - j))
    torch.testing.assert_close(inner[0, 0], gamma**d, **EXACT)


def test_spatially_discounted_l1_by_hand_and_errors():
    pred, target, _ = data(2, 3, 4, 5)
    weights = box_discount_weights(4, 5, 0.9, dtype=torch.float64)
    expected = sum(
        abs(pred[n, c, y, x].item() - target[n, c, y, x].item()) * weights[0, 0, y, x].item()
        for n, c, y, x in itertools.product(range(2), range(3), range(4), range(5))
    ) / (2 * 3 * 4 * 5)
    assert spatially_discounted_l1(pred, target, weights).item() == pytest.approx(
        expected, abs=1e-12
    )
    with pytest.raises(ValueError, match="known pixel"):
        distance_to_known(torch.ones(1, 1, 3, 3))
    with pytest.raises(ValueError, match="gamma"):
        spatial_discount_weights(torch.zeros(1, 1, 3, 3), 1.5)


# ------------------------------------------------------------------ GMCNN confidence
def official_gauss_kernel(size: int, sigma: float) -> np.ndarray:
    interval = (2 * sigma + 1.0) / size
    x = np.linspace(-sigma - interval / 2, sigma + interval / 2, size + 1)
    ker1d = np.diff(norm.cdf(x))
    raw = np.sqrt(np.outer(ker1d, ker1d))
    return raw / raw.sum()


def slow_confidence(mask: np.ndarray, size: int, sigma: float, iters: int) -> np.ndarray:
    """Repeated blur with reflection padding, one output pixel at a time."""
    kernel, pad = official_gauss_kernel(size, sigma), size // 2
    init, conf = 1 - mask, None
    h, w = mask.shape
    for _ in range(iters):
        padded = np.pad(init, pad, mode="reflect")
        blurred = np.empty_like(mask)
        for y in range(h):
            for x in range(w):
                blurred[y, x] = np.sum(padded[y : y + size, x : x + size] * kernel)
        conf = blurred * mask
        init = conf + (1 - mask)
    return conf


@pytest.mark.parametrize("size, sigma", [(65, 1 / 40), (5, 1.0), (9, 1 / 40), (7, 2.5)])
def test_gaussian_kernel_is_gmcnn_gauss_kernel(size, sigma):
    ref = torch.from_numpy(official_gauss_kernel(size, sigma))
    torch.testing.assert_close(gaussian_kernel(size, sigma), ref, rtol=0, atol=1e-14)


@pytest.mark.parametrize(
    "size, sigma, iters, hw",
    [(65, 1 / 40, 7, (36, 40)), (5, 1.0, 3, (9, 11)), (9, 0.7, 1, (12, 10))],
)
def test_confidence_weights_match_repeated_blur(size, sigma, iters, hw):
    gen = torch.Generator().manual_seed(size)
    mask = torch.zeros(2, 1, *hw, dtype=torch.float64)
    mask[0, 0, 3 : hw[0] - 4, 5 : hw[1] - 2] = 1  # a box
    mask[1] = (torch.rand(1, *hw, generator=gen) > 0.5).double()  # scattered holes
    got = confidence_weights(mask, size=size, sigma=sigma, iters=iters)
    for n in range(2):
        ref = slow_confidence(mask[n, 0].numpy(), size, sigma, iters)
        torch.testing.assert_close(got[n, 0], torch.from_numpy(ref), rtol=0, atol=1e-12)
    assert (got[mask == 0] == 0).all() and (got[mask == 1] > 0).all()


def test_confidence_driven_l1_by_hand():
    pred, target, _ = data(2, 3, 10, 12)
    mask = torch.zeros(2, 1, 10, 12, dtype=torch.float64)
    mask[..., 2:7, 3:9] = 1
    conf = confidence_weights(mask, size=5, sigma=1.0, iters=3)
    total = sum(
        abs(pred[n, c, y, x].item() - target[n, c, y, x].item()) * conf[n, 0, y, x].item()
        for n, c, y, x in itertools.product(range(2), range(3), range(10), range(12))
    )
    expected = (total / (2 * 3 * 10 * 12)) / (mask.sum().item() / (2 * 10 * 12))
    got = confidence_driven_l1(pred, target, mask, size=5, sigma=1.0, iters=3)
    assert got.item() == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError, match="reflection"):
        confidence_weights(torch.zeros(1, 1, 20, 20))  # 65-tap default needs H, W > 32
    with pytest.raises(ValueError, match="odd"):
        confidence_weights(mask, size=64)


# ------------------------------------------------------------------ total variation
@pytest.mark.parametrize("shape", [(2, 3, 6, 7), (1, 1, 5, 5), (3, 2, 4, 9)])
def test_total_variation_both_modes_by_loop(shape):
    n, c, h, w = shape
    image, _, mask = data(*shape, seed=h * w)
    # whole (naoto): mean over horizontal pairs + mean over vertical pairs
    sx = sum(
        abs(image[i, ch, y, x + 1].item() - image[i, ch, y, x].item())
        for i, ch, y, x in itertools.product(range(n), range(c), range(h), range(w - 1))
    )
    sy = sum(
        abs(image[i, ch, y + 1, x].item() - image[i, ch, y, x].item())
        for i, ch, y, x in itertools.product(range(n), range(c), range(h - 1), range(w))
    )
    expected_whole = sx / (n * c * h * (w - 1)) + sy / (n * c * (h - 1) * w)
    assert total_variation(image, mode="whole").item() == pytest.approx(expected_whole, abs=1e-12)

    # hole_boundary (paper): pairs inside the one-pixel (3x3) dilation of the hole
    def in_p(i, y, x):
        ys, xs = range(max(0, y - 1), min(h, y + 2)), range(max(0, x - 1), min(w, x + 2))
        return any(mask[i, 0, yy, xx] == 1 for yy in ys for xx in xs)

    total = 0.0
    for i, ch, y, x in itertools.product(range(n), range(c), range(h), range(w)):
        if x + 1 < w and in_p(i, y, x) and in_p(i, y, x + 1):
            total += abs(image[i, ch, y, x + 1].item() - image[i, ch, y, x].item())
        if y + 1 < h and in_p(i, y, x) and in_p(i, y + 1, x):
            total += abs(image[i, ch, y + 1, x].item() - image[i, ch, y, x].item())
    got = total_variation(image, mask, mode="hole_boundary")
    assert got.item() == pytest.approx(total / (n * c * h * w), abs=1e-12)
    with pytest.raises(ValueError, match="mask"):
        total_variation(image, mode="hole_boundary")


# ------------------------------------------------------------------ feature losses
def test_feature_matching_by_hand():
    gen = torch.Generator().manual_seed(0)
    real = [torch.randn(2, 4, 3, 3, generator=gen, requires_grad=True) for _ in range(3)]
    fake = [torch.randn(2, 4, 3, 3, generator=gen, requires_grad=True) for _ in range(3)]
    expected = sum((f - r).abs().sum().item() / f.numel() for r, f in zip(real, fake))
    loss = feature_matching_loss(real, fake)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    loss.backward()
    assert all(r.grad is None for r in real) and all(f.grad is not None for f in fake)
    with pytest.raises(ValueError):
        feature_matching_loss(real, fake[:2])


def test_guidance_loss_by_hand_and_official_value():
    gen = torch.Generator().manual_seed(4)
    dec = torch.randn(2, 5, 4, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    enc = torch.randn(2, 5, 4, 4, generator=gen, dtype=torch.float64)
    m = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    m[..., 1:3, 1:4] = 1
    hole_sum = sum(
        (dec[n, c, y, x].item() - enc[n, c, y, x].item()) ** 2
        for n, c, y, x in itertools.product(range(2), range(5), range(4), range(4))
        if m[n, 0, y, x] == 1
    )
    loss = guidance_loss(dec, enc, m, strength=2.0)
    assert loss.item() == pytest.approx(2.0 * hole_sum / dec.numel(), abs=1e-12)
    official = torch.nn.MSELoss()(dec * m, enc)  # InnerCos value
    torch.testing.assert_close(guidance_loss(dec, enc, m, official_value=True), official, **EXACT)
    loss.backward()
    assert (dec.grad * (1 - m) == 0).all()  # the true gradient lives in the hole only
    expected_grad = 2.0 * 2 * m * (dec - enc) / dec.numel()
    torch.testing.assert_close(dec.grad, expected_grad.detach(), **EXACT)
