"""GMCNN: image inpainting via generative multi-column convolutional neural networks.

Paper: Wang, Tao, Qi, Shen, Jia, "Image Inpainting via Generative Multi-column Convolutional
Neural Networks", NeurIPS 2018, arXiv 1810.08771.

Official code matched: shepnerd/inpainting_gmcnn (commit 08eb38f), the **PyTorch** release
``pytorch/``: ``model/net.py`` (``GMCNN``, ``Discriminator``, ``GlobalLocalDiscriminator``,
``InpaintingModel_GMCNN``), ``model/layer.py`` (``ConfidenceDrivenMaskLayer``,
``SpectralNorm``, ``init_weights``), ``model/loss.py`` (``IDMRFLoss``), ``model/basemodel.py``
(``save_networks``: ``<epoch>_net_GM.pth``), ``train.py``, ``options/train_options.py``,
``util/utils.py``; the published PyTorch model is CelebA-HQ 256 (rect masks).

Generator (``models.md`` section 7): three columns (:class:`zoo.layers.multi_column.
MultiColumnBranch` with 7x7, 5x5, 3x3 kernels, attributes ``EB1``, ``EB2``, ``EB3``) on the
4-channel input ``[x * (1 - m), m]`` (x in [-1, 1], m = 1 in the hole), merged by
:class:`~zoo.layers.multi_column.MultiColumnMerge` (``decoding_layers``) and clamped to
[-1, 1]; reflection padding, ELU, no normalisation; **12,561,891** parameters at ``cnum =
32``; the state-dict keys are the official ones.  H and W must be multiples of 4 (``test.py``
crops to ``grid = 4``), so ``pad_multiple = 4``.

Discriminators (:func:`zoo.layers.discriminators.gmcnn_discriminators`): global on the 256^2
composite and local on the 128^2 hole patch (``mask_type='rect'``) or on the whole composite
(``'stroke'``; ``local_region="image"`` here); four 5x5 stride-2 convs 64, 128, 256, 256 +
ELU + linear, spectral norm on every layer; 2,733,441 and 2,684,289 trainable parameters.

Objective (``InpaintingModel_GMCNN``, ``m`` = hole mask, ``c`` = composite ``pred * m + gt *
(1 - m)``, ``P`` = local patch)::

    rec  = mean(|pred - gt| * conf) / mean(m)          conf = ConfidenceDrivenMaskLayer(65, 1/40, 7)
    ae   = mean(|pred - gt| (1 - m)) / mean(1 - m)
    G    = lambda_rec * rec + lambda_ae * ae                                 (pretrain)
         + lambda_mrf * IDMRF(P(c), P(gt)) + lambda_adv * (-mean Dg(c) - mean Dl(P(c)))  (finetune)
    D    = mean relu(1 - Dg(gt)) + mean relu(1 + Dg(c)) + (the same for Dl on P)        (hinge)

``lambda_rec = 1.4``, ``lambda_ae = 1.2``, ``lambda_mrf = 0.05``, ``lambda_adv = 1e-3``,
``D_max_iters = 5`` discriminator updates per generator update, Adam lr 1e-5, betas (0.5,
0.9) for both.  ID-MRF: :class:`zoo.losses.id_mrf.IDMRFLoss` (PyTorch variant: VGG-19 relu3_1
+ 2 x relu4_1, ``protocol.md`` 4.3), built lazily on first use with ``vgg`` weights.
``stage="pretrain"`` is ``--pretrain_network 1`` (reconstruction only, no discriminator
training); ``"finetune"`` (the option's default 0) adds ID-MRF and the adversarial terms;
``pretrain_steps`` runs the README's two stages in one run (pretrain objective for the first
steps, then finetune).

Adversarial loss (``gan``): the PyTorch code uses the **hinge** loss with spectral norm (README
"a different GAN loss (wgan hinge loss with spectral normalization)"; the ``WGANLoss`` it
builds is never called, ``lambda_gp`` unused); that is the default.  ``gan="wgan_gp"`` is the
TF release's objective (``tensorflow/net/network.py``: WGAN critic losses for the global and
local critic and ``lambda_gp = 10`` times the gradient penalties, masked by the mask and by its
local patch) applied to the same (spectral-norm, ELU) discriminators; the TF critics
themselves (LeakyReLU, no SN) are not reproduced.

Differences from the TensorFlow release (``tensorflow/net/network.py``; not weight-compatible):
5-channel input ``[x, ones, ones * mask]``; the 3x3 column starts with a 5x5 conv; the 5x5
column upsamples with a 3x3 ``conv13`` then a 5x5 ``conv14``; the 3x3 column ends at 16
channels (merge 208); an extra ``conv11_atrous`` (rate 32) when ``cnum > 32``; merge ``conv17``
(16) + ``conv18`` (3); WGAN-GP critics; ID-MRF on MatConvNet VGG-19 with average pooling.

Deviations from the PyTorch code, all deliberate:

- **discriminator steps**: the official loop updates D five times on the *same* batch and
  completion; the project's training loop (``d_steps``) gives every extra D step a fresh
  batch, as DeepFill v1's ``SecondaryTrainer`` does.
- **masks**: the official training uses one mask per batch (``repeat``) and an exact 128 x 128
  rectangle whose local patch is the rectangle itself; here every sample has its own mask and
  the local patch is a ``local_size`` window (128 at 256, scaled with the batch resolution)
  centred on the hole's bounding box and clipped to the image
  (:func:`zoo.layers.local_patch.hole_windows`; for the official rectangle the window is the
  rectangle).
- **minimum size**: reflection padding of the 7x7 column (dilation 16 at 1/4 resolution: 48
  px) needs inputs of at least 196 x 196, on which the official code fails; smaller inputs
  are padded here (replicate, mask 0: known context) to ``min_size`` and cropped back.
- **discriminator input size**: the linear layers fix 256^2 / 128^2; batches of another
  resolution are resized (bilinear, antialiased) for the discriminators, with a warning.
- **initialisation**: as the official ``init_weights``: generator convs N(0, 0.02), zero bias;
  the discriminators keep PyTorch's default initialisation (the official ``init_weights``
  skips the ``SpectralNorm``-wrapped layers, which no longer hold a ``weight``).
- spectral norm: :mod:`zoo.layers.spectral_norm` (torch parametrization; the official wrapper
  iterates once per forward in eval mode too, see its docstring).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo._registry import register_model
from zoo._weights import load_state_dict
from zoo.layers.discriminators import gmcnn_discriminators, remap_gmcnn_discriminators
from zoo.layers.local_patch import crop_windows, hole_windows, scaled_window_size
from zoo.layers.multi_column import MultiColumnBranch, MultiColumnMerge, branch_out_channels
from zoo.losses.adversarial import AdversarialLoss, gradient_penalty
from zoo.losses.id_mrf import IDMRFLoss
from zoo.losses.reconstruction import confidence_driven_l1, confidence_weights, masked_l1
from zoo.models._base import InpaintModel

__all__ = [
    "GMCNNGenerator",
    "GMCNN",
    "convert_gmcnn_state_dict",
    "load_gmcnn",
    "gmcnn",
]

Tensor = torch.Tensor

#: smallest input side the 7x7 column accepts (reflection pad 48 < side / 4), multiple of 4
MIN_SIZE = 196
#: official GMCNN state-dict layout: module -> conv indices (each with weight and bias)
OFFICIAL_CONVS = {
    "EB1": tuple(range(12)),
    "EB2": (*range(12), 13, 14),
    "EB3": (*range(12), 13, 14, 16, 17),
    "decoding_layers": (0, 1),
}


# --------------------------------------------------------------------------- generator
class GMCNNGenerator(nn.Module):
    """Official ``GMCNN(in_channels=4, out_channels=3, cnum=32)``: three columns + merge.

    Args:
        cnum: base width (official ``--g_cnum 32``).
        in_channels: 4 = masked RGB + mask (``InpaintingModel_GMCNN(in_channels=4)``).
        use_instance_norm: official ``using_norm`` (off).
    """

    def __init__(self, *, cnum: int = 32, in_channels: int = 4, use_instance_norm: bool = False):
        super().__init__()
        if not isinstance(cnum, int) or cnum < 2 or cnum % 2:
            raise ValueError(f"cnum must be a positive even int, got {cnum!r}")
        kwargs = {"in_channels": in_channels, "cnum": cnum, "use_instance_norm": use_instance_norm}
        self.EB1 = MultiColumnBranch(7, **kwargs)
        self.EB2 = MultiColumnBranch(5, **kwargs)
        self.EB3 = MultiColumnBranch(3, **kwargs)
        merged = sum(branch_out_channels(k, cnum) for k in (7, 5, 3))  # 7 cnum
        self.decoding_layers = MultiColumnMerge(merged, cnum // 2, 3)
        for module in self.modules():  # official init_weights('normal', gain=0.02)
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, 0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        """N x 4 x H x W (masked image, mask) -> N x 3 x H x W in [-1, 1]."""
        # channels_last (NHWC) activations: oneDNN runs the 44 convolutions without
        # per-layer layout reorders (about 1.15x faster on CPU, same values up to float
        # rounding); the output is returned in the default contiguous layout
        x = x.contiguous(memory_format=torch.channels_last)
        return self.decoding_layers([self.EB1(x), self.EB2(x), self.EB3(x)]).contiguous()


# --------------------------------------------------------------------------- model
class GMCNN(InpaintModel):
    """GMCNN generator + global/local spectral-norm discriminators, official PyTorch objective.

    Args: see :func:`gmcnn` (official values as defaults).
    """

    pad_multiple = 4

    def __init__(
        self,
        *,
        cnum: int = 32,
        d_cnum: int = 64,
        image_size: int = 256,
        local_size: int | None = None,
        local_region: str = "patch",
        stage: str = "finetune",
        pretrain_steps: int = 0,
        gan: str = "hinge",
        lambda_rec: float = 1.4,
        lambda_ae: float = 1.2,
        lambda_mrf: float = 0.05,
        lambda_adv: float = 1e-3,
        lambda_gp: float = 10.0,
        confidence_size: int = 65,
        confidence_sigma: float = 1.0 / 40,
        confidence_iters: int = 7,
        d_steps: int = 5,
        lr: float = 1e-5,
        beta1: float = 0.5,
        beta2: float = 0.9,
        min_size: int = MIN_SIZE,
        vgg: str = "imagenet",
    ) -> None:
        super().__init__()
        local_size = image_size // 2 if local_size is None else local_size
        if local_region not in ("patch", "image"):
            raise ValueError(f"local_region must be 'patch' or 'image', got {local_region!r}")
        if stage not in ("pretrain", "finetune"):
            raise ValueError(f"stage must be 'pretrain' or 'finetune', got {stage!r}")
        if gan not in ("hinge", "wgan_gp"):
            raise ValueError(f"gan must be 'hinge' or 'wgan_gp', got {gan!r}")
        if vgg not in ("imagenet", "random"):
            raise ValueError(f"vgg must be 'imagenet' or 'random', got {vgg!r}")
        if not 16 <= local_size <= image_size:
            raise ValueError(f"need 16 <= local_size <= image_size, got {local_size}, {image_size}")
        if d_steps < 1 or pretrain_steps < 0 or min_size < 1 or min_size % 4:
            raise ValueError("need d_steps >= 1, pretrain_steps >= 0, min_size a multiple of 4")
        self.generator = GMCNNGenerator(cnum=cnum)
        patch = image_size if local_region == "image" else local_size
        global_d, local_d = gmcnn_discriminators(
            image_size=image_size, patch_size=patch, cnum=d_cnum
        )
        self.discriminators = nn.ModuleDict({"global": global_d, "local": local_d})
        self.image_size, self.local_size = int(image_size), int(local_size)
        self.local_region, self.stage = local_region, stage
        self.pretrain_steps = int(pretrain_steps)
        self.gan = gan
        self.adversarial = AdversarialLoss("hinge" if gan == "hinge" else "wgan")  # summed terms
        self.lambda_rec, self.lambda_ae = float(lambda_rec), float(lambda_ae)
        self.lambda_mrf, self.lambda_adv = float(lambda_mrf), float(lambda_adv)
        self.lambda_gp = float(lambda_gp)
        self.confidence = {
            "size": int(confidence_size),
            "sigma": float(confidence_sigma),
            "iters": int(confidence_iters),
        }
        self.d_steps = int(d_steps)
        self.lr, self.betas = float(lr), (float(beta1), float(beta2))
        self.min_size = int(min_size)
        self.vgg = vgg
        self._mrf: IDMRFLoss | None = None  # built lazily, never registered (not in state_dict)

    # ------------------------------------------------------------------ inference
    def inpaint(self, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
        h, w = image.shape[-2:]
        ph, pw = max(0, self.min_size - h), max(0, self.min_size - w)
        if ph or pw:  # below the 7x7 column's minimum: pad with known context, crop back
            image = F.pad(image, (0, pw, 0, ph), mode="replicate")
            mask = F.pad(mask, (0, pw, 0, ph), value=0.0)
        x = torch.cat([image * (1.0 - mask), mask], dim=1)  # N x 4 x H x W
        return {"output": self.generator(x)[..., :h, :w]}

    # ------------------------------------------------------------------ training
    def pretraining(self, step: int) -> bool:
        return self.stage == "pretrain" or step < self.pretrain_steps

    def phases(self, step: int) -> tuple[bool, bool]:
        return True, not self.pretraining(step)

    def mrf_loss(self, like: Tensor) -> IDMRFLoss:
        """The ID-MRF loss network on ``like``'s device and dtype, built on first use (scoring a
        converted checkpoint needs no VGG file)."""
        if self._mrf is None:
            object.__setattr__(self, "_mrf", IDMRFLoss(weights=self.vgg))
        self._mrf.to(device=like.device, dtype=like.dtype)
        return self._mrf

    def local_views(self, images: list[Tensor], mask: Tensor) -> tuple[list[Tensor], Tensor]:
        """Local regions (patch around the hole, or the whole image) and the local mask."""
        if self.local_region == "image":
            return list(images), mask
        size = scaled_window_size(self.local_size, self.image_size, *mask.shape[-2:])
        corners = hole_windows(mask, size)
        return [crop_windows(x, corners, size) for x in images], crop_windows(mask, corners, size)

    def _to_critic_size(self, x: Tensor, size: int, nearest: bool = False) -> Tensor:
        if tuple(x.shape[-2:]) == (size, size):
            return x
        warnings.warn(
            f"GMCNN's discriminators were built for {self.image_size}x{self.image_size} images "
            f"(image_size); resizing a {tuple(x.shape[-2:])} input to {size}x{size}. Set "
            f"model.kwargs.image_size to the training resolution to train as the paper.",
            stacklevel=4,
        )
        if nearest:
            return F.interpolate(x, size=(size, size), mode="nearest")
        return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)

    def _critic_inputs(
        self, images: list[Tensor], mask: Tensor
    ) -> tuple[list[Tensor], list[Tensor], Tensor, Tensor]:
        locals_, local_mask = self.local_views(images, mask)
        local_side = self.discriminators["local"].input_size[0]
        globals_ = [self._to_critic_size(x, self.image_size) for x in images]
        locals_ = [self._to_critic_size(x, local_side) for x in locals_]
        g_mask = self._to_critic_size(mask, self.image_size, nearest=True)
        l_mask = self._to_critic_size(local_mask, local_side, nearest=True)
        return globals_, locals_, g_mask, l_mask

    def generator_loss(
        self, image: Tensor, mask: Tensor, out: dict[str, Tensor], step: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        pred = out["output"]
        rec = confidence_driven_l1(pred, image, mask, **self.confidence)
        ae = masked_l1(pred, image, mask, hole_weight=0.0, valid_weight=1.0, normalization="region")
        total = self.lambda_rec * rec + self.lambda_ae * ae
        logs = {"rec": rec, "ae": ae}
        if not self.pretraining(step):
            completed = out["composite"]
            (local_fake, local_real), _ = self.local_views([completed, image], mask)
            mrf = self.mrf_loss(local_fake)(local_fake, local_real)
            (glob,), (loc,), _, _ = self._critic_inputs([completed], mask)
            adv_g = self.adversarial.generator_loss(self.discriminators["global"](glob)[0])
            adv_l = self.adversarial.generator_loss(self.discriminators["local"](loc)[0])
            total = total + self.lambda_mrf * mrf + self.lambda_adv * (adv_g + adv_l)
            logs.update({"mrf": mrf, "adv_global": adv_g, "adv_local": adv_l})
        logs["total"] = total
        return total, {k: v.detach() for k, v in logs.items()}

    def discriminator_loss(
        self, image: Tensor, mask: Tensor, out: dict[str, Tensor], step: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        fake = out["composite"].detach()
        (real_g, fake_g), (real_l, fake_l), mask_g, mask_l = self._critic_inputs(
            [image, fake], mask
        )
        total = image.new_zeros(())
        logs = {}
        for name, real, fake_, m in (
            ("global", real_g, fake_g, mask_g),
            ("local", real_l, fake_l, mask_l),
        ):
            critic = self.discriminators[name]
            fake_scores, _ = critic(fake_)  # official: completed first, then gt (two calls)
            real_scores, _ = critic(real)
            d = self.adversarial.discriminator_loss(real_scores, fake_scores)
            total = total + d
            logs[f"d_{name}"] = d
            if self.gan == "wgan_gp":
                gp = gradient_penalty(critic, real, fake_, mask=m)
                total = total + self.lambda_gp * gp
                logs[f"gp_{name}"] = gp
        logs["d_total"] = total
        return total, {k: v.detach() for k, v in logs.items()}

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        d_params = [p for p in self.discriminators.parameters() if p.requires_grad]
        return {
            "generator": torch.optim.Adam(
                self.generator.parameters(), lr=self.lr, betas=self.betas
            ),
            "discriminator": torch.optim.Adam(d_params, lr=self.lr, betas=self.betas),
        }

    def confidence_map(self, mask: Tensor) -> Tensor:
        """The confidence weights of the reconstruction loss (for inspection)."""
        return confidence_weights(mask, **self.confidence)

    # ------------------------------------------------------------------ weights
    def load_gmcnn(
        self,
        generator: str | os.PathLike | Mapping[str, Tensor],
        discriminator: str | os.PathLike | Mapping[str, Tensor] | None = None,
    ) -> None:
        """Load an official ``<epoch>_net_GM.pth`` (and a ``GlobalLocalDiscriminator`` state
        dict, which the official code never saves)."""
        state = load_gmcnn(generator, discriminator)
        self.generator.load_state_dict(state["generator"], strict=True)
        if "discriminators" in state:
            self.discriminators.load_state_dict(state["discriminators"], strict=True)


# --------------------------------------------------------------------------- converters
def _official_generator_keys() -> list[str]:
    params = ("weight", "bias")
    return [f"{m}.{i}.{p}" for m, idx in OFFICIAL_CONVS.items() for i in idx for p in params]


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


def _linear_side(state: Mapping[str, Tensor], prefix: str, width: int) -> int:
    """Input side of a discriminator read from its linear layer (``width * (side/16)^2``)."""
    features = int(state[f"{prefix}.layers.4.module.weight_bar"].shape[1])
    side = round((features / width) ** 0.5)
    if side * side * width != features:
        raise ValueError(f"{prefix}: cannot read a square input size from {features} features")
    return 16 * side


def convert_gmcnn_state_dict(
    generator: Mapping[str, Any], discriminator: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Tensor]]:
    """Official GMCNN files -> ``{"generator": ..., "discriminators": ...}`` for :class:`GMCNN`.

    Args:
        generator: ``<epoch>_net_GM.pth``, the bare ``GMCNN`` state dict (88 tensors:
            ``EB1.{0..11}``, ``EB2.{0..11,13,14}``, ``EB3.{0..11,13,14,16,17}``,
            ``decoding_layers.{0,1}``, each ``weight`` and ``bias``); keys are kept as they are.
        discriminator: a ``GlobalLocalDiscriminator`` state dict (``{global,local}_
            discriminator.layers.<i>.module.{weight_bar,weight_u,weight_v,bias}``, 40
            tensors), remapped with :func:`remap_gmcnn_discriminators`.  The official code
            does not save one (``model_names = ['GM']``).

    Keys, counts and every shape are checked against freshly built modules (width from
    ``EB1.0.weight``; discriminator width and input sizes from its tensors).
    """
    if not isinstance(generator, Mapping):
        raise TypeError(f"expected a state dict mapping, got {type(generator).__name__}")
    expected = _official_generator_keys()
    _check_keys(generator, expected, "GMCNN generator")
    if len(generator) != len(expected) or len(expected) != 88:
        raise ValueError(f"GMCNN generator must have 88 tensors, got {len(generator)}")
    w1 = generator["EB1.0.weight"]
    if not isinstance(w1, Tensor) or w1.dim() != 4 or w1.shape[1] != 4:
        shape = getattr(w1, "shape", None)
        raise ValueError(f"GMCNN generator: 'EB1.0.weight' must be C x 4 x 7 x 7, got {shape}")
    with torch.device("meta"):
        reference = GMCNNGenerator(cnum=int(w1.shape[0])).state_dict()
    _check_keys(reference, expected, "GMCNN generator layout")  # our modules vs the table
    _check_shapes(generator, reference, "GMCNN generator")
    result = {"generator": {k: v.detach().clone() for k, v in generator.items()}}
    if discriminator is not None:
        if not isinstance(discriminator, Mapping):
            raise TypeError(f"expected a mapping, got {type(discriminator).__name__}")
        if len(discriminator) != 40:
            raise ValueError(f"GMCNN discriminator must have 40 tensors, got {len(discriminator)}")
        try:
            d_cnum = int(discriminator["global_discriminator.layers.0.module.weight_bar"].shape[0])
            g_side = _linear_side(discriminator, "global_discriminator", 4 * d_cnum)
            l_side = _linear_side(discriminator, "local_discriminator", 4 * d_cnum)
        except KeyError as exc:
            raise ValueError(f"GMCNN discriminator: missing key {exc}") from exc
        global_sd, local_sd = remap_gmcnn_discriminators(
            {k: v.detach().clone() for k, v in discriminator.items()}
        )
        with torch.device("meta"):
            ref_g, ref_l = gmcnn_discriminators(image_size=g_side, patch_size=l_side, cnum=d_cnum)
        d_state = {}
        for name, sd, ref in (("global", global_sd, ref_g), ("local", local_sd, ref_l)):
            _check_keys(sd, ref.state_dict(), f"GMCNN {name} discriminator")
            _check_shapes(sd, ref.state_dict(), f"GMCNN {name} discriminator")
            d_state.update({f"{name}.{k}": v for k, v in sd.items()})
        result["discriminators"] = d_state
    return result


def load_gmcnn(
    generator: str | os.PathLike | Mapping[str, Any],
    discriminator: str | os.PathLike | Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Tensor]]:
    """Read (``torch.load(weights_only=True)``) and convert official GMCNN files."""

    def read(source: Any) -> Any:
        return source if isinstance(source, Mapping) else load_state_dict(source)

    disc = None if discriminator is None else read(discriminator)
    return convert_gmcnn_state_dict(read(generator), disc)


# --------------------------------------------------------------------------- entrypoint
@register_model
def gmcnn(
    *,
    cnum: int = 32,  # --g_cnum
    d_cnum: int = 64,  # --d_cnum
    image_size: int = 256,  # --img_shapes 256,256: global discriminator input
    local_size: int | None = None,  # None = image_size // 2 (--mask_shapes 128,128)
    local_region: str = "patch",  # "patch" = --mask_type rect; "image" = stroke (whole image)
    stage: str = "finetune",  # --pretrain_network 0; "pretrain" = 1 (reconstruction only)
    pretrain_steps: int = 0,  # not an option there: steps of pretrain objective before finetune
    gan: str = "hinge",  # PyTorch code: hinge + SN; "wgan_gp" = the TF release's WGAN-GP
    lambda_rec: float = 1.4,  # --lambda_rec
    lambda_ae: float = 1.2,  # --lambda_ae
    lambda_mrf: float = 0.05,  # --lambda_mrf
    lambda_adv: float = 1e-3,  # --lambda_adv
    lambda_gp: float = 10.0,  # --lambda_gp (used only with gan="wgan_gp")
    confidence_size: int = 65,  # ConfidenceDrivenMaskLayer(size=65)
    confidence_sigma: float = 0.025,  # ConfidenceDrivenMaskLayer(sigma=1/40)
    confidence_iters: int = 7,  # ConfidenceDrivenMaskLayer(iters=7)
    d_steps: int = 5,  # --D_max_iters
    lr: float = 1e-5,  # --lr
    beta1: float = 0.5,  # Adam betas=(0.5, 0.9)
    beta2: float = 0.9,
    min_size: int = MIN_SIZE,  # not official: smaller inputs are padded to this side
    vgg: str = "imagenet",  # ID-MRF VGG-19 weights: "imagenet" | "random" (smoke runs only)
) -> GMCNN:
    """GMCNN (Wang et al., NeurIPS 2018): multi-column generator, ID-MRF, global/local SN-D."""
    return GMCNN(
        cnum=cnum, d_cnum=d_cnum, image_size=image_size, local_size=local_size,
        local_region=local_region, stage=stage, pretrain_steps=pretrain_steps, gan=gan,
        lambda_rec=lambda_rec, lambda_ae=lambda_ae, lambda_mrf=lambda_mrf,
        lambda_adv=lambda_adv, lambda_gp=lambda_gp, confidence_size=confidence_size,
        confidence_sigma=confidence_sigma, confidence_iters=confidence_iters, d_steps=d_steps,
        lr=lr, beta1=beta1, beta2=beta2, min_size=min_size, vgg=vgg,
    )  # fmt: skip
