"""Speed benchmark: inference and training-step throughput against the machine's own rates.

``python -m benchmarks.speed [--models a,b] [--runs 5] [--budget 30] [--device cpu]
[--reference-root DIR]``
writes ``reports/speed.md`` (generated; do not edit by hand).

Per model (each in a fresh interpreter, at S = 256, or the fixed size of a fixed-size
architecture: Context Encoder and MSNPS take 128 only):

- **inference** with batch 1 and batch 8 (eval mode, ``torch.inference_mode``): median time,
  images per second, forward FLOPs, achieved GFLOP/s; MSNPS runs its whole pipeline
  (content network + texture optimisation, default settings);
- **one training step** with batch 8, exactly as the generic loop does it
  (:func:`benchmarks.train.train_step`: the forward pass, ``d_steps`` discriminator updates,
  the later ones on fresh batches, and the generator update, with the model's own losses and
  optimisers; VGG loss networks with random weights, ``vgg="random"``) at a step past every
  warm-up phase, so that every part trains;
- **peak memory** of each measurement (the method of :mod:`benchmarks.profile`);
- **ratio** of the achieved GFLOP/s to the machine's own rates, measured in the same run
  (before and after the models; their mean is used): a 3 x 3 convolution of 8 x 128 x 64 x 64
  to 128 channels (padding 1, float32) and a 2048^3 float32 matrix product.

Each time is the median of ``--runs`` timed runs after one warm-up run (the warm-up counts the
FLOPs with ``torch.utils.flop_counter.FlopCounterMode``: matmuls and convolutions, forward and
backward, 2 x multiply-adds).  On a slow CPU, ``--budget`` seconds per measurement stops the
timed runs early (after at least one); the ``runs`` columns say how many were taken.

**Scoring throughput**: :func:`benchmarks.metrics.image_metrics` (PSNR, SSIM, L1 and their
hole variants, default convention) over S x S pairs in batches of ``--score-batch``, in pairs
per second, with the operators that took most of its time (``torch.profiler``).

**Against the reference code** (``--reference-root DIR``, default ``$INPAINTBENCH_REFERENCE_ROOT``):
each reference generator (``DIR/<owner>/<repo>/`` checkouts) timed beside ours in one process,
interleaved, with the ratio reference time / our time and the largest output difference on
the same weights (:mod:`benchmarks.reference_speed`); without it the section says how to
produce it.

``torch.set_flush_denormal(True)`` is set as in the benchmark harness (in every model's
process, and in the command's own process for the machine rates and the scoring).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks.profile import (
    ROOT,
    Timing,
    build_model,
    environment,
    fmt_bytes,
    fmt_seconds,
    header_lines,
    inputs,
    load_average,
    parse_models,
    run_isolated,
    time_runs,
)
from benchmarks.train import train_step

__all__ = ["REPORT", "reference_rates", "speed_one", "scoring_throughput", "render", "main"]

REPORT = ROOT / "reports" / "speed.md"
LATE_STEP = 10**9  # past every warm-up phase (GLCIC's completion-only / critic-only phases)
SIZE = 256
CONV_SHAPE = (8, 128, 64, 64)  # N, C, H, W of the reference 3 x 3 convolution (C -> C)
MATMUL_SIDE = 2048


def _summary(t: Timing) -> dict[str, Any]:
    return {"median": t.median, "runs": t.runs, "flops": t.flops, "peak": t.peak}


# ------------------------------------------------------------------ machine rates
def reference_rates(device: torch.device, runs: int) -> dict[str, float]:
    """GFLOP/s of a large 3 x 3 convolution and of a 2048^3 matmul (float32) on ``device``."""
    g = torch.Generator().manual_seed(0)
    n, c, h, w = CONV_SHAPE
    x = torch.randn(n, c, h, w, generator=g).to(device)
    weight = torch.randn(c, c, 3, 3, generator=g).to(device) * 0.05
    a = torch.randn(MATMUL_SIDE, MATMUL_SIDE, generator=g).to(device)
    b = torch.randn(MATMUL_SIDE, MATMUL_SIDE, generator=g).to(device)
    with torch.inference_mode():
        conv = time_runs(lambda: F.conv2d(x, weight, padding=1), device, runs)
        mm = time_runs(lambda: a @ b, device, runs)
    conv_flops = 2 * n * c * c * 9 * h * w
    mm_flops = 2 * MATMUL_SIDE**3
    if conv.flops != conv_flops or mm.flops != mm_flops:  # the counter's convention
        raise RuntimeError(f"FLOP counter disagrees: {conv.flops} / {mm.flops}")
    return {"conv": conv_flops / conv.median / 1e9, "matmul": mm_flops / mm.median / 1e9}


# ------------------------------------------------------------------ one model
def speed_one(
    name: str,
    device: str,
    runs: int,
    budget: float | None,
    train_batch: int,
    size: int = SIZE,
) -> dict[str, Any]:
    """Inference (batch 1 and 8) and one training step of model ``name``, in this process."""
    dev = torch.device(device)
    model = build_model(name, size)
    if model.input_size is not None and model.input_size != size:
        size = model.input_size
        model = build_model(name, size)
    model = model.to(dev).eval()
    row: dict[str, Any] = {"model": name, "size": size, "infer": {}}
    for n in (1, 8):
        image, mask = inputs(n, size, dev)

        def forward(image: torch.Tensor = image, mask: torch.Tensor = mask) -> Any:
            return model(image, mask)

        with torch.inference_mode():
            timing = time_runs(forward, dev, runs, budget=budget)
        row["infer"][n] = _summary(timing)
    if not model.trainable:
        row["train"] = None
        return row
    model.train()
    optimizers = model.configure_optimizers()
    fixed = {k: inputs(train_batch, size, torch.device("cpu"), seed=k) for k in range(8)}

    def batches(step: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        return fixed[k % len(fixed)]

    problems: list[str] = []

    def step() -> None:
        _, problem = train_step(model, optimizers, batches, LATE_STEP, dev)
        if problem:
            problems.append(problem)

    timing = time_runs(step, dev, runs, budget=budget)
    row["train"] = {**_summary(timing), "batch": train_batch, "d_steps": model.d_steps}
    row["train"]["problem"] = problems[0] if problems else ""
    return row


# ------------------------------------------------------------------ scoring
def scoring_throughput(size: int, pairs: int, batch: int, runs: int) -> dict[str, Any]:
    """Pairs per second of scoring S x S pairs (default convention, no LPIPS): in memory
    (``image_metrics`` on tensors: ``pairs_per_s``) and end to end from a folder of PNGs
    (``benchmarks.score_folder.score_folder``: decoding + metrics, ``folder_pairs_per_s``),
    with the torch operators that took most of the in-memory time (OpenCV's SSIM filtering
    is not a torch operator and does not appear there)."""
    import tempfile

    from benchmarks.evaluate import save_masks, save_pngs
    from benchmarks.metrics import image_metrics
    from benchmarks.score_folder import score_folder

    g = torch.Generator().manual_seed(0)
    # 8-bit ground truth and a noisy prediction, as a composite of a centred S/2 hole
    target = torch.randint(0, 256, (pairs, 3, size, size), generator=g).float() / 127.5 - 1
    noisy = (target + 0.1 * torch.randn(target.shape, generator=g)).clamp(-1, 1)
    mask = torch.zeros(pairs, 1, size, size)
    mask[..., size // 4 : size // 4 + size // 2, size // 4 : size // 4 + size // 2] = 1
    pred = mask * noisy + (1 - mask) * target

    def score_all() -> None:
        for i in range(0, pairs, batch):
            image_metrics(pred[i : i + batch], target[i : i + batch], mask[i : i + batch])

    timing = time_runs(score_all, torch.device("cpu"), runs)
    with tempfile.TemporaryDirectory(prefix="inpaintbench-score-") as tmp:
        names = [f"{i:05d}" for i in range(pairs)]
        folders = {k: Path(tmp) / k for k in ("pred", "gt", "masks")}
        save_pngs(folders["pred"], pred, names)
        save_pngs(folders["gt"], target, names)
        save_masks(folders["masks"], mask, names)
        folder = time_runs(
            lambda: score_folder(
                folders["pred"], folders["gt"], folders["masks"], batch_size=batch
            ),
            torch.device("cpu"),
            runs,
        )
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        image_metrics(pred[:batch], target[:batch], mask[:batch])
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    top = [(e.key, e.self_cpu_time_total / total) for e in events[:4]]
    return {
        "pairs": pairs,
        "batch": batch,
        "size": size,
        "threads": torch.get_num_threads(),
        "median": timing.median,
        "runs": timing.runs,
        "pairs_per_s": pairs / timing.median,
        "folder_median": folder.median,
        "folder_runs": folder.runs,
        "folder_pairs_per_s": pairs / folder.median,
        "top": top,
    }


# ------------------------------------------------------------------ report
def _rate(flops: int, seconds: float) -> float:
    return flops / seconds / 1e9 if flops and seconds > 0 else math.nan


def _pct(rate: float, ref: float) -> str:
    return "n/a" if math.isnan(rate) else f"{100 * rate / ref:.0f}%"


def _gf(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:,.1f}"


def render(
    rows: list[dict],
    rates: dict[str, float],
    rates_each: list[dict[str, float]],
    scoring: dict[str, Any] | None,
    env: dict[str, str],
    load: tuple[str, str],
    args: argparse.Namespace,
    reference: dict[str, Any] | None = None,
) -> str:
    conv, mm = rates["conv"], rates["matmul"]
    budget = "none" if args.budget is None else f"{args.budget:g} s"
    n, c, h, w = CONV_SHAPE
    lines = [
        "<!-- Generated by `python -m benchmarks.speed`; do not edit by hand. -->",
        "",
        "# Speed: inference and training steps against the machine's own rates",
        "",
        *header_lines(env, *load),
        f"- machine rates (float32, median of {args.runs} after 1 warm-up, measured before / "
        f"after the models): 3 x 3 convolution {n} x {c} x {h} x {w} -> {c} channels "
        f"{' / '.join(_gf(r['conv']) for r in rates_each)} GFLOP/s (mean {conv:,.1f}); "
        f"{MATMUL_SIDE}^3 matmul {' / '.join(_gf(r['matmul']) for r in rates_each)} GFLOP/s "
        f"(mean {mm:,.1f})",
        f"- times: median of up to {args.runs} timed runs after 1 warm-up (FLOPs counted in "
        f"the warm-up, FlopCounterMode: matmuls and convolutions, 2 x multiply-adds); timed "
        f"runs stop once they exceed the budget of {budget} per measurement ('runs' column)",
        f"- inputs: float32 images in [-1, 1], centred S/2 x S/2 hole; S = {args.size} except "
        "for the fixed-size Context Encoder and MSNPS (128 only)",
        "- peak memory: as in `reports/efficiency.md` (CPU: resident-set growth, fresh process "
        "per model; CUDA: max_memory_allocated growth)",
        "",
        "## Inference",
        "",
        "| model | S | GFLOPs / image | batch 1 time | batch 1 GFLOP/s | % conv | batch 8 time "
        "| images/s | batch 8 GFLOP/s | % conv | % matmul | runs (b1, b8) | peak memory b8 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        b1, b8 = r["infer"][1], r["infer"][8]
        r1, r8 = _rate(b1["flops"], b1["median"]), _rate(b8["flops"], b8["median"])
        lines.append(
            f"| {r['model']} | {r['size']} | {b1['flops'] / 1e9:,.2f} "
            f"| {fmt_seconds(b1['median'])} | {_gf(r1)} | {_pct(r1, conv)} "
            f"| {fmt_seconds(b8['median'])} | {8 / b8['median']:,.2f} | {_gf(r8)} "
            f"| {_pct(r8, conv)} | {_pct(r8, mm)} | {b1['runs']}, {b8['runs']} "
            f"| {fmt_bytes(b8['peak'])} |"
        )
    lines += [
        "",
        "## One training step (batch 8)",
        "",
        "| model | S | critic updates | step time | runs | GFLOPs / step | GFLOP/s | % conv "
        "| % matmul | peak memory | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r["train"]
        if t is None:
            lines.append(f"| {r['model']} | {r['size']} | | | | | | | | | not trainable |")
            continue
        rate = _rate(t["flops"], t["median"])
        lines.append(
            f"| {r['model']} | {r['size']} | {t['d_steps']} | {fmt_seconds(t['median'])} "
            f"| {t['runs']} | {t['flops'] / 1e9:,.1f} | {_gf(rate)} | {_pct(rate, conv)} "
            f"| {_pct(rate, mm)} | {fmt_bytes(t['peak'])} | {t['problem']} |"
        )
    if scoring is not None:
        top = "; ".join(f"{k} {100 * f:.0f}%" for k, f in scoring["top"])
        lines += [
            "",
            "## Scoring throughput",
            "",
            f"`benchmarks.metrics.image_metrics` (default convention: PSNR, SSIM, L1 and their "
            f"hole variants) on {scoring['pairs']} random {scoring['size']} x {scoring['size']} "
            f"pairs in batches of {scoring['batch']}, median of {scoring['runs']} runs after 1 "
            f"warm-up: **{scoring['pairs_per_s']:,.1f} pairs/s** "
            f"({fmt_seconds(scoring['median'])} for all pairs). Operators by share of the time "
            f"(torch.profiler, self CPU time, one batch): {top}.",
        ]
    lines += ["", *_reference_lines(reference)]
    lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------ against the references
def _reference_lines(reference: dict[str, Any] | None) -> list[str]:
    """The "Against the reference code" section (how to produce it when not measured)."""
    from benchmarks.reference_speed import render_section

    if reference is None:
        return render_section(None, None)
    return render_section(
        reference["rows"],
        reference["root"],
        runs=reference["runs"],
        threads=reference.get("threads"),
        load=reference.get("load"),
        missing=reference["missing"],
    )


def reference_comparison(
    root: Path, models: str | None, runs: int, threads: int | None
) -> dict[str, Any]:
    """Rows of :mod:`benchmarks.reference_speed` for the selected models (those without a
    reference are skipped), each in a fresh interpreter."""
    from benchmarks.reference_speed import SPECS, measure_all, missing_references, select_specs

    with_reference = {s.model for s in SPECS}
    names = None if models is None else [m.strip() for m in models.split(",")]
    specs = select_specs(None if names is None else [m for m in names if m in with_reference])
    before = load_average()
    rows = measure_all(root, specs, runs, isolate=True, threads=threads)
    return {
        "rows": rows,
        "root": root,
        "runs": runs,
        "threads": threads,
        "load": (before, load_average()),
        "missing": missing_references(root, specs),
    }


# ------------------------------------------------------------------ command line
def _default_reference_root() -> Path | None:
    from benchmarks.reference_speed import default_root

    return default_root()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=None, help="comma-separated (default: all)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measurement")
    parser.add_argument(
        "--budget",
        type=float,
        default=30.0,
        help="seconds per measurement after which timed runs stop (<= 0: no budget)",
    )
    parser.add_argument(
        "--size", type=int, default=SIZE, help="image side (fixed-size models: theirs)"
    )
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--score-pairs", type=int, default=16)
    parser.add_argument("--score-batch", type=int, default=8)
    parser.add_argument("--score-size", type=int, default=None, help="default: --size")
    parser.add_argument("--no-scoring", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--output", type=Path, default=REPORT)
    parser.add_argument(
        "--reference-root",
        type=Path,
        default=_default_reference_root(),
        help="folder of DIR/<owner>/<repo> reference checkouts, timed beside ours "
        "(default: $INPAINTBENCH_REFERENCE_ROOT; none: the section says how to produce it)",
    )
    args = parser.parse_args(argv)
    if args.budget is not None and args.budget <= 0:
        args.budget = None
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    threads = torch.get_num_threads()
    load_before = load_average()
    rates_each = [reference_rates(device, args.runs)]
    print(f"rates: {rates_each[0]}", flush=True)
    rows = []
    for name in parse_models(args.models):
        row = run_isolated(
            speed_one,
            name,
            str(device),
            args.runs,
            args.budget,
            args.train_batch,
            args.size,
            threads=threads,
        )
        rows.append(row)
        t = row["train"]
        print(
            f"{name}: b1 {fmt_seconds(row['infer'][1]['median'])}, "
            f"b8 {fmt_seconds(row['infer'][8]['median'])}, "
            f"train {fmt_seconds(t['median']) if t else '-'}",
            flush=True,
        )
    scoring = None
    if not args.no_scoring:
        scoring = scoring_throughput(
            args.score_size or args.size, args.score_pairs, args.score_batch, min(args.runs, 3)
        )
        print(f"scoring: {scoring['pairs_per_s']:.1f} pairs/s", flush=True)
    reference = None
    if args.reference_root is not None:
        reference = reference_comparison(
            args.reference_root, args.models, args.runs, threads=threads
        )
    rates_each.append(reference_rates(device, args.runs))
    rates = {k: sum(r[k] for r in rates_each) / len(rates_each) for k in ("conv", "matmul")}
    env = environment(device)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    text = render(
        rows, rates, rates_each, scoring, env, (load_before, load_average()), args, reference
    )
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return {"rows": rows, "rates": rates, "scoring": scoring, "reference": reference}


if __name__ == "__main__":
    torch.set_flush_denormal(True)  # as the harness does (the models run in children that set it)
    main()
