"""Spectral norm: the parametrization's sigma, and loading the three legacy checkpoint layouts.

References written here: the power-iteration formulas of each source (legacy torch
``spectral_norm``, shepnerd/inpainting_gmcnn ``SpectralNorm``, nipponjo ``Conv2DSpectralNorm``)
as small float64 modules, and the normalised convolution ``conv(x, W / sigma)``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.layers.spectral_norm import remap_spectral_norm_keys, spectral_norm

DT = torch.float64
ATOL = 1e-12


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm().clamp_min(1e-12)


def _sigma_legacy_train(w_mat, u):
    """Legacy / GMCNN / nipponjo / TF order: v from u, then u from v; sigma = u'^T W v."""
    v = _unit(w_mat.t() @ u)
    u2 = _unit(w_mat @ v)
    return u2 @ w_mat @ v, u2, v


def _sigma_param_train(w_mat, v):
    """torch.nn.utils.parametrizations order: u from v, then v from u; sigma = u^T W v'."""
    u = _unit(w_mat @ v)
    v2 = _unit(w_mat.t() @ u)
    return u @ w_mat @ v2, u, v2


def _conv(x, w, b):
    return F.conv2d(x, w, b, stride=2, padding=1)


def _max_diff(a, b):
    return (a - b).abs().max().item()


def _legacy_conv(seed: int, steps: int = 3) -> nn.Conv2d:
    """A legacy-SN conv whose u, v went through a few training forwards, followed by a weight
    update (as after an optimizer step), so the stored vectors are not a fixed point."""
    torch.manual_seed(seed)
    conv = nn.utils.spectral_norm(nn.Conv2d(3, 5, 3, stride=2, padding=1).to(DT))
    x = torch.randn(1, 3, 8, 8, dtype=DT)
    conv.train()
    for _ in range(steps):
        conv(x)
    with torch.no_grad():
        conv.weight_orig.add_(0.3 * torch.randn_like(conv.weight_orig))
    return conv


def _param_conv() -> nn.Module:
    return spectral_norm(nn.Conv2d(3, 5, 3, stride=2, padding=1).to(DT))


# ----------------------------------------------------------------------------- wrapper


def test_wrapper_is_the_parametrization_and_counts_only_the_weight():
    conv = spectral_norm(nn.Conv2d(4, 6, 5))
    assert nn.utils.parametrize.is_parametrized(conv, "weight")
    assert sorted(conv.state_dict()) == [
        "bias",
        "parametrizations.weight.0._u",
        "parametrizations.weight.0._v",
        "parametrizations.weight.original",
    ]
    trainable = sum(p.numel() for p in conv.parameters() if p.requires_grad)
    assert trainable == 6 * 4 * 25 + 6


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"n_power_iterations": 0}, ValueError), ({"eps": 0.0}, ValueError)],
)
def test_wrapper_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error):
        spectral_norm(nn.Conv2d(1, 1, 3), **kwargs)
    with pytest.raises(ValueError, match="weight"):
        spectral_norm(nn.ReLU())
    with pytest.raises(TypeError):
        spectral_norm("conv")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("layer", "to_matrix"),
    [
        (lambda: nn.Conv2d(3, 5, 3), lambda w: w.flatten(1)),
        (lambda: nn.Conv2d(8, 4, 5), lambda w: w.flatten(1)),
        (lambda: nn.Linear(7, 4), lambda w: w),
        # transposed convs normalise along dim 1 (their output channels)
        (lambda: nn.ConvTranspose2d(6, 3, 4), lambda w: w.transpose(0, 1).flatten(1)),
    ],
)
def test_sigma_converges_to_largest_singular_value(layer, to_matrix):
    torch.manual_seed(0)
    module = spectral_norm(layer().to(DT), n_power_iterations=2000)
    module.train()
    raw = module.parametrizations.weight.original.detach()
    normalised = module.weight.detach()  # one training access: 2000 power iterations
    sigma_est = raw / normalised  # constant array equal to the estimate
    truth = torch.linalg.matrix_norm(to_matrix(raw), ord=2)
    torch.testing.assert_close(
        sigma_est, torch.full_like(sigma_est, truth.item()), rtol=1e-10, atol=0
    )
    unit = torch.linalg.matrix_norm(to_matrix(normalised), ord=2)
    assert abs(unit.item() - 1.0) < 1e-10


