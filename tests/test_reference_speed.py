"""benchmarks.reference_speed without the reference code: ratio arithmetic and table
rendering on fabricated rows, missing / broken references reported (not raised), the
interleaved timing loop on a fake clock, import isolation of clashing reference modules, and
two adapters run end to end against tiny fake reference packages written into ``tmp_path``
(their modules subclass ours, so the same-weights difference must be exactly 0).
No wall-clock assertions."""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from benchmarks import reference_speed as rs
from benchmarks import speed


def _row(key: str = "glcic", status: str = "ok", **kw) -> dict:
    row = {
        "key": key,
        "model": key.split("/")[0],
        "reference": "otenim/GLCIC-PyTorch",
        "commit": "3f9de13e88b76171f4ab0077827805fe5a55d572",
        "component": "`CompletionNetwork`",
        "theirs_call": "`CompletionNetwork(x)`",
        "ours_call": "`model(image, mask)`",
        "size": 256,
        "status": status,
    }
    if status == "ok":
        row.update(
            theirs_ms=300.0,
            ours_ms=150.0,
            ratio=rs.ratio(300.0, 150.0),
            cpu_ratio=rs.ratio(240.0, 160.0),
            ours_gflops=65.1,
            theirs_gflops=65.1,
            max_diff=2.5e-7,
            diff_note="",
            runs=5,
        )
    row.update(kw)
    return row


# --------------------------------------------------------------------------- arithmetic
@pytest.mark.parametrize(
    ("ref", "ours", "expected"),
    [(300.0, 150.0, 2.0), (100.0, 400.0, 0.25), (704.0, 704.0, 1.0), (1.5, 3.0, 0.5)],
)
def test_ratio_is_reference_over_ours(ref: float, ours: float, expected: float) -> None:
    assert rs.ratio(ref, ours) == expected


@pytest.mark.parametrize(("ref", "ours"), [(math.nan, 1.0), (1.0, math.nan), (0.0, 1.0), (1, 0)])
def test_ratio_of_unknown_times_is_nan(ref: float, ours: float) -> None:
    assert math.isnan(rs.ratio(ref, ours))


# --------------------------------------------------------------------------- rendering
def test_table_rows_from_fabricated_measurements() -> None:
    rows = [
        _row(),
        _row("partial_conv", max_diff=None, diff_note="no converter"),
        _row("gmcnn", status="missing", reference="shepnerd/inpainting_gmcnn", commit=""),
        _row("shift_net", status="error: ImportError: no module named util"),
    ]
    lines = rs.render_table(rows)
    assert lines[0].startswith("| model | reference (commit) |")
    assert lines[1].count("|---") == 11
    assert (
        "| glcic | otenim/GLCIC-PyTorch (3f9de13) | `CompletionNetwork` | 1 x 256 x 256 "
        "| 300.0 | 150.0 | **2.00** | 1.50 | 65.1 | 65.1 | 2.5e-07 |"
    ) == lines[2]
    assert lines[3].endswith("| **2.00** | 1.50 | 65.1 | 65.1 | n/a (no converter) |")
    assert "| gmcnn | shepnerd/inpainting_gmcnn () |" in lines[4] and "| missing |" in lines[4]
    assert "| error: ImportError: no module named util |" in lines[5]


def test_section_without_measurements_says_how_to_produce_it() -> None:
    text = "\n".join(rs.render_section(None, None))
    assert text.startswith("## Against the reference code")
    assert "--reference-root DIR" in text and rs.ENV_ROOT in text
    for spec in rs.SPECS:
        assert f"`{spec.repo}`" in text


def test_section_with_rows_lists_the_missing_references() -> None:
    rows = [_row(), _row("gmcnn", status="missing")]
    text = "\n".join(
        rs.render_section(
            rows, Path("/refs"), runs=7, load=("1.0", "2.0"), missing=["shepnerd/inpainting_gmcnn"]
        )
    )
    assert "then 7 rounds alternate" in text and "Load average 1.0 before / 2.0 after" in text
    assert "Missing from the reference folder: `shepnerd/inpainting_gmcnn`." in text
    assert "- glcic: reference `CompletionNetwork(x)`; ours `model(image, mask)`." in text
    assert "**2.00**" in text


def test_speed_report_has_the_section_with_and_without_a_reference_root() -> None:
    args = argparse.Namespace(runs=5, budget=30.0, size=256)
    rates = {"conv": 80.0, "matmul": 100.0}
    env = {"date": "d", "device": "cpu (x)", "torch": "t", "threads": "1", "omp": "1",
           "cpus": "2", "python": "3"}  # fmt: skip
    plain = speed.render([], rates, [rates, rates], None, env, ("1", "2"), args)
    assert "## Against the reference code" in plain and "--reference-root DIR" in plain
    reference = {"rows": [_row()], "root": Path("/refs"), "runs": 5, "threads": 1,
                 "load": ("1", "2"), "missing": []}  # fmt: skip
    text = speed.render([], rates, [rates, rates], None, env, ("1", "2"), args, reference)
    assert "| glcic | otenim/GLCIC-PyTorch (3f9de13) |" in text
    assert "Missing from the reference folder: none." in text


