"""Efficiency profile of every registered model: parameters, FLOPs, latency, peak memory.

``python -m benchmarks.profile [--models a,b] [--sizes 256 512] [--runs 10] [--device cpu]``
writes ``reports/efficiency.md`` (generated; do not edit by hand).

For each model and image side S (square, batch 1, float32, a centred S/2 x S/2 hole):

- **parameters**: trainable parameters of the generator and of each discriminator
  (``InpaintModel.num_params``); models with a global critic built for one image side
  (an ``image_size`` argument: GLCIC, DeepFill v1, GMCNN) are built for S, so their
  discriminator counts are those of a model trained at S;
- **FLOPs**: ``torch.utils.flop_counter.FlopCounterMode`` (total only, without its per-module
  hooks: :class:`GlobalFlopCounter`) over one forward pass of the model in eval mode: matrix
  products and convolutions (transposed too), counted as
  2 x multiply-adds; element-wise operations, pooling, normalisation and the softmax are not
  counted.  The baselines (mean fill, OpenCV Telea) do no such operation: 0;
- **latency**: median wall time of ``--runs`` (>= 10) forward passes after one warm-up pass,
  ``torch.inference_mode``; CUDA is synchronised around each pass;
- **peak memory** of a forward pass, on top of what was resident before it (weights, inputs):
  CUDA ``torch.cuda.max_memory_allocated() - torch.cuda.memory_allocated()`` (tensors only,
  the caching allocator's reserve excluded); CPU: the growth of the process's resident set at
  its peak, ``VmHWM`` after the pass (the high-water mark is reset by writing ``5`` to
  ``/proc/self/clear_refs`` just before, after glibc's ``malloc_trim(0)`` returned the
  allocator's free memory) minus ``VmRSS`` before, Linux only; the maximum over the timed
  passes (the warm-up's one-time allocations are left out).  Every (model, S) runs in a
  fresh interpreter (spawn), so memory that an earlier model freed, and the C allocator
  kept, cannot hide a later peak; the weights' size is a column of its own.

Sizes: a fixed-size architecture (Context Encoder, MSNPS: 128 x 128) is profiled at its size
only, and the table says so.  MSNPS: the row is its content network (the Context Encoder
network; ``texture_iters=0``), and its texture step (multi-scale neural patch synthesis, an
L-BFGS optimisation per image, default settings, VGG-19 with random weights: the cost does
not depend on the weights) is timed separately, in seconds per image (median of
``--texture-runs``).

``torch.set_flush_denormal(True)`` is set as in the benchmark harness (denormal floats made
CPU GAN steps ~10x slower).  The helpers here (environment, timing, memory probes, FLOP
counting, model construction) are shared with :mod:`benchmarks.speed`.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as _dt
import math
import multiprocessing
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

import zoo
from zoo._registry import accepts
from zoo.layers import native

__all__ = [
    "REPORT",
    "environment",
    "build_model",
    "model_sizes",
    "inputs",
    "count_flops",
    "PeakMemory",
    "Timing",
    "time_runs",
    "run_isolated",
    "profile_one",
    "render",
    "main",
]

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "reports" / "efficiency.md"
MIN_RUNS = 10  # the brief's minimum number of timed passes for the latency


# ------------------------------------------------------------------ environment
def load_average() -> str:
    """The 1, 5 and 15 minute load averages (Linux), or ``n/a``."""
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "n/a"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device) -> dict[str, str]:
    """What the numbers depend on, for a report header."""
    return {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "device": f"{device.type} ({device_name(device)})",
        "torch": torch.__version__,
        "threads": str(torch.get_num_threads()),
        "omp": os.environ.get("OMP_NUM_THREADS", "unset"),
        "cpus": str(os.cpu_count()),
        "python": platform.python_version(),
        "native": native.status(),
    }


def header_lines(env: dict[str, str], load_before: str, load_after: str) -> list[str]:
    return [
        f"- generated: {env['date']}",
        f"- device: {env['device']}",
        f"- torch {env['torch']}, Python {env['python']}; intra-op threads {env['threads']} "
        f"(OMP_NUM_THREADS={env['omp']}); {env['cpus']} CPUs",
        f"- gated activation (DeepFill v2, inference): {env.get('native', 'not recorded')}",
        f"- load average (1, 5, 15 min) {load_before} before / {load_after} after; the CPU is "
        "shared with other jobs, so CPU timings are noisy (medians are reported)",
    ]


# ------------------------------------------------------------------ models and inputs
def build_model(name: str, size: int, **overrides: Any) -> zoo.InpaintModel:
    """Model ``name`` with its default (paper) settings, seeded; VGG losses with random
    weights (``vgg="random"``: the ImageNet files are not needed to measure cost); a global
    critic built for ``size`` where the model has an ``image_size`` argument."""
    kwargs: dict[str, Any] = {}
    if accepts(name, "vgg"):
        kwargs["vgg"] = "random"
    if accepts(name, "image_size"):
        kwargs["image_size"] = size
    kwargs.update(overrides)
    torch.manual_seed(0)
    return zoo.create_model(name, **kwargs)


def model_sizes(name: str, requested: Sequence[int]) -> list[tuple[int | None, str]]:
    """``(size, note)`` per requested side: ``(None, why)`` for a side the model cannot take;
    a fixed-size model gets its own side once, with a note."""
    model = build_model(name, max(requested))
    if model.input_size is not None:
        fixed = model.input_size
        return [(fixed, f"fixed-size architecture: {fixed} x {fixed} only")]
    out = []
    for s in requested:
        if s < 1:
            out.append((None, f"size {s} is not positive"))
        else:
            out.append((s, ""))
    return out


def inputs(n: int, size: int, device: torch.device, seed: int = 0):
    """Seeded images in [-1, 1] and a centred S/2 x S/2 hole (what every model accepts)."""
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    mask = torch.zeros(n, 1, size, size)
    q = size // 4
    mask[..., q : q + size // 2, q : q + size // 2] = 1
    return image.to(device), mask.to(device)


def tensor_bytes(module: torch.nn.Module) -> int:
    """Bytes of the parameters and buffers of ``module``."""
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))


# ------------------------------------------------------------------ measurements
class _GlobalTotal:
    """Stands in for FlopCounterMode's module tracker: every count goes to "Global"."""

    parents = frozenset({"Global"})

    def __enter__(self) -> _GlobalTotal:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class GlobalFlopCounter(FlopCounterMode):
    """``FlopCounterMode`` (its formulas and dispatch) counting the total only.

    The stock mode also attributes FLOPs to modules through global module and gradient hooks
    (``ModuleTracker``); those hooks fail inside ``torch.autograd.grad`` (the WGAN-GP gradient
    penalty of DeepFill v1 and GMCNN: "A leaf node was passed to _will_engine_execute_node")
    and on spectral-norm modules under ``torch.inference_mode``.  The total is the same.
    """

    def __init__(self) -> None:
        super().__init__(display=False)
        if not hasattr(self, "mod_tracker"):  # a torch whose counter is built differently
            raise RuntimeError("torch.utils.flop_counter.FlopCounterMode has no mod_tracker")
        self.mod_tracker = _GlobalTotal()