def test_train_mode_runs_u_then_v_and_eval_mode_uses_stored_vectors():
    torch.manual_seed(1)
    conv = _param_conv()
    sn = conv.parametrizations.weight[0]
    w = conv.parametrizations.weight.original.detach()
    u0, v0 = sn._u.clone(), sn._v.clone()
    x = torch.randn(2, 3, 9, 9, dtype=DT)

    conv.eval()
    expected = _conv(x, w / (u0 @ w.flatten(1) @ v0), conv.bias)
    assert _max_diff(conv(x), expected) <= ATOL
    assert torch.equal(sn._u, u0) and torch.equal(sn._v, v0)

    conv.train()
    sigma, u1, v1 = _sigma_param_train(w.flatten(1), v0)
    out = conv(x)
    assert _max_diff(out, _conv(x, w / sigma, conv.bias)) <= ATOL
    assert _max_diff(sn._u, u1) <= ATOL and _max_diff(sn._v, v1) <= ATOL


# ----------------------------------------------------------------------------- legacy


def test_legacy_keys_load_strict_and_eval_forward_equals_legacy_formula():
    legacy = _legacy_conv(seed=2)
    sd = legacy.state_dict()
    remapped = remap_spectral_norm_keys(sd, "legacy")
    conv = _param_conv()
    conv.load_state_dict(remapped, strict=True)
    conv.eval()
    legacy.eval()

    w, u, v = sd["weight_orig"], sd["weight_u"], sd["weight_v"]
    x = torch.randn(2, 3, 11, 10, dtype=DT)
    reference = _conv(x, w / (u @ w.flatten(1) @ v), sd["bias"])  # eval: no iteration
    assert _max_diff(conv(x), reference) <= ATOL
    assert _max_diff(legacy(x), reference) <= ATOL


def test_legacy_train_mode_first_forward_differs_in_iteration_order():
    """Pinned down: in train mode the legacy code iterates v-then-u and the parametrization
    u-then-v, so from the same stored (u, v) their first training sigmas differ (unless u, v
    are converged, next test)."""
    legacy = _legacy_conv(seed=3)
    sd = {k: t.clone() for k, t in legacy.state_dict().items()}
    conv = _param_conv()
    conv.load_state_dict(remap_spectral_norm_keys(sd, "legacy"), strict=True)
    conv.train()
    legacy.train()
    w_mat, x = sd["weight_orig"].flatten(1), torch.randn(1, 3, 8, 8, dtype=DT)

    sigma_legacy, _, _ = _sigma_legacy_train(w_mat, sd["weight_u"])
    sigma_param, _, _ = _sigma_param_train(w_mat, sd["weight_v"])
    out_legacy, out_param = legacy(x), conv(x)
    assert _max_diff(out_legacy, _conv(x, sd["weight_orig"] / sigma_legacy, sd["bias"])) <= ATOL
    assert _max_diff(out_param, _conv(x, sd["weight_orig"] / sigma_param, sd["bias"])) <= ATOL
    assert abs(sigma_legacy - sigma_param).item() > 1e-4 * sigma_legacy.item()


def test_legacy_and_parametrization_agree_in_train_mode_once_converged():
    torch.manual_seed(4)
    # a weight with a known, well separated spectrum: sigma_1 = 3, the rest <= 1
    q_left, _ = torch.linalg.qr(torch.randn(5, 5, dtype=DT))
    q_right, _ = torch.linalg.qr(torch.randn(27, 5, dtype=DT))
    singular = torch.tensor([3.0, 1.0, 0.8, 0.5, 0.2], dtype=DT)
    w = (q_left * singular) @ q_right.t()  # (5, 27)
    legacy = nn.utils.spectral_norm(nn.Conv2d(3, 5, 3, stride=2, padding=1).to(DT))
    with torch.no_grad():
        legacy.weight_orig.copy_(w.reshape(5, 3, 3, 3))
    legacy.train()
    x = torch.randn(1, 3, 8, 8, dtype=DT)
    for _ in range(30):  # error shrinks by (1/3)^2 per step
        legacy(x)
    conv = _param_conv()
    conv.load_state_dict(remap_spectral_norm_keys(legacy.state_dict(), "legacy"), strict=True)
    conv.train()
    out_param, out_legacy = conv(x), legacy(x)
    assert _max_diff(out_param, out_legacy) <= 1e-12
    assert abs(3.0 - (legacy.weight_orig / legacy.weight).mean().item()) < 1e-12


