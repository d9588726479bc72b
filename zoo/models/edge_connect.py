"""EdgeConnect: an edge generator followed by an edge-guided inpainting generator.

Paper: Nazeri, Ng, Joseph, Qureshi, Ebrahimi, "EdgeConnect: Structure Guided Image Inpainting
using Edge Prediction", ICCV Workshops 2019, arXiv 1901.00212.

Official code followed (PyTorch 1.0, also the reference port): knazeri/edge-connect, ``master``
(commit 3142579): ``src/networks.py`` (``EdgeGenerator``, ``InpaintGenerator``,
``Discriminator``, ``ResnetBlock``, ``init_weights``), ``src/models.py`` (``EdgeModel``,
``InpaintingModel``: inputs, losses, optimisers, checkpoint files), ``src/loss.py``,
``src/dataset.py`` (gray image, Canny edges), ``src/edge_connect.py`` (``train`` for the stages
``MODEL`` 1-3, ``test`` for inference) and ``config.yml.example`` (hyperparameters).

Architecture (``models.md`` section 9).  Both generators are the same ResNet encoder-decoder
with InstanceNorm (no affine parameters, no running statistics):
ReflPad 3, conv 7x7 -> 64; conv 4x4 s2 -> 128; conv 4x4 s2 -> 256 (each IN + ReLU); 8 residual
blocks with dilation 2 (:class:`zoo.layers.dilated.DilatedResidualBlock`); convT 4x4 s2 -> 128,
convT -> 64 (IN + ReLU); ReflPad 3, conv 7x7 -> out.

- ``generator.edge`` (G1): input [masked gray, masked edges, mask]; spectral norm on every conv
  and convT except the last (residual convs then lose their biases); Sigmoid.  10,761,089
  parameters.
- ``generator.inpaint`` (G2): input [masked RGB, edges]; no spectral norm; ``(tanh + 1) / 2``.
  10,774,595 parameters.
- ``discriminators.edge`` / ``.inpaint``: :class:`zoo.layers.discriminators.
  EdgeConnectDiscriminator` (70x70 PatchGAN, spectral norm, no biases) on [gray, edges] (2
  channels, 2,762,752 parameters) and on RGB (3 channels, 2,763,776 parameters).

Conventions (converted here; the official code works in [0, 1], mask 1 = hole):
images ``x = (image + 1) / 2``; gray = skimage ``rgb2gray`` (BT.709 weights 0.2125, 0.7154,
0.0721); masked inputs have **white** holes, ``x * (1 - m) + m``; edges = skimage Canny with
``sigma = 2`` on the gray image, run on the CPU per image (about 5 ms for a 256 x 256 image on
one core: it is the only non-torch step); the edge input is ``edges * (1 - m)``.  As the official
data loader: in training the Canny runs on the whole ground-truth image (the targets of G1 and
the edges G2 trains on); in eval mode (the official ``test``, dataset ``training=False``) it gets
``mask=`` the known region, so nothing inside the hole is seen.

Inference (eval mode, official ``EdgeConnect.test`` for ``MODEL`` 3 and 4): ``e = G1(...)``,
fed to G2 **raw** (not pasted into the known edges, as ``test`` does; ``sample`` pastes), then
``composite = output * m + image * (1 - m)`` (done by :class:`~zoo.models._base.InpaintModel`).

Training stages (``stage``; official ``MODEL``):

==============  =====  =========================================================================
``stage``       MODEL  trained (everything else frozen, ``requires_grad=False``)
==============  =====  =========================================================================
``"edge"``      1      G1 + D1: nsgan x1 on D1([gray, e]) + feature matching x10
``"inpaint"``   2      G2 + D2 on ground-truth edges: L1 x1 / mean(m), nsgan x0.1,
                       perceptual x0.1, style x250
``"joint"``     3      G2 + D2 as ``"inpaint"``, on ``(e * m + edges * (1 - m)).detach()``; G1
                       runs (in train mode, so its spectral-norm vectors still update, as in the
                       official code) but gets no gradient and is not stepped
``"both"``      1 + 2  stages 1 and 2 side by side: disjoint parameters, separate losses, so
                       this equals running them at once (knazeri/edge-connect issue #30)
==============  =====  =========================================================================

The official schedule is ``edge`` -> ``inpaint`` -> ``joint``.  The default is ``"both"``: a
benchmark run trains one model from scratch in one go, and only ``"both"`` leaves both
generators trained for the edge -> inpaint inference (``"joint"`` from scratch would keep G1 at
its random initialisation).  ``MODEL`` 4 (G1 also trained through G2's loss) is not offered: it
is undocumented, fails with "backward through the graph a second time" (issue #40), and the
authors released ``MODEL`` 3 as the final stage (issues #30, #35).

Losses (``src/models.py``, ``src/loss.py``, ``config.yml.example``), all on [0, 1] tensors as
the official code: edge model ``FM_LOSS_WEIGHT`` 10, adversarial 1; inpainting model
``L1_LOSS_WEIGHT`` 1 (L1 over the whole image divided by the mask mean),
``INPAINT_ADV_LOSS_WEIGHT`` 0.1, ``CONTENT_LOSS_WEIGHT`` 0.1 (VGG-19 relu1_1 .. relu5_1 on the
raw output), ``STYLE_LOSS_WEIGHT`` 250 (Gram L1 at relu2_2, relu3_4, relu4_4, relu5_2 on
``output * m`` vs ``image * m``); discriminators ``(L_real + L_fake) / 2``; Adam ``LR`` 1e-4,
betas (``BETA1`` 0, ``BETA2`` 0.9), discriminators ``LR * D2G_LR`` = 1e-5.  Weights initialised
N(0, 0.02), biases 0 (``init_weights``).

Checkpoints: :func:`convert_official_state_dicts` / :meth:`EdgeConnect.load_official` read the
official ``EdgeModel_gen.pth`` (``{'iteration', 'generator'}``), ``EdgeModel_dis.pth``
(``{'discriminator'}``) and the ``InpaintingModel_*`` pair: legacy spectral-norm keys
(``weight_orig``/``weight_u``/``weight_v``) are renamed, the discriminators' ``features.*``
aliases of ``conv1.*`` are checked equal and dropped, every key and shape is checked.

Deviations from the official code, all deliberate:

- the discriminators return logits (``use_sigmoid=False``) and the losses apply the sigmoid:
  nsgan is BCE on logits (same value, computed stably); lsgan applies the sigmoid first, as the
  official sigmoid-output discriminator does; hinge uses the logits as the official code;
- the generic training loop (``benchmarks/train.py``) steps the discriminators first and then
  evaluates the generator loss with the updated discriminators; the official ``process`` builds
  both losses with the discriminator before its step.  D is called twice per D step and twice
  per G step (official: three calls per iteration), so spectral-norm power iterations advance
  at a slightly different rate;
- one Adam over the trainable parameters of both generators (and one over both
  discriminators) instead of one per model: Adam is per parameter, so with equal
  hyperparameters this is the same update;
- spectral norm is ``torch.nn.utils.parametrizations.spectral_norm`` (u-first power iteration
  in train mode; the legacy one iterates v first).  Eval-mode forwards of a converted checkpoint
  are identical; fine-tuning differs from the first power iteration on;
- generator weights are initialised before spectral norm is attached, so ``u``, ``v`` start
  converged (official: random ``u``, ``v`` made stale by the re-initialisation); discriminator
  weights are re-initialised and their ``u``, ``v`` recomputed;
- ``SIGMA`` 0 (random sigma 1..4 per image) draws from torch's RNG instead of Python's.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo._registry import register_model
from zoo._weights import load_state_dict
from zoo.layers.dilated import DilatedResidualBlock
from zoo.layers.discriminators import EdgeConnectDiscriminator, remap_edgeconnect_discriminator
from zoo.layers.fast_deconv import FastConvTranspose2d
from zoo.layers.spectral_norm import remap_spectral_norm_keys, spectral_norm
from zoo.losses.adversarial import AdversarialLoss
from zoo.losses.perceptual import EdgeConnectVGGLoss, edgeconnect_losses
from zoo.losses.reconstruction import feature_matching_loss, l1_over_hole_fraction
from zoo.models._base import InpaintModel

__all__ = [
    "GRAY_WEIGHTS",
    "STAGES",
    "OFFICIAL_FILES",
    "ResnetGenerator",
    "EdgeConnectGenerator",
    "EdgeConnect",
    "rgb_to_gray",
    "canny_edges",
    "convert_official_state_dicts",
    "load_official_files",
    "edge_connect",
]

Tensor = torch.Tensor
Stage = Literal["edge", "inpaint", "joint", "both"]

#: skimage ``rgb2gray`` (ITU-R BT.709 luma) weights of R, G, B
GRAY_WEIGHTS = (0.2125, 0.7154, 0.0721)
#: training stages and the official ``MODEL`` each one reproduces (see the module docstring)
STAGES = {"edge": "1", "inpaint": "2", "joint": "3", "both": "1+2"}
#: official checkpoint file of each part (``src/models.py``: ``<name>_gen.pth`` / ``_dis.pth``)
OFFICIAL_FILES = {
    "edge_gen": "EdgeModel_gen.pth",
    "edge_dis": "EdgeModel_dis.pth",
    "inpaint_gen": "InpaintingModel_gen.pth",
    "inpaint_dis": "InpaintingModel_dis.pth",
}
_GAN_LOSSES = ("nsgan", "lsgan", "hinge")


# --------------------------------------------------------------------------- generators
def _init_normal_(module: nn.Module, gain: float) -> None:
    """Official ``init_weights('normal', 0.02)``: conv / convT weights N(0, gain), biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, gain)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class ResnetGenerator(nn.Module):
    """EdgeConnect's encoder / 8 dilated residual blocks / decoder (``EdgeGenerator`` and
    ``InpaintGenerator`` differ only in channels, spectral norm and output activation).

    Children keep the official indices: ``encoder`` = (0 pad, 1 conv, 2 IN, 3 ReLU, 4 conv,
    5 IN, 6 ReLU, 7 conv, 8 IN, 9 ReLU), ``middle.<i>.conv_block.{1,5}``, ``decoder`` = (0 convT,
    1 IN, 2 ReLU, 3 convT, 4 IN, 5 ReLU, 6 pad, 7 conv), so checkpoints map key for key.

    Args:
        in_channels: 3 for the edge generator, 4 for the inpainting generator.
        out_channels: 1 (edges) or 3 (RGB).
        use_spectral_norm: on every conv / convT but the last (edge generator); the residual
            convs are then bias-free (``bias = not use_spectral_norm``).
        output: ``"sigmoid"`` (edge generator) or ``"tanh01"`` (``(tanh + 1) / 2``).
        residual_blocks: number of residual blocks (official 8).
        dilation: dilation of the first conv of each block (official 2).
        init_gain: std of the N(0, gain) weight initialisation (official 0.02).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        use_spectral_norm: bool,
        output: Literal["sigmoid", "tanh01"],
        residual_blocks: int = 8,
        dilation: int = 2,
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        if output not in ("sigmoid", "tanh01"):
            raise ValueError(f"output must be 'sigmoid' or 'tanh01', got {output!r}")
        if residual_blocks < 0:
            raise ValueError(f"residual_blocks must be >= 0, got {residual_blocks}")
        self.in_channels, self.out_channels, self.output = in_channels, out_channels, output

        def sn(layer: nn.Module) -> nn.Module:
            _init_normal_(layer, init_gain)  # before SN: u, v are computed from these weights
            return spectral_norm(layer) if use_spectral_norm else layer

        def conv(c_in: int, c_out: int, k: int, stride: int = 1, padding: int = 0) -> nn.Module:
            return sn(nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding))

        def up(c_in: int, c_out: int) -> nn.Module:
            # nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), computed as a
            # matrix product or plain convolution (faster on CPU; same parameters and values)
            return sn(FastConvTranspose2d(c_in, c_out))

        def norm_relu(c: int) -> list[nn.Module]:
            return [nn.InstanceNorm2d(c, track_running_stats=False), nn.ReLU(inplace=True)]

        self.encoder = nn.Sequential(
            nn.ReflectionPad2d(3),
            conv(in_channels, 64, 7),
            *norm_relu(64),
            conv(64, 128, 4, stride=2, padding=1),
            *norm_relu(128),
            conv(128, 256, 4, stride=2, padding=1),
            *norm_relu(256),
        )
        self.middle = nn.Sequential(
            *(
                DilatedResidualBlock(
                    256, dilation=dilation, bias=not use_spectral_norm, conv_wrapper=sn
                )
                for _ in range(residual_blocks)
            )
        )
        last = nn.Conv2d(64, out_channels, 7)
        _init_normal_(last, init_gain)  # the last conv never has spectral norm
        self.decoder = nn.Sequential(
            up(256, 128),
            *norm_relu(128),
            up(128, 64),
            *norm_relu(64),
            nn.ReflectionPad2d(3),
            last,
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected N x {self.in_channels} x H x W, got {tuple(x.shape)}")
        if x.shape[-2] % 4 or x.shape[-1] % 4:
            raise ValueError(f"H and W must be multiples of 4, got {tuple(x.shape[-2:])}")
        x = self.encoder(x)  # N x 256 x H/4 x W/4
        x = self.middle(x)
        x = self.decoder(x)  # N x out x H x W
        if self.output == "sigmoid":
            return torch.sigmoid(x)
        return (torch.tanh(x) + 1) / 2


def _build_generator(part: str, **kwargs: Any) -> ResnetGenerator:
    """G1 (``"edge"``: 3 -> 1, spectral norm, Sigmoid) or G2 (``"inpaint"``: 4 -> 3)."""
    if part == "edge":
        return ResnetGenerator(3, 1, use_spectral_norm=True, output="sigmoid", **kwargs)
    return ResnetGenerator(4, 3, use_spectral_norm=False, output="tanh01", **kwargs)


class EdgeConnectGenerator(nn.Module):
    """The two generators: ``edge`` (G1, 10,761,089 parameters) and ``inpaint`` (G2,
    10,774,595).  Inputs and outputs are in the official [0, 1] convention.

    ``forward(gray, edges, rgb, mask)`` runs the official test pipeline: ``gray`` N x 1, ``rgb``
    N x 3 in [0, 1] with the hole blanked or not (it is overwritten by white), ``edges`` N x 1 in
    {0, 1} (zeroed in the hole here), ``mask`` N x 1, 1 = hole.  Returns (output, edges) in
    [0, 1].
    """

    def __init__(
        self, *, residual_blocks: int = 8, dilation: int = 2, init_gain: float = 0.02
    ) -> None:
        super().__init__()
        common = dict(residual_blocks=residual_blocks, dilation=dilation, init_gain=init_gain)
        self.edge = _build_generator("edge", **common)
        self.inpaint = _build_generator("inpaint", **common)

    def predict_edges(self, gray: Tensor, edges: Tensor, mask: Tensor) -> Tensor:
        """G1 on [gray * (1 - m) + m, edges * (1 - m), m] (official ``EdgeModel.forward``)."""
        known = 1 - mask
        return self.edge(torch.cat([gray * known + mask, edges * known, mask], dim=1))

    def fill(self, rgb: Tensor, edges: Tensor, mask: Tensor) -> Tensor:
        """G2 on [rgb * (1 - m) + m, edges] (official ``InpaintingModel.forward``)."""
        return self.inpaint(torch.cat([rgb * (1 - mask) + mask, edges], dim=1))

    def forward(
        self, gray: Tensor, edges: Tensor, rgb: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        predicted = self.predict_edges(gray, edges, mask)
        return self.fill(rgb, predicted, mask), predicted


# --------------------------------------------------------------------------- conventions
def rgb_to_gray(rgb: Tensor) -> Tensor:
    """skimage ``rgb2gray`` in torch: N x 3 x H x W in [0, 1] -> N x 1 x H x W (BT.709)."""
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"rgb_to_gray expects N x 3 x H x W, got {tuple(rgb.shape)}")
    weights = torch.tensor(GRAY_WEIGHTS, dtype=rgb.dtype, device=rgb.device)
    return (rgb * weights.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)


def canny_edges(
    gray: Tensor,
    *,
    sigma: float = 2.0,
    known: Tensor | None = None,
    low_threshold: float | None = None,
    high_threshold: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """skimage ``feature.canny`` on each gray image (CPU, float64), as ``src/dataset.py``.

    Args:
        gray: N x 1 x H x W in [0, 1].
        sigma: Gaussian std (``SIGMA``: 2); 0 draws an integer in 1..4 per image, -1 returns
            no edges (the official special values).
        known: optional N x 1 x H x W, 1 = known pixel: Canny's ``mask=`` argument (the
            official test mode), so the hole neither feeds the smoothing nor gets edges.
        low_threshold, high_threshold: skimage defaults (None: 0.1 and 0.2 for float images).
        generator: RNG for ``sigma == 0``.

    Returns:
        N x 1 x H x W edges in {0, 1}, dtype and device of ``gray``.
    """
    from skimage.feature import canny

    if gray.dim() != 4 or gray.shape[1] != 1:
        raise ValueError(f"canny_edges expects N x 1 x H x W, got {tuple(gray.shape)}")
    if sigma == -1:
        return torch.zeros_like(gray)
    if sigma < 0:
        raise ValueError(f"sigma must be > 0, 0 (random 1..4) or -1 (no edges), got {sigma}")
    images = gray.detach().to("cpu", torch.float64).numpy()[:, 0]  # N x H x W
    regions = None if known is None else (known.detach().cpu()[:, 0] > 0.5).numpy()
    edges = []
    for i, image in enumerate(images):
        s = float(sigma)
        if s == 0:
            s = float(torch.randint(1, 5, (1,), generator=generator).item())
        region = None if regions is None else regions[i]
        found = canny(
            image, sigma=s, low_threshold=low_threshold, high_threshold=high_threshold, mask=region
        )
        edges.append(found)
    stacked = torch.from_numpy(np.stack(edges).astype(np.float64))  # N x H x W
    return stacked.unsqueeze(1).to(device=gray.device, dtype=gray.dtype)


# --------------------------------------------------------------------------- model
class EdgeConnect(InpaintModel):
    """EdgeConnect G1 + G2 with their discriminators, official objective and optimisers.

    Args (official values from ``config.yml.example`` as defaults):
        stage: ``"edge"``, ``"inpaint"``, ``"joint"`` or ``"both"`` (module docstring table).
        residual_blocks: residual blocks per generator (8).
        sigma: Canny ``SIGMA`` (2).
        gan_loss: ``GAN_LOSS``, ``"nsgan"`` | ``"lsgan"`` | ``"hinge"`` (nsgan).
        edge_adv_loss_weight: edge model adversarial weight (1, hard-coded officially).
        fm_loss_weight: ``FM_LOSS_WEIGHT`` (10).
        l1_loss_weight: ``L1_LOSS_WEIGHT`` (1).
        inpaint_adv_loss_weight: ``INPAINT_ADV_LOSS_WEIGHT`` (0.1).
        content_loss_weight: ``CONTENT_LOSS_WEIGHT``, perceptual (0.1).
        style_loss_weight: ``STYLE_LOSS_WEIGHT`` (250).
        lr: ``LR`` (1e-4), d2g_lr: ``D2G_LR`` (0.1), beta1, beta2: ``BETA1``, ``BETA2`` (0, 0.9).
        init_gain: std of the N(0, gain) initialisation (``init_weights``: 0.02).
        vgg: ``"imagenet"`` or ``"random"`` weights of the VGG-19 loss network (built on the
            first loss evaluation, never stored in checkpoints).
    """

    pad_multiple = 4  # two stride-2 convs, then two x2 transposed convs

    def __init__(
        self,
        *,
        stage: Stage = "both",
        residual_blocks: int = 8,
        sigma: float = 2.0,
        gan_loss: Literal["nsgan", "lsgan", "hinge"] = "nsgan",
        edge_adv_loss_weight: float = 1.0,
        fm_loss_weight: float = 10.0,
        l1_loss_weight: float = 1.0,
        inpaint_adv_loss_weight: float = 0.1,
        content_loss_weight: float = 0.1,
        style_loss_weight: float = 250.0,
        lr: float = 1e-4,
        d2g_lr: float = 0.1,
        beta1: float = 0.0,
        beta2: float = 0.9,
        init_gain: float = 0.02,
        vgg: Literal["imagenet", "random"] = "imagenet",
    ) -> None:
        super().__init__()
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {tuple(STAGES)}, got {stage!r}")
        if gan_loss not in _GAN_LOSSES:
            raise ValueError(f"gan_loss must be one of {_GAN_LOSSES}, got {gan_loss!r}")
        if vgg not in ("imagenet", "random"):
            raise ValueError(f"vgg must be 'imagenet' or 'random', got {vgg!r}")
        if not (sigma > 0 or sigma in (0, -1)):
            raise ValueError(f"sigma must be > 0, 0 (random 1..4) or -1 (no edges), got {sigma}")
        self.stage = stage
        self.residual_blocks = int(residual_blocks)
        self.sigma = float(sigma)
        self.gan_loss = gan_loss
        self.edge_adv_loss_weight = float(edge_adv_loss_weight)
        self.fm_loss_weight = float(fm_loss_weight)
        self.l1_loss_weight = float(l1_loss_weight)
        self.inpaint_adv_loss_weight = float(inpaint_adv_loss_weight)
        self.content_loss_weight = float(content_loss_weight)
        self.style_loss_weight = float(style_loss_weight)
        self.lr, self.d2g_lr = float(lr), float(d2g_lr)
        self.betas = (float(beta1), float(beta2))
        self.vgg = vgg

        self.generator = EdgeConnectGenerator(residual_blocks=residual_blocks, init_gain=init_gain)
        self.discriminators = nn.ModuleDict(
            {
                "edge": EdgeConnectDiscriminator(2, use_sigmoid=False),  # [gray, edges]
                "inpaint": EdgeConnectDiscriminator(3, use_sigmoid=False),  # RGB
            }
        )
        for disc in self.discriminators.values():
            _reinit_spectral_discriminator(disc, init_gain)
        self.adversarial = AdversarialLoss(
            "hinge" if gan_loss == "hinge" else ("lsgan" if gan_loss == "lsgan" else "vanilla"),
            average_real_fake=True,  # official: (real + fake) / 2
        )
        self._vgg_loss: EdgeConnectVGGLoss | None = None
        for part in ("edge", "inpaint"):
            trained = part in self.trained_parts
            getattr(self.generator, part).requires_grad_(trained)
            self.discriminators[part].requires_grad_(trained)

    # ------------------------------------------------------------------ stages
    @property
    def trained_parts(self) -> tuple[str, ...]:
        """``("edge",)``, ``("inpaint",)`` or both: the (G, D) pairs this stage trains."""
        return {"edge": ("edge",), "inpaint": ("inpaint",), "joint": ("inpaint",)}.get(
            self.stage, ("edge", "inpaint")
        )

    # ------------------------------------------------------------------ inference
    def inpaint(self, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
        x = (image + 1) / 2  # N x 3 x H x W in [0, 1]
        known = 1 - mask
        x = x * known  # the hole content is never read below (except Canny in training)
        gray = rgb_to_gray(x)
        if not self.training:  # official test: Canny restricted to the known region
            gt_edges = self._canny(image, known)
            out01, edges = self.generator(gray, gt_edges, x, mask)
            return {"output": out01 * 2 - 1, "edges": edges, "gt_edges": gt_edges}
        # training (official train loop): Canny on the whole ground truth
        full_gray = rgb_to_gray((image + 1) / 2)
        gt_edges = self._canny(image, None)
        out: dict[str, Tensor] = {"gray": full_gray, "gt_edges": gt_edges}
        g = self.generator
        if "edge" in self.trained_parts:
            out["edges"] = g.predict_edges(full_gray, gt_edges, mask)
        if self.stage in ("inpaint", "both"):
            out01 = g.fill(x, gt_edges, mask)  # MODEL 2: ground-truth edges
        else:
            if self.stage == "joint":
                with torch.no_grad():  # MODEL 3: G1 is not trained
                    out["edges"] = g.predict_edges(full_gray, gt_edges, mask)
            guide = (out["edges"] * mask + gt_edges * known).detach()
            if self.stage == "edge":  # G2 is frozen: its output is only for display
                with torch.no_grad():
                    out01 = g.fill(x, guide, mask)
            else:
                out01 = g.fill(x, guide, mask)
        out["output"] = out01 * 2 - 1
        return out

    def _canny(self, image: Tensor, known: Tensor | None) -> Tensor:
        # gray in float64 from the image, as rgb2gray on the loaded image
        gray64 = rgb_to_gray((image.detach().to(torch.float64) + 1) / 2)
        return canny_edges(gray64, sigma=self.sigma, known=known).to(image.dtype)

    # ------------------------------------------------------------------ losses
    def _scores(self, disc: str, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Discriminator logits (sigmoid applied for lsgan, as the official sigmoid D)."""
        logits, features = self.discriminators[disc](x)
        return (torch.sigmoid(logits) if self.gan_loss == "lsgan" else logits), features

    def _vgg(self, like: Tensor) -> EdgeConnectVGGLoss:
        if self._vgg_loss is None:  # built lazily: scoring a checkpoint needs no VGG file
            # kept out of the module tree (not in state_dict(), parameters() or checkpoints)
            object.__setattr__(self, "_vgg_loss", edgeconnect_losses(weights=self.vgg))
        self._vgg_loss.to(device=like.device, dtype=like.dtype)
        return self._vgg_loss

    def edge_generator_loss(self, out: dict[str, Tensor]) -> dict[str, Tensor]:
        """Official ``EdgeModel.process``: adversarial + ``FM_LOSS_WEIGHT`` x feature matching
        (unweighted terms; ``total`` weighted)."""
        gray, edges = out["gray"], out["edges"]
        fake_scores, fake_features = self._scores("edge", torch.cat([gray, edges], dim=1))
        with torch.no_grad():
            _, real_features = self._scores("edge", torch.cat([gray, out["gt_edges"]], dim=1))
        adv = self.adversarial.generator_loss(fake_scores)
        fm = feature_matching_loss(real_features, fake_features)
        total = self.edge_adv_loss_weight * adv + self.fm_loss_weight * fm
        return {"edge_adv": adv, "edge_fm": fm, "edge_total": total}

    def inpaint_generator_loss(
        self, image: Tensor, mask: Tensor, out: dict[str, Tensor]
    ) -> dict[str, Tensor]:
        """Official ``InpaintingModel.process`` on [0, 1] tensors (unweighted terms;
        ``inpaint_total`` weighted)."""
        out01, img01 = (out["output"] + 1) / 2, (image + 1) / 2
        fake_scores, _ = self._scores("inpaint", out01)
        adv = self.adversarial.generator_loss(fake_scores)
        l1 = l1_over_hole_fraction(out01, img01, mask)  # mean |out - gt| / mean(mask)
        vgg = self._vgg(out01)(out["output"], image, mask)  # takes [-1, 1], feeds VGG [0, 1]
        total = (
            self.inpaint_adv_loss_weight * adv
            + self.l1_loss_weight * l1
            + self.content_loss_weight * vgg["perceptual"]
            + self.style_loss_weight * vgg["style"]
        )
        return {
            "adv": adv,
            "l1": l1,
            "perceptual": vgg["perceptual"],
            "style": vgg["style"],
            "inpaint_total": total,
        }

    def generator_loss(
        self, image: Tensor, mask: Tensor, out: dict[str, Tensor], step: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        logs: dict[str, Tensor] = {}
        total = image.new_zeros(())
        if "edge" in self.trained_parts:
            logs.update(self.edge_generator_loss(out))
            total = total + logs["edge_total"]
        if "inpaint" in self.trained_parts:
            logs.update(self.inpaint_generator_loss(image, mask, out))
            total = total + logs["inpaint_total"]
        logs["total"] = total
        return total, {k: v.detach() for k, v in logs.items()}

    def discriminator_loss(
        self, image: Tensor, mask: Tensor, out: dict[str, Tensor], step: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        logs: dict[str, Tensor] = {}
        total = image.new_zeros(())
        if "edge" in self.trained_parts:
            gray = out["gray"]
            real, _ = self._scores("edge", torch.cat([gray, out["gt_edges"]], dim=1))
            fake, _ = self._scores("edge", torch.cat([gray, out["edges"].detach()], dim=1))
            logs["d_edge"] = self.adversarial.discriminator_loss(real, fake)
            total = total + logs["d_edge"]
        if "inpaint" in self.trained_parts:
            real, _ = self._scores("inpaint", (image + 1) / 2)
            fake, _ = self._scores("inpaint", (out["output"].detach() + 1) / 2)
            logs["d_inpaint"] = self.adversarial.discriminator_loss(real, fake)
            total = total + logs["d_inpaint"]
        logs["d_total"] = total
        return total, {k: v.detach() for k, v in logs.items()}

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        parts = self.trained_parts
        g_params = [p for part in parts for p in getattr(self.generator, part).parameters()]
        d_params = [p for part in parts for p in self.discriminators[part].parameters()]
        return {
            "generator": torch.optim.Adam(g_params, lr=self.lr, betas=self.betas),
            "discriminator": torch.optim.Adam(d_params, lr=self.lr * self.d2g_lr, betas=self.betas),
        }

    # ------------------------------------------------------------------ checkpoints
    def load_official(
        self, source: str | os.PathLike | Mapping[str, str | os.PathLike]
    ) -> dict[str, int]:
        """Load official checkpoint files into this model (strict, every shape checked).

        Args:
            source: a folder holding ``EdgeModel_gen.pth`` and ``InpaintingModel_gen.pth``
                (and, when present, the ``*_dis.pth`` files), or a mapping from any of
                ``"edge_gen"``, ``"edge_dis"``, ``"inpaint_gen"``, ``"inpaint_dis"`` to a file.

        Returns:
            the ``iteration`` stored in each generator file read.
        """
        converted = load_official_files(source, residual_blocks=self.residual_blocks)
        for part in ("edge", "inpaint"):
            if part in converted["generator"]:
                getattr(self.generator, part).load_state_dict(
                    converted["generator"][part], strict=True
                )
            if part in converted["discriminators"]:
                self.discriminators[part].load_state_dict(
                    converted["discriminators"][part], strict=True
                )
        return converted["iterations"]


def _reinit_spectral_discriminator(disc: nn.Module, gain: float, iterations: int = 15) -> None:
    """Official N(0, gain) weights for a spectral-norm discriminator, then ``u``, ``v`` by
    ``iterations`` power-iteration steps on the new weights (as the parametrization does when
    it is attached)."""
    with torch.no_grad():
        for module in disc.modules():
            params = getattr(module, "parametrizations", None)
            if params is None or "weight" not in params:
                continue
            weight = params.weight.original
            weight.normal_(0.0, gain)
            w_mat = weight.flatten(1)  # C_out x C_in*k*k (plain convs: dim 0)
            sn = params.weight[0]
            u = F.normalize(torch.randn_like(sn._u), dim=0, eps=sn.eps)
            for _ in range(iterations):
                v = F.normalize(w_mat.t() @ u, dim=0, eps=sn.eps)
                u = F.normalize(w_mat @ v, dim=0, eps=sn.eps)
            sn._u.copy_(u)
            sn._v.copy_(v)


# --------------------------------------------------------------------------- converter
def _official_generator_keys(reference: Mapping[str, Any]) -> dict[str, str]:
    """Official key -> our key for a :class:`ResnetGenerator` state dict (legacy SN names)."""
    table = {}
    for key in reference:
        for ours, theirs in (
            ("parametrizations.weight.original", "weight_orig"),
            ("parametrizations.weight.0._u", "weight_u"),
            ("parametrizations.weight.0._v", "weight_v"),
        ):
            if key.endswith(ours):
                table[key[: -len(ours)] + theirs] = key
                break
        else:
            table[key] = key
    return table


def _unwrap(checkpoint: Mapping[str, Any], field: str, what: str) -> Mapping[str, Tensor]:
    """The state dict inside an official file (``{'generator': ...}``), or the mapping itself;
    a ``module.`` prefix (saved from ``nn.DataParallel``) is removed."""
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f"{what}: expected a mapping, got {type(checkpoint).__name__}")
    state = checkpoint[field] if field in checkpoint else checkpoint
    if not isinstance(state, Mapping):
        raise TypeError(f"{what}: {field!r} is a {type(state).__name__}, not a state dict")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


@functools.lru_cache(maxsize=8)
def _reference_shapes(part: str, residual_blocks: int = 8) -> dict[str, tuple[int, ...]]:
    """Key -> shape of our state dict of ``"edge"`` / ``"inpaint"`` generator or
    ``"edge_dis"`` / ``"inpaint_dis"`` discriminator (built once per process; on the CPU, which
    is faster here than a first use of the meta device)."""
    if part.endswith("_dis"):
        module = EdgeConnectDiscriminator(2 if part == "edge_dis" else 3, use_sigmoid=False)
    else:
        module = _build_generator(part, residual_blocks=residual_blocks)
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _check_against(
    state: Mapping[str, Any], reference: Mapping[str, tuple[int, ...]], what: str
) -> None:
    missing = sorted(set(reference) - set(state))
    extra = sorted(set(state) - set(reference))
    if missing or extra:
        raise ValueError(
            f"{what}: key mismatch; missing {len(missing)} {missing[:6]}, "
            f"unexpected {len(extra)} {extra[:6]}"
        )
    for key, shape in reference.items():
        value = state[key]
        if not isinstance(value, Tensor):
            raise TypeError(f"{what}: {key!r} is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != shape:
            raise ValueError(f"{what}: {key!r} has shape {tuple(value.shape)}, expected {shape}")


#: tensors in each official file: generator 70 (edge) / 44 (inpaint); D 15 + 3 aliases
_OFFICIAL_KEY_COUNTS = {"edge_gen": 70, "inpaint_gen": 44, "edge_dis": 18, "inpaint_dis": 18}


def _convert_generator(
    checkpoint: Mapping[str, Any], part: str, residual_blocks: int
) -> dict[str, Tensor]:
    what = f"official {OFFICIAL_FILES[part + '_gen']}"
    state = _unwrap(checkpoint, "generator", what)
    reference = _reference_shapes(part, residual_blocks)
    table = _official_generator_keys(reference)
    _check_against(state, {k: reference[v] for k, v in table.items()}, what)
    if residual_blocks == 8 and len(state) != _OFFICIAL_KEY_COUNTS[part + "_gen"]:
        raise ValueError(f"{what}: expected {_OFFICIAL_KEY_COUNTS[part + '_gen']} tensors")
    bare = {k: v.detach().clone() for k, v in state.items()}
    converted = remap_spectral_norm_keys(bare, "legacy") if part == "edge" else bare
    _check_against(converted, reference, what + " (converted)")
    return converted


def _convert_discriminator(checkpoint: Mapping[str, Any], part: str) -> dict[str, Tensor]:
    what = f"official {OFFICIAL_FILES[part + '_dis']}"
    state = _unwrap(checkpoint, "discriminator", what)
    if len(state) != _OFFICIAL_KEY_COUNTS[part + "_dis"]:
        raise ValueError(
            f"{what}: expected {_OFFICIAL_KEY_COUNTS[part + '_dis']} tensors (conv1..conv5 "
            f"with legacy spectral norm, plus the features.0 aliases), got {len(state)}"
        )
    converted = remap_edgeconnect_discriminator({k: v.detach().clone() for k, v in state.items()})
    _check_against(converted, _reference_shapes(part + "_dis"), what + " (converted)")
    return converted


def convert_official_state_dicts(
    *,
    edge_gen: Mapping[str, Any] | None = None,
    edge_dis: Mapping[str, Any] | None = None,
    inpaint_gen: Mapping[str, Any] | None = None,
    inpaint_dis: Mapping[str, Any] | None = None,
    residual_blocks: int = 8,
) -> dict[str, Any]:
    """Convert the contents of the official ``.pth`` files (as ``torch.load`` returns them).

    Args:
        edge_gen, inpaint_gen: ``{'iteration': int, 'generator': state dict}`` (or a bare
            state dict) of ``EdgeModel_gen.pth`` / ``InpaintingModel_gen.pth``.
        edge_dis, inpaint_dis: ``{'discriminator': state dict}`` (or bare) of the ``_dis``
            files.
        residual_blocks: the generators' block count (8).

    Returns:
        ``{"generator": {"edge": sd, "inpaint": sd}, "discriminators": {"edge": sd,
        "inpaint": sd}, "iterations": {"edge": n, "inpaint": n}}`` with the parts given; each
        ``sd`` loads with ``strict=True`` into ``model.generator.<part>`` /
        ``model.discriminators[<part>]``.  Missing, unexpected or misshaped keys raise
        ``ValueError`` naming them.
    """
    sources = {
        "edge_gen": edge_gen,
        "edge_dis": edge_dis,
        "inpaint_gen": inpaint_gen,
        "inpaint_dis": inpaint_dis,
    }
    if all(v is None for v in sources.values()):
        raise ValueError("nothing to convert: pass at least one official checkpoint")
    result: dict[str, Any] = {"generator": {}, "discriminators": {}, "iterations": {}}
    for part in ("edge", "inpaint"):
        gen = sources[part + "_gen"]
        if gen is not None:
            result["generator"][part] = _convert_generator(gen, part, residual_blocks)
            if isinstance(gen, Mapping) and "iteration" in gen:
                result["iterations"][part] = int(gen["iteration"])
        dis = sources[part + "_dis"]
        if dis is not None:
            result["discriminators"][part] = _convert_discriminator(dis, part)
    return result


def load_official_files(
    source: str | os.PathLike | Mapping[str, str | os.PathLike],
    *,
    residual_blocks: int = 8,
) -> dict[str, Any]:
    """Read official files (``torch.load(weights_only=True)``) and convert them.

    ``source`` is a folder (both ``*_gen.pth`` files required, ``*_dis.pth`` read when present)
    or a mapping ``{"edge_gen" | "edge_dis" | "inpaint_gen" | "inpaint_dis": path}``;
    ``residual_blocks`` as in :func:`convert_official_state_dicts`.
    """
    if isinstance(source, Mapping):
        unknown = sorted(set(source) - set(OFFICIAL_FILES))
        if unknown:
            raise ValueError(f"unknown checkpoint parts {unknown}; use {sorted(OFFICIAL_FILES)}")
        paths = {k: Path(v) for k, v in source.items()}
    else:
        folder = Path(source)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder holding the official .pth files")
        paths = {k: folder / name for k, name in OFFICIAL_FILES.items()}
        missing = [paths[k].name for k in ("edge_gen", "inpaint_gen") if not paths[k].is_file()]
        if missing:
            raise FileNotFoundError(f"{folder} lacks {missing}")
        paths = {k: p for k, p in paths.items() if p.is_file()}
    loaded = {k: load_state_dict(p) for k, p in paths.items()}
    return convert_official_state_dicts(**loaded, residual_blocks=residual_blocks)


# --------------------------------------------------------------------------- entrypoint
@register_model
def edge_connect(
    *,
    stage: Stage = "both",  # MODEL 1 + 2 side by side; official schedule edge -> inpaint -> joint
    residual_blocks: int = 8,  # ResnetBlocks per generator
    sigma: float = 2.0,  # SIGMA of the Canny edge detector
    gan_loss: Literal["nsgan", "lsgan", "hinge"] = "nsgan",  # GAN_LOSS
    edge_adv_loss_weight: float = 1.0,  # edge model adversarial weight (hard-coded 1)
    fm_loss_weight: float = 10.0,  # FM_LOSS_WEIGHT
    l1_loss_weight: float = 1.0,  # L1_LOSS_WEIGHT
    inpaint_adv_loss_weight: float = 0.1,  # INPAINT_ADV_LOSS_WEIGHT
    content_loss_weight: float = 0.1,  # CONTENT_LOSS_WEIGHT (perceptual)
    style_loss_weight: float = 250.0,  # STYLE_LOSS_WEIGHT
    lr: float = 1e-4,  # LR
    d2g_lr: float = 0.1,  # D2G_LR: discriminator lr = lr * d2g_lr
    beta1: float = 0.0,  # BETA1
    beta2: float = 0.9,  # BETA2
    init_gain: float = 0.02,  # init_weights('normal', gain=0.02)
    vgg: Literal["imagenet", "random"] = "imagenet",  # VGG-19 weights of the loss network
) -> EdgeConnect:
    """EdgeConnect (Nazeri et al., ICCVW 2019): Canny-edge generator + edge-guided inpainting."""
    return EdgeConnect(
        stage=stage,
        residual_blocks=residual_blocks,
        sigma=sigma,
        gan_loss=gan_loss,
        edge_adv_loss_weight=edge_adv_loss_weight,
        fm_loss_weight=fm_loss_weight,
        l1_loss_weight=l1_loss_weight,
        inpaint_adv_loss_weight=inpaint_adv_loss_weight,
        content_loss_weight=content_loss_weight,
        style_loss_weight=style_loss_weight,
        lr=lr,
        d2g_lr=d2g_lr,
        beta1=beta1,
        beta2=beta2,
        init_gain=init_gain,
        vgg=vgg,
    )
