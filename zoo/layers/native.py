"""Optional native CPU kernel for DeepFill v2's gated activation, compiled at first use.

Why: :func:`zoo.layers.gated_conv.gated_activation`, ``elu(feature) * sigmoid(gate)``, runs in
PyTorch as three to five passes over memory (``elu_``, ``sigmoid_``, ``mul``, plus two dense
copies in ``channels_last`` when C is not a multiple of 32), and PyTorch's ELU evaluates
``expm1``, about 7x slower than ``exp`` on this CPU.  In DeepFill v2's forward (256 x 256, one
thread) that came to ~96 of ~434 ms.  One fused loop over the convolution output does the same
work about 4x faster.

How: ``csrc/gated_activation.c`` (plain C99, no Python or PyTorch headers) is compiled by the
system C compiler (``$CC``, else ``cc``/``gcc``/``clang``) into a temporary folder of this
process on first use (~0.2 s) and loaded with :mod:`ctypes`.  It is compiled with
``-march=native`` for this very machine and never cached across processes or machines; the
compiler's ``-O3 -fno-math-errno -fno-trapping-math`` vectorise its loops (``exp`` is written
out in the source, within 1.5 ulp).

When it is used (:func:`gated_activation`): inference only (no autograd graph to build), float32
CPU tensors in dense NCHW or ``channels_last`` layout, activation ``nn.ELU``, ``nn.ReLU`` or
none, not while ``torch.compile`` traces, and only with one intra-op thread
(``torch.get_num_threads() == 1``).  With two threads on this 2-core CPU PyTorch's parallel
ops are as fast (DeepFill v2 forward 216 against 221 ms, medians of 24 interleaved runs; the
activations are then memory-bound), and with many cores they would outrun one thread.
Otherwise, or when no compiler is found, the build or the load fails (one warning with the
message) or ``INPAINTBENCH_NATIVE=0`` is set, callers get ``None`` and run the PyTorch ops.
The two agree to a few ulp (``tests/layers/test_native.py``).
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from zoo.layers.fast_deconv import is_channels_last

__all__ = [
    "ENV_SWITCH",
    "SOURCE",
    "enabled",
    "load",
    "status",
    "gated_activation",
    "exp_f32",
]

Tensor = torch.Tensor

#: environment variable: ``0`` switches the native kernel off (PyTorch ops only)
ENV_SWITCH = "INPAINTBENCH_NATIVE"
#: the C source
SOURCE = Path(__file__).with_name("csrc") / "gated_activation.c"
#: compiler flags, tried in order (the second set for compilers without the x86 options)
FLAG_SETS = (
    ("-O3", "-march=native", "-mprefer-vector-width=512"),
    ("-O3",),
)
COMMON_FLAGS = ("-std=c99", "-fno-math-errno", "-fno-trapping-math", "-fPIC", "-shared")
#: activation codes of the C kernel
ACT_CODES = {nn.ELU: 0, nn.ReLU: 1, nn.Identity: 2}


def enabled() -> bool:
    """False when ``INPAINTBENCH_NATIVE=0`` (or ``false``/``off``/``no``) is set."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "off", "no")


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


@functools.cache
def _build() -> tuple[ctypes.CDLL | None, str]:
    """:func:`_compile`, once per process."""
    return _compile()


