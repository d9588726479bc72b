"""Each metric against a hand computation or the library call it follows, for the three
conventions (inpaintbench, mmagic, edgeconnect); the pitfalls table of protocol.md section 2
reproduced (composite versus raw); the LPIPS availability rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmarks.metrics import (
    CONVENTIONS,
    LPIPSScorer,
    aggregate,
    gaussian_ssim,
    image_metrics,
    quantize,
    rgb_to_gray,
    to_levels,
)
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


# ----------------------------------------------------------------- metric conventions
def _floats(shape, seed):
    """Random images in [-1, 1] that are NOT on the 8-bit grid (float64)."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1


def _hole(n, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(n, 1, h, w, dtype=torch.float64)
    for i in range(n):
        top, left = torch.randint(0, h // 2, (2,), generator=g).tolist()
        mask[i, :, top : top + h // 3, left : left + w // 4] = 1
    return mask


def _matlab_ssim_cv2(a: np.ndarray, b: np.ndarray) -> float:
    """mmagic's SSIM written with the OpenCV calls it uses: a, b are H x W x C on [0, 255]."""
    import cv2

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = cv2.getGaussianKernel(11, 1.5)
    window = np.outer(k, k.transpose())
    values = []
    for ch in range(a.shape[2]):
        x, y = a[..., ch].astype(np.float64), b[..., ch].astype(np.float64)
        mu1 = cv2.filter2D(x, -1, window)[5:-5, 5:-5]
        mu2 = cv2.filter2D(y, -1, window)[5:-5, 5:-5]
        s1 = cv2.filter2D(x * x, -1, window)[5:-5, 5:-5] - mu1**2
        s2 = cv2.filter2D(y * y, -1, window)[5:-5, 5:-5] - mu2**2
        s12 = cv2.filter2D(x * y, -1, window)[5:-5, 5:-5] - mu1 * mu2
        ssim_map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / (
            (mu1**2 + mu2**2 + c1) * (s1 + s2 + c2)
        )
        values.append(ssim_map.mean())
    return float(np.mean(values))


@pytest.mark.parametrize("size", [(16, 16), (24, 40), (33, 21)])
def test_mmagic_convention_matches_hand_computation(size):
    """PSNR on [0, 255] floats (not rounded), MATLAB SSIM via cv2.filter2D, hole MAE x 100."""
    h, w = size
    pred, target, mask = _floats((2, 3, h, w), 5), _floats((2, 3, h, w), 6), _hole(2, h, w, 7)
    got = image_metrics(pred, target, mask, "mmagic")
    a, b = ((pred + 1) * 127.5).numpy(), ((target + 1) * 127.5).numpy()  # float, not rounded
    for n in range(2):
        err = a[n] - b[n]
        hole = np.broadcast_to(mask[n].numpy() > 0, err.shape)
        psnr = 20 * math.log10(255 / math.sqrt(np.mean(err**2)))
        assert got["psnr"][n].item() == pytest.approx(psnr, abs=1e-10)
        mae = np.abs(err[hole] / 255).sum() / hole.sum() * 100  # hole pixels x channels
        assert got["l1_hole"][n].item() == pytest.approx(mae, abs=1e-10)
        assert got["l1"][n].item() == pytest.approx(np.abs(err / 255).mean() * 100, abs=1e-10)
        psnr_hole = 20 * math.log10(255 / math.sqrt(np.mean(err[hole] ** 2)))
        assert got["psnr_hole"][n].item() == pytest.approx(psnr_hole, abs=1e-10)
        ref = _matlab_ssim_cv2(a[n].transpose(1, 2, 0), b[n].transpose(1, 2, 0))
        assert got["ssim"][n].item() == pytest.approx(ref, abs=1e-10)


def test_mmagic_does_not_round():
    target = _levels((1, 3, 16, 16), 8).clamp(max=254 / 127.5 - 1)  # room above every pixel
    pred = target + 0.3 / 127.5  # 0.3 of a level above every pixel
    got = image_metrics(pred, target, torch.ones(1, 1, 16, 16, dtype=torch.float64), "mmagic")
    assert got["psnr"].item() == pytest.approx(20 * math.log10(255 / 0.3), abs=1e-9)
    assert got["l1_hole"].item() == pytest.approx(0.3 / 255 * 100, abs=1e-12)
    rounded = image_metrics(pred, target, torch.ones(1, 1, 16, 16), "inpaintbench")
    assert math.isnan(rounded["psnr"].item())  # rounding erases the 0.3-level error


@pytest.mark.parametrize("size", [(51, 51), (56, 64), (64, 80)])
def test_edgeconnect_convention_matches_skimage(size):
    """Truncated 8-bit levels, rgb2gray, PSNR / SSIM(win 51) as skimage computes them, and
    the relative MAE sum|a-b| / sum(a+b)."""
    from skimage.color import rgb2gray
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    h, w = size
    target, mask = _levels((2, 3, h, w), 10), _hole(2, h, w, 11)
    # predictions between levels, away from them by more than TRUNCATION_TOLERANCE
    g = torch.Generator().manual_seed(9)
    level = torch.randint(0, 255, (2, 3, h, w), generator=g).double()
    frac = 0.001 + 0.998 * torch.rand((2, 3, h, w), generator=g, dtype=torch.float64)
    pred = (level + frac) / 127.5 - 1
    got = image_metrics(pred, target, mask, "edgeconnect")
    # EdgeConnect saves (x * 255).int(): truncation; the ground truth is the 8-bit file itself
    pred_u8 = (((pred + 1) / 2) * 255).int().numpy().astype(np.uint8).transpose(0, 2, 3, 1)
    gt_u8 = torch.round((target + 1) * 127.5).numpy().astype(np.uint8).transpose(0, 2, 3, 1)
    for n in range(2):
        gp, gg = rgb2gray(pred_u8[n]), rgb2gray(gt_u8[n])  # uint8 -> [0, 1] float64, BT.709
        assert got["psnr"][n].item() == pytest.approx(
            peak_signal_noise_ratio(gg, gp, data_range=1), abs=1e-9
        )
        ssim = structural_similarity(gg, gp, win_size=51, data_range=1)
        assert got["ssim"][n].item() == pytest.approx(ssim, abs=1e-10)
        rel = np.abs(gg - gp).sum() / (gg + gp).sum()
        assert got["l1"][n].item() == pytest.approx(rel, abs=1e-12)
        hole = mask[n, 0].numpy() > 0
        rel_hole = np.abs(gg - gp)[hole].sum() / (gg + gp)[hole].sum()
        assert got["l1_hole"][n].item() == pytest.approx(rel_hole, abs=1e-12)


def test_truncation_keeps_exact_levels():
    """Ground-truth pixels are exact 8-bit levels; as float32 in [-1, 1] a plain floor would
    drop 63 of the 256 levels by one (they come back up to 3.8e-6 levels short), the
    tolerance (1e-4 levels) keeps every one."""
    u = torch.arange(256)
    x = u.float() / 127.5 - 1  # how benchmarks.data makes test images
    assert int((torch.floor((x.double() + 1) * 127.5) != u).sum()) > 0
    torch.testing.assert_close(to_levels(x, "truncate"), u.double(), rtol=0, atol=0)
    torch.testing.assert_close(to_levels(x, "round"), u.double(), rtol=0, atol=0)
    # anything between levels is truncated, not rounded
    mid = torch.tensor([(10.9 / 127.5) - 1], dtype=torch.float64)
    assert to_levels(mid, "truncate").item() == 10 and to_levels(mid, "round").item() == 11


def test_rgb_to_gray_matches_skimage():
    from skimage.color import rgb2gray

    x = torch.rand(2, 3, 9, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    want = np.stack([rgb2gray(x[i].permute(1, 2, 0).numpy()) for i in range(2)])
    torch.testing.assert_close(rgb_to_gray(x)[:, 0], torch.from_numpy(want), rtol=0, atol=1e-15)


def test_convention_errors_and_not_applicable_values():
    with pytest.raises(ValueError, match="inpaintbench, mmagic, edgeconnect"):
        image_metrics(
            torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 8), "x"
        )
    small = _levels((1, 3, 40, 40), 12)
    with pytest.raises(ValueError, match="at least 51x51"):
        image_metrics(small, small, torch.zeros(1, 1, 40, 40), "edgeconnect")
    img = _levels((1, 3, 16, 16), 13)
    got = image_metrics(img, img, torch.zeros(1, 1, 16, 16), "mmagic")
    assert math.isnan(got["psnr"].item())  # mmagic: inf; here not applicable
    assert math.isnan(got["l1_hole"].item()) and got["ssim"].item() == pytest.approx(1.0)
    for name, conv in CONVENTIONS.items():
        assert conv["name"] == name and set(conv["table"]) <= set(conv["labels"])
        for key in ("psnr", "ssim", "l1", "lpips", "quantization", "scored_image"):
            assert conv[key], (name, key)


def _pitfall_images():
    """protocol.md section 2: astronaut at 256^2, centred 128^2 hole, prediction = Gaussian
    blur sigma 3 + N(0, 3) noise, everywhere (raw) or only in the hole (composite), uint8."""
    import cv2
    import skimage.data

    img = cv2.resize(skimage.data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    img = img.astype(np.float64)
    noise = np.random.default_rng(0).normal(0, 3, img.shape)
    raw = np.clip(np.round(cv2.GaussianBlur(img, (0, 0), 3) + noise), 0, 255)
    mask = np.zeros((256, 256))
    mask[64:192, 64:192] = 1
    composite = np.where(mask[..., None] > 0, raw, img)

    def tensor(a):
        return torch.from_numpy(a).permute(2, 0, 1)[None] / 127.5 - 1

    return tensor(raw), tensor(composite), tensor(img), torch.from_numpy(mask)[None, None]


# protocol.md section 2 table (raw, composite) per (convention, metric); our crop of the
# astronaut and noise draw are not the table's, hence the tolerances
PITFALLS = [
    ("mmagic", "psnr", 19.95, 25.22, 0.05),  # PSNR RGB [0, 255]
    ("mmagic", "ssim", 0.554, 0.865, 0.005),  # Gaussian 11/1.5, Wang/MATLAB
    ("inpaintbench", "ssim", 0.561, 0.876, 0.005),  # torchmetrics 1.9, reflect pad
    ("edgeconnect", "ssim", 0.862, 0.949, 0.005),  # gray, 51 x 51
    ("inpaintbench", "l1", 0.065, 0.019, 0.003),  # L1 whole image
    ("inpaintbench", "l1_hole", 0.075, 0.075, 0.003),  # L1 hole only
    ("mmagic", "l1_hole", 7.5, 7.5, 0.3),  # mmagic MAE = L1 hole x 100
    ("edgeconnect", "l1", 0.070, 0.020, 0.003),  # relative MAE, gray
]


@pytest.fixture(scope="module")
def pitfall_scores():
    """{(convention, "raw" | "composite"): metrics} for the pitfalls images (computed once)."""
    raw, composite, target, mask = _pitfall_images()
    return {
        (conv, kind): image_metrics(pred, target, mask, conv)
        for conv in CONVENTIONS
        for kind, pred in (("raw", raw), ("composite", composite))
    }


@pytest.mark.parametrize("convention,metric,raw_value,composite_value,tol", PITFALLS)
def test_pitfalls_table_composite_versus_raw(
    pitfall_scores, convention, metric, raw_value, composite_value, tol
):
    got_raw = pitfall_scores[(convention, "raw")][metric].item()
    got_comp = pitfall_scores[(convention, "composite")][metric].item()
    assert got_raw == pytest.approx(raw_value, abs=tol)
    assert got_comp == pytest.approx(composite_value, abs=tol)
    if metric.endswith("_hole"):  # the hole holds the same pixels in both
        assert got_raw == pytest.approx(got_comp, abs=1e-12)
    elif metric.startswith(("psnr", "ssim")):
        assert got_comp > got_raw  # compositing flatters every whole-image metric
    else:
        assert got_comp < got_raw


# ----------------------------------------------------------------- fast SSIM / batching
def _ssim_pairs(n, h, w, seed):
    """8-bit images in [0, 1]: random, correlated (noisy copy), flat bright vs flat, dark."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, 256, (n, 3, h, w), generator=g).double()
    b = (a + torch.randn(a.shape, generator=g, dtype=torch.float64) * 12).clamp(0, 255).round()
    flat = torch.full((2, 3, h, w), 255.0, dtype=torch.float64)
    other = torch.cat([torch.full((1, 3, h, w), 254.0), torch.zeros(1, 3, h, w)]).double()
    return torch.cat([a, flat]) / 255, torch.cat([b, other]) / 255


@pytest.mark.parametrize("size", [(6, 6), (7, 9), (11, 11), (16, 40), (33, 21), (64, 64)])
def test_gaussian_ssim_equals_torchmetrics(size):
    """The separable OpenCV filtering gives torchmetrics' float64 SSIM (reflect padding, full
    map) to 1e-12, also below the 11-px window (torchmetrics needs >= 6 px)."""
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    a, b = _ssim_pairs(3, *size, seed=sum(size))
    want = tm_ssim(a, b, gaussian_kernel=True, sigma=1.5, kernel_size=11, data_range=1.0,
                   k1=0.01, k2=0.03, reduction="none")  # fmt: skip
    torch.testing.assert_close(gaussian_ssim(a, b), want, rtol=0, atol=1e-12)
    pred, target = a * 2 - 1, b * 2 - 1  # on the 8-bit grid: image_metrics sees the same
    got = image_metrics(pred, target, torch.zeros(len(a), 1, *size))["ssim"]
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_gaussian_ssim_size_limit():
    with pytest.raises(ValueError, match="at least 6x6"):
        gaussian_ssim(torch.rand(1, 3, 5, 8), torch.rand(1, 3, 5, 8))


@pytest.mark.parametrize("size", [(8, 8), (31, 17), (64, 48)])
def test_psnr_and_l1_equal_torchmetrics(size):
    """torchmetrics' PSNR converts to log10 with a float32 log(10): 1e-7 relative."""
    from torchmetrics.functional import mean_absolute_error
    from torchmetrics.functional.image import peak_signal_noise_ratio

    a, b = _ssim_pairs(3, *size, seed=3 * size[0])
    got = image_metrics(a * 2 - 1, b * 2 - 1, torch.zeros(len(a), 1, *size))
    for i in range(len(a)):  # random, correlated, 255 vs 254 and 255 vs 0 (0 dB)
        want = peak_signal_noise_ratio(a[i], b[i], data_range=1.0)
        assert got["psnr"][i].item() == pytest.approx(want.item(), rel=1e-7)
        assert got["psnr"][i].item() == pytest.approx(
            10 * math.log10(1 / ((a[i] - b[i]) ** 2).mean().item()), abs=1e-10
        )
        assert got["l1"][i].item() == pytest.approx(
            mean_absolute_error(a[i], b[i]).item(), abs=1e-14
        )
    assert got["psnr"][-1].item() == 0 and got["l1"][-1].item() == 1


def _hole_loop(pred, target, mask, convention):
    """Slow reference: each image on its own, the hole pixels picked by boolean indexing."""
    mode = {"inpaintbench": "round", "mmagic": "float", "edgeconnect": "truncate"}[convention]
    out = {"psnr_hole": [], "l1_hole": []}
    for i in range(len(pred)):
        a, b = to_levels(pred[i], mode), to_levels(target[i], mode)  # 3 x H x W in [0, 255]
        if convention == "edgeconnect":
            a, b = rgb_to_gray(a[None] / 255)[0], rgb_to_gray(b[None] / 255)[0]
        hole = mask[i, 0] > 0.5
        if not hole.any():
            out["psnr_hole"].append(math.nan)
            out["l1_hole"].append(math.nan)
            continue
        ha, hb = a[:, hole], b[:, hole]  # C x holes
        mse = ((ha - hb) ** 2).mean().item()
        if convention == "inpaintbench":
            psnr, l1 = 10 * math.log10(255**2 / mse), (ha - hb).abs().mean().item() / 255
        elif convention == "mmagic":
            psnr, l1 = 20 * math.log10(255 / math.sqrt(mse)), (ha - hb).abs().mean().item() / 2.55
        else:
            psnr = 10 * math.log10(1 / mse)
            l1 = ((ha - hb).abs().sum() / (ha + hb).sum()).item()
        out["psnr_hole"].append(psnr)
        out["l1_hole"].append(l1)
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in out.items()}


@pytest.mark.parametrize("convention", list(CONVENTIONS))
def test_hole_metrics_equal_a_per_image_loop(convention):
    n, h, w = 4, 56, 60
    pred, target, mask = _floats((n, 3, h, w), 20), _levels((n, 3, h, w), 21), _hole(n, h, w, 22)
    mask[2] = 0  # no hole: not applicable
    mask[3, :, : h // 2] = 1  # a different hole shape
    got = image_metrics(pred, target, mask, convention)
    want = _hole_loop(pred, target, mask, convention)
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("convention", list(CONVENTIONS))
def test_batched_equals_one_image_at_a_time_and_threads_do_not_matter(convention):
    n, h, w = 3, 52, 64
    pred, target, mask = _floats((n, 3, h, w), 30), _levels((n, 3, h, w), 31), _hole(n, h, w, 32)
    batched = image_metrics(pred, target, mask, convention)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)  # SSIM planes on 2 threads
        two = image_metrics(pred, target, mask, convention)
    finally:
        torch.set_num_threads(threads)
    for i in range(n):
        one = image_metrics(pred[i : i + 1], target[i : i + 1], mask[i : i + 1], convention)
        for key, v in one.items():
            assert v.item() == pytest.approx(batched[key][i].item(), abs=1e-13), key
    for key in batched:
        torch.testing.assert_close(two[key], batched[key], rtol=0, atol=0)


def test_mask_shape_is_checked():
    x = torch.zeros(2, 3, 16, 16)
    with pytest.raises(ValueError, match="mask must be N x 1 x H x W"):
        image_metrics(x, x, torch.zeros(2, 3, 16, 16))


def test_lpips_scores_a_batch_in_one_forward_like_one_by_one(fake_torch_home, monkeypatch):
    scorer = LPIPSScorer("auto")
    a, b = _levels((3, 3, 64, 64), 40).float(), _levels((3, 3, 64, 64), 41).float()
    calls = []
    net = scorer._net.net
    monkeypatch.setattr(
        net, "forward", lambda x, y, _f=net.forward: calls.append(len(x)) or _f(x, y)
    )
    batched = scorer(a, b)
    assert calls == [3]  # one forward for the whole batch
    single = torch.cat([scorer(a[i : i + 1], b[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-6)
