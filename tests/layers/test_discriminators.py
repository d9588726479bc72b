"""Discriminators: exact parameter counts, receptive fields (measured by gradients), forwards
against plain functional references, and official checkpoint layouts loaded with strict=True.

The "official" modules below are small re-implementations of each codebase's structure and key
names (knazeri/edge-connect, Zhaoyi-Yan/Shift-Net_pytorch, daa233, shepnerd/inpainting_gmcnn,
otenim/GLCIC-PyTorch), written from their descriptions, to produce state dicts in their layouts.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.layers.discriminators import (
    ConvCritic,
    EdgeConnectDiscriminator,
    GLCICDiscriminator,
    PatchGAN,
    SNPatchGAN,
    conv_receptive_field,
    deepfill_v1_critics,
    gmcnn_discriminators,
    remap_daa233_critic,
    remap_edgeconnect_discriminator,
    remap_gmcnn_discriminators,
    remap_nipponjo_sn_patch_gan,
    remap_otenim_glcic_discriminator,
)
from zoo.layers.spectral_norm import remap_spectral_norm_keys

DT = torch.float64
ATOL = 1e-12


def _trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _max_diff(a, b):
    return (a - b).abs().max().item()


def _conv_count(c_in, c_out, k, bias=True):
    return c_in * c_out * k * k + (c_out if bias else 0)


# ----------------------------------------------------------------------------- counts


def _build(factory):
    with torch.device("meta"):  # counts only: no memory, no init cost
        return factory()


@pytest.mark.parametrize(
    ("factory", "expected"),
    [
        (lambda: SNPatchGAN(4, 64), 5_946_816),  # models.md 0.1, measured on nipponjo
        (lambda: EdgeConnectDiscriminator(2), 2_762_752),
        (lambda: EdgeConnectDiscriminator(3), 2_763_776),
        (lambda: deepfill_v1_critics("daa233")[0], 2_733_441),
        (lambda: deepfill_v1_critics("daa233")[1], 2_684_289),
        (lambda: deepfill_v1_critics("tf")[0], 2_733_441),
        (lambda: deepfill_v1_critics("tf")[1], 4_339_329),
        (lambda: gmcnn_discriminators()[0], 2_733_441),
        (lambda: gmcnn_discriminators()[1], 2_684_289),
        (lambda: GLCICDiscriminator(256, 128, "paper"), 45_063_681),
        (lambda: GLCICDiscriminator(256, 128, "places2"), 45_063_681),
        # by hand: local at 96 19,253,248 - 8,389,632 + (512*9*1024 + 1024) = 15,583,232;
        # global 5 convs at 160: 10,863,616 + 512*25*1024 + 1024 = 23,971,840; + 2,049
        (lambda: GLCICDiscriminator(160, 96, "celeba"), 39_557_121),
        # Shift-Net default D (3 ch, affine IN, biases, SN counts the weight only)
        (lambda: PatchGAN(3), 2_766_529),
        # pix2pix D on (input, output) pairs, BatchNorm, no SN: the well-known 2.769 M
        (lambda: PatchGAN(6, norm="batch", spectral=False), 2_768_705),
    ],
)
def test_parameter_counts(factory, expected):
    assert _trainable(_build(factory)) == expected


def test_counts_by_hand_from_layer_lists():
    """The same totals summed from the architecture tables, layer by layer."""
    sn_patch = sum(
        _conv_count(a, b, 5)
        for a, b in zip((4, 64, 128, 256, 256, 256), (64, 128, 256, 256, 256, 256), strict=True)
    )
    edge = sum(
        _conv_count(a, b, 4, bias=False)
        for a, b in zip((2, 64, 128, 256, 512), (64, 128, 256, 512, 1), strict=True)
    )
    bn = 2 * (64 + 128 + 256 + 512 + 512)
    glcic_local = sum(
        _conv_count(a, b, 5)
        for a, b in zip((3, 64, 128, 256, 512), (64, 128, 256, 512, 512), strict=True)
    )
    glcic_local += bn + 512 * 4 * 4 * 1024 + 1024
    glcic_global = glcic_local + _conv_count(512, 512, 5) + 2 * 512
    assert (sn_patch, edge) == (5_946_816, 2_762_752)
    assert (glcic_local, glcic_global) == (19_253_248, 25_808_384)
    model = _build(lambda: GLCICDiscriminator())
    assert _trainable(model.local_branch) == glcic_local
    assert _trainable(model.global_branch) == glcic_global
    assert _trainable(model.head) == 2_049


# ----------------------------------------------------------------------------- receptive fields


def _positive_weights(model: nn.Module) -> nn.Module:
    """All parameters 0.01 (so no cancellation), spectral-norm vectors at the top singular
    vectors of a constant matrix (uniform), eval mode (BatchNorm uses identity running stats)."""
    model = model.to(DT).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.01)
        for name, buf in model.named_buffers():
            if name.endswith("._u") or name.endswith("._v"):
                buf.fill_(buf.numel() ** -0.5)
    return model


def _support_box(grad: torch.Tensor) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1) of the nonzero gradient, asserting it is a full rectangle."""
    nz = grad.abs().sum(dim=(0, 1)) != 0
    rows, cols = nz.any(1).nonzero().flatten(), nz.any(0).nonzero().flatten()
    r0, r1, c0, c1 = rows.min().item(), rows.max().item(), cols.min().item(), cols.max().item()
    assert nz.sum().item() == (r1 - r0 + 1) * (c1 - c0 + 1), "support is not a rectangle"
    return r0, r1, c0, c1


