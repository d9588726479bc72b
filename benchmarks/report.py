"""Comparison reports from benchmark runs (``python -m benchmarks.report --help``).

::

    python -m benchmarks.report <sweep or run dirs...> [--name NAME] [--out reports/]

collects every ``metrics.json`` below the given folders (finished and failed jobs;
:mod:`benchmarks.collect`) and writes ``<out>/<name>/``:

- ``results.csv``: one row per run and scope (``overall`` and each hole-ratio bucket) with
  every metric, its count, the protocol, the budget, timings and errors;
- ``table.md`` / ``table.tex``: a header stating the protocol (data, resolution, masks, test
  images), the training budget, the metric convention with its definitions, the device and the
  library versions; then one table per metric (models x hole-ratio buckets and overall, best
  in bold), a table of the runs (parameters, budget, timings) and the failed jobs with their
  errors.  Rows trained with random VGG loss weights (``loss.vgg=random``) are marked as not
  following the paper; rows scored from external predictions are marked too;
- ``hole_ratio.png`` (each metric against the hole-ratio bucket, one line per model),
  ``latency.png`` (quality against prediction time per image) and ``grid.png`` (the same test
  images and masks, one column per model, from the runs' ``predictions/`` next to the masked
  input and the ground truth).

Everything is a pure function of the collected files: rows are sorted, figures use the Agg
backend with fixed sizes, fonts and no PNG ``Software`` metadata, so running the command twice
gives byte-identical files (``tests/test_report.py``); the same sweep passed as a relative or
an absolute path gives the same report.  Rows of different metric conventions go into
separate tables (their numbers are not comparable).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .collect import (
    EXTERNAL_MARK,
    VGG_MARK,
    Run,
    collect,
    convention_name,
    finite,
    lookup,
    marks,
    metric_value,
    protocol_fields,
    results_frame,
    row_labels,
    scope_label,
    scope_rank,
)
from .metrics import CONVENTIONS, HIGHER_IS_BETTER

__all__ = ["write_report", "main", "OUTPUT_FILES"]

#: every file this module writes into the report folder
OUTPUT_FILES = ("results.csv", "table.md", "table.tex", "hole_ratio.png", "latency.png", "grid.png")
#: matplotlib settings for reproducible figures (DejaVu Sans ships with matplotlib)
RC = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 9,
    "legend.fontsize": 7,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "path.simplify": False,
}
PNG_METADATA = {"Software": None}
#: line colours (matplotlib's tab10) and, after ten models, markers
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")
COLORS += ("#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
GRID_MIN_TILE, GRID_MAX_TILE = 128, 256


# ------------------------------------------------------------------------------ tables
def _fmt(metric: str, value: Any, convention: str | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if metric.startswith("psnr"):
        return f"{value:.2f}"
    if convention == "mmagic" and metric.startswith("l1"):
        return f"{value:.3f}"
    return f"{value:.4f}"


@dataclass
class _Table:
    """One metric's table: header cells and rows of (label, cells), best cells flagged."""

    metric: str
    title: str
    header: list[str]
    rows: list[tuple[str, list[str], list[bool]]]


def _metric_table(runs: list[Run], metric: str, convention: str, labels: dict) -> _Table:
    scopes = sorted({s for r in runs for s in (r.record.get("buckets") or {})}, key=scope_rank) + [
        "overall"
    ]
    header, per_cell_counts = [], []
    for scope in scopes:
        counts = {metric_value(r, scope, metric)[1] for r in runs}
        counts.discard(None)
        name = scope_label(scope)
        if len(counts) == 1:
            header.append(f"{name} (n={counts.pop()})")
            per_cell_counts.append(False)
        else:
            header.append(name)
            per_cell_counts.append(True)
    higher = metric in HIGHER_IS_BETTER
    best: list[str | None] = []
    for scope in scopes:
        values = [v for r in runs if finite(v := metric_value(r, scope, metric)[0])]
        best.append(_fmt(metric, (max if higher else min)(values), convention) if values else None)
    rows = []
    for run in runs:
        cells, bold = [], []
        for j, scope in enumerate(scopes):
            value, count = metric_value(run, scope, metric)
            text = _fmt(metric, value, convention)
            is_best = best[j] is not None and text == best[j]
            if per_cell_counts[j] and count is not None and text != "n/a":
                text += f" (n={count})"
            cells.append(text)
            bold.append(is_best)
        rows.append((labels[run.key] + marks(run), cells, bold))
    label = CONVENTIONS.get(convention, {}).get("labels", {}).get(metric, metric)
    arrow = "higher is better" if higher else "lower is better"
    return _Table(metric, f"{label} ({arrow})", ["model", *header], rows)


