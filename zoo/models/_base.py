"""The interface every inpainting model of the zoo implements.

An :class:`InpaintModel` bundles what a paper defines: a generator, its discriminators (an
``nn.ModuleDict``, empty for a model without one), its training objective and its optimiser
settings.  The generic training loop in ``benchmarks/train.py`` knows nothing else.

Tensor contract (checked by :func:`check_inputs`):

- ``image``: float N x 3 x H x W in [-1, 1], the *whole* picture (hole pixels included: the
  model must blank them itself, and tests check that its output does not depend on them);
- ``mask``: float N x 1 x H x W with values in {0, 1}, **1 = hole**.

``forward(image, mask)`` returns a dict with at least

- ``output``: the raw generator prediction, N x 3 x H x W in [-1, 1];
- ``composite``: ``mask * output + (1 - mask) * image`` (what the benchmark scores);

and whatever intermediate tensors the losses need (``coarse``, ``edges``, ...).  Conventions
of the official code (other ranges, 1 = valid masks, BGR) are converted inside the model.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["InpaintModel", "check_inputs", "count_params"]

Tensor = torch.Tensor
Logs = dict[str, Tensor]


def check_inputs(image: Tensor, mask: Tensor) -> None:
    """Raise ``ValueError`` naming the problem when ``image``/``mask`` break the contract."""
    if not isinstance(image, Tensor) or not isinstance(mask, Tensor):
        raise TypeError("image and mask must be torch tensors")
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be N x 3 x H x W, got shape {tuple(image.shape)}")
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must be N x 1 x H x W (1 = hole), got shape {tuple(mask.shape)}")
    if mask.shape[0] != image.shape[0] or mask.shape[2:] != image.shape[2:]:
        raise ValueError(
            f"mask shape {tuple(mask.shape)} does not match image shape {tuple(image.shape)}"
        )
    if not image.is_floating_point() or not mask.is_floating_point():
        raise ValueError("image and mask must be floating-point tensors")
    if not torch.isfinite(image).all():
        raise ValueError("image contains NaN or Inf")
    lo, hi = image.min().item(), image.max().item()
    if lo < -1.0 - 1e-4 or hi > 1.0 + 1e-4:
        raise ValueError(f"image values must lie in [-1, 1], got [{lo:.3f}, {hi:.3f}]")
    if ((mask != 0) & (mask != 1)).any():
        raise ValueError("mask must be binary {0, 1} (1 = hole); threshold it first")


def count_params(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameters of ``module`` (spectral-norm layers count their weight once)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


class InpaintModel(nn.Module):
    """Base class: generator, discriminators, objective and optimisers of one paper.

    Subclasses set ``self.generator`` (and ``self.discriminators`` entries) in ``__init__`` and
    implement :meth:`inpaint`; trainable models also implement :meth:`generator_loss`,
    :meth:`configure_optimizers` and, with discriminators, :meth:`discriminator_loss`.
    """

    #: H and W are padded up to a multiple of this before :meth:`inpaint`, then cropped back
    pad_multiple: int = 1
    #: the only input size the architecture accepts (Context Encoder: 128), or None
    input_size: int | None = None
    #: discriminator updates per generator update (WGAN-GP critics use 5)
    d_steps: int = 1

    def __init__(self) -> None:
        super().__init__()
        self.generator: nn.Module = nn.Identity()
        self.discriminators = nn.ModuleDict()

    # ------------------------------------------------------------------ inference
    def forward(self, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
        check_inputs(image, mask)
        h, w = image.shape[-2:]
        if self.input_size is not None and (h, w) != (self.input_size, self.input_size):
            raise ValueError(
                f"{type(self).__name__} only accepts {self.input_size}x{self.input_size} "
                f"inputs (a fixed-size architecture), got {h}x{w}; set "
                f"data.resolution={self.input_size}"
            )
        ph, pw = (-h) % self.pad_multiple, (-w) % self.pad_multiple
        if ph or pw:
            # Padding is known context: replicate the border, mark it as not-hole.
            image_p = F.pad(image, (0, pw, 0, ph), mode="replicate")
            mask_p = F.pad(mask, (0, pw, 0, ph), value=0.0)
            out = self.inpaint(image_p, mask_p)
            out = {k: _crop(v, h, w, image_p.shape[-2:]) for k, v in out.items()}
        else:
            out = self.inpaint(image, mask)
        out["composite"] = mask * out["output"] + (1 - mask) * image
        return out

    def inpaint(self, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """Run the generator on a contract-valid, padded batch; return at least ``output``."""
        raise NotImplementedError

    # ------------------------------------------------------------------- training
    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.generator.parameters())

    def phases(self, step: int) -> tuple[bool, bool]:
        """(train generator, train discriminators) at training step ``step``.

        Models with staged schedules (GLCIC: completion only, discriminator only, joint)
        override this; the default trains both every step.
        """
        return True, len(self.discriminators) > 0

    def generator_loss(
        self, image: Tensor, mask: Tensor, out: dict[str, Tensor], step: int
    ) -> tuple[Tensor, Logs]:
        """Total generator loss and its named, detached terms for logging."""
        raise NotImplementedError(f"{type(self).__name__} is not trainable")

    def discriminator_loss(
        self, image: Tensor, mask: Tensor, out: dict[str, Tensor], step: int
    ) -> tuple[Tensor, Logs]:
        """Total discriminator loss (``out`` is detached) and its named terms."""
        raise NotImplementedError(f"{type(self).__name__} has no discriminator")

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """``{"generator": opt}`` plus ``"discriminator"`` when the model has discriminators."""
        raise NotImplementedError(f"{type(self).__name__} is not trainable")

    # ---------------------------------------------------------------- checkpoints
    def trained_state(self) -> dict[str, Any]:
        """What a checkpoint stores: generator and discriminators (never frozen loss nets)."""
        return {
            "generator": self.generator.state_dict(),
            "discriminators": self.discriminators.state_dict(),
        }

    def load_trained_state(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"], strict=True)
        self.discriminators.load_state_dict(state["discriminators"], strict=True)

    def num_params(self) -> dict[str, int]:
        """Trainable parameter counts: generator and each discriminator."""
        counts = {"generator": count_params(self.generator)}
        for name, disc in self.discriminators.items():
            counts[f"discriminator.{name}"] = count_params(disc)
        return counts


def _crop(t: Tensor, h: int, w: int, padded: torch.Size) -> Tensor:
    """Crop a padded full-resolution tensor back to h x w; leave other tensors alone."""
    if isinstance(t, Tensor) and t.dim() == 4 and t.shape[-2:] == padded:
        return t[..., :h, :w]
    return t
