"""Shift-Net: a U-Net with a shift connection and a guidance loss.

Paper: Yan, Li, Li, Zuo, Shan, "Shift-Net: Image Inpainting via Deep Feature Rearrangement",
ECCV 2018, arXiv 1801.09392 (architecture: section 3.1-3.2; guidance loss eq. 3; objective
eq. 9 with lambda_g = 0.01, lambda_adv = 0.002).

Official code: Zhaoyi-Yan/Shift-Net (Lua Torch7, deprecated; ``train.lua``, ``models.lua``)
and Zhaoyi-Yan/Shift-Net_pytorch (same author; commit a353431, the ``shiftnet`` model with
``unet_shift_triple``): ``models/modules/shift_unet.py`` (``UnetGeneratorShiftTriple``,
``UnetSkipConnectionShiftBlock``), ``models/modules/unet.py`` (``UnetSkipConnectionBlock``),
``models/modules/discrimators.py`` (``NLayerDiscriminator``), ``models/networks.py``
(``define_G``, ``define_D``, ``init_weights``), ``models/shift_net/shiftnet_model.py``
(``set_input``, ``set_gt_latent``, ``backward_D``, ``backward_G``), ``InnerCos.py``,
``InnerShiftTriple.py``, ``options/base_options.py``, ``options/train_options.py``.  The
PyTorch code is followed for the network and weight layout: its published ``30_net_G.pth``
files load through :func:`convert_official_state_dict`, a ``<epoch>_net_D.pth`` through
:func:`convert_official_discriminator_state_dict`.

Generator (:class:`ShiftNetGenerator`, pix2pix U-Net with 8 downsamplings, ``ngf = 64``):
level ``i = 1 .. 8`` downsamples with a 4x4 stride-2 conv with bias (LeakyReLU 0.2 before it
from level 2 on; affine InstanceNorm after it on levels 2-7), then upsamples with a 4x4
stride-2 transposed conv fed ``ReLU([decoder, encoder skip])`` (InstanceNorm after it, Tanh
at level 1).  At level 3 (32 x 32 for 256 x 256 images, 256 + 256 channels) the shift
connection (:class:`zoo.layers.shift.ShiftConnection`) appends the shifted map, so that
transposed conv takes 768 channels.  Input: the image with the hole set to 0 plus a 4th
channel that is 1 on known pixels (``add_mask2input=1``).  54,944,771 parameters (counted on
the official ``define_G(4, 3, 64, 'unet_shift_triple', norm='instance')``).

Discriminator: :class:`zoo.layers.discriminators.PatchGAN` (3 layers, affine InstanceNorm,
spectral norm: ``use_spectral_norm_D=1``), 2,766,529 parameters, vanilla GAN (sigmoid + BCE,
D loss averaged over real and fake), fed the raw generator output, as both official codes.

Objective, paper configuration (default): ``L = L1 + 0.01 * L_guide + 0.002 * L_adv``, the
Lua code's ``lambda = 100``, ``strength = 1``, ``gan_weight = 0.2`` divided by 100 (Adam is
invariant to a global loss scale up to its epsilon).  ``L1`` is the mean absolute error over
the whole image; ``L_guide`` (:func:`zoo.losses.reconstruction.guidance_loss`) is the mean
squared distance, inside the hole of the 32 x 32 feature mask, between the decoder half of the
shift layer's input and the **encoder** half that the ground truth produces there.  The
official code gets that target by running the whole generator on the ground truth before
every step (``set_gt_latent``); here only the three encoder convolutions that produce it run
(:meth:`ShiftNetGenerator.guidance_target`, under ``no_grad``: 3 of the 16 convolutions,
about 6 % of the multiply-adds of a generator pass at 256^2), which gives the same tensor.
Adam, lr 2e-4, betas (0.5, 0.999) for both networks, constant learning rate (``niter=30``,
``niter_decay=0``).

PyTorch-code extras (off by default; values in this file's scale, i.e. official / 100):

- ``discounted_l1_weight`` (official ``mask_weight_G = 400`` -> 4.0): spatially discounted L1
  (gamma 0.9, :func:`zoo.losses.reconstruction.box_discount_weights`) on the hole patch;
- ``style_weight`` / ``content_weight`` (official 10 / 1 -> 0.1 / 0.01): VGG-16 pool1-3 Gram
  and feature MSE (:func:`zoo.losses.perceptual.shiftnet_losses`);
- ``crop_hole_patch`` (official behaviour with ``center`` / ``rect`` masks): the discriminator
  and the VGG terms see the hole's bounding box only (needs rectangular holes of one size per
  batch); the discounted L1 always uses that patch.

Deviations, all deliberate:

- **Layout**: flat modules (``down<i>``, ``down_norm<i>``, ``up<i>``, ``up_norm<i>``) instead
  of the nested ``UnetSkipConnectionBlock`` Sequentials; :func:`official_key_table` maps
  every nested key (``model.model.1.model.3.model.1.weight`` ...) onto them.
- **Stateless shift and guidance**: the masks are arguments (official: ``set_mask`` on the
  modules, one batch-wide count of holes); every sample may have its own mask.  The shift
  layer's own deviations (zero vectors, empty known set) are listed in
  :mod:`zoo.layers.shift`; the guidance gradient is the true gradient of the loss (the
  official hand-written backward also pushes ``-2 * target / numel`` into known positions),
  see :func:`zoo.losses.reconstruction.guidance_loss`.
- The official in-place LeakyReLU of each block also rewrites the skip tensor, so the
  decoder concatenates ``LeakyReLU(e_i)``; since every concatenation is followed by a ReLU,
  and ``ReLU(LeakyReLU(e)) = ReLU(e)``, the plain ``e_i`` is used (identical values and
  gradients).
- **Sizes**: H and W must be multiples of 256 (8 stride-2 convs down to 1 x 1); the base class
  pads other sizes (replicate, padding counted as known).  The official code bilinearly
  resizes mismatched decoder maps instead.
- Lua differences not reproduced (only its loss weights are the default): the Lua code filled
  the hole with mean-pixel constants and had no mask channel (3 inputs), used a conv-based
  feature mask (threshold 5/16; ``ShiftConnection(mask_method="conv")``) and a BatchNorm
  PatchGAN without spectral norm; the PyTorch network, discriminator and weights are followed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo._registry import register_model
from zoo._weights import load_state_dict
from zoo.layers.discriminators import PatchGAN
from zoo.layers.fast_deconv import FastConvTranspose2d
from zoo.layers.shift import ShiftConnection, feature_hole_mask
from zoo.layers.spectral_norm import remap_spectral_norm_keys
from zoo.losses.adversarial import AdversarialLoss
from zoo.losses.perceptual import ShiftNetVGGLoss, shiftnet_losses
from zoo.losses.reconstruction import box_discount_weights, guidance_loss, spatially_discounted_l1
from zoo.models._base import InpaintModel

__all__ = [
    "ShiftNetGenerator",
    "ShiftNet",
    "hole_boxes",
    "crop_boxes",
    "official_key_table",
    "convert_official_state_dict",
    "convert_official_discriminator_state_dict",
    "load_official",
]

Tensor = torch.Tensor
Box = tuple[int, int, int, int]  # top, left, height, width


# --------------------------------------------------------------------------- generator
class ShiftNetGenerator(nn.Module):
    """``UnetGeneratorShiftTriple`` (official ``unet_shift_triple``), flat layout.

    Args:
        in_channels: 4 (image + known-mask channel, ``add_mask2input=1``).
        out_channels: 3.
        ngf: base width (64).
        num_downs: number of stride-2 levels (8, ``define_G``).
        shift_level: the level whose up path holds the shift connection (3, ``layer_to_last``).
        mask_thred, triple_weight, shift_mask_method: :class:`ShiftConnection` settings
            (official 1, 1, ``"nearest"``).
        init_gain: std of the N(0, gain) conv initialisation (``init_gain`` 0.02).

    ``forward(x, mask)``: ``x`` N x 4 x H x W, ``mask`` N x 1 x H x W (1 = hole), H and W
    multiples of ``2**num_downs``.  Returns ``(output, decoder_feature)``: the Tanh output and
    the decoder half of the shift layer's input (post-ReLU), for the guidance loss.
    """

    def __init__(
        self,
        *,
        in_channels: int = 4,
        out_channels: int = 3,
        ngf: int = 64,
        num_downs: int = 8,
        shift_level: int = 3,
        mask_thred: float = 1.0,
        triple_weight: float = 1.0,
        shift_mask_method: str = "nearest",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs must be >= 5 (official 8), got {num_downs}")
        if not 1 < shift_level < num_downs:
            raise ValueError(f"shift_level must lie in (1, {num_downs}), got {shift_level}")
        self.num_downs = num_downs
        self.shift_level = shift_level
        self.in_channels = in_channels
        # inner width of level i (output of down<i>): ngf * min(2^(i-1), 8)
        self.widths = [ngf * min(2 ** (i - 1), 8) for i in range(1, num_downs + 1)]
        for i in range(1, num_downs + 1):
            c_outer = in_channels if i == 1 else self.widths[i - 2]  # level input width
            c_inner = self.widths[i - 1]
            self.add_module(f"down{i}", nn.Conv2d(c_outer, c_inner, 4, stride=2, padding=1))
            if 1 < i < num_downs:
                self.add_module(f"down_norm{i}", _instance_norm(c_inner))
            factor = 1 if i == num_downs else (3 if i == shift_level else 2)
            c_up_out = out_channels if i == 1 else c_outer
            self.add_module(
                # nn.ConvTranspose2d(factor * c_inner, c_up_out, 4, stride=2, padding=1),
                # computed in a faster exact form on CPU (same parameters and values)
                f"up{i}",
                FastConvTranspose2d(factor * c_inner, c_up_out),
            )
            if i > 1:
                self.add_module(f"up_norm{i}", _instance_norm(c_up_out))
        self.shift = ShiftConnection(
            layer_to_last=shift_level,
            mask_thred=mask_thred,
            triple_weight=triple_weight,
            mask_method=shift_mask_method,
        )
        self.reset_parameters(init_gain)

    def reset_parameters(self, gain: float = 0.02) -> None:
        """Official ``init_weights('normal', 0.02)``: conv weights N(0, gain), biases 0; the
        InstanceNorm affine parameters keep torch's 1 / 0."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.normal_(module.weight, 0.0, gain)
                nn.init.zeros_(module.bias)

    def _check(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"input must be N x {self.in_channels} x H x W, got {tuple(x.shape)}")
        step = 2**self.num_downs
        if x.shape[-2] % step or x.shape[-1] % step:
            raise ValueError(f"H and W must be multiples of {step}, got {tuple(x.shape[-2:])}")

    def _down(self, i: int, h: Tensor) -> Tensor:
        if i > 1:
            h = F.leaky_relu(h, 0.2)
        h = getattr(self, f"down{i}")(h)  # N x widths[i-1] x H/2^i x W/2^i
        if 1 < i < self.num_downs:
            h = getattr(self, f"down_norm{i}")(h)
        return h

    def encode(self, x: Tensor, levels: int | None = None) -> list[Tensor]:
        """Encoder features ``[e_1, ..., e_levels]`` (post-norm, pre-activation)."""
        feats = []
        h = x
        for i in range(1, (levels or self.num_downs) + 1):
            h = self._down(i, h)
            feats.append(h)
        return feats

    def guidance_target(self, x: Tensor) -> Tensor:
        """``ReLU(e_shift_level)`` of ``x`` (the ground truth + known-mask channel): the tensor
        the official ``InnerCos`` stores as its target during the ground-truth pass."""
        self._check(x)
        return F.relu(self.encode(x, self.shift_level)[-1])

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        self._check(x)
        feats = self.encode(x)  # e_1 .. e_L
        decoder_feature = x.new_empty(0)
        d = feats[-1]
        for i in range(self.num_downs, 0, -1):
            u = F.relu(d if i == self.num_downs else torch.cat([d, feats[i - 1]], dim=1))
            if i == self.shift_level:
                decoder_feature = u[:, : self.widths[i - 1]]  # N x C x h x w (InnerCos input)
                u = self.shift(u, mask)  # N x 3C x h x w
            d = getattr(self, f"up{i}")(u)
            d = getattr(self, f"up_norm{i}")(d) if i > 1 else torch.tanh(d)
        return d, decoder_feature