def _distinct(runs: list[Run], field: str) -> list[Any]:
    vals = []
    for r in runs:
        v = protocol_fields(r)[field]
        if v not in vals:
            vals.append(v)
    return vals


_HEADER_FIELDS = (
    ("data", "data"),
    ("resolution", "resolution"),
    ("test_images", "test images"),
    ("test_masks", "test masks"),
    ("train_masks", "training masks"),
    ("budget", "training budget (trainable models)"),
    ("convention", "metric convention"),
    ("seed", "seed"),
    ("device", "device"),
    ("threads", "torch threads"),
    ("versions", "libraries"),
)


def _protocol_header(runs: list[Run]) -> tuple[list[tuple[str, str]], list[str]]:
    """(label, text) pairs for the header, and the fields that vary across runs."""
    pairs, varying = [], []
    for field, label in _HEADER_FIELDS:
        # unknown (None) values, e.g. the device of a job that failed early, do not count
        vals = [v for v in _distinct(runs, field) if v is not None]
        if len(vals) == 1:
            text = f"{vals[0]} x {vals[0]}" if field == "resolution" else str(vals[0])
            pairs.append((label, text))
        elif len(vals) > 1:
            pairs.append((label, "varies by run (see the runs table)"))
            varying.append(field)
        else:
            pairs.append((label, "n/a"))
    return pairs, varying


def _lpips_note(runs: list[Run]) -> str | None:
    """Why LPIPS is missing, when no finished run has it."""
    ok = [r for r in runs if r.ok]
    if any(lookup(r.record, "lpips", "available") for r in ok):
        return None
    reasons = sorted({str(lookup(r.record, "lpips", "reason")) for r in ok})
    return "n/a (" + "; ".join(reasons) + ")" if reasons else "n/a"


def _footnotes(runs: list[Run]) -> list[str]:
    notes = []
    if any(r.record.get("loss_vgg") == "random" for r in runs):
        notes.append(
            f"{VGG_MARK} trained with random VGG weights in its perceptual / style / ID-MRF / "
            "MRF losses (`loss.vgg=random`; no ImageNet VGG here): not the paper's objective, "
            "the row does not follow the paper."
        )
    if any(lookup(r.record, "predictions", "external") for r in runs):
        notes.append(
            f"{EXTERNAL_MARK} scored external predictions (`eval.predictions`), not a model "
            "run by this benchmark."
        )
    return notes


def _runs_table(runs: list[Run], labels: dict, varying: list[str]) -> tuple[list, list]:
    header = ["model", "status", "generator params", "training", "train s", "predict s/image"]
    header += [dict(_HEADER_FIELDS)[f] for f in varying]
    rows = []
    for run in runs:
        rec = run.record
        train = rec.get("train") or {}
        params = lookup(rec, "params", "generator")
        fields = protocol_fields(run)
        pps = rec.get("predict_seconds_per_image")
        cells = [
            labels[run.key] + marks(run),
            str(rec.get("status")),
            "-" if params is None else f"{params:,}",
            f"{train['steps']} x {train['batch_size']}" if train else "none",
            f"{train['seconds']:.0f}" if train.get("seconds") is not None else "-",
            "-" if pps is None else f"{pps:.3g}",
        ]
        cells += [str(fields[f]) for f in varying]
        rows.append(cells)
    return header, rows


def _convention_groups(runs: list[Run]) -> list[tuple[str, list[Run]]]:
    ok = [r for r in runs if r.ok]
    names = sorted({convention_name(r.record) or "inpaintbench" for r in ok})
    return [
        (n, [r for r in ok if (convention_name(r.record) or "inpaintbench") == n]) for n in names
    ]


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines


