"""MSNPS: content network = Context Encoder generator, the texture energy against a loop
reference, the texture step lowering it, and the VGG-19 weight handling."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo._weights import MissingWeightsError
from zoo.layers.vgg import VGGFeatures
from zoo.models.context_encoder import ContextEncoder
from zoo.models.msnps import MSNPS, scale_sizes

SMALL = {"n_bottleneck": 100}  # train.lua's default width: same code path, a smaller test


def build(**kwargs) -> MSNPS:
    torch.manual_seed(0)
    return zoo.create_model("msnps", **{"vgg": "random", **SMALL, **kwargs}).double()


def smooth_image(size: int, seed: int = 0) -> torch.Tensor:
    """A textured but smooth 1 x 3 x size x size image in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, 6, 6, generator=g, dtype=torch.float64) * 2 - 1
    base = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    stripes = 0.3 * torch.sin(xx.double() * 0.9 + yy.double() * 0.4)
    return (0.6 * base + stripes).clamp(-1, 1)


def box_mask(size: int, lo: int, hi: int) -> torch.Tensor:
    mask = torch.zeros(1, 1, size, size, dtype=torch.float64)
    mask[..., lo:hi, lo:hi] = 1
    return mask


# --------------------------------------------------------------------------- reference
def hole_cells(mask: torch.Tensor, h: int) -> torch.Tensor:
    """h x h grid, True where any pixel of the cell's footprint is a hole (loops)."""
    r = mask.shape[-1] // h
    out = torch.zeros(h, h, dtype=torch.bool)
    for a in range(h):
        for b in range(h):
            out[a, b] = bool(mask[0, 0, a * r : (a + 1) * r, b * r : (b + 1) * r].any())
    return out