def test_legacy_remap_renames_in_place_and_keeps_other_keys():
    legacy = _legacy_conv(seed=5)
    sd = {"head.scale": torch.ones(1, dtype=DT)}
    sd.update({f"block.0.{k}": t for k, t in legacy.state_dict().items()})
    sd["tail.bias"] = torch.zeros(2, dtype=DT)
    out = remap_spectral_norm_keys(sd, "legacy")
    assert list(out) == [
        "head.scale",
        "block.0.bias",
        "block.0.parametrizations.weight.original",
        "block.0.parametrizations.weight.0._u",
        "block.0.parametrizations.weight.0._v",
        "tail.bias",
    ]
    assert out["block.0.parametrizations.weight.0._v"] is sd["block.0.weight_v"]


def test_legacy_transposed_conv_loads():
    torch.manual_seed(6)
    legacy = nn.utils.spectral_norm(nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1).to(DT))
    legacy.train()
    x = torch.randn(1, 4, 5, 5, dtype=DT)
    legacy(x)
    legacy.eval()
    conv = spectral_norm(nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1).to(DT)).eval()
    conv.load_state_dict(remap_spectral_norm_keys(legacy.state_dict(), "legacy"), strict=True)
    assert _max_diff(conv(x), legacy(x)) <= ATOL


@pytest.mark.parametrize(
    ("sd", "layout", "match"),
    [
        ({"weight": torch.ones(2, 3)}, "legacy", "no 'weight_orig'"),
        ({"weight_orig": torch.ones(2, 3), "weight_u": torch.ones(2)}, "legacy", "weight_v"),
        (
            {
                "weight_orig": torch.ones(2, 3),
                "weight_u": torch.ones(2),
                "weight": torch.ones(2, 3),
            },
            "legacy",
            "pre-version-1",
        ),
        (
            {"weight_orig": torch.ones(2, 3), "weight_u": torch.ones(3), "weight_v": torch.ones(3)},
            "legacy",
            "do not factor",
        ),
        (
            {
                "a.weight_orig": torch.ones(2, 3),
                "a.weight_u": torch.ones(2),
                "a.weight_v": torch.ones(3),
                "b.weight_u": torch.ones(2),
            },
            "legacy",
            "without",
        ),
        (
            {"weight_bar": torch.ones(2, 3), "weight_u": torch.ones(3), "weight_v": torch.ones(3)},
            "gmcnn",
            "C_out",
        ),
        ({"weight_u": torch.ones(2, 1)}, "nipponjo", "raw"),
        ({"weight_orig": torch.ones(2, 3)}, "tf", "layout"),
    ],
)
def test_remap_errors(sd, layout, match):
    with pytest.raises(ValueError, match=match):
        remap_spectral_norm_keys(sd, layout)


# ----------------------------------------------------------------------------- GMCNN


