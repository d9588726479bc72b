"""GMCNN (zoo/models/gmcnn.py) against slow references written here, in float64.

- parameter counts: generator **12,561,891** at cnum 32 (``models.md`` 0.1; re-derived here
  from the layer table), discriminators 2,733,441 (global) and 2,684,289 (local, 128^2);
- the converter on a ``<epoch>_net_GM.pth`` state dict built from a key/shape table transcribed
  below from shepnerd/inpainting_gmcnn ``pytorch/model/net.py`` (independently of the
  converter), strict load, and the model's output equal to a plain forward of the official
  ``GMCNN.forward`` written here (reflection pads of ``EB*_pad_rec``, ELU when the pad is not
  0, ``PureUpsampling``, clamp);
- the ``GlobalLocalDiscriminator`` layout (``weight_bar``/``weight_u``/``weight_v``) converted,
  against a plain forward of the official ``SpectralNorm`` (one power iteration from the stored
  ``u`` per call);
- inputs below 196 px padded with known context and cropped back;
- the objective term by term (``InpaintingModel_GMCNN.forward_G`` / ``forward_D``, the
  confidence layer transcribed from ``ConfidenceDrivenMaskLayer`` / ``gauss_kernel``), the
  pretrain / finetune stages, the WGAN-GP option, the stroke (whole image) setting.

A full equivalence with the official ``GMCNN`` and ``GlobalLocalDiscriminator`` run from /tmp
on the same random weights (not needed here) gave max differences 0.0 (generator, 256^2 and
200^2, float64) and 8.1e-12 (discriminator logits; GMCNN normalises with ``|x| + eps``); the
official ``InpaintingModel_GMCNN.forward_G`` (float32, 256^2, rect mask, same G, D and random
VGG-19 weights) gave the same rec, ID-MRF and total loss to float32 precision (largest relative
difference 2.6e-6, in the local adversarial term).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from zoo._registry import create_model
from zoo.losses.id_mrf import IDMRFLoss
from zoo.models._base import count_params
from zoo.models.gmcnn import GMCNN, GMCNNGenerator, convert_gmcnn_state_dict, load_gmcnn

DT = torch.float64

# pytorch/model/net.py GMCNN(4, 3, cnum=c), transcribed. Entries: ("conv", in, out, stride,
# dilation) in units of c (in 0 = the 4 input channels) or ("up", scale, mode); pads = the
# official EB*_pad_rec lists (activation after an entry iff its pad is not 0).
ENCODER = [
    ("conv", 0, 1, 1, 1), ("conv", 1, 2, 2, 1), ("conv", 2, 2, 1, 1), ("conv", 2, 4, 2, 1),
    ("conv", 4, 4, 1, 1), ("conv", 4, 4, 1, 1), ("conv", 4, 4, 1, 2), ("conv", 4, 4, 1, 4),
    ("conv", 4, 4, 1, 8), ("conv", 4, 4, 1, 16), ("conv", 4, 4, 1, 1), ("conv", 4, 4, 1, 1),
]  # fmt: skip
OFFICIAL = {
    "EB1": (7, ENCODER + [("up", 4, "bilinear")], [3, 3, 3, 3, 3, 3, 6, 12, 24, 48, 3, 3, 0]),
    "EB2": (
        5,
        ENCODER
        + [("up", 2, "nearest"), ("conv", 4, 2, 1, 1), ("conv", 2, 2, 1, 1), ("up", 2, "bilinear")],
        [2, 2, 2, 2, 2, 2, 4, 8, 16, 32, 2, 2, 0, 2, 2, 0],
    ),
    "EB3": (
        3,
        ENCODER
        + [("up", 2, "nearest"), ("conv", 4, 2, 1, 1), ("conv", 2, 2, 1, 1)]
        + [("up", 2, "nearest"), ("conv", 2, 1, 1, 1), ("conv", 1, 1, 1, 1)],
        [1, 1, 1, 1, 1, 1, 2, 4, 8, 16, 1, 1, 0, 1, 1, 0, 1, 1],
    ),
}


def official_generator_state(
    cnum: int, seed: int = 0, std: float = 0.05
) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}

    def add(key, c_in, c_out, k):
        state[f"{key}.weight"] = torch.randn(c_out, c_in, k, k, generator=g, dtype=DT) * std
        state[f"{key}.bias"] = torch.randn(c_out, generator=g, dtype=DT) * 0.05

    for name, (k, entries, _) in OFFICIAL.items():
        for i, e in enumerate(entries):
            if e[0] == "conv":
                add(f"{name}.{i}", 4 if e[1] == 0 else e[1] * cnum, e[2] * cnum, k)
    add("decoding_layers.0", 7 * cnum, cnum // 2, 3)
    add("decoding_layers.1", cnum // 2, 3, 3)
    return state


def plain_gmcnn(state, x, cnum):
    """The official GMCNN.forward on ``state``, written with plain functional ops."""
    outs = []
    for name, (_, entries, pads) in OFFICIAL.items():
        y = x
        for i, (e, pad) in enumerate(zip(entries, pads)):
            if e[0] == "up":
                size = (y.shape[2] * e[1], y.shape[3] * e[1])
                y = F.interpolate(
                    y,
                    size=size,
                    mode=e[2],
                    **({"align_corners": True} if e[2] == "bilinear" else {}),
                )
                continue
            y = F.pad(y, (pad,) * 4, mode="reflect")
            y = F.conv2d(
                y,
                state[f"{name}.{i}.weight"],
                state[f"{name}.{i}.bias"],
                stride=e[3],
                dilation=e[4],
            )
            y = F.elu(y)
        outs.append(y)
    y = torch.cat(outs, 1)
    y = F.elu(
        F.conv2d(
            F.pad(y, (1,) * 4, mode="reflect"),
            state["decoding_layers.0.weight"],
            state["decoding_layers.0.bias"],
        )
    )
    y = F.conv2d(
        F.pad(y, (1,) * 4, mode="reflect"),
        state["decoding_layers.1.weight"],
        state["decoding_layers.1.bias"],
    )
    return y.clamp(-1, 1)


def official_discriminator_state(seed: int, g_side: int = 256, l_side: int = 128, cnum: int = 64):
    g = torch.Generator().manual_seed(seed)
    state = {}
    for branch, side in (("global", g_side), ("local", l_side)):
        shapes = [
            (cnum, 3, 5, 5),
            (2 * cnum, cnum, 5, 5),
            (4 * cnum, 2 * cnum, 5, 5),
            (4 * cnum, 4 * cnum, 5, 5),
        ]
        shapes.append((1, 4 * cnum * (side // 16) ** 2))
        for i, shape in enumerate(shapes):
            key = f"{branch}_discriminator.layers.{i}.module"
            w = torch.randn(*shape, generator=g, dtype=DT) * 0.05
            state[f"{key}.weight_bar"] = w
            state[f"{key}.bias"] = torch.randn(shape[0], generator=g, dtype=DT) * 0.1
            state[f"{key}.weight_u"] = F.normalize(
                torch.randn(shape[0], generator=g, dtype=DT), dim=0
            )
            state[f"{key}.weight_v"] = F.normalize(
                torch.randn(w[0].numel(), generator=g, dtype=DT), dim=0
            )
    return state


def plain_official_discriminator(state, branch, x):
    """Official Discriminator.forward with its SpectralNorm (one iteration from stored u)."""

    def sn_weight(key):
        w, u = state[f"{key}.weight_bar"], state[f"{key}.weight_u"]
        mat = w.view(w.shape[0], -1)
        v = mat.t() @ u
        v = v / (v.norm() + 1e-12)
        u = mat @ v
        u = u / (u.norm() + 1e-12)
        return w / (u @ (mat @ v))

    for i in range(4):
        key = f"{branch}_discriminator.layers.{i}.module"
        x = F.elu(F.conv2d(x, sn_weight(key), state[f"{key}.bias"], stride=2, padding=2))
    key = f"{branch}_discriminator.layers.4.module"
    return x.flatten(1) @ sn_weight(key).t() + state[f"{key}.bias"]


# ----------------------------------------------------------------------- counts
def test_parameter_counts() -> None:
    model = create_model("gmcnn", vgg="random")
    assert count_params(model.generator) == 12_561_891
    table = official_generator_state(32)
    assert sum(v.numel() for v in table.values()) == 12_561_891 and len(table) == 88
    assert count_params(model.discriminators["global"]) == 2_733_441
    assert count_params(model.discriminators["local"]) == 2_684_289
    strokes = create_model("gmcnn", vgg="random", local_region="image")
    assert count_params(strokes.discriminators["local"]) == 2_733_441
    assert model.pad_multiple == 4 and model.d_steps == 5


# ----------------------------------------------------------------------- converter
@pytest.mark.parametrize("size", [196, 204])
def test_converted_generator_matches_official_forward(size: int) -> None:
    cnum = 8  # the converter reads the width from the tensors; a narrow copy keeps this fast
    state = official_generator_state(cnum, seed=size)
    converted = convert_gmcnn_state_dict(state)["generator"]
    gen = GMCNNGenerator(cnum=cnum).to(DT)
    gen.load_state_dict(converted, strict=True)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 4, size, size, generator=g, dtype=DT) * 2 - 1
    with torch.no_grad():
        ours, ref = gen(x), plain_gmcnn(state, x, cnum)
    assert ref.std() > 0.1
    assert_close(ours, ref, rtol=0, atol=1e-12)


def test_converted_discriminators_match_official_spectral_norm() -> None:
    state = official_discriminator_state(3)
    out = convert_gmcnn_state_dict(official_generator_state(8), state)
    model = create_model("gmcnn", vgg="random").to(DT).eval()
    model.discriminators.load_state_dict(out["discriminators"], strict=True)
    g = torch.Generator().manual_seed(2)
    for branch, side in (("global", 256), ("local", 128)):
        x = torch.rand(2, 3, side, side, generator=g, dtype=DT) * 2 - 1
        with torch.no_grad():
            ours = model.discriminators[branch](x)[0]
        assert_close(ours, plain_official_discriminator(state, branch, x), rtol=1e-10, atol=1e-12)


def test_converter_errors_and_file(tmp_path) -> None:
    state = official_generator_state(8)
    missing = dict(state)
    del missing["EB3.17.bias"]
    with pytest.raises(ValueError, match="missing 1"):
        convert_gmcnn_state_dict(missing)
    with pytest.raises(ValueError, match="unexpected 1"):
        convert_gmcnn_state_dict({**state, "EB3.12.weight": torch.zeros(1)})
    bad = dict(state)
    bad["EB2.13.weight"] = torch.zeros(16, 32, 3, 3)
    with pytest.raises(ValueError, match="EB2.13.weight.*shape"):
        convert_gmcnn_state_dict(bad)
    disc = official_discriminator_state(1)
    del disc["local_discriminator.layers.2.module.weight_v"]
    with pytest.raises(ValueError, match="40 tensors"):
        convert_gmcnn_state_dict(state, disc)
    full = {k: v.float() for k, v in official_generator_state(32).items()}
    torch.save(full, tmp_path / "40_net_GM.pth")
    model = create_model("gmcnn", vgg="random")
    model.load_gmcnn(tmp_path / "40_net_GM.pth")
    assert torch.equal(model.generator.EB2[14].weight, full["EB2.14.weight"])
    assert load_gmcnn(full)["generator"].keys() == full.keys()


# ----------------------------------------------------------------------- inference
def test_small_inputs_are_padded_with_known_context() -> None:
    torch.manual_seed(0)
    model = create_model("gmcnn", vgg="random")
    model.generator = GMCNNGenerator(cnum=8)  # narrow copy for speed; same code path
    model = model.to(DT).eval()
    g = torch.Generator().manual_seed(4)
    image = torch.rand(1, 3, 64, 80, generator=g, dtype=DT) * 2 - 1
    mask = torch.zeros(1, 1, 64, 80, dtype=DT)
    mask[..., 20:40, 30:60] = 1
    with torch.no_grad():
        out = model(image, mask)["output"]
        padded = F.pad(image, (0, 196 - 80, 0, 196 - 64), mode="replicate")
        pmask = F.pad(mask, (0, 196 - 80, 0, 196 - 64))
        ref = model.generator(torch.cat([padded * (1 - pmask), pmask], 1))[..., :64, :80]
    assert_close(out, ref, rtol=0, atol=0)


# ----------------------------------------------------------------------- objective
def gauss_kernel(size: int, sigma: float) -> torch.Tensor:
    """util/utils.py gauss_kernel, transcribed (normal CDF differences, outer, sqrt, sum 1)."""
    interval = (2 * sigma + 1.0) / size
    xs = [-sigma - interval / 2 + i * (2 * sigma + interval) / size for i in range(size + 1)]
    cdf = [0.5 * (1 + math.erf(v / math.sqrt(2))) for v in xs]
    k1 = torch.tensor([b - a for a, b in zip(cdf, cdf[1:])], dtype=DT)
    k = torch.sqrt(torch.outer(k1, k1))
    return k / k.sum()


def official_confidence(mask: torch.Tensor) -> torch.Tensor:
    """ConfidenceDrivenMaskLayer(65, 1/40, 7) with GaussianBlurLayer(pad=32)."""
    kernel = gauss_kernel(65, 1.0 / 40)[None, None]
    init, conf = 1 - mask, None
    for _ in range(7):
        conf = F.conv2d(F.pad(init, (32,) * 4, mode="reflect"), kernel) * mask
        init = conf + (1 - mask)
    return conf


def loss_setup(size: int = 64, **kwargs):
    torch.manual_seed(0)
    model = create_model("gmcnn", vgg="random", image_size=size, **kwargs).to(DT)
    g = torch.Generator().manual_seed(5)
    image = torch.rand(2, 3, size, size, generator=g, dtype=DT) * 2 - 1
    pred = (torch.rand(2, 3, size, size, generator=g, dtype=DT) * 2 - 1).requires_grad_(True)
    mask = torch.zeros(2, 1, size, size, dtype=DT)
    mask[0, :, 16:48, 16:48] = 1  # the official centred rect (local patch = the rect)
    mask[1, :, 6:38, 20:52] = 1
    out = {"output": pred, "composite": pred * mask + image * (1 - mask)}
    return model, image, mask, out


def patches(t: torch.Tensor) -> torch.Tensor:
    return torch.stack([t[0, :, 16:48, 16:48], t[1, :, 6:38, 20:52]])


@pytest.mark.parametrize("stage", ["finetune", "pretrain"])
def test_generator_loss_is_official(stage: str) -> None:
    model, image, mask, out = loss_setup(stage=stage)
    loss, logs = model.generator_loss(image, mask, out, 0)
    pred, comp = out["output"], out["composite"]
    conf = official_confidence(mask)
    rec = (comp * conf - image * conf).abs().mean() / mask.mean()  # forward_G
    ae = (pred * (1 - mask) - image * (1 - mask)).abs().mean() / (1 - mask).mean()
    ref = 1.4 * rec + 1.2 * ae
    if stage == "finetune":  # the total is checked with frozen spectral norm below
        mrf = IDMRFLoss(weights="random").to(DT)(patches(comp), patches(image))
        assert_close(logs["mrf"], mrf.detach(), rtol=1e-12, atol=0)
    else:
        assert "mrf" not in logs and model._mrf is None  # no VGG built in pretraining
    assert_close(logs["rec"], rec.detach(), rtol=1e-12, atol=0)
    assert_close(logs["ae"], ae.detach(), rtol=1e-12, atol=0)
    if stage == "pretrain":
        assert_close(loss, ref, rtol=1e-12, atol=0)
    assert model.phases(0) == (True, stage == "finetune")


def test_finetune_total_with_frozen_spectral_norm() -> None:
    model, image, mask, out = loss_setup()
    model.discriminators.eval()  # stored u, v: repeated calls give the same scores
    loss, _ = model.generator_loss(image, mask, out, 0)
    comp = out["composite"]
    conf = official_confidence(mask)
    ref = 1.4 * (comp * conf - image * conf).abs().mean() / mask.mean()
    ref = ref + 1.2 * ((out["output"] - image) * (1 - mask)).abs().mean() / (1 - mask).mean()
    ref = ref + 0.05 * IDMRFLoss(weights="random").to(DT)(patches(comp), patches(image))
    ref = ref - 1e-3 * (
        model.discriminators["global"](comp)[0].mean()
        + model.discriminators["local"](patches(comp))[0].mean()
    )
    assert_close(loss, ref, rtol=1e-12, atol=0)
    loss.backward()
    assert out["output"].grad.abs().sum() > 0


def test_discriminator_loss_hinge_and_wgan_gp() -> None:
    model, image, mask, out = loss_setup()
    model.discriminators.eval()
    loss, logs = model.discriminator_loss(image, mask, out, 0)
    comp = out["composite"].detach()
    dg, dl = model.discriminators["global"], model.discriminators["local"]
    ref = F.relu(1 - dg(image)[0]).mean() + F.relu(1 + dg(comp)[0]).mean()
    ref = ref + F.relu(1 - dl(patches(image))[0]).mean() + F.relu(1 + dl(patches(comp))[0]).mean()
    assert_close(loss, ref, rtol=1e-12, atol=0)

    model, image, mask, out = loss_setup(gan="wgan_gp")
    model.discriminators.eval()
    torch.manual_seed(9)
    loss, logs = model.discriminator_loss(image, mask, out, 0)
    torch.manual_seed(9)
    comp = out["composite"].detach()
    total = 0
    for name, real, fake, m in (
        ("global", image, comp, mask),
        ("local", patches(image), patches(comp), patches(mask)),
    ):
        critic = model.discriminators[name]
        alpha = torch.rand(2, dtype=DT).view(2, 1, 1, 1)
        points = (real + alpha * (fake - real)).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(points)[0].sum(), points)
        gp = ((torch.sqrt((grad**2 * m).sum(dim=(1, 2, 3))) - 1) ** 2).mean()
        total = total + critic(fake)[0].mean() - critic(real)[0].mean() + 10.0 * gp
    assert_close(loss, total, rtol=1e-10, atol=0)


def test_stroke_setting_uses_the_whole_image() -> None:
    model, image, mask, out = loss_setup(local_region="image")
    model.discriminators.eval()
    _, logs = model.generator_loss(image, mask, out, 0)
    comp = out["composite"]
    mrf = IDMRFLoss(weights="random").to(DT)(comp, image)
    assert_close(logs["mrf"], mrf.detach(), rtol=1e-12, atol=0)
    assert_close(
        logs["adv_local"],
        -model.discriminators["local"](comp)[0].mean().detach(),
        rtol=1e-12,
        atol=0,
    )


def test_pretrain_steps_schedule_and_optimizers() -> None:
    model = create_model("gmcnn", vgg="random", pretrain_steps=3)
    assert isinstance(model, GMCNN)
    assert [model.phases(s) for s in (0, 2, 3)] == [(True, False), (True, False), (True, True)]
    opts = model.configure_optimizers()
    for opt in opts.values():
        assert opt.defaults["lr"] == 1e-5 and opt.defaults["betas"] == (0.5, 0.9)
    n_d = sum(p.numel() for g in opts["discriminator"].param_groups for p in g["params"])
    assert n_d == 2_733_441 + 2_684_289  # u, v are buffers, not trained
    assert set(model.trained_state()) == {"generator", "discriminators"}
    with pytest.raises(ValueError, match="stage"):
        create_model("gmcnn", stage="joint")
    with pytest.raises(ValueError, match="gan"):
        create_model("gmcnn", gan="lsgan")
