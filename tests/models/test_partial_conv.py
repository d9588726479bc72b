"""PartialConv: parameter counts, naoto's partial-conv formula against the converted layer
(window loops), the whole converted PConvUNet against a plain-ops forward of naoto's network,
converter checks, value-range conversions, naoto's loss terms, the fine-tuning stage."""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo._weights import MissingWeightsError
from zoo.layers.vgg import IMAGENET_MEAN, IMAGENET_STD
from zoo.losses.perceptual import gram_matrix
from zoo.models.partial_conv import (
    PartialConv,
    PConvUNet,
    convert_naoto_state_dict,
    from_imagenet,
    load_naoto,
    to_imagenet,
)

DT = torch.float64

# naoto0804 net.py PConvUNet(layer_size=7, input_channels=3), transcribed from __init__:
# (name, C_in, C_out, kernel, stride, BN, activation, input_conv bias)
NAOTO_7 = [
    ("enc_1", 3, 64, 7, 2, False, "relu", False),  # PCBActiv(3, 64, bn=False, 'down-7')
    ("enc_2", 64, 128, 5, 2, True, "relu", False),  # 'down-5'
    ("enc_3", 128, 256, 5, 2, True, "relu", False),  # 'down-5'
    ("enc_4", 256, 512, 3, 2, True, "relu", False),  # 'down-3'
    ("enc_5", 512, 512, 3, 2, True, "relu", False),
    ("enc_6", 512, 512, 3, 2, True, "relu", False),
    ("enc_7", 512, 512, 3, 2, True, "relu", False),
    ("dec_7", 1024, 512, 3, 1, True, "leaky", False),  # PCBActiv(512 + 512, 512, 'leaky')
    ("dec_6", 1024, 512, 3, 1, True, "leaky", False),
    ("dec_5", 1024, 512, 3, 1, True, "leaky", False),
    ("dec_4", 768, 256, 3, 1, True, "leaky", False),  # 512 + 256
    ("dec_3", 384, 128, 3, 1, True, "leaky", False),  # 256 + 128
    ("dec_2", 192, 64, 3, 1, True, "leaky", False),  # 128 + 64
    ("dec_1", 67, 3, 3, 1, False, None, True),  # 64 + 3, bn=False, activ=None, bias
]
# layer_size=8 adds enc_8 and dec_8 (512 -> 512, 1024 -> 512)
NAOTO_8 = (
    NAOTO_7[:7]
    + [
        ("enc_8", 512, 512, 3, 2, True, "relu", False),
        ("dec_8", 1024, 512, 3, 1, True, "leaky", False),
    ]
    + NAOTO_7[7:]
)
TABLES = {7: NAOTO_7, 8: NAOTO_8}
NAOTO_KEY_COUNT = {7: 89, 8: 103}  # len(PConvUNet(layer_size).state_dict()) in naoto's code


def naoto_state_dict(layer_size: int = 7, seed: int = 0, dtype=DT) -> dict:
    """A naoto ``PConvUNet.state_dict()`` built from the table: random ``input_conv`` weights
    (naoto's scale: Kaiming, fan in), all-ones ``mask_conv``, random BN statistics (fresh
    copies of a cached draw)."""
    return {k: v.clone() for k, v in _naoto_state_dict(layer_size, seed, dtype).items()}


@functools.cache
def _naoto_state_dict(layer_size: int, seed: int, dtype: torch.dtype) -> dict:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name, cin, cout, k, _, bn, _, bias in TABLES[layer_size]:
        std = math.sqrt(2.0 / (cin * k * k))
        sd[f"{name}.conv.input_conv.weight"] = (
            torch.randn(cout, cin, k, k, generator=g, dtype=dtype) * std
        )
        if bias:
            sd[f"{name}.conv.input_conv.bias"] = torch.randn(cout, generator=g, dtype=dtype) * 0.1
        sd[f"{name}.conv.mask_conv.weight"] = torch.ones(cout, cin, k, k, dtype=dtype)
        if bn:
            sd[f"{name}.bn.weight"] = 1 + 0.1 * torch.randn(cout, generator=g, dtype=dtype)
            sd[f"{name}.bn.bias"] = 0.1 * torch.randn(cout, generator=g, dtype=dtype)
            sd[f"{name}.bn.running_mean"] = 0.2 * torch.randn(cout, generator=g, dtype=dtype)
            sd[f"{name}.bn.running_var"] = 0.5 + torch.rand(cout, generator=g, dtype=dtype)
            sd[f"{name}.bn.num_batches_tracked"] = torch.tensor(1000)
    return sd


