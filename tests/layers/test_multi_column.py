"""GMCNN columns and merge against a slow reference written with plain F.pad / F.conv2d /
F.interpolate calls from the official layer lists (shepnerd/inpainting_gmcnn
pytorch/model/net.py), on the same weights; output sizes; parameter count and key layout."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.testing import assert_close

from zoo.layers.multi_column import MultiColumnBranch, MultiColumnMerge, branch_out_channels

DT = torch.float64

# Official per-column entry lists, transcribed: ("conv", stride, dilation, reflect pad) or
# ("up", scale, mode).  The pads are the official EB*_pad_rec values.
_ENC = [(1, 1), (2, 1), (1, 1), (2, 1), (1, 1), (1, 1), (1, 2), (1, 4), (1, 8), (1, 16),
        (1, 1), (1, 1)]  # fmt: skip
OFFICIAL = {
    7: [("conv", s, d, p) for (s, d), p in zip(_ENC, [3, 3, 3, 3, 3, 3, 6, 12, 24, 48, 3, 3])]
    + [("up", 4, "bilinear")],
    5: [("conv", s, d, p) for (s, d), p in zip(_ENC, [2, 2, 2, 2, 2, 2, 4, 8, 16, 32, 2, 2])]
    + [("up", 2, "nearest"), ("conv", 1, 1, 2), ("conv", 1, 1, 2), ("up", 2, "bilinear")],
    3: [("conv", s, d, p) for (s, d), p in zip(_ENC, [1, 1, 1, 1, 1, 1, 2, 4, 8, 16, 1, 1])]
    + [("up", 2, "nearest"), ("conv", 1, 1, 1), ("conv", 1, 1, 1), ("up", 2, "nearest"),
       ("conv", 1, 1, 1), ("conv", 1, 1, 1)],
}  # fmt: skip


def reference_column(x, branch, kernel, norm=False):
    """Slow reference: the official forward loop, with the weights of ``branch[i]``."""
    for i, step in enumerate(OFFICIAL[kernel]):
        if step[0] == "conv":
            _, s, d, p = step
            w, b = branch[i].weight, branch[i].bias
            assert w.shape[-1] == kernel
            x = F.conv2d(F.pad(x, (p, p, p, p), mode="reflect"), w, b, stride=s, dilation=d)
        else:
            _, scale, mode = step
            size = (x.shape[2] * scale, x.shape[3] * scale)
            corners = {"align_corners": True} if mode == "bilinear" else {}
            x = F.interpolate(x, size=size, mode=mode, **corners)
        if norm:
            x = F.instance_norm(x)
        if step[0] == "conv":
            x = F.elu(x)
    return x


def reference_merge(columns, merge):
    x = torch.cat(columns, 1)
    x = F.elu(F.conv2d(F.pad(x, (1,) * 4, mode="reflect"), merge[0].weight, merge[0].bias))
    x = F.conv2d(F.pad(x, (1,) * 4, mode="reflect"), merge[1].weight, merge[1].bias)
    return x.clamp(-1, 1)


def _randomise(module: nn.Module, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=DT) * (0.5 / p[0].numel() ** 0.5))
            if p.dim() == 1:
                p.uniform_(-0.1, 0.1, generator=gen)
    return module


@pytest.fixture(scope="module")
def small_columns():
    """cnum = 4 columns (same structure as cnum = 32, fast in float64)."""
    return {k: _randomise(MultiColumnBranch(k, in_channels=4, cnum=4).to(DT), k) for k in (7, 5, 3)}


@pytest.fixture(scope="module")
def image():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 256, 256, generator=gen, dtype=DT) * 2 - 1
    mask = torch.zeros(1, 1, 256, 256, dtype=DT)
    mask[..., 64:192, 80:200] = 1.0
    return torch.cat([x * (1 - mask), mask], 1)  # official input: masked RGB + mask (1 = hole)


@pytest.mark.parametrize("kernel", [7, 5, 3])
def test_column_matches_reference(small_columns, image, kernel):
    branch = small_columns[kernel]
    out = branch(image)
    expected = reference_column(image, branch, kernel)
    err = (out - expected).abs().max().item()
    assert_close(out, expected, rtol=0, atol=1e-10, msg=f"max |diff| {err:.3e}")
    # output size and width for a 256 input
    assert out.shape == (1, branch_out_channels(kernel, 4), 256, 256)
    assert branch.out_channels == {7: 16, 5: 8, 3: 4}[kernel]


def test_column_instance_norm_option(image):
    branch = _randomise(MultiColumnBranch(3, cnum=2, use_instance_norm=True).to(DT), 9)
    x = image[..., :72, :80]
    assert_close(branch(x), reference_column(x, branch, 3, norm=True), rtol=0, atol=1e-10)


def test_merge_matches_reference(small_columns, image):
    merge = _randomise(MultiColumnMerge(28, 2, 3).to(DT), 11)
    cols = [small_columns[k](image) for k in (7, 5, 3)]
    out = merge(cols)
    assert out.shape == (1, 3, 256, 256)
    assert_close(out, reference_merge(cols, merge), rtol=0, atol=1e-10)
    # make the clamp bite on both sides
    with torch.no_grad():
        merge[1].bias.copy_(torch.tensor([5.0, -5.0, 0.0]))
    out = merge(cols)
    assert (out[:, 0] == 1).all() and (out[:, 1] == -1).all() and out[:, 2].abs().max() < 1
    assert_close(out, reference_merge(cols, merge), rtol=0, atol=1e-10)


class _Generator(nn.Module):
    """GMCNN(in_channels=4, out_channels=3, cnum) assembled from the blocks, official names."""

    def __init__(self, cnum: int = 32) -> None:
        super().__init__()
        self.EB1 = MultiColumnBranch(7, cnum=cnum)
        self.EB2 = MultiColumnBranch(5, cnum=cnum)
        self.EB3 = MultiColumnBranch(3, cnum=cnum)
        self.decoding_layers = MultiColumnMerge(7 * cnum, cnum // 2, 3)


def test_full_generator_parameter_count_and_official_keys():
    gen = _Generator(32)
    # the official GMCNN(4, 3, cnum=32) has 12,561,891 parameters (models.md section 7,
    # and counted by instantiating pytorch/model/net.py)
    assert sum(p.numel() for p in gen.parameters()) == 12_561_891
    per_branch = {
        name: sum(p.numel() for p in getattr(gen, name).parameters())
        for name in ("EB1", "EB2", "EB3", "decoding_layers")
    }
    assert sum(per_branch.values()) == 12_561_891
    expected = {
        "EB1": [*range(12)],
        "EB2": [*range(12), 13, 14],
        "EB3": [*range(12), 13, 14, 16, 17],
        "decoding_layers": [0, 1],
    }
    keys = {f"{b}.{i}.{t}" for b, idx in expected.items() for i in idx for t in ("weight", "bias")}
    assert set(gen.state_dict()) == keys
    assert gen.state_dict()["EB2.13.weight"].shape == (64, 128, 5, 5)
    assert gen.state_dict()["EB3.17.weight"].shape == (32, 32, 3, 3)
    assert gen.state_dict()["decoding_layers.0.weight"].shape == (16, 224, 3, 3)
    assert gen.state_dict()["EB1.9.weight"].shape == (128, 128, 7, 7)
    assert gen.EB1[9].dilation == (16, 16) and gen.EB2[3].stride == (2, 2)


def test_bad_inputs():
    with pytest.raises(ValueError, match="7, 5, 3"):
        MultiColumnBranch(9)
    branch = MultiColumnBranch(7, cnum=2)
    with pytest.raises(ValueError, match="196"):
        branch(torch.zeros(1, 4, 128, 128))
    with pytest.raises(ValueError, match="N x 4"):
        branch(torch.zeros(1, 3, 256, 256))
    merge = MultiColumnMerge(7, 1, 3)
    with pytest.raises(ValueError, match="multiples of 4"):
        merge([torch.zeros(1, 4, 8, 8), torch.zeros(1, 3, 8, 9)])
