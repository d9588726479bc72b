"""GLCIC (zoo/models/glcic.py) against slow references written here, in float64.

- parameter counts: generator 6,072,131 (models.md 0.1, measured on otenim's
  ``CompletionNetwork``) and re-derived here from the layer table; discriminator (paper sizes,
  BN) local 19,253,248 + global 25,808,384 + FC 2,049;
- the otenim converter on state dicts built from a key/shape table transcribed below from
  otenim/GLCIC-PyTorch ``models.py`` (independently of the converter), strict load, and the
  outputs equal a plain-``torch.nn.functional`` forward of those same tensors (both BN orders);
- the local discriminator input: real and fake cropped at the same hole-centred window (the
  window itself, shared with DeepFill v1 and GMCNN: tests/layers/test_local_patch.py);
- the three training phases and the otenim loss weighting, term by term;
- the receptive field of the real module (303 exact; the paper's 307 reading), empirically too;
- the inpaint.lua Poisson post-processing (eval only; blind to a constant offset of the
  prediction, also for holes touching the border).

A full equivalence with otenim's own classes (run from /tmp, not needed here) gave max
differences 0.0 (generator, eval and train mode, float64) and 0.0 (discriminator,
"places2" at 256/128 and "celeba" at 160/96).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.testing import assert_close

from zoo._registry import create_model
from zoo.layers.local_patch import hole_windows
from zoo.layers.receptive_field import (
    LayerGeometry,
    input_span,
    layers_from_module,
    receptive_field,
)
from zoo.models._base import count_params
from zoo.models.glcic import (
    GLCIC,
    GLCICCompletionNetwork,
    convert_otenim_state_dict,
    dataset_mean_pixel,
    poisson_blend,
)

DT = torch.float64

# otenim models.py CompletionNetwork, transcribed: (name, in, out, kernel, stride, dilation,
# padding, transposed); every layer but conv17 has a BatchNorm2d "bn<k>" after it.
OTENIM_CN = [
    ("conv1", 4, 64, 5, 1, 1, 2, False),
    ("conv2", 64, 128, 3, 2, 1, 1, False),
    ("conv3", 128, 128, 3, 1, 1, 1, False),
    ("conv4", 128, 256, 3, 2, 1, 1, False),
    ("conv5", 256, 256, 3, 1, 1, 1, False),
    ("conv6", 256, 256, 3, 1, 1, 1, False),
    ("conv7", 256, 256, 3, 1, 2, 2, False),
    ("conv8", 256, 256, 3, 1, 4, 4, False),
    ("conv9", 256, 256, 3, 1, 8, 8, False),
    ("conv10", 256, 256, 3, 1, 16, 16, False),
    ("conv11", 256, 256, 3, 1, 1, 1, False),
    ("conv12", 256, 256, 3, 1, 1, 1, False),
    ("deconv13", 256, 128, 4, 2, 1, 1, True),
    ("conv14", 128, 128, 3, 1, 1, 1, False),
    ("deconv15", 128, 64, 4, 2, 1, 1, True),
    ("conv16", 64, 32, 3, 1, 1, 1, False),
    ("conv17", 32, 3, 3, 1, 1, 1, False),
]


def _num(name: str) -> str:
    return name.removeprefix("deconv").removeprefix("conv")


def otenim_cn_state(seed: int = 0, with_nbt: bool = True) -> dict[str, torch.Tensor]:
    """A random state dict in otenim's CompletionNetwork layout (BN stats non-trivial)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name, c_in, c_out, k, _s, _d, _p, transposed in OTENIM_CN:
        shape = (c_in, c_out, k, k) if transposed else (c_out, c_in, k, k)
        fan_in = c_in * k * k
        sd[f"{name}.weight"] = torch.randn(shape, generator=g, dtype=DT) / math.sqrt(fan_in)
        sd[f"{name}.bias"] = 0.1 * torch.randn(c_out, generator=g, dtype=DT)
        if name != "conv17":
            bn = f"bn{_num(name)}"
            sd[f"{bn}.weight"] = 0.5 + torch.rand(c_out, generator=g, dtype=DT)
            sd[f"{bn}.bias"] = 0.2 * torch.randn(c_out, generator=g, dtype=DT)
            sd[f"{bn}.running_mean"] = 0.3 * torch.randn(c_out, generator=g, dtype=DT)
            sd[f"{bn}.running_var"] = 0.5 + torch.rand(c_out, generator=g, dtype=DT)
            if with_nbt:
                sd[f"{bn}.num_batches_tracked"] = torch.tensor(7)
    return sd


