"""DeepFill v1: generative image inpainting with contextual attention.

Paper: Yu, Lin, Yang, Shen, Lu, Huang, "Generative Image Inpainting with Contextual Attention",
CVPR 2018, arXiv 1801.07892.

Official code matched: JiahuiYu/generative_inpainting, branch ``v1.0.0`` (TensorFlow 1.x +
neuralgym): ``inpaint_model.py`` (``InpaintCAModel.build_inpaint_net``,
``build_wgan_local_discriminator``, ``build_wgan_global_discriminator``,
``build_graph_with_losses``), ``inpaint_ops.py`` (``gen_conv``, ``gen_deconv``, ``dis_conv``,
``random_bbox``, ``bbox2mask``, ``local_patch``, ``resize_mask_like``,
``spatial_discounting_mask``, ``contextual_attention``), ``inpaint.yml`` and ``train.py``.
PyTorch port matched for weights and checked output-for-output: daa233/generative-inpainting-
pytorch (``model/networks.py`` ``Generator``, ``LocalDis``, ``GlobalDis``; ``trainer.py``;
``configs/config.yaml``), whose ``trainer.py`` saves ``gen_%08d.pt`` (the bare ``netG`` state
dict, ``coarse_generator.*`` / ``fine_generator.*``) and ``dis_%08d.pt`` (``{'localD',
'globalD'}``).

Generator (``models.md`` section 6; layer tables and the conv block in
:mod:`zoo.layers.deepfill`), ``cnum = 32``, every layer a convolution + ELU unless noted;
``*_upsample`` layers are a nearest x2 resize followed by a 3x3 convolution:

- stage 1 on ``[x, ones, ones * mask]`` (x in [-1, 1] with holes zeroed, mask 1 = hole):
  ``conv1`` (5x5) .. ``conv16``, dilations 2, 4, 8, 16 at 1/4 resolution, ``conv17`` (3
  channels, linear) -> clip to [-1, 1];
- stage 2 on ``[x1 * mask + x * (1 - mask), ones, ones * mask]``: a dilated branch
  ``xconv1 .. xconv10``, an attention branch ``pmconv1 .. pmconv6`` (``pmconv6`` with ReLU) ->
  contextual attention (``ksize 3, stride 1, rate 2, fuse_k 3, softmax_scale 10, fuse``; mask
  resized to 1/4 by ``resize_mask_like``) -> ``pmconv9``, ``pmconv10``; concatenation ->
  ``allconv11 .. allconv17`` -> clip.

3,601,542 parameters (stage 1 1,448,227 + stage 2 2,153,315).  Critics
(:func:`zoo.layers.discriminators.deepfill_v1_critics`): global on the image and local on the
hole patch, 5x5 stride-2 convs + LeakyReLU 0.2 and a dense layer; the official widths
(``critics="tf"``: local 64, 128, 256, 512 = 4,339,329; global 64, 128, 256, 256 = 2,733,441)
or daa233's (``critics="daa233"``: local conv4 256 wide = 2,684,289).

Objective (``build_graph_with_losses`` with ``inpaint.yml``), ``P(.)`` = the local patch,
``w`` = the spatial-discount table on it, ``m`` = mask, ``x1``/``x2`` the raw stage outputs,
``c`` the composite ``x2 * m + x * (1 - m)``::

    l1  = COARSE_L1_ALPHA * mean(|P(gt) - P(x1)| w) + mean(|P(gt) - P(x2)| w)
    ae  = (COARSE_L1_ALPHA * mean(|gt - x1| (1 - m)) + mean(|gt - x2| (1 - m))) / mean(1 - m)
    G   = GAN_LOSS_ALPHA * (GLOBAL_WGAN_LOSS_ALPHA * -mean(Dg(c)) - mean(Dl(P(c))))
          + L1_LOSS_ALPHA * l1 + AE_LOSS_ALPHA * ae
    D   = mean(Dg(c)) - mean(Dg(gt)) + mean(Dl(P(c))) - mean(Dl(P(gt)))
          + WGAN_GP_LAMBDA * (GP(Dl, mask = P(m)) + GP(Dg, mask = m))

with ``COARSE_L1_ALPHA = L1_LOSS_ALPHA = AE_LOSS_ALPHA = 1.2``, ``GAN_LOSS_ALPHA = 0.001``,
``GLOBAL_WGAN_LOSS_ALPHA = 1``, ``WGAN_GP_LAMBDA = 10``, masked gradient penalty
(:func:`zoo.losses.adversarial.gradient_penalty`), 5 critic steps per generator step
(``SecondaryTrainer(max_iters=5)``, each on a fresh batch as here), Adam lr 1e-4, betas (0.5,
0.9).  ``PRETRAIN_COARSE_NETWORK`` (here ``pretrain_coarse_steps``): only the stage-1 terms
``L1_LOSS_ALPHA * COARSE_L1_ALPHA * l1(x1) + AE_LOSS_ALPHA * COARSE_L1_ALPHA * ae(x1)`` and no
critic training.

Local patch for arbitrary masks.  The official training mask is one 128 x 128 box per batch
(``random_bbox``) shrunk symmetrically by up to 16 px per side (``bbox2mask``), and
``local_patch`` crops the **unshrunk** box.  Here the window (``local_size``, default
``image_size // 2`` = 128 at 256, scaled with the batch resolution as ``H * local_size //
image_size``) is centred on the bounding box of each sample's hole pixels and clipped to the
image (:func:`zoo.layers.local_patch.hole_windows`, shared with GLCIC and GMCNN).  Because the
official shrink is symmetric, the centred window of an official mask is exactly the official
box.  A hole wider than the window is cut.

Spatial discounting (``discount``): ``"box"`` (default) is the official
``spatial_discounting_mask`` table ``gamma ** min(i, H - i, j, W - j)`` over the whole local
window (known pixels of the window included, as the official loss); ``"distance"`` is the
paper's ``gamma ** (distance to the nearest known pixel)`` on hole pixels (0 on known pixels),
computed on the full mask and cropped.  ``gamma`` defaults to **0.99**, the paper's value;
``inpaint.yml`` and daa233's ``config.yaml`` use ``SPATIAL_DISCOUNTING_GAMMA: 0.9``.

Padding and the daa233 port (``padding``).  ``"tf"`` (default) is the official network: TF
``'SAME'`` zero padding (asymmetric for the stride-2 convs: 0 before / 1 after for 3x3 on even
sizes, :mod:`zoo.layers.padding`) and the official contextual attention
(:class:`zoo.layers.contextual_attention.ContextualAttention`: neuralgym's align-corners
nearest resizes, mask resized to 1/4 then by 1/rate, norm floor ``max(|w|, 1e-4)``).
``"daa233"`` reproduces daa233's ``Generator`` exactly: symmetric zero padding ``d (k - 1) /
2`` in every conv (1 on each side for the 3x3 stride-2 convs), and its contextual attention
(the same layer with the options :data:`DAA233_ATTENTION`: ``F.interpolate`` nearest (floor)
resizes, the full-resolution mask resized by ``1 / (4 rate)`` in one step, patch norm
``sqrt(sum(w^2 + 1e-4))``).  Weights converted from daa233 (:func:`convert_daa233_state_dict`)
reproduce the port's outputs only with ``padding="daa233"``; the converted *TF* release that
daa233 ships was trained with TF padding, so ``"tf"`` is the faithful choice for it.

Deviations, all deliberate:

- **channel order**: the TF code reads images with OpenCV, so official TF weights expect BGR;
  this model takes RGB like every model of the zoo.  daa233's own models were trained on RGB
  (PIL).  The converter keeps the port's channel order (``bgr_to_rgb=True`` flips the image
  channels of ``conv1``/``xconv1``/``pmconv1`` and the outputs of ``conv17``/``allconv17``).
- **per-sample masks**: TF trains with one mask per batch and its attention reads batch
  element 0's mask (daa233 too); here every element uses its own mask everywhere (attention,
  losses, gradient-penalty masks, local windows).
- **local window and discount table** for arbitrary masks, ``gamma`` default: see above.
- **critic input size**: the dense layers fix the critic inputs to ``image_size`` (256) and
  ``local_size`` (128).  A batch of another resolution is resized (bilinear, antialiased; masks
  nearest) to those sizes for the critics, with a warning; the L1 terms stay at the batch's
  resolution.
- **critic padding**: ``critics="tf"`` pads as TF ``'SAME'``; ``"daa233"`` symmetric 2, as the
  port.  Dense layers flatten in NCHW order (TF flattens NHWC: rows of a TF dense kernel
  would need permuting; no TF checkpoint converter is provided).
- **optimisers**: TF shares one Adam object between G and D (``g_optimizer = d_optimizer``);
  here each has its own ``torch.optim.Adam``.
- **initialisation**: TF ``tf.layers`` defaults (Glorot-uniform kernels, zero biases) for the
  generator and the critics (daa233 keeps PyTorch's defaults).
- H and W are padded to a multiple of 8 by :class:`~zoo.models._base.InpaintModel` (replicate,
  mask 0 in the padding); the TF ``test.py`` crops to a multiple of 8 instead.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from functools import partial
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo._registry import register_model
from zoo._weights import load_state_dict
from zoo.layers.contextual_attention import ContextualAttention, resize_nearest_tf
from zoo.layers.deepfill import (
    STAGE1,
    STAGE2,
    STAGE2_AFTER_ATTENTION,
    STAGE2_ATTENTION,
    STAGE2_CONV,
    STAGE2_MERGE,
    DeepFillStage,
    GenConv2d,
)
from zoo.layers.discriminators import deepfill_v1_critics, remap_daa233_critic
from zoo.layers.local_patch import crop_windows, hole_windows, scaled_window_size
from zoo.losses.adversarial import AdversarialLoss, gradient_penalty
from zoo.losses.reconstruction import (
    box_discount_weights,
    masked_l1,
    spatial_discount_weights,
    spatially_discounted_l1,
)
from zoo.models._base import InpaintModel

__all__ = [
    "DeepFillV1Generator",
    "DeepFillV1",
    "convert_daa233_state_dict",
    "load_daa233",
    "deepfill_v1",
]

Tensor = torch.Tensor

PADDINGS = ("tf", "daa233")
#: GenConv2d padding of each ``padding`` option (TF 'SAME', or daa233's symmetric d (k - 1) / 2)
CONV_PADDING = {"tf": "same", "daa233": "symmetric"}
IN_CHANNELS = 5  # [x, ones, ones * mask]
#: contextual-attention options of daa233's port: ``F.interpolate`` nearest resizes, the norm
#: ``sqrt(sum(w^2 + eps))`` with ``torch.FloatTensor([1e-4])`` (float32's nearest value to
#: 1e-4), and the full-resolution mask (4x the 1/4 feature maps) resized in one step
DAA233_ATTENTION = {
    "resize": "torch_floor",
    "norm": "additive",
    "norm_eps": 9.999999747378752e-05,
    "mask_scale": 4,
}


# --------------------------------------------------------------------------- generator
class DeepFillV1Generator(nn.Module):
    """Two-stage DeepFill v1 generator (``build_inpaint_net`` at v1.0.0).

    Args:
        cnum: base width (official 32).
        padding: ``"tf"`` (official) or ``"daa233"`` (the port's padding and attention; see the
            module docstring).
        softmax_scale: contextual-attention softmax scale (official 10).
        attention_fuse: contextual-attention score fusion (official True).
        attention_chunk_size: memory bound of the attention (foreground positions per
            chunk; None = all at once; numerically identical).
        channels_last: run the convolutions on N x H x W x C (``torch.channels_last``) tensors,
            several times faster for the few-channel full-resolution layers on CPU (same
            arithmetic up to the summation order); inputs and outputs keep their layout.
    """

    def __init__(
        self,
        *,
        cnum: int = 32,
        padding: str = "tf",
        softmax_scale: float = 10.0,
        attention_fuse: bool = True,
        attention_chunk_size: int | None = None,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(cnum, int) or cnum < 2 or cnum % 2:
            raise ValueError(f"cnum must be a positive even int, got {cnum!r}")
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        self.padding = padding
        self.channels_last = bool(channels_last)
        layer = partial(GenConv2d, padding=CONV_PADDING[padding])
        self.coarse = DeepFillStage(STAGE1, width=cnum, in_channels=IN_CHANNELS, layer=layer)
        self.refine = DeepFillStage(STAGE2, width=cnum, in_channels=IN_CHANNELS, layer=layer)
        self.attention = ContextualAttention(
            ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=softmax_scale,
            fuse=attention_fuse, chunk_size=attention_chunk_size,
            **(DAA233_ATTENTION if padding == "daa233" else {}),
        )  # fmt: skip

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``x``: N x 3 x H x W in [-1, 1] with holes zeroed; ``mask``: N x 1 x H x W, 1 = hole;
        H, W multiples of 8.  Returns the clipped (stage-1, stage-2) predictions."""
        if x.dim() != 4 or x.shape[1] != 3 or mask.dim() != 4 or mask.shape[1] != 1:
            raise ValueError(
                f"expected N x 3 x H x W and N x 1 x H x W, got {tuple(x.shape)}, "
                f"{tuple(mask.shape)}"
            )
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError(f"H and W must be multiples of 8, got {tuple(x.shape[-2:])}")
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        ones = torch.ones_like(mask)
        xin = torch.cat([x, ones, ones * mask], dim=1).contiguous(memory_format=layout)
        x1 = self.coarse.run(xin, STAGE1).clamp(-1, 1)
        pasted = x1 * mask + x * (1.0 - mask)
        xnow = torch.cat([pasted, ones, ones * mask], dim=1)  # N x 5 x H x W
        xnow = xnow.contiguous(memory_format=layout)
        hallu = self.refine.run(xnow, STAGE2_CONV)  # N x 4c x H/4 x W/4
        pm = self.refine.run(xnow, STAGE2_ATTENTION)  # N x 4c x H/4 x W/4
        # TF: resize_mask_like to the 1/4 features; daa233: the full-resolution mask (mask_scale 4)
        mask_s = resize_nearest_tf(mask, pm.shape[-2:]) if self.padding == "tf" else mask
        pm = self.attention(pm, pm, mask_s).contiguous(memory_format=layout)  # N x 4c x H/4 x W/4
        pm = self.refine.run(pm, STAGE2_AFTER_ATTENTION)
        x2 = self.refine.run(torch.cat([hallu, pm], dim=1), STAGE2_MERGE)  # N x 3 x H x W
        return x1.contiguous(), x2.clamp(-1, 1).contiguous()


