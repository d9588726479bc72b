"""The native gated-activation kernel (zoo/layers/native.py) against float64 references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from zoo.layers import gated_conv, native

pytestmark = pytest.mark.skipif(
    native.load() is None, reason="native kernel unavailable (no C compiler or switched off)"
)


@pytest.fixture(autouse=True)
def one_thread():
    """The kernel runs only with one intra-op thread (zoo/layers/native.py)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


ACTIVATIONS = {
    "elu": lambda: nn.ELU(),
    "elu_alpha_0.5": lambda: nn.ELU(alpha=0.5),
    "relu": lambda: nn.ReLU(),
    "identity": lambda: nn.Identity(),
}


def reference(y: torch.Tensor, c: int, act: nn.Module) -> torch.Tensor:
    """Float64 ``act(feature) * sigmoid(gate)`` written out."""
    y = y.double()
    f, g = y[:, :c], y[:, c:]
    if isinstance(act, nn.ELU):
        f = torch.where(f > 0, f, act.alpha * (torch.exp(f) - 1))
    elif isinstance(act, nn.ReLU):
        f = f.clamp_min(0)
    return f / (1 + torch.exp(-g))


def ulp(x: torch.Tensor) -> torch.Tensor:
    """Spacing of float32 numbers at |x| (float64)."""
    e = torch.floor(torch.log2(x.abs().clamp_min(torch.finfo(torch.float32).tiny)))
    return torch.exp2(e - 23)


def test_exp_within_one_and_a_half_ulp():
    x = torch.linspace(-87.3, 88.3, 4_000_001)
    got = native.exp_f32(x).double()
    exact = x.double().exp()
    err = ((got - exact).abs() / ulp(exact)).max().item()
    assert err <= 1.5, err
    assert native.exp_f32(torch.zeros(3)).tolist() == [1.0, 1.0, 1.0]


def test_exp_clamps_and_propagates_nan():
    x = torch.tensor([-math.inf, -1000.0, 1000.0, math.inf, math.nan])
    got = native.exp_f32(x)
    bounds = torch.tensor([-87.33654, 88.37626]).double().exp()  # exp of the float32 bounds
    tiny, big = bounds.tolist()
    assert got[:2].tolist() == pytest.approx([tiny, tiny], rel=1e-6)  # normal floats, not 0
    assert got[2:4].tolist() == pytest.approx([big, big], rel=1e-6)  # finite, not inf
    assert torch.isnan(got[4])


@pytest.mark.parametrize("act_name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("n,c,h,w", [(1, 24, 9, 7), (3, 3, 5, 6), (2, 33, 4, 4), (1, 1, 8, 3)])
def test_matches_float64_reference(act_name, layout, n, c, h, w):
    gen = torch.Generator().manual_seed(c * 100 + h)
    y = torch.randn(n, 2 * c, h, w, generator=gen) * 4
    y[0, 0, 0, :3] = torch.tensor([0.0, -1e-6, 1e-6])  # ELU's branch point and tiny values
    if layout == "channels_last":
        y = y.contiguous(memory_format=torch.channels_last)
    act = ACTIVATIONS[act_name]()
    with torch.no_grad():
        got = native.gated_activation(y, c, act)
    assert got is not None
    assert got.shape == (n, c, h, w) and got.dtype == torch.float32
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    assert got.is_contiguous(memory_format=fmt)
    want = reference(y, c, act)
    # exp within 1.5 ulp, then a subtraction, a division and a product: a few ulp of the
    # operands (|f| <= ~16), i.e. ~1e-6 absolute at most
    torch.testing.assert_close(got.double(), want, rtol=5e-7, atol=2e-7)


def test_gated_activation_uses_kernel_and_matches_pytorch_ops(monkeypatch):
    y = (torch.randn(2, 48, 16, 12) * 3).contiguous(memory_format=torch.channels_last)
    act = nn.ELU()
    with torch.inference_mode():
        fused = gated_conv.gated_activation(y.clone(), 24, act)
        monkeypatch.setenv(native.ENV_SWITCH, "0")
        assert native.gated_activation(y, 24, act) is None
        plain = gated_conv.gated_activation(y.clone(), 24, act)
    assert fused.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fused, plain, rtol=5e-7, atol=2e-7)
    assert not torch.equal(fused, plain)  # different arithmetic: the kernel did run


