"""Spectral normalisation (Miyato et al., "Spectral Normalization for Generative Adversarial
Networks", ICLR 2018, arXiv 1802.05957, Algorithm 1) and the loading of the three legacy
checkpoint layouts used by the inpainting papers.

The only implementation in the project is ``torch.nn.utils.parametrizations.spectral_norm``.
With ``W`` reshaped to a matrix ``W_mat`` (C_out x C_in*k*k; for transposed convolutions the
output axis is ``dim=1`` and is moved to the front), the layer's effective weight is
``W / sigma`` with ``sigma = u^T W_mat v`` and the unit vectors ``u`` (left) and ``v`` (right)
kept as buffers.

Power iteration, and when it runs:

- ``torch.nn.utils.parametrizations.spectral_norm`` (this module, keys
  ``<prefix>.parametrizations.weight.{original,0._u,0._v}``): in **train** mode every access of
  ``module.weight`` first runs ``n_power_iterations`` times ``u <- normalize(W_mat v)``,
  ``v <- normalize(W_mat^T u)`` (u first), then ``sigma = u^T W_mat v``; in **eval** mode it
  uses the stored ``u``, ``v`` untouched.
- legacy ``torch.nn.utils.spectral_norm`` (keys ``weight_orig``, ``weight_u``, ``weight_v``;
  knazeri/edge-connect ``src/networks.py``, Zhaoyi-Yan/Shift-Net_pytorch
  ``models/modules/modules.py``): the same in eval mode; in train mode the iteration runs in the
  other order, ``v <- normalize(W_mat^T u)`` then ``u <- normalize(W_mat v)``.
- shepnerd/inpainting_gmcnn ``pytorch/model/layer.py`` ``SpectralNorm`` (parameters
  ``weight_bar`` = raw weight, ``weight_u`` (C_out,), ``weight_v`` (C_in*k*k,), the last two with
  ``requires_grad=False``): one legacy-order iteration from the stored ``u`` on **every** call,
  train or eval (it normalises with ``x / (|x| + eps)`` instead of ``x / max(|x|, eps)``).
- nipponjo/deepfillv2-pytorch ``model/networks_tf.py`` ``Conv2DSpectralNorm`` (raw ``weight``
  and a ``weight_u`` buffer of shape (C_out, 1), no ``v``; a port of neuralgym's TF
  ``conv2d_spectral_norm``): one legacy-order iteration from the stored ``u`` on every call.  The
  port also divides its ``weight`` in place by ``sigma`` on every call; since the estimate
  ``W / (u'^T W v')`` with ``v' = normalize(W^T u)``, ``u' = normalize(W v')`` is unchanged when
  ``W`` is scaled by a positive constant, that in-place division never changes the layer's
  output (only ``u`` matters), and it does not matter whether a file was saved before or after
  such calls.

:func:`remap_spectral_norm_keys` maps each layout onto the parametrization keys so that a
module built with :func:`spectral_norm` loads it with ``strict=True`` and, **in eval mode**,
reproduces the forward the source code runs on that checkpoint exactly:

- ``"legacy"``: a pure renaming; eval mode of both uses the stored ``u``, ``v``.
- ``"gmcnn"`` and ``"nipponjo"``: the source iterates once on every call and depends on the
  stored ``u`` only, so the remap performs that iteration once, ``v = normalize(W_mat^T u)``,
  ``u' = normalize(W_mat v)``, and stores ``(u', v)``; then ``sigma = u'^T W_mat v =
  |W_mat v|`` is the source's estimate.  (Storing the original ``u`` with ``v`` would give
  ``|W_mat^T u|`` instead, half an iteration behind; the tests show the difference.)

In train mode the parametrization then runs its own iteration (u first) on every forward, which
is where fine-tuning from such a checkpoint starts to differ from the original code; with
converged ``u``, ``v`` (the top singular vectors) all of them agree.

Deviation: ``"gmcnn"`` iterates with ``F.normalize`` (``max(|x|, eps)``) rather than GMCNN's
``|x| + eps``; with ``eps = 1e-12`` the relative difference is of order 1e-12.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["SPECTRAL_NORM_LAYOUTS", "spectral_norm", "remap_spectral_norm_keys"]

Tensor = torch.Tensor

#: checkpoint layouts understood by :func:`remap_spectral_norm_keys`
SPECTRAL_NORM_LAYOUTS = ("legacy", "gmcnn", "nipponjo")

_ORIGINAL = "parametrizations.weight.original"
_U = "parametrizations.weight.0._u"
_V = "parametrizations.weight.0._v"


def spectral_norm(module: nn.Module, n_power_iterations: int = 1, eps: float = 1e-12) -> nn.Module:
    """Register spectral normalisation on ``module.weight`` and return the module.

    ``torch.nn.utils.parametrizations.spectral_norm`` with its default ``dim`` (0, or 1 for
    transposed convolutions): ``module.weight`` becomes ``W / sigma``, the raw weight lives in
    ``module.parametrizations.weight.original`` (the only trainable tensor it adds) and ``u``,
    ``v`` are buffers.  Train mode: ``n_power_iterations`` updates of ``u``, ``v`` per access of
    ``module.weight`` (1 in every paper here); eval mode: none.

    Args:
        module: a layer with a ``weight`` parameter (convolution or linear).
        n_power_iterations: power-iteration steps per training forward (Miyato et al.: 1).
        eps: floor of the vector norms in the normalisation (torch default 1e-12).
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"spectral_norm needs an nn.Module, got {type(module).__name__}")
    weight = getattr(module, "weight", None)
    if not isinstance(weight, nn.Parameter):
        raise ValueError(f"{type(module).__name__} has no 'weight' parameter to normalise")
    if weight.dim() < 2:
        raise ValueError(f"spectral_norm needs a weight with >= 2 dims, got {tuple(weight.shape)}")
    if isinstance(n_power_iterations, bool) or not isinstance(n_power_iterations, int):
        raise TypeError(f"n_power_iterations must be an int, got {n_power_iterations!r}")
    if n_power_iterations < 1:
        raise ValueError(f"n_power_iterations must be >= 1, got {n_power_iterations}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    return nn.utils.parametrizations.spectral_norm(
        module, n_power_iterations=n_power_iterations, eps=eps
    )


