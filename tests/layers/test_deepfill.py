"""The shared DeepFill pieces (zoo/layers/deepfill.py): GenConv2d against plain ``F.conv2d`` on
an input padded by hand (TF 'SAME' from its formula, or daa233's symmetric padding), with the
nearest x2 upsampling written as ``repeat_interleave``; DeepFillStage's channel arithmetic and
layer order; the tables' structure.  Model-level counts (3,601,542 for v1 and 4,052,478 for
v2) and converter layouts are tested in tests/models/test_deepfill_v{1,2}.py."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.testing import assert_close

from zoo.layers.deepfill import (
    STAGE1,
    STAGE2,
    STAGE2_AFTER_ATTENTION,
    STAGE2_ATTENTION,
    STAGE2_CONV,
    STAGE2_MERGE,
    DeepFillStage,
    GenConv2d,
)

DT = torch.float64


def tf_same(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TF 'SAME' (before, after) padding along one axis, from the TF formula."""
    total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize("padding", ["same", "symmetric"])
@pytest.mark.parametrize(
    "k, s, d, act, up",
    [(5, 1, 1, "elu", False), (3, 2, 1, "elu", False), (3, 1, 4, "elu", False),
     (3, 1, 1, "relu", False), (3, 1, 1, None, False), (3, 1, 1, "elu", True),
     (3, 2, 2, None, True)],
)  # fmt: skip
def test_gen_conv_matches_plain_conv(padding, k, s, d, act, up) -> None:
    torch.manual_seed(0)
    layer = GenConv2d(4, 6, k, s, d, activation=act, upsample=up, padding=padding).to(DT)
    with torch.no_grad():
        layer.conv.bias.uniform_(-0.5, 0.5)  # initialised to 0 (TF default): make it count
    x = torch.randn(2, 4, 10, 14, dtype=DT)
    y = x.repeat_interleave(2, 2).repeat_interleave(2, 3) if up else x  # nearest x2
    if padding == "same":
        (top, bottom), (left, right) = tf_same(y.shape[2], k, s, d), tf_same(y.shape[3], k, s, d)
    else:
        top = bottom = left = right = d * (k - 1) // 2
    padded = F.pad(y, (left, right, top, bottom))
    ref = F.conv2d(padded, layer.conv.weight, layer.conv.bias, s, 0, d)
    ref = {"elu": F.elu, "relu": F.relu, None: lambda t: t}[act](ref)
    assert_close(layer(x), ref, rtol=0, atol=1e-12)
    assert layer(x).shape[-2:] == (math.ceil(y.shape[2] / s), math.ceil(y.shape[3] / s))


def test_gen_conv_init_and_errors() -> None:
    torch.manual_seed(1)
    layer = GenConv2d(32, 64, 3)
    bound = math.sqrt(6.0 / ((32 + 64) * 9))  # Glorot uniform
    assert layer.conv.weight.abs().max() <= bound and layer.conv.weight.abs().max() > 0.9 * bound
    assert torch.equal(layer.conv.bias, torch.zeros(64))
    with pytest.raises(ValueError, match="activation"):
        GenConv2d(3, 3, 3, activation="tanh")
    with pytest.raises(ValueError, match="padding"):
        GenConv2d(3, 3, 3, padding="reflect")


class _Record(nn.Module):
    """A stand-in conv block: records its arguments and its calls."""

    def __init__(self, c_in, c_out, k, s, d, *, activation, upsample, calls) -> None:
        super().__init__()
        self.args = (c_in, c_out, k, s, d, activation, upsample)
        self.calls = calls

    def forward(self, x):
        self.calls.append(self)
        return x


def test_stage_channels_and_order() -> None:
    calls: list[_Record] = []

    def factory(*args, **kwargs):
        return _Record(*args, **kwargs, calls=calls)

    stage = DeepFillStage(STAGE2, width=24, in_channels=3, layer=factory)
    assert [name for name, _ in stage.named_children()] == [row[0] for row in STAGE2]
    width = {0.5: 12, 1: 24, 2: 48, 4: 96, 8: 192}
    for name, c_in, c_out, k, s, d, act in STAGE2:
        got = getattr(stage, name).args
        want_in = 3 if c_in == 0 else width[c_in]
        want_out = 3 if c_out == 0 else width[c_out]
        assert got == (want_in, want_out, k, s, d, act, name.endswith("_upsample")), name
    for part in (STAGE2_CONV, STAGE2_ATTENTION, STAGE2_AFTER_ATTENTION, STAGE2_MERGE):
        calls.clear()
        stage.run(torch.zeros(1), part)
        assert [c.args for c in calls] == [getattr(stage, row[0]).args for row in part]
    with pytest.raises(ValueError, match="width"):
        DeepFillStage(STAGE1, width=5, in_channels=5, layer=factory)


def test_tables_structure() -> None:
    names = [row[0] for row in STAGE1 + STAGE2]
    assert len(names) == len(set(names)) == 42
    assert STAGE2 == STAGE2_CONV + STAGE2_ATTENTION + STAGE2_AFTER_ATTENTION + STAGE2_MERGE
    for table in (STAGE1, STAGE2_CONV):  # two stride-2 convs, dilations 2, 4, 8, 16 at 1/4
        assert [row[4] for row in table if row[4] != 1] == [2, 2]
        assert [row[5] for row in table if row[5] != 1] == [2, 4, 8, 16]
    upsample = [row for row in STAGE1 + STAGE2 if row[0].endswith("_upsample")]
    assert len(upsample) == 4 and all(row[3:6] == (3, 1, 1) for row in upsample)
    assert [row[6] for row in STAGE1 + STAGE2 if row[6] != "elu"] == [None, "relu", None]
    # stage 2 merges the two branches: allconv11 reads both 4c outputs
    assert STAGE2_CONV[-1][2] + STAGE2_AFTER_ATTENTION[-1][2] == STAGE2_MERGE[0][1]


@pytest.mark.parametrize("padding", ["same", "symmetric"])
@pytest.mark.parametrize("act, up", [("elu", True), ("relu", True), (None, True), ("elu", False)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_gen_conv_gradients_layouts_and_inference(padding, act, up, channels_last) -> None:
    """In-place activations and the phase-convolution upsampling keep the gradients of the
    plain form (interpolate, pad, conv, out-of-place activation), in either memory layout."""
    torch.manual_seed(1)
    layer = GenConv2d(3, 5, 3, 1, 1, activation=act, upsample=up, padding=padding).to(DT)
    with torch.no_grad():
        layer.conv.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 3, 6, 5, dtype=DT)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out = layer(x1)
    y = F.interpolate(x2, scale_factor=2, mode="nearest") if up else x2
    ref = F.conv2d(F.pad(y, (1, 1, 1, 1)), layer.conv.weight, layer.conv.bias)
    ref = {"elu": F.elu, "relu": F.relu, None: lambda t: t}[act](ref)
    assert_close(out, ref, rtol=0, atol=1e-12)
    g = torch.randn_like(ref)
    gx1, gw1 = torch.autograd.grad(out, (x1, layer.conv.weight), g)
    gx2, gw2 = torch.autograd.grad(ref, (x2, layer.conv.weight), g)
    assert_close(gx1, gx2, rtol=0, atol=1e-12)
    assert_close(gw1, gw2, rtol=0, atol=1e-11)
    with torch.inference_mode():
        assert_close(layer(x), out.detach(), rtol=0, atol=0)
