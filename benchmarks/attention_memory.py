"""Time and peak memory of contextual attention as DeepFill v2's refinement branch runs it.

``python -m benchmarks.attention_memory [--device cpu|cuda] [--sizes 256 512 1024]``
writes ``reports/attention_memory.md`` (generated; do not edit by hand).

What is measured: :class:`zoo.layers.contextual_attention.ContextualAttention` with the
official settings (ksize 3, stride 1, rate 2, fuse_k 3, softmax scale 10, fuse on) on the
feature map DeepFill v2 feeds it, ``pmconv6``'s output for an S x S image: 96 channels
(``2 * cnum`` effective, ``cnum = 48``) at S/4 x S/4, foreground = background, with a
centred square hole of S/2 x S/2 (mask at S/4, resized inside as in the model).  Matching runs
on the S/8 x S/8 grid, so foreground positions = background patches = (S/8)^2 and the score
matrix has (S/8)^4 entries.  Modes: ``plain`` (all foreground positions at once) and
``chunked`` (``--chunk`` positions at a time).  Inference only (``torch.no_grad``), float32,
batch 1; random ReLU features (values do not change the cost).

Time: median wall time of ``--repeats`` runs after one warm-up run.

Peak memory:

- CUDA: ``torch.cuda.max_memory_allocated()`` minus the memory allocated before the call
  (tensors only, the caching allocator's reserve excluded).
- CPU: PyTorch exposes no CPU allocator statistics by default (``tracemalloc`` does not see
  its allocations), so the process's peak resident set size is used: the kernel's high-water
  mark ``VmHWM`` is reset by writing ``5`` to ``/proc/self/clear_refs`` right before the call
  and read from ``/proc/self/status`` after it; the figure is ``VmHWM - VmRSS(before)``, i.e.
  everything the call added at its peak (tensors, BLAS/allocator work space).  It needs Linux;
  elsewhere the column reads ``n/a``.  Each configuration runs in a fresh process (the C
  allocator keeps some freed memory resident, which would hide later peaks); the reported
  peak is the maximum over the warm-up and the timed runs, in practice the warm-up's.

A plain run whose score matrices cannot fit (estimated as 8 float32 matrices of (S/8)^4
entries against the available memory) is skipped and reported as such.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import multiprocessing
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from zoo.layers.contextual_attention import ContextualAttention

CHANNELS = 96  # pmconv6 effective width for cnum = 48
LIMIT_GIB_1024 = 4.0  # the chunked mode must stay under this at 1024 px
REPORT = Path(__file__).resolve().parents[1] / "reports" / "attention_memory.md"


# ------------------------------------------------------------------ memory probes
def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _available_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _load_average() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "n/a"


def _device_name(device: torch.device) -> str:
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


# ------------------------------------------------------------------ one measurement
def _inputs(image_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    side = image_size // 4
    feat = torch.randn(1, CHANNELS, side, side, generator=g).relu().to(device)
    mask = torch.zeros(1, 1, side, side)
    mask[..., side // 4 : 3 * side // 4, side // 4 : 3 * side // 4] = 1  # S/2 hole
    return feat, mask.to(device)


def _run_once(
    layer: ContextualAttention, feat: torch.Tensor, mask: torch.Tensor
) -> tuple[float, int | None, torch.Tensor]:
    device = feat.device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    else:
        before = _proc_status_kib("VmRSS") if _reset_peak_rss() else None
    start = time.perf_counter()
    with torch.no_grad():
        out = layer(feat, feat, mask)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - start
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) - before
    else:
        hwm = _proc_status_kib("VmHWM")
        peak = None if before is None or hwm is None else (hwm - before) * 1024
    return elapsed, peak, out


def _measure_here(image_size: int, chunk: int | None, device: str, repeats: int) -> dict:
    device = torch.device(device)
    feat, mask = _inputs(image_size, device)
    layer = ContextualAttention(
        ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0, fuse=True, chunk_size=chunk
    )
    _, peak0, out = _run_once(layer, feat, mask)  # warm-up
    times, peaks = [], [peak0]
    for _ in range(repeats):
        t, p, out = _run_once(layer, feat, mask)
        times.append(t)
        peaks.append(p)
    known = [p for p in peaks if p is not None]
    return {
        "time": statistics.median(times),
        "times": times,
        "peak": max(known) if known else None,
        "out": out.detach().cpu(),
    }


def measure(image_size: int, chunk: int | None, device: torch.device, repeats: int) -> dict:
    """One configuration in a fresh interpreter (spawn), so that memory freed by earlier
    configurations and kept by the C allocator cannot hide this one's peak."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_measure_here, (image_size, chunk, str(device), repeats))


