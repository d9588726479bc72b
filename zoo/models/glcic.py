"""GLCIC: Globally and Locally Consistent Image Completion.

Paper: Iizuka, Simo-Serra, Ishikawa, "Globally and Locally Consistent Image Completion",
ACM Transactions on Graphics (SIGGRAPH) 2017, 36(4):107.  No arXiv version.

Official code: satoshiiizuka/siggraph2017_inpainting (Lua Torch7, **inference only**,
``inpaint.lua`` + ``utils.lua``; CC BY-NC-SA 4.0): fixes the inference contract (input in
[0, 1] minus the data-set mean, holes set to 0, mask as a 4th channel, H and W multiples of 4,
Sigmoid output pasted into the hole) and the optional post-processing (OpenCV Telea fill, then
``seamlessClone`` centred on the hole bounding box).  Training code does not exist; the PyTorch
port followed for the layers, the objective and the weight layout is otenim/GLCIC-PyTorch
(``models.py`` ``CompletionNetwork`` / ``ContextDiscriminator``, ``train.py``, ``losses.py``,
``utils.py``, ``predict.py``; commit 3f9de13).

Completion network (paper Table 1 = otenim ``CompletionNetwork``, :data:`COMPLETION_TABLE`):
17 convolutions, sizes kept by padding, two stride-2 convolutions down to 1/4 resolution,
dilations 2, 4, 8, 16, two 4x4 stride-1/2 transposed convolutions back up; BN + ReLU after
every layer but the last, which has a Sigmoid.  6,072,131 parameters.  Receptive field 303 px
at the output with true transposed convolutions (the paper's 307 counts each deconvolution as
x2 upsampling + 4x4 conv; :mod:`zoo.layers.receptive_field`).

Context discriminator: :class:`zoo.layers.discriminators.GLCICDiscriminator` (paper: global
branch on the 256^2 image, local branch on a 128^2 patch centred on the hole, 1024-d each,
concatenated -> one logit; 45,063,681 parameters).

Objective (otenim ``train.py``, consistent with the paper's eq. 1-3; images in [0, 1]):

- phase 1, steps ``[0, phase_tc)`` (paper Tc = 90k): completion network only,
  ``L_G = MSE(output * mask, image * mask)`` (mean over all elements, :func:`masked_l2`);
- phase 2, steps ``[phase_tc, phase_tc + phase_td)`` (paper Td = 10k): discriminator only,
  ``L_D = (BCE(D(real), 1) + BCE(D(fake), 0)) / 2``;
- phase 3, joint until the end (paper 500k in total): ``L_D = alpha * (BCE_real + BCE_fake)/2``
  and ``L_G = (MSE + alpha * BCE(D(fake), 1)) / 2``, alpha = 0.0004.
- Adadelta for both networks with torch defaults lr 1.0, rho 0.9, eps 1e-6 (otenim calls
  ``Adadelta(params)``; the paper names ADADELTA, which has no learning rate).
- Real and generated batches go through the discriminator in two separate calls, as otenim,
  so its BatchNorm normalises each with its own statistics.

Deviations from the reference code, all deliberate:

- **BN order**: the paper (Table 1, "every layer but the last is followed by BN and ReLU")
  and this file by default: conv -> BN -> ReLU.  otenim applies the BN **after** the ReLU
  (``bn(act(conv(x)))``); ``bn_after_relu=True`` switches every block to that order, and only
  then do otenim weights (:func:`load_otenim`) reproduce otenim's outputs.  The discriminator
  order is chosen by ``discriminator_arch`` ("paper" vs otenim's "places2"/"celeba").
- **hole fill / mean pixel**: otenim feeds ``x * (1 - m) + mpv * m`` in [0, 1] (``mpv`` = mean
  pixel of its training set, stored in its ``config.json``); the official script feeds
  ``(x - mean) * (1 - m)`` (the same fill, but every pixel centred).  ``subtract_mean=False``
  (default) is otenim's form, ``True`` the official one.  ``mean_pixel`` defaults to the
  ImageNet RGB mean (0.485, 0.456, 0.406): neither Places2 mean is published outside the
  weight files (the official ``.t7`` stores its own ``mean``); load otenim's ``config.json``
  with :func:`load_otenim` or compute a data set's value with :func:`dataset_mean_pixel`.
- **range**: our images are [-1, 1]; the model converts to [0, 1] inside, computes the MSE and
  feeds the discriminator in [0, 1] (so otenim's loss scale and discriminator weights hold),
  and returns ``2 * sigmoid - 1``.
- **local patch**: the paper crops a 128^2 patch centred on the (single) hole; otenim draws a
  random 96^2 area, puts the hole inside it, crops that area for the fake image and an
  independent random area for the real image.  Here the window is centred on the bounding box
  of the hole pixels (of all holes, for multi-hole masks), clipped to the image
  (:func:`zoo.layers.local_patch.hole_windows`, shared with DeepFill v1 and GMCNN), and the
  real image is cropped at the **same** window.
- **discriminator input**: the raw completion-network output (otenim feeds ``output_cn``, not
  the composite); the paper writes ``D(C(x, M_c))`` without saying more.
- **training resolution**: the discriminator's fully connected layers fix its input sizes:
  ``image_size`` (paper 256) and ``local_size`` (default ``image_size // 2``, paper 128).
  Train at ``data.resolution = image_size``; a batch of another size is resized (bilinear,
  antialiased) to ``image_size`` before the discriminator (with a warning), so the model
  still trains, but that is not the paper's setup.
- **Poisson post-processing** (``postprocess="poisson"``, eval mode only; off by default as in
  ``inpaint.lua --postproc false``): as ``inpaint.lua``: the composite quantised to 8 bits by
  truncation, Telea fill (radius 1) of the hole, ``seamlessClone(src=composite,
  dst=Telea result, NORMAL_CLONE)`` at the hole-bbox centre.  Images are padded by one pixel
  (replicate; Telea also fills the pad ring next to a border hole) around the call so that
  holes touching the border stay valid (OpenCV rejects a clone window leaving the image; the
  official script relies on OpenCV zeroing the mask's outer frame); for holes off the border
  the result is identical.  OpenCV
  places the clone at ``centre - size // 2``, so for an even bbox side the cloned content sits
  one pixel up/left of the hole, in the official script and otenim alike; kept.  Channel order
  does not matter (both OpenCV calls work per channel).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo._registry import register_model
from zoo._weights import load_state_dict
from zoo.layers.dilated import DilatedConvBlock
from zoo.layers.discriminators import GLCICDiscriminator, remap_otenim_glcic_discriminator
from zoo.layers.local_patch import crop_windows, hole_windows
from zoo.losses.adversarial import AdversarialLoss
from zoo.losses.reconstruction import masked_l2
from zoo.models._base import InpaintModel

__all__ = [
    "GLCICCompletionNetwork",
    "GLCIC",
    "poisson_blend",
    "dataset_mean_pixel",
    "convert_otenim_state_dict",
    "load_otenim",
]

Tensor = torch.Tensor

#: ImageNet RGB mean in [0, 1]: the documented default fill (see the module docstring)
IMAGENET_MEAN = (0.485, 0.456, 0.406)

#: paper Table 1 = otenim ``CompletionNetwork``: (name, kind, kernel, dilation, stride,
#: output width in units of cnum / 2, i.e. 2 = cnum = 64); "deconv" = 4x4 stride-1/2 transposed
#: conv with padding 1; "out" = conv -> Sigmoid (3 channels)
COMPLETION_TABLE: tuple[tuple[str, str, int, int, int, int], ...] = (
    ("conv1", "conv", 5, 1, 1, 2),
    ("conv2", "conv", 3, 1, 2, 4),
    ("conv3", "conv", 3, 1, 1, 4),
    ("conv4", "conv", 3, 1, 2, 8),
    ("conv5", "conv", 3, 1, 1, 8),
    ("conv6", "conv", 3, 1, 1, 8),
    ("conv7", "conv", 3, 2, 1, 8),
    ("conv8", "conv", 3, 4, 1, 8),
    ("conv9", "conv", 3, 8, 1, 8),
    ("conv10", "conv", 3, 16, 1, 8),
    ("conv11", "conv", 3, 1, 1, 8),
    ("conv12", "conv", 3, 1, 1, 8),
    ("deconv13", "deconv", 4, 1, 2, 4),
    ("conv14", "conv", 3, 1, 1, 4),
    ("deconv15", "deconv", 4, 1, 2, 2),
    ("conv16", "conv", 3, 1, 1, 1),
    ("conv17", "out", 3, 1, 1, 0),
)
#: otenim keys: 17 layers x (weight, bias) + 16 BN x (weight, bias, running_mean, running_var,
#: num_batches_tracked)
OTENIM_GENERATOR_KEYS = 17 * 2 + 16 * 5
_BN_BUFFERS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


# --------------------------------------------------------------------------- completion net
class _DeconvBlock(nn.Module):
    """4x4 stride-2 transposed conv (padding 1, exact x2) -> BN -> ReLU, or -> ReLU -> BN.

    Children ``conv``, ``norm``, ``act``, as :class:`zoo.layers.dilated.DilatedConvBlock`."""

    def __init__(self, in_channels: int, out_channels: int, *, norm_after_act: bool) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1)
        self.norm = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU()
        self.norm_after_act = norm_after_act

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)  # N x C x 2H x 2W
        return self.norm(self.act(x)) if self.norm_after_act else self.act(self.norm(x))


class GLCICCompletionNetwork(nn.Module):
    """The completion network of paper Table 1 (:data:`COMPLETION_TABLE`).

    Args:
        in_channels: 4 = hole-filled RGB + mask (paper, official, otenim).
        cnum: width of ``conv1`` (paper 64); the others scale with it (test-size networks).
        bn_after_relu: otenim's ``bn(relu(conv(x)))`` instead of the paper's conv -> BN -> ReLU.

    Input N x 4 x H x W (H, W multiples of 4), output N x 3 x H x W in [0, 1] (Sigmoid).
    Children ``conv1`` ... ``conv17`` (``deconv13``, ``deconv15``), each with ``conv`` /
    ``norm`` / ``act`` (:class:`~zoo.layers.dilated.DilatedConvBlock`).
    """

    def __init__(self, *, in_channels: int = 4, cnum: int = 64, bn_after_relu: bool = False):
        super().__init__()
        if cnum < 2 or cnum % 2:
            raise ValueError(f"cnum must be a positive even number, got {cnum}")
        self.bn_after_relu = bn_after_relu
        c_in = in_channels
        for name, kind, k, d, s, units in COMPLETION_TABLE:
            c_out = units * cnum // 2
            if kind == "deconv":
                block: nn.Module = _DeconvBlock(c_in, c_out, norm_after_act=bn_after_relu)
            elif kind == "out":
                c_out = 3
                block = DilatedConvBlock(c_in, 3, kernel_size=k, act_layer=nn.Sigmoid)
            else:
                block = DilatedConvBlock(
                    c_in, c_out, kernel_size=k, dilation=d, stride=s,
                    norm_layer=nn.BatchNorm2d, norm_after_act=bn_after_relu,
                )  # fmt: skip
            self.add_module(name, block)
            c_in = c_out

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[-2] % 4 or x.shape[-1] % 4:
            raise ValueError(
                f"expected N x C x H x W with H, W multiples of 4, got {tuple(x.shape)}"
            )
        # channels_last (NHWC) activations: oneDNN runs these convolutions, BN and ReLU
        # without per-layer layout reorders (about 1.2x faster on CPU, same values up to
        # float rounding); the output is returned in the default contiguous layout
        x = x.contiguous(memory_format=torch.channels_last)
        for block in self.children():  # N x 4 x H x W -> ... H/4 ... -> N x 3 x H x W
            x = block(x)
        return x.contiguous()


# --------------------------------------------------------------------------- post-processing
def poisson_blend(image: Tensor, output: Tensor, mask: Tensor, *, telea_radius: int = 1) -> Tensor:
    """``inpaint.lua --postproc``: Telea fill then Poisson ``seamlessClone`` of the composite.

    Args:
        image, output: N x 3 x H x W in [-1, 1] (known pixels, network prediction).
        mask: N x 1 x H x W, 1 = hole.
        telea_radius: ``cv.inpaint`` radius (official 1).
    Returns the blended images in [-1, 1] (8-bit values); samples without hole get the
    composite unchanged.  See the module docstring for the exact OpenCV calls.
    """
    import cv2

    composite = (mask * output + (1 - mask) * image).detach().clamp(-1, 1)
    u8 = ((composite + 1) * 127.5).to(torch.uint8)  # truncation, as Lua's :mul(255):byte()
    u8 = u8.permute(0, 2, 3, 1).cpu().numpy()  # N x H x W x 3
    holes = (mask.detach()[:, 0] > 0.5).cpu().numpy()
    out = composite.clone()
    for i in range(u8.shape[0]):
        if not holes[i].any():
            continue
        rows, cols = np.nonzero(holes[i])
        centre = (int(cols.min() + cols.max()) // 2 + 1, int(rows.min() + rows.max()) // 2 + 1)
        src = cv2.copyMakeBorder(np.ascontiguousarray(u8[i]), 1, 1, 1, 1, cv2.BORDER_REPLICATE)
        msk = np.pad(holes[i].astype(np.uint8) * 255, 1)
        # Telea also fills the pad ring next to border holes, so the clone's boundary there
        # comes from known pixels (as the official zeroed mask frame does), not the prediction
        ring = np.pad(holes[i].astype(np.uint8) * 255, 1, mode="edge")
        dst = cv2.inpaint(src, ring, telea_radius, cv2.INPAINT_TELEA)
        blended = cv2.seamlessClone(src, dst, msk, centre, cv2.NORMAL_CLONE)[1:-1, 1:-1]
        out[i] = torch.from_numpy(blended).permute(2, 0, 1).to(out) / 127.5 - 1.0
    return out.to(output.dtype)


def dataset_mean_pixel(images: Iterable[Tensor]) -> tuple[float, float, float]:
    """otenim's ``mpv``: the mean over images of each image's mean RGB, in [0, 1].

    ``images``: 3 x H x W tensors in [-1, 1] (our contract; otenim reads [0, 1] files)."""
    total, count = torch.zeros(3, dtype=torch.float64), 0
    for img in images:
        if img.dim() != 3 or img.shape[0] != 3:
            raise ValueError(f"expected 3 x H x W images, got {tuple(img.shape)}")
        total += ((img.double() + 1) / 2).mean(dim=(1, 2))
        count += 1
    if count == 0:
        raise ValueError("dataset_mean_pixel needs at least one image")
    mean = total / count
    return float(mean[0]), float(mean[1]), float(mean[2])


# --------------------------------------------------------------------------- model
class GLCIC(InpaintModel):
    """Completion network + context discriminator with the three-phase otenim/paper schedule.

    Args (paper / otenim values as defaults; see :func:`glcic`):
        image_size: global discriminator input side (paper 256; the training resolution).
        local_size: local discriminator input side (None = ``image_size // 2``; paper 128).
        discriminator_arch: "paper" (BN before ReLU) or otenim's "places2" / "celeba".
        bn_after_relu: otenim's BN order in the completion network (paper: False).
        mean_pixel: RGB hole fill in [0, 1] (training-set mean; default ImageNet's).
        subtract_mean: centre the input on ``mean_pixel`` (official script) or not (otenim).
        alpha: adversarial weight (paper and otenim 0.0004).
        phase_tc, phase_td: completion-only and discriminator-only steps (90k, 10k).
        adadelta_lr, adadelta_rho, adadelta_eps: Adadelta settings (torch defaults, otenim).
        postprocess: "none" or "poisson" (eval mode only).
    """

    pad_multiple = 4

    def __init__(
        self,
        *,
        image_size: int = 256,
        local_size: int | None = None,
        discriminator_arch: str = "paper",
        bn_after_relu: bool = False,
        mean_pixel: Sequence[float] = IMAGENET_MEAN,
        subtract_mean: bool = False,
        alpha: float = 4e-4,
        phase_tc: int = 90_000,
        phase_td: int = 10_000,
        adadelta_lr: float = 1.0,
        adadelta_rho: float = 0.9,
        adadelta_eps: float = 1e-6,
        postprocess: str = "none",
    ) -> None:
        super().__init__()
        local_size = image_size // 2 if local_size is None else local_size
        if not 1 <= local_size <= image_size:
            raise ValueError(f"need 1 <= local_size <= image_size, got {local_size}, {image_size}")
        if len(mean_pixel) != 3 or not all(0.0 <= float(v) <= 1.0 for v in mean_pixel):
            raise ValueError(f"mean_pixel must be three values in [0, 1], got {mean_pixel!r}")
        if postprocess not in ("none", "poisson"):
            raise ValueError(f"postprocess must be 'none' or 'poisson', got {postprocess!r}")
        if phase_tc < 0 or phase_td < 0:
            raise ValueError(f"phase lengths must be >= 0, got {phase_tc}, {phase_td}")
        self.generator = GLCICCompletionNetwork(bn_after_relu=bn_after_relu)
        self.discriminators = nn.ModuleDict(
            {"context": GLCICDiscriminator(image_size, local_size, discriminator_arch)}
        )
        mean = torch.tensor([float(v) for v in mean_pixel], dtype=torch.float64).view(1, 3, 1, 1)
        self.register_buffer("mean_pixel", mean, persistent=False)
        self.image_size, self.local_size = image_size, local_size
        self.subtract_mean = bool(subtract_mean)
        self.alpha = float(alpha)
        self.phase_tc, self.phase_td = int(phase_tc), int(phase_td)
        self.adadelta = {
            "lr": float(adadelta_lr),
            "rho": float(adadelta_rho),
            "eps": float(adadelta_eps),
        }
        self.postprocess = postprocess
        self.adversarial = AdversarialLoss("vanilla", average_real_fake=True)  # BCE, (r + f) / 2

    # ------------------------------------------------------------------ inference
    def network_input(self, image: Tensor, mask: Tensor) -> Tensor:
        """N x 4 completion-network input: the hole-filled image in [0, 1] (or centred) + mask."""
        x = (image + 1) / 2
        mean = self.mean_pixel.to(x)
        if self.subtract_mean:
            filled = (x - mean) * (1 - mask)  # inpaint.lua: I - mean, holes set to 0
        else:
            filled = x * (1 - mask) + mean * mask  # otenim: x - x * mask + mpv * mask
        return torch.cat([filled, mask], dim=1)

    def inpaint(self, image: Tensor, mask: Tensor) -> dict[str, Tensor]:
        output = self.generator(self.network_input(image, mask)) * 2 - 1  # [0, 1] -> [-1, 1]
        if self.postprocess == "poisson" and not self.training:
            return {"output": poisson_blend(image, output, mask), "network_output": output}
        return {"output": output}

    # ------------------------------------------------------------------- training
    def phases(self, step: int) -> tuple[bool, bool]:
        if step < self.phase_tc:
            return True, False  # phase 1: completion network only
        if step < self.phase_tc + self.phase_td:
            return False, True  # phase 2: discriminator only
        return True, True  # phase 3: joint

    def _joint(self, step: int) -> bool:
        return step >= self.phase_tc + self.phase_td

    def context_inputs(self, images01: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """(global image, local patch) for the discriminator, both in [0, 1]."""
        size = (self.image_size, self.image_size)
        if tuple(images01.shape[-2:]) != size:
            warnings.warn(
                f"GLCIC's discriminator was built for {size[0]}x{size[1]} images (image_size); "
                f"resizing a {tuple(images01.shape[-2:])} batch. Set model.kwargs.image_size "
                f"to the training resolution to train as the paper.",
                stacklevel=3,
            )
            images01 = F.interpolate(images01, size=size, mode="bilinear", antialias=True)
            mask = F.interpolate(mask, size=size, mode="nearest")
        corners = hole_windows(mask, self.local_size)
        return images01, crop_windows(images01, corners, self.local_size)

    def _score(self, images01: Tensor, mask: Tensor) -> Tensor:
        global_in, local_in = self.context_inputs(images01, mask)
        logits, _ = self.discriminators["context"](global_in, local_in)
        return logits  # N x 1

    def generator_loss(
        self, image: Tensor, mask: Tensor, out: dict[str, Tensor], step: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        fake01 = (out.get("network_output", out["output"]) + 1) / 2
        real01 = (image + 1) / 2
        mse = masked_l2(fake01, real01, mask, hole_weight=1.0, valid_weight=0.0)
        logs = {"mse": mse}
        if self._joint(step):
            adv = self.adversarial.generator_loss(self._score(fake01, mask))
            total = (mse + self.alpha * adv) / 2  # otenim: (loss_cn_1 + alpha * loss_cn_2) / 2
            logs["adv"] = adv
        else:
            total = mse
        logs["total"] = total
        return total, {k: v.detach() for k, v in logs.items()}

    def discriminator_loss(
        self, image: Tensor, mask: Tensor, out: dict[str, Tensor], step: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        fake01 = (out.get("network_output", out["output"]).detach() + 1) / 2
        real_scores = self._score((image + 1) / 2, mask)  # two calls: per-batch BN statistics
        fake_scores = self._score(fake01, mask)
        loss = self.adversarial.discriminator_loss(real_scores, fake_scores)
        if self._joint(step):
            loss = self.alpha * loss  # otenim phase 3: (fake + real) * alpha / 2
        logs = {
            "d_real": self.adversarial.real_loss(real_scores).detach(),
            "d_fake": self.adversarial.fake_loss(fake_scores).detach(),
            "d_total": loss.detach(),
        }
        return loss, logs

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "generator": torch.optim.Adadelta(self.generator.parameters(), **self.adadelta),
            "discriminator": torch.optim.Adadelta(
                self.discriminators.parameters(), **self.adadelta
            ),
        }

    def load_otenim(
        self,
        generator: str | os.PathLike | Mapping[str, Tensor],
        discriminator: str | os.PathLike | Mapping[str, Tensor] | None = None,
        config: str | os.PathLike | None = None,
    ) -> None:
        """Load otenim ``model_cn`` (and ``model_cd``, ``config.json``'s ``mpv``) files.

        Needs ``bn_after_relu=True`` (otenim's BN order) and, for the discriminator, a model
        built with the matching ``discriminator_arch`` and sizes."""
        if not self.generator.bn_after_relu:
            raise ValueError(
                "otenim weights were trained with BN after ReLU: build the model with "
                "bn_after_relu=True (glcic(bn_after_relu=True)) before loading them"
            )
        state = load_otenim(generator, discriminator, config)
        self.generator.load_state_dict(state["generator"], strict=True)
        if "discriminators" in state:
            self.discriminators.load_state_dict(state["discriminators"], strict=True)
        if "mean_pixel" in state:
            self.mean_pixel.copy_(
                torch.tensor(state["mean_pixel"], dtype=torch.float64).view(1, 3, 1, 1)
            )


# --------------------------------------------------------------------------- converters
def _otenim_generator_table() -> dict[str, str]:
    """otenim ``CompletionNetwork`` key -> our key (114 entries)."""
    table = {}
    for name, kind, *_ in COMPLETION_TABLE:
        number = name.removeprefix("deconv").removeprefix("conv")
        for p in ("weight", "bias"):
            table[f"{name}.{p}"] = f"{name}.conv.{p}"
        if kind != "out":
            for p in _BN_BUFFERS:
                table[f"bn{number}.{p}"] = f"{name}.norm.{p}"
    return table


def _check_keys(got: Iterable[str], expected: Iterable[str], what: str) -> None:
    got, expected = set(got), set(expected)
    missing, extra = sorted(expected - got), sorted(got - expected)
    if missing or extra:
        raise ValueError(
            f"{what}: key mismatch; missing {len(missing)} {missing[:6]}, "
            f"unexpected {len(extra)} {extra[:6]}"
        )


def _check_shapes(state: Mapping[str, Tensor], reference: Mapping[str, Tensor], what: str) -> None:
    for key, ref in reference.items():
        value = state[key]
        if not isinstance(value, Tensor):
            raise TypeError(f"{what}: {key!r} is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != tuple(ref.shape):
            raise ValueError(
                f"{what}: {key!r} has shape {tuple(value.shape)}, expected {tuple(ref.shape)}"
            )


def convert_otenim_state_dict(
    generator: Mapping[str, Tensor], discriminator: Mapping[str, Tensor] | None = None
) -> dict[str, dict[str, Tensor]]:
    """otenim state dicts -> ``{"generator": ..., "discriminators": ...}`` for :class:`GLCIC`.

    ``generator``: a bare ``CompletionNetwork`` state dict (``conv1.weight``, ``bn1.*``, ...,
    ``deconv13.*``, ..., ``conv17.*``; 114 tensors, or 98 from torch < 0.4.1 without
    ``num_batches_tracked``, which is then set to 0).  ``discriminator``: a bare
    ``ContextDiscriminator`` state dict (``model_ld.*``, ``model_gd.*``, ``linear1.*``); its
    architecture (``places2`` when ``model_gd.conv6`` exists, else ``celeba``) and input sizes
    are read from the tensors.  Keys, counts and every shape are checked against freshly built
    modules.  The generator runs correctly only with ``bn_after_relu=True``.
    """
    if not isinstance(generator, Mapping):
        raise TypeError(f"expected a state dict mapping, got {type(generator).__name__}")
    w1 = generator.get("conv1.weight")
    if not isinstance(w1, Tensor) or w1.dim() != 4:
        raise ValueError("otenim generator: 'conv1.weight' missing or not a 4-D tensor")
    cnum = int(w1.shape[0])
    table = _otenim_generator_table()
    src = dict(generator)
    if not any(k.endswith("num_batches_tracked") for k in src):
        for k in table:
            if k.endswith("num_batches_tracked"):
                src[k] = torch.zeros((), dtype=torch.long)
    _check_keys(src, table, "otenim generator")
    if len(src) != OTENIM_GENERATOR_KEYS:
        raise ValueError(
            f"otenim generator must have {OTENIM_GENERATOR_KEYS} tensors, got {len(src)}"
        )
    g_state = {table[k]: v.detach().clone() for k, v in src.items()}
    with torch.device("meta"):
        g_ref = GLCICCompletionNetwork(in_channels=int(w1.shape[1]), cnum=cnum).state_dict()
    _check_keys(g_state, g_ref, "converted generator")
    _check_shapes(g_state, g_ref, "otenim generator")
    result = {"generator": g_state}
    if discriminator is not None:
        result["discriminators"] = _convert_otenim_discriminator(discriminator)
    return result


def _convert_otenim_discriminator(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    arch = "places2" if "model_gd.conv6.weight" in state else "celeba"
    try:
        remapped = remap_otenim_glcic_discriminator(state)
        local_in = remapped["local_branch.fc.weight"].shape[1]
        global_in = remapped["global_branch.fc.weight"].shape[1]
        widest = remapped["local_branch.conv5.weight"].shape[0]
        cnum = int(remapped["local_branch.conv1.weight"].shape[0])
        fc = int(remapped["head.weight"].shape[1]) // 2
    except KeyError as exc:
        raise ValueError(f"otenim discriminator: missing key {exc}") from exc
    sides = []
    for features, halvings in ((local_in, 5), (global_in, 6 if arch == "places2" else 5)):
        side = round((features / widest) ** 0.5)
        if side * side * widest != features:
            raise ValueError(
                f"otenim discriminator: cannot read a square input size from {features}"
            )
        sides.append(side * 2**halvings)
    with torch.device("meta"):
        ref = GLCICDiscriminator(sides[1], sides[0], arch, cnum=cnum, fc_features=fc).state_dict()
    _check_keys(remapped, ref, f"otenim discriminator ({arch})")
    _check_shapes(remapped, ref, f"otenim discriminator ({arch})")
    return {f"context.{k}": v.detach().clone() for k, v in remapped.items()}


def load_otenim(
    generator: str | os.PathLike | Mapping[str, Tensor],
    discriminator: str | os.PathLike | Mapping[str, Tensor] | None = None,
    config: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Read (``torch.load(weights_only=True)``) and convert otenim files; with ``config`` (its
    ``config.json``) the result also holds ``"mean_pixel"`` (``mpv``)."""

    def read(source):
        return source if isinstance(source, Mapping) else load_state_dict(source)

    result: dict[str, Any] = dict(
        convert_otenim_state_dict(
            read(generator), None if discriminator is None else read(discriminator)
        )
    )
    if config is not None:
        with open(config) as fh:
            mpv = json.load(fh).get("mpv")
        if not isinstance(mpv, list) or len(mpv) != 3:
            raise ValueError(f"{config}: 'mpv' must be a list of three numbers, got {mpv!r}")
        result["mean_pixel"] = tuple(float(v) for v in mpv)
    return result


# --------------------------------------------------------------------------- entrypoint
@register_model
def glcic(
    *,
    image_size: int = 256,  # paper: 256^2 training crops = global discriminator input
    local_size: int | None = None,  # None = image_size // 2 (paper 128)
    discriminator_arch: str = "paper",  # "paper" | otenim "places2" | "celeba"
    bn_after_relu: bool = False,  # paper order; True = otenim (needed for its weights)
    mean_pixel: tuple[float, float, float] = IMAGENET_MEAN,  # hole fill, RGB in [0, 1]
    subtract_mean: bool = False,  # False = otenim input; True = inpaint.lua (I - mean)
    alpha: float = 4e-4,  # paper / otenim --alpha
    phase_tc: int = 90_000,  # paper Tc / otenim --steps_1
    phase_td: int = 10_000,  # paper Td / otenim --steps_2 (then joint, 400k more)
    adadelta_lr: float = 1.0,  # torch default, otenim Adadelta(params)
    adadelta_rho: float = 0.9,  # torch / Torch7 optim default
    adadelta_eps: float = 1e-6,  # torch / Torch7 optim default
    postprocess: str = "none",  # "poisson" = inpaint.lua --postproc (eval only)
) -> GLCIC:
    """GLCIC (Iizuka et al., SIGGRAPH 2017): dilated completion net + global/local discriminator."""
    return GLCIC(
        image_size=image_size, local_size=local_size, discriminator_arch=discriminator_arch,
        bn_after_relu=bn_after_relu, mean_pixel=mean_pixel, subtract_mean=subtract_mean,
        alpha=alpha, phase_tc=phase_tc, phase_td=phase_td, adadelta_lr=adadelta_lr,
        adadelta_rho=adadelta_rho, adadelta_eps=adadelta_eps, postprocess=postprocess,
    )  # fmt: skip
