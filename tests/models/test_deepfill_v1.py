"""DeepFill v1 (zoo/models/deepfill_v1.py) against slow references written here, in float64.

- parameter counts: generator 3,601,542 = stage 1 1,448,227 + stage 2 2,153,315
  (``models.md`` 0.1), re-derived here from the layer table; critics: global 2,733,441, local
  4,339,329 (official TF widths) or 2,684,289 (daa233);
- the daa233 converter on state dicts built from a key/shape table transcribed below from
  daa233/generative-inpainting-pytorch ``model/networks.py`` (independently of the converter),
  strict load, and the converted model (``padding="daa233"``) equal to a plain-torch forward of
  those tensors written here, contextual attention included (a per-position loop);
- ``padding="tf"``: the same tensors through TF 'SAME' padding written out by hand and the
  official mask resize (align-corners nearest, 1/4) into the toolkit attention;
- the critics from daa233's ``dis_*.pt`` layout against a plain forward;
- BGR/RGB flipping, converter errors, file loading;
- the spatial-discount tables on the local window (the window itself, shared with GLCIC and
  GMCNN, is tested in tests/layers/test_local_patch.py);
- the official objective term by term (``build_graph_with_losses``), the coarse warm-up.

A full equivalence with daa233's own ``Generator`` / ``LocalDis`` / ``GlobalDis`` run from
/tmp on the same random weights (not needed here) gave max differences 1.8e-14 (256^2, float64,
``padding="daa233"``; 2.2e-5 in float32) and 0 for both critics.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from zoo._registry import create_model
from zoo.layers.contextual_attention import ContextualAttention
from zoo.layers.local_patch import hole_windows
from zoo.models._base import count_params
from zoo.models.deepfill_v1 import (
    DeepFillV1,
    DeepFillV1Generator,
    convert_daa233_state_dict,
    load_daa233,
)

DT = torch.float64
EPS32 = float(torch.tensor(1e-4, dtype=torch.float32))  # daa233: torch.FloatTensor([1e-4])

# daa233 model/networks.py, transcribed: (name, in, out, kernel, stride, dilation, activation,
# upsample-before); cnum = 32, input_dim = 3 (+ ones + mask = 5 channels).
DAA233_COARSE = [
    ("conv1", 5, 32, 5, 1, 1, "elu", False),
    ("conv2_downsample", 32, 64, 3, 2, 1, "elu", False),
    ("conv3", 64, 64, 3, 1, 1, "elu", False),
    ("conv4_downsample", 64, 128, 3, 2, 1, "elu", False),
    ("conv5", 128, 128, 3, 1, 1, "elu", False),
    ("conv6", 128, 128, 3, 1, 1, "elu", False),
    ("conv7_atrous", 128, 128, 3, 1, 2, "elu", False),
    ("conv8_atrous", 128, 128, 3, 1, 4, "elu", False),
    ("conv9_atrous", 128, 128, 3, 1, 8, "elu", False),
    ("conv10_atrous", 128, 128, 3, 1, 16, "elu", False),
    ("conv11", 128, 128, 3, 1, 1, "elu", False),
    ("conv12", 128, 128, 3, 1, 1, "elu", False),
    ("conv13", 128, 64, 3, 1, 1, "elu", True),
    ("conv14", 64, 64, 3, 1, 1, "elu", False),
    ("conv15", 64, 32, 3, 1, 1, "elu", True),
    ("conv16", 32, 16, 3, 1, 1, "elu", False),
    ("conv17", 16, 3, 3, 1, 1, None, False),
]
DAA233_FINE_CONV = [
    ("conv1", 5, 32, 5, 1, 1, "elu", False),
    ("conv2_downsample", 32, 32, 3, 2, 1, "elu", False),
    ("conv3", 32, 64, 3, 1, 1, "elu", False),
    ("conv4_downsample", 64, 64, 3, 2, 1, "elu", False),
    ("conv5", 64, 128, 3, 1, 1, "elu", False),
    ("conv6", 128, 128, 3, 1, 1, "elu", False),
    ("conv7_atrous", 128, 128, 3, 1, 2, "elu", False),
    ("conv8_atrous", 128, 128, 3, 1, 4, "elu", False),
    ("conv9_atrous", 128, 128, 3, 1, 8, "elu", False),
    ("conv10_atrous", 128, 128, 3, 1, 16, "elu", False),
]
DAA233_FINE_PM = [
    ("pmconv1", 5, 32, 5, 1, 1, "elu", False),
    ("pmconv2_downsample", 32, 32, 3, 2, 1, "elu", False),
    ("pmconv3", 32, 64, 3, 1, 1, "elu", False),
    ("pmconv4_downsample", 64, 128, 3, 2, 1, "elu", False),
    ("pmconv5", 128, 128, 3, 1, 1, "elu", False),
    ("pmconv6", 128, 128, 3, 1, 1, "relu", False),
]
DAA233_FINE_AFTER = [
    ("pmconv9", 128, 128, 3, 1, 1, "elu", False),
    ("pmconv10", 128, 128, 3, 1, 1, "elu", False),
]
DAA233_FINE_MERGE = [
    ("allconv11", 256, 128, 3, 1, 1, "elu", False),
    ("allconv12", 128, 128, 3, 1, 1, "elu", False),
    ("allconv13", 128, 64, 3, 1, 1, "elu", True),
    ("allconv14", 64, 64, 3, 1, 1, "elu", False),
    ("allconv15", 64, 32, 3, 1, 1, "elu", True),
    ("allconv16", 32, 16, 3, 1, 1, "elu", False),
    ("allconv17", 16, 3, 3, 1, 1, None, False),
]
DAA233_FINE = DAA233_FINE_CONV + DAA233_FINE_PM + DAA233_FINE_AFTER + DAA233_FINE_MERGE
# LocalDis / GlobalDis: dis_conv_module.conv1..conv4 (5x5 s2 p2, LReLU 0.2) + linear
DAA233_CRITIC = [(3, 64), (64, 128), (128, 256), (256, 256)]


def daa233_generator_state(seed: int = 0, std: float = 0.05) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for prefix, table in (("coarse_generator.", DAA233_COARSE), ("fine_generator.", DAA233_FINE)):
        for name, c_in, c_out, k, *_ in table:
            w = torch.randn(c_out, c_in, k, k, generator=g, dtype=DT) * std
            state[f"{prefix}{name}.conv.weight"] = w
            state[f"{prefix}{name}.conv.bias"] = torch.randn(c_out, generator=g, dtype=DT) * 0.1
    return state


def daa233_critic_state(side: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for i, (c_in, c_out) in enumerate(DAA233_CRITIC, start=1):
        w = torch.randn(c_out, c_in, 5, 5, generator=g, dtype=DT) * 0.05
        state[f"dis_conv_module.conv{i}.conv.weight"] = w
        state[f"dis_conv_module.conv{i}.conv.bias"] = torch.randn(c_out, generator=g, dtype=DT)
    feats = 256 * (side // 16) ** 2
    state["linear.weight"] = torch.randn(1, feats, generator=g, dtype=DT) * 0.01
    state["linear.bias"] = torch.randn(1, generator=g, dtype=DT)
    return state


# ----------------------------------------------------------------------- plain references
def tf_same(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TF 'SAME' padding along one axis, from the TF formula."""
    out = math.ceil(n / s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def plain_conv(x, state, key, row, padding):
    name, _, _, k, s, d, act, up = row
    if up:
        x = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # nearest x2
    if padding == "tf":
        (t, b), (left, r) = tf_same(x.shape[2], k, s, d), tf_same(x.shape[3], k, s, d)
    else:
        t = b = left = r = d * (k - 1) // 2
    x = F.pad(x, (left, r, t, b))
    y = F.conv2d(x, state[f"{key}{name}.conv.weight"], state[f"{key}{name}.conv.bias"], s, 0, d)
    return {"elu": F.elu, "relu": F.relu, None: lambda v: v}[act](y)


def run_rows(x, state, key, rows, padding):
    for row in rows:
        x = plain_conv(x, state, key, row, padding)
    return x


def loop_attention_daa233(f, mask, rate=2, fuse_k=3, scale=10.0, eps=EPS32):
    """daa233 ContextualAttention(f, f, mask) for one sample, position by position."""
    c, fh, fw = f.shape[1:]
    fd = f[0, :, ::rate, ::rate]  # F.interpolate nearest by 1/rate = rows 0, rate, 2 rate, ...
    m = mask[0, 0, :: 4 * rate, :: 4 * rate]  # full-resolution mask by 1/(4 rate) in one step
    h, w = fd.shape[1:]
    n = h * w
    fpad, mpad = F.pad(fd, (1, 1, 1, 1)), F.pad(m, (1, 1, 1, 1))
    pos = [(i // w, i % w) for i in range(n)]
    patch = [fpad[:, y : y + 3, x : x + 3] for y, x in pos]
    scores = torch.zeros(n, n, dtype=f.dtype)  # [background l, foreground p]
    for li in range(n):
        normed = patch[li] / torch.sqrt((patch[li] ** 2 + eps).sum())
        for pi in range(n):
            scores[li, pi] = (normed * patch[pi]).sum()
    r = fuse_k // 2
    fused = torch.zeros_like(scores)  # pass 1: row-major flat indices move together
    for li in range(n):
        for pi in range(n):
            for dd in range(-r, r + 1):
                if 0 <= li + dd < n and 0 <= pi + dd < n:
                    fused[li, pi] += scores[li + dd, pi + dd]

    def cm(i):  # row-major -> column-major flat index
        return (i % w) * h + i // w

    def rm(j):  # column-major -> row-major flat index
        return (j % h) * w + j // h

    fused2 = torch.zeros_like(scores)  # pass 2: column-major flat indices
    for li in range(n):
        for pi in range(n):
            for dd in range(-r, r + 1):
                a, b = cm(li) + dd, cm(pi) + dd
                if 0 <= a < n and 0 <= b < n:
                    fused2[li, pi] += fused[rm(a), rm(b)]
    valid = torch.tensor(
        [float(mpad[y : y + 3, x : x + 3].sum() == 0) for y, x in pos], dtype=f.dtype
    )
    out = torch.zeros(c, fh + 2, fw + 2, dtype=f.dtype)  # canvas of the transposed conv
    bpad = F.pad(f[0], (1, 1, 1, 1))  # TF 'SAME' for 4x4 stride 2 on even sizes: 1 / 1
    for pi in range(n):
        attn = torch.softmax(fused2[:, pi] * valid * scale, dim=0) * valid
        py, px = pos[pi]
        for li in range(n):
            ly, lx = pos[li]
            raw = bpad[:, ly * rate : ly * rate + 4, lx * rate : lx * rate + 4]
            out[:, py * rate : py * rate + 4, px * rate : px * rate + 4] += attn[li] * raw
    return out[None, :, 1 : 1 + fh, 1 : 1 + fw] / 4


def tf_resize_rows(n_in: int, n_out: int) -> list[int]:
    """tf.image.resize_nearest_neighbor(align_corners=True) source rows (float32 arithmetic)."""
    scale = np.float32(n_in - 1) / np.float32(n_out - 1)
    return [min(int(np.floor(np.float32(y) * scale + 0.5)), n_in - 1) for y in range(n_out)]


def plain_generator(state, x, mask, padding, attention):
    """daa233's Generator (padding="daa233") or the TF network (padding="tf") on ``state``."""
    ones = torch.ones_like(mask)
    x1 = run_rows(torch.cat([x, ones, mask], 1), state, "coarse_generator.", DAA233_COARSE, padding)
    x1 = x1.clamp(-1, 1)
    xnow = torch.cat([x1 * mask + x * (1 - mask), ones, mask], 1)
    hallu = run_rows(xnow, state, "fine_generator.", DAA233_FINE_CONV, padding)
    pm = run_rows(xnow, state, "fine_generator.", DAA233_FINE_PM, padding)
    pm = attention(pm, mask)
    pm = run_rows(pm, state, "fine_generator.", DAA233_FINE_AFTER, padding)
    x2 = run_rows(torch.cat([hallu, pm], 1), state, "fine_generator.", DAA233_FINE_MERGE, padding)
    return x1, x2.clamp(-1, 1)


def batch(n: int, size: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, size, size, generator=g, dtype=DT) * 2 - 1
    mask = torch.zeros(n, 1, size, size, dtype=DT)
    for i in range(n):
        t, left = (
            int(torch.randint(0, size // 2, (1,), generator=g)),
            int(torch.randint(0, size // 2, (1,), generator=g)),
        )
        mask[i, :, t : t + size // 2 - i, left + 1 : left + size // 2] = 1
    return image, mask


# ----------------------------------------------------------------------- counts
def table_params(rows) -> int:
    return sum(k * k * c_in * c_out + c_out for _, c_in, c_out, k, *_ in rows)


def test_parameter_counts() -> None:
    model = create_model("deepfill_v1")
    assert count_params(model.generator) == 3_601_542
    assert count_params(model.generator.coarse) == 1_448_227 == table_params(DAA233_COARSE)
    assert count_params(model.generator.refine) == 2_153_315 == table_params(DAA233_FINE)
    assert count_params(model.discriminators["global"]) == 2_733_441
    assert count_params(model.discriminators["local"]) == 4_339_329
    daa = create_model("deepfill_v1", critics="daa233")
    assert count_params(daa.discriminators["local"]) == 2_684_289
    assert count_params(daa.discriminators["global"]) == 2_733_441
    assert len(model.generator.state_dict()) == 84


# ----------------------------------------------------------------------- converter + forward
def test_daa233_attention_matches_loop() -> None:
    g = torch.Generator().manual_seed(1)
    f = torch.rand(2, 4, 8, 12, generator=g, dtype=DT)
    mask = torch.zeros(2, 1, 32, 48, dtype=DT)
    mask[0, :, 4:20, 6:30] = 1
    mask[1, :, 14:30, 20:44] = 1
    got = DeepFillV1Generator(cnum=2, padding="daa233").attention(f, f, mask)  # the model's layer
    for i in range(2):
        assert_close(
            got[i : i + 1], loop_attention_daa233(f[i : i + 1], mask[i : i + 1]), rtol=0, atol=1e-12
        )


@pytest.mark.parametrize("padding", ["daa233", "tf"])
def test_converted_generator_matches_plain_reference(padding: str) -> None:
    state = daa233_generator_state()
    converted = convert_daa233_state_dict(state)["generator"]
    gen = DeepFillV1Generator(padding=padding).to(DT).eval()
    gen.load_state_dict(converted, strict=True)
    image, mask = batch(2, 32)
    x = image * (1 - mask)
    if padding == "daa233":

        def attention(pm, m):
            return torch.cat([loop_attention_daa233(pm[i : i + 1], m[i : i + 1]) for i in range(2)])
    else:
        ca = ContextualAttention(ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0, fuse=True)

        def attention(pm, m):
            rows = tf_resize_rows(m.shape[2], pm.shape[2])
            cols = tf_resize_rows(m.shape[3], pm.shape[3])
            return ca(pm, pm, m[:, :, rows][:, :, :, cols])  # resize_mask_like (1/4)

    with torch.no_grad():
        ours = gen(x, mask)
        ref = plain_generator(state, x, mask, padding, attention)
    assert ref[1].std() > 0.1  # a non-trivial output
    assert_close(ours[0], ref[0], rtol=0, atol=1e-12)
    assert_close(ours[1], ref[1], rtol=0, atol=1e-10)


def test_paddings_differ_only_at_stride_two() -> None:
    state = convert_daa233_state_dict(daa233_generator_state())["generator"]
    a, b = DeepFillV1Generator(padding="tf"), DeepFillV1Generator(padding="daa233")
    for gen in (a, b):
        gen.to(DT).load_state_dict(state)
    x = torch.rand(1, 5, 16, 16, dtype=DT)
    layer_a, layer_b = a.coarse.conv1, b.coarse.conv1  # 5x5 stride 1: identical
    assert_close(layer_a(x), layer_b(x), rtol=0, atol=0)
    y = torch.rand(1, 32, 16, 16, dtype=DT)
    down_a, down_b = a.coarse.conv2_downsample(y), b.coarse.conv2_downsample(y)
    assert not torch.allclose(down_a, down_b)  # 0/1 vs 1/1 padding


def test_converted_critics_match_plain_forward() -> None:
    dis = {"globalD": daa233_critic_state(256, 1), "localD": daa233_critic_state(128, 2)}
    state = convert_daa233_state_dict(daa233_generator_state(), dis)
    model = create_model("deepfill_v1", critics="daa233").to(DT)
    model.discriminators.load_state_dict(state["discriminators"], strict=True)
    g = torch.Generator().manual_seed(3)
    for name, side in (("globalD", 256), ("localD", 128)):
        x = torch.rand(2, 3, side, side, generator=g, dtype=DT) * 2 - 1
        y = x
        for i in range(1, 5):
            w, b = (
                dis[name][f"dis_conv_module.conv{i}.conv.weight"],
                dis[name][f"dis_conv_module.conv{i}.conv.bias"],
            )
            y = F.leaky_relu(F.conv2d(y, w, b, stride=2, padding=2), 0.2)
        ref = y.flatten(1) @ dis[name]["linear.weight"].t() + dis[name]["linear.bias"]
        ours = model.discriminators["global" if name == "globalD" else "local"](x)[0]
        assert_close(ours, ref, rtol=0, atol=1e-12)


def test_converter_accepts_prefix_and_counts() -> None:
    state = daa233_generator_state()
    plain = convert_daa233_state_dict(state)["generator"]
    prefixed = convert_daa233_state_dict({f"netG.{k}": v for k, v in state.items()})["generator"]
    assert plain.keys() == prefixed.keys() and len(plain) == 84
    assert (
        plain["coarse.conv13_upsample.conv.weight"]
        is not state["coarse_generator.conv13.conv.weight"]
    )
    assert torch.equal(
        plain["refine.xconv1.conv.weight"], state["fine_generator.conv1.conv.weight"]
    )
    assert torch.equal(
        plain["refine.allconv15_upsample.conv.bias"], state["fine_generator.allconv15.conv.bias"]
    )


def test_converter_errors() -> None:
    state = daa233_generator_state()
    missing = dict(state)
    del missing["fine_generator.pmconv9.conv.bias"]
    with pytest.raises(ValueError, match="missing 1"):
        convert_daa233_state_dict(missing)
    with pytest.raises(ValueError, match="unexpected 1"):
        convert_daa233_state_dict({**state, "fine_generator.extra.weight": torch.zeros(1)})
    bad = dict(state)
    bad["fine_generator.allconv12.conv.weight"] = torch.zeros(128, 128, 5, 5)
    with pytest.raises(ValueError, match="allconv12.*shape"):
        convert_daa233_state_dict(bad)
    with pytest.raises(TypeError):
        convert_daa233_state_dict([1, 2])
    dis = {"globalD": daa233_critic_state(256, 1), "localD": daa233_critic_state(128, 2)}
    dis["localD"]["linear.weight"] = torch.zeros(1, 512 * 64)
    with pytest.raises(ValueError, match="localD.*shape"):
        convert_daa233_state_dict(state, dis)
    with pytest.raises(ValueError, match="key mismatch"):
        convert_daa233_state_dict(state, {"globalD": dis["globalD"]})
    model = create_model("deepfill_v1")  # official critics: daa233's local critic cannot load
    dis = {"globalD": daa233_critic_state(256, 1), "localD": daa233_critic_state(128, 2)}
    with pytest.raises(ValueError, match="critics='daa233'"):
        model.load_daa233(state, dis)


def test_load_from_files(tmp_path) -> None:
    state = {k: v.float() for k, v in daa233_generator_state().items()}
    dis = {"globalD": daa233_critic_state(256, 1), "localD": daa233_critic_state(128, 2)}
    torch.save(state, tmp_path / "gen_00430000.pt")
    torch.save(dis, tmp_path / "dis_00430000.pt")
    model = create_model("deepfill_v1", padding="daa233", critics="daa233")
    model.load_daa233(tmp_path / "gen_00430000.pt", tmp_path / "dis_00430000.pt")
    loaded = load_daa233(tmp_path / "gen_00430000.pt")
    assert torch.equal(
        model.generator.coarse.conv1.conv.weight, state["coarse_generator.conv1.conv.weight"]
    )
    assert torch.equal(
        loaded["generator"]["refine.pmconv6.conv.bias"], state["fine_generator.pmconv6.conv.bias"]
    )


def test_bgr_to_rgb_flip() -> None:
    state = daa233_generator_state()
    plain, flipped = DeepFillV1Generator().to(DT), DeepFillV1Generator().to(DT)
    plain.load_state_dict(convert_daa233_state_dict(state)["generator"])
    flipped.load_state_dict(convert_daa233_state_dict(state, bgr_to_rgb=True)["generator"])
    image, mask = batch(2, 32, seed=4)
    x = image * (1 - mask)
    with torch.no_grad():
        bgr = plain(x.flip(1), mask)  # the BGR network on BGR input
        rgb = flipped(x, mask)
    assert_close(rgb[0], bgr[0].flip(1), rtol=0, atol=1e-12)
    assert_close(rgb[1], bgr[1].flip(1), rtol=0, atol=1e-12)


# ----------------------------------------------------------------------- windows, discount
def loop_windows(mask: torch.Tensor, size: tuple[int, int]) -> list[tuple[int, int]]:
    out = []
    for m in mask[:, 0]:
        ys = [y for y in range(m.shape[0]) if any(m[y, x] > 0.5 for x in range(m.shape[1]))]
        xs = [x for x in range(m.shape[1]) if any(m[y, x] > 0.5 for y in range(m.shape[0]))]
        if not ys:
            ys, xs = [0, m.shape[0] - 1], [0, m.shape[1] - 1]
        top = min(max((ys[0] + ys[-1] + 1 - size[0]) // 2, 0), m.shape[0] - size[0])
        left = min(max((xs[0] + xs[-1] + 1 - size[1]) // 2, 0), m.shape[1] - size[1])
        out.append((top, left))
    return out


def test_discount_weights() -> None:
    model = create_model("deepfill_v1", image_size=32, spatial_discount_gamma=0.9)
    mask = torch.zeros(1, 1, 32, 32, dtype=DT)
    mask[..., 8:24, 6:22] = 1
    corners = hole_windows(mask, (16, 16))
    box = model.discount_weights(mask, corners, (16, 16))
    for i in range(16):  # inpaint_ops.spatial_discounting_mask
        for j in range(16):
            ref = max(0.9 ** min(i, 16 - i), 0.9 ** min(j, 16 - j))
            assert abs(box[0, 0, i, j].item() - ref) < 1e-6
    model.discount = "distance"
    dist = model.discount_weights(mask, corners, (16, 16))
    for i in range(16):  # the hole fills the window: distance to the known ring outside
        for j in range(16):
            d = min(i + 1, 16 - i, j + 1, 16 - j)
            assert abs(dist[0, 0, i, j].item() - 0.9**d) < 1e-12


# ----------------------------------------------------------------------- objective
def model_and_outputs(size: int = 32, **kwargs):
    torch.manual_seed(0)
    model = create_model("deepfill_v1", image_size=size, **kwargs).to(DT)
    image, mask = batch(2, size, seed=7)
    out = model(image, mask)
    return model, image, mask, out


@pytest.mark.parametrize("pretrain", [False, True])
def test_generator_loss_is_official(pretrain: bool) -> None:
    model, image, mask, out = model_and_outputs(pretrain_coarse_steps=5 if pretrain else 0)
    loss, logs = model.generator_loss(image, mask, out, 3)
    x1, x2, comp = out["coarse"], out["output"], out["composite"]
    size = (16, 16)
    corners = loop_windows(mask, size)

    def patch(t):
        return torch.stack([t[i, :, a : a + 16, b : b + 16] for i, (a, b) in enumerate(corners)])

    sdm = torch.tensor(
        [
            [max(0.99 ** min(i, 16 - i), 0.99 ** min(j, 16 - j)) for j in range(16)]
            for i in range(16)
        ],
        dtype=DT,
    )
    l1 = 1.2 * ((patch(image) - patch(x1)).abs() * sdm).mean()
    ae = 1.2 * ((image - x1).abs() * (1 - mask)).mean()
    if not pretrain:
        l1 = l1 + ((patch(image) - patch(x2)).abs() * sdm).mean()
        ae = ae + ((image - x2).abs() * (1 - mask)).mean()
    ae = ae / (1 - mask).mean()
    ref = 1.2 * l1 + 1.2 * ae
    if not pretrain:
        g_global = -model.discriminators["global"](comp)[0].mean()
        g_local = -model.discriminators["local"](patch(comp))[0].mean()
        ref = ref + 1e-3 * (1.0 * g_global + g_local)
    assert_close(loss, ref, rtol=1e-12, atol=0)
    assert_close(logs["l1"], l1.detach(), rtol=1e-12, atol=0)
    assert model.phases(3) == (True, not pretrain)


def test_discriminator_loss_is_official() -> None:
    model, image, mask, out = model_and_outputs()
    fake = out["composite"].detach()
    torch.manual_seed(11)
    loss, logs = model.discriminator_loss(image, mask, out, 0)
    torch.manual_seed(11)  # the same interpolation weights: global first, then local
    corners = loop_windows(mask, (16, 16))

    def patch(t):
        return torch.stack([t[i, :, a : a + 16, b : b + 16] for i, (a, b) in enumerate(corners)])

    total = 0
    for name, real, fk, m in (
        ("global", image, fake, mask),
        ("local", patch(image), patch(fake), patch(mask)),
    ):
        critic = model.discriminators[name]
        d = critic(fk)[0].mean() - critic(real)[0].mean()
        alpha = torch.rand(2, dtype=DT).view(2, 1, 1, 1)
        points = (real + alpha * (fk - real)).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(points)[0].sum(), points)
        slopes = torch.sqrt((grad**2 * m).sum(dim=(1, 2, 3)))
        total = total + d + 10.0 * ((slopes - 1) ** 2).mean()
    assert_close(loss, total, rtol=1e-10, atol=0)
    assert set(logs) == {"d_global", "gp_global", "d_local", "gp_local", "d_total"}


def test_critics_resize_other_resolutions() -> None:
    torch.manual_seed(0)
    model = create_model("deepfill_v1", image_size=64).to(DT)  # critics for 64 / 32
    image, mask = batch(2, 32, seed=2)
    out = model(image, mask)
    with pytest.warns(UserWarning, match="resizing"):
        loss, _ = model.generator_loss(image, mask, out, 0)
    assert torch.isfinite(loss)
    assert model.window_size(32, 32) == (16, 16)


def test_output_ignores_hole_pixels_and_keeps_known() -> None:
    model = create_model("deepfill_v1").to(DT).eval()
    image, mask = batch(2, 40, seed=3)  # 40 -> padded to 40 (multiple of 8)
    with torch.no_grad():
        a = model(image, mask)
        b = model(image * (1 - mask) + mask * 0.3, mask)
    assert_close(a["output"], b["output"], rtol=0, atol=0)
    assert torch.equal(
        a["composite"][(1 - mask).bool().expand_as(image)],
        image[(1 - mask).bool().expand_as(image)],
    )


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="padding"):
        create_model("deepfill_v1", padding="reflect")
    with pytest.raises(ValueError, match="variant"):
        create_model("deepfill_v1", critics="wide")
    with pytest.raises(ValueError, match="discount"):
        create_model("deepfill_v1", discount="gauss")
    with pytest.raises(ValueError, match="multiples of 8"):
        DeepFillV1Generator()(torch.zeros(1, 3, 20, 24), torch.zeros(1, 1, 20, 24))


def test_optimizers_and_schedule() -> None:
    model = create_model("deepfill_v1", pretrain_coarse_steps=10)
    assert isinstance(model, DeepFillV1) and model.d_steps == 5 and model.pad_multiple == 8
    opts = model.configure_optimizers()
    for opt in opts.values():
        assert opt.defaults["lr"] == 1e-4 and opt.defaults["betas"] == (0.5, 0.9)
    assert model.phases(9) == (True, False) and model.phases(10) == (True, True)
    assert "discriminators" in model.trained_state()


@pytest.mark.parametrize("padding", ["daa233", "tf"])
def test_generator_layout_and_autograd_paths_agree(padding: str) -> None:
    """channels_last (default) and contiguous layouts, with and without autograd (in-place
    activations, in-place attention softmax): the same outputs."""
    state = convert_daa233_state_dict(daa233_generator_state())["generator"]
    gens = {}
    for cl in (True, False):
        gens[cl] = DeepFillV1Generator(padding=padding, channels_last=cl).to(DT).eval()
        gens[cl].load_state_dict(state, strict=True)
    image, mask = batch(2, 32)
    x = image * (1 - mask)
    with torch.inference_mode():
        fast = gens[True](x, mask)
        plain = gens[False](x, mask)
    graph = gens[True](x, mask)
    for a, b, c in zip(fast, plain, graph, strict=True):
        assert a.is_contiguous() and a.shape == x.shape
        assert_close(a, b, rtol=0, atol=1e-12)
        assert_close(a, c.detach(), rtol=0, atol=1e-12)
    graph[1].sum().backward()  # autograd works through the generator
    assert gens[True].coarse.conv1.conv.weight.grad is not None
