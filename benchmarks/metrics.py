"""Image-quality metrics on the composited output, under written-down conventions.

Every number is computed per image and then averaged over images.  Three conventions
(``eval.convention``), each recorded verbatim in every ``metrics.json`` and report header
(:data:`CONVENTIONS`):

``inpaintbench`` (default, this benchmark's definitions):

- images are converted from [-1, 1] to [0, 1] RGB and **rounded to 8-bit levels** (what a
  saved PNG holds), so scoring in memory and scoring saved predictions agree exactly;
- ``psnr``: 10 log10(1 / MSE) over all pixels and channels of the image (data range 1);
  ``psnr_hole``: the same over hole pixels only;
- ``ssim``: torchmetrics ``structural_similarity_index_measure``: Gaussian window 11, sigma
  1.5, K1 0.01, K2 0.03, data range 1, reflect padding, map averaged over channels and pixels;
- ``l1``: mean absolute error over the whole image; ``l1_hole``: over hole pixels only.

``mmagic`` (open-mmlab/mmagic ``mmagic/evaluation/metrics/{mae,psnr,ssim}.py`` with the
inpainting configs' ``MAE(mask_key='mask', scaling=100)``, ``PSNR()``, ``SSIM()``;
``protocol.md`` 1.1): images as float [0, 255], **not rounded**;

- ``psnr``: 20 log10(255 / sqrt(MSE)) over the whole RGB image;
- ``ssim``: MATLAB-compatible Wang et al. 2004: the outer product of
  ``cv2.getGaussianKernel(11, 1.5)``, filtered as ``cv2.filter2D`` and cropped by 5 pixels
  (= a "valid" correlation), C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2, float64, per channel,
  then the channel mean;
- ``l1_hole``: mmagic's MAE: sum |a - b| / 255 over hole pixels and channels, divided by
  (hole pixels x channels), times 100;
- extensions with the same definitions (not in mmagic): ``psnr_hole`` (PSNR over hole pixels)
  and ``l1`` (the MAE x 100 over the whole image).

``edgeconnect`` (knazeri/edge-connect ``scripts/metrics.py``; ``protocol.md`` 1.2): images
**truncated** to 8-bit levels (``int(x * 255)``, as ``main.py --mode 2`` saves them), /255,
converted to gray with scikit-image ``rgb2gray`` (0.2125 R + 0.7154 G + 0.0721 B);

- ``psnr``: 10 log10(1 / MSE) on the gray image (``data_range=1``);
- ``ssim``: ``skimage.metrics.structural_similarity(win_size=51, data_range=1)``: 51 x 51
  uniform window, sample covariance (N / (N - 1)), map cropped by 25 pixels (images must be
  at least 51 x 51);
- ``l1``: EdgeConnect's "MAE", a relative L1: sum |a - b| / sum (a + b) over the gray image;
- extensions (not in EdgeConnect): ``psnr_hole`` and ``l1_hole``, the same over hole pixels.

``lpips`` is this benchmark's in every convention (neither mmagic nor EdgeConnect reports
it): LPIPS v0.1 with the AlexNet backbone (torchmetrics), on the 8-bit rounded images in
[-1, 1]; only when the ImageNet AlexNet file is in the torch cache, never with random
backbone weights.

A metric that is undefined for an image (hole metrics on a mask without holes, PSNR of an
identical image, which mmagic reports as ``inf``) is NaN ("not applicable") and left out of
the averages, which report their count.

Deliberate deviations from the reference code: everything in float64 (EdgeConnect reads
float32, so its numbers can differ in the 7th digit); truncation keeps values within
:data:`TRUNCATION_TOLERANCE` of an 8-bit level on that level, so that ground-truth pixels,
which are exact levels, do not lose one level to floating-point error in the [-1, 1] round
trip; mmagic's ``inf`` PSNR is NaN here (excluded and counted) instead of turning the mean
into ``inf``.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np
import torch

from zoo._weights import TORCHVISION_FILES, checkpoint_dir, find_checkpoint, require_checkpoint

__all__ = [
    "CONVENTION",
    "CONVENTIONS",
    "METRICS",
    "TRUNCATION_TOLERANCE",
    "check_convention",
    "quantize",
    "to_levels",
    "rgb_to_gray",
    "gaussian_taps",
    "filter_plane",
    "gaussian_ssim",
    "matlab_ssim",
    "uniform_ssim",
    "image_metrics",
    "LPIPSScorer",
    "aggregate",
]

#: a truncated value within this many 8-bit levels below a level is taken as that level
TRUNCATION_TOLERANCE = 1e-4
#: scikit-image ``rgb2gray`` weights (ITU-R BT.709 luma) for R, G, B
GRAY_WEIGHTS = (0.2125, 0.7154, 0.0721)
#: keys every convention produces, per image (hole metrics: hole pixels only)
METRICS = ("psnr", "psnr_hole", "ssim", "l1", "l1_hole", "lpips")

_LPIPS_TEXT = (
    "this benchmark's LPIPS in every convention: v0.1, AlexNet backbone (ImageNet weights), "
    "torchmetrics, on the 8-bit rounded images in [-1, 1]"
)

CONVENTIONS: dict[str, dict[str, Any]] = {
    "inpaintbench": {
        "name": "inpaintbench",
        "source": "this benchmark (benchmarks/metrics.py)",
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
        "table": ["psnr", "ssim", "l1_hole", "lpips"],
        "labels": {
            "psnr": "PSNR (dB)",
            "psnr_hole": "PSNR hole (dB)",
            "ssim": "SSIM",
            "l1": "L1",
            "l1_hole": "L1 (hole)",
            "lpips": "LPIPS",
        },
    },
    "mmagic": {
        "name": "mmagic",
        "source": "open-mmlab/mmagic mmagic/evaluation/metrics/{mae,psnr,ssim}.py, inpainting "
        "configs: MAE(mask_key='mask', scaling=100), PSNR(), SSIM()",
        "scored_image": "composite = mask*output + (1-mask)*ground_truth",
        "value_range": "[0, 255] float",
        "color": "RGB",
        "quantization": "none (float values, not rounded)",
        "averaging": "per image, then mean over images (NaN = not applicable, excluded; "
        "mmagic gives inf for a perfect image)",
        "psnr": "20*log10(255/sqrt(MSE)) over the whole image, all channels; psnr_hole "
        "(extension, not in mmagic): the same over hole pixels",
        "ssim": "MATLAB-style Wang 2004: outer product of cv2.getGaussianKernel(11, 1.5), "
        "cv2.filter2D, 5-px crop (valid correlation), C1=(0.01*255)^2, C2=(0.03*255)^2, "
        "float64, per channel then averaged",
        "l1": "l1_hole = mmagic MAE: sum(|a-b|/255 over hole pixels and channels) / "
        "(hole pixels*channels) * 100; l1 (extension): the same over the whole image",
        "lpips": _LPIPS_TEXT,
        "table": ["psnr", "ssim", "l1_hole", "lpips"],
        "labels": {
            "psnr": "PSNR (dB)",
            "psnr_hole": "PSNR hole (dB)",
            "ssim": "SSIM",
            "l1": "MAE x100",
            "l1_hole": "MAE x100 (hole)",
            "lpips": "LPIPS",
        },
    },
    "edgeconnect": {
        "name": "edgeconnect",
        "source": "knazeri/edge-connect scripts/metrics.py (skimage.metrics replacing the "
        "removed compare_* functions, same arguments)",
        "scored_image": "composite = mask*output + (1-mask)*ground_truth",
        "value_range": "[0, 1]",
        "color": "gray: skimage.color.rgb2gray (0.2125 R + 0.7154 G + 0.0721 B)",
        "quantization": "truncate to uint8 levels (int(x*255), as main.py --mode 2 saves), /255",
        "averaging": "per image, then mean over images (NaN = not applicable, excluded)",
        "psnr": "10*log10(1/MSE) on the gray image (data_range 1); psnr_hole (extension, not "
        "in EdgeConnect): hole pixels only",
        "ssim": "skimage.metrics.structural_similarity(win_size=51, data_range=1): uniform "
        "51x51 window, sample covariance, 25-px crop, on the gray image",
        "l1": "relative L1 sum|a-b|/sum(a+b) over the gray image (EdgeConnect 'MAE'); "
        "l1_hole (extension): the same over hole pixels",
        "lpips": _LPIPS_TEXT,
        "table": ["psnr", "ssim", "l1", "lpips"],
        "labels": {
            "psnr": "PSNR gray (dB)",
            "psnr_hole": "PSNR gray hole (dB)",
            "ssim": "SSIM gray (51x51)",
            "l1": "rel. MAE (gray)",
            "l1_hole": "rel. MAE (gray, hole)",
            "lpips": "LPIPS",
        },
    },
}

#: the default convention's definitions (kept for callers of the single-convention API)
CONVENTION = CONVENTIONS["inpaintbench"]

#: metrics where a larger value is better (the others: smaller is better)
HIGHER_IS_BETTER = frozenset({"psnr", "psnr_hole", "ssim"})


def check_convention(name: str) -> dict[str, Any]:
    """The definitions of convention ``name`` (``ValueError`` listing the valid names)."""
    if name not in CONVENTIONS:
        raise ValueError(f"eval.convention must be one of {', '.join(CONVENTIONS)}, got {name!r}")
    return CONVENTIONS[name]


def quantize(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] rounded to the 256 levels of an 8-bit image."""
    return torch.round((x.clamp(-1, 1) + 1) * 127.5) / 255.0