# ------------------------------------------------------------------ naoto's formula, slowly
def naoto_pconv_loops(x, valid, weight, bias, stride, pad):
    """naoto ``PartialConv.forward`` one window at a time: ``out = (W . (X*M) ) / sum(M) + b``
    over the C_in x k x k window (M = 1 valid, multi-channel), 0 where ``sum(M) = 0``;
    ``new_mask = 1`` where ``sum(M) > 0``."""
    n, cin, h, w = x.shape
    cout, _, k, _ = weight.shape
    xp, mp = F.pad(x * valid, (pad,) * 4), F.pad(valid, (pad,) * 4)
    ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    out = torch.zeros(n, cout, ho, wo, dtype=x.dtype)
    new_mask = torch.zeros(n, cout, ho, wo, dtype=x.dtype)
    for b in range(n):
        for i in range(ho):
            for j in range(wo):
                xs = xp[b, :, i * stride : i * stride + k, j * stride : j * stride + k]
                count = mp[b, :, i * stride : i * stride + k, j * stride : j * stride + k].sum()
                if count > 0:
                    conv = (weight * xs).sum(dim=(1, 2, 3))  # C_out
                    out[b, :, i, j] = conv / count + (0 if bias is None else bias)
                    new_mask[b, :, i, j] = 1
    return out, new_mask