def _rf_box(run, x: torch.Tensor, pick) -> tuple[int, int, int, int]:
    x = x.clone().requires_grad_(True)
    pick(run(x)).backward()
    return _support_box(x.grad)


# (model factory, input C, input size, output (i, j), analytic RF, jump, offset)
# offset = sum over layers of (padding before) * (product of earlier strides); the score at
# (i, j) then covers rows [jump*i - offset, jump*i - offset + RF - 1].
PATCH_CASES = {
    # six 5x5 s2, TF 'SAME' pads 1 before on even sizes: offset 1+2+4+8+16+32 = 63
    "sn_patch_gan": (lambda: SNPatchGAN(4, 2), 4, 320, (1, 2), 253, 64, 63),
    # 4x4 convs, pad 1: strides 2,2,2,1,1 -> jumps 1,2,4,8,8, offset 23
    "edge_connect": (lambda: EdgeConnectDiscriminator(2), 2, 96, (3, 5), 70, 8, 23),
    "patchgan_n2": (lambda: PatchGAN(3, 2, 2, norm=None), 3, 48, (3, 4), 34, 4, 11),
    "patchgan_n3": (lambda: PatchGAN(3, 2, 3, norm="batch"), 3, 96, (3, 5), 70, 8, 23),
    "patchgan_n4": (
        lambda: PatchGAN(3, 2, 4, norm=None, spectral=False),
        3,
        160,
        (3, 4),
        142,
        16,
        47,
    ),
}


@pytest.mark.parametrize("name", sorted(PATCH_CASES))
def test_patch_receptive_field_measured_by_gradient(name):
    factory, channels, size, (i, j), rf, jump, offset = PATCH_CASES[name]
    model = _positive_weights(factory())
    assert model.receptive_field == rf
    x = torch.ones(1, channels, size, size, dtype=DT)
    box = _rf_box(lambda t: model(t)[1][-1], x, lambda s: s[0, 0, i, j])  # pre-sigmoid
    expected = (
        jump * i - offset,
        jump * i - offset + rf - 1,
        jump * j - offset,
        jump * j - offset + rf - 1,
    )
    assert box == expected