def test_nan_propagates():
    y = torch.zeros(1, 4, 1, 2)
    y[0, 0, 0, 0] = math.nan  # feature
    y[0, 3, 0, 1] = math.nan  # gate
    for act in (nn.ELU(), nn.ReLU()):
        out = native.gated_activation(y, 2, act)
        assert torch.isnan(out[0, 0, 0, 0]) and torch.isnan(out[0, 1, 0, 1])
        assert out[0, 1, 0, 0] == 0 and out[0, 0, 0, 1] == 0


def test_not_used_where_it_does_not_apply():
    act = nn.ELU()
    y = torch.randn(1, 8, 4, 4)
    with torch.enable_grad():  # autograd needs the PyTorch ops
        assert native.gated_activation(y.clone().requires_grad_(), 4, act) is None
    assert native.gated_activation(y.double(), 4, act) is None  # float32 only
    assert native.gated_activation(y[..., ::2], 4, act) is None  # not dense
    assert native.gated_activation(y, 4, nn.GELU()) is None  # activation without a code
    assert native.gated_activation(y, 3, act) is None  # channels != half
    assert native.gated_activation(y, 4, act) is not None
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)  # PyTorch's parallel ops are as fast (module docstring)
        assert native.gated_activation(y, 4, act) is None
    finally:
        torch.set_num_threads(before)


def test_missing_or_broken_compiler_warns_and_falls_back(monkeypatch):
    monkeypatch.setattr(native, "_compiler", lambda: None)
    with pytest.warns(RuntimeWarning, match="no C compiler"):
        assert native._compile() == (None, "no C compiler found")
    monkeypatch.setattr(native, "_compiler", lambda: "false")  # exits 1 for every flag set
    with pytest.warns(RuntimeWarning, match="building the native gated activation failed"):
        assert native._compile() == (None, "the build failed")
    assert native.status().startswith("native C kernel (")  # the loaded kernel is untouched
    torch.set_num_threads(2)
    assert native.status().startswith("PyTorch ops (2 intra-op threads")


def test_unloadable_library_warns_and_falls_back(monkeypatch):
    def refuse(path):  # what dlopen says for a temp folder mounted noexec
        raise OSError(f"{path}: failed to map segment from shared object")

    monkeypatch.setattr(native.ctypes, "CDLL", refuse)
    with pytest.warns(RuntimeWarning, match="failed to map segment"):
        assert native._compile() == (None, "the build failed")


def test_switch_off(monkeypatch):
    monkeypatch.setenv(native.ENV_SWITCH, "0")
    assert native.load() is None
    assert native.status().startswith("off (")
    y = torch.randn(1, 8, 4, 4)
    assert native.gated_activation(y, 4, nn.ELU()) is None


def test_deepfill_v2_forward_with_and_without_kernel(monkeypatch):
    """The whole generator (all its gated layers, upsampling phases included) through the
    kernel against the PyTorch ops."""
    import zoo

    torch.manual_seed(0)
    model = zoo.create_model("deepfill_v2").eval()
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    mask = torch.zeros(2, 1, 64, 64)
    mask[0, :, 16:48, 16:48] = 1
    mask[1, :, 8:30, 20:60] = 1
    calls = []
    kernel = native.gated_activation

    def counted(*args):
        out = kernel(*args)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(native, "gated_activation", counted)
    with torch.inference_mode():
        fused = model(image, mask)
        assert calls and all(calls)  # every gated layer ran the kernel
        monkeypatch.setenv(native.ENV_SWITCH, "0")
        plain = model(image, mask)
    torch.testing.assert_close(fused, plain, rtol=0, atol=1e-6)  # measured 4e-8
