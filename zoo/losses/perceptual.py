"""VGG perceptual (content) and style losses, and the presets of PartialConv, EdgeConnect and
Shift-Net.

Perceptual loss (Johnson et al. ECCV 2016): ``sum_l w_l * crit(phi_l(pred), phi_l(target))``.
Style loss (Gatys et al. CVPR 2016): ``sum_l w_l * crit(G(phi_l(pred)), G(phi_l(target)))`` with
the Gram matrix ``G(f) = F F^T / (C H W)`` of the C x (H W) matrix ``F`` (:func:`gram_matrix`,
as NVIDIA/partialconv ``models/loss.py``, naoto0804 ``loss.py``, knazeri/edge-connect
``src/loss.py`` ``compute_gram`` and Shift-Net_pytorch ``util/util.py`` ``gram_matrix``).
``crit`` is the mean absolute (``"l1"``, ``nn.L1Loss``) or mean squared (``"mse"``,
``nn.MSELoss``) difference over all elements.  Target features are detached (the targets are
ground truth; NVIDIA computes them under ``no_grad``).

Presets (VGG input conversions: :mod:`zoo.layers.vgg`):

- :func:`pconv_losses` (PartialConv, Liu et al. ECCV 2018 eqs. 3-5; NVIDIA ``VGG16PartialLoss``
  and naoto ``InpaintingLoss``): VGG-16 pool1, pool2, pool3, ImageNet mean/std on [0, 1]; L1;
  ``perceptual = sum_l |phi(out) - phi(gt)| + |phi(comp) - phi(gt)|``, ``style = style(out) +
  style(comp)``; weights 0.05 and 120 applied by the model.  Note: naoto computes the pixel
  losses and TV in the ImageNet-normalised space (1 unit = ``2 std`` of ours), so a [-1, 1]
  model keeping naoto's weights weighs those terms about 2.2x less.
- :func:`edgeconnect_losses` (EdgeConnect ``PerceptualLoss`` / ``StyleLoss``): VGG-19, [0, 1]
  input without normalisation; perceptual L1 at relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
  (weight 1 each) on the raw output; style L1 at relu2_2, relu3_4, relu4_4, relu5_2 on
  ``output * mask`` vs ``image * mask`` (in [0, 1]); weights 0.1 and 250 applied by the model.
- :func:`shiftnet_losses` (Shift-Net_pytorch ``shiftnet_model.py`` ``backward_G``): VGG-16
  pool1..pool3 fed the [-1, 1] image as is; style = MSE between Grams, content = MSE between
  features, summed over the three layers; weights 10 and 1 applied by the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.layers.vgg import VGGFeatures

__all__ = [
    "gram_matrix",
    "perceptual_distance",
    "style_distance",
    "PerceptualLoss",
    "StyleLoss",
    "PConvVGGLoss",
    "EdgeConnectVGGLoss",
    "ShiftNetVGGLoss",
    "pconv_losses",
    "edgeconnect_losses",
    "shiftnet_losses",
]

Tensor = torch.Tensor
Criterion = Literal["l1", "mse"]
Features = Mapping[str, Tensor]


def gram_matrix(feature: Tensor) -> Tensor:
    """``F F^T / (C H W)`` per sample: N x C x H x W -> N x C x C."""
    if feature.dim() != 4:
        raise ValueError(f"gram_matrix expects N x C x H x W, got {tuple(feature.shape)}")
    n, c, h, w = feature.shape
    flat = feature.reshape(n, c, h * w)  # N x C x (H W)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def _criterion(name: Criterion):
    if name == "l1":
        return F.l1_loss
    if name == "mse":
        return F.mse_loss
    raise ValueError(f"criterion must be 'l1' or 'mse', got {name!r}")


def perceptual_distance(
    pred: Features, target: Features, layer_weights: Mapping[str, float], criterion: Criterion
) -> Tensor:
    """``sum_l w_l * crit(pred[l], target[l].detach())`` over ``layer_weights``."""
    crit = _criterion(criterion)
    terms = [w * crit(pred[name], target[name].detach()) for name, w in layer_weights.items()]
    return torch.stack(terms).sum()


def style_distance(
    pred: Features, target: Features, layer_weights: Mapping[str, float], criterion: Criterion
) -> Tensor:
    """``sum_l w_l * crit(G(pred[l]), G(target[l].detach()))`` over ``layer_weights``."""
    crit = _criterion(criterion)
    terms = [
        w * crit(gram_matrix(pred[name]), gram_matrix(target[name].detach()))
        for name, w in layer_weights.items()
    ]
    return torch.stack(terms).sum()


def _check_layers(extractor: VGGFeatures, layer_weights: Mapping[str, float]) -> dict:
    if not layer_weights:
        raise ValueError("layer_weights must name at least one layer")
    missing = [name for name in layer_weights if name not in extractor.layers]
    if missing:
        raise ValueError(f"layers {missing} are not computed by the extractor {extractor.layers}")
    return dict(layer_weights)


class PerceptualLoss(nn.Module):
    """``sum_l w_l * crit(phi_l(pred), phi_l(target))`` on a :class:`VGGFeatures`.

    Args:
        extractor: the frozen VGG (its input conversion decides what the VGG sees).
        layer_weights: ``{layer name: weight}``, each layer among ``extractor.layers``.
        criterion: ``"l1"`` or ``"mse"`` (mean over all elements).
    """

    def __init__(
        self,
        extractor: VGGFeatures,
        layer_weights: Mapping[str, float],
        *,
        criterion: Criterion = "l1",
    ) -> None:
        super().__init__()
        _criterion(criterion)
        self.extractor = extractor
        self.layer_weights = _check_layers(extractor, layer_weights)
        self.criterion = criterion

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return perceptual_distance(
            self.extractor(pred), self.extractor(target), self.layer_weights, self.criterion
        )


class StyleLoss(nn.Module):
    """``sum_l w_l * crit(G(phi_l(pred)), G(phi_l(target)))`` on a :class:`VGGFeatures`
    (arguments as :class:`PerceptualLoss`)."""

    def __init__(
        self,
        extractor: VGGFeatures,
        layer_weights: Mapping[str, float],
        *,
        criterion: Criterion = "l1",
    ) -> None:
        super().__init__()
        _criterion(criterion)
        self.extractor = extractor
        self.layer_weights = _check_layers(extractor, layer_weights)
        self.criterion = criterion

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return style_distance(
            self.extractor(pred), self.extractor(target), self.layer_weights, self.criterion
        )


# ---------------------------------------------------------------------- presets
_POOL1_3 = ("pool1", "pool2", "pool3")
_EC_PERCEPTUAL = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
_EC_STYLE = ("relu2_2", "relu3_4", "relu4_4", "relu5_2")


class PConvVGGLoss(nn.Module):
    """PartialConv perceptual and style terms (one VGG pass per image).

    ``forward(output, composite, target)`` (all [-1, 1]) returns ``perceptual`` (output and
    composite terms summed, as naoto's ``prc``), ``style`` (``style_output + style_composite``)
    and the four parts.
    """

    def __init__(self, extractor: VGGFeatures) -> None:
        super().__init__()
        self.extractor = extractor
        self.layer_weights = _check_layers(extractor, dict.fromkeys(_POOL1_3, 1.0))

    def forward(self, output: Tensor, composite: Tensor, target: Tensor) -> dict[str, Tensor]:
        f_out, f_comp = self.extractor(output), self.extractor(composite)
        with torch.no_grad():
            f_gt = self.extractor(target)
        lw = self.layer_weights
        parts = {
            "perceptual_output": perceptual_distance(f_out, f_gt, lw, "l1"),
            "perceptual_composite": perceptual_distance(f_comp, f_gt, lw, "l1"),
            "style_output": style_distance(f_out, f_gt, lw, "l1"),
            "style_composite": style_distance(f_comp, f_gt, lw, "l1"),
        }
        parts["perceptual"] = parts["perceptual_output"] + parts["perceptual_composite"]
        parts["style"] = parts["style_output"] + parts["style_composite"]
        return parts


class EdgeConnectVGGLoss(nn.Module):
    """EdgeConnect inpainting-model perceptual and style terms.

    ``forward(output, target, mask)``: ``output`` is the raw generator output, all in [-1, 1],
    mask 1 = hole.  The style term compares ``output * mask`` with ``target * mask`` in [0, 1]
    (fed here as ``(x + 1) * mask - 1``, whose [0, 1] image is ``(x + 1) / 2 * mask``).
    """

    def __init__(self, extractor: VGGFeatures) -> None:
        super().__init__()
        self.extractor = extractor
        self.perceptual_weights = _check_layers(extractor, dict.fromkeys(_EC_PERCEPTUAL, 1.0))
        self.style_weights = _check_layers(extractor, dict.fromkeys(_EC_STYLE, 1.0))

    def forward(self, output: Tensor, target: Tensor, mask: Tensor) -> dict[str, Tensor]:
        if mask.dim() != 4 or mask.shape[1] != 1:
            raise ValueError(f"mask must be N x 1 x H x W (1 = hole), got {tuple(mask.shape)}")
        m = mask.to(output.dtype)
        with torch.no_grad():
            f_gt = self.extractor(target)
            f_gt_masked = self.extractor((target + 1) * m - 1)
        perceptual = perceptual_distance(
            self.extractor(output), f_gt, self.perceptual_weights, "l1"
        )
        style = style_distance(
            self.extractor((output + 1) * m - 1), f_gt_masked, self.style_weights, "l1"
        )
        return {"perceptual": perceptual, "style": style}


class ShiftNetVGGLoss(nn.Module):
    """Shift-Net style (MSE of Grams) and content (MSE of features) at pool1..pool3.

    ``forward(output, target)`` in [-1, 1] (the official code passes the whole image, or the
    hole patch with centre / rectangle masks).
    """

    def __init__(self, extractor: VGGFeatures) -> None:
        super().__init__()
        self.extractor = extractor
        self.layer_weights = _check_layers(extractor, dict.fromkeys(_POOL1_3, 1.0))

    def forward(self, output: Tensor, target: Tensor) -> dict[str, Tensor]:
        f_out = self.extractor(output)
        with torch.no_grad():
            f_gt = self.extractor(target)
        return {
            "style": style_distance(f_out, f_gt, self.layer_weights, "mse"),
            "content": perceptual_distance(f_out, f_gt, self.layer_weights, "mse"),
        }


def pconv_losses(*, weights: Literal["imagenet", "random"] = "imagenet") -> PConvVGGLoss:
    """PartialConv preset: VGG-16 pool1-3, ImageNet mean/std on [0, 1], L1."""
    extractor = VGGFeatures(
        "vgg16", _POOL1_3, weights=weights, input_range=(0.0, 1.0), normalize="imagenet"
    )
    return PConvVGGLoss(extractor)


def edgeconnect_losses(
    *, weights: Literal["imagenet", "random"] = "imagenet"
) -> EdgeConnectVGGLoss:
    """EdgeConnect preset: VGG-19, [0, 1] input without normalisation, L1."""
    extractor = VGGFeatures(
        "vgg19",
        _EC_PERCEPTUAL + _EC_STYLE,
        weights=weights,
        input_range=(0.0, 1.0),
        normalize="none",
    )
    return EdgeConnectVGGLoss(extractor)


def shiftnet_losses(*, weights: Literal["imagenet", "random"] = "imagenet") -> ShiftNetVGGLoss:
    """Shift-Net preset: VGG-16 pool1-3 fed [-1, 1] directly, MSE."""
    extractor = VGGFeatures(
        "vgg16", _POOL1_3, weights=weights, input_range=(-1.0, 1.0), normalize="none"
    )
    return ShiftNetVGGLoss(extractor)