def reference_completion(sd, x, bn_after_relu: bool):
    """Plain functional forward of the otenim tensors (BN in inference mode)."""
    for name, _ci, _co, _k, s, d, p, transposed in OTENIM_CN:
        w, b = sd[f"{name}.weight"], sd[f"{name}.bias"]
        if transposed:
            x = F.conv_transpose2d(x, w, b, stride=s, padding=p)
        else:
            x = F.conv2d(x, w, b, stride=s, padding=p, dilation=d)
        if name == "conv17":
            return torch.sigmoid(x)
        bn = f"bn{_num(name)}"

        def norm(t, bn=bn):
            return F.batch_norm(
                t, sd[f"{bn}.running_mean"], sd[f"{bn}.running_var"], sd[f"{bn}.weight"],
                sd[f"{bn}.bias"], training=False, eps=1e-5,
            )  # fmt: skip

        x = norm(F.relu(x)) if bn_after_relu else F.relu(norm(x))
    raise AssertionError("unreachable")


def small_model(**kwargs) -> GLCIC:
    torch.manual_seed(0)
    kwargs.setdefault("image_size", 64)
    return GLCIC(**kwargs).to(DT)


def box_mask(n, size, boxes):
    mask = torch.zeros(n, 1, size, size, dtype=DT)
    for i, (t, left, h, w) in enumerate(boxes):
        mask[i, :, t : t + h, left : left + w] = 1
    return mask


# ------------------------------------------------------------------------ parameter counts
def test_parameter_counts():
    model = GLCIC()
    # models.md 0.1: measured on otenim's CompletionNetwork
    assert count_params(model.generator) == 6_072_131
    # re-derived from the transcribed table: conv k*k*in*out + out, BN 2*out
    by_hand = sum(
        k * k * ci * co + co + (2 * co if name != "conv17" else 0)
        for name, ci, co, k, *_ in OTENIM_CN
    )
    assert by_hand == 6_072_131
    disc = model.discriminators["context"]
    assert count_params(disc.local_branch) == 19_253_248
    assert count_params(disc.global_branch) == 25_808_384
    assert count_params(disc.head) == 2_049
    assert model.num_params() == {
        "generator": 6_072_131,
        "discriminator.context": 45_063_681,
    }
    # local 128 / global 256 at the paper's image size; scaled with image_size
    assert (disc.global_size, disc.local_size) == ((256, 256), (128, 128))
    assert GLCIC(image_size=128).discriminators["context"].local_size == (64, 64)


# ------------------------------------------------------------------------ converter
@pytest.mark.parametrize("bn_after_relu", [True, False])
def test_otenim_generator_converts_and_matches_reference(bn_after_relu):
    sd = otenim_cn_state()
    assert len(sd) == 114
    state = convert_otenim_state_dict(sd)
    net = GLCICCompletionNetwork(bn_after_relu=bn_after_relu).to(DT).eval()
    net.load_state_dict(state["generator"], strict=True)
    x = torch.rand(2, 4, 32, 40, generator=torch.Generator().manual_seed(1), dtype=DT)
    with torch.no_grad():
        got = net(x)
        want = reference_completion(sd, x, bn_after_relu)
    assert_close(got, want, rtol=0, atol=1e-12)


def test_otenim_generator_without_num_batches_tracked():
    state = convert_otenim_state_dict(otenim_cn_state(with_nbt=False))
    assert len(state["generator"]) == 114
    assert state["generator"]["conv1.norm.num_batches_tracked"].item() == 0


def test_otenim_converter_rejects_bad_state_dicts():
    sd = otenim_cn_state()
    missing = {k: v for k, v in sd.items() if k != "bn7.running_var"}
    with pytest.raises(ValueError, match="bn7.running_var"):
        convert_otenim_state_dict(missing)
    with pytest.raises(ValueError, match="conv99"):
        convert_otenim_state_dict({**sd, "conv99.weight": torch.zeros(1)})
    bad = dict(sd)
    bad["conv9.weight"] = torch.zeros(256, 256, 5, 5, dtype=DT)
    with pytest.raises(ValueError, match="conv9.conv.weight"):
        convert_otenim_state_dict(bad)
    with pytest.raises(TypeError):
        convert_otenim_state_dict([1, 2])