class _GmcnnSN(nn.Module):
    """shepnerd/inpainting_gmcnn SpectralNorm as described in the module docstring: the wrapped
    layer's raw weight is the parameter ``weight_bar``; ``weight_u`` (C_out,), ``weight_v``
    (C_in*k*k,) are frozen parameters; every call: v = W^T u / (|.| + eps), u = W v / (|.| +
    eps), sigma = u^T W v, then the wrapped layer runs with W / sigma."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        w = module.weight.detach()
        del module._parameters["weight"]
        rows = w.shape[0]
        module.weight_u = nn.Parameter(_unit(torch.randn(rows, dtype=w.dtype)), requires_grad=False)
        module.weight_v = nn.Parameter(
            _unit(torch.randn(w[0].numel(), dtype=w.dtype)), requires_grad=False
        )
        module.weight_bar = nn.Parameter(w)

    def forward(self, x):
        m = self.module
        w_mat = m.weight_bar.flatten(1)
        m.weight_v.data = (v := w_mat.detach().t() @ m.weight_u) / (v.norm() + 1e-12)
        m.weight_u.data = (u := w_mat.detach() @ m.weight_v) / (u.norm() + 1e-12)
        sigma = m.weight_u @ w_mat @ m.weight_v
        m.weight = m.weight_bar / sigma
        return m.forward(x)


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda: nn.Conv2d(3, 6, 5, stride=2, padding=2), (2, 3, 10, 9)),
        (lambda: nn.Linear(12, 1), (3, 12)),  # GMCNN normalises its linear head too
        (lambda: nn.Linear(12, 4), (3, 12)),
    ],
)
def test_gmcnn_layout_reproduces_gmcnn_forward_in_eval_mode(make, shape):
    torch.manual_seed(7)
    gm = _GmcnnSN(make().to(DT))
    x = torch.randn(*shape, dtype=DT)
    gm(x)  # a training-like call: u, v are now those of this weight
    with torch.no_grad():
        gm.module.weight_bar.add_(0.3 * torch.randn_like(gm.module.weight_bar))  # optimizer step
    sd = {k: t.clone() for k, t in gm.state_dict().items()}
    assert {k.split(".")[-1] for k in sd} == {"bias", "weight_bar", "weight_u", "weight_v"}
    assert sd["module.weight_u"].shape == (sd["module.weight_bar"].shape[0],)
    assert sd["module.weight_v"].shape == (sd["module.weight_bar"][0].numel(),)

    holder = nn.Module()
    holder.module = spectral_norm(make().to(DT))
    holder.load_state_dict(remap_spectral_norm_keys(sd, "gmcnn"), strict=True)
    holder.eval()
    expected = gm(x)  # GMCNN's next forward (iterates once more, in any mode)
    assert _max_diff(holder.module(x), expected) <= 1e-10

    # a plain renaming (stored u, v used as they are) would not reproduce it
    w_mat = sd["module.weight_bar"].flatten(1)
    sigma_rename = sd["module.weight_u"] @ w_mat @ sd["module.weight_v"]
    sigma_gmcnn, _, _ = _sigma_legacy_train(w_mat, sd["module.weight_u"])
    assert abs(sigma_rename - sigma_gmcnn).item() > 1e-4 * sigma_gmcnn.item()


# ----------------------------------------------------------------------------- nipponjo


class _NipponjoSNConv(nn.Conv2d):
    """nipponjo ``Conv2DSpectralNorm`` as described in the module docstring: raw ``weight``,
    buffer ``weight_u`` (C_out, 1); every call: v = normalize(W^T u), u = normalize(W v),
    sigma = u^T W v, **weight divided in place**, then the plain conv."""

    def __init__(self, c_in, c_out, k, stride):
        super().__init__(c_in, c_out, k, stride=stride)
        self.register_buffer("weight_u", torch.randn(c_out, 1))

    def forward(self, x):
        w_mat = self.weight.view(self.weight.shape[0], -1).detach()
        v = F.normalize(w_mat.t() @ self.weight_u, dim=0, eps=1e-12)
        self.weight_u = F.normalize(w_mat @ v, dim=0, eps=1e-12)
        sigma = self.weight_u.t() @ w_mat @ v
        self.weight.data.div_(sigma)
        return super().forward(x)


@pytest.mark.parametrize("calls_before_saving", [0, 2])
def test_nipponjo_layout_reproduces_the_port_in_eval_mode(calls_before_saving):
    torch.manual_seed(8)
    port = _NipponjoSNConv(4, 6, 5, 2).to(DT)
    x = torch.randn(2, 4, 13, 12, dtype=DT)
    for _ in range(calls_before_saving):  # the port mutates `weight` in place on every call
        port(x)
    sd = {k: t.clone() for k, t in port.state_dict().items()}
    assert sd["weight_u"].shape == (6, 1)

    conv = spectral_norm(nn.Conv2d(4, 6, 5, stride=2).to(DT))
    conv.load_state_dict(remap_spectral_norm_keys(sd, "nipponjo"), strict=True)
    conv.eval()
    expected = port(x)
    assert _max_diff(conv(x), expected) <= ATOL

    # keeping the stored u and only computing v = normalize(W^T u) gives sigma = |W^T u|,
    # half an iteration behind the port's |W v|
    w_mat, u = sd["weight"].flatten(1), sd["weight_u"].flatten()
    sigma_half = u @ w_mat @ _unit(w_mat.t() @ u)
    sigma_port, _, _ = _sigma_legacy_train(w_mat, u)
    assert abs(sigma_half - sigma_port).item() > 1e-4 * sigma_port.item()


def test_nipponjo_remap_keeps_bias_and_dtype():
    port = _NipponjoSNConv(2, 3, 3, 1)  # float32
    sd = {f"conv1.conv_sn.{k}": t for k, t in port.state_dict().items()}
    out = remap_spectral_norm_keys(sd, "nipponjo")
    assert list(out) == [
        "conv1.conv_sn.parametrizations.weight.original",
        "conv1.conv_sn.parametrizations.weight.0._u",
        "conv1.conv_sn.parametrizations.weight.0._v",
        "conv1.conv_sn.bias",
    ]
    assert out["conv1.conv_sn.parametrizations.weight.0._u"].shape == (3,)
    assert out["conv1.conv_sn.parametrizations.weight.0._v"].shape == (18,)
    assert out["conv1.conv_sn.parametrizations.weight.0._v"].dtype == torch.float32
