"""Shift-Net: parameter counts, the converter against a key/shape table transcribed from the
official nested U-Net, the converted generator against a plain-ops forward (shift written as a
loop over hole positions), the guidance target and loss, the paper's objective, the PyTorch
extras (hole patch, discounted L1, VGG terms), the discriminator objective and optimisers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo.models.shift_net import (
    ShiftNet,
    ShiftNetGenerator,
    convert_official_discriminator_state_dict,
    convert_official_state_dict,
    crop_boxes,
    hole_boxes,
    load_official,
)

DT = torch.float64
SIZE = 256  # 8 stride-2 levels: the only multiple the generator takes is 256

# Shift-Net_pytorch UnetGeneratorShiftTriple(4, 3, num_downs=8, ngf), norm='instance',
# transcribed from shift_unet.py / unet.py.  Widths in units of ngf ("in" = 4 input channels,
# "out" = 3 output channels).  Per level: nested prefix, (index, C_in, C_out) of the down conv,
# index of the down norm, (index, C_in, C_out) of the up convT, index of the up norm.
LEVELS = [
    ("model.model.", (0, "in", 1), None, (3, 2, "out"), None),  # outermost, Tanh
    ("model.model.1.model.", (1, 1, 2), 2, (5, 4, 1), 6),
    ("model.model.1.model.3.model.", (1, 2, 4), 2, (7, 12, 2), 8),  # shift block: 3 x 4 in
    ("model.model.1.model.3.model.3.model.", (1, 4, 8), 2, (5, 16, 4), 6),
    ("model.model.1.model.3.model.3.model.3.model.", (1, 8, 8), 2, (5, 16, 8), 6),
    ("model.model.1.model.3.model.3.model.3.model.3.model.", (1, 8, 8), 2, (5, 16, 8), 6),
    ("model.model.1.model.3.model.3.model.3.model.3.model.3.model.", (1, 8, 8), 2, (5, 16, 8), 6),
    ("model.model.1.model.3.model.3.model.3.model.3.model.3.model.3.model.",
     (1, 8, 8), None, (3, 8, 8), 4),  # innermost
]  # fmt: skip
SHIFT_LEVEL = 3  # 0-based index 2 above (layer_to_last=3)


def _width(unit, ngf: int) -> int:
    return {"in": 4, "out": 3}[unit] if isinstance(unit, str) else unit * ngf


def official_shapes(ngf: int = 64) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for prefix, (di, dci, dco), dn, (ui, uci, uco), un in LEVELS:
        cin, cout = _width(dci, ngf), _width(dco, ngf)
        shapes[f"{prefix}{di}.weight"], shapes[f"{prefix}{di}.bias"] = (cout, cin, 4, 4), (cout,)
        if dn is not None:
            shapes[f"{prefix}{dn}.weight"] = shapes[f"{prefix}{dn}.bias"] = (cout,)
        uin, uout = _width(uci, ngf), _width(uco, ngf)
        # ConvTranspose2d weights are C_in x C_out x k x k
        shapes[f"{prefix}{ui}.weight"], shapes[f"{prefix}{ui}.bias"] = (uin, uout, 4, 4), (uout,)
        if un is not None:
            shapes[f"{prefix}{un}.weight"] = shapes[f"{prefix}{un}.bias"] = (uout,)
    return shapes


def official_state_dict(ngf: int = 8, seed: int = 0) -> dict:
    """Random tensors in the official layout: conv weights N(0, 0.05), biases and IN affine
    parameters random so every term matters."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in official_shapes(ngf).items():
        if len(shape) == 4:
            sd[key] = torch.randn(shape, generator=g, dtype=DT) * 0.05
        elif key.endswith("weight"):
            sd[key] = 1 + 0.2 * torch.randn(shape, generator=g, dtype=DT)
        else:
            sd[key] = 0.1 * torch.randn(shape, generator=g, dtype=DT)
    return sd