def _markdown(name: str, runs: list[Run], sources: list[str], figures: dict[str, str]) -> str:
    labels = row_labels(runs)
    ok = [r for r in runs if r.ok]
    failed = [r for r in runs if not r.ok]
    pairs, varying = _protocol_header(runs)
    lines = [
        f"# Benchmark report: {name}",
        "",
        "<!-- generated by python -m benchmarks.report from the runs' metrics.json; "
        "do not edit by hand -->",
        "",
        f"Generated by `python -m benchmarks.report` from {len(runs)} runs ({len(ok)} finished, "
        f"{len(failed)} failed) under " + ", ".join(f"`{s}/`" for s in sources) + ".",
        "",
        "## Protocol",
        "",
    ]
    lines += _md_table(["", ""], [[k, v] for k, v in pairs])
    lpips = _lpips_note(runs)
    for conv, group in _convention_groups(runs):
        definitions = CONVENTIONS.get(conv) or (group[0].record.get("convention") or {})
        lines += ["", f"## Results: metric convention `{conv}`", ""]
        lines.append(f"Definitions, from {definitions.get('source', conv)}:")
        lines.append("")
        for key in ("scored_image", "value_range", "color", "quantization", "averaging"):
            lines.append(f"- {key.replace('_', ' ')}: {definitions.get(key)}")
        for key in ("psnr", "ssim", "l1", "lpips"):
            lines.append(f"- {key}: {definitions.get(key)}")
        lines.append(
            "- buckets: hole ratio (low, high], the PartialConv test-set buckets; "
            "`other` = outside (0.01, 0.6]; n = images with a defined value"
        )
        for metric in definitions.get("table", ["psnr", "ssim", "l1_hole", "lpips"]):
            table = _metric_table(group, metric, conv, labels)
            lines += ["", f"### {table.title}", ""]
            if metric == "lpips" and lpips is not None:
                lines.append(f"LPIPS: {lpips}.")
                continue
            rows = [
                [lab] + [f"**{c}**" if b else c for c, b in zip(cells, bold)]
                for lab, cells, bold in table.rows
            ]
            lines += _md_table(table.header, rows)
    notes = _footnotes(runs)
    if notes:
        lines += [""] + notes
    header, rows = _runs_table(runs, labels, varying)
    lines += ["", "## Runs", ""] + _md_table(header, rows)
    lines += [
        "",
        "Latency = prediction wall time of the test set / test images (eval batch, "
        "device above; MSNPS includes its texture optimisation).",
    ]
    total = sum(float(r.record.get("seconds") or 0) for r in ok)
    lines += ["", f"Wall time of the finished jobs, summed: {total:.0f} s ({total / 60:.1f} min)."]
    if failed:
        lines += ["", "## Failed jobs", ""]
        for run in failed:
            error = str(run.record.get("error", "unknown error")).replace("\n", " ")
            lines.append(f"- `{labels[run.key]}` (`{run.key}`): {error}")
    if figures:
        lines += ["", "## Figures", ""]
        for file, caption in figures.items():
            lines += [f"![{caption}]({file})", "", f"*{caption}*", ""]
        lines.pop()
    return "\n".join(lines) + "\n"


def _tex_escape(text: str) -> str:
    out = []
    for ch in text:
        if ch in "&%$#_{}":
            out.append("\\" + ch)
        elif ch == "~":
            out.append("\\textasciitilde{}")
        elif ch == "^":
            out.append("\\textasciicircum{}")
        elif ch == "\\":
            out.append("\\textbackslash{}")
        elif ch == VGG_MARK:
            out.append("$^\\dagger$")
        elif ch == EXTERNAL_MARK:
            out.append("$^\\ddagger$")
        else:
            out.append(ch)
    return "".join(out)


