"""Discriminators of the classic inpainting papers, and the converters of their checkpoints.

Every ``forward`` returns ``(scores, features)``: ``scores`` are raw (pre-sigmoid) logits unless
a class says otherwise, ``features`` the activations after each block (for feature matching,
EdgeConnect's ``FM_LOSS``), in order; for the patch discriminators the last feature is the
pre-sigmoid score map.

- :class:`SNPatchGAN` (RF 253): DeepFill v2 (Yu et al., ICCV 2019, arXiv 1806.03589);
  JiahuiYu/generative_inpainting ``inpaint_model.py`` ``build_sn_patch_gan_discriminator``
  (v2.0.0), nipponjo/deepfillv2-pytorch ``model/networks_tf.py`` ``Discriminator``.
- :class:`PatchGAN` (RF 70 with 3 layers): pix2pix ``NLayerDiscriminator`` as
  Zhaoyi-Yan/Shift-Net_pytorch ``models/modules/discrimators.py`` builds it (Shift-Net, ECCV
  2018, arXiv 1801.09392); also PGGAN's patch head.
- :class:`EdgeConnectDiscriminator` (RF 70): EdgeConnect (Nazeri et al., ICCVW 2019, arXiv
  1901.00212); knazeri/edge-connect ``src/networks.py`` ``Discriminator``.
- :class:`ConvCritic` (conv RF 61, then a linear layer): DeepFill v1 WGAN-GP critics (Yu et
  al., CVPR 2018, arXiv 1801.07892; ``inpaint_ops.py`` ``dis_conv`` and ``inpaint_model.py``
  at v1.0.0; daa233/generative-inpainting-pytorch ``model/networks.py``) and GMCNN's
  discriminators (Wang et al., NeurIPS 2018, arXiv 1810.08771; shepnerd/inpainting_gmcnn
  ``pytorch/model/net.py``).
- :class:`GLCICDiscriminator` (conv RF 125 local / 253 global, then linear layers): GLCIC
  (Iizuka et al., SIGGRAPH 2017); otenim/GLCIC-PyTorch ``models.py`` ``ContextDiscriminator``.

Receptive fields (RF) are those of the convolution stack, ``1 + sum_l (k_l - 1) * prod_{m<l}
s_m`` (:func:`conv_receptive_field`); InstanceNorm statistics and fully connected heads make the
score depend on the whole input.  Spectral normalisation is
:func:`zoo.layers.spectral_norm.spectral_norm` throughout.

Deviations, all deliberate:

- Scores are logits; the sigmoid of GLCIC (otenim puts it in the model) and of the vanilla-GAN
  PatchGANs is applied by the loss.  EdgeConnect keeps its ``use_sigmoid`` switch (default on,
  as the official class) for checkpoint-faithful outputs.
- SN-PatchGAN returns its N x 256 x H/64 x W/64 map; TF flattens it (same elements, in NHWC
  order), which changes nothing for the mean-reduced hinge loss.
- ``ConvCritic`` flattens in PyTorch's NCHW order (as daa233 and GMCNN); a converter from TF
  (NHWC flatten) must permute the rows of the dense kernel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .padding import same_pad
from .receptive_field import layers_from_module, receptive_field
from .spectral_norm import remap_spectral_norm_keys, spectral_norm

__all__ = [
    "SNPatchGAN",
    "PatchGAN",
    "EdgeConnectDiscriminator",
    "ConvCritic",
    "GLCICDiscriminator",
    "conv_receptive_field",
    "deepfill_v1_critics",
    "gmcnn_discriminators",
    "remap_nipponjo_sn_patch_gan",
    "remap_edgeconnect_discriminator",
    "remap_daa233_critic",
    "remap_gmcnn_discriminators",
    "remap_otenim_glcic_discriminator",
]

Tensor = torch.Tensor
Size2 = int | tuple[int, int]


# --------------------------------------------------------------------------- helpers


def conv_receptive_field(convs: Iterable[nn.Module]) -> int:
    """Receptive field (pixels) of a chain of convolutions, via :mod:`zoo.layers.receptive_field`
    (``1 + sum_l (k_l - 1) * d_l * j_l`` with ``j_l`` the product of the earlier strides)."""
    return receptive_field(layers_from_module(nn.Sequential(*convs)))


def _pair(value: Size2, name: str) -> tuple[int, int]:
    if not isinstance(value, int | tuple | list):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return pair  # type: ignore[return-value]


def _halvings(size: tuple[int, int], times: int) -> tuple[int, int]:
    """Spatial size after ``times`` stride-2 convs that keep ``ceil(n / 2)`` (5x5 with padding
    2, or TF 'SAME')."""
    h, w = size
    for _ in range(times):
        h, w = -(-h // 2), -(-w // 2)
    return h, w


def _check_input(
    x: Tensor, channels: int, name: str = "input", size: tuple[int, int] | None = None
) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f"{name} must be N x {channels} x H x W, got {tuple(x.shape)}")
    if size is not None and tuple(x.shape[-2:]) != size:
        raise ValueError(
            f"{name} must be {size[0]} x {size[1]} (the fully connected layer was sized for "
            f"it), got {tuple(x.shape[-2:])}"
        )


def _activation(name: str, negative_slope: float = 0.2) -> nn.Module:
    if name == "lrelu":
        return nn.LeakyReLU(negative_slope)
    if name == "elu":
        return nn.ELU(alpha=1.0)
    if name == "relu":
        return nn.ReLU()
    raise ValueError(f"activation must be 'lrelu', 'elu' or 'relu', got {name!r}")


def _maybe_sn(module: nn.Module, spectral: bool, n_power_iterations: int) -> nn.Module:
    return spectral_norm(module, n_power_iterations) if spectral else module


# --------------------------------------------------------------------------- SN-PatchGAN


class SNPatchGAN(nn.Module):
    """SN-PatchGAN of DeepFill v2 (``build_sn_patch_gan_discriminator``), receptive field
    **253 x 253** per score.

    Six 5x5 stride-2 spectral-norm convs with bias, widths ``cnum * (1, 2, 4, 4, 4, 4)`` (64, 128,
    256, 256, 256, 256), each followed by LeakyReLU 0.2, **the last one included** (``dis_conv``
    always applies ``tf.nn.leaky_relu``, default slope 0.2).  Input ``[image, mask]`` (4
    channels; 5 with the sketch channel of the guided model); TF scope
    ``discriminator/sn_patch_gan/conv1..conv6``, here ``conv1`` ... ``conv6``.

    Padding is TF ``'SAME'`` computed per input (:func:`zoo.layers.padding.same_pad`): 1 before
    / 2 after on even sizes, 2 / 2 on odd ones, so converted TF weights see the same windows.
    Score ``(i, j)`` of an input with even sizes at every layer covers input rows and columns
    ``[64 i - 63, 64 i + 189]``.

    ``forward`` returns ``(scores, features)``: scores N x 256 x ceil(H/64) x ceil(W/64), one
    hinge-loss score per element; features the six activations (the last is ``scores``).
    Trainable parameters at ``in_channels=4, cnum=64``: 5,946,816.
    """

    def __init__(
        self,
        in_channels: int = 4,  # image + mask (gan_with_mask: True)
        cnum: int = 64,  # paper / official
        *,
        n_power_iterations: int = 1,
        negative_slope: float = 0.2,  # tf.nn.leaky_relu default
    ) -> None:
        super().__init__()
        if in_channels < 1 or cnum < 1:
            raise ValueError(f"in_channels and cnum must be >= 1, got {in_channels}, {cnum}")
        self.in_channels = in_channels
        self.negative_slope = negative_slope
        widths = [cnum, 2 * cnum, 4 * cnum, 4 * cnum, 4 * cnum, 4 * cnum]

        def sn_conv(c_in: int, c_out: int) -> nn.Module:
            return spectral_norm(nn.Conv2d(c_in, c_out, 5, stride=2, padding=0), n_power_iterations)

        self.conv1 = sn_conv(in_channels, widths[0])
        self.conv2 = sn_conv(widths[0], widths[1])
        self.conv3 = sn_conv(widths[1], widths[2])
        self.conv4 = sn_conv(widths[2], widths[3])
        self.conv5 = sn_conv(widths[3], widths[4])
        self.conv6 = sn_conv(widths[4], widths[5])
        self.receptive_field = conv_receptive_field(self.convs())

    def convs(self) -> list[nn.Conv2d]:
        return [self.conv1, self.conv2, self.conv3, self.conv4, self.conv5, self.conv6]

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        _check_input(x, self.in_channels)
        features = []
        for conv in self.convs():
            x = same_pad(x, 5, 2)  # TF 'SAME': (1, 2) on even sizes, (2, 2) on odd
            x = F.leaky_relu(conv(x), self.negative_slope)  # N x C x ceil(H/2) x ceil(W/2)
            features.append(x)
        return x, features


def remap_nipponjo_sn_patch_gan(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """nipponjo/deepfillv2-pytorch ``Discriminator`` state dict (``states_tf_*.pth['D']``) ->
    :class:`SNPatchGAN` keys: ``conv<k>.conv_sn.{weight,bias,weight_u}`` -> ``conv<k>.*``, with
    the ``"nipponjo"`` spectral-norm layout (eval mode then reproduces the port's forward, which
    is neuralgym's TF power iteration from the stored ``u``)."""
    renamed: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        if len(parts) != 3 or parts[1] != "conv_sn" or not parts[0].startswith("conv"):
            raise ValueError(f"unexpected key in a nipponjo discriminator state dict: {key!r}")
        renamed[f"{parts[0]}.{parts[2]}"] = value
    return remap_spectral_norm_keys(renamed, "nipponjo")


# --------------------------------------------------------------------------- PatchGAN


class PatchGAN(nn.Module):
    """pix2pix ``NLayerDiscriminator`` as Shift-Net_pytorch builds it (the Shift-Net and PGGAN
    patch discriminator); receptive field **70 x 70** for ``n_layers=3`` (34 for 2, 142 for 4:
    ``1 + 3 * (2^(n+1) - 1 + 2^n)``).

    4x4 convs with padding 1: ``in -> ndf`` (stride 2, LReLU 0.2), then ``n_layers - 1`` convs
    doubling the width up to ``8 * ndf`` (stride 2, norm, LReLU), one more (stride 1, norm,
    LReLU) and a 1-channel conv (stride 1).  Scores are (N, 1, H', W') logits, one per
    overlapping 70x70 patch; ``use_sigmoid`` applies the sigmoid of the vanilla-GAN setting.

    Layout: one ``model`` Sequential with Shift-Net's indices (``model.0`` first conv, ``model.2``
    / ``model.3`` second conv / norm, ...), so its checkpoints load after
    ``remap_spectral_norm_keys(sd, "legacy")``.  Shift-Net defaults: ``norm="instance"``
    (affine, no running statistics), spectral norm on (``use_spectral_norm_D=1``).

    Biases (``bias=None``, the official rule): the first and last convs always have one; the
    middle convs only with ``norm="instance"`` (pix2pix's ``use_bias``; so ``norm=None`` gives
    bias-free middle convs, as in the official code).  ``bias=True``/``False`` forces all.
    Features: the activation after each LeakyReLU, then the final (pre-sigmoid) map.
    """

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        *,
        norm: str | None = "instance",  # Shift-Net default; pix2pix "batch"
        spectral: bool = True,  # Shift-Net use_spectral_norm_D=1
        bias: bool | None = None,
        use_sigmoid: bool = False,
        n_power_iterations: int = 1,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if norm not in ("instance", "batch", None):
            raise ValueError(f"norm must be 'instance', 'batch' or None, got {norm!r}")
        if n_layers < 1 or ndf < 1 or in_channels < 1:
            raise ValueError(
                f"in_channels, ndf, n_layers must be >= 1: {in_channels, ndf, n_layers}"
            )
        self.in_channels = in_channels
        self.use_sigmoid = use_sigmoid
        middle_bias = (norm == "instance") if bias is None else bias
        end_bias = True if bias is None else bias

        def conv(c_in: int, c_out: int, stride: int, with_bias: bool) -> nn.Module:
            layer = nn.Conv2d(c_in, c_out, 4, stride=stride, padding=1, bias=with_bias)
            return _maybe_sn(layer, spectral, n_power_iterations)

        def norm_layer(channels: int) -> list[nn.Module]:
            if norm == "instance":
                return [nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)]
            if norm == "batch":
                return [nn.BatchNorm2d(channels)]
            return []

        layers: list[nn.Module] = [
            conv(in_channels, ndf, 2, end_bias),
            nn.LeakyReLU(negative_slope),
        ]
        width = ndf
        for n in range(1, n_layers + 1):
            new_width = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [conv(width, new_width, stride, middle_bias), *norm_layer(new_width)]
            layers.append(nn.LeakyReLU(negative_slope))
            width = new_width
        layers.append(conv(width, 1, 1, end_bias))
        self.model = nn.Sequential(*layers)
        self.receptive_field = conv_receptive_field(
            m for m in self.model.modules() if isinstance(m, nn.Conv2d)
        )

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        _check_input(x, self.in_channels)
        features = []
        for layer in self.model:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                features.append(x)
        features.append(x)  # N x 1 x H' x W', pre-sigmoid
        return (torch.sigmoid(x) if self.use_sigmoid else x), features