# --------------------------------------------------------------------------- selection
def test_select_specs_by_model_and_key() -> None:
    assert [s.key for s in rs.select_specs("edge_connect")] == [
        "edge_connect/edge",
        "edge_connect/inpaint",
        "edge_connect",
    ]
    assert [s.key for s in rs.select_specs("glcic, edge_connect/edge")] == [
        "edge_connect/edge",
        "glcic",
    ]
    assert len(rs.select_specs(None)) == len(rs.SPECS) >= 7
    with pytest.raises(ValueError, match="mean_fill"):
        rs.select_specs("mean_fill")


def test_missing_references_are_rows_not_errors(tmp_path: Path) -> None:
    (tmp_path / "otenim" / "GLCIC-PyTorch").mkdir(parents=True)  # present but empty
    specs = rs.select_specs("gmcnn,context_encoder")
    rows = rs.measure_all(tmp_path, specs, runs=1, isolate=False, log=None)
    assert [r["status"] for r in rows] == ["missing", "missing"]
    assert rs.missing_references(tmp_path, specs) == [
        "BoyuanJiang/context_encoder_pytorch",
        "shepnerd/inpainting_gmcnn",
    ]
    assert rs.missing_references(tmp_path, rs.select_specs("glcic")) == []
    # an existing but empty checkout: the adapter's import fails -> an error row
    (glcic,) = rs.measure_all(tmp_path, rs.select_specs("glcic"), 1, isolate=False, log=None)
    assert glcic["status"].startswith("error: ModuleNotFoundError")


def test_reference_commit_from_a_sidecar_file(tmp_path: Path) -> None:
    checkout = tmp_path / "owner" / "repo"
    checkout.mkdir(parents=True)
    assert rs.reference_commit(checkout) == "unknown"
    (tmp_path / "owner" / "repo.commit").write_text("0123456789abcdef\n")
    assert rs.reference_commit(checkout) == "0123456789abcdef"


# --------------------------------------------------------------------------- timing loop
def test_measure_pair_interleaves_and_takes_medians() -> None:
    calls: list[str] = []
    now, cpu = [0.0], [0.0]
    cost = {"ours": [1.0, 2.0, 9.0, 1.5], "theirs": [3.0, 3.0, 4.0, 100.0]}  # timed rounds
    x = torch.zeros(1, 2, 5, 5)
    w = torch.zeros(3, 2, 3, 3)

    def side(name: str, padding: int):
        def call() -> torch.Tensor:
            calls.append(name)
            timed = calls[4:]  # after the two warm-ups (2 + 2)
            if len(calls) > 4:
                now[0] += cost[name][timed.count(name) - 1]
                cpu[0] += 1.0 if name == "ours" else 4.0  # CPU time: ratio 4
            return F.conv2d(x, w, padding=padding)

        return call

    ours, theirs = side("ours", 0), side("theirs", 1)
    pair = rs.Pair(ours, theirs, ours_output=lambda: x, theirs_output=lambda: x)
    result = rs.measure_pair(pair, runs=4, clock=lambda: now[0], cpu_clock=lambda: cpu[0])
    assert calls[:4] == ["ours", "theirs", "ours", "theirs"]  # FLOP count, then plain warm-up
    # ABBA: ours first in even rounds, theirs first in odd rounds
    assert calls[4:] == ["ours", "theirs", "theirs", "ours", "ours", "theirs", "theirs", "ours"]
    # FLOPs: 2 * (3 * 2 * 9) per output pixel; 3 x 3 outputs (no padding) vs 5 x 5
    assert result["ours_gflops"] == 972 / 1e9 and result["theirs_gflops"] == 2700 / 1e9
    assert result["ours_ms"] == 1750.0  # median of 1, 2, 9, 1.5 s
    assert result["theirs_ms"] == 3500.0  # median of 3, 3, 4, 100 s
    assert result["ratio"] == 2.0 and result["runs"] == 4 and result["max_diff"] == 0.0
    assert result["ours_cpu_ms"] == 1000.0 and result["theirs_cpu_ms"] == 4000.0
    assert result["cpu_ratio"] == 4.0


def test_measure_pair_reports_the_largest_difference_and_rejects_shape_mismatch() -> None:
    a = torch.tensor([[0.0, 1.0, -2.0]])
    b = torch.tensor([[0.5, 1.0, -2.25]])
    pair = rs.Pair(lambda: a, lambda: b, ours_output=lambda: a, theirs_output=lambda: b)
    assert rs.measure_pair(pair, runs=1)["max_diff"] == 0.5
    none = rs.measure_pair(rs.Pair(lambda: a, lambda: b, diff_note="why"), runs=1)
    assert none["max_diff"] is None and none["diff_note"] == "why"
    bad = rs.Pair(lambda: a, lambda: b, ours_output=lambda: a, theirs_output=lambda: a.t())
    with pytest.raises(ValueError, match="shape"):
        rs.measure_pair(bad, runs=1)
    with pytest.raises(ValueError, match="runs"):
        rs.measure_pair(pair, runs=0)


