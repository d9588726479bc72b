"""PGGAN (zoo/models/pggan.py): a re-implementation from the paper, unverified.

There is no official code or checkpoint, so there is no converter to test (asserted below);
what is tested is that the module is what its docstring says, in float64:

- parameter counts derived by hand from the architecture table (arithmetic written out here);
- the generator against a plain-``torch.nn.functional`` forward of its own tensors, for both
  upsampling modes ("interpolated convolution" and transposed convolution);
- the discriminator's trunk is one module shared by both heads: one trunk evaluation per
  forward, both heads read its output, and the trunk's gradient is the sum of the gradients
  from the global head and from the patch head (each reaches it alone too);
- the patch head's receptive field, computed (70) and measured from gradient supports, and the
  global logit depending on every input pixel;
- the objective term by term (L1 + two vanilla adversarial terms with their weights; D loss
  the sum of the two halved BCE losses), and which image the discriminator sees.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.testing import assert_close

import zoo.models.pggan as pggan_module
from zoo._registry import create_model
from zoo.layers.receptive_field import input_span, layers_from_module, receptive_field
from zoo.models._base import count_params
from zoo.models.pggan import DILATIONS, PGGAN, PGGANDiscriminator, PGGANGenerator

DT = torch.float64


def conv(c_in, c_out, k, bias=True):
    return c_in * c_out * k * k + (c_out if bias else 0)


# ------------------------------------------------------------------------ parameter counts
def test_generator_parameter_count_from_the_table():
    # encoder: 7x7 4->64, 3x3 s2 64->128, 3x3 s2 128->256 (InstanceNorm: no parameters)
    encoder = conv(4, 64, 7) + conv(64, 128, 3) + conv(128, 256, 3)
    assert encoder == 12_608 + 73_856 + 295_168
    # 9 residual blocks of two 3x3 256->256 convs with bias
    blocks = 9 * 2 * conv(256, 256, 3)
    assert blocks == 10_621_440
    # decoder: 3x3 256->128 and 128->64 (resize-conv, or 3x3 transposed: same count), 7x7 64->3
    decoder = conv(256, 128, 3) + conv(128, 64, 3) + conv(64, 3, 7)
    assert decoder == 295_040 + 73_792 + 9_411
    assert encoder + blocks + decoder == 11_381_315
    for upsample in ("interp", "deconv"):
        assert count_params(PGGANGenerator(upsample=upsample)) == 11_381_315


def test_discriminator_parameter_counts_from_the_table():
    bn = 2  # BatchNorm: weight + bias per channel
    # trunk: 4x4 s2 convs 3->64 (bias), 64->128 + BN, 128->256 + BN (bias-free before BN)
    trunk = (
        conv(3, 64, 4) + conv(64, 128, 4, False) + bn * 128 + conv(128, 256, 4, False) + bn * 256
    )
    # patch head: 4x4 s1 256->512 + BN, 4x4 s1 512->1 (bias)
    patch = conv(256, 512, 4, False) + bn * 512 + conv(512, 1, 4)
    # global head: 4x4 s2 256->512, 512->512, 512->512 (each + BN), linear 512*4*4 -> 1
    glob = conv(256, 512, 4, False) + 2 * conv(512, 512, 4, False) + 3 * bn * 512 + 512 * 16 + 1
    assert (trunk, patch, glob) == (659_264, 2_106_369, 10_497_025)
    disc = PGGANDiscriminator()
    assert count_params(disc.trunk) == trunk
    assert count_params(disc.patch_head) == patch
    assert count_params(disc.global_head) == glob
    model = create_model("pggan")
    assert model.num_params() == {"generator": 11_381_315, "discriminator.pggan": 13_262_658}


def test_there_is_no_official_converter():
    doc = pggan_module.__doc__
    assert "re-implementation from the paper, unverified" in doc.lower()
    assert "Official code: **none**" in doc
    assert not [n for n in dir(pggan_module) if n.startswith(("convert_", "load_"))]
    assert not [n for n in dir(PGGAN) if n.startswith(("convert_", "load_official"))]


# ------------------------------------------------------------------------ generator
def _instance_norm(x):
    return F.instance_norm(x, eps=1e-5)


def reference_generator(net: PGGANGenerator, x, upsample, interp_mode, dilations):
    """The documented layer table with functional ops, on the module's own tensors."""
    p = dict(net.named_parameters())

    def cv(t, name, pad, stride=1, dilation=1, reflect=False):
        if reflect:
            t = F.pad(t, (pad,) * 4, mode="reflect")
            pad = 0
        return F.conv2d(
            t, p[f"{name}.weight"], p[f"{name}.bias"], stride=stride, padding=pad, dilation=dilation
        )

    x = F.relu(_instance_norm(cv(x, "encoder.0.conv", 3, reflect=True)))
    x = F.relu(_instance_norm(cv(x, "encoder.1.conv", 1, stride=2)))
    x = F.relu(_instance_norm(cv(x, "encoder.2.conv", 1, stride=2)))
    for i, d in enumerate(dilations):
        y = F.relu(_instance_norm(cv(x, f"blocks.{i}.conv_block.1", d, dilation=d, reflect=True)))
        x = x + _instance_norm(cv(y, f"blocks.{i}.conv_block.5", 1, reflect=True))
    for j in range(2):
        if upsample == "interp":
            x = F.interpolate(x, scale_factor=2, mode=interp_mode)
            x = cv(x, f"decoder.{j}.1.conv", 1)
        else:
            w, b = p[f"decoder.{j}.0.weight"], p[f"decoder.{j}.0.bias"]
            x = F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)
        x = F.relu(_instance_norm(x))
    return torch.tanh(cv(x, "decoder.2.conv", 3, reflect=True))


