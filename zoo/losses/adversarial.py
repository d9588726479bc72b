"""Adversarial losses (vanilla / LSGAN / hinge / WGAN) and the WGAN-GP gradient penalty.

The losses take **scores** (discriminators in this project return ``(scores, features)``;
pass ``scores``), of any shape (one per image, or a PatchGAN map); every mean runs over all
elements.  With ``s_r`` the scores of real images and ``s_f`` those of generated ones:

============  ====================================  ==============================================
kind          generator                             discriminator (``average_real_fake=False``)
============  ====================================  ==============================================
``vanilla``   ``mean(softplus(-s_f))``              ``mean(softplus(-s_r)) + mean(softplus(s_f))``
``lsgan``     ``mean((s_f - 1)^2)``                 ``mean((s_r - 1)^2) + mean(s_f^2)``
``hinge``     ``-mean(s_f)``                        ``mean(relu(1 - s_r)) + mean(relu(1 + s_f))``
``wgan``      ``-mean(s_f)``                        ``mean(s_f) - mean(s_r)``
============  ====================================  ==============================================

``average_real_fake=True`` halves the discriminator loss, ``(L_real + L_fake) / 2``.

Where each form comes from:

- ``vanilla``: Goodfellow et al. 2014 with the non-saturating generator loss, as binary cross
  entropy on **logits** (``softplus(-s) = BCE(sigmoid(s), 1)``, ``softplus(s) = BCE(sigmoid(s),
  0)``).  The official codes apply ``nn.BCELoss`` after a final Sigmoid: knazeri/edge-connect
  ``src/loss.py`` (``nsgan``; D loss averaged), Zhaoyi-Yan/Shift-Net_pytorch
  ``models/modules/losses.py`` (``vanilla``; D loss averaged in ``shiftnet_model.py``),
  BoyuanJiang/context_encoder_pytorch (D loss summed).  A project discriminator returns the
  pre-sigmoid score instead; the value is the same, computed stably.
- ``lsgan``: Mao et al. 2017 with 0/1 targets (pix2pix ``GANLoss``, EdgeConnect ``lsgan``,
  neuralgym ``gan_ls_loss`` which averages the D terms).
- ``hinge``: Lim & Ye 2017 / Miyato et al. 2018.  DeepFill v2 (neuralgym ``gan_hinge_loss``)
  averages the two D terms; GMCNN PyTorch (``pytorch/model/net.py`` ``forward_D``) sums them;
  EdgeConnect ``hinge`` averages them.  The generator term is ``-mean(s_f)`` in all three.
- ``wgan``: Arjovsky et al. 2017; neuralgym ``gan_wgan_loss`` (DeepFill v1) ``d = mean(neg -
  pos)``, ``g = -mean(neg)``; critics add :func:`gradient_penalty`.

Gradient penalty: Gulrajani et al. 2017 (arXiv 1704.00028), ``E[(||grad_x D(x_hat)|| - 1)^2]``
at ``x_hat = real + alpha (fake - real)``, ``alpha ~ U(0, 1)`` per sample (neuralgym
``random_interpolates``).  DeepFill v1 (JiahuiYu/generative_inpainting v1.0.0
``inpaint_model.py`` with neuralgym ``gradients_penalty``) masks it:
``slope = sqrt(sum(grad^2 * mask))`` over C, H, W, with the hole mask (1 = hole) of the global
image or of the local patch; GMCNN's PyTorch ``gradient_penalty`` multiplies the gradient by
the mask before the norm, identical for a binary mask.  The penalty is the batch mean of
``(slope - target_norm)^2``; the weight (lambda = 10) is applied by the model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

__all__ = ["AdversarialLoss", "gradient_penalty", "interpolate_batches"]

Tensor = torch.Tensor
Kind = Literal["vanilla", "lsgan", "hinge", "wgan"]
_KINDS = ("vanilla", "lsgan", "hinge", "wgan")


class AdversarialLoss:
    """Generator and discriminator losses of one GAN formulation (see the module table).

    Args:
        kind: ``"vanilla"`` (BCE on logits), ``"lsgan"``, ``"hinge"`` or ``"wgan"``.
        average_real_fake: halve the discriminator loss, ``(L_real + L_fake) / 2`` (EdgeConnect,
            Shift-Net, neuralgym hinge); ``False`` sums the two terms (GMCNN, WGAN critics).
    """

    def __init__(self, kind: Kind, *, average_real_fake: bool = False) -> None:
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        self.kind = kind
        self.average_real_fake = average_real_fake

    def __repr__(self) -> str:
        return f"AdversarialLoss({self.kind!r}, average_real_fake={self.average_real_fake})"

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        """Loss of the generator given the discriminator's scores of generated images."""
        s = _scores(fake_scores)
        if self.kind == "vanilla":
            return F.softplus(-s).mean()  # BCE(sigmoid(s), 1)
        if self.kind == "lsgan":
            return (s - 1).pow(2).mean()
        return -s.mean()  # hinge and wgan

    def real_loss(self, real_scores: Tensor) -> Tensor:
        """The discriminator's term for real images."""
        s = _scores(real_scores)
        if self.kind == "vanilla":
            return F.softplus(-s).mean()
        if self.kind == "lsgan":
            return (s - 1).pow(2).mean()
        if self.kind == "hinge":
            return F.relu(1 - s).mean()
        return -s.mean()

    def fake_loss(self, fake_scores: Tensor) -> Tensor:
        """The discriminator's term for generated images."""
        s = _scores(fake_scores)
        if self.kind == "vanilla":
            return F.softplus(s).mean()  # BCE(sigmoid(s), 0)
        if self.kind == "lsgan":
            return s.pow(2).mean()
        if self.kind == "hinge":
            return F.relu(1 + s).mean()
        return s.mean()

    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        """``L_real + L_fake``, halved when ``average_real_fake``."""
        total = self.real_loss(real_scores) + self.fake_loss(fake_scores)
        return total / 2 if self.average_real_fake else total