# --------------------------------------------------------------------------- imports
def test_reference_imports_isolate_clashing_module_names(tmp_path: Path) -> None:
    for owner, value in (("a", 1), ("b", 2)):
        (tmp_path / owner / "pkg").mkdir(parents=True)
        (tmp_path / owner / "pkg" / "__init__.py").write_text("")
        (tmp_path / owner / "pkg" / "tools.py").write_text(f"VALUE = {value}\n")
        (tmp_path / owner / "model.py").write_text("from pkg.tools import VALUE\n")
    got = []
    for owner in ("a", "b"):
        with rs.reference_imports(tmp_path / owner):
            import model  # noqa: PLC0415 (the fake reference module)

        got.append(model.VALUE)
        assert "model" not in sys.modules and "pkg" not in sys.modules
        assert "pkg.tools" not in sys.modules
        assert str((tmp_path / owner).resolve()) not in sys.path
        assert not list((tmp_path / owner).rglob("__pycache__"))  # nothing written there
    assert got == [1, 2]
    with pytest.raises(FileNotFoundError):
        with rs.reference_imports(tmp_path / "absent"):
            pass


# --------------------------------------------------------------------------- fake references
FAKE_EDGE_CONNECT = '''
"""Fake knazeri src/networks.py: the official InpaintGenerator layout (ours has the same
keys), built with the official constructor signature."""
from zoo.models.edge_connect import ResnetGenerator


class InpaintGenerator(ResnetGenerator):
    def __init__(self, residual_blocks=8, init_weights=True):
        super().__init__(4, 3, use_spectral_norm=False, output="tanh01",
                         residual_blocks=residual_blocks)
        for p in self.parameters():  # weights unlike ours, so that the converter matters
            p.data.uniform_(-0.05, 0.05)
'''

FAKE_CONTEXT_ENCODER = '''
"""Fake BoyuanJiang model.py: ``_netG(opt)`` with the port's ``main`` Sequential layout."""
from zoo.models.context_encoder import ContextEncoderGenerator


class _netG(ContextEncoderGenerator):
    def __init__(self, opt):
        super().__init__(n_bottleneck=opt.nBottleneck, nef=opt.nef, ngf=opt.ngf, nc=opt.nc)
        self.ngpu = opt.ngpu
        for name, b in self.named_buffers():  # BN statistics unlike ours
            if name.endswith("running_var"):
                b.uniform_(0.5, 2.0)
'''


def _write(root: Path, repo: str, rel: str, text: str) -> None:
    path = root / repo / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def test_edge_connect_adapter_against_a_fake_reference(tmp_path: Path) -> None:
    _write(tmp_path, "knazeri/edge-connect", "src/networks.py", FAKE_EDGE_CONNECT)
    (tmp_path / "knazeri" / "edge-connect.commit").write_text("3142579785c5c8cc\n")
    (spec,) = rs.select_specs("edge_connect/inpaint")
    row = rs.measure_spec(spec, tmp_path, runs=2, size=16)
    assert row["status"] == "ok", row["status"]
    assert row["commit"] == "3142579785c5c8cc" and row["size"] == 16
    assert row["max_diff"] == 0.0  # same module, same converted weights, same input
    assert row["ours_gflops"] == row["theirs_gflops"] > 0
    assert row["ours_ms"] > 0 and row["theirs_ms"] > 0 and row["ratio"] > 0
    assert "src" not in sys.modules
    # a reference that fails to import is an error row naming the problem
    _write(tmp_path, "knazeri/edge-connect", "src/networks.py", "import not_a_module\n")
    broken = rs.measure_spec(spec, tmp_path, runs=1, size=16)
    assert broken["status"].startswith("error: ModuleNotFoundError")


def test_context_encoder_adapter_against_a_fake_reference(tmp_path: Path) -> None:
    _write(tmp_path, "BoyuanJiang/context_encoder_pytorch", "model.py", FAKE_CONTEXT_ENCODER)
    (spec,) = rs.select_specs("context_encoder")
    row = rs.measure_spec(spec, tmp_path, runs=1)
    assert row["status"] == "ok", row["status"]
    assert row["size"] == 128 and row["commit"] == "unknown"
    assert row["max_diff"] == 0.0
    # their _netG alone vs our whole model call: same convolutions, ours adds nothing else
    assert row["ours_gflops"] == row["theirs_gflops"] == pytest.approx(0.70, abs=0.01)
    text = "\n".join(rs.render_table([row]))
    assert "| context_encoder | BoyuanJiang/context_encoder_pytorch (unknown) |" in text