def count_flops(fn: Callable[[], Any]) -> tuple[int, Any]:
    """FLOPs (2 x multiply-adds of matmuls and convolutions, forward and backward) of
    ``fn()`` by :class:`GlobalFlopCounter`, and its result."""
    counter = GlobalFlopCounter()
    with counter:
        result = fn()
    return int(counter.get_total_flops()), result


def _status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _release_free_memory() -> None:
    """Return the C allocator's free memory to the system (glibc ``malloc_trim``), so that a
    pass that reuses memory freed by an earlier one still shows up as resident-set growth."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak_rss() -> bool:
    _release_free_memory()
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Peak memory added by the ``with`` block, in bytes (``.peak``; None if unknown).

    CUDA: ``max_memory_allocated() - memory_allocated()`` at entry; CPU: ``VmHWM`` at exit
    (reset at entry through ``/proc/self/clear_refs``, after glibc's ``malloc_trim(0)`` gave
    the allocator's free memory back) minus ``VmRSS`` at entry.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak: int | None = None
        self._before: int | None = None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._before = torch.cuda.memory_allocated(self.device)
        else:
            self._before = _status_kib("VmRSS") if _reset_peak_rss() else None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) - self._before
        else:
            hwm = _status_kib("VmHWM")
            ok = self._before is not None and hwm is not None
            self.peak = max(hwm - self._before, 0) * 1024 if ok else None


@dataclass
class Timing:
    """Timed runs of one measurement (seconds), the warm-up's FLOPs and the peak memory."""

    times: list[float] = field(default_factory=list)
    flops: int = 0
    peak: int | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else math.nan

    @property
    def runs(self) -> int:
        return len(self.times)