# --------------------------------------------------------------------------- EdgeConnect


class EdgeConnectDiscriminator(nn.Module):
    """EdgeConnect's ``Discriminator``: a 70x70 PatchGAN, receptive field **70 x 70**.

    4x4 convs, padding 1: 64 (stride 2), 128 (2), 256 (2), 512 (1), 1 (1); LeakyReLU 0.2 after
    all but the last; spectral norm and no biases (``bias=not use_spectral_norm``); no
    normalisation.  Score ``(i, j)`` covers input rows/columns ``[8 i - 23, 8 i + 46]``.
    Edge model: ``in_channels=2`` (gray, edges); inpainting model: 3 (RGB).

    ``conv1`` ... ``conv5`` are Sequentials with the conv at index 0, as the official keys
    ``conv<k>.0.weight_orig`` (load them through :func:`remap_edgeconnect_discriminator`).
    ``forward`` returns ``(sigmoid(conv5) if use_sigmoid else conv5, [conv1 ... conv5])``, the
    official outputs (``use_sigmoid`` is off only with the hinge loss).
    Trainable parameters: 2,762,752 (2 channels), 2,763,776 (3 channels).
    """

    def __init__(
        self,
        in_channels: int = 3,
        use_sigmoid: bool = True,  # official default (nsgan loss)
        *,
        use_spectral_norm: bool = True,
        n_power_iterations: int = 1,
    ) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        self.in_channels = in_channels
        self.use_sigmoid = use_sigmoid

        def block(c_in: int, c_out: int, stride: int, act: bool) -> nn.Sequential:
            layer = nn.Conv2d(c_in, c_out, 4, stride=stride, padding=1, bias=not use_spectral_norm)
            layers = [_maybe_sn(layer, use_spectral_norm, n_power_iterations)]
            if act:
                layers.append(nn.LeakyReLU(0.2))
            return nn.Sequential(*layers)

        self.conv1 = block(in_channels, 64, 2, True)
        self.conv2 = block(64, 128, 2, True)
        self.conv3 = block(128, 256, 2, True)
        self.conv4 = block(256, 512, 1, True)
        self.conv5 = block(512, 1, 1, False)
        self.receptive_field = conv_receptive_field(b[0] for b in self.blocks())

    def blocks(self) -> list[nn.Sequential]:
        return [self.conv1, self.conv2, self.conv3, self.conv4, self.conv5]

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        _check_input(x, self.in_channels)
        features = []
        for block in self.blocks():
            x = block(x)
            features.append(x)
        return (torch.sigmoid(x) if self.use_sigmoid else x), features


