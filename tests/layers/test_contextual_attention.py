"""ContextualAttention against a slow reference written here (explicit loop over foreground
positions, the official reshape/transpose fusion, explicit pasting), plus identities, chunking,
per-sample masks and the TF nearest resize; the daa233 options (floor resize, additive norm
epsilon, full-resolution mask) against the same reference with those steps swapped."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zoo.layers.contextual_attention import ContextualAttention, resize_nearest_tf

DT = torch.float64


# ----------------------------------------------------------------------------- reference
def tf_rows(n_in: int, n_out: int) -> list[int]:
    """TF 1.x resize_nearest_neighbor(align_corners=True) rows, float32 arithmetic as TF."""
    if n_out == 1:
        return [0]
    scale = np.float32(n_in - 1) / np.float32(n_out - 1)
    return [
        min(int(math.floor(float(np.float32(y) * scale) + 0.5)), n_in - 1) for y in range(n_out)
    ]


def tf_pad(size: int, k: int, s: int) -> tuple[int, int]:
    total = max((math.ceil(size / s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def pad2d(t: torch.Tensor, k: int, s: int) -> torch.Tensor:
    top, bottom = tf_pad(t.shape[-2], k, s)
    left, right = tf_pad(t.shape[-1], k, s)
    return F.pad(t, (left, right, top, bottom))


def down(t: torch.Tensor, rate: int, resize: str = "tf") -> torch.Tensor:
    if resize == "torch_floor":  # F.interpolate nearest by 1/rate: rows 0, rate, 2 rate, ...
        return t[..., ::rate, ::rate]
    h, w = t.shape[-2:]
    return t[..., tf_rows(h, h // rate), :][..., tf_rows(w, w // rate)]


def diag_conv(s: torch.Tensor, k: int) -> torch.Tensor:
    """'SAME' conv of a 2-D matrix with a k x k identity kernel: sum of diagonal neighbours."""
    out = torch.zeros_like(s)
    before = (k - 1) // 2
    rows, cols = s.shape
    for t in range(k):
        d = t - before
        for i in range(rows):
            for j in range(cols):
                if 0 <= i + d < rows and 0 <= j + d < cols:
                    out[i, j] += s[i + d, j + d]
    return out


def reference(
    f,
    b,
    mask,
    *,
    ksize,
    stride,
    rate,
    fuse_k,
    scale,
    fuse,
    resize="tf",
    norm="max_floor",
    eps=1e-4,
    mask_scale=1,
):
    n_batch, _, fh, fw = f.shape
    kr = 2 * rate
    outputs = []
    for n in range(n_batch):
        fd, bd = down(f[n], rate, resize), down(b[n], rate, resize)  # C x h x w, C x hb x wb
        if mask is None:
            md = torch.zeros_like(bd[:1])
        else:  # the mask at mask_scale x b's size, resized in one step
            md = down(mask[n % mask.shape[0]], mask_scale * rate, resize)
        h, w = fd.shape[1:]
        gh, gw = math.ceil(bd.shape[1] / stride), math.ceil(bd.shape[2] / stride)
        bdp, mdp, fdp = pad2d(bd, ksize, stride), pad2d(md, ksize, stride), pad2d(fd, ksize, 1)
        bp = pad2d(b[n], kr, rate * stride)
        pats, valid, raws = [], [], []
        for i in range(gh):
            for j in range(gw):
                y0, x0 = i * stride, j * stride
                p = bdp[:, y0 : y0 + ksize, x0 : x0 + ksize]
                if norm == "additive":  # eps added to every squared element
                    pats.append(p / (p.pow(2) + eps).sum().sqrt())
                else:
                    pats.append(p / max(p.pow(2).sum().sqrt().item(), eps))
                valid.append(float(mdp[:, y0 : y0 + ksize, x0 : x0 + ksize].abs().sum() == 0))
                y1, x1 = i * rate * stride, j * rate * stride
                raws.append(bp[:, y1 : y1 + kr, x1 : x1 + kr])
        valid_t = torch.tensor(valid, dtype=f.dtype)
        scores = torch.zeros(h * w, gh * gw, dtype=f.dtype)  # foreground x background
        for p in range(h * w):  # explicit loop over foreground positions
            y, x = divmod(p, w)
            win = fdp[:, y : y + ksize, x : x + ksize]
            scores[p] = torch.stack([(win * q).sum() for q in pats])
        if fuse:  # official: row-major pass, transpose to column-major, pass, transpose back
            scores = diag_conv(scores, fuse_k)
            scores = scores.view(h, w, gh, gw).permute(1, 0, 3, 2).reshape(h * w, gh * gw)
            scores = diag_conv(scores, fuse_k)
            scores = scores.view(w, h, gw, gh).permute(1, 0, 3, 2).reshape(h * w, gh * gw)
        top, _ = tf_pad(fh, kr, rate)
        canvas = torch.zeros(f.shape[1], (h + 1) * rate, (w + 1) * rate, dtype=f.dtype)
        for p in range(h * w):
            y, x = divmod(p, w)
            attn = torch.softmax(scale * scores[p] * valid_t, dim=0) * valid_t
            patch = sum(a * r for a, r in zip(attn, raws))
            canvas[:, y * rate : y * rate + kr, x * rate : x * rate + kr] += patch
        left, _ = tf_pad(fw, kr, rate)
        outputs.append(canvas[:, top : top + fh, left : left + fw] / 4.0)
    return torch.stack(outputs)


def box_masks(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    m = torch.zeros(n, 1, h, w, dtype=DT)
    for i in range(n):
        t, l = (int(v) for v in torch.randint(0, max(h // 2, 1), (2,), generator=g))
        m[i, :, t : t + h // 3 + 1, l : l + w // 3 + 2] = 1
    return m


# ----------------------------------------------------------------------------- tests
CASES = [
    # (f size, b size, ksize, stride, rate, fuse_k, fuse)
    ((8, 8), (8, 8), 3, 1, 2, 3, True),
    ((8, 8), (8, 8), 3, 1, 2, 3, False),
    ((8, 12), (8, 12), 3, 1, 2, 3, True),
    ((12, 8), (12, 8), 3, 1, 2, 3, False),
    ((6, 10), (6, 10), 3, 1, 2, 2, True),  # even fuse kernel
    ((8, 8), (8, 8), 1, 1, 2, 5, True),
    ((5, 7), (5, 7), 3, 1, 1, 3, True),  # rate 1: 2x2 raw patches
    ((9, 6), (9, 6), 3, 1, 3, 3, True),  # rate 3: 6x6 raw patches
    ((8, 8), (12, 8), 3, 1, 2, 3, True),  # foreground and background of different sizes
    ((8, 8), (10, 12), 3, 2, 2, 3, False),  # strided background patches
]


@pytest.mark.parametrize("fs, bs, ksize, stride, rate, fuse_k, fuse", CASES)
@pytest.mark.parametrize("masked", [False, True])
def test_matches_slow_reference(fs, bs, ksize, stride, rate, fuse_k, fuse, masked) -> None:
    g = torch.Generator().manual_seed(0)
    f = torch.randn(2, 3, *fs, generator=g, dtype=DT)
    b = f if fs == bs else torch.randn(2, 3, *bs, generator=g, dtype=DT)
    mask = box_masks(2, *bs, seed=1) if masked else None
    layer = ContextualAttention(ksize, stride, rate, fuse_k, softmax_scale=10.0, fuse=fuse)
    got = layer(f, b, mask)
    ref = reference(
        f, b, mask, ksize=ksize, stride=stride, rate=rate, fuse_k=fuse_k, scale=10.0, fuse=fuse
    )
    assert got.shape == f.shape
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-10)


OPTION_CASES = [CASES[0], CASES[2], CASES[6], CASES[7], CASES[8], CASES[9]]
EPS32 = float(torch.tensor(1e-4, dtype=torch.float32))  # daa233: torch.FloatTensor([1e-4])
OPTIONS = [
    {"resize": "torch_floor"},
    {"norm": "additive", "norm_eps": 0.3},  # a large epsilon, to tell the two norms apart
    {"norm": "max_floor", "norm_eps": 4.0},  # a floor above some patch norms (~5 typical)
    {"mask_scale": 4},
    {"mask_scale": 2, "resize": "torch_floor"},
    {"resize": "torch_floor", "norm": "additive", "norm_eps": EPS32, "mask_scale": 4},  # daa233
]


@pytest.mark.parametrize("fs, bs, ksize, stride, rate, fuse_k, fuse", OPTION_CASES)
@pytest.mark.parametrize("options", OPTIONS)
def test_options_match_slow_reference(fs, bs, ksize, stride, rate, fuse_k, fuse, options) -> None:
    g = torch.Generator().manual_seed(10)
    f = torch.randn(2, 3, *fs, generator=g, dtype=DT)
    b = f if fs == bs else torch.randn(2, 3, *bs, generator=g, dtype=DT)
    mask_scale = options.get("mask_scale", 1)
    mask = box_masks(2, mask_scale * bs[0], mask_scale * bs[1], seed=11)
    layer = ContextualAttention(ksize, stride, rate, fuse_k, 10.0, fuse, **options)
    got = layer(f, b, mask)
    ref = reference(
        f, b, mask, ksize=ksize, stride=stride, rate=rate, fuse_k=fuse_k, scale=10.0, fuse=fuse,
        resize=options.get("resize", "tf"), norm=options.get("norm", "max_floor"),
        eps=options.get("norm_eps", 1e-4), mask_scale=mask_scale,
    )  # fmt: skip
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-10)
    chunked = ContextualAttention(ksize, stride, rate, fuse_k, 10.0, fuse, chunk_size=5, **options)
    torch.testing.assert_close(chunked(f, b, mask), got, rtol=0, atol=1e-12)


def test_each_option_changes_the_result() -> None:
    """The option cases above are not vacuous: each option alone moves the output."""
    g = torch.Generator().manual_seed(12)
    f = torch.randn(2, 3, 8, 12, generator=g, dtype=DT)
    mask = box_masks(2, 8, 12, seed=13)
    base = ContextualAttention()(f, f, mask)
    for options in OPTIONS[:3]:
        assert (ContextualAttention(**options)(f, f, mask) - base).abs().max() > 1e-3, options
    full = mask.repeat_interleave(4, 2).repeat_interleave(4, 3)  # 4x the size, the same hole
    scaled = ContextualAttention(mask_scale=4)
    assert (scaled(f, f, full) - scaled(f, f, None)).abs().max() > 1e-3  # the mask is read
    # floor resize of the 4x mask by 1/8 reads the rows that 1/2 reads from the mask itself
    assert torch.equal(ContextualAttention(mask_scale=4, resize="torch_floor")(f, f, full),
                       ContextualAttention(resize="torch_floor")(f, f, mask))  # fmt: skip


@pytest.mark.parametrize("rate", [1, 2])
def test_single_valid_patch_fills_everything(rate: int) -> None:
    """Only one background patch is usable: every position pastes exactly that raw patch."""
    c, h, w = 3, 6 * rate, 6 * rate
    g = torch.Generator().manual_seed(2)
    feat = torch.rand(1, c, h, w, generator=g, dtype=DT) + 0.5  # positive: cosine > 0
    md = torch.ones(1, 1, h // rate, w // rate, dtype=DT)
    md[..., 1:4, 2:5] = 0  # the only hole-free 3x3 window of the matching grid is centred at (2, 3)
    mask = md.repeat_interleave(rate, 2).repeat_interleave(rate, 3)  # back to b's resolution
    layer = ContextualAttention(rate=rate, softmax_scale=1e5, fuse=False)
    y, offsets = layer(feat, feat, mask, return_offsets=True)
    kr = 2 * rate
    bp = pad2d(feat[0], kr, rate)
    patch = bp[:, 2 * rate : 2 * rate + kr, 3 * rate : 3 * rate + kr]  # raw patch of (2, 3)
    canvas = torch.zeros(c, h + rate, w + rate, dtype=DT)
    for i in range(h // rate):
        for j in range(w // rate):
            canvas[:, i * rate : i * rate + kr, j * rate : j * rate + kr] += patch
    top = tf_pad(h, kr, rate)[0]
    torch.testing.assert_close(
        y[0], canvas[:, top : top + h, top : top + w] / 4, rtol=0, atol=1e-12
    )
    fy = torch.arange(h // rate).view(-1, 1).expand(-1, w // rate)
    fx = torch.arange(w // rate).view(1, -1).expand(h // rate, -1)
    assert torch.equal(offsets[0, 0], 2 - fy) and torch.equal(offsets[0, 1], 3 - fx)


def test_constant_background_reproduced_in_the_interior() -> None:
    """rate 2: each interior pixel is covered by 4 pasted patches, and the sum is divided by 4."""
    value = torch.tensor([0.3, -1.2, 2.0], dtype=DT).view(1, 3, 1, 1)
    feat = value.expand(1, 3, 16, 16).clone()
    mask = torch.zeros(1, 1, 16, 16, dtype=DT)
    mask[..., 4:10, 5:11] = 1
    y = ContextualAttention(rate=2)(feat, feat, mask)
    # rows/cols 1..14 are covered twice per axis; attention over usable patches sums to < 1
    # (masked scores keep exp(0) in the softmax, as TF), so check proportionality per pixel
    ratio = y[0, :, 1:15, 1:15] / value[0]
    torch.testing.assert_close(ratio, ratio[:1].expand_as(ratio), rtol=0, atol=1e-12)


@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("chunk", [1, 5, 16, 47, 48, 1000])
def test_chunked_equals_plain(fuse: bool, chunk: int) -> None:
    g = torch.Generator().manual_seed(3)
    f = torch.randn(2, 4, 12, 16, generator=g, dtype=DT)  # 6 x 8 = 48 matching positions
    mask = box_masks(2, 12, 16, seed=4)
    plain, off_p = ContextualAttention(fuse=fuse)(f, f, mask, return_offsets=True)
    chunked, off_c = ContextualAttention(fuse=fuse, chunk_size=chunk)(
        f, f, mask, return_offsets=True
    )
    torch.testing.assert_close(chunked, plain, rtol=0, atol=1e-12)
    assert torch.equal(off_p, off_c)


def test_batch_elements_use_their_own_masks() -> None:
    g = torch.Generator().manual_seed(5)
    f = torch.randn(3, 4, 8, 12, generator=g, dtype=DT)
    mask = box_masks(3, 8, 12, seed=6)
    assert not torch.equal(mask[0], mask[1])
    layer = ContextualAttention(chunk_size=7)
    y = layer(f, f, mask)
    for i in range(3):
        torch.testing.assert_close(
            y[i : i + 1], layer(f[i : i + 1], f[i : i + 1], mask[i : i + 1]), rtol=0, atol=1e-12
        )
    # a 1 x 1 x H x W mask is shared by the batch (the official behaviour)
    shared = layer(f, f, mask[:1])
    torch.testing.assert_close(shared, layer(f, f, mask[:1].expand(3, -1, -1, -1)), rtol=0, atol=0)
    # and with per-sample masks the masks actually matter
    assert (y[1] - shared[1]).abs().max() > 1e-6


def test_float32_close_to_float64() -> None:
    g = torch.Generator().manual_seed(7)
    f = torch.randn(1, 8, 16, 16, generator=g, dtype=DT)
    mask = box_masks(1, 16, 16, seed=8)
    layer = ContextualAttention()
    torch.testing.assert_close(
        layer(f.float(), f.float(), mask.float()).double(), layer(f, f, mask), rtol=0, atol=1e-5
    )


@pytest.mark.parametrize("chunk", [5, None])  # gathered chunks / whole matrix (in-place fuse)
def test_gradients_flow(chunk: int | None) -> None:
    f = torch.randn(1, 4, 8, 8, dtype=DT, requires_grad=True)
    mask = box_masks(1, 8, 8, seed=9)
    torch.autograd.gradcheck(
        lambda t: ContextualAttention(chunk_size=chunk)(t, t, mask), (f,), eps=1e-6, atol=1e-5
    )


@pytest.mark.parametrize("chunk", [None, 7])
@pytest.mark.parametrize("fuse", [True, False])
def test_inference_path_equals_autograd_path(chunk: int | None, fuse: bool) -> None:
    """Without autograd the softmax is masked and flushed in place: same numbers, offsets."""
    g = torch.Generator().manual_seed(11)
    f = torch.randn(2, 4, 8, 12, generator=g, dtype=DT)
    mask = box_masks(2, 8, 12, seed=12)
    layer = ContextualAttention(fuse=fuse, chunk_size=chunk)
    y_grad, off_grad = layer(f.clone().requires_grad_(), f, mask, return_offsets=True)
    with torch.inference_mode():
        y_inf, off_inf = layer(f, f, mask, return_offsets=True)
    torch.testing.assert_close(y_inf, y_grad.detach(), rtol=0, atol=0)
    assert torch.equal(off_inf, off_grad)


def test_subnormal_weights_are_flushed_exactly_at_tiny() -> None:
    """Weights >= the smallest normal float are kept, subnormal ones become 0 (in place path
    against the masked_fill of the autograd path)."""
    tiny = torch.finfo(DT).tiny
    layer = ContextualAttention(softmax_scale=1.0)
    # weights 1, ~tiny (normal), tiny / e (subnormal), 0 (underflow)
    scores = torch.tensor([[[0.0, math.log(tiny) + 1e-9, math.log(tiny) - 1.0, -800.0]]], dtype=DT)
    valid = torch.ones(1, 1, 4, dtype=DT)
    ref = torch.softmax(scores, dim=-1)
    ref = ref.masked_fill(ref < tiny, 0.0)
    with torch.inference_mode():
        got = layer._attention(scores.clone(), valid)
    torch.testing.assert_close(got, ref, rtol=0, atol=0)
    assert got[0, 0, 1] > 0 and got[0, 0, 2] == 0 and got[0, 0, 3] == 0


@pytest.mark.parametrize("chunk", [None, 5])
def test_separate_foreground_and_background_tensors(chunk: int | None) -> None:
    """f is b takes shortcuts (one resize, shared windows): a copy of f gives the same."""
    g = torch.Generator().manual_seed(13)
    f = torch.randn(2, 4, 8, 12, generator=g, dtype=DT)
    mask = box_masks(2, 8, 12, seed=14)
    layer = ContextualAttention(chunk_size=chunk)
    torch.testing.assert_close(layer(f, f.clone(), mask), layer(f, f, mask), rtol=0, atol=1e-12)


def test_channels_last_input() -> None:
    g = torch.Generator().manual_seed(15)
    f = torch.randn(2, 4, 8, 12, generator=g, dtype=DT)
    mask = box_masks(2, 8, 12, seed=16)
    layer = ContextualAttention()
    f_cl = f.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(layer(f_cl, f_cl, mask), layer(f, f, mask), rtol=0, atol=0)


# ----------------------------------------------------------------------------- resize
def test_resize_golden_rows() -> None:
    """neuralgym's align_corners=True downsampling does not take every other row."""
    x = torch.arange(64, dtype=DT).view(1, 1, 64, 1)
    rows = resize_nearest_tf(x, (32, 1))[0, 0, :, 0].long().tolist()
    assert rows == list(range(0, 31, 2)) + list(range(33, 64, 2))
    assert rows != F.interpolate(x, size=(32, 1), mode="nearest")[0, 0, :, 0].long().tolist()