def _one_iteration(weight: Tensor, u: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """One legacy-order power-iteration step from ``u``, in float64: returns ``(u', v)`` with
    ``v = normalize(W_mat^T u)`` and ``u' = normalize(W_mat v)``."""
    w_mat = weight.detach().to(torch.float64).flatten(1)  # (C_out, C_in*k*k)
    u64 = u.detach().to(torch.float64).reshape(-1)  # (C_out,)
    v = F.normalize(w_mat.t() @ u64, dim=0, eps=eps)  # (C_in*k*k,)
    u_new = F.normalize(w_mat @ v, dim=0, eps=eps)  # (C_out,)
    return u_new.to(u.dtype), v.to(u.dtype)


def _check_vectors(prefix: str, weight: Tensor, u: Tensor, v: Tensor | None) -> None:
    rows = weight.shape[0]
    if u.numel() != rows:
        raise ValueError(
            f"{prefix!r}: u has {u.numel()} entries, expected C_out = {rows} "
            f"(weight {tuple(weight.shape)})"
        )
    if v is not None and v.numel() != weight[0].numel():
        raise ValueError(
            f"{prefix!r}: v has {v.numel()} entries, expected {weight[0].numel()} "
            f"(weight {tuple(weight.shape)})"
        )


def _remap_one(
    state_dict: Mapping[str, Tensor], prefix: str, layout: str, eps: float
) -> tuple[dict[str, Tensor], set[str]]:
    """New entries and consumed keys for the normalised layer whose keys start with ``prefix``
    (``""`` or ``"a.b."``)."""
    if layout == "legacy":
        missing = [s for s in ("weight_u", "weight_v") if prefix + s not in state_dict]
        if missing:
            extra = (
                " (a pre-version-1 legacy file, which stored 'weight' and no 'weight_v': load it"
                " into a torch.nn.utils.spectral_norm module first, which converts it)"
                if ("weight_v" in missing and prefix + "weight" in state_dict)
                else ""
            )
            raise ValueError(f"{prefix + 'weight_orig'!r} has no {missing} beside it{extra}")
        if prefix + "weight" in state_dict:
            raise ValueError(f"{prefix!r}: both 'weight' and 'weight_orig' present; ambiguous")
        weight = state_dict[prefix + "weight_orig"]
        u, v = state_dict[prefix + "weight_u"], state_dict[prefix + "weight_v"]
        if u.numel() * v.numel() != weight.numel():
            raise ValueError(
                f"{prefix!r}: u {tuple(u.shape)} and v {tuple(v.shape)} do not factor the "
                f"weight {tuple(weight.shape)}"
            )
        consumed = {prefix + s for s in ("weight_orig", "weight_u", "weight_v")}
        return {prefix + _ORIGINAL: weight, prefix + _U: u, prefix + _V: v}, consumed
    if layout == "gmcnn":
        names = ("weight_bar", "weight_u", "weight_v")
        missing = [s for s in names[1:] if prefix + s not in state_dict]
        if missing:
            raise ValueError(f"{prefix + 'weight_bar'!r} has no {missing} beside it")
        weight, u, v = (state_dict[prefix + s] for s in names)
        _check_vectors(prefix, weight, u, v)
        consumed = {prefix + s for s in names}
    else:  # nipponjo
        if prefix + "weight" not in state_dict:
            raise ValueError(f"{prefix + 'weight_u'!r} has no raw {prefix + 'weight'!r} beside it")
        weight, u = state_dict[prefix + "weight"], state_dict[prefix + "weight_u"]
        _check_vectors(prefix, weight, u, None)
        consumed = {prefix + "weight", prefix + "weight_u"}
    u_new, v_new = _one_iteration(weight, u, eps)
    return {prefix + _ORIGINAL: weight, prefix + _U: u_new, prefix + _V: v_new}, consumed


def remap_spectral_norm_keys(
    state_dict: Mapping[str, Tensor], layout: str, *, eps: float = 1e-12
) -> dict[str, Tensor]:
    """Rename the spectral-norm entries of a legacy checkpoint to parametrization keys.

    Every normalised layer ``<prefix>`` becomes ``<prefix>parametrizations.weight.original``,
    ``...weight.0._u`` and ``...weight.0._v``; all other entries (biases, norms, ...) pass
    through unchanged and in order.  Only the spectral-norm suffixes change: renaming the
    prefixes to this project's module names is the model's converter's job.

    Args:
        state_dict: tensors of the legacy module (bare, any prefix).
        layout: ``"legacy"`` (``weight_orig``/``weight_u``/``weight_v``: EdgeConnect, Shift-Net
            D), ``"gmcnn"`` (``weight_bar``/``weight_u``/``weight_v``) or ``"nipponjo"`` (raw
            ``weight`` + ``weight_u`` of shape (C_out, 1)).  See the module docstring for what
            eval-mode forwards then reproduce; ``"gmcnn"`` and ``"nipponjo"`` assume the
            normalised axis is 0 (convolutions and linears, as in those codebases).
        eps: norm floor of the one power-iteration step done for ``"gmcnn"``/``"nipponjo"``.

    Returns:
        a new dict; new vectors keep the dtype of the stored ``u``.
    """
    if layout not in SPECTRAL_NORM_LAYOUTS:
        raise ValueError(f"layout must be one of {SPECTRAL_NORM_LAYOUTS}, got {layout!r}")
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping, got {type(state_dict).__name__}")
    marker = {"legacy": "weight_orig", "gmcnn": "weight_bar", "nipponjo": "weight_u"}[layout]
    prefixes = [
        key[: -len(marker)] for key in state_dict if key == marker or key.endswith("." + marker)
    ]
    if not prefixes:
        raise ValueError(f"no '{marker}' keys found: not a {layout!r} spectral-norm state dict")
    replacements: dict[str, dict[str, Tensor]] = {}
    consumed: set[str] = set()
    for prefix in prefixes:
        new, used = _remap_one(state_dict, prefix, layout, eps)
        # emit the new entries where the raw weight used to be
        anchor = (
            prefix + {"legacy": "weight_orig", "gmcnn": "weight_bar", "nipponjo": "weight"}[layout]
        )
        replacements[anchor] = new
        consumed |= used
    orphans = [
        key
        for key in state_dict
        if key not in consumed and key.rsplit(".", 1)[-1] in ("weight_u", "weight_v")
    ]
    if orphans:
        raise ValueError(f"spectral-norm vectors without a {layout!r} weight: {orphans}")
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if key in replacements:
            out.update(replacements[key])
        elif key not in consumed:
            out[key] = value
    return out