# --------------------------------------------------------------------------- model
class DeepFillV1(InpaintModel):
    """DeepFill v1 generator + global/local WGAN-GP critics with the official objective.

    Args: see :func:`deepfill_v1` (official values as defaults).
    """

    pad_multiple = 8

    def __init__(
        self,
        *,
        cnum: int = 32,
        padding: str = "tf",
        critics: str = "tf",
        image_size: int = 256,
        local_size: int | None = None,
        softmax_scale: float = 10.0,
        attention_fuse: bool = True,
        attention_chunk_size: int | None = None,
        coarse_l1_alpha: float = 1.2,
        l1_loss_alpha: float = 1.2,
        ae_loss_alpha: float = 1.2,
        ae_loss: bool = True,
        spatial_discount_gamma: float = 0.99,
        discount: str = "box",
        gan_loss_alpha: float = 1e-3,
        global_wgan_loss_alpha: float = 1.0,
        wgan_gp_lambda: float = 10.0,
        d_steps: int = 5,
        pretrain_coarse_steps: int = 0,
        lr: float = 1e-4,
        beta1: float = 0.5,
        beta2: float = 0.9,
    ) -> None:
        super().__init__()
        local_size = image_size // 2 if local_size is None else local_size
        if not 8 <= local_size <= image_size:
            raise ValueError(f"need 8 <= local_size <= image_size, got {local_size}, {image_size}")
        if discount not in ("box", "distance"):
            raise ValueError(f"discount must be 'box' or 'distance', got {discount!r}")
        if not 0 < spatial_discount_gamma <= 1:
            raise ValueError(
                f"spatial_discount_gamma must be in (0, 1], got {spatial_discount_gamma}"
            )
        if d_steps < 1 or pretrain_coarse_steps < 0:
            raise ValueError("need d_steps >= 1 and pretrain_coarse_steps >= 0")
        self.generator = DeepFillV1Generator(
            cnum=cnum, padding=padding, softmax_scale=softmax_scale,
            attention_fuse=attention_fuse, attention_chunk_size=attention_chunk_size,
        )  # fmt: skip
        global_d, local_d = deepfill_v1_critics(
            critics, image_size=image_size, patch_size=local_size
        )
        for critic in (global_d, local_d):  # TF tf.layers defaults
            for module in critic.modules():
                if isinstance(module, nn.Conv2d | nn.Linear):
                    nn.init.xavier_uniform_(module.weight)
                    nn.init.zeros_(module.bias)
        self.discriminators = nn.ModuleDict({"global": global_d, "local": local_d})
        self.critics = critics
        self.image_size, self.local_size = int(image_size), int(local_size)
        self.coarse_l1_alpha = float(coarse_l1_alpha)
        self.l1_loss_alpha = float(l1_loss_alpha)
        self.ae_loss_alpha = float(ae_loss_alpha)
        self.ae_loss = bool(ae_loss)
        self.gamma, self.discount = float(spatial_discount_gamma), discount
        self.gan_loss_alpha = float(gan_loss_alpha)
        self.global_wgan_loss_alpha = float(global_wgan_loss_alpha)
        self.wgan_gp_lambda = float(wgan_gp_lambda)
        self.d_steps = int(d_steps)
        self.pretrain_coarse_steps = int(pretrain_coarse_steps)
        self.lr, self.betas = float(lr), (float(beta1), float(beta2))
        self.wgan = AdversarialLoss("wgan")  # neuralgym gan_wgan_loss

    # ------------------------------------------------------------------ inference
    def inpaint(self, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
        x1, x2 = self.generator(image * (1.0 - mask), mask)
        return {"output": x2, "coarse": x1}

    # ------------------------------------------------------------------ training
    def phases(self, step: int) -> tuple[bool, bool]:
        return True, step >= self.pretrain_coarse_steps

    def window_size(self, height: int, width: int) -> tuple[int, int]:
        """Local window at a batch resolution: ``local_size`` scaled by ``H / image_size``."""
        return scaled_window_size(self.local_size, self.image_size, height, width)

    def discount_weights(self, mask: Tensor, corners: Tensor, size: tuple[int, int]) -> Tensor:
        """Spatial-discount weights of the local windows (1 or N) x 1 x h x w."""
        if self.discount == "box":
            return box_discount_weights(*size, self.gamma, dtype=mask.dtype, device=mask.device)
        full = mask * spatial_discount_weights(mask, self.gamma)  # gamma^dist in the hole
        return crop_windows(full, corners, size)

    def _critic_views(
        self, images: list[Tensor], mask: Tensor
    ) -> tuple[list[Tensor], list[Tensor], Tensor, Tensor]:
        """Global and local critic inputs of each image in ``images`` (same mask), plus the
        global and local masks for the gradient penalty, at the critics' sizes."""
        size = self.window_size(*mask.shape[-2:])
        corners = hole_windows(mask, size)
        locals_ = [crop_windows(x, corners, size) for x in images]
        local_mask = crop_windows(mask, corners, size)
        full = (self.image_size, self.image_size)
        if tuple(mask.shape[-2:]) != full:
            warnings.warn(
                f"DeepFill v1's critics were built for {full[0]}x{full[1]} images (image_size); "
                f"resizing a {tuple(mask.shape[-2:])} batch for them. Set "
                f"model.kwargs.image_size to the training resolution to train as the paper.",
                stacklevel=3,
            )
            patch = (self.local_size, self.local_size)
            images = [F.interpolate(x, size=full, mode="bilinear", antialias=True) for x in images]
            locals_ = [
                F.interpolate(x, size=patch, mode="bilinear", antialias=True) for x in locals_
            ]
            mask = F.interpolate(mask, size=full, mode="nearest")
            local_mask = F.interpolate(local_mask, size=patch, mode="nearest")
        return images, locals_, mask, local_mask

    def generator_loss(
        self, image: Tensor, mask: Tensor, out: dict[str, Tensor], step: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        x1, x2 = out["coarse"], out["output"]
        pretrain = step < self.pretrain_coarse_steps
        size = self.window_size(*mask.shape[-2:])
        corners = hole_windows(mask, size)
        weights = self.discount_weights(mask, corners, size)
        gt_patch = crop_windows(image, corners, size)
        l1 = self.coarse_l1_alpha * spatially_discounted_l1(
            crop_windows(x1, corners, size), gt_patch, weights
        )
        ae = self.coarse_l1_alpha * masked_l1(
            x1, image, mask, hole_weight=0.0, valid_weight=1.0, normalization="region"
        )
        if not pretrain:
            l1 = l1 + spatially_discounted_l1(crop_windows(x2, corners, size), gt_patch, weights)
            ae = ae + masked_l1(
                x2, image, mask, hole_weight=0.0, valid_weight=1.0, normalization="region"
            )
        total = self.l1_loss_alpha * l1
        if self.ae_loss:
            total = total + self.ae_loss_alpha * ae
        logs = {"l1": l1, "ae": ae}
        if not pretrain:
            (glob,), (loc,), _, _ = self._critic_views([out["composite"]], mask)
            g_global = self.wgan.generator_loss(self.discriminators["global"](glob)[0])
            g_local = self.wgan.generator_loss(self.discriminators["local"](loc)[0])
            total = total + self.gan_loss_alpha * (self.global_wgan_loss_alpha * g_global + g_local)
            logs.update({"g_global": g_global, "g_local": g_local})
        logs["total"] = total
        return total, {k: v.detach() for k, v in logs.items()}

    def discriminator_loss(
        self, image: Tensor, mask: Tensor, out: dict[str, Tensor], step: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        fake = out["composite"].detach()
        (real_g, fake_g), (real_l, fake_l), mask_g, mask_l = self._critic_views([image, fake], mask)
        logs = {}
        total = image.new_zeros(())
        for name, real, fake_, m in (
            ("global", real_g, fake_g, mask_g),
            ("local", real_l, fake_l, mask_l),
        ):
            critic = self.discriminators[name]
            scores, _ = critic(torch.cat([real, fake_], dim=0))  # pos and neg in one batch
            pos, neg = scores.chunk(2, dim=0)
            d = self.wgan.discriminator_loss(pos, neg)  # mean(neg - pos)
            gp = gradient_penalty(critic, real, fake_, mask=m)
            total = total + d + self.wgan_gp_lambda * gp
            logs[f"d_{name}"], logs[f"gp_{name}"] = d, gp
        logs["d_total"] = total
        return total, {k: v.detach() for k, v in logs.items()}

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "generator": torch.optim.Adam(
                self.generator.parameters(), lr=self.lr, betas=self.betas
            ),
            "discriminator": torch.optim.Adam(
                self.discriminators.parameters(), lr=self.lr, betas=self.betas
            ),
        }

    # ------------------------------------------------------------------ weights
    def load_daa233(
        self,
        generator: str | os.PathLike | Mapping[str, Tensor],
        discriminator: str | os.PathLike | Mapping[str, Tensor] | None = None,
        *,
        bgr_to_rgb: bool = False,
    ) -> None:
        """Load daa233 ``gen_*.pt`` (and ``dis_*.pt``).  The port's outputs are reproduced with
        ``padding="daa233"``; its critics load only into ``critics="daa233"``."""
        state = load_daa233(generator, discriminator, bgr_to_rgb=bgr_to_rgb)
        self.generator.load_state_dict(state["generator"], strict=True)
        if "discriminators" in state:
            if self.critics != "daa233":
                raise ValueError(
                    "daa233's critics have a 256-wide local conv4: build the model with "
                    "critics='daa233' to load them"
                )
            self.discriminators.load_state_dict(state["discriminators"], strict=True)


# --------------------------------------------------------------------------- converters
def _daa233_generator_table() -> dict[str, str]:
    """daa233 ``Generator`` key -> our key (84 entries).

    daa233 names the stage-2 conv branch ``conv1 .. conv10_atrous`` (TF ``xconv*``) and drops
    the ``_upsample`` suffix (its upsampling is a separate ``F.interpolate``)."""
    table = {}
    for prefix, ours, rows in (
        ("coarse_generator.", "coarse.", STAGE1),
        ("fine_generator.", "refine.", STAGE2),
    ):
        for row in rows:
            name = row[0]
            theirs = name.removesuffix("_upsample")
            if prefix == "fine_generator." and theirs.startswith("xconv"):
                theirs = theirs[1:]
            for p in ("weight", "bias"):
                table[f"{prefix}{theirs}.conv.{p}"] = f"{ours}{name}.conv.{p}"
    return table


def _check_keys(got: Any, expected: Any, what: str) -> None:
    got, expected = set(got), set(expected)
    missing, extra = sorted(expected - got), sorted(got - expected)
    if missing or extra:
        raise ValueError(
            f"{what}: key mismatch; missing {len(missing)} {missing[:6]}, "
            f"unexpected {len(extra)} {extra[:6]}"
        )


def _check_shapes(state: Mapping[str, Any], reference: Mapping[str, Tensor], what: str) -> None:
    for key, ref in reference.items():
        value = state[key]
        if not isinstance(value, Tensor):
            raise TypeError(f"{what}: {key!r} is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != tuple(ref.shape):
            raise ValueError(
                f"{what}: {key!r} has shape {tuple(value.shape)}, expected {tuple(ref.shape)}"
            )


def _flip_bgr(state: dict[str, Tensor]) -> None:
    """BGR <-> RGB: image input channels of the first convs, RGB outputs of the last ones."""
    for key in (
        "coarse.conv1.conv.weight",
        "refine.xconv1.conv.weight",
        "refine.pmconv1.conv.weight",
    ):
        w = state[key]
        state[key] = torch.cat([w[:, [2, 1, 0]], w[:, 3:]], dim=1)
    for layer in ("coarse.conv17.conv", "refine.allconv17.conv"):
        for p in ("weight", "bias"):
            state[f"{layer}.{p}"] = state[f"{layer}.{p}"][[2, 1, 0]]


def convert_daa233_state_dict(
    generator: Mapping[str, Any],
    discriminator: Mapping[str, Any] | None = None,
    *,
    bgr_to_rgb: bool = False,
) -> dict[str, dict[str, Tensor]]:
    """daa233 checkpoints -> ``{"generator": ..., "discriminators": ...}`` for
    :class:`DeepFillV1` (``discriminators`` only with ``discriminator``).

    Args:
        generator: ``gen_%08d.pt``: the bare ``Generator`` state dict (84 tensors,
            ``coarse_generator.*`` / ``fine_generator.*``); a ``netG.``-prefixed copy (the
            whole ``Trainer``'s generator part, as ``test_tf_model.py`` loads) is accepted too.
        discriminator: ``dis_%08d.pt``: ``{'localD': ..., 'globalD': ...}`` (10 tensors
            each); loads into ``critics="daa233"``.
        bgr_to_rgb: flip the colour channels of the image-facing layers (module docstring).

    Every key is checked (missing and unexpected keys are named), the key counts asserted and
    every shape compared with a freshly built model of the width read from ``conv1``.
    """
    if not isinstance(generator, Mapping):
        raise TypeError(f"expected a state dict mapping, got {type(generator).__name__}")
    src = dict(generator)
    if src and all(k.startswith("netG.") for k in src):
        src = {k.removeprefix("netG."): v for k, v in src.items()}
    table = _daa233_generator_table()
    _check_keys(src, table, "daa233 generator")
    if len(src) != 84:
        raise ValueError(f"daa233 generator must have 84 tensors, got {len(src)}")
    w1 = src["coarse_generator.conv1.conv.weight"]
    if not isinstance(w1, Tensor) or w1.dim() != 4 or w1.shape[1] != IN_CHANNELS:
        raise ValueError(
            "daa233 generator: 'coarse_generator.conv1.conv.weight' must be a C x 5 x 5 x 5 "
            f"tensor (input_dim 3 + ones + mask), got {getattr(w1, 'shape', None)}"
        )
    g_state = {table[k]: v.detach().clone() for k, v in src.items()}
    with torch.device("meta"):
        reference = DeepFillV1Generator(cnum=int(w1.shape[0])).state_dict()
    _check_keys(g_state, reference, "converted generator")
    _check_shapes(g_state, reference, "daa233 generator")
    if bgr_to_rgb:
        _flip_bgr(g_state)
    result = {"generator": g_state}
    if discriminator is not None:
        if not isinstance(discriminator, Mapping):
            raise TypeError(f"expected a mapping, got {type(discriminator).__name__}")
        _check_keys(discriminator, {"localD", "globalD"}, "daa233 discriminator file")
        with torch.device("meta"):
            ref_g, ref_l = deepfill_v1_critics("daa233")
        d_state = {}
        for ours, theirs, ref in (("global", "globalD", ref_g), ("local", "localD", ref_l)):
            part = discriminator[theirs]
            if len(part) != 10:
                raise ValueError(f"daa233 {theirs} must have 10 tensors, got {len(part)}")
            remapped = remap_daa233_critic(part)
            _check_keys(remapped, ref.state_dict(), f"daa233 {theirs}")
            _check_shapes(remapped, ref.state_dict(), f"daa233 {theirs}")
            d_state.update({f"{ours}.{k}": v.detach().clone() for k, v in remapped.items()})
        result["discriminators"] = d_state
    return result


def load_daa233(
    generator: str | os.PathLike | Mapping[str, Any],
    discriminator: str | os.PathLike | Mapping[str, Any] | None = None,
    *,
    bgr_to_rgb: bool = False,
) -> dict[str, dict[str, Tensor]]:
    """Read (``torch.load(weights_only=True)``) and convert daa233 ``gen_*.pt`` /
    ``dis_*.pt`` files (or already loaded mappings)."""

    def read(source: Any) -> Any:
        return source if isinstance(source, Mapping) else load_state_dict(source)

    disc = None if discriminator is None else read(discriminator)
    return convert_daa233_state_dict(read(generator), disc, bgr_to_rgb=bgr_to_rgb)


# --------------------------------------------------------------------------- entrypoint
@register_model
def deepfill_v1(
    *,
    cnum: int = 32,  # build_inpaint_net: cnum = 32
    padding: str = "tf",  # "tf" = official TF 'SAME'; "daa233" = the port's padding + attention
    critics: str = "tf",  # "tf" = official widths (local conv4 512); "daa233" (local conv4 256)
    image_size: int = 256,  # IMG_SHAPES 256: global critic input
    local_size: int | None = None,  # None = image_size // 2 (HEIGHT = WIDTH = 128)
    softmax_scale: float = 10.0,  # contextual_attention softmax_scale
    attention_fuse: bool = True,  # contextual_attention fuse (default True)
    attention_chunk_size: int | None = None,  # not official: attention memory bound
    coarse_l1_alpha: float = 1.2,  # COARSE_L1_ALPHA
    l1_loss_alpha: float = 1.2,  # L1_LOSS_ALPHA
    ae_loss_alpha: float = 1.2,  # AE_LOSS_ALPHA
    ae_loss: bool = True,  # AE_LOSS
    spatial_discount_gamma: float = 0.99,  # paper 0.99 (inpaint.yml SPATIAL_DISCOUNTING_GAMMA 0.9)
    discount: str = "box",  # "box" = official spatial_discounting_mask; "distance" = paper
    gan_loss_alpha: float = 1e-3,  # GAN_LOSS_ALPHA
    global_wgan_loss_alpha: float = 1.0,  # GLOBAL_WGAN_LOSS_ALPHA
    wgan_gp_lambda: float = 10.0,  # WGAN_GP_LAMBDA
    d_steps: int = 5,  # train.py SecondaryTrainer max_iters=5
    pretrain_coarse_steps: int = 0,  # PRETRAIN_COARSE_NETWORK: False (steps of stage-1 warm-up)
    lr: float = 1e-4,  # train.py Adam lr
    beta1: float = 0.5,  # train.py Adam beta1
    beta2: float = 0.9,  # train.py Adam beta2
) -> DeepFillV1:
    """DeepFill v1 (Yu et al., CVPR 2018): coarse-to-fine with contextual attention + WGAN-GP."""
    return DeepFillV1(
        cnum=cnum, padding=padding, critics=critics, image_size=image_size,
        local_size=local_size, softmax_scale=softmax_scale, attention_fuse=attention_fuse,
        attention_chunk_size=attention_chunk_size, coarse_l1_alpha=coarse_l1_alpha,
        l1_loss_alpha=l1_loss_alpha, ae_loss_alpha=ae_loss_alpha, ae_loss=ae_loss,
        spatial_discount_gamma=spatial_discount_gamma, discount=discount,
        gan_loss_alpha=gan_loss_alpha, global_wgan_loss_alpha=global_wgan_loss_alpha,
        wgan_gp_lambda=wgan_gp_lambda, d_steps=d_steps,
        pretrain_coarse_steps=pretrain_coarse_steps, lr=lr, beta1=beta1, beta2=beta2,
    )  # fmt: skip
