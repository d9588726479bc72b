"""Classical, training-free baselines, scored by exactly the same code as the networks.

- ``mean_fill``: every hole pixel gets the mean colour of the image's known pixels;
- ``telea``: OpenCV's fast-marching inpainting (Telea, "An Image Inpainting Technique Based
  on the Fast Marching Method", J. Graphics Tools 2004), ``cv2.inpaint(..., INPAINT_TELEA)``
  on the 8-bit image.

They give every results table a reference point that needs no training and no weights.
"""

from __future__ import annotations

import numpy as np
import torch

from .._registry import register_model
from ._base import InpaintModel

__all__ = ["MeanFill", "Telea"]


class MeanFill(InpaintModel):
    """Fill the hole with the mean colour of the known pixels (0 when nothing is known)."""

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        known = 1 - mask
        count = known.sum(dim=(2, 3), keepdim=True)  # N x 1 x 1 x 1
        mean = (image * known).sum(dim=(2, 3), keepdim=True) / count.clamp(min=1)
        return {"output": mean.expand_as(image).contiguous()}


class Telea(InpaintModel):
    """OpenCV Telea inpainting with neighbourhood ``radius`` pixels (OpenCV's sample uses 3)."""

    def __init__(self, *, radius: int = 3) -> None:
        super().__init__()
        self.radius = radius

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        import cv2

        imgs = ((image.detach().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        imgs = imgs.permute(0, 2, 3, 1).cpu().numpy()
        holes = (mask.detach()[:, 0] > 0.5).to(torch.uint8).mul(255).cpu().numpy()
        out = np.stack(
            [
                cv2.inpaint(np.ascontiguousarray(i), h, self.radius, cv2.INPAINT_TELEA)
                for i, h in zip(imgs, holes)
            ]
        )
        out_t = torch.from_numpy(out).permute(0, 3, 1, 2).to(image)
        return {"output": out_t / 127.5 - 1.0}


@register_model
def mean_fill() -> MeanFill:
    """Mean colour of the known pixels (baseline)."""
    return MeanFill()


@register_model
def telea(*, radius: int = 3) -> Telea:
    """OpenCV Telea fast-marching inpainting (baseline)."""
    return Telea(radius=radius)