def otenim_cd_state(arc: str, global_size: int, local_size: int, c: int = 64, fc: int = 1024):
    """otenim ContextDiscriminator layout (model_ld / model_gd / linear1); ``c`` = otenim's 64
    (shrunk for speed: same keys, scaled widths).  Meta tensors when ``c == 64``."""
    device = "meta" if c == 64 else "cpu"
    g = torch.Generator().manual_seed(2)

    def rand(*shape):
        if device == "meta":
            return torch.empty(shape, device="meta", dtype=DT)
        fan_in = shape[1] * (25 if len(shape) == 4 else 1) if len(shape) > 1 else 1
        return torch.randn(shape, generator=g, dtype=DT) / math.sqrt(fan_in)

    widths = [c, 2 * c, 4 * c, 8 * c, 8 * c, 8 * c]
    sd = {}
    for prefix, n_conv, size in (
        ("model_ld", 5, local_size),
        ("model_gd", 6 if arc == "places2" else 5, global_size),
    ):
        c_in = 3
        for i in range(1, n_conv + 1):
            sd[f"{prefix}.conv{i}.weight"] = rand(widths[i - 1], c_in, 5, 5)
            sd[f"{prefix}.conv{i}.bias"] = 0.1 * rand(widths[i - 1])
            for p in ("weight", "bias", "running_mean", "running_var"):
                value = rand(widths[i - 1])
                sd[f"{prefix}.bn{i}.{p}"] = (
                    value.abs() + 0.5 if p in ("weight", "running_var") else 0.2 * value
                )
            sd[f"{prefix}.bn{i}.num_batches_tracked"] = torch.tensor(3, device=device)
            c_in = widths[i - 1]
        side = size // 2**n_conv
        lin = f"{prefix}.linear{n_conv + 1}"
        sd[f"{lin}.weight"] = rand(fc, c_in * side * side)
        sd[f"{lin}.bias"] = 0.1 * rand(fc)
    sd["linear1.weight"] = rand(1, 2 * fc)
    sd["linear1.bias"] = rand(1)
    return sd


def reference_context(sd, local, image, arc):
    def branch(prefix, x, n_conv):
        for i in range(1, n_conv + 1):
            x = F.relu(
                F.conv2d(
                    x,
                    sd[f"{prefix}.conv{i}.weight"],
                    sd[f"{prefix}.conv{i}.bias"],
                    stride=2,
                    padding=2,
                )
            )
            bn = f"{prefix}.bn{i}"
            x = F.batch_norm(
                x,
                sd[f"{bn}.running_mean"],
                sd[f"{bn}.running_var"],
                sd[f"{bn}.weight"],
                sd[f"{bn}.bias"],
                False,
                0.0,
                1e-5,
            )
        lin = f"{prefix}.linear{n_conv + 1}"
        return F.relu(F.linear(x.flatten(1), sd[f"{lin}.weight"], sd[f"{lin}.bias"]))

    feats = torch.cat(
        [branch("model_ld", local, 5), branch("model_gd", image, 6 if arc == "places2" else 5)], 1
    )
    return torch.sigmoid(F.linear(feats, sd["linear1.weight"], sd["linear1.bias"]))


