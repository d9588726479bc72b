"""Frozen VGG-16 / VGG-19 feature stacks for the perceptual, style and ID-MRF losses.

Paper: Simonyan, Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015 (arXiv 1409.1556), configurations D (VGG-16) and E (VGG-19).

Layer order and state-dict keys are torchvision's (pytorch/vision ``torchvision/models/vgg.py``,
``cfgs["D"]`` / ``cfgs["E"]`` through ``make_layers`` without batch norm): ``features.<i>`` is a
3x3 convolution (padding 1), a ReLU or a 2x2 max pool, so ``features.<i>.weight`` /
``features.<i>.bias`` of the ImageNet files ``vgg16-397923af.pth`` / ``vgg19-dcbb9e9d.pth`` load
unchanged.  Layers are named in the usual way, ``conv<b>_<k>``, ``relu<b>_<k>`` (the ReLU after
``conv<b>_<k>``) and ``pool<b>`` (the pool closing block ``b``)::

    VGG-16: relu1_1 = features.1, pool1 = 4, pool2 = 9, relu3_3 = 15, pool3 = 16
    VGG-19: relu1_1 = 1, relu2_1 = 6, relu2_2 = 8, relu3_1 = 11, relu3_4 = 17, relu4_1 = 20,
            relu4_4 = 26, relu5_1 = 29, relu5_2 = 31

Losses that use these features (``zoo/losses/perceptual.py``, ``zoo/losses/id_mrf.py``) follow
official code that slices the same Sequential: NVIDIA/partialconv ``models/loss.py``
(``features[0:5]``, ``[5:10]``, ``[10:17]`` = pool1..pool3), knazeri/edge-connect
``src/loss.py`` (``VGG19``: one slice per ReLU), Zhaoyi-Yan/Shift-Net_pytorch ``util/util.py``
(``VGG16FeatureExtractor``, pool1..pool3), shepnerd/inpainting_gmcnn ``pytorch/model/layer.py``
(``VGG19FeatLayer``).  Note that GMCNN's own layer names count convolutions *and* ReLUs, so its
``'relu3_2'`` / ``'relu4_2'`` are the standard ``relu3_1`` / ``relu4_1`` used here.

Input conversion is explicit.  Images in this project are in [-1, 1]; ``input_range`` is the
range the official code feeds its VGG (our image is mapped affinely onto it) and ``normalize``
what it then subtracts / divides:

=================  ===============  ==================  =====================================
official code      ``input_range``  ``normalize``       feeds
=================  ===============  ==================  =====================================
PartialConv        ``(0, 1)``       ``"imagenet"``      ``((x + 1) / 2 - mean) / std``
EdgeConnect        ``(0, 1)``       ``"none"``          ``(x + 1) / 2``
Shift-Net          ``(-1, 1)``      ``"none"``          ``x``
GMCNN (PyTorch)    ``(0, 1)``       ``"imagenet_mean"`` ``(x + 1) / 2 - mean`` (no std)
=================  ===============  ==================  =====================================

with the torchvision ImageNet statistics mean = (0.485, 0.456, 0.406), std = (0.229, 0.224,
0.225), defined on [0, 1] (so ``normalize != "none"`` requires ``input_range == (0, 1)``).

Weights: ``weights="imagenet"`` loads the torchvision file from ``$TORCH_HOME/hub/checkpoints``
through :func:`zoo._weights.require_checkpoint` (nothing is downloaded; a missing file raises
:class:`zoo._weights.MissingWeightsError` naming the file and the folder) with
``torch.load(weights_only=True)``.  The file may be the full torchvision checkpoint
(``features.*`` and ``classifier.*``) or a features-only extract, keyed either ``features.<i>.*``
or ``<i>.*`` (``model.features.state_dict()``).  ``weights="random"`` is a seeded
initialisation (torchvision's: Kaiming-normal, fan-out, zero bias) for tests and weight-less
runs; it sets ``pretrained = False`` so reports can mark numbers computed with it.

Deliberate differences from the official loss code:

- only the layers up to the deepest requested one are built (and loaded);
- ReLUs are not in-place, so a requested ``conv*`` output is not overwritten by its ReLU;
- the module stays in eval mode and its parameters keep ``requires_grad=False`` whatever the
  parent does with ``train()``; gradients still flow to the *input*.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
import torch.nn as nn

from zoo._weights import TORCHVISION_FILES, load_state_dict, require_checkpoint

__all__ = [
    "VGG_CONFIGS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VGGFeatures",
    "layer_names",
    "layer_index",
    "features_state_dict",
]

Tensor = torch.Tensor
Arch = Literal["vgg16", "vgg19"]
Normalize = Literal["imagenet", "imagenet_mean", "none"]

#: torchvision ``cfgs`` D (VGG-16) and E (VGG-19): conv widths, ``"M"`` = 2x2 max pool
VGG_CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M")
    + (512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M")
    + (512, 512, 512, 512, "M"),
}

#: torchvision ImageNet statistics, for images in [0, 1]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names(arch: Arch) -> list[str]:
    """Names of ``features.0``, ``features.1``, ... of torchvision's ``arch`` in order."""
    if arch not in VGG_CONFIGS:
        raise ValueError(f"arch must be one of {sorted(VGG_CONFIGS)}, got {arch!r}")
    names: list[str] = []
    block, k = 1, 0
    for v in VGG_CONFIGS[arch]:
        if v == "M":
            names.append(f"pool{block}")
            block, k = block + 1, 0
        else:
            k += 1
            names += [f"conv{block}_{k}", f"relu{block}_{k}"]
    return names