def slow_mrf(feat: torch.Tensor, src: torch.Tensor, hole: torch.Tensor, k: int, stride: int):
    """sum_i ||q_i - s_NN(i)||^2, queries centred in the hole, sources fully known (loops)."""
    h = feat.shape[-1]
    sources = [
        src[0, :, i : i + k, j : j + k].flatten()
        for i in range(0, h - k + 1, stride)
        for j in range(0, h - k + 1, stride)
        if not bool(hole[i : i + k, j : j + k].any())
    ]
    if not sources:
        return None  # the model leaves such a layer out
    total = feat.new_zeros(())
    for i in range(0, h - k + 1, stride):
        for j in range(0, h - k + 1, stride):
            if not bool(hole[i + k // 2, j + k // 2]):
                continue
            q = feat[0, :, i : i + k, j : j + k].flatten()
            scores = [float(q @ s) / float(s.norm()) for s in sources]
            best = sources[max(range(len(scores)), key=scores.__getitem__)]
            total = total + ((q - best) ** 2).sum()
    return total


def slow_energy(model: MSNPS, vgg, x, content, mask):
    fx, fc = vgg(x), vgg(content)
    cw, mw, tw = model.texture_weights
    energy = cw * ((fx["relu4_2"] - fc["relu4_2"]) ** 2).mean()
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=x.dtype).view(1, 3, 1, 1)
    u = ((x + 1) / 2 - mean) / std  # torchvision VGG input units
    tv = x.new_zeros(())
    for i in range(u.shape[-2] - 1):
        row = u[..., i, :-1]
        tv = tv + ((row - u[..., i, 1:]) ** 2).sum() + ((row - u[..., i + 1, :-1]) ** 2).sum()
    energy = energy + tw * 0.5 * tv
    for layer in model.texture_layers:
        hole = hole_cells(mask, fx[layer].shape[-1])
        term = slow_mrf(fx[layer], fc[layer], hole, model.patch_size, model.mrf_stride)
        if term is not None:
            energy = energy + mw * term
    return energy


@pytest.mark.parametrize(
    "layers,box",
    [
        (("relu4_1",), (24, 40)),
        (("relu3_1", "relu4_1"), (24, 40)),
        (("relu3_1", "relu4_1"), (16, 48)),  # relu4_1: no known 3x3 window -> left out
        (("relu3_1",), (8, 30)),
    ],
)
def test_texture_energy_equals_the_loop_reference(layers, box):
    model = build(texture_layers=layers)
    content = smooth_image(64)
    mask = box_mask(64, *box)
    g = torch.Generator().manual_seed(3)
    x = content + mask * 0.3 * torch.randn(content.shape, generator=g, dtype=torch.float64)
    vgg = model.texture_network(content)
    with torch.no_grad():
        reference = vgg(content)
        masks = model.texture_masks(reference, mask)
        ours = sum(model.texture_energy(vgg, x, reference, masks).values())
        expected = slow_energy(model, vgg, x, content, mask)
    assert ("relu4_1" in masks) == (box != (16, 48) and "relu4_1" in layers)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("layers", [("relu4_1",), ("relu3_1", "relu4_1")])
def test_texture_step_lowers_the_energy_and_keeps_known_pixels(layers):
    model = build(texture_layers=layers, texture_iters=4)
    content = smooth_image(64)
    mask = box_mask(64, 24, 40)
    g = torch.Generator().manual_seed(4)
    start = content + mask * 0.5 * torch.randn(content.shape, generator=g, dtype=torch.float64)
    vgg = model.texture_network(content)
    with torch.no_grad():
        reference = vgg(content)
        masks = model.texture_masks(reference, mask)
        before = sum(model.texture_energy(vgg, start, reference, masks).values())
    after_x = model._optimise_scale(vgg, start, content, mask)
    with torch.no_grad():
        after = sum(model.texture_energy(vgg, after_x, reference, masks).values())
        slow_after = slow_energy(model, vgg, after_x, content, mask)
    assert set(masks) == set(layers)
    assert after < 0.9 * before, (float(before), float(after))
    torch.testing.assert_close(after, slow_after, rtol=0, atol=1e-10)
    known = (1 - mask).bool().expand_as(content)
    assert torch.equal(after_x[known], content[known])


def test_multi_scale_refinement_keeps_known_pixels_and_sizes():
    assert scale_sizes(128, 3) == [32, 64, 128]
    assert scale_sizes(100, 3) == [25, 50, 100] and scale_sizes(64, 1) == [64]
    model = build(texture_iters=2)
    content = smooth_image(64).expand(2, 3, 64, 64).clone()
    mask = box_mask(64, 16, 48).expand(2, 1, 64, 64).clone()
    mask[1, :, 16:48, 16:30] = 0  # per-image masks are honoured
    out = model.texture_refine(content, mask)
    known = (1 - mask).bool().expand_as(content)
    assert torch.equal(out[known], content[known])
    assert out.abs().max() <= 1 and not torch.equal(out, content)
    torch.testing.assert_close(  # each image is optimised on its own
        model.texture_refine(content[1:], mask[1:]), out[1:], rtol=0, atol=0
    )


def test_lbfgs_settings_are_the_official_ones():
    model = build()
    assert (model.texture_iters, model.texture_scales, model.texture_layers) == (
        10,
        3,
        ("relu4_1",),
    )  # official iterations: 100 (kwarg)
    assert model.texture_weights == (20.0, 1e-4, 1e-4) and model.lbfgs_history == 25
    assert (model.patch_size, model.mrf_stride, model.content_layer) == (3, 2, "relu4_2")


# --------------------------------------------------------------------------- content net
def test_parameter_counts_and_no_vgg_in_checkpoints():
    torch.manual_seed(0)
    model = zoo.create_model("msnps", vgg="random")
    assert model.num_params() == {"generator": 71_124_544, "discriminator.local": 2_765_568}
    vgg = model.texture_network(torch.zeros(1))
    widths = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256)]
    widths += [(256, 256)] * 3 + [(256, 512), (512, 512)]  # conv1_1 .. conv4_2
    assert sum(p.numel() for p in vgg.parameters()) == sum(9 * a * b + b for a, b in widths)
    assert not any(p.requires_grad for p in vgg.parameters())
    assert len(model.trained_state()["generator"]) == 56
    assert not any(k.startswith(("features", "_texture")) for k in model.state_dict())


