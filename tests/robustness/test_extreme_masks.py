"""All-hole and no-hole masks go through a model and the metrics without NaN where a value
is defined, and with "not applicable" (NaN, excluded from averages) where it is not."""

from __future__ import annotations

import math

import torch

import zoo
from benchmarks.metrics import image_metrics


def test_all_hole_mask():
    image = torch.rand(2, 3, 32, 32) * 2 - 1
    mask = torch.ones(2, 1, 32, 32)
    out = zoo.create_model("mean_fill")(image, mask)
    assert torch.isfinite(out["composite"]).all()
    torch.testing.assert_close(out["composite"], torch.zeros_like(image))  # nothing known
    m = image_metrics(out["composite"], image, mask)
    for name in ("psnr", "psnr_hole", "ssim", "l1", "l1_hole"):
        assert torch.isfinite(m[name]).all(), name
    torch.testing.assert_close(m["psnr"], m["psnr_hole"])  # the hole is the whole image
    torch.testing.assert_close(m["l1"], m["l1_hole"])


def test_no_hole_mask():
    image = torch.rand(2, 3, 32, 32) * 2 - 1
    mask = torch.zeros(2, 1, 32, 32)
    out = zoo.create_model("telea")(image, mask)
    assert torch.equal(out["composite"], image)
    m = image_metrics(out["composite"], image, mask)
    assert all(math.isnan(v) for v in m["psnr_hole"].tolist() + m["l1_hole"].tolist())
    assert all(math.isnan(v) for v in m["psnr"].tolist())  # identical images: PSNR undefined
    assert m["l1"].abs().max() == 0 and torch.allclose(
        m["ssim"], torch.ones(2, dtype=m["ssim"].dtype)
    )
