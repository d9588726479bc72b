"""Efficiency profile and speed benchmark: FLOP counts, timing, memory probes, reports."""

from __future__ import annotations

import itertools
import math
import mmap
import statistics
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from benchmarks import profile, speed
from benchmarks.profile import PeakMemory, count_flops, model_sizes, time_runs

CPU = torch.device("cpu")
MIB = 2**20


# ---------------------------------------------------------------------- FLOP counting
def _conv_macs_by_loop(x: torch.Tensor, weight: torch.Tensor, stride, padding, dilation, groups):
    """Multiply-adds of a convolution, counted output element by output element."""
    n, cin, h, w = x.shape
    cout, cin_g, k, _ = weight.shape
    hout = (h + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    wout = (w + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    macs = 0
    for _b, _o, _i, _j in itertools.product(range(n), range(cout), range(hout), range(wout)):
        macs += cin_g * k * k  # one window of the group's input channels (padding included)
    return macs


@pytest.mark.parametrize(
    "stride,padding,dilation,groups", [(1, 1, 1, 1), (2, 0, 1, 1), (1, 2, 2, 2), (2, 3, 3, 4)]
)
@pytest.mark.parametrize("size", [7, 12])
def test_conv_flops_are_twice_the_multiply_adds(stride, padding, dilation, groups, size):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, size, size, generator=g, dtype=torch.float64)
    weight = torch.randn(4, 8 // groups, 3, 3, generator=g, dtype=torch.float64)
    options = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    flops, out = count_flops(lambda: F.conv2d(x, weight, **options))
    assert flops == 2 * _conv_macs_by_loop(x, weight, stride, padding, dilation, groups)
    assert out.shape[0] == 2


@pytest.mark.parametrize("m,k,n,batch", [(3, 5, 7, 1), (16, 4, 9, 3)])
def test_matmul_flops(m, k, n, batch):
    a, b = torch.randn(batch, m, k), torch.randn(batch, k, n)
    flops, _ = count_flops(lambda: a @ b)
    macs = sum(k for _ in range(batch) for _ in range(m) for _ in range(n))
    assert flops == 2 * macs


def test_model_flops_add_up_over_layers_and_ignore_elementwise_ops():
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 2, 1), nn.Tanh(), nn.Flatten()
    )
    x = torch.randn(1, 3, 10, 10)
    with torch.no_grad():
        flops, _ = count_flops(lambda: net(x))
    assert flops == 2 * (6 * 3 * 9 * 100 + 2 * 6 * 100)  # biases and activations not counted


# ---------------------------------------------------------------------- timing
class FakeClock:
    """``clock()`` returns the time; each call of ``work()`` advances it by the next step."""

    def __init__(self, steps: list[float]) -> None:
        self.now, self.steps, self.calls = 0.0, iter(steps), 0

    def __call__(self) -> float:
        return self.now

    def work(self) -> None:
        self.calls += 1
        self.now += next(self.steps)


def test_time_runs_takes_the_median_after_one_warm_up():
    clock = FakeClock([100.0, 3.0, 1.0, 2.0, 5.0, 4.0])  # 100: the warm-up, not timed
    t = time_runs(clock.work, CPU, 5, clock=clock)
    assert clock.calls == 6 and t.times == [3.0, 1.0, 2.0, 5.0, 4.0]
    assert t.median == 3.0 and t.runs == 5


@pytest.mark.parametrize(
    "budget,min_runs,expected",
    [
        (4.0, 1, [3.0, 1.0, 2.0]),  # 3 + 1 is not over 4; 3 + 1 + 2 is
        (2.5, 1, [3.0]),
        (2.5, 2, [3.0, 1.0]),  # at least two runs
        (None, 1, [3.0, 1.0, 2.0, 5.0]),
    ],
)
def test_budget_stops_the_timed_runs(budget, min_runs, expected):
    clock = FakeClock([9.0, 3.0, 1.0, 2.0, 5.0])
    t = time_runs(clock.work, CPU, 4, budget=budget, min_runs=min_runs, clock=clock)
    assert t.times == expected and t.median == statistics.median(expected)


def test_time_runs_counts_the_warm_up_flops():
    x, w = torch.randn(1, 2, 5, 5), torch.randn(3, 2, 3, 3)
    t = time_runs(lambda: F.conv2d(x, w), CPU, 2)
    assert t.flops == 2 * 3 * 2 * 9 * 3 * 3 and t.runs == 2 and t.median >= 0