@pytest.mark.parametrize(
    "n_in, n_out", [(256, 64), (64, 32), (14, 7), (10, 5), (7, 7), (5, 9), (3, 1), (100, 13)]
)
def test_resize_matches_tf_formula(n_in: int, n_out: int) -> None:
    x = torch.arange(n_in, dtype=DT).view(1, 1, 1, n_in).expand(2, 3, 4, n_in)
    got = resize_nearest_tf(x, (4, n_out))
    assert got[0, 0, 0].long().tolist() == tf_rows(n_in, n_out)
    half = resize_nearest_tf(x, (4, n_out), align_corners=False)[0, 0, 0].long().tolist()
    assert half == [min(int(math.floor(y * n_in / n_out)), n_in - 1) for y in range(n_out)]


# ----------------------------------------------------------------------------- errors
def test_bad_inputs() -> None:
    layer = ContextualAttention(rate=2)
    x = torch.zeros(1, 2, 8, 8)
    with pytest.raises(ValueError, match="divisible by rate"):
        layer(torch.zeros(1, 2, 7, 8), torch.zeros(1, 2, 7, 8))
    with pytest.raises(ValueError, match="mask must be"):
        layer(x, x, torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="mask batch"):
        layer(torch.zeros(3, 2, 8, 8), torch.zeros(3, 2, 8, 8), torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="same batch and channels"):
        layer(x, torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="fuse=True needs stride=1"):
        ContextualAttention(stride=2, fuse=True)
    with pytest.raises(ValueError, match="chunk_size"):
        ContextualAttention(chunk_size=0)
    with pytest.raises(ValueError, match="resize"):
        ContextualAttention(resize="bilinear")
    with pytest.raises(ValueError, match="norm"):
        ContextualAttention(norm="l1")
    with pytest.raises(ValueError, match="mask_scale"):
        ContextualAttention(mask_scale=0)
    with pytest.raises(ValueError, match=r"N x 1 x 32 x 32 \(4 x b's size"):
        ContextualAttention(mask_scale=4)(x, x, torch.zeros(1, 1, 8, 8))


@pytest.mark.parametrize(
    "usable",
    [[1, 1, 1, 1, 1, 1], [0, 1, 1, 0, 0, 1], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]],
)
def test_paste_skips_positions_unusable_everywhere(usable: list[int]) -> None:
    """The paste product summed over the positions usable in some batch element only equals
    the full product when the attention of the others is 0 (runs of positions kept)."""
    from zoo.layers.contextual_attention import _paste_columns

    g = torch.Generator().manual_seed(13)
    raw = torch.randn(2, 5, 6, generator=g, dtype=DT)
    valid = torch.tensor([usable, [0, 0, 0, 0, 0, 0]], dtype=DT).unsqueeze(1)  # N x 1 x L
    attn = torch.rand(2, 4, 6, generator=g, dtype=DT) * valid  # unusable columns are 0
    ref = torch.einsum("ncl,nql->ncq", raw, attn)
    torch.testing.assert_close(_paste_columns(raw, attn, valid), ref, rtol=0, atol=1e-15)
