"""Each metric against a hand computation; the LPIPS availability rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmarks.metrics import LPIPSScorer, aggregate, image_metrics, quantize
from zoo._weights import MissingWeightsError


def _levels(shape, seed):
    """Random images already on the 8-bit grid, in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=g).double() / 127.5 - 1


def _gaussian_ssim_reference(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. 2004 SSIM, written out: Gaussian 11 / sigma 1.5, reflect padding, full map.

    a, b: C x H x W in [0, 1].
    """
    k, sigma, c1, c2 = 11, 1.5, 0.01**2, 0.03**2
    x = np.arange(k) - k // 2
    g1 = np.exp(-(x**2) / (2 * sigma**2))
    g1 /= g1.sum()
    win = np.outer(g1, g1)
    maps = []
    for ca, cb in zip(a, b):
        pa, pb = np.pad(ca, k // 2, mode="reflect"), np.pad(cb, k // 2, mode="reflect")
        h, w = ca.shape
        m = np.zeros((h, w))
        for i in range(h):
            for j in range(w):
                wa, wb = pa[i : i + k, j : j + k], pb[i : i + k, j : j + k]
                mu_a, mu_b = (win * wa).sum(), (win * wb).sum()
                var_a = (win * wa * wa).sum() - mu_a**2
                var_b = (win * wb * wb).sum() - mu_b**2
                cov = (win * wa * wb).sum() - mu_a * mu_b
                m[i, j] = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
                    (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
                )
        maps.append(m)
    return float(np.mean(maps))


def test_metrics_match_hand_computation():
    pred, target = _levels((2, 3, 16, 16), 0), _levels((2, 3, 16, 16), 1)
    mask = torch.zeros(2, 1, 16, 16, dtype=torch.float64)
    mask[0, :, 4:10, 3:12] = 1
    mask[1, :, :, :5] = 1
    got = image_metrics(pred, target, mask)
    a, b = ((pred + 1) / 2).numpy(), ((target + 1) / 2).numpy()
    for n in range(2):
        err = a[n] - b[n]
        hole = np.broadcast_to(mask[n].numpy() > 0, err.shape)
        assert got["l1"][n].item() == pytest.approx(np.abs(err).mean(), abs=1e-12)
        assert got["l1_hole"][n].item() == pytest.approx(np.abs(err[hole]).mean(), abs=1e-12)
        psnr = 10 * math.log10(1 / np.mean(err**2))
        assert got["psnr"][n].item() == pytest.approx(psnr, abs=1e-9)
        psnr_hole = 10 * math.log10(1 / np.mean(err[hole] ** 2))
        assert got["psnr_hole"][n].item() == pytest.approx(psnr_hole, abs=1e-9)
        assert got["ssim"][n].item() == pytest.approx(
            _gaussian_ssim_reference(a[n], b[n]), abs=1e-6
        )


def test_quantization_rounds_to_8_bit_levels():
    x = torch.tensor([-1.0, -0.99, 0.0, 0.002, 1.0, 1.5])
    expected = torch.tensor([0, round(0.01 * 127.5), 128, 128, 255, 255]) / 255.0
    # 0.0 -> 127.5 -> rounds half to even (128); 0.002 -> 127.755 -> 128
    torch.testing.assert_close(quantize(x), expected.float())


def test_no_hole_and_identical_images_are_not_applicable():
    img = _levels((1, 3, 16, 16), 2)
    got = image_metrics(img, img, torch.zeros(1, 1, 16, 16, dtype=torch.float64))
    assert math.isnan(got["psnr"].item()) and math.isnan(got["psnr_hole"].item())
    assert math.isnan(got["l1_hole"].item())
    assert got["l1"].item() == 0 and got["ssim"].item() == pytest.approx(1.0)
    summary = aggregate({"psnr": np.array([np.nan, 20.0, 30.0])})
    assert summary["psnr"] == 25.0 and summary["psnr_count"] == 2 and summary["images"] == 3


def test_lpips_unavailable_without_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    scorer = LPIPSScorer("auto")
    assert not scorer.available
    assert "alexnet-owt-7be5be79.pth" in scorer.reason and str(tmp_path) in scorer.reason
    values = scorer(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8))
    assert torch.isnan(values).all()  # never a number computed without the real backbone


def test_lpips_required_names_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError) as err:
        LPIPSScorer("required")
    msg = str(err.value)
    assert "alexnet-owt-7be5be79.pth" in msg and str(tmp_path / "hub" / "checkpoints") in msg


def test_lpips_with_a_generated_backbone_matches_the_lpips_package(fake_torch_home):
    """With an AlexNet file in the cache, our LPIPS equals richzhang's ``lpips`` package on the
    same backbone file (v0.1 heads, [-1, 1] input): checks the conventions, not the weights."""
    import lpips as lpips_pkg

    scorer = LPIPSScorer("auto")
    assert scorer.available and str(fake_torch_home) in scorer.reason
    a, b = _levels((2, 3, 64, 64), 3).float(), _levels((2, 3, 64, 64), 4).float()
    reference = lpips_pkg.LPIPS(net="alex", version="0.1", verbose=False).eval()
    with torch.no_grad():
        expected = reference(a, b).flatten().double()
    torch.testing.assert_close(scorer(a, b), expected, rtol=1e-5, atol=1e-6)
