"""DeepFill v2: parameter counts, the nipponjo converter against a key/shape table transcribed
from the port and a plain-ops reference forward, the BGR flip, the tensor contract, the losses
and optimisers of the official training code, and the config file."""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

import zoo
from zoo.layers.contextual_attention import ContextualAttention, resize_nearest_tf
from zoo.models.deepfill_v2 import (
    DeepFillV2,
    DeepFillV2Generator,
    convert_nipponjo_state_dict,
    load_nipponjo,
)

DT = torch.float64
CONF = Path(__file__).resolve().parents[2] / "conf" / "model" / "deepfill_v2.yaml"

# nipponjo/deepfillv2-pytorch model/networks_tf.py Generator(cnum_in=5, cnum=48), transcribed:
# (module path, conv input channels, conv output channels, kernel, stride, dilation, activation)
# A gated layer's conv has twice its effective width; conv17/allconv17 are plain (3 outputs).
G_TABLE = [
    ("conv1", 5, 48, 5, 1, 1, "elu"),
    ("conv2_downsample", 24, 96, 3, 2, 1, "elu"),
    ("conv3", 48, 96, 3, 1, 1, "elu"),
    ("conv4_downsample", 48, 192, 3, 2, 1, "elu"),
    ("conv5", 96, 192, 3, 1, 1, "elu"),
    ("conv6", 96, 192, 3, 1, 1, "elu"),
    ("conv7_atrous", 96, 192, 3, 1, 2, "elu"),
    ("conv8_atrous", 96, 192, 3, 1, 4, "elu"),
    ("conv9_atrous", 96, 192, 3, 1, 8, "elu"),
    ("conv10_atrous", 96, 192, 3, 1, 16, "elu"),
    ("conv11", 96, 192, 3, 1, 1, "elu"),
    ("conv12", 96, 192, 3, 1, 1, "elu"),
    ("conv13_upsample.conv", 96, 96, 3, 1, 1, "elu"),
    ("conv14", 48, 96, 3, 1, 1, "elu"),
    ("conv15_upsample.conv", 48, 48, 3, 1, 1, "elu"),
    ("conv16", 24, 24, 3, 1, 1, "elu"),
    ("conv17", 12, 3, 3, 1, 1, None),
    ("xconv1", 3, 48, 5, 1, 1, "elu"),
    ("xconv2_downsample", 24, 48, 3, 2, 1, "elu"),
    ("xconv3", 24, 96, 3, 1, 1, "elu"),
    ("xconv4_downsample", 48, 96, 3, 2, 1, "elu"),
    ("xconv5", 48, 192, 3, 1, 1, "elu"),
    ("xconv6", 96, 192, 3, 1, 1, "elu"),
    ("xconv7_atrous", 96, 192, 3, 1, 2, "elu"),
    ("xconv8_atrous", 96, 192, 3, 1, 4, "elu"),
    ("xconv9_atrous", 96, 192, 3, 1, 8, "elu"),
    ("xconv10_atrous", 96, 192, 3, 1, 16, "elu"),
    ("pmconv1", 3, 48, 5, 1, 1, "elu"),
    ("pmconv2_downsample", 24, 48, 3, 2, 1, "elu"),
    ("pmconv3", 24, 96, 3, 1, 1, "elu"),
    ("pmconv4_downsample", 48, 192, 3, 2, 1, "elu"),
    ("pmconv5", 96, 192, 3, 1, 1, "elu"),
    ("pmconv6", 96, 192, 3, 1, 1, "relu"),
    ("pmconv9", 96, 192, 3, 1, 1, "elu"),
    ("pmconv10", 96, 192, 3, 1, 1, "elu"),
    ("allconv11", 192, 192, 3, 1, 1, "elu"),
    ("allconv12", 96, 192, 3, 1, 1, "elu"),
    ("allconv13_upsample.conv", 96, 96, 3, 1, 1, "elu"),
    ("allconv14", 48, 96, 3, 1, 1, "elu"),
    ("allconv15_upsample.conv", 48, 48, 3, 1, 1, "elu"),
    ("allconv16", 24, 24, 3, 1, 1, "elu"),
    ("allconv17", 12, 3, 3, 1, 1, None),
]
LAYER = {row[0]: row for row in G_TABLE}
# Discriminator(cnum_in=4, cnum=64): conv<k>.conv_sn = Conv2d(5x5, stride 2) + weight_u buffer
D_TABLE = [(1, 4, 64), (2, 64, 128), (3, 128, 256), (4, 256, 256), (5, 256, 256), (6, 256, 256)]