def irregular_valid(n: int, c: int, h: int, w: int, seed: int) -> torch.Tensor:
    """Valid mask (1 = valid) with blobs and one all-hole quarter, equal over channels."""
    g = torch.Generator().manual_seed(seed)
    coarse = (torch.rand(n, 1, max(h // 4, 1), max(w // 4, 1), generator=g) > 0.4).to(DT)
    valid = F.interpolate(coarse, size=(h, w), mode="nearest")
    valid[0, :, : h // 2, : w // 2] = 0  # windows with no valid pixel at all
    return valid.expand(-1, c, -1, -1).contiguous()


@pytest.mark.parametrize("seed", [0, 1])
def test_first_encoder_layer_equals_naoto_formula(seed: int) -> None:
    sd = naoto_state_dict(seed=seed)
    net = PConvUNet().to(DT)
    net.load_state_dict(convert_naoto_state_dict(sd), strict=True)
    g = torch.Generator().manual_seed(10 + seed)
    x = torch.randn(2, 3, 19, 22, generator=g, dtype=DT)  # odd sizes: border windows
    valid = irregular_valid(2, 3, 19, 22, seed)
    ours, ours_mask = net.enc_1.conv(x, 1 - valid)  # our mask convention: 1 = hole
    ref, ref_mask = naoto_pconv_loops(x, valid, sd["enc_1.conv.input_conv.weight"], None, 2, 3)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(1 - ours_mask, ref_mask, rtol=0, atol=0)
    assert (ref_mask == 0).any() and (ref_mask == 1).any()


def test_decoder_layer_with_mixed_channel_masks_equals_naoto_formula() -> None:
    """dec_1 sees [upsampled dec_2 output (64 ch), input image (3 ch)] with *different* masks
    per channel group: only a multi-channel count reproduces naoto; dec_1 has a bias."""
    sd = naoto_state_dict(seed=3)
    net = PConvUNet().to(DT)
    net.load_state_dict(convert_naoto_state_dict(sd), strict=True)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(1, 67, 9, 11, generator=g, dtype=DT)
    valid = torch.cat([irregular_valid(1, 64, 9, 11, 5), irregular_valid(1, 3, 9, 11, 6)], dim=1)
    valid[:, 64:, 5:, :] = 1 - valid[:, 64:, 5:, :]  # groups disagree somewhere
    ours, _ = net.dec_1.conv(x, 1 - valid)
    w, b = sd["dec_1.conv.input_conv.weight"], sd["dec_1.conv.input_conv.bias"]
    ref, _ = naoto_pconv_loops(x, valid, w, b, 1, 1)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    # a single-channel (spatial) count would be wrong here
    spatial = valid[:, :1].expand_as(valid)
    wrong, _ = naoto_pconv_loops(x, spatial, w, b, 1, 1)
    assert (wrong - ref).abs().max() > 1e-3


# ------------------------------------------------------------------ whole network, plain ops
def naoto_forward(sd: dict, layer_size: int, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """naoto ``PConvUNet.forward`` (eval-mode BN) with F.conv2d on naoto-scaled weights."""
    spec = {row[0]: row for row in TABLES[layer_size]}

    def layer(name, h, m):
        _, _, cout, k, s, bn, act, bias = spec[name]
        w = sd[f"{name}.conv.input_conv.weight"]
        out = F.conv2d(h * m, w, stride=s, padding=k // 2)
        count = F.conv2d(m, torch.ones_like(w), stride=s, padding=k // 2)
        b = sd[f"{name}.conv.input_conv.bias"].view(1, -1, 1, 1) if bias else 0
        holes = count == 0
        out = torch.where(holes, torch.zeros_like(out), out / count.masked_fill(holes, 1) + b)
        if bn:
            mean, var = sd[f"{name}.bn.running_mean"], sd[f"{name}.bn.running_var"]
            out = (out - mean.view(1, -1, 1, 1)) / torch.sqrt(var.view(1, -1, 1, 1) + 1e-5)
            out = out * sd[f"{name}.bn.weight"].view(1, -1, 1, 1) + sd[f"{name}.bn.bias"].view(
                1, -1, 1, 1
            )
        if act == "relu":
            out = out.clamp_min(0)
        elif act == "leaky":
            out = torch.where(out > 0, out, 0.2 * out)
        return out, (~holes).to(out.dtype)

    hs, ms = [x], [valid]
    for i in range(1, layer_size + 1):
        h, m = layer(f"enc_{i}", hs[-1], ms[-1])
        hs.append(h)
        ms.append(m)
    h, m = hs[-1], ms[-1]
    for i in range(layer_size, 0, -1):
        up = lambda t: t.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # noqa: E731
        h, m = layer(f"dec_{i}", torch.cat([up(h), hs[i - 1]], 1), torch.cat([up(m), ms[i - 1]], 1))
    return h


@pytest.mark.parametrize("layer_size, size", [(7, (128, 128)), (7, (128, 256)), (8, (256, 256))])
def test_converted_network_matches_naoto_forward(layer_size: int, size: tuple[int, int]) -> None:
    sd = naoto_state_dict(layer_size, seed=layer_size)
    model = PartialConv(layer_size=layer_size, vgg="random").to(DT).eval()
    model.load_naoto({"n_iter": 7, "model": sd, "optimizer": {}})
    g = torch.Generator().manual_seed(1)
    image = torch.rand(2, 3, *size, generator=g, dtype=DT) * 2 - 1
    valid = irregular_valid(2, 1, *size, seed=2)
    mask = 1 - valid
    with torch.no_grad():
        out = model(image, mask)["output"]
        v3 = valid.expand(-1, 3, -1, -1)
        ref = naoto_forward(sd, layer_size, to_imagenet(image) * v3, v3)  # naoto's input
    torch.testing.assert_close(out, from_imagenet(ref), rtol=0, atol=1e-12)
    assert ref.abs().max() > 0.1  # a non-trivial output


def test_parameter_counts() -> None:
    assert zoo.create_model("partial_conv", vgg="random").num_params() == {"generator": 25_779_796}
    assert zoo.create_model("partial_conv", layer_size=8, vgg="random").num_params() == {
        "generator": 32_859_732
    }
    # the transcribed naoto table without its frozen mask_conv copies gives the same counts
    for layer_size, count in ((7, 25_779_796), (8, 32_859_732)):
        table = TABLES[layer_size]
        conv = sum(co * ci * k * k + (co if bias else 0) for _, ci, co, k, _, _, _, bias in table)
        bn = sum(2 * co for _, _, co, _, _, bn, _, _ in table if bn)
        assert conv + bn == count


def test_pad_multiple_and_size_checks() -> None:
    assert PartialConv(vgg="random").pad_multiple == 128
    assert PartialConv(layer_size=8, vgg="random").pad_multiple == 256
    net = PConvUNet()
    with pytest.raises(ValueError, match="multiples of 128"):
        net(torch.zeros(1, 3, 64, 128), torch.zeros(1, 3, 64, 128))
    with pytest.raises(ValueError, match="layer_size"):
        PConvUNet(layer_size=3)


# ------------------------------------------------------------------ converter
def test_converter_scales_weights_and_drops_mask_convs() -> None:
    sd = naoto_state_dict(seed=5)
    out = convert_naoto_state_dict(sd)
    assert len(sd) == NAOTO_KEY_COUNT[7] and len(out) == 75  # 89 - 14 mask convs
    assert not any("mask_conv" in k or "input_conv" in k for k in out)
    for name, cin, _, k, *_ in NAOTO_7:
        torch.testing.assert_close(
            out[f"{name}.conv.weight"] * (cin * k * k), sd[f"{name}.conv.input_conv.weight"],
            rtol=1e-15, atol=0,
        )  # fmt: skip
    assert torch.equal(out["dec_1.conv.bias"], sd["dec_1.conv.input_conv.bias"])
    assert torch.equal(out["enc_3.bn.running_var"], sd["enc_3.bn.running_var"])
    assert len(convert_naoto_state_dict(naoto_state_dict(8))) == NAOTO_KEY_COUNT[8] - 16


def test_converter_accepts_old_checkpoints_without_num_batches_tracked() -> None:
    sd = {k: v for k, v in naoto_state_dict().items() if not k.endswith("num_batches_tracked")}
    out = convert_naoto_state_dict(sd)
    assert out["enc_2.bn.num_batches_tracked"].item() == 0


def test_load_naoto_from_file(tmp_path) -> None:
    sd = naoto_state_dict(dtype=torch.float32)
    path = tmp_path / "1000000.pth"
    torch.save(
        {"n_iter": 1_000_000, "model": sd, "optimizer": {"state": {}, "param_groups": []}}, path
    )
    state = load_naoto(path)
    net = PConvUNet()
    net.load_state_dict(state, strict=True)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda sd: sd.pop("enc_4.bn.weight"), "missing"),
        (lambda sd: sd.__setitem__("enc_4.extra", torch.zeros(1)), "unexpected"),
        (lambda sd: sd.__setitem__("dec_3.bn.bias", torch.zeros(127, dtype=DT)), "shape"),
        (lambda sd: sd["enc_2.conv.mask_conv.weight"].mul_(2), "not all ones"),
        (
            lambda sd: sd.__setitem__("dec_2.conv.input_conv.weight", torch.zeros(64, 192, 5, 5)),
            "shape",
        ),
    ],
)
def test_converter_rejects_bad_state_dicts(edit, message) -> None:
    sd = naoto_state_dict()
    edit(sd)
    with pytest.raises(ValueError, match=message):
        convert_naoto_state_dict(sd)


def test_converter_rejects_non_mappings() -> None:
    with pytest.raises(TypeError):
        convert_naoto_state_dict([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a naoto"):
        convert_naoto_state_dict({"foo.weight": torch.zeros(1)})


# ------------------------------------------------------------------ conventions
def test_imagenet_conversions() -> None:
    x = torch.rand(2, 3, 5, 7, dtype=DT) * 2 - 1
    torch.testing.assert_close(from_imagenet(to_imagenet(x)), x, rtol=0, atol=1e-15)
    black = -torch.ones(1, 3, 1, 1, dtype=DT)
    expected = torch.tensor([-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)], dtype=DT)
    torch.testing.assert_close(to_imagenet(black).flatten(), expected, rtol=0, atol=1e-15)


def test_inpaint_is_the_generator_in_naoto_space_and_ignores_hole_pixels() -> None:
    torch.manual_seed(0)
    model = PartialConv(vgg="random").to(DT).eval()
    g = torch.Generator().manual_seed(3)
    image = torch.rand(1, 3, 128, 128, generator=g, dtype=DT) * 2 - 1
    mask = 1 - irregular_valid(1, 1, 128, 128, seed=4)
    with torch.no_grad():
        out = model.inpaint(image, mask)["output"]
        raw, raw_mask = model.generator(to_imagenet(image), mask.expand(-1, 3, -1, -1))
        other = model.inpaint(image * (1 - mask) + 5 * mask, mask)["output"]
    torch.testing.assert_close(out, from_imagenet(raw), rtol=0, atol=1e-14)
    torch.testing.assert_close(other, out, rtol=0, atol=0)
    assert raw_mask.shape == (1, 3, 128, 128) and raw_mask.max() == 0  # every hole filled


# ------------------------------------------------------------------ losses
def naoto_terms(model: PartialConv, image, mask, output, *, tv: str):
    """naoto loss.py InpaintingLoss, in naoto's conventions (mask 1 = valid, normalised
    images), with the model's (random) VGG-16 pool1..pool3 extractor."""
    m = (1 - mask).expand(-1, 3, -1, -1)
    gt, out = to_imagenet(image), to_imagenet(output)
    comp = m * gt + (1 - m) * out
    terms = {
        "hole": ((1 - m) * out - (1 - m) * gt).abs().mean(),
        "valid": (m * out - m * gt).abs().mean(),
    }
    extractor = model._vgg(image).extractor  # VGG on ImageNet-normalised [0, 1] images
    feats = {}
    for key, t in (("out", out), ("comp", comp), ("gt", gt)):
        # extractor() takes [-1, 1]; naoto feeds normalised images: the same tensor in the end
        feats[key] = list(extractor(from_imagenet(t)).values())
    prc = sum((a - c).abs().mean() for a, c in zip(feats["out"], feats["gt"]))
    prc = prc + sum((b - c).abs().mean() for b, c in zip(feats["comp"], feats["gt"]))
    style = sum(
        (gram_matrix(a) - gram_matrix(c)).abs().mean()
        + (gram_matrix(b) - gram_matrix(c)).abs().mean()
        for a, b, c in zip(feats["out"], feats["comp"], feats["gt"])
    )
    terms["perceptual"], terms["style"] = prc, style
    if tv == "whole":
        terms["tv"] = (comp[:, :, :, :-1] - comp[:, :, :, 1:]).abs().mean() + (
            comp[:, :, :-1, :] - comp[:, :, 1:, :]
        ).abs().mean()
    else:  # paper eq. 6: pairs inside the 1-px (3x3) dilation of the hole, / N C H W
        region = F.max_pool2d(mask, 3, stride=1, padding=1)
        tvx = ((comp[..., 1:] - comp[..., :-1]).abs() * region[..., 1:] * region[..., :-1]).sum()
        tvy = (
            (comp[..., 1:, :] - comp[..., :-1, :]).abs() * region[..., 1:, :] * region[..., :-1, :]
        ).sum()
        terms["tv"] = (tvx + tvy) / comp.numel()
    return terms


@pytest.mark.parametrize("tv_mode", ["hole_boundary", "whole"])
def test_generator_loss_is_naoto_lambda_dict(tv_mode: str) -> None:
    torch.manual_seed(1)
    model = PartialConv(tv_mode=tv_mode, vgg="random").to(DT)
    g = torch.Generator().manual_seed(5)
    image = torch.rand(2, 3, 128, 128, generator=g, dtype=DT) * 2 - 1
    mask = 1 - irregular_valid(2, 1, 128, 128, seed=6)
    out = model(image, mask)
    total, logs = model.generator_loss(image, mask, out, step=0)
    ref = naoto_terms(model, image, mask, out["output"].detach(), tv=tv_mode)
    for key, value in ref.items():
        torch.testing.assert_close(logs[key], value, rtol=1e-12, atol=1e-14, msg=key)
    lam = {"valid": 1.0, "hole": 6.0, "perceptual": 0.05, "style": 120.0, "tv": 0.1}  # LAMBDA_DICT
    torch.testing.assert_close(
        total.detach(), sum(lam[k] * ref[k] for k in lam), rtol=1e-12, atol=0
    )
    assert model._vgg_loss not in list(model.modules())  # loss net outside the module tree
    assert set(model.trained_state()) == {"generator", "discriminators"}


def test_vgg_is_built_lazily_and_needs_the_imagenet_file(empty_torch_home) -> None:
    model = PartialConv()  # vgg="imagenet": nothing is loaded at construction
    image = torch.rand(1, 3, 128, 128) * 2 - 1
    mask = torch.zeros(1, 1, 128, 128)
    mask[..., 32:96, 32:96] = 1
    with torch.no_grad():
        out = model.eval()(image, mask)  # scoring works without the VGG file
    with pytest.raises(MissingWeightsError, match="vgg16-397923af.pth"):
        model.generator_loss(image, mask, out, step=0)


# ------------------------------------------------------------------ stages
def bn_state(bn: torch.nn.BatchNorm2d) -> torch.Tensor:
    return torch.cat([bn.running_mean, bn.running_var]).clone()


@pytest.mark.parametrize("freeze_affine", [True, False])
def test_finetune_freezes_encoder_batch_norm(freeze_affine: bool) -> None:
    torch.manual_seed(0)
    model = PartialConv(stage="finetune", freeze_enc_bn_affine=freeze_affine, vgg="random")
    model.train()
    gen = model.generator
    enc_bn = [getattr(gen, f"enc_{i}").bn for i in range(2, 8)]
    dec_bn = [getattr(gen, f"dec_{i}").bn for i in range(2, 8)]
    assert gen.encoder_bn() == enc_bn
    assert all(not bn.training for bn in enc_bn) and all(bn.training for bn in dec_bn)
    before_enc, before_dec = [bn_state(b) for b in enc_bn], [bn_state(b) for b in dec_bn]
    image = torch.rand(2, 3, 128, 128) * 2 - 1
    mask = torch.zeros(2, 1, 128, 128)
    mask[..., 40:90, 20:100] = 1
    model(image, mask)
    assert all(torch.equal(a, bn_state(b)) for a, b in zip(before_enc, enc_bn))  # stats frozen
    assert all(not torch.equal(a, bn_state(b)) for a, b in zip(before_dec, dec_bn))
    frozen = {p for bn in enc_bn for p in bn.parameters()}
    assert all(p.requires_grad is (not freeze_affine) for p in frozen)
    opt = model.configure_optimizers()["generator"]
    assert opt.param_groups[0]["lr"] == 5e-5 and opt.param_groups[0]["betas"] == (0.9, 0.999)
    in_opt = {p for group in opt.param_groups for p in group["params"]}
    assert (frozen <= in_opt) is (not freeze_affine)
    assert len(in_opt) == sum(p.requires_grad for p in gen.parameters())


def test_train_stage_trains_everything() -> None:
    model = PartialConv(vgg="random").train()
    assert all(m.training for m in model.generator.modules())
    assert all(p.requires_grad for p in model.generator.parameters())
    opt = model.configure_optimizers()
    assert set(opt) == {"generator"} and opt["generator"].param_groups[0]["lr"] == 2e-4


@pytest.mark.parametrize(
    "kwargs", [{"stage": "pretrain"}, {"tv_mode": "paper"}, {"vgg": "vgg16"}, {"layer_size": 2}]
)
def test_bad_arguments(kwargs) -> None:
    with pytest.raises(ValueError):
        PartialConv(**{"vgg": "random", **kwargs})


def test_naoto_init_in_function_space() -> None:
    """Our weights are naoto's Kaiming init divided by C_in*k*k: std sqrt(2/fan_in)/fan_in."""
    torch.manual_seed(0)
    net = PConvUNet()
    w = net.enc_4.conv.weight  # 512 x 256 x 3 x 3
    fan_in = 256 * 9
    assert abs(w.std().item() / (math.sqrt(2.0 / fan_in) / fan_in) - 1) < 0.01
    assert net.enc_4.conv.bias is None and torch.equal(net.dec_1.conv.bias, torch.zeros(3))