# ------------------------------------------------------------------ plain-ops reference
def instance_norm(h, weight, bias):
    mean = h.mean(dim=(2, 3), keepdim=True)
    var = h.var(dim=(2, 3), unbiased=False, keepdim=True)
    return (h - mean) / torch.sqrt(var + 1e-5) * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)


def shift_loops(dec, enc, feat_mask):
    """InnerShiftTriple, one hole position at a time: the known encoder vector with the highest
    cosine similarity to the decoder vector (first in raster order on ties) is copied."""
    n, c, h, w = dec.shape
    out = torch.zeros_like(enc)
    for b in range(n):
        hole = feat_mask[b, 0].flatten() >= 1
        d, e = dec[b].reshape(c, -1), enc[b].reshape(c, -1)
        known = (~hole).nonzero().flatten()
        for p in hole.nonzero().flatten():
            cos = (d[:, p : p + 1] * e[:, known]).sum(0) / torch.sqrt(
                (d[:, p] ** 2).sum() * (e[:, known] ** 2).sum(0)
            )
            q = known[int(torch.argmax(cos))]
            out[b].view(c, -1)[:, p] = e[:, q]
    return out


def reference_forward(sd, x, mask):
    """The official nested U-Net, unrolled; returns (output, shift-layer input)."""
    feats, h = [], x
    for level, (prefix, (di, *_), dn, _, _) in enumerate(LEVELS, start=1):
        if level > 1:
            h = F.leaky_relu(h, 0.2)
        h = F.conv2d(h, sd[f"{prefix}{di}.weight"], sd[f"{prefix}{di}.bias"], stride=2, padding=1)
        if dn is not None:
            h = instance_norm(h, sd[f"{prefix}{dn}.weight"], sd[f"{prefix}{dn}.bias"])
        feats.append(h)
    d, shift_input = feats[-1], None
    for level in range(len(LEVELS), 0, -1):
        prefix, _, _, (ui, *_), un = LEVELS[level - 1]
        u = F.relu(d if level == len(LEVELS) else torch.cat([d, feats[level - 1]], 1))
        if level == SHIFT_LEVEL:
            shift_input = u
            c = u.shape[1] // 2
            feat_mask = mask[:, :, ::8, ::8]  # nearest resize by 1/8 picks rows/cols 8i
            u = torch.cat([u, shift_loops(u[:, :c], u[:, c:], feat_mask)], 1)
        d = F.conv_transpose2d(
            u, sd[f"{prefix}{ui}.weight"], sd[f"{prefix}{ui}.bias"], stride=2, padding=1
        )
        d = (
            instance_norm(d, sd[f"{prefix}{un}.weight"], sd[f"{prefix}{un}.bias"])
            if un
            else torch.tanh(d)
        )
    return d, shift_input


def masks(kind: str, n: int = 2) -> torch.Tensor:
    m = torch.zeros(n, 1, SIZE, SIZE, dtype=DT)
    if kind == "center":  # Shift-Net center mask: [68, 188)^2
        m[:, :, 68:188, 68:188] = 1
    else:  # different boxes and hole counts per sample, plus a stroke
        m[0, :, 30:110, 40:150] = 1
        m[1 % n, :, 120:230, 10:90] = 1
        m[0, :, 200:210, 100:250] = 1
    return m


def model_with(sd: dict, **kwargs) -> ShiftNet:
    ngf = sd["model.model.0.weight"].shape[0]
    torch.manual_seed(0)  # the discriminator keeps its (seeded) random init
    model = ShiftNet(ngf=ngf, ndf=8, vgg="random", **kwargs).to(DT)
    model.load_official(sd)
    return model


# ------------------------------------------------------------------ counts and layout
def test_parameter_counts() -> None:
    # counted on the official define_G(4, 3, 64, 'unet_shift_triple', norm='instance') and
    # define_D(3, 64, 'basic', norm='instance', use_spectral_norm=1), instantiated locally
    model = zoo.create_model("shift_net", vgg="random")
    assert model.num_params() == {"generator": 54_944_771, "discriminator.patch": 2_766_529}
    table = sum(torch.Size(s).numel() for s in official_shapes(64).values())
    assert table == 54_944_771
    assert model.pad_multiple == 256


