"""PartialConv: a U-Net of partial convolutions for irregular holes.

Paper: Liu, Reda, Shih, Wang, Tao, Catanzaro, "Image Inpainting for Irregular Holes Using
Partial Convolutions", ECCV 2018, arXiv 1804.07723 (network: section 3.3 and appendix table;
losses: eq. 1-7; training: section 4.1).

Official code: NVIDIA/partialconv (``models/partialconv2d.py``: the layer only; the inpainting
network, its training code and weights were never released).  The network, objective and
weight layout follow the PyTorch port naoto0804/pytorch-inpainting-with-partial-conv (commit
8d64e7e: ``net.py`` ``PConvUNet``/``PCBActiv``/``PartialConv``, ``loss.py``
``InpaintingLoss``, ``opt.py`` ``LAMBDA_DICT``/``MEAN``/``STD``, ``train.py``,
``util/io.py``), whose published checkpoint (release ``v0.0.0``) loads through
:func:`convert_naoto_state_dict`.  The layer is the toolkit's
:class:`zoo.layers.partial_conv.PartialConv2d` (NVIDIA formulation).

Network (naoto ``PConvUNet(layer_size=7)`` at 256^2; ``layer_size=8`` is the paper's 512^2
network), :func:`layer_table`:

- encoder ``enc_1`` 7x7/2 3 -> 64 (no BN), ``enc_2``, ``enc_3`` 5x5/2 -> 128, 256,
  ``enc_4 .. enc_L`` 3x3/2 -> 512; BN + ReLU; every conv bias-free;
- decoder ``dec_L .. dec_1``: nearest x2 upsampling of the features **and** of the masks,
  concatenation with the encoder features **and** masks of the same scale, 3x3/1 partial conv,
  BN + LeakyReLU 0.2; ``dec_1`` sees the input image and mask, has a bias, no BN and no
  activation (linear output);
- 25,779,796 trainable parameters at ``layer_size=7``, 32,859,732 at 8 (naoto's counts
  without its frozen ``mask_conv`` copies).

Objective (naoto ``LAMBDA_DICT`` = paper eq. 7): ``1 * L_valid + 6 * L_hole + 0.05 * L_perc
+ 120 * (L_style,out + L_style,comp) + 0.1 * L_tv``; ``L_valid`` / ``L_hole`` are means over
all pixels of the masked L1 (:func:`zoo.losses.reconstruction.masked_l1`); perceptual and
style terms on VGG-16 pool1-3 (:func:`zoo.losses.perceptual.pconv_losses`).  Adam (torch
betas) at lr 2e-4, then ``stage="finetune"``: lr 5e-5 with the encoder BN frozen.

Conventions and deviations, all deliberate:

- **Weights are NVIDIA-scaled.**  naoto's layer divides by the raw valid count, NVIDIA's
  multiplies by ``C_in*k*k / count``, so ``W_ours = W_naoto / (C_in*k*k)``
  (:func:`zoo.layers.partial_conv.naoto_to_nvidia_weight`, applied by the converter).  The
  initialisation mirrors naoto's in function space: Kaiming-normal (fan in) divided by
  ``C_in*k*k``; biases 0; BN weight 1, bias 0.  naoto's frozen all-ones ``mask_conv`` weights
  are not parameters here (the layer is stateless); the converter checks and drops them.
- **Multi-channel masks.**  naoto feeds a 3-channel mask (the mask file loaded as RGB, equal
  channels) and counts valid entries over ``C_in*k*k``; in the decoder the concatenated mask
  has different values per channel group (upsampled decoder mask, encoder mask), so only a
  multi-channel count reproduces naoto's renormalisation.  Every layer is therefore
  ``PartialConv2d(multi_channel=True)`` and the contract mask (N x 1, 1 = hole) is repeated
  over the 3 image channels; the layer converts 1 = hole to naoto's 1 = valid itself.
- **Value ranges.**  naoto feeds ImageNet-normalised images (``(x - MEAN) / STD`` on [0, 1])
  and its linear output lives in that space.  :meth:`PartialConv.inpaint` converts the
  contract image ([-1, 1]) to that space, and the output back to [-1, 1] (unclamped, as the
  loss sees it; the benchmark clamps).  The pixel terms (valid, hole, TV) are computed in the
  normalised space, as naoto, so its loss weights keep their meaning; the VGG terms see the
  same normalised images as naoto's VGG.
- **TV term** (``tv_mode``): the paper's eq. 6 (the 1-pixel dilated hole region, ``"hole_
  boundary"``, default: the paper is the only source from the authors) or naoto's (the whole
  composite, ``"whole"``); :func:`zoo.losses.reconstruction.total_variation`.
- **Fine-tuning.**  naoto's ``freeze_enc_bn`` only puts the encoder BN layers in eval mode
  (running statistics frozen) while their affine weights keep training (its optimiser takes
  every ``requires_grad`` parameter).  The paper "freezes the BN parameters in the encoder",
  and mmagic's stage-2 config (``norm_eval=True``, ``requires_grad=False``) freezes both;
  ``freeze_enc_bn_affine=True`` (default) does both, ``False`` is naoto's behaviour.
- Sizes: H and W are padded to a multiple of ``2**layer_size`` by the base class (replicate,
  mask 0 = known in the padding); naoto resizes every image to 256^2.
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
from zoo.layers.partial_conv import PartialConv2d, naoto_to_nvidia_weight
from zoo.layers.vgg import IMAGENET_MEAN, IMAGENET_STD
from zoo.losses.perceptual import PConvVGGLoss, pconv_losses
from zoo.losses.reconstruction import masked_l1, total_variation
from zoo.models._base import InpaintModel

__all__ = [
    "LayerSpec",
    "layer_table",
    "PConvBlock",
    "PConvUNet",
    "PartialConv",
    "to_imagenet",
    "from_imagenet",
    "convert_naoto_state_dict",
    "load_naoto",
]

Tensor = torch.Tensor
Stage = Literal["train", "finetune"]
TVMode = Literal["hole_boundary", "whole"]
_BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

#: (name, C_in, C_out, kernel, stride, batch norm, activation, conv bias)
LayerSpec = tuple[str, int, int, int, int, bool, str | None, bool]


def layer_table(layer_size: int = 7, in_channels: int = 3) -> list[LayerSpec]:
    """naoto ``PConvUNet(layer_size, input_channels)`` as a table, encoder then decoder."""
    if not isinstance(layer_size, int) or layer_size < 4:
        raise ValueError(f"layer_size must be an int >= 4 (naoto: 7, paper: 8), got {layer_size}")
    widths = [64, 128, 256] + [512] * (layer_size - 3)  # output width of enc_1 .. enc_L
    kernels = [7, 5, 5] + [3] * (layer_size - 3)
    table: list[LayerSpec] = []
    c_in = in_channels
    for i, (c_out, k) in enumerate(zip(widths, kernels), start=1):
        table.append((f"enc_{i}", c_in, c_out, k, 2, i > 1, "relu", False))
        c_in = c_out
    for i in range(layer_size, 1, -1):  # dec_L .. dec_2: [upsampled, skip] -> width of enc_{i-1}
        c_dec = widths[i - 1]  # dec_{i+1} (or enc_L) output, upsampled
        table.append((f"dec_{i}", c_dec + widths[i - 2], widths[i - 2], 3, 1, True, "leaky", False))
    table.append(("dec_1", widths[0] + in_channels, in_channels, 3, 1, False, None, True))
    return table


# --------------------------------------------------------------------------- network
class PConvBlock(nn.Module):
    """naoto ``PCBActiv``: partial conv (multi-channel mask) -> BN -> activation.

    ``forward(x, mask)`` with ``mask`` N x C_in x H x W, 1 = hole; returns ``(h, new_mask)``,
    ``new_mask`` N x C_out (identical channels).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        *,
        bn: bool = True,
        activation: str | None = "relu",
        bias: bool = False,
    ) -> None:
        super().__init__()
        if activation not in ("relu", "leaky", None):
            raise ValueError(f"activation must be 'relu', 'leaky' or None, got {activation!r}")
        self.conv = PartialConv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            bias=bias,
            multi_channel=True,
        )
        self.bn = nn.BatchNorm2d(out_channels) if bn else None
        self.activation = activation

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        h, new_mask = self.conv(x, mask)
        if self.bn is not None:
            h = self.bn(h)
        if self.activation == "relu":
            h = F.relu(h)
        elif self.activation == "leaky":
            h = F.leaky_relu(h, 0.2)
        return h, new_mask