def remap_edgeconnect_discriminator(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Official EdgeConnect D state dict (``EdgeModel_dis.pth['discriminator']``) -> keys of
    :class:`EdgeConnectDiscriminator`.

    The official module binds its first block to both ``conv1`` and ``features``, so every
    ``conv1.*`` tensor is stored twice; the ``features.*`` copies are checked to equal their
    ``conv1.*`` twins and dropped, then the legacy spectral-norm keys are renamed.
    """
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if key.startswith("features."):
            twin = "conv1." + key[len("features.") :]
            if twin not in state_dict:
                raise ValueError(f"alias {key!r} has no {twin!r} twin")
            if not torch.equal(state_dict[twin], value):
                raise ValueError(f"alias {key!r} differs from {twin!r}")
            continue
        out[key] = value
    if any(key.endswith("weight_orig") for key in out):
        out = remap_spectral_norm_keys(out, "legacy")
    return out


# --------------------------------------------------------------------------- conv critics


class ConvCritic(nn.Module):
    """Strided-conv critic with a linear head: DeepFill v1's WGAN-GP critics and GMCNN's global
    and local discriminators.  Receptive field of the conv stack **61 x 61** (four 5x5 stride-2
    convs); the score sees the whole input through the linear layer.

    ``len(widths)`` 5x5 stride-2 convs with bias, each followed by the activation (DeepFill v1
    ``dis_conv``: LeakyReLU 0.2; GMCNN: ELU), flatten (NCHW order), ``Linear(C * h * w, 1)``.
    ``spectral=True`` (GMCNN) wraps every conv **and the linear** in spectral norm, as GMCNN's
    ``SpectralNorm`` does.  ``padding="symmetric"`` pads 2 on every side (daa233, GMCNN);
    ``"tf_same"`` pads as TF ``'SAME'`` (official DeepFill v1; 1 before / 2 after on even sizes).
    Both give ``ceil(n / 2)`` per conv, so ``input_size`` fixes the linear layer.

    Layout ``convs.<i>`` and ``linear`` (converters: :func:`remap_daa233_critic`,
    :func:`remap_gmcnn_discriminators`).  Features: each conv activation (not the flattening).
    Counts: :func:`deepfill_v1_critics`.
    """

    def __init__(
        self,
        in_channels: int = 3,
        widths: Sequence[int] = (64, 128, 256, 256),  # DeepFill v1 global critic (cnum = 64)
        *,
        input_size: Size2 = 256,
        act: str = "lrelu",
        spectral: bool = False,
        padding: str = "symmetric",
        n_power_iterations: int = 1,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        widths = tuple(widths)
        if not widths or min(widths) < 1 or in_channels < 1:
            raise ValueError(
                f"need in_channels >= 1 and positive widths, got {in_channels}, {widths}"
            )
        if padding not in ("symmetric", "tf_same"):
            raise ValueError(f"padding must be 'symmetric' or 'tf_same', got {padding!r}")
        self.in_channels = in_channels
        self.input_size = _pair(input_size, "input_size")
        self.padding = padding
        self.act = _activation(act, negative_slope)
        conv_pad = 2 if padding == "symmetric" else 0
        chans = (in_channels, *widths)
        self.convs = nn.ModuleList(
            _maybe_sn(
                nn.Conv2d(chans[i], chans[i + 1], 5, stride=2, padding=conv_pad),
                spectral,
                n_power_iterations,
            )
            for i in range(len(widths))
        )
        h, w = _halvings(self.input_size, len(widths))
        self.linear = _maybe_sn(nn.Linear(widths[-1] * h * w, 1), spectral, n_power_iterations)
        self.receptive_field = conv_receptive_field(self.convs)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        _check_input(x, self.in_channels, size=self.input_size)
        features = []
        for conv in self.convs:
            if self.padding == "tf_same":
                x = same_pad(x, 5, 2)
            x = self.act(conv(x))  # N x C x ceil(H/2) x ceil(W/2)
            features.append(x)
        scores = self.linear(x.flatten(1))  # (N, C*h*w) -> (N, 1)
        return scores, features


def deepfill_v1_critics(
    variant: str = "tf", *, in_channels: int = 3, image_size: int = 256, patch_size: int = 128
) -> tuple[ConvCritic, ConvCritic]:
    """DeepFill v1's (global, local) WGAN-GP critics.

    - ``"tf"`` (JiahuiYu v1.0.0): global widths 64, 128, 256, 256 on the 256^2 image; local 64,
      128, 256, **512** on the 128^2 hole patch; TF 'SAME' padding; 2,733,441 and 4,339,329
      parameters.
    - ``"daa233"``: both 64, 128, 256, 256 (``cnum*4`` in both), symmetric padding 2;
      2,733,441 and 2,684,289 parameters.

    Input is the image only (``GAN_WITH_MASK: False``).
    """
    if variant == "tf":
        widths_local, padding = (64, 128, 256, 512), "tf_same"
    elif variant == "daa233":
        widths_local, padding = (64, 128, 256, 256), "symmetric"
    else:
        raise ValueError(f"variant must be 'tf' or 'daa233', got {variant!r}")
    common = {"act": "lrelu", "spectral": False, "padding": padding}
    global_d = ConvCritic(in_channels, (64, 128, 256, 256), input_size=image_size, **common)
    local_d = ConvCritic(in_channels, widths_local, input_size=patch_size, **common)
    return global_d, local_d


def gmcnn_discriminators(
    *, in_channels: int = 3, image_size: int = 256, patch_size: int = 128, cnum: int = 64
) -> tuple[ConvCritic, ConvCritic]:
    """GMCNN's (global, local) discriminators (``GlobalLocalDiscriminator``, PyTorch code):
    widths ``cnum * (1, 2, 4, 4)`` (``d_cnum=64``), 5x5 stride 2 padding 2, ELU, spectral norm
    on the convs and the linear.  The local one sees the 128^2 hole patch (``mask_type='rect'``);
    with strokes it sees the whole image (``patch_size=image_size``).  Trainable parameters
    2,733,441 and 2,684,289."""
    widths = (cnum, 2 * cnum, 4 * cnum, 4 * cnum)
    common = {"act": "elu", "spectral": True, "padding": "symmetric"}
    global_d = ConvCritic(in_channels, widths, input_size=image_size, **common)
    local_d = ConvCritic(in_channels, widths, input_size=patch_size, **common)
    return global_d, local_d


def remap_daa233_critic(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """One daa233 critic (``dis_*.pt['globalD']`` or ``['localD']``) -> :class:`ConvCritic`
    keys: ``dis_conv_module.conv<k>.conv.*`` -> ``convs.<k-1>.*``, ``linear.*`` unchanged."""
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        if len(parts) == 4 and parts[0] == "dis_conv_module" and parts[2] == "conv":
            index = int(parts[1].removeprefix("conv")) - 1
            out[f"convs.{index}.{parts[3]}"] = value
        elif len(parts) == 2 and parts[0] == "linear":
            out[key] = value
        else:
            raise ValueError(f"unexpected key in a daa233 critic state dict: {key!r}")
    return out


def remap_gmcnn_discriminators(
    state_dict: Mapping[str, Tensor],
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """GMCNN's ``GlobalLocalDiscriminator`` state dict -> (global, local) :class:`ConvCritic`
    state dicts for :func:`gmcnn_discriminators`.

    ``<branch>_discriminator.layers.<i>.module.{weight_bar,weight_u,weight_v,bias}``: ``i < 4``
    -> ``convs.<i>``, the last index -> ``linear``; spectral-norm keys via the ``"gmcnn"`` layout
    (eval mode then reproduces GMCNN's forward on the checkpoint).
    """
    branches: dict[str, dict[str, Tensor]] = {"global": {}, "local": {}}
    for key, value in state_dict.items():
        parts = key.split(".")
        ok = len(parts) == 5 and parts[1] == "layers" and parts[3] == "module"
        branch = parts[0].removesuffix("_discriminator") if ok else ""
        if branch not in branches:
            raise ValueError(f"unexpected key in a GMCNN discriminator state dict: {key!r}")
        branches[branch][f"{parts[2]}.{parts[4]}"] = value
    out = []
    for name in ("global", "local"):
        layers = branches[name]
        if not layers:
            raise ValueError(f"no {name}_discriminator keys in the GMCNN state dict")
        last = max(int(k.split(".")[0]) for k in layers)
        renamed = {
            (f"convs.{k}" if int(k.split(".")[0]) < last else "linear." + k.split(".", 1)[1]): v
            for k, v in layers.items()
        }
        out.append(remap_spectral_norm_keys(renamed, "gmcnn"))
    return out[0], out[1]


# --------------------------------------------------------------------------- GLCIC


class _GLCICBranch(nn.Module):
    """``conv1..convK`` 5x5 stride 2 padding 2 (+ ``bn1..bnK``, ReLU), flatten, ``fc`` + ReLU.
    ``bn_after_relu`` switches to otenim's ``bn(relu(conv(x)))``."""

    def __init__(
        self,
        in_channels: int,
        widths: Sequence[int],
        input_size: tuple[int, int],
        fc_features: int,
        bn_after_relu: bool,
    ) -> None:
        super().__init__()
        self.bn_after_relu = bn_after_relu
        self.depth = len(widths)
        chans = (in_channels, *widths)
        for i in range(self.depth):
            self.add_module(f"conv{i + 1}", nn.Conv2d(chans[i], chans[i + 1], 5, 2, padding=2))
            self.add_module(f"bn{i + 1}", nn.BatchNorm2d(chans[i + 1]))
        h, w = _halvings(input_size, self.depth)
        self.fc = nn.Linear(widths[-1] * h * w, fc_features)

    def convs(self) -> list[nn.Conv2d]:
        return [getattr(self, f"conv{i + 1}") for i in range(self.depth)]

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        features = []
        for i in range(self.depth):
            conv, bn = getattr(self, f"conv{i + 1}"), getattr(self, f"bn{i + 1}")
            x = bn(F.relu(conv(x))) if self.bn_after_relu else F.relu(bn(conv(x)))
            features.append(x)  # N x C x ceil(H/2) x ceil(W/2)
        x = F.relu(self.fc(x.flatten(1)))  # (N, C*h*w) -> (N, fc_features)
        features.append(x)
        return x, features


class GLCICDiscriminator(nn.Module):
    """GLCIC's context discriminator: a local branch on the hole patch and a global branch on
    the whole image, each to a 1024-d vector, concatenated and mapped to one logit.  Receptive
    fields of the conv stacks **125 x 125** (local, five convs) and **253 x 253** (global, six
    convs); the logit sees both inputs entirely.

    Architectures (``arch``):

    - ``"paper"`` (Table 2): local 5x5 stride-2 convs 64, 128, 256, 512, 512 on 128^2 -> FC 1024;
      global 64, 128, 256, 512, 512, 512 on 256^2 -> FC 1024; conv -> BN -> ReLU; concat 2048 ->
      FC 1.  45,063,681 parameters (local 19,253,248 + global 25,808,384 + 2,049).
    - ``"places2"``: otenim's ``arc='places2'``: the same layers with **BN after ReLU**
      (``bn(relu(conv(x)))``), so otenim weights load here, not into ``"paper"``.
    - ``"celeba"``: otenim's ``arc='celeba'``: a five-conv global branch, BN after ReLU
      (otenim trains it at 160^2 image / 96^2 patch).

    ``forward(image, local_patch)`` returns ``(logit (N, 1), features)`` with the sigmoid left to
    the loss (otenim applies it inside the model); features are the local conv activations and
    1024-d vector, then the global ones.  ``cnum`` scales the widths (paper 64) and
    ``fc_features`` the branch vectors (paper 1024).  Keys: ``local_branch.conv<k>``,
    ``.bn<k>``, ``.fc``; ``global_branch...``; ``head`` (:func:`remap_otenim_glcic_discriminator`).
    """

    ARCHES = ("paper", "places2", "celeba")

    def __init__(
        self,
        global_size: Size2 = 256,
        local_size: Size2 = 128,
        arch: str = "paper",
        *,
        in_channels: int = 3,
        cnum: int = 64,
        fc_features: int = 1024,
    ) -> None:
        super().__init__()
        if arch not in self.ARCHES:
            raise ValueError(f"arch must be one of {self.ARCHES}, got {arch!r}")
        if cnum < 1 or fc_features < 1 or in_channels < 1:
            raise ValueError(
                f"need positive in_channels, cnum, fc_features: {in_channels, cnum, fc_features}"
            )
        self.arch = arch
        self.in_channels = in_channels
        self.global_size = _pair(global_size, "global_size")
        self.local_size = _pair(local_size, "local_size")
        bn_after_relu = arch != "paper"
        local_widths = [cnum * m for m in (1, 2, 4, 8, 8)]
        global_widths = local_widths + ([] if arch == "celeba" else [8 * cnum])
        self.local_branch = _GLCICBranch(
            in_channels, local_widths, self.local_size, fc_features, bn_after_relu
        )
        self.global_branch = _GLCICBranch(
            in_channels, global_widths, self.global_size, fc_features, bn_after_relu
        )
        self.head = nn.Linear(2 * fc_features, 1)
        self.local_receptive_field = conv_receptive_field(self.local_branch.convs())
        self.global_receptive_field = conv_receptive_field(self.global_branch.convs())

    def forward(self, image: Tensor, local_patch: Tensor) -> tuple[Tensor, list[Tensor]]:
        _check_input(image, self.in_channels, "image", self.global_size)
        _check_input(local_patch, self.in_channels, "local_patch", self.local_size)
        if image.shape[0] != local_patch.shape[0]:
            raise ValueError(f"batch sizes differ: {image.shape[0]} vs {local_patch.shape[0]}")
        local_vec, local_feats = self.local_branch(local_patch)
        global_vec, global_feats = self.global_branch(image)
        logit = self.head(torch.cat([local_vec, global_vec], dim=1))  # (N, 2048) -> (N, 1)
        return logit, local_feats + global_feats


def remap_otenim_glcic_discriminator(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """otenim ``ContextDiscriminator`` state dict -> :class:`GLCICDiscriminator` keys (build it
    with the matching ``arch``, ``"celeba"`` or ``"places2"``, and sizes).

    ``model_ld.{conv,bn}<k>`` -> ``local_branch.{conv,bn}<k>``, ``model_ld.linear6`` ->
    ``local_branch.fc``; ``model_gd...`` likewise, ``linear6`` (celeba) or ``linear7``
    (places2) -> ``global_branch.fc``; ``linear1`` -> ``head``.
    """
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        if parts[0] == "linear1" and len(parts) == 2:
            out["head." + parts[1]] = value
            continue
        branch = {"model_ld": "local_branch", "model_gd": "global_branch"}.get(parts[0])
        if branch is None or len(parts) != 3:
            raise ValueError(f"unexpected key in an otenim GLCIC discriminator: {key!r}")
        layer = "fc" if parts[1].startswith("linear") else parts[1]
        out[f"{branch}.{layer}.{parts[2]}"] = value
    return out