def test_converter_maps_every_official_key() -> None:
    shapes = official_shapes(64)
    assert len(shapes) == 58
    with torch.device("meta"):
        sd = {k: torch.empty(s) for k, s in shapes.items()}
        ours = ShiftNetGenerator().state_dict()
    out = convert_official_state_dict(sd)
    assert set(out) == set(ours) and len(out) == 58
    assert all(out[k].shape == ours[k].shape for k in out)
    # spot checks of the nesting (models.md section 5)
    assert out["down2.weight"].shape == sd["model.model.1.model.1.weight"].shape == (128, 64, 4, 4)
    assert out["up3.weight"].shape == sd["model.model.1.model.3.model.7.weight"].shape
    assert out["up3.weight"].shape == (768, 128, 4, 4)


@pytest.mark.parametrize("kind", ["center", "boxes"])
def test_converted_generator_matches_plain_reference(kind: str) -> None:
    sd = official_state_dict(ngf=8, seed=1)
    model = model_with(sd).eval()
    g = torch.Generator().manual_seed(2)
    image = torch.rand(2, 3, SIZE, SIZE, generator=g, dtype=DT) * 2 - 1
    mask = masks(kind)
    known = 1 - mask
    with torch.no_grad():
        out = model(image, mask)
        ref, shift_input = reference_forward(sd, torch.cat([image * known, known], 1), mask)
    torch.testing.assert_close(out["output"], ref, rtol=0, atol=1e-12)
    c = shift_input.shape[1] // 2
    torch.testing.assert_close(out["shift_decoder"], shift_input[:, :c], rtol=0, atol=1e-12)
    # the shift connection matters: without it (zeros) the output changes
    no_shift = model.generator.shift.forward
    model.generator.shift.forward = lambda x, m: torch.cat(
        [x, torch.zeros_like(x[:, : x.shape[1] // 2])], 1
    )
    with torch.no_grad():
        assert (model(image, mask)["output"] - ref).abs().max() > 1e-6
    model.generator.shift.forward = no_shift


def test_guidance_target_equals_the_ground_truth_pass() -> None:
    """Official set_gt_latent: the whole generator runs on [GT, known]; InnerCos keeps the
    encoder half of its input.  Ours runs only three encoder convs: same tensor."""
    sd = official_state_dict(ngf=8, seed=3)
    model = model_with(sd).train()
    model.discriminators.eval()
    g = torch.Generator().manual_seed(4)
    image = torch.rand(2, 3, SIZE, SIZE, generator=g, dtype=DT) * 2 - 1
    mask = masks("boxes")
    known = 1 - mask
    out = model(image, mask)
    with torch.no_grad():
        _, gt_shift_input = reference_forward(sd, torch.cat([image, known], 1), mask)
    c = gt_shift_input.shape[1] // 2
    torch.testing.assert_close(out["shift_target"], gt_shift_input[:, c:], rtol=0, atol=1e-12)
    torch.testing.assert_close(out["shift_mask"], mask[:, :, ::8, ::8], rtol=0, atol=0)
    assert not out["shift_target"].requires_grad
    # eq. 3: sum over hole positions of |dec - target|^2, normalised as MSELoss (N C h w)
    _, logs = model.generator_loss(image, mask, out, step=0)
    m = mask[:, :, ::8, ::8]
    dec = out["shift_decoder"].detach()
    expected = ((dec - out["shift_target"]) ** 2 * m).sum() / dec.numel()
    torch.testing.assert_close(logs["guidance"], expected, rtol=1e-13, atol=0)


def test_no_guidance_pass_in_eval_or_without_guidance() -> None:
    sd = official_state_dict(ngf=8, seed=5)
    image, mask = torch.zeros(1, 3, SIZE, SIZE, dtype=DT), masks("center", 1)
    with torch.no_grad():
        assert "shift_target" not in model_with(sd).eval()(image, mask)
        assert "shift_target" not in model_with(sd, guidance_weight=0.0).train()(image, mask)
    with pytest.raises(ValueError, match="train mode"):
        model = model_with(sd).eval()
        model.generator_loss(image, mask, model(image, mask), step=0)


# ------------------------------------------------------------------ objective
def test_generator_loss_is_the_paper_objective() -> None:
    sd = official_state_dict(ngf=8, seed=6)
    model = model_with(sd).train()
    model.discriminators.eval()  # fixed spectral-norm vectors: D can be re-evaluated
    g = torch.Generator().manual_seed(7)
    image = torch.rand(2, 3, SIZE, SIZE, generator=g, dtype=DT) * 2 - 1
    mask = masks("boxes")
    out = model(image, mask)
    total, logs = model.generator_loss(image, mask, out, step=0)
    output = out["output"].detach()
    l1 = (output - image).abs().mean()
    scores, _ = model.discriminators["patch"](output)  # the raw output, whole image
    adv = -F.logsigmoid(scores).mean()  # BCE(sigmoid(D(G)), 1), written stably
    torch.testing.assert_close(logs["l1"], l1, rtol=1e-13, atol=0)
    torch.testing.assert_close(logs["adv"], adv, rtol=1e-10, atol=0)
    expected = l1 + 0.01 * logs["guidance"] + 0.002 * adv  # paper 1 : 0.01 : 0.002
    torch.testing.assert_close(total.detach(), expected, rtol=1e-12, atol=0)
    assert set(logs) == {"l1", "guidance", "adv", "total"}  # PyTorch extras off by default


def test_discriminator_loss_is_averaged_vanilla_gan() -> None:
    sd = official_state_dict(ngf=8, seed=8)
    model = model_with(sd).train()
    model.discriminators.eval()
    g = torch.Generator().manual_seed(9)
    image = torch.rand(2, 3, SIZE, SIZE, generator=g, dtype=DT) * 2 - 1
    mask = masks("center")
    with torch.no_grad():
        out = model(image, mask)
    loss, logs = model.discriminator_loss(image, mask, out, step=0)
    d = model.discriminators["patch"]
    real, fake = d(image)[0], d(out["output"])[0]
    # BCE(sigmoid(s), 1) = -log sigmoid(s), BCE(sigmoid(s), 0) = -log(1 - sigmoid(s)) =
    # -log sigmoid(-s), written stably; official (loss_D_fake + loss_D_real) * 0.5
    expected = 0.5 * (-F.logsigmoid(real).mean() - F.logsigmoid(-fake).mean())
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-10, atol=0)
    assert real.shape == (2, 1, 30, 30)  # 70x70 PatchGAN on 256^2


def official_discounting(h: int, w: int, gamma: float = 0.9) -> torch.Tensor:
    """Shift-Net_pytorch losses.py spatial_discounting_mask, as its double loop."""
    m = torch.ones(h, w, dtype=DT)
    for i in range(h):
        for j in range(w):
            m[i, j] = max(gamma ** min(i, h - i), gamma ** min(j, w - j))
    return m


def test_pytorch_extras_hole_patch_discounted_l1_and_vgg_terms() -> None:
    sd = official_state_dict(ngf=8, seed=10)
    kwargs = dict(
        crop_hole_patch=True, discounted_l1_weight=4.0, style_weight=0.1, content_weight=0.01
    )
    model = model_with(sd, **kwargs).train()
    model.discriminators.eval()
    g = torch.Generator().manual_seed(11)
    image = torch.rand(2, 3, SIZE, SIZE, generator=g, dtype=DT) * 2 - 1
    mask = masks("center")
    out = model(image, mask)
    total, logs = model.generator_loss(image, mask, out, step=0)
    output = out["output"].detach()
    fake, real = output[:, :, 68:188, 68:188], image[:, :, 68:188, 68:188]  # 120^2 hole patch
    w = official_discounting(120, 120)
    torch.testing.assert_close(
        logs["discounted_l1"], ((fake - real).abs() * w).mean(), rtol=1e-13, atol=0
    )
    scores, _ = model.discriminators["patch"](fake)
    assert scores.shape == (2, 1, 13, 13)  # D sees the patch
    adv = F.softplus(-scores).mean()
    torch.testing.assert_close(logs["adv"], adv, rtol=1e-12, atol=0)
    vgg = model._vgg(image).extractor  # VGG-16 pool1..3 fed [-1, 1] directly
    f_fake, f_real = list(vgg(fake).values()), list(vgg(real).values())

    def gram(f):
        n, c, h, wd = f.shape
        flat = f.reshape(n, c, h * wd)
        return flat @ flat.transpose(1, 2) / (c * h * wd)

    style = sum(((gram(a) - gram(b)) ** 2).mean() for a, b in zip(f_fake, f_real))
    content = sum(((a - b) ** 2).mean() for a, b in zip(f_fake, f_real))
    torch.testing.assert_close(logs["style"], style, rtol=1e-10, atol=0)
    torch.testing.assert_close(logs["content"], content, rtol=1e-10, atol=0)
    expected = (
        logs["l1"] + 0.01 * logs["guidance"] + 0.002 * adv + 4.0 * logs["discounted_l1"]
        + 0.1 * style + 0.01 * content
    )  # fmt: skip
    torch.testing.assert_close(total.detach(), expected, rtol=1e-12, atol=0)


def test_hole_boxes() -> None:
    m = torch.zeros(2, 1, 32, 32)
    m[0, :, 3:13, 5:25] = 1
    m[1, :, 20:30, 0:20] = 1
    assert hole_boxes(m) == [(3, 5, 10, 20), (20, 0, 10, 20)]
    x = torch.arange(2 * 32 * 32, dtype=DT).view(2, 1, 32, 32)
    assert torch.equal(crop_boxes(x, hole_boxes(m))[1, 0], x[1, 0, 20:30, 0:20])
    bad = m.clone()
    bad[0, :, 5, 7] = 0
    with pytest.raises(ValueError, match="rectangular"):
        hole_boxes(bad)
    other = m.clone()
    other[1, :, 19] = 0
    other[1, :, 20:31, 0:20] = 1
    with pytest.raises(ValueError, match="one size"):
        hole_boxes(other)
    with pytest.raises(ValueError, match="no hole"):
        hole_boxes(torch.zeros(1, 1, 8, 8))


# ------------------------------------------------------------------ converter checks
def test_load_official_file_and_drop_old_instance_norm_stats(tmp_path) -> None:
    sd = {k: v.float() for k, v in official_state_dict(ngf=8, seed=12).items()}
    sd["model.model.1.model.2.running_mean"] = torch.zeros(16)  # pre-0.4 InstanceNorm buffers
    sd["model.model.1.model.2.running_var"] = torch.ones(16)
    path = tmp_path / "30_net_G.pth"
    torch.save(sd, path)
    gen = ShiftNetGenerator(ngf=8)
    gen.load_state_dict(load_official(path), strict=True)
    assert torch.equal(gen.up3.weight, sd["model.model.1.model.3.model.7.weight"])


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda sd: sd.pop("model.model.1.model.6.bias"), "missing"),
        (lambda sd: sd.__setitem__("model.model.1.model.9.weight", torch.zeros(1)), "unexpected"),
        (lambda sd: sd.__setitem__("model.model.3.weight", torch.zeros(16, 4, 4, 4)), "shape"),
    ],
)
def test_converter_rejects_bad_state_dicts(edit, message) -> None:
    sd = official_state_dict(ngf=8)
    edit(sd)
    with pytest.raises(ValueError, match=message):
        convert_official_state_dict(sd)