def test_instance_norm_patchgan_sees_the_whole_image():
    model = _positive_weights(PatchGAN(3, 2, 3, norm="instance"))
    x = torch.rand(1, 3, 96, 96, dtype=DT) + 0.5
    box = _rf_box(lambda t: model(t)[0], x, lambda s: s[0, 0, 3, 3])
    assert box == (0, 95, 0, 95)


# ConvCritic conv stacks: four 5x5 s2 -> RF 61, jump 16; symmetric padding 2 -> offset 30,
# TF 'SAME' on even sizes -> offset 15
@pytest.mark.parametrize(
    ("kwargs", "size", "index", "offset"),
    [
        ({"padding": "symmetric", "act": "lrelu"}, 96, (2, 3), 30),
        ({"padding": "symmetric", "act": "elu", "spectral": True}, 96, (2, 3), 30),
        ({"padding": "tf_same", "act": "lrelu"}, 96, (1, 3), 15),
    ],
)
def test_critic_receptive_field(kwargs, size, index, offset):
    model = _positive_weights(ConvCritic(3, (2, 2, 2, 2), input_size=size, **kwargs))
    assert model.receptive_field == 61
    x = torch.ones(1, 3, size, size, dtype=DT)
    i, j = index
    box = _rf_box(lambda t: model(t)[1][-1], x, lambda f: f[0, 0, i, j])
    assert box == (16 * i - offset, 16 * i - offset + 60, 16 * j - offset, 16 * j - offset + 60)
    assert _rf_box(lambda t: model(t)[0], x, lambda s: s[0, 0]) == (0, size - 1, 0, size - 1)


@pytest.mark.parametrize("arch", ["paper", "places2"])
def test_glcic_receptive_fields(arch):
    model = _positive_weights(GLCICDiscriminator(384, 192, arch, cnum=2, fc_features=4))
    assert (model.local_receptive_field, model.global_receptive_field) == (125, 253)
    image = torch.ones(1, 3, 384, 384, dtype=DT)
    patch = torch.ones(1, 3, 192, 192, dtype=DT)
    # local: five convs, jump 32, offset 2 * 31 = 62; global: six, jump 64, offset 2 * 63 = 126
    local_box = _rf_box(lambda t: model(image, t)[1][4], patch, lambda f: f[0, 0, 2, 3])
    assert local_box == (2, 126, 34, 158)
    global_box = _rf_box(lambda t: model(t, patch)[1][6 + 5], image, lambda f: f[0, 0, 2, 3])
    assert global_box == (2, 254, 66, 318)
    assert _rf_box(lambda t: model(t, patch)[0], image, lambda s: s[0, 0]) == (0, 383, 0, 383)
    assert _rf_box(lambda t: model(image, t)[0], patch, lambda s: s[0, 0]) == (0, 191, 0, 191)


def test_receptive_field_helper():
    convs = [nn.Conv2d(1, 1, 3, stride=1, dilation=d, padding=d) for d in (1, 2, 4)]
    assert conv_receptive_field(convs) == 1 + 2 + 4 + 8
    convs = [nn.Conv2d(1, 1, 7, stride=2), nn.Conv2d(1, 1, 3, stride=2)]
    assert conv_receptive_field(convs) == 11
    with pytest.raises(TypeError):
        conv_receptive_field([nn.Linear(2, 2)])


# ----------------------------------------------------------------------------- SN-PatchGAN


def _sn_weight(conv: nn.Module) -> torch.Tensor:
    """W / (u^T W v) from the raw weight and stored vectors (eval mode), written out."""
    p = conv.parametrizations.weight
    w, u, v = p.original, p[0]._u, p[0]._v
    return w / (u @ w.flatten(1) @ v)


def _tf_same_5x5_s2(n: int) -> tuple[int, int]:
    # out = ceil(n/2), total = (out-1)*2 + 5 - n: 3 on even n, 4 on odd n
    return (1, 2) if n % 2 == 0 else (2, 2)


