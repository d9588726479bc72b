"""Image-quality metrics on the composited output, with their conventions written down.

Every number is computed per image and then averaged.  The definitions (the ``inpaintbench``
convention, recorded verbatim in each ``metrics.json`` as :data:`CONVENTION`):

- images are converted from [-1, 1] to [0, 1] RGB and **rounded to 8-bit levels** (what a
  saved PNG holds), so scoring in memory and scoring saved predictions agree exactly;
- ``psnr``: 10 log10(1 / MSE) over all pixels and channels of the image (data range 1);
- ``psnr_hole``: the same over hole pixels only;
- ``ssim``: torchmetrics ``structural_similarity_index_measure``: Gaussian window 11, sigma
  1.5, K1 0.01, K2 0.03, data range 1, reflect padding, map averaged over channels and pixels;
- ``l1``: mean absolute error over the whole image; ``l1_hole``: over hole pixels only;
- ``lpips``: LPIPS v0.1 with the AlexNet backbone (torchmetrics), input in [-1, 1]; only when
  the ImageNet AlexNet file is in the torch cache, never with random backbone weights.

A metric that is undefined for an image (hole metrics on a mask without holes, PSNR of an
identical image) is NaN ("not applicable") and left out of the averages, which report their
count.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from zoo._weights import TORCHVISION_FILES, checkpoint_dir, find_checkpoint, require_checkpoint

__all__ = ["CONVENTION", "quantize", "image_metrics", "LPIPSScorer", "aggregate"]

CONVENTION = {
    "name": "inpaintbench",
    "scored_image": "composite = mask*output + (1-mask)*ground_truth",
    "value_range": "[0, 1]",
    "color": "RGB",
    "quantization": "round to uint8 levels (x*255 rounded, /255)",
    "averaging": "per image, then mean over images (NaN = not applicable, excluded)",
    "psnr": "10*log10(1/MSE), all pixels and channels; psnr_hole: hole pixels only",
    "ssim": "torchmetrics SSIM, gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, "
    "data_range 1, reflect padding, full-map mean over channels",
    "l1": "mean |a-b| over all pixels and channels; l1_hole: over hole pixels only",
    "lpips": "LPIPS v0.1, AlexNet backbone (ImageNet weights), torchmetrics, input [-1, 1]",
}

METRICS = ("psnr", "psnr_hole", "ssim", "l1", "l1_hole", "lpips")


def quantize(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] rounded to the 256 levels of an 8-bit image."""
    return torch.round((x.clamp(-1, 1) + 1) * 127.5) / 255.0


def _psnr(mse: torch.Tensor) -> torch.Tensor:
    out = -10.0 * torch.log10(mse)
    return torch.where(mse > 0, out, torch.full_like(out, math.nan))


def image_metrics(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per-image metrics of ``pred`` against ``target`` (both N x 3 x H x W in [-1, 1]).

    ``mask`` is N x 1 x H x W, 1 = hole.  Returns float64 tensors of length N.
    """
    a, b = quantize(pred).double(), quantize(target).double()
    m = mask.double().expand_as(a)
    err = a - b
    hole = m.sum(dim=(1, 2, 3))
    nan = torch.full_like(hole, math.nan)
    l1_hole = torch.where(hole > 0, (err.abs() * m).sum(dim=(1, 2, 3)) / hole, nan)
    mse_hole = torch.where(hole > 0, (err**2 * m).sum(dim=(1, 2, 3)) / hole, nan)
    ssim = structural_similarity_index_measure(
        a,
        b,
        gaussian_kernel=True,
        sigma=1.5,
        kernel_size=11,
        data_range=1.0,
        k1=0.01,
        k2=0.03,
        reduction="none",
    )
    return {
        "psnr": _psnr((err**2).mean(dim=(1, 2, 3))),
        "psnr_hole": torch.where(hole > 0, _psnr(mse_hole), nan),
        "ssim": ssim.double(),
        "l1": err.abs().mean(dim=(1, 2, 3)),
        "l1_hole": l1_hole,
    }


class LPIPSScorer:
    """LPIPS (AlexNet, v0.1) when the ImageNet AlexNet file is in the torch cache.

    ``mode``: ``"auto"`` (compute when available, else record why not), ``"required"``
    (missing weights are an error naming the file and the folder) or ``"off"``.
    """

    FILE = TORCHVISION_FILES["alexnet"]

    def __init__(self, mode: str = "auto", device: str | torch.device = "cpu") -> None:
        if mode not in ("auto", "required", "off"):
            raise ValueError(f"eval.lpips must be auto | required | off, got {mode!r}")
        self.available = False
        self.reason = "disabled (eval.lpips=off)"
        self._net = None
        if mode == "off":
            return
        if mode == "required":
            require_checkpoint(self.FILE, "LPIPS (eval.lpips=required)")
        path = find_checkpoint(self.FILE)
        if path is None:
            self.reason = f"{self.FILE} not found in {checkpoint_dir()}"
            return
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

        self._net = LearnedPerceptualImagePatchSimilarity(
            net_type="alex", reduction="mean", normalize=False
        ).to(device)
        self._net.eval()
        self.available, self.reason = True, f"AlexNet weights from {path}"

    @torch.no_grad()
    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-image LPIPS (NaN when unavailable); inputs in [-1, 1], quantised like the rest."""
        n = pred.shape[0]
        if self._net is None:
            return torch.full((n,), math.nan, dtype=torch.float64)
        a, b = quantize(pred) * 2 - 1, quantize(target) * 2 - 1
        dev = next(self._net.parameters()).device
        net = self._net.net  # the underlying LPIPS module returns one value per image
        return net(a.to(dev), b.to(dev)).flatten().double().cpu()


def aggregate(values: dict[str, np.ndarray]) -> dict[str, float | int]:
    """Mean of each metric over images, ignoring NaN, with the count of images used."""
    out: dict[str, float | int] = {}
    n = 0
    for name, v in values.items():
        v = np.asarray(v, dtype=np.float64)
        n = len(v)
        ok = ~np.isnan(v)
        out[name] = float(v[ok].mean()) if ok.any() else math.nan
        out[f"{name}_count"] = int(ok.sum())
    out["images"] = n
    return out
