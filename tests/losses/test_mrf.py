"""MSNPS neural-patch loss against a brute-force patch loop; content and TV terms."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from zoo.losses.mrf import content_loss, mrf_loss, msnps_tv_loss, nearest_patch_indices


def brute_mrf(features, mask, *, k, stride, source_stride, query):
    """For each query window, scan every all-known source window, keep the best NCC."""
    n_batch, _, h, w = features.shape
    total = 0.0
    for n in range(n_batch):
        sources = []
        grid = (range(0, h - k + 1, source_stride), range(0, w - k + 1, source_stride))
        for y, x in itertools.product(*grid):
            if mask[n, 0, y : y + k, x : x + k].sum() == 0:
                sources.append(features[n, :, y : y + k, x : x + k].flatten())
        for y, x in itertools.product(range(0, h - k + 1, stride), range(0, w - k + 1, stride)):
            window = mask[n, 0, y : y + k, x : x + k]
            chosen = {
                "center": window[k // 2, k // 2] == 1,
                "any": window.max() == 1,
                "all": window.min() == 1,
            }[query]
            if not chosen:
                continue
            q = features[n, :, y : y + k, x : x + k].flatten()
            best, best_score = None, -math.inf
            for s in sources:
                score = (q @ s).item() / (q.norm().item() * s.norm().item())
                if score > best_score:
                    best, best_score = s, score
            total += ((q - best) ** 2).sum().item()
    return total


def setup(shape, seed):
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(shape, generator=gen, dtype=torch.float64).relu() + 0.01
    n, _, h, w = shape
    mask = torch.zeros(n, 1, h, w, dtype=torch.float64)
    mask[:, :, h // 2 : h // 2 + 3, w // 2 - 1 : w // 2 + 2] = 1
    mask[-1, :, 0, 0] = 1  # samples differ
    return features, mask


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("stride, source_stride", [(1, 1), (2, 1), (1, 2)])
@pytest.mark.parametrize("query", ["center", "any", "all"])
@pytest.mark.parametrize("shape", [(2, 4, 9, 10), (1, 3, 8, 8)])
def test_mrf_loss_matches_brute_force(k, stride, source_stride, query, shape):
    features, mask = setup(shape, seed=k + stride + shape[2])
    got = mrf_loss(
        features,
        mask,
        patch_size=k,
        stride=stride,
        source_stride=source_stride,
        query=query,
        chunk_size=7,
    )
    expected = brute_mrf(
        features, mask, k=k, stride=stride, source_stride=source_stride, query=query
    )
    assert got.item() == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_mean_reduction_gradient_and_exact_copies():
    features, mask = setup((2, 4, 9, 10), seed=1)
    total = mrf_loss(features, mask)
    n_queries = int(sum(mask[n, 0, 1:-1, 1:-1].sum().item() for n in range(2)))  # centres
    mean = mrf_loss(features, mask, reduction="mean")
    assert mean.item() == pytest.approx(total.item() / (n_queries * 4 * 9), rel=1e-12)
    # hole patches that are copies of known patches cost nothing
    copy = features.clone()
    copy[:, :, 3:6, 4:7] = copy[:, :, 0:3, 0:3]
    small = torch.zeros_like(mask)
    small[:, :, 4, 5] = 1
    assert mrf_loss(copy, small).item() == 0.0
    # autograd: d/dq ||q - s||^2 = 2 (q - s); summed at the centre of the one query window
    f = features.clone().requires_grad_(True)
    mrf_loss(f, small).backward()
    assert f.grad[:, :, 3:6, 4:7].abs().sum() > 0
    outside = f.grad.clone()
    outside[:, :, 3:6, 4:7] = 0
    assert (outside == 0).all()


def test_nearest_patch_indices_by_loop():
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(11, 6, generator=gen, dtype=torch.float64)
    s = torch.randn(5, 6, generator=gen, dtype=torch.float64)
    ncc = [
        [(q[i] @ s[j]).item() / (q[i].norm() * s[j].norm()).item() for j in range(5)]
        for i in range(11)
    ]
    expected = [max(range(5), key=row.__getitem__) for row in ncc]
    assert nearest_patch_indices(q, s, chunk_size=3).tolist() == expected


def test_errors():
    features, mask = setup((1, 2, 6, 6), seed=0)
    with pytest.raises(ValueError, match="source patch"):
        mrf_loss(features, torch.ones_like(mask))
    with pytest.raises(ValueError, match="feature resolution"):
        mrf_loss(features, mask[..., :3])
    with pytest.raises(ValueError, match="query"):
        mrf_loss(features, mask, query="middle")


def test_content_and_tv_terms():
    gen = torch.Generator().manual_seed(2)
    a = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64)
    b = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64)
    assert content_loss(a, b).item() == pytest.approx(((a - b) ** 2).sum().item() / a.numel())
    # tv.lua writes the gradient: x_diff / y_diff on the top-left (H-1) x (W-1) grid
    x = a.clone().requires_grad_(True)
    energy = msnps_tv_loss(x)
    energy.backward()
    grad = torch.zeros_like(a)
    value = 0.0
    n, c, h, w = a.shape
    for i, ch, y, xx in itertools.product(range(n), range(c), range(h - 1), range(w - 1)):
        dx = a[i, ch, y, xx] - a[i, ch, y, xx + 1]
        dy = a[i, ch, y, xx] - a[i, ch, y + 1, xx]
        value += 0.5 * (dx**2 + dy**2).item()
        grad[i, ch, y, xx] += dx + dy
        grad[i, ch, y, xx + 1] -= dx
        grad[i, ch, y + 1, xx] -= dy
    assert energy.item() == pytest.approx(value, abs=1e-12)
    torch.testing.assert_close(x.grad, grad, rtol=0, atol=1e-12)
