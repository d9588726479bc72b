"""DeepFill v2: gated convolutions, contextual attention and an SN-PatchGAN.

Paper: Yu, Lin, Yang, Shen, Lu, Huang, "Free-Form Image Inpainting with Gated Convolution",
ICCV 2019, arXiv 1806.03589.

Official code matched: JiahuiYu/generative_inpainting, branch ``master`` (= ``v2.0.0``):
``inpaint_model.py`` (``build_inpaint_net``, ``build_sn_patch_gan_discriminator``,
``build_graph_with_losses``), ``inpaint_ops.py`` (``gen_conv``, ``gen_deconv``,
``contextual_attention``, ``resize_mask_like``), ``inpaint.yml`` and ``train.py``
(TensorFlow 1.x + neuralgym).  PyTorch port matched for weights and checked output-for-output:
nipponjo/deepfillv2-pytorch ``model/networks_tf.py`` (``Generator``, ``Discriminator``), whose
published ``states_tf_*.pth`` files hold ``{'G': ...}`` (+ ``'D'``).  Run side by side on the
same random weights in float64, both stages agree to 2e-16 once the two differences listed
below (fuse, mask resize) are aligned.

Architecture (``models.md`` section 10): DeepFill v1's layer tables (:mod:`zoo.layers.deepfill`)
built with gated convs (widths are effective, gated convs run twice as many): stage 1 ``conv1 ..
conv17`` on ``[x, ones, ones * mask]`` (x with holes zeroed) -> tanh; stage 2 on the 3-channel
pasted image ``x1 * mask + x * (1 - mask)``: a dilated conv branch ``xconv1 .. xconv10``, an
attention branch ``pmconv1 .. pmconv6`` (``pmconv6`` with ReLU) -> contextual attention (rate
2, fuse, softmax scale 10) -> ``pmconv9``, ``pmconv10``, then the concatenation ->
``allconv11 .. allconv17`` -> tanh.  4,052,478 parameters with ``cnum=48`` (stage 1
1,631,151 + stage 2 2,421,327).  SN-PatchGAN: six 5x5 stride-2 spectral-norm convs on
``[image, mask]``, 5,946,816 parameters.

Objective (``build_graph_with_losses`` with ``inpaint.yml``): generator
``l1_loss_alpha * (mean|x - x1| + mean|x - x2|)`` over the whole image (``ae_loss: True``)
``+ gan_loss_alpha * (-mean D(composite, mask))``; discriminator
``0.5 * mean relu(1 - D(x, mask)) + 0.5 * mean relu(1 + D(composite, mask))`` (neuralgym
``gan_hinge_loss``), real and fake scored in one batch; one D step per G step; Adam, lr 1e-4,
betas (0.5, 0.999) for both.

Deviations, all deliberate:

- **channel order**: the TF code reads images with OpenCV, so the official checkpoints expect
  **BGR**; this model takes RGB like every model of the zoo.  Whether nipponjo's conversion
  flipped the channels is not recorded anywhere; the port itself feeds RGB (PIL) to these
  weights.  :func:`convert_nipponjo_state_dict` therefore keeps the port's weights as they are
  by default (``bgr_to_rgb=False``: we reproduce the port) and offers ``bgr_to_rgb=True``,
  which flips the input channels of ``conv1``/``xconv1``/``pmconv1`` and the discriminator's
  ``conv1`` and the output channels of ``conv17``/``allconv17``.  To settle it with the real
  file: run both settings on the official ``examples/places2/case*_input.png`` and compare with
  ``case*_output.png``.
- **padding**: TF ``'SAME'`` everywhere, asymmetric for stride 2 (:mod:`zoo.layers.padding`),
  as the official code and nipponjo's ``networks_tf.py``.
- **resizes**: neuralgym nearest resizes use ``align_corners=True``; downsampling is
  reproduced exactly (:func:`zoo.layers.contextual_attention.resize_nearest_tf`), x2
  upsampling equals ``F.interpolate(nearest)``.  The attention mask is resized to the 1/4
  feature grid (``resize_mask_like``), then by 1/2 inside the attention, as TF; nipponjo
  resizes the full mask by 8 in one step, which picks other rows.
- **fuse**: on (TF default, used by the official model); nipponjo's ``Generator`` turns it off.
  ``attention_fuse=False`` reproduces the port.
- **per-sample masks**: TF trains with one mask per batch and the attention reads batch
  element 0's mask; here every element uses its own mask (in the attention and in D's input).
- **optimisers**: ``train.py`` uses one ``AdamOptimizer`` object for G and D (in TF 1.x its
  bias-correction powers are per optimizer and graph, so they advance at both updates); here
  each has its own ``torch.optim.Adam``.
- contextual attention flushes subnormal attention weights to zero (TF's CPU kernels run with
  flush-to-zero); see :mod:`zoo.layers.contextual_attention`.
- H and W are padded to a multiple of 8 by :class:`~zoo.models._base.InpaintModel` (replicate,
  mask 0 in the padding); TF's ``test.py`` crops to a multiple of 8 instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
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
)
from zoo.layers.discriminators import SNPatchGAN
from zoo.layers.gated_conv import GatedConv2d, GatedDeconv2d
from zoo.layers.spectral_norm import remap_spectral_norm_keys
from zoo.losses.adversarial import AdversarialLoss
from zoo.models._base import InpaintModel

__all__ = [
    "DeepFillV2Generator",
    "DeepFillV2",
    "convert_nipponjo_state_dict",
    "load_nipponjo",
]

Tensor = torch.Tensor

NUM_D_LAYERS = 6
NUM_G_KEYS = 2 * (len(STAGE1) + len(STAGE2))  # weight + bias of 42 convs = 84
NUM_D_KEYS = 3 * NUM_D_LAYERS  # weight, bias, weight_u of 6 convs = 18
ACTIVATION_LAYERS = {"elu": nn.ELU, "relu": nn.ReLU, None: None}  # GatedConv2d factories


# --------------------------------------------------------------------------- generator
def _gated_layer(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int,
    dilation: int,
    *,
    activation: str | None,
    upsample: bool,
) -> nn.Module:
    """DeepFill v2's conv block for a :class:`~zoo.layers.deepfill.DeepFillStage` row: a gated
    conv, or for ``*_upsample`` rows nearest x2 + a 3x3 gated conv (keys ``.conv.conv.*``, as
    nipponjo's ``GDeConv``)."""
    act = ACTIVATION_LAYERS[activation]
    if upsample:
        return GatedDeconv2d(in_channels, out_channels, activation=act)
    return GatedConv2d(in_channels, out_channels, kernel_size, stride, dilation, activation=act)


class DeepFillV2Generator(nn.Module):
    """Two-stage DeepFill v2 generator (``build_inpaint_net``).

    Args:
        cnum: TF base width (official 48; effective widths are cnum/2 .. 2*cnum).
        in_channels: stage-1 input channels, ``[x, ones, ones*mask]`` (official 5; 6 guided).
        attention_fuse: score fusion in contextual attention (official True).
        softmax_scale: attention softmax scale (official 10).
        attention_chunk_size: foreground positions per attention chunk (None = all at once).
        channels_last: run the convolutions on N x H x W x C (``torch.channels_last``) tensors,
            several times faster for the few-channel full-resolution layers on CPU (same
            arithmetic up to the summation order); inputs and outputs keep their layout.
    """

    def __init__(
        self,
        *,
        cnum: int = 48,
        in_channels: int = 5,
        attention_fuse: bool = True,
        softmax_scale: float = 10.0,
        attention_chunk_size: int | None = None,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        if cnum < 4 or cnum % 4:
            raise ValueError(f"cnum must be a positive multiple of 4, got {cnum}")
        if in_channels != 5:
            raise ValueError("only the unguided 5-channel input [x, ones, ones*mask] is built")
        self.channels_last = bool(channels_last)
        c = cnum // 2  # effective width of conv1 (TF declares cnum, half of it is the gate)
        self.coarse = DeepFillStage(STAGE1, width=c, in_channels=in_channels, layer=_gated_layer)
        self.refine = DeepFillStage(STAGE2, width=c, in_channels=3, layer=_gated_layer)
        self.attention = ContextualAttention(
            ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=softmax_scale,
            fuse=attention_fuse, chunk_size=attention_chunk_size,
        )  # fmt: skip

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``x``: N x 3 x H x W image in [-1, 1] with holes zeroed; ``mask``: N x 1 x H x W,
        1 = hole; H, W multiples of 8.  Returns (stage-1, stage-2) predictions, N x 3 x H x W."""
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
        x1 = torch.tanh(self.coarse.run(xin, STAGE1))
        pasted = x1 * mask + x * (1.0 - mask)  # stage-2 input: the 3-channel pasted image
        pasted = pasted.contiguous(memory_format=layout)
        hallu = self.refine.run(pasted, STAGE2_CONV)  # N x 4c x H/4 x W/4
        pm = self.refine.run(pasted, STAGE2_ATTENTION)  # N x 4c x H/4 x W/4
        mask_s = resize_nearest_tf(mask, pm.shape[-2:])  # official resize_mask_like
        pm = self.attention(pm, pm, mask_s).contiguous(memory_format=layout)  # N x 4c x H/4 x W/4
        pm = self.refine.run(pm, STAGE2_AFTER_ATTENTION)
        x2 = self.refine.run(torch.cat([hallu, pm], dim=1), STAGE2_MERGE)  # N x 3 x H x W
        return x1.contiguous(), torch.tanh(x2).contiguous()


# --------------------------------------------------------------------------- model
class DeepFillV2(InpaintModel):
    """DeepFill v2 generator + SN-PatchGAN with the official objective and optimiser.

    Args (official values from ``inpaint.yml``/``train.py`` as defaults):
        cnum: generator base width (48, hard-coded in ``build_inpaint_net``).
        d_cnum: discriminator base width (64, hard-coded in the SN-PatchGAN).
        attention_fuse: contextual-attention score fusion (True, the function default).
        softmax_scale: contextual-attention softmax scale (10).
        attention_chunk_size: attention memory bound, not an official option (None).
        l1_loss_alpha: weight of each stage's whole-image L1 (``l1_loss_alpha: 1.``).
        ae_loss: add the L1 terms to the generator loss (``ae_loss: True``).
        gan_loss_alpha: weight of the hinge generator loss (``gan_loss_alpha: 1``).
        gan_with_mask: the discriminator also sees the mask (``gan_with_mask: True``).
        lr: Adam learning rate of G and D (1e-4 in ``train.py``).
        beta1, beta2: Adam betas of G and D (0.5, 0.999 in ``train.py``).
    """

    pad_multiple = 8

    def __init__(
        self,
        *,
        cnum: int = 48,
        d_cnum: int = 64,
        attention_fuse: bool = True,
        softmax_scale: float = 10.0,
        attention_chunk_size: int | None = None,
        l1_loss_alpha: float = 1.0,
        ae_loss: bool = True,
        gan_loss_alpha: float = 1.0,
        gan_with_mask: bool = True,
        lr: float = 1e-4,
        beta1: float = 0.5,
        beta2: float = 0.999,
    ) -> None:
        super().__init__()
        self.generator = DeepFillV2Generator(
            cnum=cnum,
            attention_fuse=attention_fuse,
            softmax_scale=softmax_scale,
            attention_chunk_size=attention_chunk_size,
        )
        self.discriminators = nn.ModuleDict(
            {"patch": SNPatchGAN(in_channels=4 if gan_with_mask else 3, cnum=d_cnum)}
        )
        self.adversarial = AdversarialLoss("hinge", average_real_fake=True)  # neuralgym: 0.5 * (..)
        self.l1_loss_alpha = float(l1_loss_alpha)
        self.ae_loss = bool(ae_loss)
        self.gan_loss_alpha = float(gan_loss_alpha)
        self.gan_with_mask = bool(gan_with_mask)
        self.lr, self.betas = float(lr), (float(beta1), float(beta2))

    def inpaint(self, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
        x1, x2 = self.generator(image * (1.0 - mask), mask)
        return {"output": x2, "coarse": x1}

    def _d_input(self, image: Tensor, mask: Tensor) -> Tensor:
        return torch.cat([image, mask], dim=1) if self.gan_with_mask else image

    def generator_loss(
        self, image: Tensor, mask: Tensor, out: dict[str, Tensor], step: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        l1_coarse = (image - out["coarse"]).abs().mean()
        l1_refine = (image - out["output"]).abs().mean()
        fake_scores, _ = self.discriminators["patch"](self._d_input(out["composite"], mask))
        adv = self.adversarial.generator_loss(fake_scores)
        total = self.gan_loss_alpha * adv
        if self.ae_loss:
            total = total + self.l1_loss_alpha * (l1_coarse + l1_refine)
        logs = {"l1_coarse": l1_coarse, "l1_refine": l1_refine, "adv": adv, "total": total}
        return total, {k: v.detach() for k, v in logs.items()}

    def discriminator_loss(
        self, image: Tensor, mask: Tensor, out: dict[str, Tensor], step: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        real = self._d_input(image, mask)
        fake = self._d_input(out["composite"].detach(), mask)
        scores, _ = self.discriminators["patch"](torch.cat([real, fake], dim=0))  # one pass
        real_scores, fake_scores = scores.chunk(2, dim=0)
        loss = self.adversarial.discriminator_loss(real_scores, fake_scores)
        logs = {
            "d_real": F.relu(1.0 - real_scores).mean().detach(),
            "d_fake": F.relu(1.0 + fake_scores).mean().detach(),
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

    def load_nipponjo(
        self, source: str | os.PathLike | Mapping[str, Any], *, bgr_to_rgb: bool = False
    ) -> None:
        """Load a nipponjo ``states_tf_*.pth`` (generator, and discriminator if present)."""
        state = load_nipponjo(source, bgr_to_rgb=bgr_to_rgb)
        self.generator.load_state_dict(state["generator"], strict=True)
        if "discriminators" in state:
            self.discriminators.load_state_dict(state["discriminators"], strict=True)


# --------------------------------------------------------------------------- converter
def _nipponjo_generator_keys() -> dict[str, str]:
    """nipponjo ``Generator`` key -> our ``DeepFillV2Generator`` key (84 entries)."""
    table = {}
    for prefix, rows in (("coarse.", STAGE1), ("refine.", STAGE2)):
        for name, *_ in rows:
            inner = "conv.conv" if name.endswith("_upsample") else "conv"
            for param in ("weight", "bias"):
                table[f"{name}.{inner}.{param}"] = f"{prefix}{name}.{inner}.{param}"
    return table


def _check_keys(got: Mapping[str, Any], expected: Mapping[str, Any] | set[str], what: str) -> None:
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    if missing or extra:
        raise ValueError(
            f"{what}: key mismatch; missing {len(missing)} {missing[:8]}, "
            f"unexpected {len(extra)} {extra[:8]}"
        )


def _check_shapes(
    pairs: list[tuple[str, str, Any]], reference: Mapping[str, Tensor], what: str
) -> None:
    """Assert every ``(source key, our key, tensor)`` has the shape of ``reference[our key]``."""
    for src_key, key, value in pairs:
        if not isinstance(value, Tensor):
            raise TypeError(f"{what}: {src_key!r} is a {type(value).__name__}, not a tensor")
        expected = tuple(reference[key].shape)
        if tuple(value.shape) != expected:
            arrow = "" if src_key == key else f" (-> {key!r})"
            raise ValueError(
                f"{what}: {src_key!r}{arrow} has shape {tuple(value.shape)}, expected {expected}"
            )


def _flip_bgr(state: dict[str, Tensor], d_state: dict[str, Tensor] | None) -> None:
    """BGR <-> RGB: image input channels of the first convs, RGB outputs of the last ones."""
    for key in (
        "coarse.conv1.conv.weight",
        "refine.xconv1.conv.weight",
        "refine.pmconv1.conv.weight",
    ):
        w = state[key]
        state[key] = torch.cat([w[:, [2, 1, 0]], w[:, 3:]], dim=1)
    for layer in ("coarse.conv17.conv", "refine.allconv17.conv"):
        for param in ("weight", "bias"):
            state[f"{layer}.{param}"] = state[f"{layer}.{param}"][[2, 1, 0]]
    if d_state is not None:
        key = "conv1.parametrizations.weight.original"
        w = d_state[key]
        # permuting input columns leaves the singular vectors u (C_out) valid; v permutes too
        d_state[key] = torch.cat([w[:, [2, 1, 0]], w[:, 3:]], dim=1)
        v_key = "conv1.parametrizations.weight.0._v"
        v = d_state[v_key].view(w.shape[1], -1)  # C_in x k*k (v indexes C_in*k*k)
        d_state[v_key] = torch.cat([v[[2, 1, 0]], v[3:]], dim=0).reshape(-1)


def convert_nipponjo_state_dict(
    checkpoint: Mapping[str, Any], *, bgr_to_rgb: bool = False
) -> dict[str, dict[str, Tensor]]:
    """Map nipponjo's ``networks_tf.py`` checkpoint onto :class:`DeepFillV2` modules.

    Args:
        checkpoint: ``{'G': generator state, 'D': discriminator state (optional)}`` as in the
            published ``states_tf_*.pth`` (the port's training snapshots also hold
            ``G_optim``/``D_optim``/``n_iter``, which are ignored), or a bare generator state
            dict.
        bgr_to_rgb: flip the colour channels of the image-facing layers (see the module
            docstring; off by default: the port's own code feeds RGB to these weights).

    Returns:
        ``{"generator": ..., "discriminators": ...}`` (the latter only with ``'D'``), each
        loadable with ``strict=True`` into ``model.generator`` / ``model.discriminators``.

    Every key is checked (missing and unexpected keys are named), every shape is asserted
    against a freshly built model, and the key counts (84 generator, 18 discriminator) too.
    """
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f"expected a state dict mapping, got {type(checkpoint).__name__}")
    g_src = checkpoint["G"] if "G" in checkpoint else checkpoint
    d_src = checkpoint.get("D") if "G" in checkpoint else None
    table = _nipponjo_generator_keys()
    _check_keys(g_src, table, "nipponjo generator")
    if not len(g_src) == len(table) == NUM_G_KEYS == 84:
        raise ValueError(f"nipponjo generator must have 84 tensors, got {len(g_src)}")
    w1 = g_src["conv1.conv.weight"]
    if not isinstance(w1, Tensor) or w1.dim() != 4:
        raise ValueError("nipponjo generator: 'conv1.conv.weight' must be a 4-D tensor")
    cnum, in_channels = int(w1.shape[0]), int(w1.shape[1])
    with torch.device("meta"):
        reference = DeepFillV2Generator(cnum=cnum, in_channels=in_channels).state_dict()
    _check_keys(set(table.values()), reference, "converted generator")  # table vs our modules
    _check_shapes([(k, table[k], v) for k, v in g_src.items()], reference, "nipponjo generator")
    g_state = {table[k]: v.detach().clone() for k, v in g_src.items()}

    d_state = None
    if d_src is not None:
        d_expected = {
            f"conv{i}.conv_sn.{p}"
            for i in range(1, NUM_D_LAYERS + 1)
            for p in ("weight", "bias", "weight_u")
        }
        _check_keys(d_src, d_expected, "nipponjo discriminator")
        if not len(d_src) == NUM_D_KEYS == 18:
            raise ValueError(f"nipponjo discriminator must have 18 tensors, got {len(d_src)}")
        d_w1 = d_src["conv1.conv_sn.weight"]
        if not isinstance(d_w1, Tensor) or d_w1.dim() != 4:
            raise ValueError("nipponjo discriminator: 'conv1.conv_sn.weight' must be a 4-D tensor")
        with torch.device("meta"):
            d_ref = SNPatchGAN(in_channels=int(d_w1.shape[1]), cnum=int(d_w1.shape[0])).state_dict()
        d_ref_src = {}  # expected shapes under the port's names
        for i in range(1, NUM_D_LAYERS + 1):
            weight = d_ref[f"conv{i}.parametrizations.weight.original"]
            d_ref_src[f"conv{i}.conv_sn.weight"] = weight
            d_ref_src[f"conv{i}.conv_sn.bias"] = d_ref[f"conv{i}.bias"]
            d_ref_src[f"conv{i}.conv_sn.weight_u"] = weight.new_empty(weight.shape[0], 1)
        _check_shapes([(k, k, v) for k, v in d_src.items()], d_ref_src, "nipponjo discriminator")
        remapped = remap_spectral_norm_keys(
            {k: v.detach().clone() for k, v in d_src.items()}, layout="nipponjo"
        )
        d_state = {k.replace(".conv_sn.", ".", 1): v for k, v in remapped.items()}
        _check_keys(d_state, d_ref, "converted discriminator")

    if bgr_to_rgb:
        _flip_bgr(g_state, d_state)
    out = {"generator": g_state}
    if d_state is not None:
        out["discriminators"] = {f"patch.{k}": v for k, v in d_state.items()}
    return out


def load_nipponjo(
    source: str | os.PathLike | Mapping[str, Any], *, bgr_to_rgb: bool = False
) -> dict[str, dict[str, Tensor]]:
    """Read (``torch.load(weights_only=True)``) and convert a nipponjo ``states_tf_*.pth``."""
    checkpoint = source if isinstance(source, Mapping) else load_state_dict(source)
    return convert_nipponjo_state_dict(checkpoint, bgr_to_rgb=bgr_to_rgb)


# --------------------------------------------------------------------------- entrypoint
@register_model
def deepfill_v2(**kwargs: Any) -> DeepFillV2:
    """DeepFill v2 (Yu et al., ICCV 2019): gated convs + contextual attention + SN-PatchGAN."""
    return DeepFillV2(**kwargs)
