"""Speed options for prediction and training: channels_last, torch.compile, AMP.

No paper here: these are PyTorch execution options (issue 8, goal 3), applied the same way by
:func:`benchmarks.evaluate.predict` (``eval.*``) and :func:`benchmarks.train.train`
(``train.*``).  None of them changes what a model computes, only how:

- ``channels_last``: the model's 4-D parameters and buffers and every 4-D input are stored
  N x H x W x C in memory (``torch.channels_last``); shapes and indexing are unchanged.  Convolution
  kernels then sum in another order, so float32 outputs differ by rounding only.
- ``compile``: the model's :meth:`~zoo.models.InpaintModel.inpaint` (the generator forward: every
  layer of every stage, after the input contract check whose ``.item()`` calls would break the
  graph) is replaced by ``torch.compile(model.inpaint, mode=compile_mode)`` as an attribute of
  that one instance.  Parameters stay where they are, so ``state_dict`` keys are unchanged (no
  ``_orig_mod.`` prefix) and a checkpoint loads into an uncompiled model.  Code that inductor
  cannot trace (OpenCV post-processing, NumPy Canny edges) runs eagerly between graphs.
- ``amp``: ``none`` | ``bf16`` | ``fp16`` autocast of the forward and the losses.  ``bf16``
  works on CUDA and on the CPU; ``fp16`` is CUDA only, and training then scales each loss with
  its own ``torch.amp.GradScaler`` (one per optimizer, so generator and discriminator steps do
  not share an overflow verdict).  Booleans are accepted for configurations written before
  the option had modes: ``true`` = ``bf16``, ``false`` = ``none``.

:func:`accelerated` applies channels_last and compile for the duration of a ``with`` block
and restores the model afterwards (eager ``inpaint``, contiguous parameters), so options used
for training do not leak into prediction and vice versa.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn as nn

__all__ = [
    "AMP_MODES",
    "COMPILE_MODES",
    "resolve_amp",
    "check_compile_mode",
    "validate",
    "autocast_context",
    "to_memory_format",
    "compile_forward",
    "uncompile_forward",
    "prepare_for_inference",
    "accelerated",
    "make_grad_scalers",
]

#: autocast modes: no autocast, bfloat16 (CUDA and CPU), float16 (CUDA only)
AMP_MODES = ("none", "bf16", "fp16")
#: ``torch.compile`` modes (``reduce-overhead`` uses CUDA graphs on CUDA)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# OmegaConf turns a YAML boolean given to a string field into "True"/"False"
_AMP_ALIASES = {"true": "bf16", "false": "none", "bfloat16": "bf16", "float16": "fp16"}
_COMPILED = "_accel_compile_mode"  # instance attribute naming the mode of a compiled inpaint


def resolve_amp(amp: str | bool | None, device: torch.device | str | None = None) -> str:
    """The autocast mode ``amp`` names, one of :data:`AMP_MODES`.

    Accepts the mode names (any case), ``True``/``False`` (``bf16``/``none``), their string
    forms and ``None`` (``none``).  With ``device``, ``fp16`` off CUDA is a ``ValueError``.
    """
    if amp is None or amp is False:
        mode = "none"
    elif amp is True:
        mode = "bf16"
    elif isinstance(amp, str):
        key = amp.strip().lower()
        mode = _AMP_ALIASES.get(key, key)
    else:
        raise TypeError(f"amp must be one of {', '.join(AMP_MODES)} (or a bool), got {amp!r}")
    if mode not in AMP_MODES:
        raise ValueError(
            f"amp={amp!r} is not an autocast mode; use one of {', '.join(AMP_MODES)} "
            f"(true = bf16, false = none)"
        )
    if device is not None and mode == "fp16" and torch.device(device).type != "cuda":
        raise ValueError(
            f"amp=fp16 needs a CUDA device (got {torch.device(device)}); use amp=bf16 on the CPU"
        )
    return mode


def check_compile_mode(mode: str) -> str:
    """``mode`` when it is one of :data:`COMPILE_MODES`, else a ``ValueError``."""
    if mode not in COMPILE_MODES:
        raise ValueError(
            f"compile_mode={mode!r} is not a torch.compile mode; use one of "
            f"{', '.join(COMPILE_MODES)}"
        )
    return mode


def validate(options: Any, device: torch.device | str) -> None:
    """Check the ``amp``/``compile_mode``/``channels_last``/``compile`` fields of ``options``
    (an ``eval`` or ``train`` config section, or :class:`~benchmarks.train.TrainOptions`)
    before any work starts; raises ``ValueError``/``TypeError`` naming the bad field."""
    resolve_amp(options.amp, device)
    check_compile_mode(options.compile_mode)
    for flag in ("channels_last", "compile"):
        if not isinstance(getattr(options, flag), bool):
            raise TypeError(f"{flag} must be true or false, got {getattr(options, flag)!r}")


def autocast_context(
    device: torch.device | str, amp: str | bool | None
) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for the mode ``amp`` on ``device`` (a no-op context for ``none``)."""
    device = torch.device(device)
    mode = resolve_amp(amp, device)
    if mode == "none":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=_AMP_DTYPES[mode])


