"""Context Encoder: parameter counts, the BoyuanJiang converter against a plain-op reference
forward, the hole fill / centre paste interface, and the objective as train.lua computes it.

The layer tables below are transcribed from BoyuanJiang/context_encoder_pytorch ``model.py``
(``_netG``, ``_netlocalD``: ``main.<i>`` indices) and pathak22/context-encoder
``train_random.lua`` (random-region network at ``fineSize=128``), independently of the model
code.  Outside this suite the model was also compared with the port's own ``_netG`` /
``_netlocalD`` run from /tmp on the same random weights (eval and train mode): max |diff| 0.0.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo.models.context_encoder import (
    CE_FILL,
    ContextEncoder,
    convert_boyuanjiang_state_dict,
    load_boyuanjiang,
)

# (index, kind, c_in, c_out, stride, padding, bn index or None, activation); "NB" = bottleneck
G_TABLE = [
    (0, "conv", 3, 64, 2, 1, None, "lrelu"),
    (2, "conv", 64, 64, 2, 1, 3, "lrelu"),
    (5, "conv", 64, 128, 2, 1, 6, "lrelu"),
    (8, "conv", 128, 256, 2, 1, 9, "lrelu"),
    (11, "conv", 256, 512, 2, 1, 12, "lrelu"),
    (14, "conv", 512, "NB", 1, 0, 15, "lrelu"),
    (17, "convT", "NB", 512, 1, 0, 18, "relu"),
    (20, "convT", 512, 256, 2, 1, 21, "relu"),
    (23, "convT", 256, 128, 2, 1, 24, "relu"),
    (26, "convT", 128, 64, 2, 1, 27, "relu"),
    (29, "convT", 64, 3, 2, 1, None, "tanh"),
]
D_TABLE = [
    (0, "conv", 3, 64, 2, 1, None, "lrelu"),
    (2, "conv", 64, 128, 2, 1, 3, "lrelu"),
    (5, "conv", 128, 256, 2, 1, 6, "lrelu"),
    (8, "conv", 256, 512, 2, 1, 9, "lrelu"),
    (11, "conv", 512, 1, 1, 0, None, "sigmoid"),
]


def _resolve(table, nb):
    return [(i, k, nb if a == "NB" else a, nb if b == "NB" else b, s, p, bn, act)
            for i, k, a, b, s, p, bn, act in table]  # fmt: skip


def _table_params(layers) -> int:
    """Weights of 4x4 bias-free (transposed) convs + BN weight and bias."""
    return sum(a * b * 16 + (2 * b if bn is not None else 0) for _, _, a, b, _, _, bn, _ in layers)


def port_state_dict(nb: int, table, seed: int, *, with_nbt: bool = True) -> dict:
    """A state dict in the port's layout built from the table (random values)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for i, kind, a, b, _, _, bn, _ in _resolve(table, nb):
        shape = (b, a, 4, 4) if kind == "conv" else (a, b, 4, 4)
        state[f"main.{i}.weight"] = torch.randn(shape, generator=g) * (2.0 / (a * 16)) ** 0.5
        if bn is not None:
            state[f"main.{bn}.weight"] = 1 + 0.1 * torch.randn(b, generator=g)
            state[f"main.{bn}.bias"] = 0.1 * torch.randn(b, generator=g)
            state[f"main.{bn}.running_mean"] = 0.2 * torch.randn(b, generator=g)
            state[f"main.{bn}.running_var"] = 0.5 + torch.rand(b, generator=g)
            if with_nbt:
                state[f"main.{bn}.num_batches_tracked"] = torch.tensor(7)
    return state


def reference_forward(state: dict, table, nb: int, x: torch.Tensor) -> torch.Tensor:
    """Plain-op forward of the port's Sequential in eval mode (BN with running statistics)."""
    for i, kind, _, _, s, p, bn, act in _resolve(table, nb):
        w = state[f"main.{i}.weight"].to(x)
        x = (
            F.conv2d(x, w, stride=s, padding=p)
            if kind == "conv"
            else F.conv_transpose2d(x, w, stride=s, padding=p)
        )
        if bn is not None:
            x = F.batch_norm(
                x,
                state[f"main.{bn}.running_mean"].to(x),
                state[f"main.{bn}.running_var"].to(x),
                state[f"main.{bn}.weight"].to(x),
                state[f"main.{bn}.bias"].to(x),
                training=False,
                eps=1e-5,
            )
        x = {"lrelu": lambda t: F.leaky_relu(t, 0.2), "relu": F.relu, "tanh": torch.tanh,
             "sigmoid": torch.sigmoid}[act](x)  # fmt: skip
    return x


