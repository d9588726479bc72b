"""One file per model, named as registered.  Every public module here is imported so its
``@register_model`` entrypoints exist; files starting with ``_`` are infrastructure."""

import importlib
import pkgutil

from ._base import InpaintModel, check_inputs, count_params

__all__ = ["InpaintModel", "check_inputs", "count_params"]

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