@pytest.mark.parametrize(
    "upsample,interp_mode", [("interp", "nearest"), ("interp", "bilinear"), ("deconv", "nearest")]
)
@pytest.mark.parametrize("size", [(36, 36), (40, 52)])
def test_generator_matches_functional_reference(upsample, interp_mode, size):
    torch.manual_seed(0)
    dilations = (1, 2, 8, 3)
    net = PGGANGenerator(ngf=4, dilations=dilations, upsample=upsample, interp_mode=interp_mode)
    net = net.to(DT)
    x = torch.rand(2, 4, *size, dtype=DT)
    with torch.no_grad():
        got = net(x)
        want = reference_generator(net, x, upsample, interp_mode, dilations)
    assert got.shape == (2, 3, *size)
    assert_close(got, want, rtol=0, atol=1e-12)


def test_generator_input_is_zeroed_hole_plus_mask():
    torch.manual_seed(0)
    model = PGGAN(ngf=4, ndf=4).to(DT).eval()
    image = torch.rand(1, 3, 64, 64, dtype=DT) * 2 - 1
    mask = torch.zeros(1, 1, 64, 64, dtype=DT)
    mask[..., 10:40, 20:50] = 1
    with torch.no_grad():
        got = model(image, mask)["output"]
        want = model.generator(torch.cat([image * (1 - mask), mask], 1))
    assert_close(got, want, rtol=0, atol=0)


def test_generator_size_checks():
    net = PGGANGenerator(ngf=4)
    assert net.min_size == 4 * (max(DILATIONS) + 1) == 36
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.zeros(1, 4, 38, 40))
    with pytest.raises(ValueError, match=">= 36"):
        net(torch.zeros(1, 4, 32, 40))
    with pytest.raises(ValueError, match="upsample"):
        PGGANGenerator(upsample="pixelshuffle")
    with pytest.raises(ValueError, match="d_input"):
        PGGAN(d_input="mask")
    with pytest.raises(ValueError, match="d_norm"):
        PGGAN(d_norm="layer")


# ------------------------------------------------------------------------ shared trunk
def small_disc(seed: int = 0) -> PGGANDiscriminator:
    torch.manual_seed(seed)
    return PGGANDiscriminator(3, 4).to(DT)