# NLayerDiscriminator(3, 64, n_layers=3, InstanceNorm, use_spectral_norm=True), Sequential
# indices: (conv index, C_in, C_out, stride, norm index or None), LeakyReLU 0.2 between
D_TABLE = [(0, 3, 64, 2, None), (2, 64, 128, 2, 3), (5, 128, 256, 2, 6), (8, 256, 512, 1, 9)]
D_LAST = (11, 512, 1, 1, None)


def official_discriminator(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for i, cin, cout, _, norm in [*D_TABLE, D_LAST]:
        sd[f"model.{i}.bias"] = 0.1 * torch.randn(cout, generator=g, dtype=DT)
        sd[f"model.{i}.weight_orig"] = torch.randn(cout, cin, 4, 4, generator=g, dtype=DT)
        sd[f"model.{i}.weight_u"] = F.normalize(torch.randn(cout, generator=g, dtype=DT), dim=0)
        sd[f"model.{i}.weight_v"] = F.normalize(torch.randn(cin * 16, generator=g, dtype=DT), dim=0)
        if norm is not None:
            sd[f"model.{norm}.weight"] = 1 + 0.2 * torch.randn(cout, generator=g, dtype=DT)
            sd[f"model.{norm}.bias"] = 0.1 * torch.randn(cout, generator=g, dtype=DT)
    return sd


def test_discriminator_converter_matches_legacy_spectral_norm_forward() -> None:
    """torch.nn.utils.spectral_norm in eval mode: W / (u^T W_mat v) with the stored u, v."""
    sd = official_discriminator(seed=13)
    assert len(sd) == 26
    model = ShiftNet(ngf=8, vgg="random").to(DT).eval()
    model.discriminators.load_state_dict(convert_official_discriminator_state_dict(sd), strict=True)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(14), dtype=DT) * 2 - 1
    ref = x
    for i, _, cout, stride, norm in [*D_TABLE, D_LAST]:
        w = sd[f"model.{i}.weight_orig"]
        sigma = sd[f"model.{i}.weight_u"] @ w.reshape(cout, -1) @ sd[f"model.{i}.weight_v"]
        ref = F.conv2d(ref, w / sigma, sd[f"model.{i}.bias"], stride=stride, padding=1)
        if norm is not None:
            ref = instance_norm(ref, sd[f"model.{norm}.weight"], sd[f"model.{norm}.bias"])
        if i != D_LAST[0]:
            ref = F.leaky_relu(ref, 0.2)
    with torch.no_grad():
        scores, _ = model.discriminators["patch"](x)
    torch.testing.assert_close(scores, ref, rtol=0, atol=1e-12)
    bad = dict(sd)
    bad["model.8.weight_orig"] = torch.zeros(512, 128, 4, 4, dtype=DT)
    with pytest.raises(ValueError):
        convert_official_discriminator_state_dict(bad)
    with pytest.raises(ValueError, match="26 tensors"):
        convert_official_discriminator_state_dict(
            {k: v for k, v in sd.items() if k != "model.9.bias"}
        )