# ---------------------------------------------------------------------- memory
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the CPU probe reads /proc"
)


def _touch(mib: int) -> torch.Tensor:
    return torch.ones(mib * MIB // 4)  # float32, every page written


@linux_only
@pytest.mark.parametrize("mib", [48, 96])
def test_cpu_peak_is_the_resident_growth_of_the_block(mib):
    with PeakMemory(CPU) as mem:
        x = _touch(mib)
        del x
    assert mem.peak == pytest.approx(mib * MIB, abs=12 * MIB)


@linux_only
def test_cpu_peak_is_the_high_water_mark_not_the_sum():
    """Three 64 MiB blocks, never two at once, give a 64 MiB peak.  The blocks are anonymous
    mmaps unmapped on close, so the memory surely leaves the process between them (malloc may
    keep freed memory mapped, which flaked this test in CI with tensors)."""
    with PeakMemory(CPU) as mem:
        for _ in range(3):
            block = mmap.mmap(-1, 64 * MIB)
            for offset in range(0, 64 * MIB, 4096):  # touch every page
                block[offset] = 1
            block.close()
    assert mem.peak == pytest.approx(64 * MIB, abs=12 * MIB)


@linux_only
def test_memory_freed_earlier_is_counted_again():
    """malloc_trim before the probe: a block reusing freed memory still shows its peak."""
    x = _touch(80)
    del x
    with PeakMemory(CPU) as mem:
        y = _touch(80)
        del y
    assert mem.peak == pytest.approx(80 * MIB, abs=12 * MIB)


# ---------------------------------------------------------------------- sizes and rows
def test_fixed_size_models_are_profiled_at_their_size_only():
    assert model_sizes("context_encoder", [256, 512]) == [
        (128, "fixed-size architecture: 128 x 128 only")
    ]
    assert model_sizes("deepfill_v2", [256, 512]) == [(256, ""), (512, "")]
    assert model_sizes("telea", [0, 64]) == [(None, "size 0 is not positive"), (64, "")]


def test_global_critics_are_built_for_the_profiled_size():
    small = profile.build_model("glcic", 128).num_params()
    large = profile.build_model("glcic", 256).num_params()
    assert small["generator"] == large["generator"]
    assert small != large  # the global critic's fully connected layer sees a larger map


def test_inputs_hole_is_the_centred_half_square():
    image, mask = profile.inputs(2, 16, CPU)
    assert image.min() >= -1 and image.max() <= 1
    assert mask.sum().item() == 2 * 8 * 8 and mask[0, 0, 4:12, 4:12].all()


def test_speed_one_flops_scale_with_batch_and_training_costs_more():
    row = speed.speed_one("deepfill_v2", "cpu", 1, None, 2, size=32)
    b1, b8 = row["infer"][1], row["infer"][8]
    # forward FLOPs are linear in the batch, up to the batch-independent per-forward weight
    # transforms (the phase kernels of DeepFill's upsampling convolutions: ~0.5 % here)
    assert b1["flops"] > 0 and b8["flops"] == pytest.approx(8 * b1["flops"], rel=0.01)
    assert b8["flops"] < 8 * b1["flops"]
    train = row["train"]
    assert train["problem"] == "" and train["d_steps"] == 1 and train["batch"] == 2
    # backward ~ 2 x forward for the generator; plus the critic's passes
    assert train["flops"] > 3 * 2 * b1["flops"]


# ---------------------------------------------------------------------- reports
def _env():
    return {
        "date": "2026-01-01T00:00:00",
        "device": "cpu (test)",
        "torch": "x",
        "threads": "1",
        "omp": "1",
        "cpus": "2",
        "python": "3",
    }


def test_profile_report_rows():
    rows = [
        {
            "model": "m",
            "size": 256,
            "params": {"generator": 1234567, "discriminator.patch": 89},
            "weights_bytes": 5 * MIB,
            "flops": 2_500_000_000,
            "latency": 0.0421,
            "runs": 10,
            "peak": 300 * MIB,
            "note": "",
        },
        {"model": "ce", "size": "-", "skipped": "size 0 is not positive"},
    ]
    text = profile.render(rows, _env(), ("1", "2"), 10)
    assert text.startswith("<!-- Generated by `python -m benchmarks.profile`")
    assert "| m | 256 | 1,234,567 | patch 89 | 2.50 | 42.1 ms | 300 MiB | 5 MiB |  |" in text
    assert "| ce | - | | | | | | | size 0 is not positive |" in text
    assert "median of 10 passes" in text and "cpu (test)" in text


def test_speed_report_ratios():
    rows = [
        {
            "model": "m",
            "size": 256,
            "infer": {
                1: {"median": 0.5, "runs": 5, "flops": 10**10, "peak": MIB},
                8: {"median": 2.0, "runs": 5, "flops": 8 * 10**10, "peak": 8 * MIB},
            },
            "train": {
                "median": 10.0,
                "runs": 2,
                "flops": 4 * 10**11,
                "peak": 64 * MIB,
                "d_steps": 5,
                "batch": 8,
                "problem": "",
            },
        }
    ]
    args = type("A", (), {"runs": 5, "budget": 30.0, "size": 256})()
    rates = {"conv": 80.0, "matmul": 100.0}
    text = speed.render(rows, rates, [rates, rates], None, _env(), ("1", "2"), args)
    # batch 1: 10 GFLOP in 0.5 s = 20 GFLOP/s = 25% of 80; batch 8: 40 GFLOP/s, 50%, 40%
    assert "| m | 256 | 10.00 | 500.0 ms | 20.0 | 25% | 2.00 s | 4.00 | 40.0 | 50% | 40% " in text
    # training: 400 GFLOP in 10 s = 40 GFLOP/s
    assert "| m | 256 | 5 | 10.00 s | 2 | 400.0 | 40.0 | 50% | 40% | 64 MiB |  |" in text


def test_profile_command_line_end_to_end(tmp_path):
    out = tmp_path / "eff.md"
    rows = profile.main(["--models", "mean_fill,telea", "--sizes", "32", "--output", str(out)])
    assert [r["model"] for r in rows] == ["mean_fill", "telea"]
    for r in rows:
        assert r["flops"] == 0 and r["params"] == {"generator": 0} and r["runs"] == 10
        assert 0 < r["latency"] < 5
    assert "| mean_fill | 32 | 0 | - | 0 |" in out.read_text()


def test_speed_command_line_end_to_end(tmp_path):
    out = tmp_path / "speed.md"
    result = speed.main(
        ["--models", "mean_fill", "--size", "32", "--runs", "2", "--score-pairs", "4"]
        + ["--score-batch", "2", "--output", str(out)]
    )
    s = result["scoring"]
    assert s["pairs"] == 4 and s["size"] == 32
    assert s["pairs_per_s"] == pytest.approx(4 / s["median"])
    assert all(r > 0 and math.isfinite(r) for r in result["rates"].values())
    text = out.read_text()
    assert "| mean_fill | 32 | | | | | | | | | not trainable |" in text
    assert "pairs/s" in text


def test_flops_of_spectral_norm_layers_under_inference_mode():
    """The stock counter's module hooks fail on parametrized modules in inference mode."""
    from torch.nn.utils.parametrizations import spectral_norm

    torch.manual_seed(0)
    conv = spectral_norm(nn.Conv2d(3, 4, 3)).eval()
    x = torch.randn(1, 3, 8, 8)
    with torch.inference_mode():
        flops, out = count_flops(lambda: conv(x))
    assert flops == 2 * 4 * 3 * 9 * 6 * 6
    with torch.no_grad():
        stock = FlopCounterMode(display=False)
        with stock:
            expected = conv(x)
    assert stock.get_total_flops() == flops
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_flops_through_a_gradient_penalty():
    """autograd.grad(create_graph=True) inside the count (WGAN-GP) works; the input gradient
    of a convolution costs what the convolution costs."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, bias=False)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)

    def penalty():
        (grad,) = torch.autograd.grad(conv(x).sum(), x, create_graph=True)
        return grad.square().sum()

    flops, value = count_flops(penalty)
    forward = 2 * 2 * 4 * 3 * 9 * 6 * 6
    assert flops == 2 * forward and value > 0


def test_global_counter_equals_the_stock_counter_on_a_model():
    model = profile.build_model("deepfill_v2", 32, cnum=8).eval()
    image, mask = profile.inputs(1, 32, CPU)
    with torch.no_grad():
        stock = FlopCounterMode(display=False)
        with stock:
            model(image, mask)
        flops, _ = count_flops(lambda: model(image, mask))
    assert flops == stock.get_total_flops() > 0