class PConvUNet(nn.Module):
    """naoto's ``PConvUNet`` on NVIDIA-scaled partial convolutions (see the module docstring).

    Args:
        layer_size: number of encoder (and decoder) levels; 7 at 256^2 (naoto), 8 at 512^2
            (paper).  H and W must be multiples of ``2**layer_size``.
        in_channels: image channels (3).

    ``forward(x, mask)``: ``x`` N x C x H x W (ImageNet-normalised, any hole content),
    ``mask`` N x C x H x W, 1 = hole; returns ``(output, output_mask)`` like naoto (linear
    output in the input's space, mask 1 = hole).
    """

    def __init__(self, *, layer_size: int = 7, in_channels: int = 3) -> None:
        super().__init__()
        self.layer_size = layer_size
        self.in_channels = in_channels
        self.freeze_enc_bn = False  # naoto: True while fine-tuning (see train())
        for name, c_in, c_out, k, s, bn, act, bias in layer_table(layer_size, in_channels):
            block = PConvBlock(c_in, c_out, k, s, bn=bn, activation=act, bias=bias)
            self.add_module(name, block)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """naoto's init in function space: Kaiming-normal (fan in) / (C_in*k*k), zero bias."""
        for module in self.modules():
            if isinstance(module, PartialConv2d):
                nn.init.kaiming_normal_(module.weight, a=0, mode="fan_in")
                with torch.no_grad():
                    module.weight.copy_(naoto_to_nvidia_weight(module.weight))
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def encoder_bn(self) -> list[nn.BatchNorm2d]:
        return [
            getattr(self, f"enc_{i}").bn
            for i in range(1, self.layer_size + 1)
            if getattr(self, f"enc_{i}").bn is not None
        ]

    def train(self, mode: bool = True) -> PConvUNet:
        """As naoto: with ``freeze_enc_bn`` the encoder BN layers stay in eval mode."""
        super().train(mode)
        if self.freeze_enc_bn:
            for bn in self.encoder_bn():
                bn.eval()
        return self

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        if x.dim() != 4 or x.shape[1] != self.in_channels or mask.shape != x.shape:
            raise ValueError(
                f"expected x and mask of shape N x {self.in_channels} x H x W, got "
                f"{tuple(x.shape)} and {tuple(mask.shape)}"
            )
        step = 2**self.layer_size
        if x.shape[-2] % step or x.shape[-1] % step:
            raise ValueError(f"H and W must be multiples of {step}, got {tuple(x.shape[-2:])}")
        feats, masks = [x], [mask]  # h_0 .. h_L: N x C_i x H/2^i x W/2^i
        for i in range(1, self.layer_size + 1):
            h, m = getattr(self, f"enc_{i}")(feats[-1], masks[-1])
            feats.append(h)
            masks.append(m)
        h, m = feats[-1], masks[-1]
        for i in range(self.layer_size, 0, -1):
            h = F.interpolate(h, scale_factor=2, mode="nearest")  # N x C x 2h x 2w
            m = F.interpolate(m, scale_factor=2, mode="nearest")
            h = torch.cat([h, feats[i - 1]], dim=1)  # [decoder, encoder skip]
            m = torch.cat([m, masks[i - 1]], dim=1)
            h, m = getattr(self, f"dec_{i}")(h, m)
        return h, m