def _latex(name: str, runs: list[Run]) -> str:
    labels = row_labels(runs)
    pairs, _ = _protocol_header(runs)
    lpips = _lpips_note(runs)
    proto = "; ".join(f"{k}: {v}" for k, v in pairs if k not in ("libraries",))
    lines = [
        "% generated by python -m benchmarks.report from the runs' metrics.json; do not edit",
        f"% report: {_tex_escape(name)}",
    ]
    for conv, group in _convention_groups(runs):
        definitions = CONVENTIONS.get(conv, {})
        for metric in definitions.get("table", ["psnr", "ssim", "l1_hole", "lpips"]):
            table = _metric_table(group, metric, conv, labels)
            if metric == "lpips" and lpips is not None:
                lines.append(f"% LPIPS: {_tex_escape(lpips)}")
                continue
            cols = "l" + "r" * (len(table.header) - 1)
            lines += [
                "\\begin{table}[t]",
                "\\centering",
                "\\small",
                f"\\caption{{{_tex_escape(table.title)}, metric convention "
                f"\\texttt{{{_tex_escape(conv)}}}. {_tex_escape(proto)}.}}",
                f"\\label{{tab:{_tex_escape(name)}-{conv}-{metric}}}".replace("\\_", "-"),
                f"\\begin{{tabular}}{{{cols}}}",
                "\\hline",
                " & ".join(_tex_escape(h) for h in table.header) + " \\\\",
                "\\hline",
            ]
            for lab, cells, bold in table.rows:
                texts = [
                    f"\\textbf{{{_tex_escape(c)}}}" if b else _tex_escape(c)
                    for c, b in zip(cells, bold)
                ]
                lines.append(" & ".join([_tex_escape(lab), *texts]) + " \\\\")
            lines += ["\\hline", "\\end{tabular}", "\\end{table}", ""]
    for note in _footnotes(runs):
        lines.append("% " + _tex_escape(note))
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- figures
def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=RC["figure.dpi"])
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> None:
    fig.savefig(path, format="png", dpi=RC["savefig.dpi"], metadata=PNG_METADATA)


