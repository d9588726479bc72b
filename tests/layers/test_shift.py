"""Shift connection against a brute-force loop over positions (float64), the official backward
rule, the feature-mask downsampling, and the identities of the official InnerShiftTriple."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from zoo.layers.shift import ShiftConnection, feature_hole_mask, shift, shift_sources

DT = torch.float64


def reference_shift(dec, enc, hole):
    """For every hole position p: the known q maximising cos(dec[:, p], enc[:, q]) (first
    maximum in raster order; zero norm -> similarity 0); copy enc[:, q].  Also returns the
    chosen sources as a dict {(n, p): q}."""
    n_b, c, h, w = dec.shape
    out = torch.zeros_like(enc)
    chosen = {}
    for n in range(n_b):
        holes = [p for p in range(h * w) if hole[n, p]]
        known = [q for q in range(h * w) if not hole[n, q]]
        for p in holes:
            if not known:
                continue
            d = dec[n, :, p // w, p % w]
            best, best_q = -math.inf, None
            for q in known:
                e = enc[n, :, q // w, q % w]
                den = math.sqrt(float(d @ d) * float(e @ e))
                cos = float(d @ e) / den if den > 0 else 0.0
                if cos > best:
                    best, best_q = cos, q
            out[n, :, p // w, p % w] = enc[n, :, best_q // w, best_q % w]
            chosen[(n, p)] = best_q
    return out, chosen


def _features(n, c, h, w, seed, relu=True):
    gen = torch.Generator().manual_seed(seed)
    dec = torch.randn(n, c, h, w, generator=gen, dtype=DT)
    enc = torch.randn(n, c, h, w, generator=gen, dtype=DT)
    return (dec.relu(), enc.relu()) if relu else (dec, enc)


def _feature_mask(n, h, w, seed):
    gen = torch.Generator().manual_seed(seed)
    m = (torch.rand(n, 1, h, w, generator=gen) < 0.3).to(DT)
    m[:, :, h // 4 : h // 2, w // 4 : w // 2 + 1] = 1.0
    return m


@pytest.mark.parametrize("n,c,h,w", [(1, 4, 6, 6), (2, 8, 5, 7), (3, 3, 8, 4)])
@pytest.mark.parametrize("relu", [True, False])
def test_matches_brute_force(n, c, h, w, relu):
    dec, enc = _features(n, c, h, w, seed=h * w + c, relu=relu)
    mask = _feature_mask(n, h, w, seed=c)  # a different number of holes per sample
    out = shift(dec, enc, mask)
    hole = mask.reshape(n, -1) >= 1
    expected, chosen = reference_shift(dec, enc, hole)
    assert_close(out, expected, rtol=0, atol=0)
    src, use = shift_sources(dec, enc, hole)
    assert {(i, p): src[i, p].item() for i, p in use.nonzero().tolist()} == chosen


def test_exact_copy_of_a_direction_is_picked():
    dec, enc = _features(1, 16, 6, 6, seed=7, relu=False)
    mask = torch.zeros(1, 1, 6, 6, dtype=DT)
    mask[..., 1:4, 2:5] = 1.0
    p, q = (2, 3), (5, 0)  # a hole position and a known position
    enc[0, :, q[0], q[1]] = 3.7 * dec[0, :, p[0], p[1]]  # same direction, other length
    out = shift(dec, enc, mask)
    assert_close(out[0, :, p[0], p[1]], enc[0, :, q[0], q[1]], rtol=0, atol=0)


def test_ties_go_to_first_known_position():
    dec, enc = _features(1, 4, 4, 4, seed=3, relu=False)
    mask = torch.zeros(1, 1, 4, 4, dtype=DT)
    mask[..., 0, 0] = 1.0
    v = dec[0, :, 0, 0]
    enc[0, :, 1, 2] = v  # raster index 6
    enc[0, :, 3, 1] = 2 * v  # raster index 13, same cosine
    src, use = shift_sources(dec, enc, mask.reshape(1, -1) >= 1)
    assert use[0, 0] and src[0, 0].item() == 6


def test_zero_vectors_have_zero_similarity():
    dec, enc = _features(1, 4, 3, 3, seed=5)
    dec, enc = dec.abs() + 0.1, enc.abs() + 0.1  # all cosines > 0
    mask = torch.zeros(1, 1, 3, 3, dtype=DT)
    mask[..., 1, 1] = 1.0
    enc[0, :, 0, 0] = 0.0  # official: NaN similarity, selected; here: 0, never the best
    src, _ = shift_sources(dec, enc, mask.reshape(1, -1) >= 1)
    assert src[0, 4].item() != 0
    dec[0, :, 1, 1] = 0.0  # zero query: every similarity 0 -> first known (official too)
    src, _ = shift_sources(dec, enc, mask.reshape(1, -1) >= 1)
    assert src[0, 4].item() == 0


def test_no_hole_gives_zeros_and_all_hole_gives_zeros():
    dec, enc = _features(2, 4, 4, 4, seed=1)
    assert (shift(dec, enc, torch.zeros(2, 1, 4, 4, dtype=DT)) == 0).all()  # official: zeros
    assert (shift(dec, enc, torch.ones(2, 1, 4, 4, dtype=DT)) == 0).all()  # official: error


def test_connection_layout_and_mask_threshold():
    dec, enc = _features(2, 4, 4, 4, seed=2)
    image_mask = torch.zeros(2, 1, 32, 32, dtype=DT)
    image_mask[0, :, 8:24, 8:24] = 1.0
    image_mask[1, :, 0:8, 16:32] = 1.0
    out = ShiftConnection()(torch.cat([dec, enc], 1), image_mask)
    assert out.shape == (2, 12, 4, 4)
    assert_close(out[:, :4], dec, rtol=0, atol=0)  # [decoder, encoder, shifted]
    assert_close(out[:, 4:8], enc, rtol=0, atol=0)
    feat = image_mask[:, :, ::8, ::8]
    assert_close(out[:, 8:], shift(dec, enc, feat), rtol=0, atol=0)
    assert ((out[:, 8:] != 0).any(1, keepdim=True) == (feat == 1)).all()
    # mask_thred > 1: no position reaches it, nothing is shifted (official cal_flag semantics)
    assert (ShiftConnection(mask_thred=2.0)(torch.cat([dec, enc], 1), image_mask)[:, 8:] == 0).all()


def test_feature_mask_nearest_matches_official_resize():
    gen = torch.Generator().manual_seed(0)
    mask = (torch.rand(2, 1, 64, 48, generator=gen) < 0.5).to(DT)
    # nearest with an integer factor picks pixel 8*i (official F.interpolate(..., 'nearest'))
    assert_close(feature_hole_mask(mask, 3), mask[:, :, ::8, ::8], rtol=0, atol=0)
    assert_close(feature_hole_mask(mask, 1), mask[:, :, ::2, ::2], rtol=0, atol=0)


def test_feature_mask_conv_variant():
    """Pre-2019 official: three 4x4/2/1 convolutions with weights 1/16, then > 5/16."""
    mask = torch.zeros(1, 1, 64, 64, dtype=DT)
    mask[..., 16:48, 20:44] = 1.0
    m = mask
    for _ in range(3):
        m = F.avg_pool2d(m, 4, stride=2, padding=1, count_include_pad=True)  # = sum / 16
    expected = (m > 5 / 16).to(DT)
    out = feature_hole_mask(mask, 3, method="conv")
    assert_close(out, expected, rtol=0, atol=0)
    assert out.shape == (1, 1, 8, 8) and 0 < out.sum() < 64


@pytest.mark.parametrize("triple_weight", [1.0, 0.25])
def test_backward_follows_official_rule(triple_weight):
    """grad_dec = g_dec; grad_enc = g_enc + triple_weight * sum over holes p of g_shift[p],
    added at the source q*(p) (official InnerShiftTripleFunction.backward, as a loop)."""
    dec, enc = _features(2, 3, 4, 5, seed=4, relu=False)
    image_mask = torch.zeros(2, 1, 32, 40, dtype=DT)
    image_mask[0, :, 8:24, 8:32] = 1.0
    image_mask[1, :, 16:32, 0:16] = 1.0
    x = torch.cat([dec, enc], 1).requires_grad_(True)
    out = ShiftConnection(triple_weight=triple_weight)(x, image_mask)
    g = torch.randn_like(out)
    (grad,) = torch.autograd.grad(out, x, g)
    _, chosen = reference_shift(dec, enc, (image_mask[:, :, ::8, ::8] >= 1).reshape(2, -1))
    expected = torch.cat([g[:, :3], g[:, 3:6]], 1).clone()
    for (n, p), q in chosen.items():
        expected[n, 3:6, q // 5, q % 5] += triple_weight * g[n, 6:, p // 5, p % 5]
    assert_close(grad, expected, rtol=0, atol=1e-12)


def test_gradcheck():
    dec, enc = _features(2, 3, 4, 4, seed=6, relu=False)
    image_mask = torch.zeros(2, 1, 16, 16, dtype=DT)
    image_mask[0, :, 4:12, 4:8] = 1.0
    image_mask[1, :, 8:16, 0:16] = 1.0
    x = torch.cat([dec, enc], 1).requires_grad_(True)
    layer = ShiftConnection(layer_to_last=2)
    assert torch.autograd.gradcheck(lambda t: layer(t, image_mask), (x,), eps=1e-6, atol=1e-8)


def test_bad_inputs():
    layer = ShiftConnection()
    with pytest.raises(ValueError, match="2C"):
        layer(torch.zeros(1, 3, 4, 4), torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="features are"):
        layer(torch.zeros(1, 4, 4, 4), torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="N x 1"):
        feature_hole_mask(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="method"):
        feature_hole_mask(torch.zeros(1, 1, 8, 8), method="bilinear")
