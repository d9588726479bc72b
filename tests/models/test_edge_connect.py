"""EdgeConnect (zoo/models/edge_connect.py): parameter counts, the official-checkpoint converter
against a slow reference forward that reads the official key layout directly, the gray / Canny /
white-hole conventions, stage selection and the loss weights.

The official layout is transcribed here from knazeri/edge-connect ``src/networks.py``
(``EdgeGenerator``, ``InpaintGenerator``, ``Discriminator``, ``ResnetBlock`` with the legacy
``torch.nn.utils.spectral_norm``, which stores ``weight_orig``, ``weight_u`` (the output axis:
dim 1 for a transposed conv) and ``weight_v``), independently of the converter.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.color import rgb2gray
from skimage.feature import canny

import zoo
from zoo._weights import MissingWeightsError
from zoo.models.edge_connect import (
    EdgeConnect,
    canny_edges,
    convert_official_state_dicts,
    rgb_to_gray,
)

DT = torch.float64

# --------------------------------------------------------------------------- official layout


def official_generator_shapes(edge: bool, blocks: int = 8) -> dict[str, tuple[int, ...]]:
    """Key -> shape of ``EdgeGenerator`` (``edge=True``) or ``InpaintGenerator`` state dicts."""
    c_in, c_out = (3, 1) if edge else (4, 3)
    # (module path, weight shape, has bias, spectral norm, transposed)
    layers = [
        ("encoder.1", (64, c_in, 7, 7), True, edge, False),
        ("encoder.4", (128, 64, 4, 4), True, edge, False),
        ("encoder.7", (256, 128, 4, 4), True, edge, False),
    ]
    for i in range(blocks):
        for j in (1, 5):  # ResnetBlock convs: bias = not use_spectral_norm
            layers.append((f"middle.{i}.conv_block.{j}", (256, 256, 3, 3), not edge, edge, False))
    layers += [
        ("decoder.0", (256, 128, 4, 4), True, edge, True),  # ConvTranspose2d(256 -> 128)
        ("decoder.3", (128, 64, 4, 4), True, edge, True),
        ("decoder.7", (c_out, 64, 7, 7), True, False, False),  # last conv: never SN
    ]
    shapes: dict[str, tuple[int, ...]] = {}
    for name, shape, bias, sn, transposed in layers:
        out_axis = 1 if transposed else 0
        if bias:
            shapes[f"{name}.bias"] = (shape[out_axis],)
        if sn:
            shapes[f"{name}.weight_orig"] = shape
            shapes[f"{name}.weight_u"] = (shape[out_axis],)
            shapes[f"{name}.weight_v"] = (int(np.prod(shape)) // shape[out_axis],)
        else:
            shapes[f"{name}.weight"] = shape
    return shapes


def official_discriminator_shapes(c_in: int) -> dict[str, tuple[int, ...]]:
    """``Discriminator(in_channels)``: conv1..conv5 (SN, no bias) + the ``features`` alias."""
    widths = [(64, c_in), (128, 64), (256, 128), (512, 256), (1, 512)]
    shapes = {}
    for k, (o, i) in enumerate(widths, start=1):
        shapes[f"conv{k}.0.weight_orig"] = (o, i, 4, 4)
        shapes[f"conv{k}.0.weight_u"] = (o,)
        shapes[f"conv{k}.0.weight_v"] = (i * 16,)
        if k == 1:
            shapes["features.0.weight_orig"] = (o, i, 4, 4)
            shapes["features.0.weight_u"] = (o,)
            shapes["features.0.weight_v"] = (i * 16,)
    return shapes


def random_state(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.startswith("features.") or key.endswith(("weight_u", "weight_v")):
            continue
        state[key] = torch.randn(shape, generator=g, dtype=DT) * (0.1 if "bias" in key else 0.05)
        if key.endswith("weight_orig"):  # u, v: two power-iteration steps from a random start
            w = state[key]
            transposed = key.startswith("decoder.")
            mat = w.transpose(0, 1).flatten(1) if transposed else w.flatten(1)  # C_out x rest
            u = torch.randn(mat.shape[0], generator=g, dtype=DT)
            for _ in range(2):
                v = mat.t() @ u
                v = v / v.norm()
                u = mat @ v
                u = u / u.norm()
            prefix = key[: -len("weight_orig")]
            state[prefix + "weight_u"], state[prefix + "weight_v"] = u, v
    for key in shapes:
        if key.startswith("features."):
            state[key] = state["conv1." + key[len("features.") :]].clone()
    return state


@pytest.fixture(scope="module")
def official():
    return {
        "edge_gen": {"iteration": 7, "generator": random_state(official_generator_shapes(True), 1)},
        "inpaint_gen": {
            "iteration": 9,
            "generator": random_state(official_generator_shapes(False), 2),
        },
        "edge_dis": {"discriminator": random_state(official_discriminator_shapes(2), 3)},
        "inpaint_dis": {"discriminator": random_state(official_discriminator_shapes(3), 4)},
    }


@pytest.fixture(scope="module")
def loaded(official):
    torch.manual_seed(0)
    model = EdgeConnect(vgg="random").to(DT).eval()
    converted = convert_official_state_dicts(**official)
    for part in ("edge", "inpaint"):
        getattr(model.generator, part).load_state_dict(converted["generator"][part], strict=True)
        model.discriminators[part].load_state_dict(converted["discriminators"][part], strict=True)
    return model


# --------------------------------------------------------------------------- slow reference


def ref_reflect_pad(x, p):
    def index(n):
        i = torch.arange(-p, n + p).abs()
        return torch.where(i > n - 1, 2 * (n - 1) - i, i)

    h, w = x.shape[-2:]
    return x[..., index(h)[:, None], index(w)[None, :]]


def ref_conv(x, w, b=None, stride=1, padding=0, dilation=1):
    """Cross-correlation as a sum over kernel taps (zero padding)."""
    n, c, h, wd = x.shape
    k = w.shape[-1]
    xp = torch.zeros(n, c, h + 2 * padding, wd + 2 * padding, dtype=x.dtype)
    xp[..., padding : padding + h, padding : padding + wd] = x
    ho = (h + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    wo = (wd + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    out = torch.zeros(n, w.shape[0], ho, wo, dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            patch = xp[
                :,
                :,
                i * dilation : i * dilation + stride * (ho - 1) + 1 : stride,
                j * dilation : j * dilation + stride * (wo - 1) + 1 : stride,
            ]
            out += torch.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return out if b is None else out + b.view(1, -1, 1, 1)


def ref_conv_transpose(x, w, b, stride=2, padding=1):
    """Transposed conv as a scatter over kernel taps, then the ``padding`` crop."""
    n, _, h, wd = x.shape
    k = w.shape[-1]
    full = torch.zeros(n, w.shape[1], (h - 1) * stride + k, (wd - 1) * stride + k, dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            contrib = torch.einsum("nchw,co->nohw", x, w[:, :, i, j])
            rows = slice(i, i + stride * (h - 1) + 1, stride)
            cols = slice(j, j + stride * (wd - 1) + 1, stride)
            full[:, :, rows, cols] += contrib
    out = full[:, :, padding : full.shape[2] - padding, padding : full.shape[3] - padding]
    return out + b.view(1, -1, 1, 1)


def ref_instance_norm(x, eps=1e-5):
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(2, 3), keepdim=True)
    return (x - mean) / torch.sqrt(var + eps)


def ref_weight(sd, prefix, transposed=False):
    """Plain or spectrally normalised weight: ``W / (u . W_mat v)`` with the stored u, v."""
    if prefix + "weight" in sd:
        return sd[prefix + "weight"]
    w = sd[prefix + "weight_orig"]
    mat = w.transpose(0, 1).reshape(w.shape[1], -1) if transposed else w.reshape(w.shape[0], -1)
    return w / (sd[prefix + "weight_u"] @ mat @ sd[prefix + "weight_v"])


def ref_resblock(sd, prefix, x, dilation=2):
    w1, b1 = ref_weight(sd, prefix + "1."), sd.get(prefix + "1.bias")
    h = ref_conv(ref_reflect_pad(x, dilation), w1, b1, dilation=dilation)
    h = torch.relu(ref_instance_norm(h))
    h = ref_conv(ref_reflect_pad(h, 1), ref_weight(sd, prefix + "5."), sd.get(prefix + "5.bias"))
    return x + ref_instance_norm(h)


def ref_encoder(sd, x):
    h = ref_conv(ref_reflect_pad(x, 3), ref_weight(sd, "encoder.1."), sd["encoder.1.bias"])
    h = torch.relu(ref_instance_norm(h))
    for name in ("encoder.4.", "encoder.7."):
        h = ref_conv(h, ref_weight(sd, name), sd[name + "bias"], stride=2, padding=1)
        h = torch.relu(ref_instance_norm(h))
    return h


def ref_generator(sd, x, blocks=8):
    h = ref_encoder(sd, x)
    for i in range(blocks):
        h = ref_resblock(sd, f"middle.{i}.conv_block.", h)
    for name in ("decoder.0.", "decoder.3."):
        h = ref_conv_transpose(h, ref_weight(sd, name, transposed=True), sd[name + "bias"])
        h = torch.relu(ref_instance_norm(h))
    h = ref_conv(ref_reflect_pad(h, 3), sd["decoder.7.weight"], sd["decoder.7.bias"])
    return torch.sigmoid(h) if h.shape[1] == 1 else (torch.tanh(h) + 1) / 2


def ref_discriminator(sd, x):
    features = []
    for k in range(1, 6):
        stride = 2 if k <= 3 else 1
        x = ref_conv(x, ref_weight(sd, f"conv{k}.0."), stride=stride, padding=1)
        if k < 5:
            x = torch.where(x > 0, x, 0.2 * x)
        features.append(x)
    return x, features


def close(actual, expected, atol=1e-10):
    torch.testing.assert_close(actual, expected, rtol=0, atol=atol)


# --------------------------------------------------------------------------- counts


def test_parameter_counts_match_the_official_networks():
    model = EdgeConnect(vgg="random")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(model.generator.edge) == 10_761_089
    assert count(model.generator.inpaint) == 10_774_595
    assert model.num_params() == {
        "generator": 10_761_089 + 10_774_595,
        "discriminator.edge": 2_762_752,
        "discriminator.inpaint": 2_763_776,
    }


# --------------------------------------------------------------------------- converter


def test_official_key_counts_and_strict_load(official):
    counts = {k: len(v.get("generator", v.get("discriminator"))) for k, v in official.items()}
    assert counts == {"edge_gen": 70, "inpaint_gen": 44, "edge_dis": 18, "inpaint_dis": 18}
    converted = convert_official_state_dicts(**official)
    assert converted["iterations"] == {"edge": 7, "inpaint": 9}
    model = EdgeConnect(vgg="random").to(DT)
    for part in ("edge", "inpaint"):
        getattr(model.generator, part).load_state_dict(converted["generator"][part], strict=True)
        model.discriminators[part].load_state_dict(converted["discriminators"][part], strict=True)
    sd = model.generator.edge.state_dict()
    src = official["edge_gen"]["generator"]
    u = sd["decoder.0.parametrizations.weight.0._u"]  # transposed conv: u on the output axis
    assert torch.equal(u, src["decoder.0.weight_u"]) and u.shape == (128,)
    w = sd["middle.3.conv_block.5.parametrizations.weight.original"]
    assert torch.equal(w, src["middle.3.conv_block.5.weight_orig"])
    d = model.discriminators["edge"].state_dict()
    assert len(d) == 15 and not any(k.startswith("features") for k in d)


@pytest.mark.parametrize("part", ["edge", "inpaint"])
@pytest.mark.parametrize("size", [16, 20])
def test_generators_equal_the_slow_reference_on_official_weights(loaded, official, part, size):
    sd = official[f"{part}_gen"]["generator"]
    net = getattr(loaded.generator, part)
    g = torch.Generator().manual_seed(size)
    x = torch.rand(2, net.in_channels, size, size, generator=g, dtype=DT)
    with torch.no_grad():
        close(net.encoder(x), ref_encoder(sd, x))
        h = torch.randn(2, 256, size // 4, size // 4, generator=g, dtype=DT)
        close(net.middle[0](h), ref_resblock(sd, "middle.0.conv_block.", h))
        close(net(x), ref_generator(sd, x))


@pytest.mark.parametrize("part,channels", [("edge", 2), ("inpaint", 3)])
def test_discriminators_equal_the_slow_reference(loaded, official, part, channels):
    sd = official[f"{part}_dis"]["discriminator"]
    x = torch.rand(2, channels, 32, 32, generator=torch.Generator().manual_seed(5), dtype=DT)
    with torch.no_grad():
        scores, features = loaded.discriminators[part](x)
    ref_scores, ref_features = ref_discriminator(sd, x)
    close(scores, ref_scores)
    for a, b in zip(features, ref_features):
        close(a, b)


def test_converter_errors_name_the_problem(official):
    gen = dict(official["edge_gen"]["generator"])
    gen.pop("middle.2.conv_block.1.weight_v")
    with pytest.raises(ValueError, match="middle.2.conv_block.1.weight_v"):
        convert_official_state_dicts(edge_gen={"generator": gen})
    gen = dict(official["inpaint_gen"]["generator"], **{"extra.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="extra.weight"):
        convert_official_state_dicts(inpaint_gen=gen)
    gen = dict(official["inpaint_gen"]["generator"])
    gen["decoder.7.weight"] = torch.zeros(1, 64, 7, 7)  # an edge-generator head in G2
    with pytest.raises(ValueError, match="decoder.7.weight"):
        convert_official_state_dicts(inpaint_gen=gen)
    dis = dict(official["edge_dis"]["discriminator"])
    dis["features.0.weight_orig"] = dis["features.0.weight_orig"] + 1
    with pytest.raises(ValueError, match="features.0.weight_orig"):
        convert_official_state_dicts(edge_dis=dis)
    with pytest.raises(ValueError, match="nothing to convert"):
        convert_official_state_dicts()


def test_load_official_reads_files_and_dataparallel_prefix(official, tmp_path):
    files = {
        "edge_gen": "EdgeModel_gen.pth",
        "inpaint_gen": "InpaintingModel_gen.pth",
        "inpaint_dis": "InpaintingModel_dis.pth",
    }
    small = {  # one residual block keeps the files small; the layout is the official one
        "edge_gen": {
            "iteration": 7,
            "generator": random_state(official_generator_shapes(True, 1), 5),
        },
        "inpaint_gen": {
            "iteration": 9,
            "generator": random_state(official_generator_shapes(False, 1), 6),
        },
        "inpaint_dis": official["inpaint_dis"],
    }
    for part, name in files.items():
        payload = dict(small[part])
        if part == "inpaint_gen":  # saved from nn.DataParallel: "module." prefixes
            payload["generator"] = {"module." + k: v for k, v in payload["generator"].items()}
        torch.save(payload, tmp_path / name)
    model = EdgeConnect(vgg="random", residual_blocks=1).to(DT)
    assert model.load_official(tmp_path) == {"edge": 7, "inpaint": 9}
    w = model.generator.inpaint.decoder[7].weight
    assert torch.equal(w, small["inpaint_gen"]["generator"]["decoder.7.weight"])
    w = model.discriminators["inpaint"].conv4[0].parametrizations.weight.original
    assert torch.equal(w, official["inpaint_dis"]["discriminator"]["conv4.0.weight_orig"])
    (tmp_path / "EdgeModel_gen.pth").unlink()
    with pytest.raises(FileNotFoundError, match="EdgeModel_gen.pth"):
        model.load_official(tmp_path)


# --------------------------------------------------------------------------- conventions


def square_image(size: int = 48, lo: int = 40, hi: int = 200) -> np.ndarray:
    img = np.full((size, size, 3), lo, np.uint8)
    img[12:36, 16:40] = (hi, hi - 60, hi - 120)  # a coloured square
    return img


def to_contract(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None].to(DT) / 127.5 - 1


def test_gray_is_skimage_rgb2gray():
    img = np.random.default_rng(0).integers(0, 256, (2, 24, 20, 3), dtype=np.uint8)
    ours = rgb_to_gray(torch.from_numpy(img).permute(0, 3, 1, 2).to(DT) / 255)
    close(ours[:, 0], torch.from_numpy(np.stack([rgb2gray(i) for i in img])), atol=1e-12)


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
def test_canny_of_a_square_matches_skimage(sigma):
    img = square_image()
    gray = rgb_to_gray((to_contract(img) + 1) / 2)
    edges = canny_edges(gray, sigma=sigma)[0, 0].numpy().astype(bool)
    expected = canny(rgb2gray(img), sigma=sigma)
    assert np.array_equal(edges, expected)
    rows, cols = np.nonzero(edges)  # golden: the outline of the square, all four sides
    # the square's border lies between rows 11|12 and 35|36, columns 15|16 and 39|40
    dist = np.minimum.reduce(
        [abs(rows - 11.5), abs(rows - 35.5), abs(cols - 15.5), abs(cols - 39.5)]
    )
    assert dist.max() <= 1.5
    assert {rows.min(), rows.max(), cols.min(), cols.max()} <= {11, 12, 35, 36, 15, 16, 39, 40}
    # test mode: Canny(mask=known region) neither reads nor marks the hole
    known = np.ones((48, 48), bool)
    known[20:30, 5:30] = False
    masked = canny_edges(gray, sigma=sigma, known=torch.from_numpy(known)[None, None].to(DT))
    expected_masked = canny(rgb2gray(img), sigma=sigma, mask=known)
    assert np.array_equal(masked[0, 0].numpy().astype(bool), expected_masked)
    assert not masked[0, 0].numpy()[~known].any()


def test_eval_inputs_white_holes_masked_edges_and_raw_edges_into_g2():
    torch.manual_seed(0)
    model = EdgeConnect(vgg="random", residual_blocks=1).to(DT).eval()
    img = square_image()
    image = to_contract(img)
    mask = torch.zeros(1, 1, 48, 48, dtype=DT)
    mask[..., 20:30, 5:30] = 1
    seen = {}
    model.generator.edge.register_forward_pre_hook(lambda m, a: seen.__setitem__("g1", a[0]))
    model.generator.inpaint.register_forward_pre_hook(lambda m, a: seen.__setitem__("g2", a[0]))
    with torch.no_grad():
        out = model(image, mask)
    known = 1 - mask
    gray = torch.from_numpy(rgb2gray(img))[None, None]
    edges = torch.from_numpy(canny(rgb2gray(img), sigma=2, mask=known[0, 0].bool().numpy()))
    edges = edges[None, None].to(DT)
    close(seen["g1"], torch.cat([gray * known + mask, edges * known, mask], dim=1), atol=1e-12)
    rgb = (image + 1) / 2
    close(seen["g2"], torch.cat([rgb * known + mask, out["edges"]], dim=1), atol=1e-12)
    close(out["output"], model.generator.inpaint(seen["g2"]) * 2 - 1)


def test_instance_norm_makes_the_biases_before_it_inert():
    """The official convs before a non-affine InstanceNorm keep biases that cannot change the
    output (their gradient is zero up to rounding); shifting them changes nothing."""
    torch.manual_seed(0)
    net = EdgeConnect(vgg="random", residual_blocks=2).generator.inpaint.to(DT).eval()
    x = torch.rand(1, 4, 16, 16, dtype=DT)
    with torch.no_grad():
        before = net(x)
        for conv in (net.encoder[1], net.encoder[4], net.middle[0].conv_block[1], net.decoder[0]):
            conv.bias.add_(3.0)
        close(net(x), before, atol=1e-12)


# --------------------------------------------------------------------------- training


def batch(size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(2, 3, size, size, generator=g, dtype=DT) * 2 - 1
    mask = torch.zeros(2, 1, size, size, dtype=DT)
    mask[0, :, 8:20, 6:26] = 1
    mask[1, :, 4:28, 10:14] = 1
    return image, mask


STAGE_PARTS = {
    "edge": {"edge"},
    "inpaint": {"inpaint"},
    "joint": {"inpaint"},
    "both": {"edge", "inpaint"},
}


@pytest.mark.parametrize("stage", list(STAGE_PARTS))
def test_stage_selects_what_trains(stage):
    torch.manual_seed(0)
    model = EdgeConnect(vgg="random", residual_blocks=1, stage=stage).to(DT).train()
    parts = STAGE_PARTS[stage]
    for part in ("edge", "inpaint"):
        gen, disc = getattr(model.generator, part), model.discriminators[part]
        assert all(p.requires_grad == (part in parts) for p in gen.parameters())
        assert all(p.requires_grad == (part in parts) for p in disc.parameters())
    opts = model.configure_optimizers()
    g_ids = {id(p) for group in opts["generator"].param_groups for p in group["params"]}
    d_group = opts["discriminator"].param_groups[0]
    assert g_ids == {id(p) for part in parts for p in getattr(model.generator, part).parameters()}
    assert d_group["lr"] == pytest.approx(1e-5) and d_group["betas"] == (0.0, 0.9)
    assert opts["generator"].param_groups[0]["lr"] == 1e-4

    image, mask = batch()
    out = model(image, mask)
    loss, logs = model.generator_loss(image, mask, out, 10**9)
    loss.backward()
    for part in ("edge", "inpaint"):
        grads = [p.grad for p in getattr(model.generator, part).parameters()]
        if part in parts:
            assert all(g is not None for g in grads)
        else:
            assert all(g is None for g in grads)
    assert ("edge_fm" in logs) == ("edge" in parts) and ("style" in logs) == ("inpaint" in parts)
    d_loss, d_logs = model.discriminator_loss(
        image, mask, {k: v.detach() for k, v in out.items()}, 0
    )
    assert {k for k in d_logs if k != "d_total"} == {f"d_{p}" for p in parts}


def test_g2_edge_input_per_stage():
    """MODEL 2 trains G2 on the full ground-truth Canny map, MODEL 3 on the G1 prediction
    pasted into the known ground-truth edges (detached)."""
    image, mask = batch(seed=3)
    gt = canny_edges(rgb_to_gray((image + 1) / 2), sigma=2.0)  # whole image (training)
    seen = {}
    for stage in ("inpaint", "joint"):
        torch.manual_seed(0)
        model = EdgeConnect(vgg="random", residual_blocks=1, stage=stage).to(DT).train()
        model.generator.inpaint.register_forward_pre_hook(lambda m, a: seen.__setitem__("x", a[0]))
        out = model(image, mask)
        close(out["gt_edges"], gt, atol=0)
        guide = gt if stage == "inpaint" else out["edges"] * mask + gt * (1 - mask)
        close(seen["x"][:, 3:], guide, atol=0)
        assert not seen["x"].requires_grad  # ground truth, or the detached prediction
        if stage == "joint":
            assert not out["edges"].requires_grad  # G1 ran without a graph


PERCEPTUAL_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")  # weight 1 each
STYLE_LAYERS = ("relu2_2", "relu3_4", "relu4_4", "relu5_2")


def test_loss_terms_and_weights():
    torch.manual_seed(0)
    weights = dict(
        l1_loss_weight=1.5,
        inpaint_adv_loss_weight=0.3,
        content_loss_weight=0.7,
        style_loss_weight=40.0,
        fm_loss_weight=6.0,
        edge_adv_loss_weight=2.0,
    )
    model = EdgeConnect(vgg="random", residual_blocks=1, **weights).to(DT).train()
    model.discriminators.eval()  # no power iteration: the same D for the loss and the check
    image, mask = batch(seed=1)
    out = model(image, mask)
    with torch.no_grad():
        _, logs = model.generator_loss(image, mask, out, 10**9)
    out01, img01 = (out["output"] + 1) / 2, (image + 1) / 2
    close(logs["l1"], (out01 - img01).abs().mean() / mask.mean(), atol=1e-12)
    # perceptual on the raw output, style on output * mask vs image * mask, [0, 1] VGG input
    vgg = model._vgg(image).extractor
    with torch.no_grad():
        fo, fi = vgg(out["output"]), vgg(image)
        fom, fim = vgg((out["output"] + 1) * mask - 1), vgg((image + 1) * mask - 1)
    perc = sum((fo[k] - fi[k]).abs().mean() for k in PERCEPTUAL_LAYERS)

    def gram(f):
        n, c, h, w = f.shape
        flat = f.reshape(n, c, h * w)
        return flat @ flat.transpose(1, 2) / (c * h * w)

    style = sum((gram(fom[k]) - gram(fim[k])).abs().mean() for k in STYLE_LAYERS)
    close(logs["perceptual"], perc, atol=1e-12)
    close(logs["style"], style, atol=1e-14)
    with torch.no_grad():
        d_out = model.discriminators["inpaint"](out01)[0]
        e_out = model.discriminators["edge"](torch.cat([out["gray"], out["edges"]], 1))[0]
    close(logs["adv"], F.binary_cross_entropy(torch.sigmoid(d_out), torch.ones_like(d_out)))
    close(logs["edge_adv"], F.binary_cross_entropy(torch.sigmoid(e_out), torch.ones_like(e_out)))
    edge = 2.0 * logs["edge_adv"] + 6.0 * logs["edge_fm"]
    inpaint = 0.3 * logs["adv"] + 1.5 * logs["l1"] + 0.7 * logs["perceptual"] + 40.0 * logs["style"]
    expected = edge + inpaint
    close(logs["total"], expected, atol=1e-12)


@pytest.mark.parametrize("gan_loss", ["nsgan", "lsgan", "hinge"])
def test_discriminator_loss_forms(gan_loss):
    torch.manual_seed(0)
    model = EdgeConnect(vgg="random", residual_blocks=1, stage="inpaint", gan_loss=gan_loss)
    model = model.to(DT).train()
    model.discriminators.eval()  # no power iteration: the same D for the loss and the check
    image, mask = batch(seed=2)
    out = {k: v.detach() for k, v in model(image, mask).items()}
    loss, _ = model.discriminator_loss(image, mask, out, 0)
    with torch.no_grad():
        r = model.discriminators["inpaint"]((image + 1) / 2)[0]
        f = model.discriminators["inpaint"]((out["output"] + 1) / 2)[0]
    if gan_loss == "nsgan":  # official BCELoss after a sigmoid, (real + fake) / 2
        sr, sf = torch.sigmoid(r), torch.sigmoid(f)
        real = F.binary_cross_entropy(sr, torch.ones_like(sr))
        expected = (real + F.binary_cross_entropy(sf, torch.zeros_like(sf))) / 2
    elif gan_loss == "lsgan":  # official MSELoss after the sigmoid
        expected = ((torch.sigmoid(r) - 1).pow(2).mean() + torch.sigmoid(f).pow(2).mean()) / 2
    else:
        expected = (torch.relu(1 - r).mean() + torch.relu(1 + f).mean()) / 2
    close(loss.detach(), expected, atol=1e-12)


def test_vgg_is_lazy_and_missing_weights_are_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(0)
    model = EdgeConnect(vgg="imagenet", residual_blocks=1, stage="inpaint").to(DT)
    image, mask = batch()
    with torch.no_grad():
        model.eval()(image, mask)  # inference needs no VGG file
    out = model.train()(image, mask)
    with pytest.raises(MissingWeightsError, match="vgg19"):
        model.generator_loss(image, mask, out, 0)
    assert not any("vgg" in k for k in model.state_dict())


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="stage"):
        EdgeConnect(stage="model4")
    with pytest.raises(ValueError, match="gan_loss"):
        EdgeConnect(gan_loss="wgan")
    with pytest.raises(ValueError, match="sigma"):
        EdgeConnect(sigma=-3)
    net = EdgeConnect(vgg="random", residual_blocks=1).generator.inpaint
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.zeros(1, 4, 18, 16))
    assert zoo.create_model("edge_connect", vgg="random").pad_multiple == 4