def nipponjo_checkpoint(seed: int = 0, with_d: bool = True, dtype=torch.float32) -> dict:
    """A states_tf_*.pth-like dict built from the tables only (random tensors)."""
    g = torch.Generator().manual_seed(seed)
    G = {}
    for name, cin, cout, k, *_ in G_TABLE:
        bound = math.sqrt(6.0 / ((cin + cout) * k * k))
        G[f"{name}.conv.weight"] = (
            torch.rand(cout, cin, k, k, generator=g, dtype=dtype) * 2 - 1
        ) * bound
        G[f"{name}.conv.bias"] = torch.randn(cout, generator=g, dtype=dtype) * 0.1
    ckpt = {"G": G}
    if with_d:
        D = {}
        for i, cin, cout in D_TABLE:
            D[f"conv{i}.conv_sn.weight"] = (
                torch.randn(cout, cin, 5, 5, generator=g, dtype=dtype) * 0.05
            )
            D[f"conv{i}.conv_sn.bias"] = torch.randn(cout, generator=g, dtype=dtype) * 0.1
            D[f"conv{i}.conv_sn.weight_u"] = torch.randn(cout, 1, generator=g, dtype=dtype)
        ckpt["D"] = D
    return ckpt


# ------------------------------------------------------------------ plain-ops reference forward
def tf_pad(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def ref_layer(sd: dict, name: str, x: torch.Tensor) -> torch.Tensor:
    _, _, cout, k, s, d, act = LAYER[name]
    if name.endswith("_upsample.conv"):
        x = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # nearest x2
    top, bottom = tf_pad(x.shape[-2], k, s, d)
    left, right = tf_pad(x.shape[-1], k, s, d)
    y = F.conv2d(
        F.pad(x, (left, right, top, bottom)),
        sd[f"{name}.conv.weight"].to(x.dtype),
        sd[f"{name}.conv.bias"].to(x.dtype),
        stride=s,
        dilation=d,
    )
    if act is None:
        return y
    feature, gate = y[:, : cout // 2], y[:, cout // 2 :]
    return (F.elu(feature) if act == "elu" else F.relu(feature)) * torch.sigmoid(gate)


def ref_run(sd: dict, names: list[str], x: torch.Tensor) -> torch.Tensor:
    for name in names:
        x = ref_layer(sd, name, x)
    return x


def reference_forward(sd: dict, image: torch.Tensor, mask: torch.Tensor, fuse: bool = True):
    """build_inpaint_net with plain ops, reading the nipponjo-layout tensors directly."""
    names = [row[0] for row in G_TABLE]
    x = image * (1 - mask)
    ones = torch.ones_like(mask)
    x1 = torch.tanh(ref_run(sd, names[:17], torch.cat([x, ones, ones * mask], 1)))
    xnow = x1 * mask + x * (1 - mask)
    hallu = ref_run(sd, names[17:27], xnow)
    pm = ref_run(sd, names[27:33], xnow)
    mask_s = resize_nearest_tf(mask, pm.shape[-2:])
    pm = ContextualAttention(3, 1, 2, 3, 10.0, fuse=fuse)(pm, pm, mask_s)
    pm = ref_run(sd, names[33:35], pm)
    x2 = torch.tanh(ref_run(sd, names[35:], torch.cat([hallu, pm], 1)))
    return x1, x2


def box_mask(n: int, h: int, w: int, boxes) -> torch.Tensor:
    m = torch.zeros(n, 1, h, w, dtype=DT)
    for i, (t, l, bh, bw) in enumerate(boxes):
        m[i % n, :, t : t + bh, l : l + bw] = 1
    return m


def loaded_model(ckpt: dict, **kwargs) -> DeepFillV2:
    model = DeepFillV2(**kwargs).to(DT)
    model.load_nipponjo(ckpt)
    return model.eval()


# ------------------------------------------------------------------ counts
def test_parameter_counts() -> None:
    model = zoo.create_model("deepfill_v2")
    assert model.num_params() == {"generator": 4_052_478, "discriminator.patch": 5_946_816}
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(model.generator.coarse) == 1_631_151
    assert n(model.generator.refine) == 2_421_327
    # the transcribed port table has the same count
    table = sum(cout * cin * k * k + cout for _, cin, cout, k, *_ in G_TABLE)
    assert table == 4_052_478
    assert sum(co * ci * 25 + co for _, ci, co in D_TABLE) == 5_946_816


# ------------------------------------------------------------------ converter
@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("h, w", [(64, 64), (48, 80)])
def test_converted_model_matches_plain_reference(fuse: bool, h: int, w: int) -> None:
    ckpt = nipponjo_checkpoint(seed=1)
    model = loaded_model(ckpt, attention_fuse=fuse)
    g = torch.Generator().manual_seed(2)
    image = torch.rand(2, 3, h, w, generator=g, dtype=DT) * 2 - 1
    mask = box_mask(2, h, w, [(8, 12, 30, 24), (20, 30, 17, 40)])
    with torch.no_grad():
        out = model(image, mask)
        x1, x2 = reference_forward({k: v.to(DT) for k, v in ckpt["G"].items()}, image, mask, fuse)
    torch.testing.assert_close(out["coarse"], x1, rtol=0, atol=1e-12)
    torch.testing.assert_close(out["output"], x2, rtol=0, atol=1e-12)
    # the attention branch matters: fuse on/off gives different outputs
    other = loaded_model(ckpt, attention_fuse=not fuse)
    with torch.no_grad():
        assert (other(image, mask)["output"] - x2).abs().max() > 1e-9


def test_converted_discriminator_matches_port_forward() -> None:
    """The port's Conv2DSpectralNorm, written out: one power step from weight_u per call,
    W / sigma, TF 'SAME' padding, LeakyReLU 0.2; scores flattened."""
    ckpt = nipponjo_checkpoint(seed=3, dtype=DT)
    model = loaded_model(ckpt)
    x = torch.rand(2, 4, 64, 64, generator=torch.Generator().manual_seed(4), dtype=DT) * 2 - 1
    ref = x
    for i, _, _ in D_TABLE:
        w = ckpt["D"][f"conv{i}.conv_sn.weight"].to(DT)
        u = ckpt["D"][f"conv{i}.conv_sn.weight_u"].to(DT)
        wm = w.view(w.shape[0], -1)
        v = F.normalize(wm.t() @ u, dim=0, eps=1e-12)
        u = F.normalize(wm @ v, dim=0, eps=1e-12)
        sigma = (u.t() @ wm @ v).item()
        top, bottom = tf_pad(ref.shape[-2], 5, 2, 1)
        left, right = tf_pad(ref.shape[-1], 5, 2, 1)
        ref = F.conv2d(
            F.pad(ref, (left, right, top, bottom)),
            w / sigma,
            ckpt["D"][f"conv{i}.conv_sn.bias"].to(DT),
            stride=2,
        )
        ref = F.leaky_relu(ref, 0.2)
    with torch.no_grad():
        scores, _ = model.discriminators["patch"](x)
    torch.testing.assert_close(scores.flatten(1), ref.flatten(1), rtol=0, atol=1e-12)


def test_converter_counts_and_prefixes() -> None:
    state = convert_nipponjo_state_dict(nipponjo_checkpoint())
    assert len(state["generator"]) == 84 and len(state["discriminators"]) == 24
    assert state["generator"]["coarse.conv13_upsample.conv.conv.weight"].shape == (96, 96, 3, 3)
    assert state["generator"]["refine.pmconv6.conv.bias"].shape == (192,)
    assert "patch.conv6.parametrizations.weight.original" in state["discriminators"]
    # a bare generator dict is accepted; no discriminator entry then
    bare = convert_nipponjo_state_dict(nipponjo_checkpoint(with_d=False)["G"])
    assert set(bare) == {"generator"}


def test_load_from_file(tmp_path: Path) -> None:
    ckpt = nipponjo_checkpoint(seed=5)
    path = tmp_path / "states_tf_places2.pth"
    torch.save(ckpt, path)
    state = load_nipponjo(path)
    torch.testing.assert_close(
        state["generator"]["refine.allconv17.conv.weight"],
        ckpt["G"]["allconv17.conv.weight"],
        rtol=0,
        atol=0,
    )
    model = DeepFillV2()
    model.load_nipponjo(path)
    torch.testing.assert_close(
        model.generator.coarse.conv1.conv.weight, ckpt["G"]["conv1.conv.weight"], rtol=0, atol=0
    )


def test_converter_errors() -> None:
    ckpt = nipponjo_checkpoint()
    missing = {"G": dict(ckpt["G"])}
    del missing["G"]["pmconv9.conv.bias"]
    with pytest.raises(ValueError, match=r"missing 1 \['pmconv9.conv.bias'\]"):
        convert_nipponjo_state_dict(missing)
    extra = {"G": {**ckpt["G"], "conv18.conv.weight": torch.zeros(1)}}
    with pytest.raises(ValueError, match=r"unexpected 1 \['conv18.conv.weight'\]"):
        convert_nipponjo_state_dict(extra)
    bad = {"G": {**ckpt["G"], "xconv5.conv.weight": torch.zeros(192, 48, 5, 5)}}
    with pytest.raises(
        ValueError,
        match=r"'xconv5.conv.weight' \(-> 'refine.xconv5.conv.weight'\) has shape "
        r"\(192, 48, 5, 5\), expected \(192, 48, 3, 3\)",
    ):
        convert_nipponjo_state_dict(bad)
    d_missing = {
        "G": ckpt["G"],
        "D": {k: v for k, v in ckpt["D"].items() if k != "conv4.conv_sn.weight_u"},
    }
    with pytest.raises(ValueError, match="conv4.conv_sn.weight_u"):
        convert_nipponjo_state_dict(d_missing)
    d_bad = {"G": ckpt["G"], "D": {**ckpt["D"], "conv2.conv_sn.bias": torch.zeros(64)}}
    with pytest.raises(
        ValueError, match=r"'conv2.conv_sn.bias' has shape \(64,\), expected \(128,\)"
    ):
        convert_nipponjo_state_dict(d_bad)
    with pytest.raises(TypeError):
        convert_nipponjo_state_dict([1, 2])  # type: ignore[arg-type]


def test_bgr_to_rgb_flip() -> None:
    """Flipped weights on channel-reversed inputs give channel-reversed outputs."""
    ckpt = nipponjo_checkpoint(seed=6)
    plain, flipped = DeepFillV2(), DeepFillV2()
    plain.load_nipponjo(ckpt)
    flipped.load_nipponjo(ckpt, bgr_to_rgb=True)
    plain, flipped = plain.to(DT).eval(), flipped.to(DT).eval()
    g = torch.Generator().manual_seed(7)
    image = torch.rand(1, 3, 32, 40, generator=g, dtype=DT) * 2 - 1
    mask = box_mask(1, 32, 40, [(5, 9, 14, 20)])
    rev = [2, 1, 0]
    with torch.no_grad():
        a, b = plain(image, mask), flipped(image[:, rev], mask)
        torch.testing.assert_close(b["coarse"], a["coarse"][:, rev], rtol=0, atol=1e-12)
        torch.testing.assert_close(b["output"], a["output"][:, rev], rtol=0, atol=1e-12)
        assert (b["output"] - a["output"]).abs().max() > 1e-6  # the flip is not a no-op
        sa, _ = plain.discriminators["patch"](torch.cat([image, mask], 1))
        sb, _ = flipped.discriminators["patch"](torch.cat([image[:, rev], mask], 1))
    torch.testing.assert_close(sb, sa, rtol=0, atol=1e-12)


# ------------------------------------------------------------------ contract
def small_model(**kwargs) -> DeepFillV2:
    torch.manual_seed(0)
    model = DeepFillV2(**kwargs).to(DT).eval()
    with torch.no_grad():  # non-zero biases so that every branch shows up in the outputs
        for name, p in model.generator.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    return model


def test_odd_sizes_keep_the_contract() -> None:
    model = small_model()
    g = torch.Generator().manual_seed(8)
    image = torch.rand(2, 3, 100, 75, generator=g, dtype=DT) * 2 - 1
    mask = box_mask(2, 100, 75, [(30, 20, 40, 30), (60, 40, 30, 35)])
    with torch.no_grad():
        out = model(image, mask)
        # = replicate-pad to 104 x 80 with mask 0 in the padding, run, crop
        padded = model.inpaint(
            F.pad(image, (0, 5, 0, 4), mode="replicate"), F.pad(mask, (0, 5, 0, 4))
        )
    for key in ("output", "coarse", "composite"):
        assert out[key].shape == (2, 3, 100, 75) and torch.isfinite(out[key]).all()
    torch.testing.assert_close(out["output"], padded["output"][..., :100, :75], rtol=0, atol=0)
    known = (1 - mask).bool().expand_as(image)
    assert torch.equal(out["composite"][known], image[known])
    assert out["output"].abs().max() <= 1


def test_output_independent_of_hole_pixels() -> None:
    model = small_model()
    g = torch.Generator().manual_seed(9)
    image = torch.rand(1, 3, 64, 48, generator=g, dtype=DT) * 2 - 1
    mask = box_mask(1, 64, 48, [(10, 8, 30, 25)])
    other = torch.where(mask.bool(), torch.rand(image.shape, generator=g, dtype=DT) * 2 - 1, image)
    with torch.no_grad():
        a, b = model(image, mask), model(other, mask)
    for key in ("output", "coarse", "composite"):
        assert torch.equal(a[key], b[key])


def test_chunked_attention_model_equals_plain() -> None:
    model, chunked = small_model(), small_model(attention_chunk_size=7)
    chunked.load_state_dict(model.state_dict())
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(10), dtype=DT) * 2 - 1
    mask = box_mask(1, 64, 64, [(16, 16, 32, 32)])
    with torch.no_grad():
        torch.testing.assert_close(
            chunked(image, mask)["output"], model(image, mask)["output"], rtol=0, atol=1e-12
        )


def test_generator_rejects_unpadded_sizes() -> None:
    with pytest.raises(ValueError, match="multiples of 8"):
        DeepFillV2().generator(torch.zeros(1, 3, 60, 64), torch.zeros(1, 1, 60, 64))


# ------------------------------------------------------------------ objective
@pytest.mark.parametrize("l1, gan, ae", [(1.0, 1.0, True), (2.0, 0.5, True), (1.0, 1.0, False)])
def test_generator_loss_is_official(l1: float, gan: float, ae: bool) -> None:
    model = small_model(l1_loss_alpha=l1, gan_loss_alpha=gan, ae_loss=ae)
    g = torch.Generator().manual_seed(11)
    image = torch.rand(2, 3, 64, 64, generator=g, dtype=DT) * 2 - 1
    mask = box_mask(2, 64, 64, [(8, 8, 30, 30), (20, 24, 25, 30)])
    out = model(image, mask)
    loss, logs = model.generator_loss(image, mask, out, step=0)
    d = model.discriminators["patch"]
    fake = d(torch.cat([out["composite"], mask], 1))[0]
    expected = gan * (-fake.mean())
    if ae:
        expected = expected + l1 * (
            (image - out["coarse"]).abs().mean() + (image - out["output"]).abs().mean()
        )
    torch.testing.assert_close(loss, expected, rtol=0, atol=1e-12)
    assert set(logs) >= {"l1_coarse", "l1_refine", "adv"}


def test_discriminator_loss_is_official_hinge() -> None:
    model = small_model()
    g = torch.Generator().manual_seed(12)
    image = torch.rand(2, 3, 64, 64, generator=g, dtype=DT) * 2 - 1
    mask = box_mask(2, 64, 64, [(8, 8, 30, 30), (20, 24, 25, 30)])
    out = model(image, mask)
    loss, _ = model.discriminator_loss(image, mask, out, step=0)
    d = model.discriminators["patch"]
    real = d(torch.cat([image, mask], 1))[0]
    fake = d(torch.cat([out["composite"], mask], 1))[0]
    expected = 0.5 * F.relu(1 - real).mean() + 0.5 * F.relu(1 + fake).mean()
    torch.testing.assert_close(loss, expected, rtol=0, atol=1e-12)
    loss.backward()  # the composite is detached: no gradient reaches the generator
    assert all(p.grad is None for p in model.generator.parameters())
    assert all(p.grad is not None for p in model.discriminators.parameters())


def test_discriminator_without_mask_channel() -> None:
    model = DeepFillV2(gan_with_mask=False)
    assert model.discriminators["patch"].conv1.parametrizations.weight.original.shape[1] == 3


def test_optimizers() -> None:
    model = DeepFillV2()
    opts = model.configure_optimizers()
    assert set(opts) == {"generator", "discriminator"}
    for name, module in (("generator", model.generator), ("discriminator", model.discriminators)):
        opt = opts[name]
        assert isinstance(opt, torch.optim.Adam)
        group = opt.param_groups[0]
        assert group["lr"] == 1e-4 and group["betas"] == (0.5, 0.999)
        assert {id(p) for p in group["params"]} == {id(p) for p in module.parameters()}
    assert model.pad_multiple == 8


def test_config_matches_constructor_defaults() -> None:
    conf = OmegaConf.to_container(OmegaConf.load(CONF))
    assert conf["name"] == "deepfill_v2"
    params = inspect.signature(DeepFillV2.__init__).parameters
    defaults = {k: p.default for k, p in params.items() if k != "self"}
    assert conf["kwargs"] == defaults
    model = zoo.create_model("deepfill_v2", **conf["kwargs"])
    assert model.num_params()["generator"] == 4_052_478


@pytest.mark.parametrize("fuse", [True, False])
def test_generator_layout_and_autograd_paths_agree(fuse: bool) -> None:
    """channels_last (default) and contiguous layouts, with and without autograd (in-place
    gated activations and attention softmax, phase-convolution upsampling): same outputs."""
    ckpt = nipponjo_checkpoint(seed=7)
    state = convert_nipponjo_state_dict(ckpt)["generator"]
    gens = {}
    for cl in (True, False):
        gens[cl] = DeepFillV2Generator(attention_fuse=fuse, channels_last=cl).to(DT).eval()
        gens[cl].load_state_dict(state, strict=True)
    g = torch.Generator().manual_seed(8)
    image = torch.rand(2, 3, 48, 64, generator=g, dtype=DT) * 2 - 1
    mask = box_mask(2, 48, 64, [(8, 12, 20, 24), (20, 30, 17, 30)])
    x = image * (1 - mask)
    with torch.inference_mode():
        fast = gens[True](x, mask)
        plain = gens[False](x, mask)
    graph = gens[True](x, mask)
    for a, b, c in zip(fast, plain, graph, strict=True):
        assert a.is_contiguous() and a.shape == x.shape
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
        torch.testing.assert_close(a, c.detach(), rtol=0, atol=1e-12)
    graph[1].sum().backward()
    assert gens[True].refine.allconv15_upsample.conv.conv.weight.grad is not None