def _style(i: int) -> dict[str, Any]:
    return {"color": COLORS[i % len(COLORS)], "marker": MARKERS[(i // len(COLORS)) % len(MARKERS)]}


def _plot_metrics(runs: list[Run], conv: str, labels: dict, path: Path) -> bool:
    """Each table metric against the hole-ratio bucket, one line per model."""
    import matplotlib

    buckets = sorted({s for r in runs for s in (r.record.get("buckets") or {})}, key=scope_rank)
    metrics = [
        m
        for m in CONVENTIONS.get(conv, {}).get("table", [])
        if any(finite(metric_value(r, b, m)[0]) for r in runs for b in buckets)
    ]
    if not metrics or not buckets:
        return False
    with matplotlib.rc_context(RC):
        fig = _figure(3.2 * len(metrics) + 1.8, 3.2)
        axes = fig.subplots(1, len(metrics), squeeze=False)[0]
        for ax, metric in zip(axes, metrics):
            for i, run in enumerate(runs):
                xs, ys = [], []
                for j, bucket in enumerate(buckets):
                    v = metric_value(run, bucket, metric)[0]
                    if finite(v):
                        xs.append(j)
                        ys.append(v)
                if xs:
                    ax.plot(xs, ys, label=labels[run.key], linewidth=1, markersize=4, **_style(i))
            ax.set_xticks(range(len(buckets)))
            ax.set_xticklabels([scope_label(b) for b in buckets], rotation=30)
            ax.set_xlim(-0.5, len(buckets) - 0.5)
            ax.set_xlabel("hole ratio bucket")
            ax.set_title(CONVENTIONS[conv]["labels"].get(metric, metric))
            ax.grid(True, linewidth=0.3)
        legend: dict[str, Any] = {}
        for ax in axes:  # a model may lack values in the first panel
            for handle, label in zip(*ax.get_legend_handles_labels()):
                legend.setdefault(label, handle)
        order = [labels[r.key] for r in runs if labels[r.key] in legend]
        fig.legend([legend[k] for k in order], order, loc="center right", frameon=False)
        fig.subplots_adjust(
            left=0.06,
            right=1 - 1.7 / (3.2 * len(metrics) + 1.8),
            bottom=0.25,
            top=0.88,
            wspace=0.35,
        )
        _save(fig, path)
    return True


def _plot_latency(runs: list[Run], conv: str, labels: dict, path: Path) -> bool:
    """Overall quality against prediction seconds per image (log scale)."""
    import matplotlib
    from matplotlib.ticker import NullFormatter

    timed = [r for r in runs if r.record.get("predict_seconds_per_image")]
    metrics = [
        m
        for m in CONVENTIONS.get(conv, {}).get("table", [])
        if any(finite(metric_value(r, "overall", m)[0]) for r in timed)
    ]
    if not timed or not metrics:
        return False
    with matplotlib.rc_context(RC):
        fig = _figure(3.4 * len(metrics), 3.2)
        axes = fig.subplots(1, len(metrics), squeeze=False)[0]
        for ax, metric in zip(axes, metrics):
            for i, run in enumerate(runs):
                if run not in timed:
                    continue
                v = metric_value(run, "overall", metric)[0]
                if not finite(v):
                    continue
                t = float(run.record["predict_seconds_per_image"])
                style = _style(i)
                ax.plot([t], [v], linestyle="none", markersize=5, **style)
                ax.annotate(
                    labels[run.key],
                    (t, v),
                    textcoords="offset points",
                    xytext=(3, 3),
                    fontsize=6,
                    color=style["color"],
                )
            ax.set_xscale("log")
            times = [float(r.record["predict_seconds_per_image"]) for r in timed]
            ax.set_xlim(min(times) / 2, max(times) * 6)  # room for the labels
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("prediction time per image (s, log)")
            ax.set_title(CONVENTIONS[conv]["labels"].get(metric, metric) + " (overall)")
            ax.margins(y=0.12)
            ax.grid(True, linewidth=0.3)
        fig.subplots_adjust(left=0.07, right=0.98, bottom=0.16, top=0.88, wspace=0.3)
        _save(fig, path)
    return True


def _read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _read_mask(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127


def _tile(arr: np.ndarray, size: int) -> np.ndarray:
    """A square tile of side ``size``: small images enlarged pixel by pixel (nearest), large
    ones reduced (Lanczos)."""
    if arr.shape[0] == size and arr.shape[1] == size:
        return arr
    up = size > arr.shape[0]
    method = Image.Resampling.NEAREST if up else Image.Resampling.LANCZOS
    return np.asarray(Image.fromarray(arr).resize((size, size), method))


def _grid(runs: list[Run], labels: dict, path: Path, rows: int) -> tuple[list[str], list[str]]:
    """The qualitative grid; returns (models shown, notes on runs left out)."""
    import matplotlib

    ok = [r for r in runs if r.ok]
    have = [
        r for r in ok if (r.path / "ground_truth").is_dir() and (r.path / "test_masks").is_dir()
    ]
    notes: list[str] = []
    if not have:
        return [], ["no run kept ground_truth/ and test_masks/ (eval.save_predictions=false)"]
    ref = have[0]
    names = sorted(p.stem for p in (ref.path / "ground_truth").glob("*.png"))
    if not names:
        return [], [f"{ref.key} has no ground-truth images"]
    pick = sorted({int(round(x)) for x in np.linspace(0, len(names) - 1, min(rows, len(names)))})
    chosen = [names[i] for i in pick]
    gts = [_read_rgb(ref.path / "ground_truth" / f"{n}.png") for n in chosen]
    holes = [_read_mask(ref.path / "test_masks" / f"{n}.png") for n in chosen]
    columns: list[tuple[str, list[np.ndarray]]] = [
        ("input", [np.where(h[..., None], 255, g).astype(np.uint8) for g, h in zip(gts, holes)])
    ]
    shown = []
    for run in ok:
        pred_dir = run.path / "predictions"
        files = [pred_dir / f"{n}.png" for n in chosen]
        if not all(f.is_file() for f in files):
            notes.append(f"{labels[run.key]}: no saved predictions")
            continue
        same = all(
            (run.path / "ground_truth" / f"{n}.png").is_file()
            and (run.path / "test_masks" / f"{n}.png").is_file()
            and np.array_equal(_read_rgb(run.path / "ground_truth" / f"{n}.png"), g)
            and np.array_equal(_read_mask(run.path / "test_masks" / f"{n}.png"), h)
            for n, g, h in zip(chosen, gts, holes)
        )
        if not same:
            notes.append(f"{labels[run.key]}: different test images or masks")
            continue
        columns.append((labels[run.key] + marks(run), [_read_rgb(f) for f in files]))
        shown.append(labels[run.key])
    columns.append(("ground truth", gts))
    size = min(max(gts[0].shape[0], GRID_MIN_TILE), GRID_MAX_TILE)
    gap, top, left = 2, 30, 0
    width = len(columns) * (size + gap) - gap + left
    height = top + len(chosen) * (size + gap) - gap
    with matplotlib.rc_context(RC):
        fig = _figure(width / 100, height / 100)
        fig.patch.set_facecolor("white")
        for j, (title, tiles) in enumerate(columns):
            x0 = left + j * (size + gap)
            title = title.replace(" [", "\n[")  # a repeated model's run on a second line
            fig.text(
                (x0 + size / 2) / width,
                1 - 3 / height,
                title,
                ha="center",
                va="top",
                fontsize=7,
                linespacing=1.1,
            )
            for i, tile in enumerate(tiles):
                y0 = height - top - (i + 1) * size - i * gap  # figimage: origin bottom-left
                fig.figimage(_tile(tile, size), xo=x0, yo=y0, origin="upper")
        _save(fig, path)
    return shown, notes


# ------------------------------------------------------------------------------- write
def write_report(
    paths: Sequence[str | os.PathLike],
    name: str | None = None,
    out: str | os.PathLike = "reports",
    grid_rows: int = 6,
) -> Path:
    """Collect the runs below ``paths`` and write the report into ``out/name``; return it."""
    runs = collect(paths)
    sources = list(dict.fromkeys(Path(p).expanduser().resolve().name for p in paths))
    name = name or sources[0]
    folder = Path(out) / name
    folder.mkdir(parents=True, exist_ok=True)
    for file in OUTPUT_FILES:  # no stale figure from an earlier report
        (folder / file).unlink(missing_ok=True)
    results_frame(runs).to_csv(folder / "results.csv", index=False, lineterminator="\n")

    labels = row_labels(runs)
    ok = [r for r in runs if r.ok]
    groups = _convention_groups(runs)
    figures: dict[str, str] = {}
    if groups:
        conv, group = groups[0]
        if _plot_metrics(group, conv, labels, folder / "hole_ratio.png"):
            figures["hole_ratio.png"] = f"metrics against the hole-ratio bucket ({conv})"
        if _plot_latency(group, conv, labels, folder / "latency.png"):
            figures["latency.png"] = f"overall quality against prediction time per image ({conv})"
    if ok:
        shown, notes = _grid(runs, labels, folder / "grid.png", grid_rows)
        if shown:
            caption = (
                "the same test images and masks; columns: masked input (hole white), "
                + ", ".join(shown)
                + ", ground truth"
            )
            if notes:
                caption += "; not shown: " + "; ".join(notes)
            figures["grid.png"] = caption
        else:
            (folder / "grid.png").unlink(missing_ok=True)
    (folder / "table.md").write_text(_markdown(name, runs, sources, figures), encoding="utf-8")
    (folder / "table.tex").write_text(_latex(name, runs), encoding="utf-8")
    return folder


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.report",
        description="Collect the metrics.json of benchmark runs into results.csv, table.md, "
        "table.tex, plots and a qualitative grid (byte-identical when re-run).",
    )
    parser.add_argument("paths", nargs="+", help="sweep folders or run folders")
    parser.add_argument("--name", help="report name (default: the first folder's name)")
    parser.add_argument("--out", default="reports", help="parent folder (default: reports)")
    parser.add_argument("--grid-rows", type=int, default=6, help="test images in the grid")
    args = parser.parse_args(argv)
    try:
        folder = write_report(args.paths, args.name, args.out, args.grid_rows)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"wrote {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
