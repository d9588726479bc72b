"""Context Encoder: an encoder-decoder trained with a weighted L2 and an adversarial loss.

Paper: Pathak, Kraehenbuehl, Donahue, Darrell, Efros, "Context Encoders: Feature Learning by
Inpainting", CVPR 2016, arXiv 1604.07379 (Sec. 3, eq. 1-3: ``L = lambda_rec L_rec + lambda_adv
L_adv``, ``lambda_rec = 0.999``, ``lambda_adv = 0.001``).

Official code followed: pathak22/context-encoder (Lua Torch7, master): ``train.lua`` (centre
region, README command ``overlapPred=4 wtl2=0.999 nBottleneck=4000 fineSize=128``),
``train_random.lua`` (random region, ``useOverlapPred=0``), ``test.lua``.  PyTorch port matched
for weights and checked output-for-output: BoyuanJiang/context_encoder_pytorch ``model.py``
(``_netG``, ``_netlocalD``) and ``train.py``, whose checkpoints ``netG_streetview.pth`` /
``netlocalD.pth`` hold ``{'epoch', 'state_dict'}`` with ``main.<i>.*`` keys.

Architecture (``variant="center"``, ``bottleneck="conv"``, the released code; all convolutions
4 x 4 without bias, BN = BatchNorm2d):

- encoder ``main.0 .. main.16``: conv 3->64 s2 + LReLU(0.2); conv 64->64, 64->128, 128->256,
  256->512 (s2, each + BN + LReLU): 128 -> 4; conv 512->4000 (s1, p0) + BN + LReLU: 4 -> 1;
- decoder ``main.17 .. main.30``: convT 4000->512 (s1, p0) + BN + ReLU: 1 -> 4; convT 512->256,
  256->128, 128->64 (s2, + BN + ReLU); convT 64->3 (s2) + Tanh: 32 -> 64.
  71,124,544 parameters.
- discriminator ``_netlocalD`` on the 64 x 64 centre: conv 3->64 s2 + LReLU; 64->128, 128->256,
  256->512 (s2, + BN + LReLU); conv 512->1 (s1, p0): 2,765,568 parameters.

``variant="random"`` (``train_random.lua`` at ``fineSize=128``): the same encoder, one more
convT 64->64 + BN + ReLU before the output layer, so the decoder predicts the whole 128 x 128
image (71,190,208 parameters); its discriminator sees the whole image and has one more conv
64->64 + BN + LReLU after the first (2,831,232 parameters).

``bottleneck="channelwise_fc"``: the paper's channel-wise fully-connected layer (Sec. 3.1)
instead of the 4000-d convolution: encoder to 512 x 4 x 4 (``main.0 .. main.13`` as above),
then :class:`zoo.layers.channelwise_fc.ChannelwiseFC` (each channel's 4 x 4 map fully connected
to a 4 x 4 map), the paper's stride-1 convolution mixing the channels (1 x 1, 512 -> 512, no
bias) + BN + ReLU, then the decoder from its 4 x 4 stage on (convT 512->256, ...).  The
released code has no such layer; this option reproduces the paper's description on the code's
encoder and decoder (parameter count in :func:`context_encoder`'s test).

Interface.  The model takes the whole 128 x 128 image and the project's mask (1 = hole).  Every
hole pixel is filled with the constants the official code writes, ``2*117/255-1``,
``2*104/255-1``, ``2*123/255-1`` in channels 0, 1, 2 (:data:`CE_FILL`; as written, not the
ImageNet RGB mean order).  ``variant="center"``: the mask must lie inside the central block
``[32, 96)^2`` (anything else is a ``ValueError``: use ``mask=center_box`` or
``variant="random"``); ``output`` is the input image with ``[32, 96)^2`` replaced by the
64 x 64 prediction (``prediction`` holds the raw 64 x 64 output).  ``variant="random"``: any mask;
``output`` is the raw full-image prediction.

Objective, as ``train.lua`` / ``train_random.lua`` compute the *gradient* (their printed
``errG_total`` is only a log line):

- generator: ``(1 - wtl2) * BCE(D(fake), 1) + mean(W * (fake - real)^2)`` over the prediction
  (the 64^2 centre, or the full image for ``random``), ``W = wtl2`` and ``W = wtl2 *
  overlap_l2_weight`` (10) on the 4-px band ``[32, 96)^2 minus [36, 92)^2`` (centre) or on the
  known pixels when ``random_overlap_weighting`` (``useOverlapPred``; README: off); the BCE
  weight is 1 instead of ``1 - wtl2`` unless ``0 < wtl2 < 1``, as in the Lua code;
- discriminator: ``BCE(D(real), 1) + BCE(D(fake), 0)`` (summed), real and fake in separate
  passes (separate BN batch statistics), as the Lua code;
- Adam, beta1 0.5: the Lua code sets the **generator** lr to 10 x ``opt.lr`` when
  ``0 < wtl2 < 1``, i.e. G 2e-3 and D 2e-4 with ``lr=0.0002`` (``lr_g``, ``lr_d``).

Deviations, all deliberate:

- **hole fill**: every masked pixel is filled with the constants.  The official centre model
  blanks only the inner ``[36, 92)^2`` (``overlapPred=4``) and sees the true pixels of the 4-px
  band, which it predicts too; ``test.lua`` pastes only the inner 56^2 back.  Giving the model
  the band's true pixels while scoring the whole ``[32, 96)^2`` would leak the ground truth, so
  with the benchmark's ``center_box`` mask (64^2 hole) the band is blanked as well.  The exact
  official protocol is the mask ``center_box`` with ``size=56`` (``[36, 92)^2``): then the input
  equals ``train.lua``'s and the composite equals ``test.lua``'s result.
- **overlap weights**: the 10x band of the centre variant is the geometric band of the
  prediction, as in the code, whatever the mask (with a 64^2 mask the band is then a hole).
- **generator step**: the Lua code back-propagates the BCE through the *updated* D with the
  scores of the pre-update D (``netD.output`` from the D closure); here D is re-run after its
  update.  The PyTorch port multiplies the L2 term by ``wtl2`` a second time (``wtl2 *
  mean(W d^2)``) and uses lr 2e-4 for both networks; both follow the Lua code here.
- scores are logits; the final Sigmoid of ``_netlocalD`` is applied inside the BCE
  (:class:`zoo.losses.adversarial.AdversarialLoss` ``"vanilla"``: same value, stable).
- Lua convolutions carry biases that the training closures zero before every step; the
  bias-free layers here (and in the port) are equivalent.
- with ``0 < wtl2 < 1`` assumed for the learning rates: ``lr_g`` / ``lr_d`` are explicit
  (the Lua code drops the 10x factor for other ``wtl2``).
- the official ``.t7`` files (Torch7 serialisation) are not converted; the port's ``.pth`` are.
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
from zoo.layers.channelwise_fc import ChannelwiseFC
from zoo.losses.adversarial import AdversarialLoss
from zoo.losses.reconstruction import masked_l2
from zoo.models._base import InpaintModel

__all__ = [
    "ContextEncoderGenerator",
    "ContextEncoderDiscriminator",
    "ContextEncoder",
    "convert_boyuanjiang_state_dict",
    "load_boyuanjiang",
]

Tensor = torch.Tensor
Variant = Literal["center", "random"]
Bottleneck = Literal["conv", "channelwise_fc"]

#: hole fill of the official code, channels 0, 1, 2 (``2*117/255-1`` ... as written there)
CE_FILL = (2 * 117.0 / 255.0 - 1.0, 2 * 104.0 / 255.0 - 1.0, 2 * 123.0 / 255.0 - 1.0)
#: image side the architecture accepts (``fineSize``)
FINE_SIZE = 128
#: the central block the centre variant predicts, ``[32, 96)`` on both axes at 128
CENTER = (FINE_SIZE // 4, FINE_SIZE // 4 + FINE_SIZE // 2)
#: the port's state-dict sizes: (generator, discriminator), BN with ``num_batches_tracked``
BOYUANJIANG_KEY_COUNTS = (56, 20)


# --------------------------------------------------------------------------- blocks
def _down(
    c_in: int, c_out: int, *, norm: bool, stride: int = 2, padding: int = 1
) -> list[nn.Module]:
    """4x4 bias-free conv (+ BN) + LeakyReLU(0.2): one encoder / discriminator stage."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, stride, padding, bias=False)]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    return layers + [nn.LeakyReLU(0.2)]