# ------------------------------------------------------------------ misc
def test_optimizers_and_init() -> None:
    torch.manual_seed(0)
    model = ShiftNet(vgg="random")
    opts = model.configure_optimizers()
    for name in ("generator", "discriminator"):
        group = opts[name].param_groups[0]
        assert group["lr"] == 2e-4 and group["betas"] == (0.5, 0.999)
    w = model.generator.down4.weight
    assert abs(w.std().item() / 0.02 - 1) < 0.01 and torch.equal(
        model.generator.down4.bias, torch.zeros(512)
    )
    assert torch.equal(model.generator.up_norm4.weight, torch.ones(256))
    d_w = model.discriminators["patch"].model[0].parametrizations.weight.original
    assert abs(d_w.std().item() / 0.02 - 1) < 0.1


def test_generator_size_and_argument_checks() -> None:
    gen = ShiftNetGenerator(ngf=8)
    with pytest.raises(ValueError, match="multiples of 256"):
        gen(torch.zeros(1, 4, 128, 256), torch.zeros(1, 1, 128, 256))
    with pytest.raises(ValueError, match="N x 4"):
        gen(torch.zeros(1, 3, 256, 256), torch.zeros(1, 1, 256, 256))
    with pytest.raises(ValueError):
        ShiftNet(vgg="vgg19")