def image_and_mask(n=2, seed=0, box=(36, 92)):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, 128, 128, generator=g, dtype=torch.float64) * 2 - 1
    mask = torch.zeros(n, 1, 128, 128, dtype=torch.float64)
    lo, hi = box
    mask[..., lo:hi, lo:hi] = 1
    return image, mask


# --------------------------------------------------------------------------- counts
def test_parameter_counts_match_the_reference():
    center_g = _resolve(G_TABLE, 4000)
    assert _table_params(center_g) == 71_124_544  # models.md section 1 (measured)
    assert _table_params(D_TABLE) == 2_765_568
    torch.manual_seed(0)
    counts = zoo.create_model("context_encoder").num_params()
    assert counts == {"generator": 71_124_544, "discriminator.local": 2_765_568}


def test_random_region_counts_follow_train_random_lua():
    # fineSize=128: one more 64->64 up-conv + BN in G, one more 64->64 conv + BN in D
    extra = 64 * 64 * 16 + 2 * 64
    assert _table_params(_resolve(G_TABLE, 4000)) + extra == 71_190_208
    counts = zoo.create_model("context_encoder", variant="random").num_params()
    assert counts == {"generator": 71_190_208, "discriminator.local": 2_765_568 + extra}


def test_channelwise_fc_bottleneck_count():
    encoder = _table_params(_resolve(G_TABLE[:5], 0))
    decoder = _table_params(_resolve(G_TABLE[7:], 0))
    fc = 512 * 16 * 16 + 512 * 16  # ChannelwiseFC(512, 4, 4): weight C x 16 x 16 + bias C x 16
    mix = 512 * 512 + 2 * 512  # 1x1 conv (no bias) + BN
    counts = zoo.create_model("context_encoder", bottleneck="channelwise_fc").num_params()
    assert counts["generator"] == encoder + fc + mix + decoder == 5_981_952