# ------------------------------------------------------------------ report
def _fmt_bytes(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:,.0f} MiB"


def render(rows: list[dict], device: torch.device, args: argparse.Namespace) -> str:
    method = (
        "torch.cuda.max_memory_allocated() - memory_allocated() before the call"
        if device.type == "cuda"
        else "peak RSS increase, VmHWM after the call (reset via /proc/self/clear_refs) "
        "- VmRSS before, each configuration in a fresh process"
    )
    lines = [
        "<!-- Generated by `python -m benchmarks.attention_memory`; do not edit by hand. -->",
        "",
        "# Contextual attention: time and peak memory (DeepFill v2 refinement branch)",
        "",
        f"- generated: {_dt.datetime.now().isoformat(timespec='seconds')}",
        f"- device: {device.type} ({_device_name(device)})",
        f"- torch {torch.__version__}, intra-op threads {torch.get_num_threads()}"
        f" (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}); "
        f"{os.cpu_count()} CPUs, load average {args.load_before} before / {_load_average()} after"
        " (1, 5, 15 min; a shared machine makes timings noisy)",
        "- layer: `ContextualAttention(ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10, "
        "fuse=True)`, float32, batch 1, no_grad",
        f"- input: pmconv6 features, {CHANNELS} channels at S/4 x S/4 for an S x S image, "
        "S/2 x S/2 centred hole; matching grid S/8 x S/8",
        f"- time: median of {args.repeats} runs after 1 warm-up; peak memory: {method} "
        "(maximum over the runs)",
        "",
        "| image S | features (C x H x W) | matching grid | positions = patches | score entries "
        "| mode | chunk | median time (s) | peak memory |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s = r["size"]
        grid = s // 8
        chunk = "all" if r["chunk"] is None else str(r["chunk"])
        time_s = "skipped" if r.get("skipped") else f"{r['time']:.2f}"
        peak = r.get("skipped") or _fmt_bytes(r.get("peak"))
        lines.append(
            f"| {s} | {CHANNELS} x {s // 4} x {s // 4} | {grid} x {grid} | {grid * grid:,} "
            f"| {grid**4:,} | {r['mode']} | {chunk} | {time_s} | {peak} |"
        )
    lines += ["", "Checks:", ""]
    for r in rows:
        if r.get("max_diff") is not None:
            lines.append(f"- {r['size']} px: max |chunked - plain| = {r['max_diff']:.2e} (float32)")
    for r in rows:
        if r["size"] == 1024 and r["mode"] == "chunked" and r.get("peak") is not None:
            ok = r["peak"] < LIMIT_GIB_1024 * 2**30
            lines.append(
                f"- 1024 px chunked peak {_fmt_bytes(r['peak'])} "
                f"{'<' if ok else '>='} {LIMIT_GIB_1024:.0f} GiB: {'OK' if ok else 'FAILED'}"
            )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--chunk", type=int, default=1024, help="foreground positions per chunk")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if any(s % 8 for s in args.sizes):
        raise SystemExit("image sizes must be multiples of 8")

    args.load_before = _load_average()
    rows = []
    for size in args.sizes:
        entries = (size // 8) ** 4
        need = 8 * entries * 4  # a generous bound for the plain mode's score matrices
        avail = _available_bytes(device)
        plain = None
        if avail is not None and need > 0.8 * avail:
            rows.append(
                {
                    "size": size,
                    "mode": "plain",
                    "chunk": None,
                    "skipped": f"skipped: needs ~{need / 2**30:.1f} GiB",
                }
            )
        else:
            plain = measure(size, None, device, args.repeats)
            rows.append({"size": size, "mode": "plain", "chunk": None, **plain})
        chunked = measure(size, args.chunk, device, args.repeats)
        diff = None if plain is None else (chunked["out"] - plain["out"]).abs().max().item()
        rows.append(
            {"size": size, "mode": "chunked", "chunk": args.chunk, "max_diff": diff, **chunked}
        )
        plain_s = "skipped" if plain is None else f"{plain['time']:.2f} s"
        plain_m = "skipped" if plain is None else _fmt_bytes(plain["peak"])
        print(
            f"{size}px: plain {plain_s}, chunked {chunked['time']:.2f} s; "
            f"peak {plain_m} / {_fmt_bytes(chunked['peak'])}",
            flush=True,
        )

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(rows, device, args))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