@pytest.mark.parametrize(
    ("cnum", "size"),
    [(4, (64, 64)), (4, (65, 65)), (4, (70, 45)), (2, (33, 130)), (64, (64, 64))],
)
def test_sn_patch_gan_equals_functional_reference(cnum, size):
    torch.manual_seed(0)
    model = SNPatchGAN(4, cnum).to(DT).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    x = torch.randn(2, 4, *size, dtype=DT)
    scores, features = model(x)

    ref, ref_features = x, []
    for conv in model.convs():
        top, bottom = _tf_same_5x5_s2(ref.shape[2])
        left, right = _tf_same_5x5_s2(ref.shape[3])
        ref = F.pad(ref, (left, right, top, bottom))
        ref = F.leaky_relu(F.conv2d(ref, _sn_weight(conv).detach(), conv.bias, stride=2), 0.2)
        ref_features.append(ref)
    assert scores.shape == (2, 4 * cnum, -(-size[0] // 64), -(-size[1] // 64))
    assert _max_diff(scores, ref) <= ATOL
    assert len(features) == 6
    assert max(_max_diff(a, b) for a, b in zip(features, ref_features, strict=True)) <= ATOL


class _NipponjoSNConv(nn.Conv2d):
    """nipponjo ``Conv2DSpectralNorm``: raw ``weight`` + ``weight_u`` (C_out, 1); every call one
    v-then-u iteration, ``weight`` divided in place by sigma, then the conv."""

    def __init__(self, c_in, c_out):
        super().__init__(c_in, c_out, 5, stride=2)
        self.register_buffer("weight_u", torch.randn(c_out, 1))

    def forward(self, x):
        w_mat = self.weight.view(self.weight.shape[0], -1).detach()
        v = F.normalize(w_mat.t() @ self.weight_u, dim=0, eps=1e-12)
        self.weight_u = F.normalize(w_mat @ v, dim=0, eps=1e-12)
        self.weight.data.div_(self.weight_u.t() @ w_mat @ v)
        return super().forward(x)


class _NipponjoD(nn.Module):
    """nipponjo ``Discriminator`` layout: ``conv<k>.conv_sn``; TF 'SAME' pad, conv, LReLU 0.2."""

    def __init__(self, c, cnum):
        super().__init__()
        chans = (c, cnum, 2 * cnum, 4 * cnum, 4 * cnum, 4 * cnum, 4 * cnum)
        for k in range(6):
            block = nn.Module()
            block.conv_sn = _NipponjoSNConv(chans[k], chans[k + 1])
            setattr(self, f"conv{k + 1}", block)

    def forward(self, x):
        for k in range(6):
            top, bottom = _tf_same_5x5_s2(x.shape[2])
            left, right = _tf_same_5x5_s2(x.shape[3])
            x = F.pad(x, (left, right, top, bottom))
            x = F.leaky_relu(getattr(self, f"conv{k + 1}").conv_sn(x), 0.2)
        return x.flatten(1)


@pytest.mark.parametrize("size", [(64, 64), (45, 70)])
def test_nipponjo_sn_patch_gan_checkpoint_loads_and_matches(size):
    torch.manual_seed(8)
    official = _NipponjoD(4, 4).to(DT)
    x = torch.randn(2, 4, *size, dtype=DT)
    official(x)  # mutates weights and u in place, as the port does
    sd = {k: t.clone() for k, t in official.state_dict().items()}
    model = SNPatchGAN(4, 4).to(DT)
    model.load_state_dict(remap_nipponjo_sn_patch_gan(sd), strict=True)
    model.eval()
    assert _max_diff(model(x)[0].flatten(1), official(x)) <= ATOL


def test_sn_patch_gan_rejects_bad_input():
    model = SNPatchGAN(4, 2)
    with pytest.raises(ValueError, match="N x 4 x H x W"):
        model(torch.zeros(1, 3, 32, 32))
    with pytest.raises(TypeError):
        model([0.0])  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- EdgeConnect


class _OfficialEdgeConnectD(nn.Module):
    """knazeri/edge-connect ``Discriminator`` layout: ``conv1`` also bound as ``features``;
    legacy spectral norm; bias-free."""

    def __init__(self, c):
        super().__init__()

        def block(a, b, s, act):
            conv = nn.utils.spectral_norm(nn.Conv2d(a, b, 4, stride=s, padding=1, bias=False))
            return nn.Sequential(conv, nn.LeakyReLU(0.2)) if act else nn.Sequential(conv)

        self.conv1 = self.features = block(c, 64, 2, True)
        self.conv2 = block(64, 128, 2, True)
        self.conv3 = block(128, 256, 2, True)
        self.conv4 = block(256, 512, 1, True)
        self.conv5 = block(512, 1, 1, False)

    def forward(self, x):
        feats = []
        for block in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5):
            x = block(x)
            feats.append(x)
        return torch.sigmoid(x), feats


@pytest.mark.parametrize("channels", [2, 3])
def test_edgeconnect_checkpoint_loads_and_matches(channels):
    torch.manual_seed(1)
    official = _OfficialEdgeConnectD(channels).to(DT).train()
    x = torch.randn(2, channels, 40, 36, dtype=DT)
    official(x)  # one training step of the power iteration
    sd = official.state_dict()
    assert "features.0.weight_orig" in sd and "conv1.0.weight_orig" in sd
    official.eval()

    model = EdgeConnectDiscriminator(channels).to(DT)
    model.load_state_dict(remap_edgeconnect_discriminator(sd), strict=True)
    model.eval()
    scores, feats = model(x)
    ref_scores, ref_feats = official(x)
    assert _max_diff(scores, ref_scores) <= ATOL
    assert max(_max_diff(a, b) for a, b in zip(feats, ref_feats, strict=True)) <= ATOL


def test_edgeconnect_remap_rejects_diverging_alias():
    sd = dict(_OfficialEdgeConnectD(2).state_dict())
    sd["features.0.weight_orig"] = sd["features.0.weight_orig"] + 1
    with pytest.raises(ValueError, match="differs"):
        remap_edgeconnect_discriminator(sd)


# ----------------------------------------------------------------------------- Shift-Net PatchGAN


def _official_nlayer(c, ndf, n_layers, norm):
    """Shift-Net_pytorch ``NLayerDiscriminator`` layout (``model.<i>``), legacy SN on."""
    use_bias = norm == "instance"
    norm_layer = {
        "instance": lambda n: nn.InstanceNorm2d(n, affine=True, track_running_stats=False),
        "batch": nn.BatchNorm2d,
    }[norm]
    sn = nn.utils.spectral_norm
    seq = [sn(nn.Conv2d(c, ndf, 4, 2, 1)), nn.LeakyReLU(0.2)]
    mult = 1
    for n in range(1, n_layers):
        prev, mult = mult, min(2**n, 8)
        seq += [
            sn(nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=use_bias)),
            norm_layer(ndf * mult),
        ]
        seq += [nn.LeakyReLU(0.2)]
    prev, mult = mult, min(2**n_layers, 8)
    seq += [sn(nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=use_bias)), norm_layer(ndf * mult)]
    seq += [nn.LeakyReLU(0.2), sn(nn.Conv2d(ndf * mult, 1, 4, 1, 1))]
    holder = nn.Module()
    holder.model = nn.Sequential(*seq)
    return holder


