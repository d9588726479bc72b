"""Model registry: ``register_model`` / ``list_models`` / ``create_model``.

A registered entrypoint is a function ``fn(**kwargs) -> InpaintModel`` whose name is the
registry name.  ``create_model`` drops keyword arguments whose value is ``None``, so a
configuration file may leave an argument at ``null`` and the code default stays in force.
"""

from __future__ import annotations

import fnmatch
import inspect
import typing
from collections.abc import Callable

import torch.nn as nn

__all__ = [
    "register_model",
    "list_models",
    "create_model",
    "model_entrypoint",
    "model_parameters",
    "accepts",
]

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register ``fn`` under ``fn.__name__``; registering a name twice is an error."""
    name = fn.__name__
    if name in _MODELS:
        raise ValueError(f"model {name!r} is already registered")
    _MODELS[name] = fn
    return fn


def list_models(pattern: str = "*", exclude: str | None = None) -> list[str]:
    """Registered names matching the fnmatch ``pattern`` (and not ``exclude``), sorted."""
    names = [n for n in _MODELS if fnmatch.fnmatch(n, pattern)]
    if exclude is not None:
        names = [n for n in names if not fnmatch.fnmatch(n, exclude)]
    return sorted(names)


def model_entrypoint(name: str) -> Callable[..., nn.Module]:
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(list_models())}")
    return _MODELS[name]


def model_parameters(name: str) -> dict[str, inspect.Parameter]:
    """Keyword parameters of the entrypoint ``name``; an entrypoint that forwards ``**kwargs``
    to its model class is read through the class's ``__init__``."""
    fn = model_entrypoint(name)
    params = dict(inspect.signature(fn).parameters)
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        model_class = typing.get_type_hints(fn).get("return")
        if model_class is not None:
            params.update(inspect.signature(model_class.__init__).parameters)
            params.pop("self", None)
    return params


def accepts(name: str, argument: str) -> bool:
    """Whether the model ``name`` takes the keyword ``argument``."""
    return argument in model_parameters(name)


def create_model(name: str, **kwargs) -> nn.Module:
    """Build the registered model ``name``; ``None``-valued kwargs are dropped."""
    fn = model_entrypoint(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return fn(**kwargs)