@pytest.mark.parametrize("arc,global_size,local_size", [("places2", 128, 64), ("celeba", 160, 96)])
def test_otenim_discriminator_converts_and_matches_reference(arc, global_size, local_size):
    # full-width layout: keys and every shape accepted (meta tensors, no memory)
    full = convert_otenim_state_dict(
        otenim_cn_state(), otenim_cd_state(arc, 2 * global_size, 2 * local_size)
    )
    assert len(full["discriminators"]) == len(otenim_cd_state(arc, 256, 128))
    # shrunk widths: outputs equal the functional reference (sigmoid applied by otenim)
    sd = otenim_cd_state(arc, global_size, local_size, c=4, fc=16)
    state = convert_otenim_state_dict(otenim_cn_state(), sd)
    model = GLCIC(image_size=global_size, local_size=local_size, discriminator_arch=arc)
    model.discriminators["context"] = type(model.discriminators["context"])(
        global_size, local_size, arc, cnum=4, fc_features=16
    )
    model = model.to(DT).eval()
    model.discriminators.load_state_dict(state["discriminators"], strict=True)
    g = torch.Generator().manual_seed(3)
    image = torch.rand(2, 3, global_size, global_size, generator=g, dtype=DT)
    local = torch.rand(2, 3, local_size, local_size, generator=g, dtype=DT)
    with torch.no_grad():
        logits, _ = model.discriminators["context"](image, local)
    assert_close(
        torch.sigmoid(logits), reference_context(sd, local, image, arc), rtol=0, atol=1e-12
    )


def test_load_otenim_files(tmp_path):
    sd = otenim_cn_state()
    torch.save(sd, tmp_path / "model_cn")
    (tmp_path / "config.json").write_text(json.dumps({"mpv": [0.5, 0.4, 0.3], "alpha": 4e-4}))
    model = create_model("glcic", bn_after_relu=True, image_size=64).to(DT).eval()
    model.load_otenim(tmp_path / "model_cn", config=tmp_path / "config.json")
    assert_close(model.mean_pixel.flatten(), torch.tensor([0.5, 0.4, 0.3], dtype=DT))
    image = torch.rand(1, 3, 32, 32, dtype=DT) * 2 - 1
    mask = box_mask(1, 32, [(5, 6, 12, 15)])
    x01 = (image + 1) / 2
    filled = x01 - x01 * mask + torch.tensor([0.5, 0.4, 0.3], dtype=DT).view(1, 3, 1, 1) * mask
    with torch.no_grad():
        got = model(image, mask)["output"]
    want = reference_completion(sd, torch.cat([filled, mask], 1), True) * 2 - 1
    assert_close(got, want, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="bn_after_relu=True"):
        create_model("glcic").load_otenim(sd)


# ------------------------------------------------------------------------ local window
def test_real_and_fake_share_the_window_and_resize_fallback():
    model = small_model()
    mask = box_mask(2, 64, [(40, 50, 20, 14), (0, 0, 9, 9)])
    images = torch.rand(2, 3, 64, 64, dtype=DT)
    global_in, local_in = model.context_inputs(images, mask)
    assert global_in is images
    assert torch.equal(local_in[0], images[0, :, 32:64, 32:64])  # clipped at the bottom-right
    assert torch.equal(local_in[1], images[1, :, 0:32, 0:32])  # clipped at the top-left
    # a 32x32 batch for a 64x64 discriminator: resized (warned), window scaled with it
    with pytest.warns(UserWarning, match="image_size"):
        g2, l2 = model.context_inputs(images[:, :, ::2, ::2], mask[:, :, ::2, ::2])
    assert g2.shape == (2, 3, 64, 64) and l2.shape == (2, 3, 32, 32)


# ------------------------------------------------------------------------ inference
@pytest.mark.parametrize("subtract_mean", [False, True])
def test_network_input_fills_the_hole_with_the_mean(subtract_mean):
    model = small_model(mean_pixel=(0.1, 0.2, 0.9), subtract_mean=subtract_mean)
    image = torch.rand(1, 3, 16, 16, dtype=DT) * 2 - 1
    mask = box_mask(1, 16, [(3, 4, 5, 6)])
    got = model.network_input(image, mask)
    x, mean = (image + 1) / 2, torch.tensor([0.1, 0.2, 0.9], dtype=DT).view(1, 3, 1, 1)
    want = (x - mean) * (1 - mask) if subtract_mean else x * (1 - mask) + mean * mask
    assert torch.equal(got[:, 3:], mask)
    assert_close(got[:, :3], want, rtol=0, atol=1e-15)


def test_output_is_the_rescaled_sigmoid():
    model = small_model().eval()
    image = torch.rand(2, 3, 32, 32, dtype=DT) * 2 - 1
    mask = box_mask(2, 32, [(3, 4, 10, 9), (20, 0, 12, 12)])
    with torch.no_grad():
        out = model(image, mask)
        raw = model.generator(model.network_input(image, mask))
    assert_close(out["output"], raw * 2 - 1, rtol=0, atol=0)
    assert raw.min() >= 0 and raw.max() <= 1