def test_both_heads_read_one_trunk_evaluation():
    disc = small_disc()
    calls = []
    disc.trunk.register_forward_hook(lambda mod, inp, out: calls.append(out))
    x = torch.rand(2, 3, 64, 64, dtype=DT)
    global_logits, patch_logits, feats = disc(x)
    assert len(calls) == 1  # one trunk evaluation per forward
    shared = calls[0]
    assert feats[0] is shared
    assert_close(global_logits, disc.global_head(shared), rtol=0, atol=0)
    assert_close(patch_logits, disc.patch_head(shared), rtol=0, atol=0)
    assert global_logits.shape == (2, 1) and patch_logits.shape == (2, 1, 6, 6)
    # one trunk module, no parameter of it duplicated in a head
    trunk_ids = {id(p) for p in disc.trunk.parameters()}
    head_ids = {id(p) for p in disc.global_head.parameters()} | {
        id(p) for p in disc.patch_head.parameters()
    }
    assert trunk_ids and not trunk_ids & head_ids
    assert len(list(disc.parameters())) == len(trunk_ids) + len(head_ids)


def _grads(module: nn.Module) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.clone() for p in module.parameters()]


def test_trunk_gradient_is_the_sum_of_both_heads():
    disc = small_disc().train()
    x = torch.rand(2, 3, 64, 64, dtype=DT)
    weights = torch.rand(2, 1, 6, 6, dtype=DT)

    def run(use_global: bool, use_patch: bool):
        disc.zero_grad(set_to_none=True)
        g, p, _ = disc(x)
        loss = (g.sum() if use_global else 0) + ((p * weights).sum() if use_patch else 0)
        loss.backward()
        return _grads(disc.trunk), _grads(disc.global_head), _grads(disc.patch_head)

    trunk_g, glob_g, patch_none = run(True, False)
    trunk_p, glob_none, patch_p = run(False, True)
    trunk_both, _, _ = run(True, True)
    assert all(g is None for g in patch_none) and all(g is None for g in glob_none)
    assert all(g is not None and g.abs().sum() > 0 for g in trunk_g + trunk_p + glob_g + patch_p)
    for a, b, both in zip(trunk_g, trunk_p, trunk_both):
        assert not torch.allclose(a, b)
        assert_close(both, a + b, rtol=0, atol=1e-12)


def test_generator_gets_gradients_from_both_adversarial_terms():
    torch.manual_seed(0)
    model = PGGAN(ngf=4, ndf=4, w_rec=0.0).to(DT).train()
    image = torch.rand(2, 3, 64, 64, dtype=DT) * 2 - 1
    mask = torch.zeros(2, 1, 64, 64, dtype=DT)
    mask[..., 16:48, 8:40] = 1

    def grad_of(w_global, w_patch):
        model.w_global, model.w_patch = w_global, w_patch
        model.zero_grad(set_to_none=True)
        loss, _ = model.generator_loss(image, mask, model(image, mask), step=0)
        loss.backward()
        return torch.cat([p.grad.flatten() for p in model.generator.parameters()])

    g_global, g_patch, g_both = grad_of(1.0, 0.0), grad_of(0.0, 1.0), grad_of(1.0, 1.0)
    assert g_global.abs().sum() > 0 and g_patch.abs().sum() > 0
    assert_close(g_both, g_global + g_patch, rtol=0, atol=1e-12)


# ------------------------------------------------------------------------ receptive field
def _positive(disc: PGGANDiscriminator) -> PGGANDiscriminator:
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in disc.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen, dtype=DT) + 0.1)
                if m.bias is not None:
                    m.bias.zero_()
    return disc.eval()  # BN with running statistics: pixel-wise, no image-wide coupling


def test_patch_head_receptive_field_computed_and_measured():
    disc = _positive(small_disc())
    layers = layers_from_module(nn.Sequential(disc.trunk, disc.patch_head))
    assert receptive_field(layers) == 70  # 1 + 3 * (1 + 2 + 4 + 8 + 8): the 70x70 PatchGAN
    x = torch.rand(1, 3, 96, 96, dtype=DT, requires_grad=True)
    _, patch, _ = disc(x)
    assert patch.shape[-2:] == (10, 10)
    for i, j in [(4, 5), (5, 3), (6, 6)]:
        (grad,) = torch.autograd.grad(patch[0, 0, i, j], x, retain_graph=True)
        support = (grad[0].abs().sum(0) != 0).nonzero()
        rows, cols = support[:, 0], support[:, 1]
        assert (
            (rows.min().item(), rows.max().item())
            == input_span(layers, i)
            == (8 * i - 23, 8 * i + 46)
        )
        assert (cols.min().item(), cols.max().item()) == input_span(layers, j)
        assert len(support) == 70 * 70  # a full square: every pixel of the patch counts