def test_content_only_path_equals_the_context_encoder_generator():
    torch.manual_seed(1)
    ce = ContextEncoder(**SMALL).double()
    model = build()
    model.load_trained_state(ce.trained_state())
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 128, 128, generator=g, dtype=torch.float64) * 2 - 1
    mask = box_mask(128, 32, 96).expand(2, 1, 128, 128).clone()
    # training mode: only the content net runs (BN batch statistics), same losses
    ce.train(), model.train()
    out_ce, out = ce(image, mask), model(image, mask)
    torch.testing.assert_close(out["output"], out_ce["output"], rtol=0, atol=0)
    loss_ce, _ = ce.generator_loss(image, mask, out_ce, 0)
    loss, _ = model.generator_loss(image, mask, out, 0)
    torch.testing.assert_close(loss, loss_ce, rtol=0, atol=0)
    # eval mode, texture step off
    ce.eval(), model.eval()
    model.texture_iters = 0
    with torch.no_grad():
        torch.testing.assert_close(
            model(image, mask)["output"], ce(image, mask)["output"], rtol=0, atol=0
        )


def test_eval_forward_runs_the_texture_step_on_the_content_result():
    model = build(texture_iters=1).eval()
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 128, 128, generator=g, dtype=torch.float64) * 2 - 1
    mask = box_mask(128, 36, 92)
    with torch.inference_mode():  # as benchmarks.evaluate.predict calls it
        model.texture_network(image)  # built here: must still be usable by autograd
        out = model(image, mask)
    model.texture_iters = 0
    with torch.no_grad():
        content = model(image, mask)["output"]
    torch.testing.assert_close(out["content"], content, rtol=0, atol=0)
    assert not torch.equal(out["output"], out["content"])
    known = (1 - mask).bool().expand_as(image)
    assert torch.equal(out["composite"][known], image[known])


# --------------------------------------------------------------------------- VGG weights
def test_missing_vgg_weights_raise_a_clear_error(empty_torch_home):
    torch.manual_seed(0)
    model = zoo.create_model("msnps", vgg="imagenet", texture_iters=1, **SMALL).double().eval()
    image = torch.zeros(1, 3, 128, 128, dtype=torch.float64)
    mask = box_mask(128, 32, 96)
    with pytest.raises(MissingWeightsError, match="vgg19-dcbb9e9d.pth") as err:
        with torch.no_grad():
            model(image, mask)
    assert str(empty_torch_home) in str(err.value)
    model.texture_iters = 0  # content network only: no VGG needed
    with torch.no_grad():
        model(image, mask)
    model.train()  # training runs the content network only (BN on 1 x 1 needs N > 1)
    model(image.expand(2, 3, 128, 128), mask.expand(2, 1, 128, 128))


def test_imagenet_vgg_is_read_from_the_torch_cache(fake_torch_home):
    torch.manual_seed(0)
    model = zoo.create_model("msnps", vgg="imagenet", **SMALL)
    vgg = model.texture_network(torch.zeros(1))
    assert isinstance(vgg, VGGFeatures) and vgg.pretrained
    file = torch.load(fake_torch_home / "vgg19-dcbb9e9d.pth", weights_only=True)
    torch.testing.assert_close(vgg.features[0].weight, file["features.0.weight"])
    torch.testing.assert_close(vgg.features[21].bias, file["features.21.bias"])  # conv4_2


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="texture_iters"):
        build(texture_iters=-1)
    with pytest.raises(ValueError, match="texture_layers"):
        build(texture_layers="relu4_1")
    with pytest.raises(ValueError, match="vgg"):
        build(vgg="caffe")
    assert math.isclose(build().wtl2, 0.999)