# ------------------------------------------------------------------------ objective
def test_phases():
    model = small_model(phase_tc=5, phase_td=3)
    assert [model.phases(s) for s in (0, 4, 5, 7, 8, 10**6)] == [
        (True, False), (True, False), (False, True), (False, True), (True, True), (True, True)
    ]  # fmt: skip
    paper = create_model("glcic")
    assert paper.phases(89_999) == (True, False) and paper.phases(90_000) == (False, True)
    assert paper.phases(99_999) == (False, True) and paper.phases(100_000) == (True, True)


def _bce(p, target):
    return -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()


def test_losses_follow_otenim_weighting():
    model = small_model(phase_tc=2, phase_td=2, alpha=0.25).train()
    g = torch.Generator().manual_seed(5)
    image = torch.rand(2, 3, 64, 64, generator=g, dtype=DT) * 2 - 1
    mask = box_mask(2, 64, [(10, 12, 20, 24), (30, 3, 30, 18)])
    out = model(image, mask)
    fake01, real01 = (out["output"] + 1) / 2, (image + 1) / 2
    mse = ((fake01 * mask - real01 * mask) ** 2).mean()  # otenim completion_network_loss

    def d_prob(x01):
        corners = hole_windows(mask, 32)
        local = torch.stack(
            [x01[i, :, t : t + 32, c : c + 32] for i, (t, c) in enumerate(corners.tolist())]
        )
        return torch.sigmoid(model.discriminators["context"](x01, local)[0])

    # phase 1: MSE only
    loss1, logs1 = model.generator_loss(image, mask, out, step=0)
    assert_close(loss1, mse, rtol=0, atol=1e-15)
    assert set(logs1) == {"mse", "total"}
    # phase 3: (MSE + alpha * BCE(D(fake), 1)) / 2
    torch.manual_seed(9)  # (no randomness inside; BN batch statistics are deterministic)
    loss3, logs3 = model.generator_loss(image, mask, out, step=4)
    want3 = (mse + 0.25 * _bce(d_prob(fake01), 1.0)) / 2
    assert_close(loss3, want3, rtol=0, atol=1e-12)
    # discriminator: (BCE(real, 1) + BCE(fake, 0)) / 2, times alpha in the joint phase
    detached = {k: v.detach() for k, v in out.items()}
    d2, _ = model.discriminator_loss(image, mask, detached, step=2)
    want_d = (_bce(d_prob(real01), 1.0) + _bce(d_prob(fake01.detach()), 0.0)) / 2
    assert_close(d2, want_d, rtol=0, atol=1e-12)
    d3, _ = model.discriminator_loss(image, mask, detached, step=4)
    assert_close(d3, 0.25 * want_d, rtol=0, atol=1e-12)


def test_optimizers_are_adadelta_with_torch_defaults():
    opts = small_model().configure_optimizers()
    for opt in opts.values():
        assert isinstance(opt, torch.optim.Adadelta)
        group = opt.param_groups[0]
        assert (group["lr"], group["rho"], group["eps"], group["weight_decay"]) == (
            1.0,
            0.9,
            1e-6,
            0,
        )


def test_constructor_validation():
    with pytest.raises(ValueError, match="postprocess"):
        GLCIC(postprocess="blur")
    with pytest.raises(ValueError, match="mean_pixel"):
        GLCIC(mean_pixel=(0.5, 0.5))
    with pytest.raises(ValueError, match="local_size"):
        GLCIC(image_size=64, local_size=65)
    with pytest.raises(ValueError, match="multiples of 4"):
        GLCICCompletionNetwork()(torch.zeros(1, 4, 30, 32))