def _up(c_in: int, c_out: int, *, stride: int = 2, padding: int = 1) -> list[nn.Module]:
    """4x4 bias-free transposed conv + BN + ReLU: one decoder stage."""
    return [
        nn.ConvTranspose2d(c_in, c_out, 4, stride, padding, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    ]


def _dense_or_call(layer: nn.Module, x: Tensor) -> Tensor:
    """``layer(x)``, computed as a matrix product where the layer is one: the ``"conv"``
    bottleneck (a 4 x 4 conv of a 4 x 4 map, no padding: 1 x 1 output) and the transposed
    conv that follows it (a 1 x 1 map to 4 x 4).  Same values up to float rounding; on CPU
    oneDNN re-lays out their 4000 x 512 x 4 x 4 weights (33M values) on every call, which
    made these two layers about 90 % of the generator's time, a matrix-vector product reads
    them once (about 8x faster for the two)."""
    plain = (
        isinstance(layer, nn.Conv2d | nn.ConvTranspose2d)
        and layer.groups == 1
        and tuple(layer.padding) == (0, 0)
        and tuple(layer.dilation) == (1, 1)
        and layer.padding_mode == "zeros"
    )
    n = x.shape[0]
    if plain and isinstance(layer, nn.ConvTranspose2d):
        if tuple(x.shape[-2:]) == (1, 1) and tuple(layer.output_padding) == (0, 0):
            c_out, kh, kw = layer.weight.shape[1:]
            out = (x.flatten(1) @ layer.weight.flatten(1)).view(n, c_out, kh, kw)
            return out if layer.bias is None else out + layer.bias.view(1, -1, 1, 1)
    elif plain and tuple(x.shape[-2:]) == tuple(layer.kernel_size):
        out = F.linear(x.flatten(1), layer.weight.flatten(1), layer.bias)  # N x C_out
        return out.view(n, -1, 1, 1)
    return layer(x)


def _dcgan_init(module: nn.Module) -> None:
    """The official init: conv weights N(0, 0.02), BN weights N(1, 0.02), BN biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class ContextEncoderGenerator(nn.Module):
    """``_netG`` (``variant="center"``: 128 -> 64 centre) or the ``train_random.lua`` network
    (``"random"``: 128 -> 128), one ``nn.Sequential`` named ``main`` as in the port.

    Args:
        variant: ``"center"`` (``train.lua``) or ``"random"`` (``train_random.lua``).
        bottleneck: ``"conv"`` (released code, 4x4 conv to ``n_bottleneck`` x 1 x 1) or
            ``"channelwise_fc"`` (the paper's channel-wise FC + 1x1 conv, see module docstring).
        n_bottleneck: bottleneck width of ``"conv"`` (README/port 4000; ``train.lua`` default 100).
        nef, ngf: encoder / decoder base widths (64 and 64).
        nc: image channels (3).
    """

    def __init__(
        self,
        *,
        variant: Variant = "center",
        bottleneck: Bottleneck = "conv",
        n_bottleneck: int = 4000,
        nef: int = 64,
        ngf: int = 64,
        nc: int = 3,
    ) -> None:
        super().__init__()
        if variant not in ("center", "random"):
            raise ValueError(f"variant must be 'center' or 'random', got {variant!r}")
        if bottleneck not in ("conv", "channelwise_fc"):
            raise ValueError(f"bottleneck must be 'conv' or 'channelwise_fc', got {bottleneck!r}")
        self.variant, self.bottleneck = variant, bottleneck
        layers: list[nn.Module] = [
            *_down(nc, nef, norm=False),  # 128 -> 64
            *_down(nef, nef, norm=True),  # 64 -> 32
            *_down(nef, nef * 2, norm=True),  # 32 -> 16
            *_down(nef * 2, nef * 4, norm=True),  # 16 -> 8
            *_down(nef * 4, nef * 8, norm=True),  # 8 -> 4
        ]
        if bottleneck == "conv":
            layers += _down(nef * 8, n_bottleneck, norm=True, stride=1, padding=0)  # 4 -> 1
            layers += _up(n_bottleneck, ngf * 8, stride=1, padding=0)  # 1 -> 4
        else:
            layers += [
                ChannelwiseFC(nef * 8, 4, 4, bias=True),  # N x 512 x 4 x 4, per channel 16 -> 16
                nn.Conv2d(nef * 8, ngf * 8, 1, bias=False),  # mixes channels (paper: stride 1)
                nn.BatchNorm2d(ngf * 8),
                nn.ReLU(),
            ]
        layers += [
            *_up(ngf * 8, ngf * 4),  # 4 -> 8
            *_up(ngf * 4, ngf * 2),  # 8 -> 16
            *_up(ngf * 2, ngf),  # 16 -> 32
        ]
        if variant == "random":
            layers += _up(ngf, ngf)  # 32 -> 64 (fineSize == 128 only)
        layers += [nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh()]  # -> 64 or 128
        self.main = nn.Sequential(*layers)
        self.apply(_dcgan_init)

    def forward(self, x: Tensor) -> Tensor:
        """N x 3 x 128 x 128 (holes filled) -> N x 3 x 64 x 64 (centre) or 128 x 128 (random)."""
        if x.dim() != 4 or tuple(x.shape[1:]) != (3, FINE_SIZE, FINE_SIZE):
            raise ValueError(f"expected N x 3 x 128 x 128, got {tuple(x.shape)}")
        for layer in self.main:
            x = _dense_or_call(layer, x)
        return x


class ContextEncoderDiscriminator(nn.Module):
    """``_netlocalD`` (64 x 64 centre) or the ``train_random.lua`` D (128 x 128), as logits.

    ``main`` keeps the port's indices (``main.11`` is the last conv; the Sigmoid that followed
    at ``main.12`` has no parameters and is applied by the BCE loss).  ``forward`` returns
    ``(scores, features)``: N x 1 logits and the activations after each stage.
    """

    def __init__(self, *, image_size: int = 64, ndf: int = 64, nc: int = 3) -> None:
        super().__init__()
        if image_size not in (64, 128):
            raise ValueError(f"image_size must be 64 (centre) or 128 (random), got {image_size}")
        self.image_size = image_size
        layers = _down(nc, ndf, norm=False)  # 64 -> 32 (or 128 -> 64)
        if image_size == 128:
            layers += _down(ndf, ndf, norm=True)  # 64 -> 32
        layers += [
            *_down(ndf, ndf * 2, norm=True),  # 32 -> 16
            *_down(ndf * 2, ndf * 4, norm=True),  # 16 -> 8
            *_down(ndf * 4, ndf * 8, norm=True),  # 8 -> 4
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),  # 4 -> 1
        ]
        self.main = nn.Sequential(*layers)
        self.apply(_dcgan_init)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        if x.dim() != 4 or tuple(x.shape[1:]) != (3, self.image_size, self.image_size):
            raise ValueError(
                f"expected N x 3 x {self.image_size} x {self.image_size}, got {tuple(x.shape)}"
            )
        features = []
        for module in self.main:
            x = module(x)
            if isinstance(module, nn.LeakyReLU):
                features.append(x)
        return x.view(-1, 1), features  # N x 1 x 1 x 1 -> N x 1


# --------------------------------------------------------------------------- model
def fill_holes(image: Tensor, mask: Tensor, fill: tuple[float, float, float] = CE_FILL) -> Tensor:
    """``image`` with every hole pixel (``mask == 1``) set to the per-channel ``fill``."""
    value = torch.tensor(fill, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    return image * (1 - mask) + mask * value


def center_box(size: int = FINE_SIZE, *, overlap: int = 0, like: Tensor | None = None) -> Tensor:
    """1 x 1 x size x size indicator of ``[32 + overlap, 96 - overlap)^2`` (at 128)."""
    lo, hi = size // 4 + overlap, size // 4 + size // 2 - overlap
    kwargs = {} if like is None else {"dtype": like.dtype, "device": like.device}
    box = torch.zeros(1, 1, size, size, **kwargs)
    box[..., lo:hi, lo:hi] = 1
    return box


class ContextEncoder(InpaintModel):
    """Context Encoder with the official objective and optimiser (see the module docstring).

    Args (official values as defaults):
        variant: ``"center"`` (``train.lua``, the released models) or ``"random"``.
        bottleneck: ``"conv"`` (released code) or ``"channelwise_fc"`` (paper).
        n_bottleneck: conv bottleneck width (README command and port: 4000).
        wtl2: L2 weight (README 0.999; adversarial weight ``1 - wtl2``).
        overlap_pred: width of the centre band with the extra L2 weight (README 4).
        overlap_l2_weight: L2 weight factor on the band (hard-coded 10).
        random_overlap_weighting: ``random`` variant, weight the known pixels' L2 by
            ``overlap_l2_weight`` (``useOverlapPred``; README 0).
        lr_g, lr_d: Adam lrs; Lua: G = 10 x ``opt.lr`` = 2e-3 when 0 < wtl2 < 1, D = 2e-4.
        beta1, beta2: Adam betas (0.5, Lua optim default 0.999).
        nef, ngf, ndf: network widths (64).
    """

    input_size = FINE_SIZE

    def __init__(
        self,
        *,
        variant: Variant = "center",
        bottleneck: Bottleneck = "conv",
        n_bottleneck: int = 4000,
        wtl2: float = 0.999,
        overlap_pred: int = 4,
        overlap_l2_weight: float = 10.0,
        random_overlap_weighting: bool = False,
        lr_g: float = 2e-3,
        lr_d: float = 2e-4,
        beta1: float = 0.5,
        beta2: float = 0.999,
        nef: int = 64,
        ngf: int = 64,
        ndf: int = 64,
    ) -> None:
        super().__init__()
        if wtl2 < 0:
            raise ValueError(f"wtl2 must be >= 0, got {wtl2}")
        if not 0 <= overlap_pred < FINE_SIZE // 4:
            raise ValueError(f"overlap_pred must be in [0, 32), got {overlap_pred}")
        self.generator = ContextEncoderGenerator(
            variant=variant, bottleneck=bottleneck, n_bottleneck=n_bottleneck, nef=nef, ngf=ngf
        )
        d_size = FINE_SIZE // 2 if variant == "center" else FINE_SIZE
        self.discriminators = nn.ModuleDict(
            {"local": ContextEncoderDiscriminator(image_size=d_size, ndf=ndf)}
        )
        self.variant = variant
        self.adversarial = AdversarialLoss("vanilla")  # BCE; D terms summed as errD_real + fake
        self.wtl2 = float(wtl2)
        self.overlap_pred = int(overlap_pred)
        self.overlap_l2_weight = float(overlap_l2_weight)
        self.random_overlap_weighting = bool(random_overlap_weighting)
        self.lrs = (float(lr_g), float(lr_d))
        self.betas = (float(beta1), float(beta2))

    @property
    def adversarial_weight(self) -> float:
        """``1 - wtl2`` when ``0 < wtl2 < 1``, else 1 (the Lua code scales D's gradient only
        in that case; ``wtl2 = 0`` is the pure GAN, ``wtl2 >= 1`` adds the L2 to it)."""
        return 1.0 - self.wtl2 if 0.0 < self.wtl2 < 1.0 else 1.0

    # ---------------------------------------------------------------- inference
    def _check_mask(self, mask: Tensor) -> None:
        if self.variant != "center":
            return
        outside = mask * (1 - center_box(mask.shape[-1], like=mask))
        if bool(outside.any()):
            lo, hi = CENTER
            raise ValueError(
                f"the centre Context Encoder only predicts the central block [{lo}, {hi})^2 of "
                f"the 128 x 128 image, but the mask has hole pixels outside it: use "
                f"mask=center_box (or a mask inside that block), or variant='random'"
            )

    def inpaint(self, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
        self._check_mask(mask)
        x = fill_holes(image, mask)  # N x 3 x 128 x 128, holes = CE constants
        pred = self.generator(x)
        if self.variant == "random":
            return {"output": pred, "prediction": pred}
        lo, hi = CENTER
        pad = (lo, FINE_SIZE - hi, lo, FINE_SIZE - hi)
        placed = torch.nn.functional.pad(pred, pad)  # N x 3 x 64 x 64 -> N x 3 x 128 x 128
        box = center_box(FINE_SIZE, like=x)
        return {"output": box * placed + (1 - box) * x, "prediction": pred}

    # ---------------------------------------------------------------- training
    def _target(self, image: Tensor) -> Tensor:
        """What the prediction is compared with: the 64^2 centre, or the whole image."""
        if self.variant == "random":
            return image
        lo, hi = CENTER
        return image[..., lo:hi, lo:hi]

    def _l2(self, pred: Tensor, image: Tensor, mask: Tensor) -> Tensor:
        """``mean(W (pred - real)^2)`` with the official weights W (module docstring)."""
        target = self._target(image)
        if self.variant == "center":
            # "hole" = inner region (weight wtl2), "valid" = overlap band (wtl2 * 10)
            inner = center_box(FINE_SIZE, overlap=self.overlap_pred, like=pred)
            lo, hi = CENTER
            region = inner[..., lo:hi, lo:hi].expand(pred.shape[0], 1, hi - lo, hi - lo)
            band_weight = self.overlap_l2_weight if self.overlap_pred > 0 else 1.0
        else:
            region = mask  # hole: wtl2; known: wtl2 * 10 with useOverlapPred
            band_weight = self.overlap_l2_weight if self.random_overlap_weighting else 1.0
        return masked_l2(
            pred, target, region, hole_weight=self.wtl2, valid_weight=self.wtl2 * band_weight
        )

    def generator_loss(
        self, image: Tensor, mask: Tensor, out: dict[str, Tensor], step: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        pred = out["prediction"]
        scores, _ = self.discriminators["local"](pred)
        adv = self.adversarial.generator_loss(scores)  # BCE(D(fake), 1), batch mean
        l2 = self._l2(pred, image, mask)
        total = self.adversarial_weight * adv + l2
        logs = {"l2_weighted": l2, "adv": adv, "total": total}
        return total, {k: v.detach() for k, v in logs.items()}

    def discriminator_loss(
        self, image: Tensor, mask: Tensor, out: dict[str, Tensor], step: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        disc = self.discriminators["local"]
        real_scores, _ = disc(self._target(image))  # separate passes: separate BN statistics
        fake_scores, _ = disc(out["prediction"].detach())
        real = self.adversarial.real_loss(real_scores)
        fake = self.adversarial.fake_loss(fake_scores)
        total = real + fake
        logs = {"d_real": real, "d_fake": fake, "d_total": total}
        return total, {k: v.detach() for k, v in logs.items()}

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        lr_g, lr_d = self.lrs
        return {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=lr_g, betas=self.betas),
            "discriminator": torch.optim.Adam(
                self.discriminators.parameters(), lr=lr_d, betas=self.betas
            ),
        }

    def load_boyuanjiang(
        self,
        generator: str | os.PathLike | Mapping[str, Any],
        discriminator: str | os.PathLike | Mapping[str, Any] | None = None,
    ) -> None:
        """Load the port's ``netG_streetview.pth`` (and ``netlocalD.pth``) into this model."""
        if self.variant != "center" or self.generator.bottleneck != "conv":
            raise ValueError("the port's checkpoints fit variant='center', bottleneck='conv'")
        state = load_boyuanjiang(generator, discriminator)
        self.generator.load_state_dict(state["generator"], strict=True)
        if "discriminators" in state:
            self.discriminators.load_state_dict(state["discriminators"], strict=True)


# --------------------------------------------------------------------------- converter
def _unwrap(checkpoint: Mapping[str, Any], what: str) -> dict[str, Tensor]:
    """``{'epoch', 'state_dict'}`` or a bare state dict -> the bare state dict."""
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f"{what}: expected a mapping, got {type(checkpoint).__name__}")
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, Mapping):
        raise TypeError(f"{what}: 'state_dict' is a {type(state).__name__}, not a mapping")
    return dict(state)