def layer_index(arch: Arch, name: str) -> int:
    """Index ``i`` of ``features.<i>`` for a layer name (``"relu3_4"`` exists in VGG-19 only)."""
    names = layer_names(arch)
    if name not in names:
        raise ValueError(f"{arch} has no layer {name!r}; valid names: {', '.join(names)}")
    return names.index(name)


def _build_features(arch: Arch, depth: int) -> nn.Sequential:
    """torchvision's ``features`` Sequential truncated to its first ``depth`` modules."""
    layers: list[nn.Module] = []
    in_ch = 3
    for v in VGG_CONFIGS[arch]:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_ch, int(v), kernel_size=3, padding=1), nn.ReLU()]
            in_ch = int(v)
    return nn.Sequential(*layers[:depth])


def features_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The ``features`` part of a VGG state dict, keyed ``<i>.weight`` / ``<i>.bias``.

    Accepts a full torchvision checkpoint (``features.*`` and ``classifier.*``), a
    features-only extract keyed ``features.<i>.*``, or ``model.features.state_dict()``
    (``<i>.*``).  Anything else is a ``ValueError``.
    """
    if not isinstance(state, Mapping):
        raise ValueError(f"expected a state dict (mapping), got {type(state).__name__}")
    prefixed = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    if prefixed:
        return prefixed
    bare = {k: v for k, v in state.items() if k.split(".", 1)[0].isdigit()}
    if not bare:
        raise ValueError(
            "no VGG feature weights found: expected keys 'features.<i>.weight' (torchvision "
            f"checkpoint) or '<i>.weight' (features extract); got e.g. {list(state)[:4]}"
        )
    return bare


class VGGFeatures(nn.Module):
    """Frozen torchvision VGG ``features`` returning the activations of named layers.

    Args:
        arch: ``"vgg16"`` or ``"vgg19"``.
        layers: names to return, e.g. ``("pool1", "pool2", "pool3")``; the stack is built only
            up to the deepest of them.
        weights: ``"imagenet"`` (torchvision file from the torch cache, never downloaded) or
            ``"random"`` (seeded init; sets ``pretrained = False``).
        input_range: range the VGG is fed before ``normalize``; the [-1, 1] input is mapped
            affinely onto it: ``(0, 1)`` or ``(-1, 1)`` (see the module table).
        normalize: ``"imagenet"`` (minus mean, over std), ``"imagenet_mean"`` (minus mean only,
            GMCNN PyTorch) or ``"none"``.
        seed: seed of ``weights="random"``.

    ``forward(image)`` takes N x 3 x H x W in [-1, 1] and returns ``{name: activation}`` in the
    order of ``layers``.
    """

    def __init__(
        self,
        arch: Arch,
        layers: Sequence[str],
        *,
        weights: Literal["imagenet", "random"] = "imagenet",
        input_range: tuple[float, float],
        normalize: Normalize,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if isinstance(layers, str):
            raise TypeError("layers must be a sequence of names, e.g. ('relu1_1',), not a str")
        if len(layers) == 0:
            raise ValueError("layers must name at least one VGG layer")
        self.arch = arch
        self.layers = tuple(layers)
        self._index = {name: layer_index(arch, name) for name in self.layers}
        self.depth = max(self._index.values()) + 1
        self.features = _build_features(arch, self.depth)

        lo, hi = (float(v) for v in input_range)
        if (lo, hi) not in ((0.0, 1.0), (-1.0, 1.0)):
            raise ValueError(f"input_range must be (0, 1) or (-1, 1), got {input_range!r}")
        if normalize not in ("imagenet", "imagenet_mean", "none"):
            raise ValueError(
                f"normalize must be 'imagenet', 'imagenet_mean' or 'none', got {normalize!r}"
            )
        if normalize != "none" and (lo, hi) != (0.0, 1.0):
            raise ValueError("ImageNet statistics are defined on [0, 1]: use input_range=(0, 1)")
        self.input_range = (lo, hi)
        self.normalize = normalize
        # [-1, 1] -> [lo, hi] -> minus shift, over scale: one affine map per channel
        mean = IMAGENET_MEAN if normalize != "none" else (0.0, 0.0, 0.0)
        std = IMAGENET_STD if normalize == "imagenet" else (1.0, 1.0, 1.0)
        half = (hi - lo) / 2.0
        # python floats (double precision), made tensors of the input's dtype at call time
        self._scale = tuple(half / s for s in std)
        self._shift = tuple((lo + half - m) / s for m, s in zip(mean, std))

        if weights == "imagenet":
            self._load_imagenet()
            self.pretrained = True
        elif weights == "random":
            self._init_random(seed)
            self.pretrained = False
        else:
            raise ValueError(f"weights must be 'imagenet' or 'random', got {weights!r}")
        self.weights = weights
        self.requires_grad_(False)
        super().train(False)

    # ------------------------------------------------------------------ weights
    def _load_imagenet(self) -> None:
        filename = TORCHVISION_FILES[self.arch]
        path = require_checkpoint(filename, f"VGGFeatures({self.arch!r}, weights='imagenet')")
        source = features_state_dict(load_state_dict(path))
        target = self.features.state_dict()
        for key, param in target.items():
            if key not in source:
                raise ValueError(f"{path}: missing 'features.{key}' for {self.arch}")
            if tuple(source[key].shape) != tuple(param.shape):
                raise ValueError(
                    f"{path}: 'features.{key}' has shape {tuple(source[key].shape)}, "
                    f"{self.arch} needs {tuple(param.shape)}"
                )
        self.features.load_state_dict({k: source[k] for k in target}, strict=True)

    def _init_random(self, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        for module in self.features:
            if isinstance(module, nn.Conv2d):
                fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1]
                with torch.no_grad():  # torchvision: kaiming_normal_(mode="fan_out"), bias 0
                    std = (2.0 / fan_out) ** 0.5
                    module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * std)
                    module.bias.zero_()

    # ------------------------------------------------------------------ forward
    def train(self, mode: bool = True) -> VGGFeatures:
        """Stays in eval mode whatever ``mode`` is (a frozen loss network)."""
        return super().train(False)

    def input_transform(self, image: Tensor) -> Tensor:
        """What the VGG sees for an image in [-1, 1] (see ``input_range`` / ``normalize``)."""
        scale = torch.tensor(self._scale, dtype=image.dtype, device=image.device)
        shift = torch.tensor(self._shift, dtype=image.dtype, device=image.device)
        return image * scale.view(1, 3, 1, 1) + shift.view(1, 3, 1, 1)

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"VGGFeatures expects N x 3 x H x W, got {tuple(image.shape)}")
        wanted: dict[int, list[str]] = {}
        for name, idx in self._index.items():
            wanted.setdefault(idx, []).append(name)
        found: dict[str, Tensor] = {}
        x = self.input_transform(image)
        for idx, module in enumerate(self.features):
            x = module(x)
            for name in wanted.get(idx, ()):
                found[name] = x
        return {name: found[name] for name in self.layers}

    def extra_repr(self) -> str:
        return (
            f"arch={self.arch}, layers={self.layers}, weights={self.weights}, "
            f"input_range={self.input_range}, normalize={self.normalize}"
        )
