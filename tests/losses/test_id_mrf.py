"""ID-MRF against a slow loop over all pairs of positions (float64), its identities, and the
GMCNN PyTorch module (VGG-19 layer naming, input conversion, layer weights)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
from torchvision.models.vgg import cfgs, make_layers

from zoo.losses.id_mrf import IDMRFLoss, id_mrf_distance


def slow_id_mrf(gen, tar, *, center, bias=1.0, h=0.5, eps=1e-5, reduction="sum", order=None):
    """The PyTorch ``mrf_loss`` written position by position."""
    n_batch, c = gen.shape[:2]
    g_all, t_all = gen.flatten(2), tar.flatten(2)  # N x C x P
    if order is not None:
        g_all, t_all = g_all[..., order], t_all[..., order]
    positions = g_all.shape[-1]
    if center == "per_channel":
        mu_c = [t_all[:, ch].mean().item() for ch in range(c)]
    losses = []
    for n in range(n_batch):

        def unit(v, p, n=n):
            mu = mu_c if center == "per_channel" else [t_all[n, :, p].mean().item()] * c
            x = [v[n, ch, p].item() - mu[ch] for ch in range(c)]
            norm = math.sqrt(sum(a * a for a in x))
            return [a / norm for a in x]

        gv = [unit(g_all, p) for p in range(positions)]
        tv = [unit(t_all, p) for p in range(positions)]
        d = [
            [(1 - sum(a * b for a, b in zip(tv[t], gv[g]))) / 2 for g in range(positions)]
            for t in range(positions)
        ]
        cx = [[0.0] * positions for _ in range(positions)]
        for g in range(positions):
            dmin = min(d[t][g] for t in range(positions))
            w = [math.exp((bias - d[t][g] / (dmin + eps)) / h) for t in range(positions)]
            for t in range(positions):
                cx[t][g] = w[t] / sum(w)
        score = sum(max(cx[t]) for t in range(positions)) / positions
        losses.append(-math.log(score))
    return sum(losses) if reduction == "sum" else sum(losses) / n_batch


def maps(shape, seed):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(shape, generator=gen, dtype=torch.float64)
    b = torch.randn(shape, generator=gen, dtype=torch.float64)
    return a, b


@pytest.mark.parametrize("shape", [(2, 5, 3, 4), (1, 8, 4, 4), (3, 3, 2, 5)])
@pytest.mark.parametrize("center", ["per_pixel", "per_channel"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("h", [0.5, 0.2])
def test_distance_matches_slow_pair_loop(shape, center, reduction, h):
    gen, tar = maps(shape, seed=sum(shape))
    gen = gen.relu() + 0.1 * gen  # ReLU-like features, still distinct
    got = id_mrf_distance(gen, tar, center=center, batch_reduction=reduction, nn_stretch_sigma=h)
    expected = slow_id_mrf(gen, tar, center=center, reduction=reduction, h=h)
    assert got.item() == pytest.approx(expected, abs=1e-10)


def test_subsampling_uses_the_same_positions_in_both_maps():
    gen, tar = maps((2, 4, 3, 5), seed=9)
    got = id_mrf_distance(
        gen, tar, center="per_channel", max_positions=6, generator=torch.Generator().manual_seed(1)
    )
    order = torch.randperm(15, generator=torch.Generator().manual_seed(1))[:6]
    expected = slow_id_mrf(gen, tar, center="per_channel", order=order)
    assert got.item() == pytest.approx(expected, abs=1e-10)
    full = id_mrf_distance(gen, tar, max_positions=15)  # not above the limit: no sampling
    assert full.item() == pytest.approx(slow_id_mrf(gen, tar, center="per_pixel"), abs=1e-10)


@pytest.mark.parametrize("center", ["per_pixel", "per_channel"])
def test_identity_and_bounds(center):
    # cx <= 1 => loss >= 0; for gen == tar, cx[t, t] = 1 / (1 + sum exp(-d / (h eps))) -> 1
    x, y = maps((2, 16, 4, 5), seed=3)
    same = id_mrf_distance(x, x, center=center)
    assert 0 <= same.item() < 1e-9
    assert id_mrf_distance(x, y, center=center).item() > 0.1
    # the bias b cancels in the normalisation over target positions
    a = id_mrf_distance(x, y, center=center, bias=1.0)
    b = id_mrf_distance(x, y, center=center, bias=-3.0)
    assert a.item() == pytest.approx(b.item(), abs=1e-12)
    # a permutation of the generated positions leaves the loss unchanged
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(0))
    if center == "per_channel":
        shuffled = x.flatten(2)[..., perm].view_as(x)
        assert id_mrf_distance(shuffled, y, center=center).item() == pytest.approx(
            a.item(), abs=1e-12
        )


def test_bad_arguments():
    x, y = maps((1, 3, 2, 2), seed=0)
    with pytest.raises(ValueError, match="same shape"):
        id_mrf_distance(x, y[..., :1])
    with pytest.raises(ValueError, match="center"):
        id_mrf_distance(x, y, center="global")
    with pytest.raises(ValueError, match="batch_reduction"):
        id_mrf_distance(x, y, batch_reduction="max")


def gmcnn_vgg19_feat_layer(seq: nn.Sequential, x: torch.Tensor) -> dict:
    """GMCNN's VGG19FeatLayer naming loop: the counter grows on convolutions and ReLUs."""
    out, ci, ri = {}, 1, 0
    x = x - torch.tensor([0.485, 0.456, 0.406], dtype=x.dtype).view(1, 3, 1, 1)
    for layer in seq:
        if isinstance(layer, nn.Conv2d):
            ri += 1
            name = f"conv{ci}_{ri}"
        elif isinstance(layer, nn.ReLU):
            ri += 1
            name = f"relu{ci}_{ri}"
        else:
            ri, name = 0, f"pool_{ci}"
            ci += 1
        x = layer(x)
        out[name] = x
    return out


def test_module_is_gmcnn_pytorch_idmrf(fake_torch_home):
    loss = IDMRFLoss().double()
    gen = torch.Generator().manual_seed(5)
    pred = torch.rand(2, 3, 16, 16, generator=gen, dtype=torch.float64) * 2 - 1
    gt = torch.rand(2, 3, 16, 16, generator=gen, dtype=torch.float64) * 2 - 1
    seq = make_layers(cfgs["E"])
    state = torch.load(fake_torch_home / "vgg19-dcbb9e9d.pth", weights_only=True)
    seq.load_state_dict({k[len("features.") :]: v for k, v in state.items() if "features" in k})
    seq = seq[:21].double().eval()  # through conv4_1's ReLU (GMCNN 'relu4_2')
    # official: mrfloss((completed_local + 1) / 2, (gt_local + 1) / 2), layers 'relu3_2', 'relu4_2'
    fp = gmcnn_vgg19_feat_layer(seq, (pred + 1) / 2)
    ft = gmcnn_vgg19_feat_layer(seq, (gt + 1) / 2)
    l3 = slow_id_mrf(fp["relu3_2"], ft["relu3_2"], center="per_pixel")
    l4 = slow_id_mrf(fp["relu4_2"], ft["relu4_2"], center="per_pixel")
    assert loss(pred, gt).item() == pytest.approx(l3 + 2 * l4, abs=1e-9)  # style + content
    assert loss(gt, gt).item() < 1e-9
    pred.requires_grad_(True)
    loss(pred, gt).backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