def _compile() -> tuple[ctypes.CDLL | None, str]:
    """Compile and load the kernel: ``(library, the command that built it)``, or ``(None,
    why not)`` after one warning."""
    cc = _compiler()
    if cc is None:
        warnings.warn(
            "no C compiler (cc, gcc, clang or $CC) found: the gated activation runs on "
            "PyTorch ops (same values, slower)",
            RuntimeWarning,
            stacklevel=3,
        )
        return None, "no C compiler found"
    folder = tempfile.mkdtemp(prefix="inpaintbench-native-")
    try:
        errors = []
        for flags in FLAG_SETS:
            target = os.path.join(folder, f"gated_activation_{len(errors)}.so")
            cmd = [cc, *flags, *COMMON_FLAGS, str(SOURCE), "-o", target]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
                if done.returncode != 0:
                    errors.append(f"{' '.join(cmd)}:\n{done.stderr.strip()[-800:]}")
                    continue
                lib = ctypes.CDLL(target)  # mapped: the file itself can go
            except (OSError, subprocess.TimeoutExpired) as exc:  # e.g. a noexec temp folder
                errors.append(f"{' '.join(cmd)}: {exc}")
                continue
            _declare(lib)
            return lib, " ".join([cc, *flags, *COMMON_FLAGS[:-2]])
        warnings.warn(
            "building the native gated activation failed; PyTorch ops are used instead "
            "(same values, slower):\n" + "\n".join(errors),
            RuntimeWarning,
            stacklevel=3,
        )
        return None, "the build failed"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _declare(lib: ctypes.CDLL) -> None:
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    lib.gated_activation_f32.argtypes = [ptr, ptr, *[i64] * 5, ctypes.c_int32, ctypes.c_float]
    lib.gated_activation_f32.restype = None
    lib.exp_f32_array.argtypes = [ptr, ptr, i64]
    lib.exp_f32_array.restype = None


def load() -> ctypes.CDLL | None:
    """The compiled library (compiled on the first call of the process), or None when it is
    switched off or cannot be built."""
    return _build()[0] if enabled() else None


def status() -> str:
    """One line for report headers: whether the kernel is used, and how it was built."""
    if not enabled():
        return f"off ({ENV_SWITCH}=0): PyTorch ops"
    lib, built_with = _build()
    if lib is None:
        return f"unavailable ({built_with}): PyTorch ops"
    threads = torch.get_num_threads()
    if threads != 1:
        return f"PyTorch ops ({threads} intra-op threads; the native C kernel runs with 1)"
    return f"native C kernel ({built_with})"


def gated_activation(y: Tensor, channels: int, act: nn.Module) -> Tensor | None:
    """``act(y[:, :channels]) * sigmoid(y[:, channels:])`` by the native kernel, in ``y``'s
    layout (dense NCHW or ``channels_last``), or None where it does not apply (module
    docstring)."""
    code = ACT_CODES.get(type(act))
    if (
        code is None
        or y.dim() != 4
        or y.shape[1] != 2 * channels
        or channels < 1
        or y.dtype != torch.float32
        or y.device.type != "cpu"
        or (torch.is_grad_enabled() and y.requires_grad)
        or torch.compiler.is_compiling()
        or torch.get_num_threads() != 1
        or y.numel() == 0
    ):
        return None
    n, c2, h, w = y.shape
    c = channels
    if y.is_contiguous():  # a block per batch element: C*H*W feature values, then C*H*W gate
        fmt, blocks, length, y_stride = torch.contiguous_format, n, c * h * w, c2 * h * w
    elif is_channels_last(y):  # a block per pixel: C feature values, then C gate
        fmt, blocks, length, y_stride = torch.channels_last, n * h * w, c, c2
    else:
        return None
    lib = load()
    if lib is None:
        return None
    out = torch.empty(n, c, h, w, dtype=y.dtype, device=y.device, memory_format=fmt)
    alpha = float(act.alpha) if code == 0 else 1.0
    lib.gated_activation_f32(y.data_ptr(), out.data_ptr(), blocks, length, y_stride, length,
                             length, code, alpha)  # fmt: skip
    return out


def exp_f32(x: Tensor) -> Tensor | None:
    """The kernel's ``exp`` on a float32 CPU tensor (for testing its accuracy), or None when
    the kernel is unavailable."""
    lib = load()
    if lib is None:
        return None
    x = x.detach().to(torch.float32).contiguous()
    out = torch.empty_like(x)
    lib.exp_f32_array(x.data_ptr(), out.data_ptr(), x.numel())
    return out