def to_memory_format(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """``x`` in channels_last layout when asked and 4-D (N x C x H x W); else ``x`` itself."""
    if channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def compile_forward(model: nn.Module, mode: str = "default") -> nn.Module:
    """Compile ``model``'s generator forward in place and return ``model``.

    An :class:`~zoo.models.InpaintModel` gets ``inpaint`` compiled (its ``forward`` keeps the
    eager input check); any other module gets ``nn.Module.compile``.  Neither renames a
    parameter.  Calling it again with the same mode does nothing; another mode recompiles.
    """
    check_compile_mode(mode)
    if getattr(model, _COMPILED, None) == mode:
        return model
    uncompile_forward(model)
    if hasattr(type(model), "inpaint"):
        model.inpaint = torch.compile(model.inpaint, mode=mode)
    else:
        model.compile(mode=mode)
    setattr(model, _COMPILED, mode)
    return model


def uncompile_forward(model: nn.Module) -> nn.Module:
    """Undo :func:`compile_forward` (the eager forward again); a no-op on an eager model."""
    if getattr(model, _COMPILED, None) is None:
        return model
    if "inpaint" in vars(model):
        del model.inpaint
    else:
        model._compiled_call_impl = None
    delattr(model, _COMPILED)
    return model


def prepare_for_inference(
    model: nn.Module,
    *,
    channels_last: bool = False,
    compile: bool = False,  # the option's name (eval.compile)
    compile_mode: str = "default",
) -> nn.Module:
    """``model`` in eval mode, converted to channels_last and/or compiled (in place)."""
    model.eval()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if compile:
        compile_forward(model, compile_mode)
    return model


@contextlib.contextmanager
def accelerated(
    model: nn.Module,
    *,
    channels_last: bool = False,
    compile: bool = False,  # the option's name (eval.compile / train.compile)
    compile_mode: str = "default",
) -> Iterator[nn.Module]:
    """Apply channels_last / compile to ``model`` inside the block; restore it afterwards.

    The training mode flag is left alone (the caller sets ``train()``/``eval()``).  On exit the
    parameters are contiguous again and ``inpaint`` is eager, whatever happened inside.
    """
    check_compile_mode(compile_mode)
    try:
        if channels_last:
            model.to(memory_format=torch.channels_last)
        if compile:
            compile_forward(model, compile_mode)
        yield model
    finally:
        if compile:
            uncompile_forward(model)
        if channels_last:
            model.to(memory_format=torch.contiguous_format)


def make_grad_scalers(
    names: list[str], device: torch.device | str, amp: str | bool | None
) -> dict[str, torch.amp.GradScaler] | None:
    """One ``GradScaler`` per optimizer name for ``amp=fp16`` (CUDA), else ``None``.

    bf16 has float32's exponent range, so its gradients need no scaling.
    """
    device = torch.device(device)
    if resolve_amp(amp, device) != "fp16":
        return None
    return {name: torch.amp.GradScaler(device.type) for name in names}
