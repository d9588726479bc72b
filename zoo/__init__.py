"""inpaintbench model zoo: shared layers and losses, and ten classic inpainting models.

Tensor contract, everywhere in the zoo:

- images: float N x 3 x H x W in [-1, 1];
- masks: float N x 1 x H x W in {0, 1}, **1 = hole**;
- ``model(image, mask)`` returns a dict with ``output`` (raw generator prediction) and
  ``composite`` (``mask * output + (1 - mask) * image``), which is what gets scored.

>>> import zoo
>>> model = zoo.create_model("deepfill_v2")
>>> out = model(image, mask)["composite"]

Nothing in ``zoo`` imports Hydra or the benchmark code.
"""

from . import models as _models  # noqa: F401  (registers every model)
from ._registry import create_model, list_models, register_model
from .models import InpaintModel

__all__ = ["create_model", "list_models", "register_model", "InpaintModel"]