def time_runs(
    fn: Callable[[], Any],
    device: torch.device,
    runs: int,
    *,
    budget: float | None = None,
    min_runs: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> Timing:
    """One warm-up call of ``fn`` (FLOPs counted there), then up to ``runs`` timed calls.

    With ``budget`` (seconds), timed calls stop once their total exceeds it and at least
    ``min_runs`` were made.  Peak memory is the maximum over the timed calls (the warm-up's
    one-time allocations, library and kernel caches, are left out).
    """
    result = Timing()
    result.flops, _ = count_flops(fn)
    peaks = []
    spent = 0.0
    for _ in range(runs):
        with PeakMemory(device) as mem:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = clock()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            elapsed = clock() - start
        peaks.append(mem.peak)
        result.times.append(elapsed)
        spent += elapsed
        if budget is not None and spent > budget and len(result.times) >= min_runs:
            break
    known = [p for p in peaks if p is not None]
    result.peak = max(known) if known else None
    return result


def _child(fn: Callable[..., Any], threads: int | None, args: tuple) -> Any:
    if threads:
        torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    return fn(*args)


def run_isolated(fn: Callable[..., Any], *args: Any, threads: int | None = None) -> Any:
    """``fn(*args)`` in a fresh interpreter (spawn): a clean allocator for the memory peaks."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_child, (fn, threads, args))


# ------------------------------------------------------------------ one profile row
def profile_one(name: str, size: int, device: str, runs: int, texture_runs: int) -> dict:
    """Everything of one table row, measured in this process."""
    dev = torch.device(device)
    overrides = {"texture_iters": 0} if name == "msnps" else {}
    model = build_model(name, size, **overrides).to(dev).eval()
    image, mask = inputs(1, size, dev)
    row: dict[str, Any] = {
        "model": name,
        "size": size,
        "params": model.num_params(),
        "weights_bytes": tensor_bytes(model.generator),
    }
    with torch.inference_mode():
        timing = time_runs(lambda: model(image, mask), dev, runs)
    row.update(flops=timing.flops, latency=timing.median, runs=timing.runs, peak=timing.peak)
    if name == "msnps" and texture_runs > 0:
        row["texture"] = _texture_step(name, size, dev, texture_runs)
    return row


def _texture_step(name: str, size: int, dev: torch.device, runs: int) -> dict:
    model = build_model(name, size).to(dev).eval()
    image, mask = inputs(1, size, dev)
    with torch.no_grad():
        content = model(image, mask)["content"]
    content = mask * content + (1 - mask) * image
    timing = time_runs(lambda: model.texture_refine(content, mask), dev, runs)
    return {
        "seconds": timing.median,
        "runs": timing.runs,
        "flops": timing.flops,
        "peak": timing.peak,
        "iters": model.texture_iters,
        "scales": model.texture_scales,
    }


# ------------------------------------------------------------------ report
def fmt_bytes(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:,.0f} MiB"


def fmt_flops(n: int) -> str:
    return "0" if n == 0 else f"{n / 1e9:,.2f}"


def fmt_seconds(t: float) -> str:
    if math.isnan(t):
        return "n/a"
    return f"{t * 1e3:,.1f} ms" if t < 1 else f"{t:,.2f} s"


def _params(counts: dict[str, int]) -> tuple[str, str]:
    gen = f"{counts.get('generator', 0):,}"
    discs = [f"{k.split('.', 1)[1]} {v:,}" for k, v in counts.items() if k != "generator"]
    return gen, "; ".join(discs) or "-"


def render(rows: list[dict], env: dict[str, str], load: tuple[str, str], runs: int) -> str:
    cuda = env["device"].startswith("cuda")
    method = (
        "torch.cuda.max_memory_allocated() - memory_allocated() before the pass"
        if cuda
        else "growth of the resident set at its peak (VmHWM after the pass, reset through "
        "/proc/self/clear_refs after malloc_trim(0), minus VmRSS before), each (model, size) "
        "in a fresh process"
    )
    lines = [
        "<!-- Generated by `python -m benchmarks.profile`; do not edit by hand. -->",
        "",
        "# Efficiency profile: parameters, FLOPs, latency, peak memory",
        "",
        *header_lines(env, *load),
        "- input: batch 1, float32, S x S image in [-1, 1], centred S/2 x S/2 hole; eval mode",
        "- FLOPs: torch.utils.flop_counter.FlopCounterMode, one forward pass (matmuls and "
        "convolutions, 2 x multiply-adds; element-wise ops, pooling, norms not counted)",
        f"- latency: median of {runs} passes after 1 warm-up, torch.inference_mode",
        f"- peak memory: {method}; maximum over the timed passes; weights listed separately",
        "- models with an `image_size` argument (global critic) are built for S; VGG loss "
        "networks use random weights (cost only)",
        "",
        "| model | S | generator params | discriminator params | GFLOPs | latency "
        "| peak memory | weights | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.get("skipped"):
            lines.append(f"| {r['model']} | {r['size']} | | | | | | | {r['skipped']} |")
            continue
        gen, disc = _params(r["params"])
        note = r.get("note", "")
        if r["model"] == "msnps":
            note = (note + "; " if note else "") + "content network only (texture step below)"
        if r["flops"] == 0:
            note = (note + "; " if note else "") + "no matmul/convolution"
        lines.append(
            f"| {r['model']} | {r['size']} | {gen} | {disc} | {fmt_flops(r['flops'])} "
            f"| {fmt_seconds(r['latency'])} | {fmt_bytes(r['peak'])} "
            f"| {fmt_bytes(r['weights_bytes'])} | {note} |"
        )
    textures = [r for r in rows if r.get("texture")]
    if textures:
        lines += [
            "",
            "## MSNPS texture step (per image)",
            "",
            "Multi-scale neural patch synthesis after the content network: L-BFGS on the hole "
            "pixels, default settings (VGG-19 relu4_1 MRF + relu4_2 content + TV); VGG-19 with "
            "random weights (the cost does not depend on them). FLOPs counted over the whole "
            "optimisation (VGG forward and backward passes).",
            "",
            "| S | scales | L-BFGS iterations per scale | seconds per image | runs | GFLOPs "
            "| peak memory |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in textures:
            t = r["texture"]
            lines.append(
                f"| {r['size']} | {t['scales']} | {t['iters']} | {t['seconds']:.2f} "
                f"| {t['runs']} | {fmt_flops(t['flops'])} | {fmt_bytes(t['peak'])} |"
            )
    lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------ command line
def parse_models(text: str | None) -> list[str]:
    names = zoo.list_models() if not text else [m.strip() for m in text.split(",") if m]
    unknown = [m for m in names if m not in zoo.list_models()]
    if unknown:
        raise SystemExit(f"unknown models {unknown}; registered: {', '.join(zoo.list_models())}")
    return names


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=None, help="comma-separated (default: all)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--runs", type=int, default=MIN_RUNS, help=f">= {MIN_RUNS} passes")
    parser.add_argument("--texture-runs", type=int, default=3, help="MSNPS texture step runs")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--output", type=Path, default=REPORT)
    parser.add_argument("--allow-few-runs", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.runs < MIN_RUNS and not args.allow_few_runs:
        raise SystemExit(f"--runs must be at least {MIN_RUNS}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    load_before = load_average()
    rows: list[dict] = []
    for name in parse_models(args.models):
        seen: set[int] = set()
        for size, note in model_sizes(name, args.sizes):
            if size is None:
                rows.append({"model": name, "size": "-", "skipped": note})
                continue
            if size in seen:
                continue
            seen.add(size)
            row = run_isolated(
                profile_one,
                name,
                size,
                str(device),
                args.runs,
                args.texture_runs,
                threads=torch.get_num_threads(),
            )
            row["note"] = note
            rows.append(row)
            print(
                f"{name} {size}: {fmt_flops(row['flops'])} GFLOPs, "
                f"{fmt_seconds(row['latency'])}, peak {fmt_bytes(row['peak'])}",
                flush=True,
            )
    env = environment(device)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(rows, env, (load_before, load_average()), args.runs))
    print(f"wrote {args.output}")
    return rows


if __name__ == "__main__":
    main()