# --------------------------------------------------------------------------- converter
@pytest.mark.parametrize("with_nbt", [True, False], ids=["torch>=0.4.1", "old-checkpoint"])
def test_converter_loads_the_port_layout_and_matches_a_plain_op_forward(with_nbt):
    nb = 100  # train.lua's default width keeps the test small; 4000 only scales one layer
    g_state = port_state_dict(nb, G_TABLE, seed=1, with_nbt=with_nbt)
    d_state = port_state_dict(nb, D_TABLE, seed=2, with_nbt=with_nbt)
    converted = convert_boyuanjiang_state_dict(
        {"epoch": 200, "state_dict": g_state}, {"epoch": 200, "state_dict": d_state}
    )
    assert len(converted["generator"]) == 56 and len(converted["discriminators"]) == 20
    model = ContextEncoder(n_bottleneck=nb).double().eval()
    model.generator.load_state_dict(converted["generator"], strict=True)
    model.discriminators.load_state_dict(converted["discriminators"], strict=True)

    image, mask = image_and_mask()
    ctx = image.clone()  # the port's input: inner 56^2 set to the constants channel by channel
    for c, v in enumerate((117.0, 104.0, 123.0)):
        ctx[:, c, 36:92, 36:92] = 2 * v / 255.0 - 1.0
    with torch.no_grad():
        out = model(image, mask)
        ref = reference_forward(g_state, G_TABLE, nb, ctx)
        d_ours = torch.sigmoid(model.discriminators["local"](out["prediction"])[0])
        d_ref = reference_forward(d_state, D_TABLE, nb, ref).view(-1, 1)
    torch.testing.assert_close(out["prediction"], ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(d_ours, d_ref, rtol=0, atol=1e-10)


def test_converter_full_size_keys_and_shapes():
    shapes = {k: v.shape for k, v in port_state_dict(1, G_TABLE, seed=0).items()}
    g_state = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    for i, kind, a, b, *_ in _resolve(G_TABLE, 4000):  # full width at the bottleneck
        shape = (b, a, 4, 4) if kind == "conv" else (a, b, 4, 4)
        g_state[f"main.{i}.weight"] = torch.empty(shape, device="meta")
    for key in ("weight", "bias", "running_mean", "running_var"):
        g_state[f"main.15.{key}"] = torch.empty(4000, device="meta")
    converted = convert_boyuanjiang_state_dict(g_state)
    with torch.device("meta"):
        ref = ContextEncoder().generator.state_dict()
    assert set(converted["generator"]) == set(ref) and "discriminators" not in converted
    assert all(converted["generator"][k].shape == v.shape for k, v in ref.items())


def test_converter_rejects_bad_checkpoints(tmp_path):
    good = port_state_dict(100, G_TABLE, seed=0)
    missing = dict(good)
    del missing["main.20.weight"]
    with pytest.raises(ValueError, match="missing 1.*main.20.weight"):
        convert_boyuanjiang_state_dict(missing)
    extra = dict(good, **{"main.31.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="unexpected 1.*main.31.weight"):
        convert_boyuanjiang_state_dict(extra)
    bad = dict(good, **{"main.23.weight": torch.zeros(256, 128, 3, 3)})
    with pytest.raises(ValueError, match="main.23.weight.*shape"):
        convert_boyuanjiang_state_dict(bad)
    with pytest.raises(ValueError, match="main.14.weight"):
        convert_boyuanjiang_state_dict({k: v for k, v in good.items() if k != "main.14.weight"})
    # a file round trip through torch.load(weights_only=True), as published ({'epoch', ...})
    torch.save({"epoch": 3, "state_dict": good}, tmp_path / "netG_streetview.pth")
    state = load_boyuanjiang(tmp_path / "netG_streetview.pth")
    torch.testing.assert_close(state["generator"]["main.29.weight"], good["main.29.weight"])


# --------------------------------------------------------------------------- interface
@pytest.fixture(scope="module")
def small_model() -> ContextEncoder:
    torch.manual_seed(0)
    return ContextEncoder(n_bottleneck=100).double()


@pytest.mark.parametrize("box", [(36, 92), (32, 96), (40, 70)])
def test_holes_get_the_ce_constants_and_the_prediction_is_pasted_in_the_centre(small_model, box):
    image, mask = image_and_mask(box=box)
    seen = {}
    hook = small_model.generator.register_forward_pre_hook(lambda m, a: seen.update(x=a[0]))
    with torch.no_grad():
        out = small_model.eval()(image, mask)
    hook.remove()
    x = seen["x"]
    lo, hi = box
    for c, v in enumerate(CE_FILL):
        assert v == 2 * (117.0, 104.0, 123.0)[c] / 255.0 - 1.0
        assert torch.all(x[:, c, lo:hi, lo:hi] == v)
    known = (1 - mask).bool().expand_as(image)
    assert torch.equal(x[known], image[known])
    outside = torch.ones_like(image, dtype=torch.bool)
    outside[..., 32:96, 32:96] = False
    assert torch.equal(out["output"][outside], image[outside])
    assert torch.equal(out["output"][..., 32:96, 32:96], out["prediction"])


def test_centre_variant_rejects_masks_outside_the_centre(small_model):
    image, mask = image_and_mask(box=(20, 60))
    with pytest.raises(ValueError, match="central block.*center_box.*random"):
        small_model(image, mask)
    with pytest.raises(ValueError, match="only accepts 128x128"):
        small_model(image[..., :64, :64], mask[..., :64, :64])


def test_random_variant_predicts_the_whole_image():
    torch.manual_seed(0)
    model = ContextEncoder(variant="random", n_bottleneck=100).double().eval()
    image, mask = image_and_mask(box=(20, 60))
    with torch.no_grad():
        out = model(image, mask)
        direct = model.generator(
            image * (1 - mask) + mask * torch.tensor(CE_FILL, dtype=image.dtype).view(1, 3, 1, 1)
        )
    assert out["output"].shape == image.shape
    torch.testing.assert_close(out["output"], direct, rtol=0, atol=0)


# --------------------------------------------------------------------------- objective
def lua_weights(n: int, size: int, inner: tuple[int, int], wtl2: float, factor: float):
    """wtl2Matrix of train.lua: fill(factor * wtl2), then the inner square fill(wtl2)."""
    w = torch.full((n, 3, size, size), factor * wtl2, dtype=torch.float64)
    for i in range(size):
        for j in range(size):
            if inner[0] <= i < inner[1] and inner[0] <= j < inner[1]:
                w[:, :, i, j] = wtl2
    return w


@pytest.mark.parametrize("wtl2,overlap", [(0.999, 4), (0.9, 4), (0.999, 7), (1.0, 4), (0.5, 0)])
def test_generator_loss_and_gradient_equal_train_lua(wtl2, overlap):
    torch.manual_seed(0)
    model = ContextEncoder(n_bottleneck=100, wtl2=wtl2, overlap_pred=overlap).double().train()
    image, mask = image_and_mask()
    g = torch.Generator().manual_seed(5)
    pred = (torch.rand(2, 3, 64, 64, generator=g, dtype=torch.float64) * 2 - 1).requires_grad_()
    loss, logs = model.generator_loss(image, mask, {"prediction": pred}, 0)
    (grad,) = torch.autograd.grad(loss, pred)

    real = image[..., 32:96, 32:96]
    w = lua_weights(2, 64, (overlap, 64 - overlap), wtl2, 10.0)
    pred2 = pred.detach().clone().requires_grad_()
    bce = F.binary_cross_entropy(torch.sigmoid(model.discriminators["local"](pred2)[0]),
                                 torch.ones(2, 1, dtype=torch.float64))  # fmt: skip
    (df_do,) = torch.autograd.grad(bce, pred2)
    df_l2 = 2 * (pred.detach() - real) / pred.numel()  # nn.MSECriterion backward
    if overlap == 0:  # overlapPred == 0: df_dg:mul(1-wtl2):add(wtl2, df_dg_l2)
        w = torch.full_like(w, wtl2)
    adv_w = (1 - wtl2) if 0 < wtl2 < 1 else 1.0  # df_dg:mul(1-wtl2) only when 0 < wtl2 < 1
    lua_grad = adv_w * df_do + w * df_l2  # df_dg:mul(1-wtl2):addcmul(1, wtl2Matrix, ..)
    torch.testing.assert_close(grad, lua_grad, rtol=0, atol=1e-12)
    expected = adv_w * bce + (w * (pred.detach() - real) ** 2).mean()
    torch.testing.assert_close(loss.detach(), expected.detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(logs["adv"], bce.detach(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("weighting", [False, True])
def test_random_variant_l2_weights_the_known_region_with_use_overlap_pred(weighting):
    torch.manual_seed(0)
    model = ContextEncoder(
        variant="random", n_bottleneck=100, random_overlap_weighting=weighting
    ).double()
    image, mask = image_and_mask(box=(10, 50))
    pred = torch.rand_like(image) * 2 - 1
    w = (0.999 * mask + 0.999 * (10.0 if weighting else 1.0) * (1 - mask)).expand_as(image)
    expected = (w * (pred - image) ** 2).mean()
    torch.testing.assert_close(model._l2(pred, image, mask), expected, rtol=0, atol=1e-12)


def test_discriminator_loss_is_summed_bce_on_the_centre(small_model):
    image, mask = image_and_mask()
    pred = torch.rand(2, 3, 64, 64, dtype=torch.float64) * 2 - 1
    small_model.train()
    loss, logs = small_model.discriminator_loss(image, mask, {"prediction": pred}, 0)
    disc = small_model.discriminators["local"]
    real = torch.sigmoid(disc(image[..., 32:96, 32:96])[0])  # separate passes, BN batch stats
    fake = torch.sigmoid(disc(pred)[0])
    expected = F.binary_cross_entropy(real, torch.ones_like(real)) + F.binary_cross_entropy(
        fake, torch.zeros_like(fake)
    )
    torch.testing.assert_close(loss, expected, rtol=0, atol=1e-12)


def test_optimisers_follow_the_lua_learning_rates():
    model = zoo.create_model("context_encoder", n_bottleneck=100)
    opts = model.configure_optimizers()
    g, d = opts["generator"].param_groups[0], opts["discriminator"].param_groups[0]
    assert g["lr"] == pytest.approx(10 * d["lr"]) and d["lr"] == pytest.approx(2e-4)
    assert g["betas"] == d["betas"] == (0.5, 0.999)
    assert not model.trained_state()["generator"].keys() - model.generator.state_dict().keys()
