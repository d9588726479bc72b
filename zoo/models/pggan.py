"""PGGAN: Patch-Based Image Inpainting with Generative Adversarial Networks.

**Re-implementation from the paper, unverified.**

Paper: Ugur Demir, Gozde Unal, "Patch-Based Image Inpainting with Generative Adversarial
Networks", arXiv 1803.07422 (2018).  Official code: **none** (no author repository, no
weights; the "pggan" repositories of awesome lists are progressive-growing GANs, models.md
section 4), hence no converter.

What the available text states (abstract, arXiv 1803.07422v1): a GAN inpainting method whose
discriminator "combines a global GAN (G-GAN) architecture with a patchGAN approach"; it "first
shares network layers between G-GAN and patchGAN, then splits paths to produce two adversarial
losses that feed the generator network".  The paper body (layer tables, loss weights,
optimiser, training schedule) was **not available** to this re-implementation; models.md
section 4 adds, itself unverified: a ResNet-style encoder-decoder generator with strided-conv
downsampling, residual blocks (some dilated), resize-convolution upsampling against
transposed-convolution artefacts ("interpolated convolution"), Tanh output; loss = L1
reconstruction + the two adversarial terms.

Every choice below is therefore ours; each is marked "unverified: not in the available text".

Generator (:class:`PGGANGenerator`, :data:`GENERATOR_TABLE`; Johnson et al. / CycleGAN ResNet
layout, which the PGGAN description matches):

1. input: the image with the hole set to 0 (mid-grey in [-1, 1]) + the mask = 4 channels;
2. 7x7 conv 64 (reflection padding), 3x3 stride-2 convs 128 and 256 (zero padding), each with
   InstanceNorm (no affine, no running statistics) and ReLU;
3. nine residual blocks at 1/4 resolution, :class:`zoo.layers.dilated.DilatedResidualBlock`
   (reflection pad, dilated 3x3 conv, IN, ReLU, 3x3 conv, IN, identity skip), dilations
   ``(1, 2, 4, 8, 1, 2, 4, 8, 1)``; reflection padding needs the 1/4-resolution map larger
   than the largest dilation, so inputs must be at least 36 px (checked);
4. two x2 upsamplings, ``upsample="interp"`` (default: "interpolated convolution" =
   nearest x2 resize, ``interp_mode``, then a 3x3 conv) or ``"deconv"`` (3x3 stride-2
   transposed conv, padding 1, output padding 1, the CycleGAN layer whose uneven overlap
   produces checkerboard artefacts); 128 then 64 channels, IN, ReLU;
5. 7x7 conv to 3 channels (reflection padding), Tanh.

All convolutions have biases.  11,381,315 parameters (either upsampling; derivation in
``tests/models/test_pggan.py``).

Discriminator (:class:`PGGANDiscriminator`): the pix2pix 70x70 PatchGAN
(:class:`zoo.layers.discriminators.PatchGAN`, 3 layers, BatchNorm, no spectral norm) cut
after its third 4x4 stride-2 conv: that stack (64, 128, 256 channels, 1/8 resolution) is the
**shared trunk**; the rest of the PatchGAN (4x4 stride-1 conv 512, BN, LReLU, 4x4 conv to 1)
is the **patch head** (one logit per 70x70 patch); the **global head** continues from the trunk
with three 4x4 stride-2 convs (512, 512, 512; BN, LeakyReLU 0.2) to 1/64 resolution, an
adaptive average pool to 4x4 (the identity at the 256^2 training size) and a linear layer to
one logit.  Input: the composite image (3 channels), at least 64 px (the global head halves
the 1/8 map three times).  13,262,658 parameters (trunk 659,264 + patch head 2,106,369 +
global head 10,497,025).

Objective: ``L_G = w_rec * mean|output - image| (whole image) + w_global * BCE(D_g(fake), 1)
+ w_patch * BCE(D_p(fake), 1)``; ``L_D = [BCE(D_g(real), 1) + BCE(D_g(fake), 0)] / 2 +
[BCE(D_p(real), 1) + BCE(D_p(fake), 0)] / 2`` (vanilla GAN on logits, pix2pix's halving);
real and fake in separate discriminator calls (per-batch BN statistics, as pix2pix); one D
step per G step; Adam for both.

Choices the paper leaves open here (all unverified: not in the available text):

- generator widths (64/128/256), depth (2 downsamplings, 9 residual blocks), dilation
  schedule, kernel sizes, normalisation (InstanceNorm), padding types, biases;
- the hole fill (0) and the mask input channel; Tanh output in [-1, 1];
- the upsampling default ("interp", nearest; bilinear offered) and the deconv variant;
- where the discriminator splits (after the third conv), the heads' depths and widths, the
  global head's pooling + linear layer, BatchNorm, LeakyReLU 0.2, no spectral norm;
- the discriminator input (``d_input="composite"``; ``"output"`` offered) and no mask channel;
- the GAN loss (vanilla/BCE), its real/fake halving, the sum of the two discriminator losses;
- the loss weights ``w_rec = 0.995``, ``w_global = w_patch = 0.0025`` (recalled from the paper's
  objective section, not checked against the text), and L1 over the whole image (not
  hole-weighted), no perceptual or other term;
- Adam lr 2e-4, betas (0.5, 0.999) for both networks (pix2pix defaults); no warm-up or phases;
- training data and masks: models.md reports Paris StreetView etc. at 256^2 (unverified); the
  benchmark's mask configuration applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn

from zoo._registry import register_model
from zoo.layers.dilated import DilatedConvBlock, DilatedResidualBlock
from zoo.layers.discriminators import PatchGAN
from zoo.losses.adversarial import AdversarialLoss
from zoo.losses.reconstruction import masked_l1
from zoo.models._base import InpaintModel

__all__ = ["PGGANGenerator", "PGGANDiscriminator", "PGGAN"]

Tensor = torch.Tensor

#: default dilations of the nine residual blocks (unverified: not in the available text)
DILATIONS = (1, 2, 4, 8, 1, 2, 4, 8, 1)

#: generator layout at ngf = 64 (unverified): (stage, layer, in, out, kernel, stride)
GENERATOR_TABLE = (
    ("encoder", "conv 7x7, reflect pad 3, IN, ReLU", 4, 64, 7, 1),
    ("encoder", "conv 3x3 s2, zero pad 1, IN, ReLU", 64, 128, 3, 2),
    ("encoder", "conv 3x3 s2, zero pad 1, IN, ReLU", 128, 256, 3, 2),
    ("blocks", "9 x residual (3x3 dilated + 3x3), IN", 256, 256, 3, 1),
    ("decoder", "x2 resize + conv 3x3 (or 3x3 s2 deconv), IN, ReLU", 256, 128, 3, 2),
    ("decoder", "x2 resize + conv 3x3 (or 3x3 s2 deconv), IN, ReLU", 128, 64, 3, 2),
    ("decoder", "conv 7x7, reflect pad 3, Tanh", 64, 3, 7, 1),
)


# --------------------------------------------------------------------------- generator
def _upsample_block(c_in: int, c_out: int, upsample: str, interp_mode: str) -> nn.Sequential:
    """x2 upsampling to ``c_out`` channels, then InstanceNorm and ReLU."""
    if upsample == "interp":  # "interpolated convolution": resize, then a size-keeping conv
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode=interp_mode),
            DilatedConvBlock(c_in, c_out, kernel_size=3, norm_layer=nn.InstanceNorm2d),
        )
    return nn.Sequential(  # transposed conv: 3x3, stride 2, exact x2 with output_padding 1
        nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1),
        nn.InstanceNorm2d(c_out),
        nn.ReLU(),
    )


class PGGANGenerator(nn.Module):
    """ResNet encoder-decoder (:data:`GENERATOR_TABLE`; unverified: not in the available text).

    Args:
        in_channels: 4 = image with zeroed hole + mask.
        ngf: width of the first conv (64).
        dilations: one residual block per entry, with that dilation (:data:`DILATIONS`).
        upsample: "interp" (resize + conv, the paper's proposal) or "deconv".
        interp_mode: "nearest" or "bilinear" resize for ``upsample="interp"``.

    Input N x 4 x H x W (H, W multiples of 4, at least ``4 * (max(dilations) + 1)``), output
    N x 3 x H x W in [-1, 1].  Children ``encoder``, ``blocks``, ``decoder`` (Sequentials).
    """

    def __init__(
        self,
        *,
        in_channels: int = 4,
        ngf: int = 64,
        dilations: Sequence[int] = DILATIONS,
        upsample: str = "interp",
        interp_mode: str = "nearest",
    ) -> None:
        super().__init__()
        if upsample not in ("interp", "deconv"):
            raise ValueError(f"upsample must be 'interp' or 'deconv', got {upsample!r}")
        if interp_mode not in ("nearest", "bilinear"):
            raise ValueError(f"interp_mode must be 'nearest' or 'bilinear', got {interp_mode!r}")
        dilations = tuple(int(d) for d in dilations)
        if not dilations or min(dilations) < 1:
            raise ValueError(
                f"dilations must be a non-empty sequence of ints >= 1, got {dilations}"
            )
        self.min_size = 4 * (max(dilations) + 1)
        norm = nn.InstanceNorm2d  # affine=False, no running statistics
        self.encoder = nn.Sequential(
            DilatedConvBlock(
                in_channels, ngf, kernel_size=7, norm_layer=norm, padding_mode="reflect"
            ),
            DilatedConvBlock(ngf, 2 * ngf, kernel_size=3, stride=2, norm_layer=norm),
            DilatedConvBlock(2 * ngf, 4 * ngf, kernel_size=3, stride=2, norm_layer=norm),
        )
        self.blocks = nn.Sequential(*(DilatedResidualBlock(4 * ngf, dilation=d) for d in dilations))
        self.decoder = nn.Sequential(
            _upsample_block(4 * ngf, 2 * ngf, upsample, interp_mode),
            _upsample_block(2 * ngf, ngf, upsample, interp_mode),
            DilatedConvBlock(ngf, 3, kernel_size=7, act_layer=nn.Tanh, padding_mode="reflect"),
        )

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if x.dim() != 4 or h % 4 or w % 4 or min(h, w) < self.min_size:
            raise ValueError(
                f"expected N x C x H x W with H, W multiples of 4 and >= {self.min_size} "
                f"(reflection padding of the dilated blocks), got {tuple(x.shape)}"
            )
        x = self.encoder(x)  # N x 4ngf x H/4 x W/4
        x = self.blocks(x)
        return self.decoder(x)  # N x 3 x H x W


# --------------------------------------------------------------------------- discriminator
class PGGANDiscriminator(nn.Module):
    """Shared trunk, then a global head (one logit) and a PatchGAN head (a logit map).

    Args (unverified: not in the available text):
        in_channels: 3 (the image).
        ndf: trunk width (64; trunk 64, 128, 256 channels).
        norm: "batch" (pix2pix), "instance" or None, in trunk and both heads.
        global_layers: stride-2 4x4 convs of the global head (3: 1/8 -> 1/64 resolution).
        global_pool: side of the adaptive average pool before the linear layer (4 = identity
            at 256^2 with three global layers).

    ``forward(x)`` returns ``(global_logits N x 1, patch_logits N x 1 x h x w, features)``,
    features = ``[trunk output, patch logits, global logits]``; the trunk runs once per call.
    Children: ``trunk`` and ``patch_head`` (the two halves of the toolkit
    :class:`~zoo.layers.discriminators.PatchGAN` ``model``), ``global_head``.
    """

    SPLIT_AFTER = 3  # the trunk ends after the third conv's activation

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        *,
        norm: str | None = "batch",
        global_layers: int = 3,
        global_pool: int = 4,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if global_layers < 1 or global_pool < 1:
            raise ValueError(
                f"global_layers and global_pool must be >= 1: {global_layers}, {global_pool}"
            )
        self.in_channels = in_channels
        self.global_layers = global_layers
        self.min_size = 8 * 2**global_layers  # the global head halves H/8 global_layers times
        patch = PatchGAN(in_channels, ndf, n_layers=3, norm=norm, spectral=False)
        layers = list(patch.model)
        acts = [i for i, m in enumerate(layers) if isinstance(m, nn.LeakyReLU)]
        split = acts[self.SPLIT_AFTER - 1] + 1
        self.trunk = nn.Sequential(*layers[:split])  # 3 x H x W -> 4ndf x H/8 x W/8
        self.patch_head = nn.Sequential(*layers[split:])  # -> 1 x (H/8 - 2) x (W/8 - 2)
        head: list[nn.Module] = []
        width = 4 * ndf
        for _ in range(global_layers):  # PatchGAN's (pix2pix) rule: bias only with InstanceNorm
            head.append(nn.Conv2d(width, 8 * ndf, 4, stride=2, padding=1, bias=norm == "instance"))
            if norm == "batch":
                head.append(nn.BatchNorm2d(8 * ndf))
            elif norm == "instance":
                head.append(nn.InstanceNorm2d(8 * ndf, affine=True))
            head.append(nn.LeakyReLU(negative_slope))
            width = 8 * ndf
        head += [
            nn.AdaptiveAvgPool2d(global_pool),  # N x 8ndf x p x p (identity at 256^2)
            nn.Flatten(),  # N x (8ndf * p * p)
            nn.Linear(width * global_pool * global_pool, 1),
        ]
        self.global_head = nn.Sequential(*head)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"input must be N x {self.in_channels} x H x W, got {tuple(x.shape)}")
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(
                f"input must be at least {self.min_size} x {self.min_size} (the global head "
                f"halves the 1/8-resolution map {self.global_layers} times), got "
                f"{tuple(x.shape)}"
            )
        shared = self.trunk(x)  # N x 4ndf x H/8 x W/8: computed once, read by both heads
        patch = self.patch_head(shared)  # N x 1 x (H/8 - 2) x (W/8 - 2)
        global_logits = self.global_head(shared)  # N x 1
        return global_logits, patch, [shared, patch, global_logits]


# --------------------------------------------------------------------------- model
class PGGAN(InpaintModel):
    """PGGAN generator + two-headed discriminator (re-implementation, unverified).

    Args: see :func:`pggan`.
    """

    pad_multiple = 4

    def __init__(
        self,
        *,
        ngf: int = 64,
        ndf: int = 64,
        dilations: Sequence[int] = DILATIONS,
        upsample: str = "interp",
        interp_mode: str = "nearest",
        d_norm: str = "batch",
        d_input: str = "composite",
        w_rec: float = 0.995,
        w_global: float = 0.0025,
        w_patch: float = 0.0025,
        lr: float = 2e-4,
        beta1: float = 0.5,
        beta2: float = 0.999,
    ) -> None:
        super().__init__()
        if d_norm not in ("batch", "instance", "none"):
            raise ValueError(f"d_norm must be 'batch', 'instance' or 'none', got {d_norm!r}")
        if d_input not in ("composite", "output"):
            raise ValueError(f"d_input must be 'composite' or 'output', got {d_input!r}")
        self.generator = PGGANGenerator(
            ngf=ngf, dilations=dilations, upsample=upsample, interp_mode=interp_mode
        )
        self.discriminators = nn.ModuleDict(
            {"pggan": PGGANDiscriminator(3, ndf, norm=None if d_norm == "none" else d_norm)}
        )
        self.d_input = d_input
        self.w_rec, self.w_global, self.w_patch = float(w_rec), float(w_global), float(w_patch)
        self.lr, self.betas = float(lr), (float(beta1), float(beta2))
        self.adversarial = AdversarialLoss("vanilla", average_real_fake=True)

    def inpaint(self, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
        x = torch.cat([image * (1 - mask), mask], dim=1)  # N x 4 x H x W, hole = 0
        return {"output": self.generator(x)}

    def _fake(self, out: dict[str, Tensor]) -> Tensor:
        return out["composite"] if self.d_input == "composite" else out["output"]

    def generator_loss(
        self, image: Tensor, mask: Tensor, out: dict[str, Tensor], step: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        rec = masked_l1(out["output"], image, mask)  # mean |d| over the whole image
        global_logits, patch_logits, _ = self.discriminators["pggan"](self._fake(out))
        adv_global = self.adversarial.generator_loss(global_logits)
        adv_patch = self.adversarial.generator_loss(patch_logits)
        total = self.w_rec * rec + self.w_global * adv_global + self.w_patch * adv_patch
        logs = {"l1": rec, "adv_global": adv_global, "adv_patch": adv_patch, "total": total}
        return total, {k: v.detach() for k, v in logs.items()}

    def discriminator_loss(
        self, image: Tensor, mask: Tensor, out: dict[str, Tensor], step: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        disc = self.discriminators["pggan"]
        real_g, real_p, _ = disc(image)  # separate calls: per-batch BN statistics
        fake_g, fake_p, _ = disc(self._fake(out).detach())
        d_global = self.adversarial.discriminator_loss(real_g, fake_g)
        d_patch = self.adversarial.discriminator_loss(real_p, fake_p)
        total = d_global + d_patch
        logs = {"d_global": d_global, "d_patch": d_patch, "d_total": total}
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


# --------------------------------------------------------------------------- entrypoint
@register_model
def pggan(
    *,
    ngf: int = 64,  # generator base width (unverified)
    ndf: int = 64,  # discriminator base width (unverified; pix2pix)
    dilations: tuple[int, ...] = DILATIONS,  # one residual block each (unverified)
    upsample: str = "interp",  # "interp" (resize + conv, the paper's proposal) | "deconv"
    interp_mode: str = "nearest",  # resize of "interp": nearest | bilinear (unverified)
    d_norm: str = "batch",  # discriminator norm: batch | instance | none (unverified)
    d_input: str = "composite",  # what D sees: composite | output (unverified)
    w_rec: float = 0.995,  # L1 weight (recalled from the paper, unverified)
    w_global: float = 0.0025,  # global adversarial weight (recalled, unverified)
    w_patch: float = 0.0025,  # patch adversarial weight (recalled, unverified)
    lr: float = 2e-4,  # Adam, G and D (unverified; pix2pix)
    beta1: float = 0.5,  # (unverified; pix2pix)
    beta2: float = 0.999,  # (unverified; pix2pix)
) -> PGGAN:
    """PGGAN (Demir & Unal, arXiv 1803.07422): re-implementation from the paper, unverified."""
    kwargs: dict[str, Any] = dict(
        ngf=ngf, ndf=ndf, dilations=dilations, upsample=upsample, interp_mode=interp_mode,
        d_norm=d_norm, d_input=d_input, w_rec=w_rec, w_global=w_global, w_patch=w_patch,
        lr=lr, beta1=beta1, beta2=beta2,
    )  # fmt: skip
    return PGGAN(**kwargs)