def _instance_norm(channels: int) -> nn.InstanceNorm2d:
    """Official ``norm='instance'``: affine, no running statistics."""
    return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)


# --------------------------------------------------------------------------- hole patches
def hole_boxes(mask: Tensor) -> list[Box]:
    """Bounding box ``(top, left, height, width)`` of each sample's hole; each hole must fill
    its box (a rectangle) and all boxes must have one size (official center / rect masks)."""
    boxes: list[Box] = []
    for n, m in enumerate(mask[:, 0] > 0.5):  # H x W bool
        rows, cols = m.any(dim=1).nonzero(), m.any(dim=0).nonzero()
        if rows.numel() == 0:
            raise ValueError(f"crop_hole_patch: sample {n} has no hole")
        top, left = int(rows[0]), int(cols[0])
        height, width = int(rows[-1]) - top + 1, int(cols[-1]) - left + 1
        if int(m.sum()) != height * width:
            raise ValueError(
                f"crop_hole_patch needs rectangular holes (official center / rect masks); "
                f"sample {n} has a {height}x{width} bounding box with {int(m.sum())} hole pixels"
            )
        boxes.append((top, left, height, width))
    if len({(b[2], b[3]) for b in boxes}) != 1:
        raise ValueError(
            f"crop_hole_patch needs holes of one size per batch, got {[b[2:] for b in boxes]}"
        )
    return boxes