def test_global_logit_sees_every_pixel():
    disc = _positive(small_disc())
    x = torch.rand(1, 3, 64, 64, dtype=DT, requires_grad=True)
    global_logits, _, _ = disc(x)
    (grad,) = torch.autograd.grad(global_logits.sum(), x)
    assert (grad[0].abs().sum(0) != 0).all()


def test_discriminator_size_checks():
    disc = small_disc()
    assert disc.min_size == 64
    with pytest.raises(ValueError, match="at least 64"):
        disc(torch.zeros(1, 3, 56, 64, dtype=DT))
    with pytest.raises(ValueError, match="N x 3"):
        disc(torch.zeros(1, 4, 64, 64, dtype=DT))
    g, p, _ = disc(torch.rand(2, 3, 256, 256, dtype=DT))  # the paper's size: pool = identity
    assert g.shape == (2, 1) and p.shape == (2, 1, 30, 30)


# ------------------------------------------------------------------------ objective
def _bce(logits, target):
    prob = torch.sigmoid(logits)
    return -(target * torch.log(prob) + (1 - target) * torch.log(1 - prob)).mean()


@pytest.mark.parametrize("d_input", ["composite", "output"])
def test_losses_term_by_term(d_input):
    torch.manual_seed(0)
    model = PGGAN(ngf=4, ndf=4, d_input=d_input, w_rec=0.7, w_global=0.2, w_patch=0.1).to(DT)
    model.train()
    g = torch.Generator().manual_seed(1)
    image = torch.rand(2, 3, 64, 64, generator=g, dtype=DT) * 2 - 1
    mask = torch.zeros(2, 1, 64, 64, dtype=DT)
    mask[0, :, 8:30, 10:50] = 1
    mask[1, :, 30:60, 0:20] = 1
    out = model(image, mask)
    fake = out["composite"] if d_input == "composite" else out["output"]
    disc = model.discriminators["pggan"]
    l1 = (out["output"] - image).abs().mean()
    g_logits, p_logits, _ = disc(fake)
    loss, logs = model.generator_loss(image, mask, out, step=0)
    want = 0.7 * l1 + 0.2 * _bce(g_logits, 1.0) + 0.1 * _bce(p_logits, 1.0)
    assert_close(loss, want, rtol=0, atol=1e-12)
    assert_close(logs["l1"], l1, rtol=0, atol=1e-14)

    detached = {k: v.detach() for k, v in out.items()}
    d_loss, d_logs = model.discriminator_loss(image, mask, detached, step=0)
    rg, rp, _ = disc(image)
    fg, fp, _ = disc(fake.detach())
    want_d = (_bce(rg, 1.0) + _bce(fg, 0.0)) / 2 + (_bce(rp, 1.0) + _bce(fp, 0.0)) / 2
    assert_close(d_loss, want_d, rtol=0, atol=1e-12)
    assert_close(d_logs["d_global"] + d_logs["d_patch"], d_logs["d_total"], rtol=0, atol=1e-15)

    # which image D sees: with the composite, known pixels get no adversarial gradient
    model.w_rec = 0.0
    output = out["output"].detach().requires_grad_(True)
    composite = mask * output + (1 - mask) * image
    adv, _ = model.generator_loss(image, mask, {"output": output, "composite": composite}, 0)
    (grad,) = torch.autograd.grad(adv, output)
    known_grad = (grad * (1 - mask)).abs().sum()
    assert (known_grad == 0) if d_input == "composite" else (known_grad > 0)
    assert (grad * mask).abs().sum() > 0


def test_optimizers():
    opts = PGGAN(ngf=4, ndf=4).configure_optimizers()
    assert set(opts) == {"generator", "discriminator"}
    for opt in opts.values():
        assert isinstance(opt, torch.optim.Adam)
        group = opt.param_groups[0]
        assert (group["lr"], group["betas"]) == (2e-4, (0.5, 0.999))