@pytest.mark.parametrize(("norm", "n_layers"), [("instance", 3), ("batch", 3), ("instance", 2)])
def test_shiftnet_patchgan_checkpoint_loads_and_matches(norm, n_layers):
    torch.manual_seed(2)
    official = _official_nlayer(3, 4, n_layers, norm).to(DT).train()
    x = torch.randn(2, 3, 48, 40, dtype=DT)
    official.model(x)
    with torch.no_grad():
        for name, t in official.named_parameters():  # non-trivial affine norms
            if ".weight" in name and "orig" not in name:
                t.uniform_(0.5, 1.5)
        for name, t in official.named_buffers():
            if "running_var" in name:
                t.uniform_(0.5, 2.0)
            elif "running_mean" in name:
                t.normal_(0, 0.1)
    official.eval()
    model = PatchGAN(3, 4, n_layers, norm=norm).to(DT)
    model.load_state_dict(remap_spectral_norm_keys(official.state_dict(), "legacy"), strict=True)
    model.eval()
    scores, feats = model(x)
    ref = official.model(x)
    assert _max_diff(scores, ref) <= 1e-11
    assert len(feats) == n_layers + 2 and torch.equal(feats[-1], scores)


# ----------------------------------------------------------------------------- critics


class _OfficialDaa233Critic(nn.Module):
    """daa233 ``LocalDis``/``GlobalDis`` layout: ``dis_conv_module.conv<k>.conv`` + ``linear``."""

    def __init__(self, c, cnum, size):
        super().__init__()
        self.dis_conv_module = nn.Module()
        chans = (c, cnum, 2 * cnum, 4 * cnum, 4 * cnum)
        for k in range(4):
            block = nn.Module()
            block.conv = nn.Conv2d(chans[k], chans[k + 1], 5, 2, 2)
            setattr(self.dis_conv_module, f"conv{k + 1}", block)
        self.linear = nn.Linear(4 * cnum * (size // 16) ** 2, 1)

    def forward(self, x):
        for k in range(4):
            x = F.leaky_relu(getattr(self.dis_conv_module, f"conv{k + 1}").conv(x), 0.2)
        return self.linear(x.view(x.size(0), -1))


@pytest.mark.parametrize("size", [32, 48])
def test_daa233_critic_loads_and_matches(size):
    torch.manual_seed(3)
    official = _OfficialDaa233Critic(3, 4, size).to(DT)
    model = ConvCritic(3, (4, 8, 16, 16), input_size=size).to(DT)
    model.load_state_dict(remap_daa233_critic(official.state_dict()), strict=True)
    x = torch.randn(3, 3, size, size, dtype=DT)
    assert _max_diff(model(x)[0], official(x)) <= ATOL


def test_tf_critic_equals_functional_reference():
    torch.manual_seed(4)
    model = ConvCritic(3, (4, 8, 16, 32), input_size=(64, 48), padding="tf_same").to(DT)
    x = torch.randn(2, 3, 64, 48, dtype=DT)
    ref = x
    for conv in model.convs:  # all sizes even: TF pads (1, 2)
        ref = F.leaky_relu(
            F.conv2d(F.pad(ref, (1, 2, 1, 2)), conv.weight, conv.bias, stride=2), 0.2
        )
    assert ref.shape == (2, 32, 4, 3)
    ref = ref.flatten(1) @ model.linear.weight.t() + model.linear.bias
    assert _max_diff(model(x)[0], ref) <= ATOL


def test_critic_rejects_wrong_size():
    model = deepfill_v1_critics("daa233", image_size=64, patch_size=32)[1]
    with pytest.raises(ValueError, match="32 x 32"):
        model(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="variant"):
        deepfill_v1_critics("mmagic")


class _GmcnnSN(nn.Module):
    """shepnerd/inpainting_gmcnn ``SpectralNorm`` wrapper (keys ``module.weight_bar``,
    ``module.weight_u``, ``module.weight_v``): one v-then-u iteration on every call."""

    def __init__(self, module):
        super().__init__()
        self.module = module
        w = module.weight.detach()
        del module._parameters["weight"]
        module.weight_u = nn.Parameter(
            F.normalize(torch.randn(w.shape[0]), dim=0), requires_grad=False
        )
        module.weight_v = nn.Parameter(
            F.normalize(torch.randn(w[0].numel()), dim=0), requires_grad=False
        )
        module.weight_bar = nn.Parameter(w)

    def forward(self, x):
        m = self.module
        w_mat = m.weight_bar.flatten(1)
        m.weight_v.data = (v := w_mat.detach().t() @ m.weight_u) / (v.norm() + 1e-12)
        m.weight_u.data = (u := w_mat.detach() @ m.weight_v) / (u.norm() + 1e-12)
        m.weight = m.weight_bar / (m.weight_u @ w_mat @ m.weight_v)
        return m.forward(x)


class _OfficialGmcnnD(nn.Module):
    def __init__(self, cnum, size):
        super().__init__()
        chans = (3, cnum, 2 * cnum, 4 * cnum, 4 * cnum)
        layers = [_GmcnnSN(nn.Conv2d(chans[k], chans[k + 1], 5, 2, 2)) for k in range(4)]
        layers.append(_GmcnnSN(nn.Linear(4 * cnum * (size // 16) ** 2, 1)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = F.elu(layer(x))
        return self.layers[-1](x.view(x.size(0), -1))


def test_gmcnn_checkpoint_loads_and_matches():
    torch.manual_seed(5)
    official = nn.Module()
    official.global_discriminator = _OfficialGmcnnD(4, 32).to(DT)
    official.local_discriminator = _OfficialGmcnnD(4, 16).to(DT)
    image, patch = torch.randn(2, 3, 32, 32, dtype=DT), torch.randn(2, 3, 16, 16, dtype=DT)
    official.global_discriminator(image)  # a training call, then an "optimizer step"
    official.local_discriminator(patch)
    with torch.no_grad():
        for name, t in official.named_parameters():
            if name.endswith("weight_bar"):
                t.add_(0.05 * torch.randn_like(t))
    sd = {k: t.clone() for k, t in official.state_dict().items()}
    assert "local_discriminator.layers.4.module.weight_bar" in sd

    global_sd, local_sd = remap_gmcnn_discriminators(sd)
    global_d, local_d = gmcnn_discriminators(image_size=32, patch_size=16, cnum=4)
    global_d.to(DT).load_state_dict(global_sd, strict=True)
    local_d.to(DT).load_state_dict(local_sd, strict=True)
    global_d.eval()
    local_d.eval()
    assert _max_diff(global_d(image)[0], official.global_discriminator(image)) <= 1e-10
    assert _max_diff(local_d(patch)[0], official.local_discriminator(patch)) <= 1e-10


# ----------------------------------------------------------------------------- GLCIC


class _OtenimBranch(nn.Module):
    """otenim Local/GlobalDiscriminator layout: conv<k>, bn<k>, then linear<depth+1>;
    ``bn(relu(conv(x)))``, then ``relu(linear(flatten))``."""

    def __init__(self, widths, size):
        super().__init__()
        self.depth = len(widths)
        chans = (3, *widths)
        for k in range(self.depth):
            setattr(self, f"conv{k + 1}", nn.Conv2d(chans[k], chans[k + 1], 5, 2, 2))
            setattr(self, f"bn{k + 1}", nn.BatchNorm2d(chans[k + 1]))
        side = size // 2**self.depth
        setattr(self, f"linear{self.depth + 1}", nn.Linear(widths[-1] * side * side, 8))

    def forward(self, x):
        for k in range(1, self.depth + 1):
            x = getattr(self, f"bn{k}")(F.relu(getattr(self, f"conv{k}")(x)))
        return F.relu(getattr(self, f"linear{self.depth + 1}")(x.flatten(1)))


class _OtenimContextD(nn.Module):
    def __init__(self, arc, cnum, global_size, local_size):
        super().__init__()
        w = [cnum, 2 * cnum, 4 * cnum, 8 * cnum, 8 * cnum]
        self.model_ld = _OtenimBranch(w, local_size)
        self.model_gd = _OtenimBranch(w + ([8 * cnum] if arc == "places2" else []), global_size)
        self.linear1 = nn.Linear(16, 1)

    def forward(self, local, image):
        return torch.sigmoid(
            self.linear1(torch.cat([self.model_ld(local), self.model_gd(image)], 1))
        )


def _randomise_bn(module):
    with torch.no_grad():
        for name, t in module.named_parameters():
            if ".bn" in name and name.endswith("weight"):
                t.uniform_(0.5, 1.5)
            elif ".bn" in name:
                t.normal_(0, 0.1)
        for name, t in module.named_buffers():
            if "running_var" in name:
                t.uniform_(0.5, 2.0)
            elif "running_mean" in name:
                t.normal_(0, 0.1)


@pytest.mark.parametrize(
    ("arc", "global_size", "local_size"), [("celeba", 64, 32), ("places2", 128, 64)]
)
def test_otenim_glcic_checkpoint_loads_and_matches(arc, global_size, local_size):
    torch.manual_seed(6)
    official = _OtenimContextD(arc, 2, global_size, local_size).to(DT)
    _randomise_bn(official)
    official.eval()
    sd = official.state_dict()
    assert ("model_gd.linear7.weight" in sd) == (arc == "places2")
    model = GLCICDiscriminator(global_size, local_size, arc, cnum=2, fc_features=8).to(DT)
    model.load_state_dict(remap_otenim_glcic_discriminator(sd), strict=True)
    model.eval()
    image = torch.randn(2, 3, global_size, global_size, dtype=DT)
    patch = torch.randn(2, 3, local_size, local_size, dtype=DT)
    logit, feats = model(image, patch)
    assert _max_diff(torch.sigmoid(logit), official(patch, image)) <= ATOL
    assert len(feats) == 6 + (7 if arc == "places2" else 6)


def test_glcic_paper_equals_functional_reference():
    """Paper order conv -> BN -> ReLU (otenim's order would give a different output)."""
    torch.manual_seed(7)
    model = GLCICDiscriminator(64, 32, "paper", cnum=2, fc_features=8).to(DT)
    _randomise_bn(model)
    model.eval()
    image, patch = torch.randn(2, 3, 64, 64, dtype=DT), torch.randn(2, 3, 32, 32, dtype=DT)

    def branch(b, x, depth):
        for k in range(1, depth + 1):
            conv, bn = getattr(b, f"conv{k}"), getattr(b, f"bn{k}")
            x = F.conv2d(x, conv.weight, conv.bias, stride=2, padding=2)
            x = (x - bn.running_mean[:, None, None]) / torch.sqrt(
                bn.running_var[:, None, None] + bn.eps
            )
            x = F.relu(x * bn.weight[:, None, None] + bn.bias[:, None, None])
        return F.relu(x.flatten(1) @ b.fc.weight.t() + b.fc.bias)

    vec = torch.cat(
        [branch(model.local_branch, patch, 5), branch(model.global_branch, image, 6)], 1
    )
    ref = vec @ model.head.weight.t() + model.head.bias
    assert _max_diff(model(image, patch)[0], ref) <= ATOL

    swapped = GLCICDiscriminator(64, 32, "places2", cnum=2, fc_features=8).to(DT)
    swapped.load_state_dict(model.state_dict(), strict=True)
    swapped.eval()
    assert _max_diff(swapped(image, patch)[0], ref) > 1e-6


def test_glcic_rejects_bad_inputs():
    model = GLCICDiscriminator(64, 32, cnum=1, fc_features=2)
    with pytest.raises(ValueError, match="local_patch must be 32 x 32"):
        model(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="batch sizes"):
        model(torch.zeros(2, 3, 64, 64), torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="arch"):
        GLCICDiscriminator(arch="mmagic")