def crop_boxes(x: Tensor, boxes: list[Box]) -> Tensor:
    """Stack ``x[n, :, top:top+h, left:left+w]`` over the batch: N x C x h x w."""
    return torch.stack([x[n, :, t : t + h, l : l + w] for n, (t, l, h, w) in enumerate(boxes)])


# --------------------------------------------------------------------------- model
class ShiftNet(InpaintModel):
    """Shift-Net generator + PatchGAN with the paper's objective (see the module docstring).

    Args:
        ngf, ndf: generator / discriminator base widths (64, 64).
        n_layers_d: PatchGAN layers (3, ``which_model_netD='basic'``).
        l1_weight, guidance_weight, gan_weight: paper 1, 0.01, 0.002 (official scale / 100).
        discounted_l1_weight, style_weight, content_weight: PyTorch-code extras (0 = off;
            official 400, 10, 1 -> 4, 0.1, 0.01 here).
        discount_gamma: spatial discounting base (0.9).
        crop_hole_patch: D and VGG terms on the hole patch (official with box masks).
        mask_thred, triple_weight: shift connection settings (1, 1).
        lr, beta1, beta2: Adam of G and D (2e-4, 0.5, 0.999).
        vgg: VGG-16 weights for the optional style / content terms (built lazily).
    """

    def __init__(
        self,
        *,
        ngf: int = 64,
        ndf: int = 64,
        n_layers_d: int = 3,
        l1_weight: float = 1.0,
        guidance_weight: float = 0.01,
        gan_weight: float = 0.002,
        discounted_l1_weight: float = 0.0,
        style_weight: float = 0.0,
        content_weight: float = 0.0,
        discount_gamma: float = 0.9,
        crop_hole_patch: bool = False,
        mask_thred: float = 1.0,
        triple_weight: float = 1.0,
        lr: float = 2e-4,
        beta1: float = 0.5,
        beta2: float = 0.999,
        vgg: Literal["imagenet", "random"] = "imagenet",
    ) -> None:
        super().__init__()
        if vgg not in ("imagenet", "random"):
            raise ValueError(f"vgg must be 'imagenet' or 'random', got {vgg!r}")
        self.generator = ShiftNetGenerator(
            ngf=ngf, mask_thred=mask_thred, triple_weight=triple_weight
        )
        self.pad_multiple = 2**self.generator.num_downs
        disc = PatchGAN(3, ndf, n_layers_d, norm="instance", spectral=True)
        _init_discriminator(disc, 0.02)
        self.discriminators = nn.ModuleDict({"patch": disc})
        self.adversarial = AdversarialLoss("vanilla", average_real_fake=True)
        self.weights = {
            "l1": float(l1_weight),
            "guidance": float(guidance_weight),
            "adv": float(gan_weight),
            "discounted_l1": float(discounted_l1_weight),
            "style": float(style_weight),
            "content": float(content_weight),
        }
        self.discount_gamma = float(discount_gamma)
        self.crop_hole_patch = bool(crop_hole_patch)
        self.lr, self.betas = float(lr), (float(beta1), float(beta2))
        self.vgg = vgg
        self._vgg_loss: ShiftNetVGGLoss | None = None

    # ------------------------------------------------------------------ inference
    def inpaint(self, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
        known = 1 - mask
        x = torch.cat([image * known, known], dim=1)  # official set_input: hole 0 + known mask
        output, decoder_feature = self.generator(x, mask)
        out = {"output": output, "shift_decoder": decoder_feature}
        if self.training and self.weights["guidance"] != 0:
            # official set_gt_latent: the ground truth (+ the same known-mask channel) through
            # the encoder; the contract image still holds the hole pixels.  Only the target.
            with torch.no_grad():
                out["shift_target"] = self.generator.guidance_target(
                    torch.cat([image, known], dim=1)
                )
            out["shift_mask"] = feature_hole_mask(mask, self.generator.shift_level)
        return out

    # ------------------------------------------------------------------ losses
    def _vgg(self, like: Tensor) -> ShiftNetVGGLoss:
        if self._vgg_loss is None:  # lazily: only the optional style / content terms need it
            # kept out of the module tree (not in state_dict(), parameters() or checkpoints)
            object.__setattr__(self, "_vgg_loss", shiftnet_losses(weights=self.vgg))
        self._vgg_loss.to(device=like.device, dtype=like.dtype)
        return self._vgg_loss

    def _patches(self, image: Tensor, mask: Tensor, output: Tensor) -> tuple[Tensor, Tensor]:
        """(fake, real) as D and the VGG terms see them: whole images or hole patches."""
        if not self.crop_hole_patch:
            return output, image
        boxes = hole_boxes(mask)
        return crop_boxes(output, boxes), crop_boxes(image, boxes)

    def generator_loss(
        self, image: Tensor, mask: Tensor, out: dict[str, Tensor], step: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        output = out["output"]
        w = self.weights
        terms = {"l1": (output - image).abs().mean()}  # official criterionL1(fake_B, real_B)
        if w["guidance"] != 0:
            if "shift_target" not in out:
                raise ValueError("the guidance loss needs a forward pass in train mode")
            terms["guidance"] = guidance_loss(
                out["shift_decoder"], out["shift_target"], out["shift_mask"]
            )
        fake, real = self._patches(image, mask, output)
        scores, _ = self.discriminators["patch"](fake)
        terms["adv"] = self.adversarial.generator_loss(scores)
        if w["discounted_l1"] != 0:
            boxes = hole_boxes(mask)
            _, _, h, wd = boxes[0]
            weights = box_discount_weights(
                h, wd, self.discount_gamma, dtype=output.dtype, device=output.device
            )
            terms["discounted_l1"] = spatially_discounted_l1(
                crop_boxes(output, boxes), crop_boxes(image, boxes), weights
            )
        if w["style"] != 0 or w["content"] != 0:
            vgg = self._vgg(output)(fake, real)
            terms["style"], terms["content"] = vgg["style"], vgg["content"]
        total = sum(w[k] * v for k, v in terms.items())
        logs = {**terms, "total": total}
        return total, {k: v.detach() for k, v in logs.items()}

    def discriminator_loss(
        self, image: Tensor, mask: Tensor, out: dict[str, Tensor], step: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        fake, real = self._patches(image, mask, out["output"].detach())
        disc = self.discriminators["patch"]
        fake_scores, _ = disc(fake)  # official backward_D: two calls, fake first
        real_scores, _ = disc(real)
        loss = self.adversarial.discriminator_loss(real_scores, fake_scores)
        logs = {
            "d_real": self.adversarial.real_loss(real_scores).detach(),
            "d_fake": self.adversarial.fake_loss(fake_scores).detach(),
            "d_total": loss.detach(),
        }
        return loss, logs

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "generator": torch.optim.Adam(
                self.generator.parameters(), lr=self.lr, betas=self.betas
            ),
            "discriminator": torch.optim.Adam(
                self.discriminators.parameters(), lr=self.lr, betas=self.betas
            ),
        }

    def load_official(self, source: str | os.PathLike | Mapping[str, Any]) -> None:
        """Load an official ``<epoch>_net_G.pth`` into the generator."""
        self.generator.load_state_dict(load_official(source), strict=True)


def _init_discriminator(disc: nn.Module, gain: float) -> None:
    """Official ``init_weights('normal', 0.02)`` on the (spectral-norm) conv weights."""
    for module in disc.modules():
        if isinstance(module, nn.Conv2d):
            parametrized = hasattr(module, "parametrizations")
            weight = module.parametrizations.weight.original if parametrized else module.weight
            nn.init.normal_(weight, 0.0, gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


# --------------------------------------------------------------------------- converter
def official_key_table(num_downs: int = 8, shift_level: int = 3) -> dict[str, str]:
    """Official nested key -> :class:`ShiftNetGenerator` key (58 entries for 8 levels).

    Level 1 is ``model.model``; each block's submodule sits at index 1 (level 1) or 3.
    Indices inside a block: outermost 0 down conv, 3 up convT; plain 1 down conv, 2 norm,
    5 up convT, 6 norm; shift block 1, 2, 7, 8 (5 InnerCos, 6 shift have no tensors);
    innermost 1 down conv, 3 up convT, 4 norm.
    """
    table: dict[str, str] = {}
    prefix = "model.model."
    for i in range(1, num_downs + 1):
        if i == 1:
            layout = {0: f"down{i}", 3: f"up{i}"}
        elif i == num_downs:
            layout = {1: f"down{i}", 3: f"up{i}", 4: f"up_norm{i}"}
        elif i == shift_level:
            layout = {1: f"down{i}", 2: f"down_norm{i}", 7: f"up{i}", 8: f"up_norm{i}"}
        else:
            layout = {1: f"down{i}", 2: f"down_norm{i}", 5: f"up{i}", 6: f"up_norm{i}"}
        for index, name in layout.items():
            for param in ("weight", "bias"):
                table[f"{prefix}{index}.{param}"] = f"{name}.{param}"
        prefix += ("1." if i == 1 else "3.") + "model."
    return table


def convert_official_state_dict(state_dict: Mapping[str, Any]) -> dict[str, Tensor]:
    """Official Shift-Net_pytorch generator state dict (``<epoch>_net_G.pth``, bare) ->
    :class:`ShiftNetGenerator` keys; strict key check (58 tensors), every shape asserted.

    InstanceNorm ``running_mean`` / ``running_var`` / ``num_batches_tracked`` entries of
    pre-0.4 checkpoints are dropped, as the official ``load_networks`` does.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"expected a state dict mapping, got {type(state_dict).__name__}")
    table = official_key_table()
    src = {
        k: v
        for k, v in state_dict.items()
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    }
    missing, extra = sorted(set(table) - set(src)), sorted(set(src) - set(table))
    if missing or extra:
        raise ValueError(
            f"Shift-Net generator state dict: missing {len(missing)} {missing[:4]}, "
            f"unexpected {len(extra)} {extra[:4]}"
        )
    if len(src) != 58:
        raise ValueError(f"Shift-Net generator state dict must have 58 tensors, got {len(src)}")
    first = src["model.model.0.weight"]
    if not isinstance(first, Tensor) or first.dim() != 4:
        raise ValueError("'model.model.0.weight' must be a 4-D conv weight")
    with torch.device("meta"):
        reference = ShiftNetGenerator(ngf=int(first.shape[0])).state_dict()
    out: dict[str, Tensor] = {}
    for key, value in src.items():
        ours = table[key]
        if not isinstance(value, Tensor):
            raise TypeError(f"{key!r} is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != tuple(reference[ours].shape):
            raise ValueError(
                f"{key!r} (-> {ours!r}) has shape {tuple(value.shape)}, "
                f"expected {tuple(reference[ours].shape)}"
            )
        out[ours] = value.detach().clone()
    if set(out) != set(reference):
        raise ValueError(f"converted keys differ: {sorted(set(out) ^ set(reference))[:4]}")
    return out


def convert_official_discriminator_state_dict(state_dict: Mapping[str, Any]) -> dict[str, Tensor]:
    """Official ``<epoch>_net_D.pth`` (``NLayerDiscriminator`` with legacy spectral norm:
    ``model.<i>.weight_orig`` / ``weight_u`` / ``weight_v``) -> ``model.discriminators`` keys
    (``patch.model.<i>.parametrizations.weight.*``); strict key and shape check (26 tensors).
    In eval mode the loaded PatchGAN reproduces the official forward (stored ``u``, ``v``)."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"expected a state dict mapping, got {type(state_dict).__name__}")
    if len(state_dict) != 26:
        raise ValueError(
            f"Shift-Net discriminator state dict must have 26 tensors, got {len(state_dict)}"
        )
    first = state_dict.get("model.0.weight_orig")
    if not isinstance(first, Tensor) or first.dim() != 4:
        raise ValueError("'model.0.weight_orig' must be a 4-D conv weight")
    remapped = remap_spectral_norm_keys(dict(state_dict), "legacy")
    with torch.device("meta"):
        reference = PatchGAN(int(first.shape[1]), int(first.shape[0]), 3).state_dict()
    missing, extra = sorted(set(reference) - set(remapped)), sorted(set(remapped) - set(reference))
    if missing or extra:
        raise ValueError(
            f"Shift-Net discriminator state dict: missing {missing[:4]}, unexpected {extra[:4]}"
        )
    for key, value in remapped.items():
        if tuple(value.shape) != tuple(reference[key].shape):
            raise ValueError(
                f"{key!r} has shape {tuple(value.shape)}, expected {tuple(reference[key].shape)}"
            )
    return {f"patch.{k}": v.detach().clone() for k, v in remapped.items()}


def load_official(source: str | os.PathLike | Mapping[str, Any]) -> dict[str, Tensor]:
    """Read (``torch.load(weights_only=True)``) and convert an official ``30_net_G.pth``."""
    state = source if isinstance(source, Mapping) else load_state_dict(source)
    return convert_official_state_dict(state)


# --------------------------------------------------------------------------- entrypoint
@register_model
def shift_net(
    *,
    ngf: int = 64,  # --ngf
    ndf: int = 64,  # --ndf
    n_layers_d: int = 3,  # which_model_netD='basic' (n_layers=3)
    l1_weight: float = 1.0,  # paper 1 (Lua lambda 100 / 100)
    guidance_weight: float = 0.01,  # paper lambda_g (Lua/PyTorch strength 1 / 100)
    gan_weight: float = 0.002,  # paper lambda_adv (gan_weight 0.2 / 100)
    discounted_l1_weight: float = 0.0,  # PyTorch extra: mask_weight_G 400 / 100 = 4
    style_weight: float = 0.0,  # PyTorch extra: style_weight 10 / 100 = 0.1
    content_weight: float = 0.0,  # PyTorch extra: content_weight 1 / 100 = 0.01
    discount_gamma: float = 0.9,  # spatial discounting gamma (Discounted_L1)
    crop_hole_patch: bool = False,  # PyTorch with center/rect masks: D and VGG on the hole patch
    mask_thred: float = 1.0,  # --mask_thred
    triple_weight: float = 1.0,  # --triple_weight
    lr: float = 2e-4,  # --lr
    beta1: float = 0.5,  # --beta1
    beta2: float = 0.999,  # Adam beta2 (shiftnet_model.py)
    vgg: Literal["imagenet", "random"] = "imagenet",  # VGG-16 for style / content (extras)
) -> ShiftNet:
    """Shift-Net (Yan et al., ECCV 2018): U-Net with a shift connection and guidance loss."""
    return ShiftNet(
        ngf=ngf, ndf=ndf, n_layers_d=n_layers_d, l1_weight=l1_weight,
        guidance_weight=guidance_weight, gan_weight=gan_weight,
        discounted_l1_weight=discounted_l1_weight, style_weight=style_weight,
        content_weight=content_weight, discount_gamma=discount_gamma,
        crop_hole_patch=crop_hole_patch, mask_thred=mask_thred, triple_weight=triple_weight,
        lr=lr, beta1=beta1, beta2=beta2, vgg=vgg,
    )  # fmt: skip
