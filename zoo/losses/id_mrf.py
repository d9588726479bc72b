"""Implicit-diversified MRF (ID-MRF) loss of GMCNN.

Paper: Wang, Tao, Qi, Shen, Jia, "Image Inpainting via Generative Multi-column Convolutional
Neural Networks", NeurIPS 2018 (arXiv 1810.08771), Sec. 3.1, eqs. 1-3; it is the contextual
loss of Mechrez et al. (ECCV 2018) on 1 x 1 VGG-19 feature patches.  Official code followed:
shepnerd/inpainting_gmcnn ``pytorch/model/loss.py`` ``IDMRFLoss.mrf_loss`` (the README notes
that the "exclude s" step of the paper is omitted in both releases).

For generated features ``G`` and target features ``T`` (N x C x H x W, same size), per sample:

1. centre both by the target mean: ``mu = mean_c T`` per pixel (``center="per_pixel"``, PyTorch
   code) or ``mu_c = mean_{n,h,w} T`` per channel (``center="per_channel"``, TF code
   ``CSFlow.center_by_T``);
2. L2-normalise every position's C-vector; ``cos[t, g]`` = cosine between target position ``t``
   and generated position ``g``; distance ``d = (1 - cos) / 2``;
3. relative distance ``r[t, g] = d[t, g] / (min_t' d[t', g] + eps)``, ``eps = 1e-5``;
4. ``w = exp((b - r) / h)``, ``b = 1``, ``h = 0.5``; ``cx[t, g] = w[t, g] / sum_t' w[t', g]``
   (normalised over target positions);
5. ``loss = -log(mean_t max_g cx[t, g])``.

The per-sample losses are **summed** over the batch (PyTorch code; ``batch_reduction="mean"``
gives the TF ``reduce_mean``).  ``b`` cancels in step 4 (a common factor ``exp(b / h)``), so it
has no effect on the value; it is kept as a documented argument.  Identity: ``cx <= 1`` so the
loss is ``>= 0``, and for ``G = T`` with distinct positions ``cx[t, t] = 1 / (1 + sum_{t' != t}
exp(-d[t', t] / (h eps)))``, i.e. 0 up to terms below ``exp(-min d / (h eps))``.

:class:`IDMRFLoss` follows the PyTorch training code: VGG-19 (torchvision ``vgg19-dcbb9e9d.pth``)
on ``(x + 1) / 2`` minus the ImageNet mean without std, max pooling; style layers {relu3_1: 1,
relu4_1: 1} and content layers {relu4_1: 1} (GMCNN's counter names them 'relu3_2' and
'relu4_2': its index grows on convolutions *and* ReLUs), total ``style + content`` =
``L(relu3_1) + 2 L(relu4_1)``; the model multiplies by ``lambda_mrf = 0.05``.

TensorFlow options (``tensorflow/net/ops.py`` ``id_mrf_reg``): ``center="per_channel"``,
``batch_reduction="mean"`` and ``max_positions=65 * 65`` (maps with more positions are randomly
sub-sampled to 65 x 65, the same positions in both maps, before centring).  The TF code also
swaps the roles (``mrf_loss(T=prediction, I=ground truth)``), so
``id_mrf_distance(gt_feat, pred_feat, ...)`` reproduces it, and it uses MatConvNet VGG-19
weights with average pooling on [0, 255] input, which are not available here.

Deviation: the official code divides by the raw vector norm (NaN for a zero vector after
centring); the norm is clamped at ``norm_eps = 1e-12`` here, identical otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
import torch.nn as nn

from zoo.layers.vgg import VGGFeatures

__all__ = ["id_mrf_distance", "IDMRFLoss"]

Tensor = torch.Tensor
Center = Literal["per_pixel", "per_channel"]


def _subsample(
    gen: Tensor, tar: Tensor, max_positions: int, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """The same random ``max_positions`` positions of both N x C x P maps (TF random_pooling)."""
    p = gen.shape[-1]
    if p <= max_positions:
        return gen, tar
    order = torch.randperm(p, generator=generator)[:max_positions].to(gen.device)
    return gen[..., order], tar[..., order]


def id_mrf_distance(
    gen: Tensor,
    tar: Tensor,
    *,
    bias: float = 1.0,
    nn_stretch_sigma: float = 0.5,
    eps: float = 1e-5,
    center: Center = "per_pixel",
    batch_reduction: Literal["sum", "mean"] = "sum",
    max_positions: int | None = None,
    generator: torch.Generator | None = None,
    norm_eps: float = 1e-12,
) -> Tensor:
    """ID-MRF loss between feature maps ``gen`` and ``tar`` (module docstring, steps 1-5).

    Args:
        gen, tar: N x C x H x W feature maps of the generated and target images.
        bias: ``b`` (1; cancels, see the module docstring).
        nn_stretch_sigma: bandwidth ``h`` (0.5).
        eps: ``epsilon`` of the relative distance (1e-5).
        center: ``"per_pixel"`` (PyTorch code) or ``"per_channel"`` (TF code).
        batch_reduction: ``"sum"`` (PyTorch code) or ``"mean"`` (TF code) over samples.
        max_positions: sub-sample maps with more positions (TF: 65 * 65); None = all.
        generator: random generator of the sub-sampling.
        norm_eps: floor of the vector norms (module docstring, deviation).
    """
    if gen.shape != tar.shape or gen.dim() != 4:
        raise ValueError(
            f"gen and tar must be N x C x H x W of the same shape, got {tuple(gen.shape)} "
            f"and {tuple(tar.shape)}"
        )
    g, t = gen.flatten(2), tar.detach().flatten(2)  # N x C x H x W -> N x C x P
    if max_positions is not None:  # TF: sub-sample first, then centre
        g, t = _subsample(g, t, max_positions, generator)
    if center == "per_pixel":
        mu = t.mean(dim=1, keepdim=True)  # N x 1 x P
    elif center == "per_channel":
        mu = t.mean(dim=(0, 2), keepdim=True)  # 1 x C x 1
    else:
        raise ValueError(f"center must be 'per_pixel' or 'per_channel', got {center!r}")
    g, t = g - mu, t - mu
    g = g / g.norm(dim=1, keepdim=True).clamp_min(norm_eps)
    t = t / t.norm(dim=1, keepdim=True).clamp_min(norm_eps)
    cosine = torch.bmm(t.transpose(1, 2), g)  # N x P_t x P_g
    dist = (1 - cosine) / 2
    relative = dist / (dist.amin(dim=1, keepdim=True) + eps)  # min over target positions
    weight = torch.exp((bias - relative) / nn_stretch_sigma)
    cx = weight / weight.sum(dim=1, keepdim=True)  # normalised over target positions
    per_sample = -torch.log(cx.amax(dim=2).mean(dim=1))  # max over generated, mean over target
    if batch_reduction == "sum":
        return per_sample.sum()
    if batch_reduction == "mean":
        return per_sample.mean()
    raise ValueError(f"batch_reduction must be 'sum' or 'mean', got {batch_reduction!r}")


class IDMRFLoss(nn.Module):
    """GMCNN PyTorch ID-MRF: ``sum_l w_l L(relu_l)`` over style and content layers.

    Args:
        extractor: the VGG; default VGG-19 on ``(x + 1) / 2`` minus the ImageNet mean
            (``weights`` chooses ImageNet or seeded random weights).
        style_layers / content_layers: ``{layer: weight}``; defaults {relu3_1: 1, relu4_1: 1}
            and {relu4_1: 1} (GMCNN's 'relu3_2' / 'relu4_2').
        lambda_style / lambda_content: multipliers of the two sums (1, 1).
        bias, nn_stretch_sigma, eps, center, batch_reduction, max_positions: as
            :func:`id_mrf_distance` (official PyTorch values by default).

    A layer in both sets is evaluated once and counted with both weights (the official code
    evaluates it twice, with the same result unless ``max_positions`` sub-samples).

    ``forward(gen, target)`` takes images in [-1, 1] (GMCNN: the local patch of the composite
    and of the ground truth) and returns the scalar loss.
    """

    def __init__(
        self,
        *,
        extractor: VGGFeatures | None = None,
        weights: Literal["imagenet", "random"] = "imagenet",
        style_layers: Mapping[str, float] | None = None,
        content_layers: Mapping[str, float] | None = None,
        lambda_style: float = 1.0,
        lambda_content: float = 1.0,
        bias: float = 1.0,
        nn_stretch_sigma: float = 0.5,
        eps: float = 1e-5,
        center: Center = "per_pixel",
        batch_reduction: Literal["sum", "mean"] = "sum",
        max_positions: int | None = None,
    ) -> None:
        super().__init__()
        self.style_layers = dict(style_layers or {"relu3_1": 1.0, "relu4_1": 1.0})
        self.content_layers = dict(content_layers or {"relu4_1": 1.0})
        names = tuple(dict.fromkeys([*self.style_layers, *self.content_layers]))
        if extractor is None:
            extractor = VGGFeatures(
                "vgg19",
                names,
                weights=weights,
                input_range=(0.0, 1.0),
                normalize="imagenet_mean",
            )
        missing = [n for n in names if n not in extractor.layers]
        if missing:
            raise ValueError(f"layers {missing} are not computed by the extractor")
        self.extractor = extractor
        self.lambda_style = lambda_style
        self.lambda_content = lambda_content
        self.distance_kwargs = {
            "bias": bias,
            "nn_stretch_sigma": nn_stretch_sigma,
            "eps": eps,
            "center": center,
            "batch_reduction": batch_reduction,
            "max_positions": max_positions,
        }

    def forward(self, gen: Tensor, target: Tensor) -> Tensor:
        f_gen = self.extractor(gen)
        with torch.no_grad():
            f_tar = self.extractor(target)
        cache: dict[str, Tensor] = {}

        def layer_loss(name: str) -> Tensor:
            if name not in cache:
                cache[name] = id_mrf_distance(f_gen[name], f_tar[name], **self.distance_kwargs)
            return cache[name]

        style = sum(w * layer_loss(n) for n, w in self.style_layers.items())
        content = sum(w * layer_loss(n) for n, w in self.content_layers.items())
        return self.lambda_style * style + self.lambda_content * content