# ------------------------------------------------------------------------ receptive field
def test_receptive_field_of_the_completion_network():
    layers = layers_from_module(GLCICCompletionNetwork())
    assert len(layers) == 17
    assert receptive_field(layers[:12]) == 287  # last 1/4-resolution layer (conv12)
    assert receptive_field(layers) == 303  # exact, true 4x4 stride-1/2 transposed convs
    assert {s[1] - s[0] + 1 for o in range(8) if (s := input_span(layers, o))} == {299, 303}
    # the paper's 307: each deconvolution read as x2 upsampling + 4x4 convolution
    paper_reading = []
    for layer in layers:
        if layer.kind == "conv_transpose":
            paper_reading += [
                LayerGeometry("upsample", scale=2),
                LayerGeometry("conv", kernel_size=4, padding=1),
            ]
        else:
            paper_reading.append(layer)
    assert receptive_field(paper_reading) == 307


def test_receptive_field_empirical():
    """Gradient support of output pixels of the real module (narrow width, positive weights:
    no cancellation, every ReLU open) equals the computed spans."""
    net = GLCICCompletionNetwork(cnum=2).to(DT).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                fan_in = m.weight[0].numel() if isinstance(m, nn.Conv2d) else m.weight[:, 0].numel()
                w = torch.rand(m.weight.shape, generator=gen, dtype=DT) + 0.1
                m.weight.copy_(w / fan_in)  # activations stay O(1): the Sigmoid never saturates
                m.bias.zero_()
    layers = layers_from_module(net)
    size = 392
    x = torch.rand(1, 4, size, size, dtype=DT, requires_grad=True)
    y = net(x)
    extents = []
    for o in (size // 2 - 2, size // 2 - 1):  # one row of each parity
        (grad,) = torch.autograd.grad(y[0, 0, o, size // 2], x, retain_graph=True)
        rows = (grad[0].abs().sum(0) != 0).nonzero()[:, 0]
        assert input_span(layers, o) == (rows.min().item(), rows.max().item())
        extents.append(rows.max().item() - rows.min().item() + 1)
    assert sorted(extents) == [299, 303]


# ------------------------------------------------------------------------ post-processing
def test_poisson_only_in_eval_mode():
    model = small_model(postprocess="poisson")
    image = torch.rand(1, 3, 32, 32, dtype=DT) * 2 - 1
    mask = box_mask(1, 32, [(8, 9, 11, 13)])
    with torch.no_grad():
        train_out = model.train()(image, mask)
        eval_out = model.eval()(image, mask)
    assert "network_output" not in train_out
    assert "network_output" in eval_out
    known = (1 - mask).bool().expand_as(image)
    assert torch.equal(eval_out["composite"][known], image[known])
    assert not torch.equal(eval_out["output"], eval_out["network_output"])


@pytest.mark.parametrize("box", [(9, 11, 13, 15), (8, 8, 12, 12), (0, 0, 9, 11), (20, 27, 12, 5)])
@pytest.mark.parametrize("offset", [0.3, -0.2])
def test_poisson_ignores_a_constant_offset(box, offset):
    """Gradient-domain blending: adding a constant to the prediction inside the hole changes
    nothing (to 8-bit quantisation), for odd and even boxes and for holes touching the border;
    and the blend of the true image stays close to it (OpenCV's solver error, a few levels)."""
    size = 32
    ii, jj = torch.meshgrid(
        torch.arange(size, dtype=DT), torch.arange(size, dtype=DT), indexing="ij"
    )
    ramp = torch.stack([ii / 40 - 0.5, jj / 50 - 0.2, (ii + jj) / 80 - 0.6]).unsqueeze(0)
    mask = box_mask(1, size, [box])
    hole = mask.bool().expand_as(ramp)
    shifted = poisson_blend(ramp, ramp + offset * mask, mask)
    plain = poisson_blend(ramp, ramp, mask)
    assert (shifted - plain)[hole].abs().max().item() <= 1 / 127.5 + 1e-12
    assert (plain - ramp)[hole].abs().mean().item() < 8 / 127.5
    assert torch.equal(poisson_blend(ramp, ramp + offset * mask, torch.zeros_like(mask)), ramp)


def test_dataset_mean_pixel():
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 8 + i, 10, generator=g, dtype=DT) * 2 - 1 for i in range(4)]
    want = np.mean([((im.numpy() + 1) / 2).mean(axis=(1, 2)) for im in images], axis=0)
    assert np.allclose(dataset_mean_pixel(images), want, rtol=0, atol=1e-12)
    with pytest.raises(ValueError):
        dataset_mean_pixel([])