def to_levels(x: torch.Tensor, mode: str) -> torch.Tensor:
    """[-1, 1] -> float64 [0, 255]: ``"round"``, ``"truncate"`` (``int(v * 255)``) or
    ``"float"`` (not quantised)."""
    if mode == "round":  # in the input's dtype, exactly as quantize() and the saved PNGs
        return torch.round((x.clamp(-1, 1) + 1) * 127.5).double()
    v = (x.double().clamp(-1, 1) + 1) * 127.5
    if mode == "truncate":
        return torch.floor(v + TRUNCATION_TOLERANCE)
    if mode == "float":
        return v
    raise ValueError(f"mode must be round | truncate | float, got {mode!r}")


def rgb_to_gray(x: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W -> N x 1 x H x W with scikit-image ``rgb2gray``'s weights."""
    w = torch.tensor(GRAY_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def _psnr(mse: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    out = 10.0 * torch.log10(peak**2 / mse)
    return torch.where(mse > 0, out, torch.full_like(out, math.nan))


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-image mean of ``values`` (N x C x H x W) over the pixels where ``mask``
    (N x 1 x H x W) is 1, all C channels of each such pixel (NaN without any).

    The channels are summed first and the mask applied once per pixel, not per channel."""
    count = mask.sum(dim=(1, 2, 3)) * values.shape[1]
    total = (values.sum(dim=1, keepdim=True) * mask).sum(dim=(1, 2, 3))
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, math.nan))


# ------------------------------------------------------------------ SSIM
def gaussian_taps(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """The normalised 1-D Gaussian of an SSIM window (float64; the 2-D window is its outer
    product), computed as torchmetrics' ``_gaussian`` does (= ``cv2.getGaussianKernel``)."""
    d = torch.arange((1 - size) / 2, (1 + size) / 2, 1, dtype=torch.float64)
    g = torch.exp(-torch.pow(d / sigma, 2) / 2)
    return (g / g.sum()).numpy()


@functools.lru_cache(maxsize=4)
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(workers, thread_name_prefix="inpaintbench-ssim")


def filter_plane(x: np.ndarray, taps: np.ndarray, border: str) -> np.ndarray:
    """Correlation of one H x W float64 plane with the separable window ``outer(taps, taps)``.

    ``border="reflect"``: same size, the plane reflected about its edge pixels (torch
    ``F.pad(mode="reflect")`` = OpenCV ``BORDER_REFLECT_101``), as torchmetrics pads;
    ``"valid"``: only the positions where the window fits, (H-k+1) x (W-k+1).

    OpenCV's float64 ``sepFilter2D`` (two 1-D passes, SIMD, releases the GIL): equal to the
    depthwise float64 ``F.conv2d`` torchmetrics runs to ~1e-16, without its slow float64
    CPU path (im2col + GEMM per channel group, no oneDNN kernel)."""
    out = cv2.sepFilter2D(x, cv2.CV_64F, taps, taps, borderType=cv2.BORDER_REFLECT_101)
    if border == "valid":
        r = len(taps) // 2
        out = out[r : out.shape[0] - r, r : out.shape[1] - r]
    return out


def _ssim_plane(
    x: np.ndarray,
    y: np.ndarray,
    taps: np.ndarray,
    border: str,
    c: tuple[float, float, float, bool],
) -> float:
    """Mean of the SSIM map of two H x W float64 planes; ``c`` = (C1, C2, cov_norm, clamp).

    Four filtered maps: mu_x, mu_y, E[x^2 + y^2] and E[xy] (the formula needs the variances
    only as var_x + var_y).  ``clamp``: that sum is clamped at 0 (torchmetrics clamps each
    variance; the two differ only when a variance computes to a rounding-level negative,
    |v| ~ 1e-17, i.e. by < 1e-12 in the map)."""
    c1, c2, cov_norm, clamp = c
    mu_x, mu_y = filter_plane(x, taps, border), filter_plane(y, taps, border)
    e_sq = filter_plane(x * x + y * y, taps, border)
    e_xy = filter_plane(x * y, taps, border)
    mu_xy = mu_x * mu_y
    mu_sq = np.multiply(mu_x, mu_x, out=mu_x)
    mu_sq += mu_y * mu_y  # mu_x^2 + mu_y^2
    var_sum = np.subtract(e_sq, mu_sq, out=e_sq)
    if clamp:
        np.maximum(var_sum, 0.0, out=var_sum)
    var_sum *= cov_norm
    var_sum += c2
    num = np.subtract(e_xy, mu_xy, out=e_xy)
    num *= 2 * cov_norm
    num += c2  # 2 cov + C2
    mu_xy *= 2
    mu_xy += c1
    num *= mu_xy  # (2 mu_x mu_y + C1)(2 cov + C2)
    mu_sq += c1
    var_sum *= mu_sq  # (var_x + var_y + C2)(mu_x^2 + mu_y^2 + C1)
    num /= var_sum
    return float(num.mean())


def _ssim(
    a: torch.Tensor,
    b: torch.Tensor,
    taps: np.ndarray,
    border: str,
    c1: float,
    c2: float,
    cov_norm: float = 1.0,
    clamp: bool = False,
    workers: int | None = None,
) -> torch.Tensor:
    """Per-image mean of the SSIM map of ``a`` and ``b`` (N x C x H x W), each channel
    filtered on its own, the map averaged over channels and positions (float64).

    The N x C planes are scored independently on ``workers`` threads (default
    ``torch.get_num_threads()``): all the work of one plane (4 filtered maps, the map
    arithmetic, ~0.5 MB each at 256 x 256) stays in the core's cache, and OpenCV and numpy
    release the GIL; whole-batch tensor arithmetic was memory-bound and ~3x slower."""
    k = len(taps)
    n, ch, h, w = a.shape
    if border == "valid" and (h < k or w < k):
        raise ValueError(
            f"SSIM with a {k}x{k} window needs images of at least {k}x{k}, got {h}x{w}"
        )
    if border == "reflect" and (h <= k // 2 or w <= k // 2):  # torch's reflect-padding limit
        raise ValueError(
            f"SSIM with a {k}x{k} window and reflect padding needs images of at least "
            f"{k // 2 + 1}x{k // 2 + 1}, got {h}x{w}"
        )
    taps = np.ascontiguousarray(taps, dtype=np.float64)
    xs = a.detach().cpu().double().contiguous().numpy().reshape(n * ch, h, w)  # planes
    ys = b.detach().cpu().double().contiguous().numpy().reshape(n * ch, h, w)
    consts = (c1, c2, cov_norm, clamp)

    def plane(i: int) -> float:
        return _ssim_plane(xs[i], ys[i], taps, border, consts)

    workers = workers or torch.get_num_threads()
    if workers > 1 and n * ch > 1:
        means = list(_pool(workers).map(plane, range(n * ch)))
    else:
        means = [plane(i) for i in range(n * ch)]
    return torch.tensor(means, dtype=torch.float64).view(n, ch).mean(dim=1)


def gaussian_ssim(
    a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0, k1: float = 0.01, k2: float = 0.03
) -> torch.Tensor:
    """torchmetrics ``structural_similarity_index_measure(gaussian_kernel=True, sigma=1.5,
    kernel_size=11, reduction="none")`` per image, in float64: reflect padding by 5, the full
    map averaged over channels and pixels (images of at least 6 x 6, as torchmetrics)."""
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    return _ssim(a, b, gaussian_taps(11, 1.5), "reflect", c1, c2, clamp=True)


def matlab_ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """mmagic's SSIM per image: Gaussian 11 / sigma 1.5 (``cv2.getGaussianKernel``), valid
    window positions (``cv2.filter2D`` + 5-px crop), per channel, then the channel mean."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    return _ssim(a, b, gaussian_taps(11, 1.5), "valid", c1, c2)


def uniform_ssim(
    a: torch.Tensor, b: torch.Tensor, win_size: int = 51, data_range: float = 1.0
) -> torch.Tensor:
    """scikit-image ``structural_similarity`` defaults (uniform window, sample covariance,
    K1 0.01, K2 0.03, cropped map) per image, averaged over channels."""
    if win_size < 3 or win_size % 2 == 0:
        raise ValueError(f"win_size must be odd and >= 3, got {win_size}")
    box = np.full(win_size, 1.0 / win_size)
    n_px = win_size**2
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    return _ssim(a, b, box, "valid", c1, c2, cov_norm=n_px / (n_px - 1))


# ------------------------------------------------------------------ conventions
def _inpaintbench(a255: torch.Tensor, b255: torch.Tensor, m: torch.Tensor) -> dict:
    a, b = a255 / 255.0, b255 / 255.0
    err = a - b
    e2, ae = err * err, err.abs()
    return {
        "psnr": _psnr(e2.mean(dim=(1, 2, 3))),
        "psnr_hole": _psnr(_masked_mean(e2, m)),
        "ssim": gaussian_ssim(a, b, data_range=1.0, k1=0.01, k2=0.03),
        "l1": ae.mean(dim=(1, 2, 3)),
        "l1_hole": _masked_mean(ae, m),
    }


def _mmagic(a255: torch.Tensor, b255: torch.Tensor, m: torch.Tensor) -> dict:
    err = a255 - b255
    e2, ae = err * err, err.abs().div_(255.0)
    return {
        "psnr": _psnr(e2.mean(dim=(1, 2, 3)), 255.0),
        "psnr_hole": _psnr(_masked_mean(e2, m), 255.0),
        "ssim": matlab_ssim(a255, b255, 255.0),
        "l1": ae.mean(dim=(1, 2, 3)) * 100.0,
        "l1_hole": _masked_mean(ae, m) * 100.0,
    }


def _edgeconnect(a255: torch.Tensor, b255: torch.Tensor, m: torch.Tensor) -> dict:
    ga, gb = rgb_to_gray(a255 / 255.0), rgb_to_gray(b255 / 255.0)  # N x 1 x H x W
    err = ga - gb
    total = (ga + gb).sum(dim=(1, 2, 3))
    nan = torch.full_like(total, math.nan)
    rel = torch.where(total > 0, err.abs().sum(dim=(1, 2, 3)) / total, nan)
    hole_total = ((ga + gb) * m).sum(dim=(1, 2, 3))  # 0 without a hole (or a black one)
    hole_abs = (err.abs() * m).sum(dim=(1, 2, 3))
    rel_hole = torch.where(hole_total > 0, hole_abs / hole_total, nan)
    return {
        "psnr": _psnr((err**2).mean(dim=(1, 2, 3))),
        "psnr_hole": _psnr(_masked_mean(err**2, m)),
        "ssim": uniform_ssim(ga, gb, 51, 1.0),
        "l1": rel,
        "l1_hole": rel_hole,
    }


_QUANTIZATION = {"inpaintbench": "round", "mmagic": "float", "edgeconnect": "truncate"}
_COMPUTE = {"inpaintbench": _inpaintbench, "mmagic": _mmagic, "edgeconnect": _edgeconnect}


def image_metrics(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    convention: str = "inpaintbench",
) -> dict[str, torch.Tensor]:
    """Per-image metrics of ``pred`` against ``target`` (both N x 3 x H x W in [-1, 1]).

    ``mask`` is N x 1 x H x W, 1 = hole; ``convention`` one of :data:`CONVENTIONS`.  Returns
    float64 CPU tensors of length N for ``psnr``, ``psnr_hole``, ``ssim``, ``l1``,
    ``l1_hole``.  The whole batch is scored at once (SSIM filtering on
    ``torch.get_num_threads()`` threads, :func:`filter_plane`).
    """
    check_convention(convention)
    if pred.shape != target.shape or pred.dim() != 4 or pred.shape[1] != 3:
        raise ValueError(
            f"pred and target must both be N x 3 x H x W, got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
    n, _, h, w = pred.shape
    if tuple(mask.shape) != (n, 1, h, w):
        raise ValueError(f"mask must be N x 1 x H x W = {(n, 1, h, w)}, got {tuple(mask.shape)}")
    mode = _QUANTIZATION[convention]
    a, b = to_levels(pred.cpu(), mode), to_levels(target.cpu(), mode)
    return _COMPUTE[convention](a, b, mask.cpu().double())


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