def _convert_sequential(
    source: Mapping[str, Any], reference: Mapping[str, Tensor], what: str, count: int
) -> dict[str, Tensor]:
    """Strict key / shape check of a ``main.<i>.*`` state dict against ``reference``.

    Checkpoints saved before PyTorch 0.4.1 have no ``num_batches_tracked`` entries; those are
    added as 0 (they only matter for BN with ``momentum=None``).
    """
    state = {k.removeprefix("module."): v for k, v in source.items()}
    for key, ref in reference.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(ref, device="cpu")
    missing = sorted(set(reference) - set(state))
    extra = sorted(set(state) - set(reference))
    if missing or extra:
        raise ValueError(
            f"{what}: key mismatch; missing {len(missing)} {missing[:6]}, "
            f"unexpected {len(extra)} {extra[:6]}"
        )
    if len(state) != count:
        raise ValueError(f"{what}: expected {count} entries, got {len(state)}")
    out = {}
    for key, ref in reference.items():
        value = state[key]
        if not isinstance(value, Tensor):
            raise TypeError(f"{what}: {key!r} is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != tuple(ref.shape):
            raise ValueError(
                f"{what}: {key!r} has shape {tuple(value.shape)}, expected {tuple(ref.shape)}"
            )
        out[key] = value.detach().clone()
    return out


def convert_boyuanjiang_state_dict(
    generator: Mapping[str, Any], discriminator: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Tensor]]:
    """Map BoyuanJiang/context_encoder_pytorch checkpoints onto :class:`ContextEncoder`.

    Args:
        generator: ``netG_streetview.pth`` content, ``{'epoch', 'state_dict'}`` or bare,
            ``_netG`` keys ``main.<i>.*`` (56 entries incl. BN running statistics).
        discriminator: ``netlocalD.pth`` content (``_netlocalD``, 20 entries), optional.

    Returns ``{"generator": ..., "discriminators": ...}`` loadable with ``strict=True`` into
    ``model.generator`` / ``model.discriminators`` of ``variant="center"``, ``bottleneck="conv"``
    (the bottleneck width is read from ``main.14.weight``).  The layouts are identical by
    construction (``main`` Sequential, same indices); every key and shape is checked.
    """
    g_src = _unwrap(generator, "BoyuanJiang netG")
    w = g_src.get("main.14.weight", g_src.get("module.main.14.weight"))
    if not isinstance(w, Tensor) or w.dim() != 4:
        raise ValueError("BoyuanJiang netG: 'main.14.weight' (the bottleneck conv) is missing")
    with torch.device("meta"):
        g_ref = ContextEncoderGenerator(n_bottleneck=int(w.shape[0])).state_dict()
        d_ref = ContextEncoderDiscriminator(image_size=64).state_dict()
    n_g, n_d = BOYUANJIANG_KEY_COUNTS
    out = {"generator": _convert_sequential(g_src, g_ref, "BoyuanJiang netG", n_g)}
    if discriminator is not None:
        d_src = _unwrap(discriminator, "BoyuanJiang netlocalD")
        d_state = _convert_sequential(d_src, d_ref, "BoyuanJiang netlocalD", n_d)
        out["discriminators"] = {f"local.{k}": v for k, v in d_state.items()}
    return out


