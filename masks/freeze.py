"""Command line: freeze an evaluation mask set (``python -m masks.freeze --help``).

Thin wrapper around ``masks.write_frozen`` (``masks/frozen.py``, which documents the format).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ._common import BUCKETS
from ._registry import FAMILIES, family_params
from .frozen import write_frozen

__all__ = ["main", "parse_param", "parse_resolution"]

_EPILOG = """\
Mask i is masks.mask_for_index(FAMILY, SEED, i, H, W, **PARAMS), i.e. drawn from
numpy.random.default_rng([SEED, i]): the same seed gives the same masks (and, with the same
numpy/Pillow/OpenCV, the same PNG bytes) on any machine.

Output: OUT/00000.png ... (8-bit grayscale, 255 = hole, 0 = valid, no metadata) and
OUT/manifest.json (family, params, seed, resolution, count, per-file sha256 of the bytes and of
the pixels, hole ratio, PartialConv bucket). Load with masks.load_frozen(OUT), which refuses a
set with a missing, extra or modified file.

Parameter values are JSON or Python literals (--param size=64, --param size=[120,120],
--param bucket='"0.3-0.4"', --param border=true); anything else is taken as a string.
List a family's parameters with --list-params FAMILY.

Examples:
  python -m masks.freeze --family strokes_deepfill_v2 --count 100 --resolution 256 \\
      --seed 0 --out data/masks/strokes_256
  python -m masks.freeze --family center_box --count 100 --resolution 128 --seed 0 \\
      --param size=64 --out data/masks/ce_center_128
  python -m masks.freeze --family irregular_bucket --count 1000 --resolution 512 --seed 0 \\
      --param bucket=0.3-0.4 --param border=true --out data/masks/nvidia_like_0.3-0.4_border

Families: {families}
Buckets: {buckets}
"""


def parse_param(text: str) -> tuple[str, Any]:
    """``key=value`` -> (key, value); value parsed as JSON, else a Python literal, else str."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"--param expects key=value, got {text!r}")
    raw = raw.strip()
    for parse in (json.loads, ast.literal_eval):
        try:
            return key, parse(raw)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return key, raw


def parse_resolution(text: str) -> tuple[int, int]:
    """``"256"`` -> (256, 256); ``"256x384"`` -> (256, 384) (height x width)."""
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"resolution must be N or HxW, got {text!r}")
    return values[0], values[1]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m masks.freeze",
        description="Write a seeded, verifiable evaluation mask set (PNG files + manifest.json).",
        epilog=_EPILOG.format(families=", ".join(sorted(FAMILIES)), buckets=", ".join(BUCKETS)),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--family", choices=sorted(FAMILIES), metavar="FAMILY", help="mask family")
    parser.add_argument("--count", type=int, help="number of masks (>= 1)")
    parser.add_argument(
        "--resolution", type=parse_resolution, help="N (square) or HxW, e.g. 256 or 256x384"
    )
    parser.add_argument("--seed", type=int, default=0, help="non-negative seed (default 0)")
    parser.add_argument("--out", help="output folder (created; must be empty unless --overwrite)")
    parser.add_argument(
        "--param",
        type=parse_param,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="family parameter, repeatable",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing frozen set in --out"
    )
    parser.add_argument(
        "--list-params", metavar="FAMILY", help="print FAMILY's parameters and defaults, exit"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list_params:
        try:
            defaults = family_params(args.list_params)
        except ValueError as exc:
            parser.error(str(exc))
        for key, value in defaults.items():
            print(f"{key} = {value!r}")
        return 0
    missing = [n for n in ("family", "count", "resolution", "out") if getattr(args, n) is None]
    if missing:
        parser.error("missing " + ", ".join(f"--{n}" for n in missing))
    params = dict(args.param)
    height, width = args.resolution
    try:
        manifest = write_frozen(
            args.family,
            args.count,
            height,
            width,
            args.seed,
            args.out,
            params,
            overwrite=args.overwrite,
        )
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    buckets = Counter(e["bucket"] or "outside" for e in manifest["files"])
    print(
        f"wrote {manifest['count']} {manifest['family']} masks ({height}x{width}, seed "
        f"{manifest['seed']}) to {args.out}; mean hole ratio {manifest['mean_hole_ratio']:.4f}; "
        "buckets " + ", ".join(f"{k}: {v}" for k, v in sorted(buckets.items()))
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