# --------------------------------------------------------------------------- value ranges
def _stats(like: Tensor) -> tuple[Tensor, Tensor]:
    mean = torch.tensor(IMAGENET_MEAN, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)
    return mean, std


def to_imagenet(image: Tensor) -> Tensor:
    """[-1, 1] -> naoto's input space ``((x + 1) / 2 - MEAN) / STD``."""
    mean, std = _stats(image)
    return ((image + 1) / 2 - mean) / std


def from_imagenet(x: Tensor) -> Tensor:
    """Inverse of :func:`to_imagenet` (no clamping)."""
    mean, std = _stats(x)
    return (x * std + mean) * 2 - 1


# --------------------------------------------------------------------------- model
class PartialConv(InpaintModel):
    """PConvUNet with naoto's objective and the paper's two training stages.

    Args (naoto / paper values as defaults):
        layer_size: U-Net levels (7 at 256^2; 8 = the paper's 512^2 network).
        stage: ``"train"`` (lr ``lr``) or ``"finetune"`` (lr ``lr_finetune``, encoder BN
            frozen).
        valid_weight, hole_weight, perceptual_weight, style_weight, tv_weight: ``LAMBDA_DICT``
            (1, 6, 0.05, 120, 0.1).
        tv_mode: ``"hole_boundary"`` (paper eq. 6) or ``"whole"`` (naoto).
        lr, lr_finetune: Adam learning rates (2e-4, 5e-5: naoto ``--lr``, ``--lr_finetune``).
        beta1, beta2: Adam betas (torch defaults 0.9, 0.999, as naoto).
        freeze_enc_bn_affine: in the fine-tuning stage also stop training the encoder BN
            affine parameters (paper, mmagic); ``False`` = naoto (running statistics only).
        vgg: weights of the VGG-16 loss network, ``"imagenet"`` or ``"random"`` (built on the
            first loss evaluation, never stored in checkpoints).
    """

    def __init__(
        self,
        *,
        layer_size: int = 7,
        stage: Stage = "train",
        valid_weight: float = 1.0,
        hole_weight: float = 6.0,
        perceptual_weight: float = 0.05,
        style_weight: float = 120.0,
        tv_weight: float = 0.1,
        tv_mode: TVMode = "hole_boundary",
        lr: float = 2e-4,
        lr_finetune: float = 5e-5,
        beta1: float = 0.9,
        beta2: float = 0.999,
        freeze_enc_bn_affine: bool = True,
        vgg: Literal["imagenet", "random"] = "imagenet",
    ) -> None:
        super().__init__()
        if stage not in ("train", "finetune"):
            raise ValueError(f"stage must be 'train' or 'finetune', got {stage!r}")
        if tv_mode not in ("hole_boundary", "whole"):
            raise ValueError(f"tv_mode must be 'hole_boundary' or 'whole', got {tv_mode!r}")
        if vgg not in ("imagenet", "random"):
            raise ValueError(f"vgg must be 'imagenet' or 'random', got {vgg!r}")
        self.generator = PConvUNet(layer_size=layer_size)
        self.pad_multiple = 2**layer_size
        self.stage = stage
        self.weights = {
            "valid": float(valid_weight),
            "hole": float(hole_weight),
            "perceptual": float(perceptual_weight),
            "style": float(style_weight),
            "tv": float(tv_weight),
        }
        self.tv_mode = tv_mode
        self.lr = float(lr if stage == "train" else lr_finetune)
        self.betas = (float(beta1), float(beta2))
        self.vgg = vgg
        self._vgg_loss: PConvVGGLoss | None = None
        if stage == "finetune":
            self.generator.freeze_enc_bn = True
            if freeze_enc_bn_affine:
                for bn in self.generator.encoder_bn():
                    bn.requires_grad_(False)

    # ------------------------------------------------------------------ inference
    def inpaint(self, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
        holes = mask.expand(-1, image.shape[1], -1, -1)  # naoto's 3-channel mask (1 = hole)
        x = to_imagenet(image) * (1 - holes)  # naoto: gt * mask in the normalised space
        raw, _ = self.generator(x, holes)
        return {"output": from_imagenet(raw)}

    # ------------------------------------------------------------------ training
    def _vgg(self, like: Tensor) -> PConvVGGLoss:
        if self._vgg_loss is None:  # lazily: scoring a converted checkpoint needs no VGG file
            # kept out of the module tree (not in state_dict(), parameters() or checkpoints)
            object.__setattr__(self, "_vgg_loss", pconv_losses(weights=self.vgg))
        self._vgg_loss.to(device=like.device, dtype=like.dtype)
        return self._vgg_loss

    def generator_loss(
        self, image: Tensor, mask: Tensor, out: dict[str, Tensor], step: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        output, composite = out["output"], out["composite"]
        out_n, gt_n, comp_n = to_imagenet(output), to_imagenet(image), to_imagenet(composite)
        terms = {
            "valid": masked_l1(out_n, gt_n, mask, hole_weight=0.0, valid_weight=1.0),
            "hole": masked_l1(out_n, gt_n, mask, hole_weight=1.0, valid_weight=0.0),
            "tv": total_variation(comp_n, mask, mode=self.tv_mode),
        }
        vgg = self._vgg(output)(output, composite, image)  # [-1, 1] in, ImageNet-normalised VGG
        terms["perceptual"], terms["style"] = vgg["perceptual"], vgg["style"]
        total = sum(self.weights[k] * terms[k] for k in self.weights)
        logs = {**terms, "total": total}
        return total, {k: v.detach() for k, v in logs.items()}

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        params = [p for p in self.generator.parameters() if p.requires_grad]
        return {"generator": torch.optim.Adam(params, lr=self.lr, betas=self.betas)}

    def load_naoto(self, source: str | os.PathLike | Mapping[str, Any]) -> None:
        """Load a naoto checkpoint (``{'n_iter', 'model', 'optimizer'}`` or a bare state dict)."""
        self.generator.load_state_dict(load_naoto(source), strict=True)


# --------------------------------------------------------------------------- converter
def _naoto_reference_shapes(layer_size: int, in_channels: int) -> dict[str, tuple[int, ...]]:
    """Every key of naoto's ``PConvUNet.state_dict()`` and its shape, from :func:`layer_table`."""
    shapes: dict[str, tuple[int, ...]] = {}
    for name, c_in, c_out, k, _, bn, _, bias in layer_table(layer_size, in_channels):
        shapes[f"{name}.conv.input_conv.weight"] = (c_out, c_in, k, k)
        if bias:
            shapes[f"{name}.conv.input_conv.bias"] = (c_out,)
        shapes[f"{name}.conv.mask_conv.weight"] = (c_out, c_in, k, k)
        if bn:
            for key in _BN_KEYS:
                shapes[f"{name}.bn.{key}"] = () if key == "num_batches_tracked" else (c_out,)
    return shapes


def convert_naoto_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, Tensor]:
    """naoto ``PConvUNet`` weights -> a state dict for :class:`PConvUNet` (strict load).

    Accepts the training checkpoint ``{'n_iter', 'model', 'optimizer'}`` (``util/io.py``) or
    the bare ``model`` state dict; ``layer_size`` is read from the keys (7 -> 89 keys, 8 -> 103).
    Every key and shape is checked; ``mask_conv`` weights must be all ones (then dropped);
    ``input_conv.weight`` is divided by ``C_in*k*k`` (:func:`naoto_to_nvidia_weight`); BN
    tensors are copied.  ``num_batches_tracked`` may be absent (checkpoints of PyTorch < 0.4.1)
    and is then set to 0.
    """
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f"expected a checkpoint mapping, got {type(checkpoint).__name__}")
    src = checkpoint["model"] if "model" in checkpoint else checkpoint
    if not isinstance(src, Mapping):
        raise TypeError("checkpoint['model'] must be a state dict mapping")
    levels = {int(k.split(".")[0][4:]) for k in src if k.startswith("enc_") and "." in k}
    layer_size = max(levels) if levels else 0
    if layer_size < 4:
        raise ValueError(f"not a naoto PConvUNet state dict: encoder levels {sorted(levels)}")
    first = src.get("enc_1.conv.input_conv.weight")
    if not isinstance(first, Tensor) or first.dim() != 4:
        raise ValueError("naoto state dict: 'enc_1.conv.input_conv.weight' must be a 4-D tensor")
    in_channels = int(first.shape[1])
    expected = _naoto_reference_shapes(layer_size, in_channels)
    src = dict(src)
    for key, shape in expected.items():  # old checkpoints lack num_batches_tracked
        if key.endswith("num_batches_tracked") and key not in src:
            src[key] = torch.zeros(shape, dtype=torch.long)
    missing = sorted(set(expected) - set(src))
    extra = sorted(set(src) - set(expected))
    if missing or extra:
        raise ValueError(
            f"naoto state dict (layer_size={layer_size}): missing {len(missing)} {missing[:6]}, "
            f"unexpected {len(extra)} {extra[:6]}"
        )
    if len(src) != len(expected) or len(expected) != 14 * layer_size - 9:
        raise ValueError(
            f"naoto state dict: expected {14 * layer_size - 9} tensors, got {len(src)}"
        )
    for key, shape in expected.items():
        value = src[key]
        if not isinstance(value, Tensor):
            raise TypeError(f"naoto state dict: {key!r} is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != shape:
            raise ValueError(
                f"naoto state dict: {key!r} has shape {tuple(value.shape)}, expected {shape}"
            )

    out: dict[str, Tensor] = {}
    for key, value in src.items():
        if ".mask_conv." in key:
            if not bool((value == 1).all()):
                raise ValueError(
                    f"naoto state dict: {key!r} is not all ones (not a naoto mask conv)"
                )
            continue
        if key.endswith("input_conv.weight"):
            out[key.replace("input_conv.", "")] = naoto_to_nvidia_weight(value.detach().clone())
        else:
            out[key.replace("input_conv.", "")] = value.detach().clone()
    with torch.device("meta"):
        reference = PConvUNet(layer_size=layer_size, in_channels=in_channels).state_dict()
    if set(out) != set(reference):  # the naming table and our modules agree
        raise ValueError(
            f"converted keys differ from PConvUNet: {sorted(set(out) ^ set(reference))[:6]}"
        )
    return out


def load_naoto(source: str | os.PathLike | Mapping[str, Any]) -> dict[str, Tensor]:
    """Read (``torch.load(weights_only=True)``) and convert a naoto checkpoint."""
    checkpoint = source if isinstance(source, Mapping) else load_state_dict(source)
    return convert_naoto_state_dict(checkpoint)


# --------------------------------------------------------------------------- entrypoint
@register_model
def partial_conv(
    *,
    layer_size: int = 7,  # naoto PConvUNet(layer_size=7) at 256^2; paper 8 at 512^2
    stage: Stage = "train",  # "train" (lr) | "finetune" (lr_finetune, encoder BN frozen)
    valid_weight: float = 1.0,  # LAMBDA_DICT['valid']
    hole_weight: float = 6.0,  # LAMBDA_DICT['hole']
    perceptual_weight: float = 0.05,  # LAMBDA_DICT['prc']
    style_weight: float = 120.0,  # LAMBDA_DICT['style'] (output + composite)
    tv_weight: float = 0.1,  # LAMBDA_DICT['tv']
    tv_mode: TVMode = "hole_boundary",  # paper eq. 6; "whole" = naoto total_variation_loss
    lr: float = 2e-4,  # naoto --lr (paper 2e-4)
    lr_finetune: float = 5e-5,  # naoto --lr_finetune (paper 5e-5)
    beta1: float = 0.9,  # Adam default (naoto)
    beta2: float = 0.999,  # Adam default (naoto)
    freeze_enc_bn_affine: bool = True,  # paper / mmagic; False = naoto (running stats only)
    vgg: Literal["imagenet", "random"] = "imagenet",  # VGG-16 weights of the loss network
) -> PartialConv:
    """PartialConv (Liu et al., ECCV 2018): partial-convolution U-Net for irregular holes."""
    return PartialConv(
        layer_size=layer_size, stage=stage, valid_weight=valid_weight, hole_weight=hole_weight,
        perceptual_weight=perceptual_weight, style_weight=style_weight, tv_weight=tv_weight,
        tv_mode=tv_mode, lr=lr, lr_finetune=lr_finetune, beta1=beta1, beta2=beta2,
        freeze_enc_bn_affine=freeze_enc_bn_affine, vgg=vgg,
    )  # fmt: skip
