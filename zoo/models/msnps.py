"""MSNPS: a Context-Encoder content network refined by multi-scale neural patch synthesis.

Paper: Yang, Lu, Lin, Shechtman, Wang, Li, "High-Resolution Image Inpainting using Multi-Scale
Neural Patch Synthesis", CVPR 2017, arXiv 1611.09969 (Sec. 3: joint loss ``E = E_c + alpha E_t
+ beta Upsilon``, content term ``E_c`` to the content network's prediction, texture term ``E_t``
on neural patches of VGG-19 (paper: relu3_1 and relu4_1), TV ``Upsilon``; Sec. 3.2: solved
coarse to fine with L-BFGS, the previous scale's result upsampled as the initialisation).

Official code followed: leehomyc/Faster-High-Res-Neural-Inpainting (Lua Torch7, master), the
"faster" release: ``run_content_network.lua`` (content net ``models/imagenet_inpaintCenter.t7``,
``fineSize=128``, ``overlapPred=4``), ``run_texture_optimization.lua`` +
``transfer_CNNMRF_wrapper.lua`` (parameters: 3 scales, factor 0.5, 100 iterations each, max size
512; MRF at loadcaffe layer 21 = relu4_1, weight 1e-4, 3 x 3 patches, stride 2; content at layer
23 = relu4_2, weight 20; TV 1e-4; initialised from the content result; ``mylib/myoptimizer.lua``
= L-BFGS with 25 corrections, no line search, step 1), ``blend.lua``.

Content network: exactly the Context Encoder centre network (the official content model is the
Context Encoder ImageNet model ``imagenet_inpaintCenter.t7``, run through the CE interface; the
repository does not say whether the paper's own content net differs; the README command
``nBottleneck=4000`` is assumed, 71,124,544 parameters).  :class:`MSNPS` is a
:class:`~zoo.models.context_encoder.ContextEncoder` (generator, discriminator, L2 +
adversarial objective, optimisers: all inherited; the paper trains its content net with L2 +
adversarial on ImageNet and Paris StreetView), so the generic training loop trains the
content network, and ``forward`` in training mode runs only the content network.

Texture step (``inpaint`` in eval mode, :meth:`MSNPS.texture_refine`), per image:

1. ``c`` = the content network's prediction pasted into the hole (known pixels from the
   input); ``texture_scales`` sizes ``ceil(H / 2^k)``, coarse to fine;
2. at each scale: ``c_s`` = ``c`` resized (bilinear), ``m_s`` = the mask resized (a cell is a
   hole when any of its pixels is); the start is ``c_s`` (first scale) or the previous result
   upsampled (bilinear), with the known pixels reset to ``c_s``;
3. the hole pixels minimise ``content_weight * MSE(phi_relu4_2(x), phi_relu4_2(c_s))
   + mrf_weight * sum_l E_mrf(phi_l(x)) + tv_weight * TV(x)`` with
   :func:`zoo.losses.mrf.content_loss`, :func:`zoo.losses.mrf.mrf_loss` (query patches centred
   in the hole at stride ``mrf_stride``, each pulled to its nearest, by normalised
   cross-correlation, among the source patches: windows of ``phi_l(c_s)`` lying entirely in the
   known region, stride ``mrf_stride``) and :func:`zoo.losses.mrf.msnps_tv_loss`, by
   ``torch.optim.LBFGS`` (``texture_iters`` iterations, history 25, lr 1, no line search: the
   official optimiser's settings);
4. the result is the image in [-1, 1], clamped.

Units.  The official code optimises, and measures TV on, the Caffe VGG's input (BGR, 0 .. 256,
minus the mean pixel).  Here the variables and the TV live in the torchvision VGG's input units,
``((x + 1) / 2 - mean) / std``: if the two VGG-19s agree up to that input scaling (a ReLU
network is positively homogeneous apart from its biases), every term of the official energy is
the same multiple of ours, so the official weights keep their balance and L-BFGS (invariant to
that common factor after its first step) would take the same path.  Measuring TV in Caffe units
with the torchvision VGG would make it about ``(255 * 0.226)^2 ~ 3300`` times stronger
relative to the feature terms.

Deviations, all deliberate:

- **resolution**: everything runs at the benchmark's 128 x 128 (scales 32, 64, 128); the
  official demo runs the content net on a 128 downscale of a 512 image and the texture step at
  128, 256, 512.  At 128 the relu4_1 map of the two coarse scales (4 x 4, 8 x 8) has no 3 x 3
  window outside a 64 x 64 hole; a texture layer without any known window at a scale is left
  out of that scale's energy (content + TV remain).
- **VGG-19**: torchvision's ImageNet weights (``vgg19-dcbb9e9d.pth``, RGB, ImageNet mean/std),
  not the Caffe model (BGR, mean-subtracted 0..255) of the official code; feature scales differ,
  so the official weights (20, 1e-4, 1e-4) do not balance the terms exactly as there.
- **variables**: only the hole pixels are optimised (the official code optimises every pixel,
  then ``blend.lua`` pastes the known pixels back).
- **energy**: autograd of explicit energies; the official code hand-writes the MRF gradient
  (``s_NN - q`` averaged over overlapping patches, not the gradient of any scalar, with the
  loss value reported as 0), matches against 3 x 3 rotated / scaled copies of a source image
  whose hole is overwritten with rows copied from above and below (a fixed box at 512), and
  keeps the nearest-patch indices from the first iteration of each scale.  Here the sources
  are the known-region windows of the content result, without rotated / scaled copies, and the
  nearest patches are recomputed at every evaluation (the paper's / CNNMRF's behaviour).
- **iterations**: ``texture_iters`` defaults to a small CPU-friendly 10 per scale; the official
  value is 100.  ``texture_iters=0`` turns the texture step off (content network only).
- ``texture_layers`` defaults to the released code's ``("relu4_1",)``; the paper's
  ``("relu3_1", "relu4_1")`` is an option.
- **content input**: the content network inherits the Context Encoder interface of this
  project: every hole pixel gets the CE constants (``run_content_network.lua`` blanks only the
  inner 56^2 of the central 64^2 and lets the net see the 4-px band); see
  :mod:`zoo.models.context_encoder`.  In eval mode its BN uses the running statistics, as the
  official ``modelG:evaluate()`` (the README's advice to feed a batch of 32 has no effect on
  eval-mode BN and is not reproduced).
- a training batch needs N > 1 (BN on the 1 x 1 bottleneck), as in the official code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from zoo._registry import register_model
from zoo.layers.vgg import VGGFeatures
from zoo.losses.mrf import content_loss, mrf_loss, msnps_tv_loss
from zoo.models.context_encoder import ContextEncoder

__all__ = ["MSNPS"]

Tensor = torch.Tensor
VGGWeights = Literal["imagenet", "random"]


def _resize(x: Tensor, size: int) -> Tensor:
    """Bilinear resize of N x C x H x W to ``size`` x ``size`` (identity at the same size)."""
    if tuple(x.shape[-2:]) == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def _hole_grid(mask: Tensor, size: Sequence[int]) -> Tensor:
    """Mask at a coarser grid: a cell is a hole (1) when any pixel it covers is."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    return F.adaptive_max_pool2d(mask, tuple(size))