def load_boyuanjiang(
    generator: str | os.PathLike | Mapping[str, Any],
    discriminator: str | os.PathLike | Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Tensor]]:
    """Read (``torch.load(weights_only=True)``) and convert the port's checkpoint files."""
    g = generator if isinstance(generator, Mapping) else load_state_dict(generator)
    d = discriminator
    if d is not None and not isinstance(d, Mapping):
        d = load_state_dict(d)
    return convert_boyuanjiang_state_dict(g, d)


# --------------------------------------------------------------------------- entrypoint
@register_model
def context_encoder(
    *,
    variant: Variant = "center",  # train.lua (released models); "random": train_random.lua
    bottleneck: Bottleneck = "conv",  # released code; "channelwise_fc": the paper's layer
    n_bottleneck: int = 4000,  # README command / PyTorch port (train.lua default 100)
    wtl2: float = 0.999,  # README command (paper lambda_rec); port default 0.998
    overlap_pred: int = 4,  # README command: 4-px band, blanked by the official code
    overlap_l2_weight: float = 10.0,  # overlapL2Weight, hard-coded
    random_overlap_weighting: bool = False,  # train_random.lua useOverlapPred (README 0)
    lr_g: float = 2e-3,  # Lua: 10 x opt.lr for G when 0 < wtl2 < 1 (port: 2e-4)
    lr_d: float = 2e-4,  # Lua: opt.lr = 0.0002
    beta1: float = 0.5,  # opt.beta1
    beta2: float = 0.999,  # optim.adam default
) -> ContextEncoder:
    """Context Encoder (Pathak et al., CVPR 2016): 128 -> 64 centre, L2 + adversarial."""
    return ContextEncoder(
        variant=variant,
        bottleneck=bottleneck,
        n_bottleneck=n_bottleneck,
        wtl2=wtl2,
        overlap_pred=overlap_pred,
        overlap_l2_weight=overlap_l2_weight,
        random_overlap_weighting=random_overlap_weighting,
        lr_g=lr_g,
        lr_d=lr_d,
        beta1=beta1,
        beta2=beta2,
    )
