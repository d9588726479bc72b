"""Side-by-side inference speed against the reference implementations (issue 8, goal 2).

``python -m benchmarks.reference_speed --reference-root DIR [--models a,b] [--runs 5]``
prints the table; ``python -m benchmarks.speed --reference-root DIR`` adds it to
``reports/speed.md``.  ``DIR`` holds checkouts of the reference repositories as
``DIR/<owner>/<repo>/`` (e.g. ``DIR/knazeri/edge-connect``); a missing one is reported as
missing.  Their code is imported from there at benchmark time and never copied into this
repository; nothing in their folders is modified (bytecode writing is switched off while
importing).

How each row is measured (one process, 1 intra-op thread unless ``--threads``,
``torch.set_flush_denormal(True)``, eval mode, ``torch.inference_mode``, batch 1, the
benchmark's seeded image and centred S/2 x S/2 hole, S = 256; Context Encoder 128):

1. our model is built with ``zoo.create_model`` (through :func:`benchmarks.profile.build_model`)
   with the options that make it the reference's network (e.g. GLCIC ``bn_after_relu=True``);
   their network is built from their module with their constructor and initialisation;
2. their randomly initialised ``state_dict`` is converted with our converter
   (``zoo.models.*.convert_*``) and loaded into ours, so both time the same weights, and the
   largest absolute difference of the two outputs on the same input is reported (in our
   convention, [-1, 1]; "n/a" with the reason where no converter exists);
3. each side's inputs are prepared outside the timed region in its own convention (1 = valid
   masks, [0, 1] images, ImageNet normalisation, ...);
4. one warm-up call of each side counts its FLOPs (``FlopCounterMode``: convolutions and
   matmuls, 2 x multiply-adds), a second warm-up call follows, then ``runs`` timed rounds
   alternate the two sides (ours first in even rounds, theirs first in odd rounds);
   medians are reported and ``ratio = reference time / our time`` (> 1: ours is faster),
   from wall time and, steadier on a loaded machine, from the thread's CPU time.

Our timed call is what the benchmark harness runs for inference, ``model(image, mask)``
(input checks, convention changes, padding, the generator, the composite), except for the
EdgeConnect component rows, which time our generator module alone on their input tensor.
Their timed call is their generator's ``forward`` on prepared inputs (each row says what it
includes).  The reference adapters (the ``_adapt_*`` functions) are the only code here that
touches their modules; shims needed to import old code are documented there.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks.profile import build_model, count_flops, inputs, load_average
from zoo.layers import native

__all__ = [
    "ENV_ROOT",
    "SPECS",
    "Spec",
    "Pair",
    "reference_imports",
    "reference_commit",
    "measure_pair",
    "measure_spec",
    "measure_all",
    "select_specs",
    "missing_references",
    "render_table",
    "render_section",
    "main",
]

Tensor = torch.Tensor
#: environment variable naming the default ``--reference-root``
ENV_ROOT = "INPAINTBENCH_REFERENCE_ROOT"
SIZE = 256
THEIR_SEED = 1  # their modules are initialised from this seed, ours (then overwritten) from 0


# --------------------------------------------------------------------------- data types
@dataclass
class Pair:
    """The two timed calls of one row and the outputs to compare (our convention)."""

    ours: Callable[[], Any]
    theirs: Callable[[], Any]
    ours_output: Callable[[], Tensor] | None = None
    theirs_output: Callable[[], Tensor] | None = None
    diff_note: str = ""  # why there is no comparison, or a remark on it


@dataclass(frozen=True)
class Spec:
    """One comparison: our model (registry name), their repository and what is timed."""

    key: str
    model: str
    repo: str  # owner/name
    component: str
    theirs_call: str
    ours_call: str
    adapter: Callable[[Path, int], Pair]
    size: int = SIZE
    subdir: str = ""  # folder inside the checkout that goes on sys.path


@dataclass
class _Times:
    ours: list[float] = field(default_factory=list)
    theirs: list[float] = field(default_factory=list)
    ours_cpu: list[float] = field(default_factory=list)
    theirs_cpu: list[float] = field(default_factory=list)


# --------------------------------------------------------------------------- imports
def _inside(path: str | None, root: Path) -> bool:
    if not path:
        return False
    try:
        return Path(path).resolve().is_relative_to(root)
    except (OSError, ValueError):
        return False


def _module_root_names(path: Path) -> set[str]:
    names = set()
    for entry in path.iterdir():
        if entry.suffix == ".py":
            names.add(entry.stem)
        elif entry.is_dir() and not entry.name.startswith("."):
            names.add(entry.name)
    return names


@contextlib.contextmanager
def reference_imports(path: Path) -> Iterator[None]:
    """Import modules of a reference checkout at ``path`` without leaking them.

    Reference repositories use clashing top-level names (``model``, ``models``, ``utils``,
    ``util``, ``net``, ``layers``); inside the block ``path`` is first on ``sys.path``,
    already imported modules of the same names are set aside, and afterwards every module
    loaded from ``path`` is removed from ``sys.modules`` (the objects stay alive through the
    references the caller keeps) and the set-aside ones are restored.  No bytecode is
    written into their folder.
    """
    root = Path(path).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    names = _module_root_names(root)
    shadowed = {
        k: sys.modules.pop(k)
        for k in list(sys.modules)
        if k.split(".")[0] in names and not _inside(getattr(sys.modules[k], "__file__", ""), root)
    }
    before = set(sys.modules)
    old_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        sys.dont_write_bytecode = old_bytecode
        with contextlib.suppress(ValueError):
            sys.path.remove(str(root))
        for name in set(sys.modules) - before:
            module = sys.modules[name]
            paths = [getattr(module, "__file__", None), *getattr(module, "__path__", [])]
            if any(_inside(p, root) for p in paths):
                del sys.modules[name]
        sys.modules.update(shadowed)


def _quiet() -> contextlib.AbstractContextManager:
    """Swallow the prints of reference constructors (Shift-Net's ``define_G``)."""
    return contextlib.redirect_stdout(io.StringIO())


def reference_commit(checkout: Path) -> str:
    """The commit of a reference checkout: ``git rev-parse HEAD`` in a git work tree, else
    the first word of a sidecar file ``<checkout>.commit`` (for exported trees), else
    ``"unknown"``."""
    checkout = Path(checkout)
    if (checkout / ".git").exists():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                ["git", "-C", str(checkout), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
            return out.stdout.strip()
    sidecar = checkout.parent / (checkout.name + ".commit")
    if sidecar.is_file():
        words = sidecar.read_text().split()
        if words:
            return words[0]
    return "unknown"


# --------------------------------------------------------------------------- helpers
def _ours(name: str, size: int, **overrides: Any) -> torch.nn.Module:
    return build_model(name, size, **overrides).eval()


def _theirs(factory: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    torch.manual_seed(THEIR_SEED)
    with _quiet():
        module = factory()
    module.eval()  # naoto's PConvUNet.train() returns None, so do not chain
    return module


def _sample(size: int) -> tuple[Tensor, Tensor]:
    return inputs(1, size, torch.device("cpu"))


def _model_call(model: torch.nn.Module, image: Tensor, mask: Tensor) -> Pair:
    """Our timed call: ``model(image, mask)`` (its ``output`` is compared)."""
    return Pair(ours=lambda: model(image, mask), theirs=lambda: None,
                ours_output=lambda: model(image, mask)["output"])  # fmt: skip


# --------------------------------------------------------------------------- adapters
def _edge_connect_modules(root: Path) -> Any:
    with reference_imports(root):
        import src.networks as networks  # knazeri/edge-connect: src/networks.py
    return networks


def _edge_connect_weights(their_edge: Any, their_inpaint: Any) -> dict[str, Any]:
    from zoo.models.edge_connect import convert_official_state_dicts

    return convert_official_state_dicts(
        edge_gen=None if their_edge is None else their_edge.state_dict(),
        inpaint_gen=None if their_inpaint is None else their_inpaint.state_dict(),
    )["generator"]


def _adapt_edge_connect_part(part: str) -> Callable[[Path, int], Pair]:
    """G1 (``EdgeGenerator``: [gray, edges, mask]) or G2 (``InpaintGenerator``: [RGB,
    edges]) alone: theirs and our :class:`ResnetGenerator` on the same input tensor."""

    def adapt(root: Path, size: int) -> Pair:
        networks = _edge_connect_modules(root)
        if part == "edge":
            theirs = _theirs(lambda: networks.EdgeGenerator(use_spectral_norm=True))
        else:
            theirs = _theirs(lambda: networks.InpaintGenerator())
        model = _ours("edge_connect", size)
        ours = getattr(model.generator, part)
        state = _edge_connect_weights(theirs if part == "edge" else None,
                                      theirs if part == "inpaint" else None)  # fmt: skip
        ours.load_state_dict(state[part], strict=True)
        image, mask = _sample(size)
        x01 = (image + 1) / 2
        gray = (x01 * torch.tensor([0.2125, 0.7154, 0.0721]).view(1, 3, 1, 1)).sum(1, True)
        g = torch.Generator().manual_seed(2)
        edges = (torch.rand(1, 1, size, size, generator=g) > 0.9).float()
        if part == "edge":  # official EdgeModel.forward input
            x = torch.cat([gray * (1 - mask) + mask, edges * (1 - mask), mask], dim=1)
        else:  # official InpaintingModel.forward input
            x = torch.cat([x01 * (1 - mask) + mask, edges], dim=1)
        return Pair(ours=lambda: ours(x), theirs=lambda: theirs(x),
                    ours_output=lambda: ours(x) * 2 - 1,
                    theirs_output=lambda: theirs(x) * 2 - 1)  # fmt: skip

    return adapt


def _adapt_edge_connect_pipeline(root: Path, size: int) -> Pair:
    """Whole test pipeline: Canny (skimage, on the known region, as their dataset in test
    mode), G1, G2 vs our ``model(image, mask)``."""
    from skimage.feature import canny

    networks = _edge_connect_modules(root)
    their_edge = _theirs(lambda: networks.EdgeGenerator(use_spectral_norm=True))
    their_inpaint = _theirs(lambda: networks.InpaintGenerator())
    model = _ours("edge_connect", size)
    state = _edge_connect_weights(their_edge, their_inpaint)
    for part in ("edge", "inpaint"):
        getattr(model.generator, part).load_state_dict(state[part], strict=True)
    image, mask = _sample(size)
    rgb = ((image + 1) / 2).float()  # their images: [0, 1], mask 1 = hole
    known = (mask[0, 0] < 0.5).numpy()
    gray64 = ((image.double() + 1) / 2 * torch.tensor([0.2125, 0.7154, 0.0721],
              dtype=torch.float64).view(1, 3, 1, 1)).sum(1)[0].numpy()  # fmt: skip
    gray = torch.from_numpy(gray64).float()[None, None]

    def theirs() -> Tensor:
        edges = torch.from_numpy(canny(gray64, sigma=2.0, mask=known).astype("float32"))
        edges = edges[None, None]
        e_in = torch.cat([gray * (1 - mask) + mask, edges * (1 - mask), mask], dim=1)
        e = their_edge(e_in)
        return their_inpaint(torch.cat([rgb * (1 - mask) + mask, e], dim=1))

    pair = _model_call(model, image, mask)
    pair.theirs = theirs
    pair.theirs_output = lambda: theirs() * 2 - 1
    return pair


def _adapt_partial_conv(root: Path, size: int) -> Pair:
    from zoo.models.partial_conv import convert_naoto_state_dict, from_imagenet, to_imagenet

    with reference_imports(root):
        import net  # naoto0804: net.py

    theirs = _theirs(lambda: net.PConvUNet(layer_size=7))
    model = _ours("partial_conv", size)
    model.generator.load_state_dict(convert_naoto_state_dict(theirs.state_dict()), strict=True)
    image, mask = _sample(size)
    valid = (1 - mask).expand(-1, 3, -1, -1).contiguous()  # naoto: 3 channels, 1 = valid
    x = to_imagenet(image) * valid  # their input: normalised ground truth * mask
    pair = _model_call(model, image, mask)
    pair.theirs = lambda: theirs(x, valid)
    pair.theirs_output = lambda: from_imagenet(theirs(x, valid)[0])
    return pair


def _adapt_glcic(root: Path, size: int) -> Pair:
    from zoo.models.glcic import IMAGENET_MEAN, convert_otenim_state_dict

    with reference_imports(root):
        import models  # otenim: models.py (imports layers.py)

    theirs = _theirs(models.CompletionNetwork)
    model = _ours("glcic", size, bn_after_relu=True)
    state = convert_otenim_state_dict(theirs.state_dict())["generator"]
    model.generator.load_state_dict(state, strict=True)
    image, mask = _sample(size)
    x01 = (image + 1) / 2
    mpv = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)  # their mpv = our mean_pixel
    x = torch.cat([x01 - x01 * mask + mpv * mask, mask], dim=1)  # otenim predict.py input
    pair = _model_call(model, image, mask)
    pair.theirs = lambda: theirs(x)
    pair.theirs_output = lambda: theirs(x) * 2 - 1
    return pair


def _adapt_context_encoder(root: Path, size: int) -> Pair:
    from zoo.models.context_encoder import convert_boyuanjiang_state_dict, fill_holes

    with reference_imports(root):
        import model as ce  # BoyuanJiang: model.py

    opt = types.SimpleNamespace(ngpu=1, nc=3, nef=64, ngf=64, ndf=64, nBottleneck=4000)
    theirs = _theirs(lambda: ce._netG(opt))
    ours_model = _ours("context_encoder", 128)
    state = convert_boyuanjiang_state_dict(theirs.state_dict())["generator"]
    ours_model.generator.load_state_dict(state, strict=True)
    image, mask = _sample(128)
    x = fill_holes(image, mask)  # their test.py: the hole set to the constant mean colour
    pair = _model_call(ours_model, image, mask)
    pair.theirs = lambda: theirs(x)
    pair.theirs_output = lambda: theirs(x)
    pair.ours_output = lambda: ours_model(image, mask)["prediction"]
    return pair


def _adapt_deepfill_v1(root: Path, size: int) -> Pair:
    from zoo.models.deepfill_v1 import convert_daa233_state_dict

    with reference_imports(root):
        import model.networks as networks  # daa233: model/networks.py (+ utils/tools.py)

    config = {"input_dim": 3, "ngf": 32}  # configs/config.yaml netG
    theirs = _theirs(lambda: networks.Generator(config, False, None))
    model = _ours("deepfill_v1", size, padding="daa233")
    model.generator.load_state_dict(
        convert_daa233_state_dict(theirs.state_dict())["generator"], strict=True
    )
    image, mask = _sample(size)
    x = image * (1 - mask)  # test_single.py: normalised image with the hole zeroed
    pair = _model_call(model, image, mask)
    pair.theirs = lambda: theirs(x, mask)
    pair.theirs_output = lambda: theirs(x, mask)[1]
    return pair


def _adapt_deepfill_v2(root: Path, size: int) -> Pair:
    from zoo.models.deepfill_v2 import convert_nipponjo_state_dict

    with reference_imports(root):
        import model.networks_tf as networks  # nipponjo: model/networks_tf.py

    theirs = _theirs(lambda: networks.Generator(cnum_in=5, cnum=48, return_flow=False))
    model = _ours("deepfill_v2", size, attention_fuse=False)  # their Generator: fuse=False
    model.generator.load_state_dict(
        convert_nipponjo_state_dict(theirs.state_dict())["generator"], strict=True
    )
    image, mask = _sample(size)
    masked = image * (1 - mask)
    ones = torch.ones_like(mask)
    x = torch.cat([masked, ones, ones * mask], dim=1)  # test.py input
    pair = _model_call(model, image, mask)
    pair.theirs = lambda: theirs(x, mask)
    pair.theirs_output = lambda: theirs(x, mask)[1]
    return pair


def _adapt_gmcnn(root: Path, size: int) -> Pair:
    from zoo.models.gmcnn import convert_gmcnn_state_dict

    with reference_imports(root):
        import model.net as net  # shepnerd pytorch/: model/net.py (+ layer, loss, util)
        from model.layer import init_weights

    def build() -> torch.nn.Module:
        gm = net.GMCNN(4, out_channels=3, cnum=32, act=F.elu, norm=None)
        init_weights(gm)  # InpaintingModel_GMCNN does this
        return gm

    theirs = _theirs(build)
    model = _ours("gmcnn", size)
    model.generator.load_state_dict(
        convert_gmcnn_state_dict(theirs.state_dict())["generator"], strict=True
    )
    image, mask = _sample(size)
    x = torch.cat([image * (1 - mask), mask], dim=1)  # InpaintingModel_GMCNN.evaluate
    pair = _model_call(model, image, mask)
    pair.theirs = lambda: theirs(x)
    pair.theirs_output = lambda: theirs(x)
    return pair


def _adapt_shift_net(root: Path, size: int) -> Pair:
    from zoo.models.shift_net import convert_official_state_dict

    with reference_imports(root):
        import models.networks as networks  # Zhaoyi-Yan: models/networks.py (+ modules, util)

    image, mask = _sample(size)
    hole = mask.bool()
    # options/base_options.py defaults of the shiftnet model, CPU (gpu_ids = [])
    opt = types.SimpleNamespace(gpu_ids=[], shift_sz=1, stride=1, mask_thred=1,
                                triple_weight=1, strength=1, skip=0, fuse=0)  # fmt: skip

    def build() -> torch.nn.Module:
        built = networks.define_G(4, 3, 64, "unet_shift_triple", opt, hole, "instance",
                                  False, "normal", [], 0.02)  # fmt: skip
        return built[0]  # (netG, innerCos_list, shift_list)

    theirs = _theirs(build)
    model = _ours("shift_net", size)
    model.generator.load_state_dict(convert_official_state_dict(theirs.state_dict()), strict=True)
    # shiftnet_model.set_input / set_latent_mask: per-input mask set on the special layers
    for module in theirs.modules():
        if hasattr(module, "set_mask") and hasattr(module, "layer_to_last"):
            module.set_mask(hole)
    known = 1 - mask
    x = torch.cat([image * known, known], dim=1)  # set_input: hole 0 + known-mask channel
    pair = _model_call(model, image, mask)
    pair.theirs = lambda: theirs(x)
    pair.theirs_output = lambda: theirs(x)
    return pair


_G_CALL = "`model(image, mask)`: checks, conventions, generator, composite"

SPECS: tuple[Spec, ...] = (
    Spec("edge_connect/edge", "edge_connect", "knazeri/edge-connect",
         "edge generator G1 (`src/networks.py` `EdgeGenerator`, spectral norm)",
         "`EdgeGenerator(x)`, x = [masked gray, masked edges, mask]",
         "`generator.edge(x)` on the same x", _adapt_edge_connect_part("edge")),
    Spec("edge_connect/inpaint", "edge_connect", "knazeri/edge-connect",
         "inpainting generator G2 (`InpaintGenerator`)",
         "`InpaintGenerator(x)`, x = [masked RGB in [0, 1], edges]",
         "`generator.inpaint(x)` on the same x", _adapt_edge_connect_part("inpaint")),
    Spec("edge_connect", "edge_connect", "knazeri/edge-connect",
         "test pipeline: Canny + G1 + G2",
         "skimage Canny (sigma 2, known region) + input assembly + G1 + G2", _G_CALL,
         _adapt_edge_connect_pipeline),
    Spec("partial_conv", "partial_conv", "naoto0804/pytorch-inpainting-with-partial-conv",
         "`net.py` `PConvUNet(layer_size=7)`",
         "`PConvUNet(x, m)`, x = normalised image * m, m = 3-channel valid mask "
         "(its `mask_conv` is a full C_out x C_in convolution of the mask)",
         _G_CALL, _adapt_partial_conv),
    Spec("glcic", "glcic", "otenim/GLCIC-PyTorch", "`models.py` `CompletionNetwork`",
         "`CompletionNetwork(x)`, x = [image in [0, 1] with mpv-filled hole, mask]",
         _G_CALL + "; `glcic(bn_after_relu=True)` (otenim's BN order)", _adapt_glcic),
    Spec("context_encoder", "context_encoder", "BoyuanJiang/context_encoder_pytorch",
         "`model.py` `_netG` (nBottleneck 4000)",
         "`_netG(x)`, x = 128 x 128 image with the hole filled (64 x 64 output)",
         _G_CALL, _adapt_context_encoder, size=128),
    Spec("deepfill_v1", "deepfill_v1", "daa233/generative-inpainting-pytorch",
         "`model/networks.py` `Generator` (coarse + fine, contextual attention)",
         "`Generator(x, mask)`, x = image with the hole zeroed",
         _G_CALL + "; `deepfill_v1(padding=\"daa233\")` (the port's padding and attention)",
         _adapt_deepfill_v1),
    Spec("deepfill_v2", "deepfill_v2", "nipponjo/deepfillv2-pytorch",
         "`model/networks_tf.py` `Generator(cnum=48)` (gated convs, contextual attention)",
         "`Generator(x, mask)`, x = [masked image, ones, ones * mask]",
         _G_CALL + "; `deepfill_v2(attention_fuse=False)` (their Generator's setting)",
         _adapt_deepfill_v2),
    Spec("gmcnn", "gmcnn", "shepnerd/inpainting_gmcnn", "`pytorch/model/net.py` `GMCNN`",
         "`GMCNN(x)`, x = [masked image, mask]", _G_CALL, _adapt_gmcnn, subdir="pytorch"),
    Spec("shift_net", "shift_net", "Zhaoyi-Yan/Shift-Net_pytorch",
         "`define_G(..., 'unet_shift_triple')` (U-Net + shift layer)",
         "`netG(x)`, x = [masked image, known mask]; the layers' masks set before (as "
         "`set_input`)", _G_CALL, _adapt_shift_net),
)  # fmt: skip


# --------------------------------------------------------------------------- measuring
def _median_ms(times: Sequence[float]) -> float:
    return statistics.median(times) * 1e3 if times else math.nan


def measure_pair(
    pair: Pair,
    runs: int,
    *,
    clock: Callable[[], float] = time.perf_counter,
    cpu_clock: Callable[[], float] = time.thread_time,
) -> dict[str, Any]:
    """Warm-up (FLOPs counted) and a plain warm-up of each side, then ``runs`` alternating
    rounds; the outputs are compared first.  Runs under ``torch.inference_mode``.

    Each call is timed by ``clock`` (wall time, the reported medians) and by ``cpu_clock``
    (this thread's CPU time): with one intra-op thread on a shared machine the CPU-time
    ratio leaves out the time the process waited for a core, so it is the steadier of the
    two when the load is high (it still includes cache and memory-bandwidth contention)."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    with torch.inference_mode():
        if pair.ours_output is not None and pair.theirs_output is not None:
            a, b = pair.ours_output(), pair.theirs_output()
            if a.shape != b.shape:
                raise ValueError(f"outputs differ in shape: ours {a.shape}, theirs {b.shape}")
            max_diff: float | None = (a.double() - b.double()).abs().max().item()
        else:
            max_diff = None
        flops_ours, _ = count_flops(pair.ours)
        flops_theirs, _ = count_flops(pair.theirs)
        pair.ours()
        pair.theirs()
        times = _Times()
        for r in range(runs):
            order = [("ours", pair.ours), ("theirs", pair.theirs)]
            for side, fn in order if r % 2 == 0 else order[::-1]:
                start, start_cpu = clock(), cpu_clock()
                fn()
                getattr(times, side + "_cpu").append(cpu_clock() - start_cpu)
                getattr(times, side).append(clock() - start)
    ours_ms, theirs_ms = _median_ms(times.ours), _median_ms(times.theirs)
    return {
        "ours_ms": ours_ms,
        "theirs_ms": theirs_ms,
        "ratio": ratio(theirs_ms, ours_ms),
        "ours_cpu_ms": _median_ms(times.ours_cpu),
        "theirs_cpu_ms": _median_ms(times.theirs_cpu),
        "cpu_ratio": ratio(_median_ms(times.theirs_cpu), _median_ms(times.ours_cpu)),
        "ours_gflops": flops_ours / 1e9,
        "theirs_gflops": flops_theirs / 1e9,
        "max_diff": max_diff,
        "diff_note": pair.diff_note,
        "runs": runs,
    }


def ratio(reference_ms: float, ours_ms: float) -> float:
    """Reference time / our time (> 1: ours is faster); NaN when either is unknown."""
    if not (reference_ms > 0 and ours_ms > 0):  # also catches NaN
        return math.nan
    return reference_ms / ours_ms


def _checkout(root: Path, spec: Spec) -> Path:
    return Path(root) / spec.repo


def _base_row(spec: Spec) -> dict[str, Any]:
    return {
        "key": spec.key,
        "model": spec.model,
        "reference": spec.repo,
        "commit": "",
        "component": spec.component,
        "theirs_call": spec.theirs_call,
        "ours_call": spec.ours_call,
        "size": spec.size,
    }


def measure_spec(spec: Spec, root: Path, runs: int, *, size: int | None = None) -> dict[str, Any]:
    """One row: ``status`` is ``"ok"``, ``"missing"`` (no checkout under ``root``) or
    ``"error: ..."`` (the adapter or a call failed; nothing is raised).  ``size`` overrides
    the image side (tests use small ones; fixed-size models ignore it)."""
    row = _base_row(spec)
    if size is not None and spec.size == SIZE:
        row["size"] = size
    checkout = _checkout(root, spec)
    if not checkout.is_dir():
        row["status"] = "missing"
        return row
    row["commit"] = reference_commit(checkout)
    try:
        pair = spec.adapter(checkout / spec.subdir if spec.subdir else checkout, row["size"])
        row.update(measure_pair(pair, runs))
        row["status"] = "ok"
    except Exception as exc:  # a reference that cannot run is reported, not fatal
        row["status"] = f"error: {type(exc).__name__}: {exc}".splitlines()[0][:300]
    return row


def select_specs(models: str | Sequence[str] | None) -> list[Spec]:
    """Specs of the given model names (comma-separated or a list); None = all.  A spec key
    (``edge_connect/edge``) selects that row alone."""
    if models is None:
        return list(SPECS)
    wanted = [m.strip() for m in models.split(",")] if isinstance(models, str) else list(models)
    wanted = [m for m in wanted if m]
    known = {s.model for s in SPECS} | {s.key for s in SPECS}
    unknown = [m for m in wanted if m not in known]
    if unknown:
        raise ValueError(f"no reference comparison for {unknown}; known: {sorted(known)}")
    return [s for s in SPECS if s.model in wanted or s.key in wanted]


def missing_references(root: Path | None, specs: Sequence[Spec] = SPECS) -> list[str]:
    """Repositories (owner/name) of ``specs`` without a checkout under ``root``."""
    repos = dict.fromkeys(s.repo for s in specs)
    if root is None:
        return list(repos)
    return [r for r in repos if not (Path(root) / r).is_dir()]


def _one(key: str, root: str, runs: int) -> dict[str, Any]:
    spec = next(s for s in SPECS if s.key == key)
    return measure_spec(spec, Path(root), runs)


def measure_all(
    root: Path,
    specs: Sequence[Spec] | None = None,
    runs: int = 5,
    *,
    isolate: bool = True,
    threads: int | None = None,
    log: Callable[[str], None] | None = print,
) -> list[dict[str, Any]]:
    """Every row of ``specs`` (default all); with ``isolate`` each row in a fresh
    interpreter (:func:`benchmarks.profile.run_isolated`: clean allocator, no module
    leakage between references)."""
    from benchmarks.profile import run_isolated

    rows = []
    for spec in SPECS if specs is None else specs:
        if isolate and _checkout(root, spec).is_dir():
            row = run_isolated(_one, spec.key, str(root), runs, threads=threads)
        else:
            row = measure_spec(spec, Path(root), runs)
        rows.append(row)
        if log is not None:
            log(_log_line(row))
    return rows


def _log_line(row: dict[str, Any]) -> str:
    if row["status"] != "ok":
        return f"{row['key']}: {row['status']}"
    return (
        f"{row['key']}: reference {row['theirs_ms']:.1f} ms, ours {row['ours_ms']:.1f} ms, "
        f"ratio {row['ratio']:.2f} (CPU time {_fmt_ratio(row.get('cpu_ratio'))}), "
        f"max diff {_fmt_diff(row)}"
    )


# --------------------------------------------------------------------------- rendering
def _fmt_ms(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:,.1f}"


def _fmt_ratio(x: float | None) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.2f}"


def _fmt_diff(row: dict[str, Any]) -> str:
    d = row.get("max_diff")
    if d is None:
        note = row.get("diff_note") or "no converter"
        return f"n/a ({note})"
    return f"{d:.1e}"


def _fmt_commit(commit: str) -> str:
    return commit[:7] if commit and commit != "unknown" else (commit or "")


def render_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Markdown table of the measured rows (missing / failed rows say so)."""
    lines = [
        "| model | reference (commit) | component | input | reference ms | our ms "
        "| ratio (ref / ours) | ratio, CPU time | our GFLOPs | their GFLOPs "
        "| max abs diff (same weights) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ref = f"{r['reference']} ({_fmt_commit(r.get('commit', ''))})"
        side = f"1 x {r['size']} x {r['size']}"
        if r["status"] != "ok":
            lines.append(
                f"| {r['key']} | {ref} | {r['component']} | {side} | | | {r['status']} | | | | |"
            )
            continue
        lines.append(
            f"| {r['key']} | {ref} | {r['component']} | {side} | {_fmt_ms(r['theirs_ms'])} "
            f"| {_fmt_ms(r['ours_ms'])} | **{r['ratio']:.2f}** | {_fmt_ratio(r.get('cpu_ratio'))} "
            f"| {r['ours_gflops']:,.1f} "
            f"| {r['theirs_gflops']:,.1f} | {_fmt_diff(r)} |"
        )
    return lines


def _calls(rows: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["", "What each side's timed call includes:", ""]
    for r in rows:
        lines.append(f"- {r['key']}: reference {r['theirs_call']}; ours {r['ours_call']}.")
    return lines


def render_section(
    rows: Sequence[dict[str, Any]] | None,
    root: Path | None,
    *,
    runs: int = 5,
    threads: int | None = None,
    load: tuple[str, str] | None = None,
    missing: Sequence[str] | None = None,
) -> list[str]:
    """The "Against the reference code" section of ``reports/speed.md``."""
    lines = ["## Against the reference code", ""]
    if rows is None:
        return lines + [
            "Not measured in this run. Export the reference repositories as "
            "`DIR/<owner>/<repo>/` (e.g. `DIR/knazeri/edge-connect`) and run "
            "`python -m benchmarks.speed --reference-root DIR` (or set "
            f"`{ENV_ROOT}=DIR`); `python -m benchmarks.reference_speed --reference-root DIR` "
            "prints this table alone. Repositories compared: "
            + ", ".join(f"`{r}`" for r in missing_references(None))
            + ".",
        ]
    thread_text = "1 intra-op thread" if threads in (None, 1) else f"{threads} intra-op threads"
    load_text = "" if load is None else f" Load average {load[0]} before / {load[1]} after."
    lines += [
        "Each reference generator runs beside ours in one process "
        f"({thread_text}, flushed denormals, eval mode, `torch.inference_mode`, batch 1, the "
        "seeded image with the centred S/2 hole): their module is imported from "
        f"`{root}` (never copied here), their random weights are converted with our converter "
        "and loaded into ours, each side's inputs are prepared in its own convention outside "
        "the timed region, one warm-up call counts the FLOPs (FlopCounterMode) and a second "
        f"one follows, then {runs} rounds alternate the two sides (ours first in even "
        "rounds); medians of wall time. **ratio = reference time / our time** (> 1: ours is "
        "faster); 'ratio, CPU time' is the same ratio of the medians of the thread's CPU time "
        "(steadier under load: it leaves out waiting for a core). Max abs diff compares the "
        "two outputs in [-1, 1] on the same input and weights."
        + load_text
        + f" Our gated activation (DeepFill v2): {native.status()}.",
        "",
        *render_table(rows),
        *_calls(rows),
    ]
    missing = [] if missing is None else list(missing)
    lines += [
        "",
        "Missing from the reference folder: "
        + (", ".join(f"`{m}`" for m in missing) if missing else "none")
        + ".",
    ]
    return lines


# --------------------------------------------------------------------------- command line
def default_root() -> Path | None:
    import os

    value = os.environ.get(ENV_ROOT)
    return Path(value) if value else None


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reference-root",
        type=Path,
        default=default_root(),
        help=f"folder of DIR/<owner>/<repo> checkouts (default: ${ENV_ROOT})",
    )
    parser.add_argument("--models", default=None, help="comma-separated model names or keys")
    parser.add_argument("--runs", type=int, default=5, help="timed rounds per row")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--no-isolate", action="store_true", help="all rows in this process")
    args = parser.parse_args(argv)
    if args.reference_root is None:
        parser.error(f"--reference-root is required (or set {ENV_ROOT})")
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    specs = select_specs(args.models)
    before = load_average()
    rows = measure_all(
        args.reference_root,
        specs,
        args.runs,
        isolate=not args.no_isolate,
        threads=args.threads,
        log=lambda s: print(s, file=sys.stderr, flush=True),
    )
    section = render_section(
        rows,
        args.reference_root,
        runs=args.runs,
        threads=args.threads,
        load=(before, load_average()),
        missing=missing_references(args.reference_root, specs),
    )
    print("\n".join(section))
    return rows


if __name__ == "__main__":
    main()