def scale_sizes(size: int, scales: int) -> list[int]:
    """Side of each scale, coarse to fine: ``ceil(size / 2^k)``, k = scales-1 .. 0."""
    return [math.ceil(size * 0.5 ** (scales - 1 - s)) for s in range(scales)]


class MSNPS(ContextEncoder):
    """Context-Encoder content network + multi-scale neural patch synthesis (module docstring).

    Args (official values as defaults unless noted):
        texture_iters: L-BFGS iterations per scale (official 100; default 10 for CPU runs;
            0 = content network only).
        texture_scales: number of scales, factor 2 (3).
        texture_layers: VGG-19 layers of the MRF term (released code relu4_1; paper + relu3_1).
        content_layer: VGG-19 layer of the content term (relu4_2).
        content_weight, mrf_weight, tv_weight: 20, 1e-4 (each MRF layer), 1e-4.
        patch_size: neural patch side (3).
        mrf_stride: stride of query and source patches (2, both official strides).
        lbfgs_history: L-BFGS corrections (nCorrection 25).
        vgg: ``"imagenet"`` (torchvision ``vgg19-dcbb9e9d.pth`` from the torch cache) or
            ``"random"`` (smoke tests only); loaded on the first texture step.
        **content_kwargs: the content network's :class:`ContextEncoder` arguments (centre
            variant, conv bottleneck).
    """

    def __init__(
        self,
        *,
        texture_iters: int = 10,
        texture_scales: int = 3,
        texture_layers: Sequence[str] = ("relu4_1",),
        content_layer: str = "relu4_2",
        content_weight: float = 20.0,
        mrf_weight: float = 1e-4,
        tv_weight: float = 1e-4,
        patch_size: int = 3,
        mrf_stride: int = 2,
        lbfgs_history: int = 25,
        vgg: VGGWeights = "imagenet",
        **content_kwargs: float | int | bool | str,
    ) -> None:
        super().__init__(variant="center", bottleneck="conv", **content_kwargs)
        if texture_iters < 0 or texture_scales < 1:
            raise ValueError(
                f"need texture_iters >= 0 and texture_scales >= 1, got {texture_iters}, "
                f"{texture_scales}"
            )
        if isinstance(texture_layers, str) or len(texture_layers) == 0:
            raise ValueError("texture_layers must be a non-empty sequence such as ('relu4_1',)")
        if vgg not in ("imagenet", "random"):
            raise ValueError(f"vgg must be 'imagenet' or 'random', got {vgg!r}")
        if patch_size < 1 or mrf_stride < 1 or lbfgs_history < 1:
            raise ValueError("patch_size, mrf_stride and lbfgs_history must be positive")
        self.texture_iters = int(texture_iters)
        self.texture_scales = int(texture_scales)
        self.texture_layers = tuple(texture_layers)
        self.content_layer = content_layer
        self.texture_weights = (float(content_weight), float(mrf_weight), float(tv_weight))
        self.patch_size, self.mrf_stride = int(patch_size), int(mrf_stride)
        self.lbfgs_history = int(lbfgs_history)
        self.vgg = vgg
        # built on first use and kept out of the module tree (never in checkpoints)
        self._texture_net: list[VGGFeatures] = []

    # ---------------------------------------------------------------- inference
    def inpaint(self, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
        out = super().inpaint(image, mask)  # content network: output = CE result
        if self.training or self.texture_iters == 0:
            return out
        content = mask * out["output"] + (1 - mask) * image  # hole: content net; known: input
        refined = self.texture_refine(content, mask)
        return {"output": refined, "content": out["output"], "prediction": out["prediction"]}

    def texture_network(self, like: Tensor) -> VGGFeatures:
        """The frozen VGG-19 (built, and ImageNet weights loaded, on the first call), on the
        device and dtype of ``like``; its tensors are never inference tensors."""
        with torch.inference_mode(False):
            if not self._texture_net:
                layers = tuple(dict.fromkeys((*self.texture_layers, self.content_layer)))
                self._texture_net.append(
                    VGGFeatures(
                        "vgg19", layers, weights=self.vgg, input_range=(0, 1), normalize="imagenet"
                    )
                )
            return self._texture_net[0].to(device=like.device, dtype=like.dtype)

    def texture_refine(self, content: Tensor, mask: Tensor) -> Tensor:
        """Multi-scale texture optimisation of the hole of ``content`` (N x 3 x H x W)."""
        with torch.inference_mode(False), torch.enable_grad():
            content, mask = content.detach().clone(), mask.detach().clone()
            vgg = self.texture_network(content)
            results = [
                self._refine_one(vgg, content[n : n + 1], mask[n : n + 1])
                for n in range(content.shape[0])
            ]
        return torch.cat(results).clamp(-1.0, 1.0)

    def _refine_one(self, vgg: VGGFeatures, content: Tensor, mask: Tensor) -> Tensor:
        x = None
        for size in scale_sizes(content.shape[-1], self.texture_scales):
            c_s = _resize(content, size)  # 1 x 3 x s x s
            m_s = _hole_grid(mask, (size, size))  # 1 x 1 x s x s
            start = c_s if x is None else _resize(x, size)
            x = self._optimise_scale(vgg, m_s * start + (1 - m_s) * c_s, c_s, m_s)
        return x

    def texture_energy(
        self, vgg: VGGFeatures, x: Tensor, reference: dict[str, Tensor], masks: dict[str, Tensor]
    ) -> dict[str, Tensor]:
        """The weighted terms of the joint energy of image ``x`` (1 x 3 x s x s, [-1, 1]).

        ``reference``: VGG features of the scale's content image (content target and MRF
        source); ``masks``: the hole at each texture layer's grid, for the layers used.
        """
        content_weight, mrf_weight, tv_weight = self.texture_weights
        feats = vgg(x)
        terms = {
            "content": content_weight
            * content_loss(feats[self.content_layer], reference[self.content_layer]),
            "tv": tv_weight * msnps_tv_loss(vgg.input_transform(x)),  # VGG input units
        }
        for layer, m in masks.items():
            terms[f"mrf_{layer}"] = mrf_weight * mrf_loss(
                feats[layer],
                m,
                source=reference[layer],
                source_mask=m,
                patch_size=self.patch_size,
                stride=self.mrf_stride,
                source_stride=self.mrf_stride,
            )
        return terms

    def texture_masks(self, reference: dict[str, Tensor], mask: Tensor) -> dict[str, Tensor]:
        """Hole grids of the texture layers that have a known source window at this scale."""
        masks = {}
        k, s = self.patch_size, self.mrf_stride
        for layer in self.texture_layers:
            m = _hole_grid(mask, reference[layer].shape[-2:])
            if min(m.shape[-2:]) < k or not bool(m.any()):
                continue
            if bool((F.max_pool2d(m, k, stride=s) < 0.5).any()):  # some window fully known
                masks[layer] = m
        return masks

    def _optimise_scale(self, vgg: VGGFeatures, start: Tensor, c_s: Tensor, m_s: Tensor) -> Tensor:
        if self.texture_iters == 0 or not bool(m_s.any()):
            return start.detach()
        with torch.no_grad():
            reference = {k: v.detach() for k, v in vgg(c_s).items()}
        masks = self.texture_masks(reference, m_s)
        known = c_s * (1 - m_s)
        # variables in the VGG's input units: u = x * gain + offset per channel
        offset = vgg.input_transform(torch.zeros_like(c_s[:, :, :1, :1]))  # 1 x 3 x 1 x 1
        gain = vgg.input_transform(torch.ones_like(offset)) - offset
        # contiguous: L-BFGS flattens the gradient with .view(-1) (channels_last input breaks it)
        u = vgg.input_transform(start).detach().clone(memory_format=torch.contiguous_format)
        u.requires_grad_(True)

        def image_of(v: Tensor) -> Tensor:
            return known + m_s * (v - offset) / gain  # only hole pixels are variables

        optimizer = torch.optim.LBFGS(
            [u],
            lr=1.0,
            max_iter=self.texture_iters,
            history_size=self.lbfgs_history,
            tolerance_grad=0.0,
            tolerance_change=0.0,
            line_search_fn=None,
        )

        def closure() -> Tensor:
            optimizer.zero_grad()
            energy = sum(self.texture_energy(vgg, image_of(u), reference, masks).values())
            energy.backward()
            return energy

        optimizer.step(closure)
        return image_of(u).detach()


@register_model
def msnps(
    *,
    texture_iters: int = 10,  # official 100 per scale; small default for CPU benchmarks
    texture_scales: int = 3,  # official num_res 3 (factor 0.5)
    texture_layers: tuple[str, ...] = ("relu4_1",),  # released code (layer 21); paper + relu3_1
    content_layer: str = "relu4_2",  # official content layer 23
    content_weight: float = 20.0,  # official 2e1
    mrf_weight: float = 1e-4,  # official, per MRF layer
    tv_weight: float = 1e-4,  # official
    patch_size: int = 3,  # official mrf_patch_size
    mrf_stride: int = 2,  # official mrf_synthesis_stride = mrf_sample_stride = 2
    lbfgs_history: int = 25,  # official nCorrection
    vgg: VGGWeights = "imagenet",  # "random": smoke runs only
    n_bottleneck: int = 4000,  # content net = CE ImageNet model (README nBottleneck=4000)
    wtl2: float = 0.999,  # content net objective: CE L2 weight (paper: L2 + adversarial)
    overlap_pred: int = 4,  # run_content_network.lua overlapPred=4
    overlap_l2_weight: float = 10.0,  # CE overlapL2Weight
    lr_g: float = 2e-3,  # CE Lua: 10 x opt.lr for the generator
    lr_d: float = 2e-4,  # CE Lua: opt.lr
    beta1: float = 0.5,  # CE opt.beta1
    beta2: float = 0.999,  # optim.adam default
) -> MSNPS:
    """MSNPS (Yang et al., CVPR 2017): CE content net + multi-scale neural patch synthesis."""
    return MSNPS(
        texture_iters=texture_iters,
        texture_scales=texture_scales,
        texture_layers=texture_layers,
        content_layer=content_layer,
        content_weight=content_weight,
        mrf_weight=mrf_weight,
        tv_weight=tv_weight,
        patch_size=patch_size,
        mrf_stride=mrf_stride,
        lbfgs_history=lbfgs_history,
        vgg=vgg,
        n_bottleneck=n_bottleneck,
        wtl2=wtl2,
        overlap_pred=overlap_pred,
        overlap_l2_weight=overlap_l2_weight,
        lr_g=lr_g,
        lr_d=lr_d,
        beta1=beta1,
        beta2=beta2,
    )