def _scores(scores: Tensor | tuple) -> Tensor:
    if isinstance(scores, (tuple, list)):
        raise TypeError(
            "pass the discriminator's scores, not its (scores, features) tuple: use out[0]"
        )
    if not isinstance(scores, Tensor):
        raise TypeError(f"scores must be a tensor, got {type(scores).__name__}")
    return scores


def interpolate_batches(real: Tensor, fake: Tensor, alpha: Tensor) -> Tensor:
    """``real + alpha * (fake - real)`` with one ``alpha`` per sample (shape N)."""
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} differ")
    if alpha.dim() != 1 or alpha.shape[0] != real.shape[0]:
        raise ValueError(f"alpha must have shape ({real.shape[0]},), got {tuple(alpha.shape)}")
    a = alpha.to(real).view(-1, *([1] * (real.dim() - 1)))  # N -> N x 1 x 1 x 1
    return real + a * (fake - real)


def gradient_penalty(
    critic: Callable[[Tensor], Tensor | tuple],
    real: Tensor,
    fake: Tensor | None = None,
    *,
    mask: Tensor | None = None,
    interpolate: bool = True,
    alpha: Tensor | None = None,
    generator: torch.Generator | None = None,
    target_norm: float = 1.0,
) -> Tensor:
    """WGAN-GP penalty ``mean_n (sqrt(sum_{c,h,w} mask * g_n^2) - target_norm)^2``.

    Args:
        critic: maps a batch to scores; a ``(scores, features)`` return is accepted (scores
            are element 0).  The gradient is that of ``scores.sum()``, i.e. of every output
            element, as ``tf.gradients`` (neuralgym) and ``grad_outputs=ones`` (GMCNN) take it.
        real, fake: N x C x H x W batches (``fake`` detached by the caller or not: the penalty
            is taken at detached points, so it only trains the critic).
        mask: optional N x 1 x H x W (or N x C x H x W) weight of the squared gradient; the
            DeepFill v1 hole mask (1 = hole).  ``None`` = plain WGAN-GP.
        interpolate: take the penalty at ``real + alpha (fake - real)`` (Gulrajani);
            ``False`` takes it at ``real`` as given (points the caller interpolated already,
            as GMCNN's ``gradient_penalty(xin, ...)`` expects; ``fake`` must then be None).
        alpha: per-sample interpolation weights (shape N); drawn ``U(0, 1)`` when None.
        generator: random generator for ``alpha``.
        target_norm: the norm the gradient is pulled to (1).
    """
    if interpolate:
        if fake is None:
            raise ValueError("interpolate=True needs both real and fake")
        if alpha is None:
            alpha = torch.rand(real.shape[0], generator=generator, dtype=real.dtype)
            alpha = alpha.to(real.device)
        points = interpolate_batches(real.detach(), fake.detach(), alpha)
    else:
        if fake is not None:
            raise ValueError("interpolate=False takes the penalty at `real`; pass no fake")
        points = real.detach()
    points.requires_grad_(True)
    with torch.enable_grad():
        out = critic(points)
        scores = out[0] if isinstance(out, (tuple, list)) else out
        (grad,) = torch.autograd.grad(scores.sum(), points, create_graph=True)
    if mask is not None:
        if mask.dim() != grad.dim() or mask.shape[0] != grad.shape[0]:
            raise ValueError(
                f"mask {tuple(mask.shape)} must be N x 1 x H x W for points {tuple(grad.shape)}"
            )
        if (mask < 0).any():
            raise ValueError("mask weights must be >= 0")
        # sqrt(sum(mask * g^2)) = ||sqrt(mask) * g||; the norm's backward is finite at 0
        grad = grad * mask.to(grad.dtype).sqrt()
    slopes = torch.linalg.vector_norm(grad.flatten(1), dim=1)  # N x C x H x W -> N
    return (slopes - target_norm).pow(2).mean()
