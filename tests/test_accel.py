"""The speed options of ``benchmarks/accel.py`` keep outputs equal (issue 8, goal 3).

- channels_last, every registered model: ``predict`` with and without it agree within
  atol 1e-4 in float32 (only the summation order of the convolutions changes: float32 rounding
  of sums of up to ~5000 products per layer, accumulated over ~20-40 layers, measured <= ~1e-6
  on [-1, 1] outputs) and 1e-10 in float64 (same argument with eps 2.2e-16); the model and the
  inputs really are channels_last inside, and the model is restored afterwards; two training
  steps with channels_last give the same losses (rel 1e-4) for PartialConv and GLCIC.
- torch.compile (inductor, marked slow: each compile takes ~1 minute on this CPU): compiled
  ``predict`` equals eager within atol 1e-4 in float32 for PartialConv (partial convolutions,
  BatchNorm) and DeepFill v2 (gated convolutions, contextual attention); a compiled training
  run gives the same losses and a checkpoint with the plain keys, loadable into an uncompiled
  model.  Cheap tests check that compiling renames no parameter and is undone on exit.
- AMP: bf16 autocast prediction stays within max |diff| 5e-2 (~6 8-bit levels) and mean 5e-3
  of float32 (bf16 keeps 8 mantissa bits: relative rounding 2^-9 = 2e-3 per op, grown by the
  network's depth); EdgeConnect, two chained generators, within 0.2 / 3e-2; fp16 needs CUDA;
  bad ``amp`` values, fp16 off CUDA and bad compile modes are clear errors, also from a
  composed Hydra config; ``train.amp=true`` (older configs) means bf16.
- inference_mode: ``predict`` equals a plain ``no_grad`` forward bit for bit, the forward runs
  in inference mode, and the returned tensors are ordinary ones (``requires_grad_()`` works).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn
from hydra import compose, initialize_config_dir

import zoo
from benchmarks import accel
from benchmarks.config import register_configs
from benchmarks.evaluate import predict
from benchmarks.train import TrainOptions, train, train_step
from zoo._registry import accepts
from zoo._weights import load_state_dict

MODELS = zoo.list_models()
CPU = torch.device("cpu")
CONF = Path(__file__).resolve().parents[1] / "conf"
needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="fp16 autocast and GradScaler are CUDA only"
)


#: cheaper settings where a model's cost is a loop count (same layers, fewer iterations)
FAST = {"msnps": {"texture_iters": 2, "texture_scales": 1}}


def build(name: str, seed: int = 0) -> zoo.InpaintModel:
    torch.manual_seed(seed)
    kwargs = {"vgg": "random"} if accepts(name, "vgg") else {}
    return zoo.create_model(name, **kwargs, **FAST.get(name, {}))


def size_of(model: zoo.InpaintModel) -> int:
    return model.input_size or max(64, model.pad_multiple)


def batch(size: int, n: int = 2, seed: int = 0, dtype: torch.dtype = torch.float32):
    g = torch.Generator().manual_seed(seed)
    image = (torch.rand(n, 3, size, size, generator=g, dtype=torch.float64) * 2 - 1).to(dtype)
    mask = torch.zeros(n, 1, size, size, dtype=dtype)
    q = size // 4
    mask[:, :, q : 3 * q, q : 3 * q] = 1  # a centred box, accepted by every model
    return image, mask


def conv_weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.dim() == 4]


CL_MODELS = MODELS  # MSNPS included: its L-BFGS variable is made contiguous


# ---------------------------------------------------------------------------- channels_last
@pytest.mark.parametrize("name", CL_MODELS)
def test_channels_last_predict_equals_default_float32(name):
    model = build(name)
    image, mask = batch(size_of(model))
    plain = predict(model, image, mask, 2, CPU)
    fast = predict(model, image, mask, 2, CPU, channels_last=True)
    for key in ("output", "composite"):
        torch.testing.assert_close(fast[key], plain[key], rtol=0, atol=1e-4)
    assert all(w.is_contiguous() for w in conv_weights(model)), "model not restored"


@pytest.mark.parametrize("name", CL_MODELS)
def test_channels_last_float64_and_really_channels_last(name):
    model = build(name).double().eval()
    image, mask = batch(size_of(model), n=1, dtype=torch.float64)  # float64 convs are slow
    seen: list[bool] = []

    def record(module, args):
        seen.append(all(a.is_contiguous(memory_format=torch.channels_last) for a in args))

    with torch.no_grad():
        plain = model(image, mask)
        with accel.accelerated(model, channels_last=True):
            assert all(
                w.is_contiguous(memory_format=torch.channels_last) for w in conv_weights(model)
            )
            handle = model.register_forward_pre_hook(record)
            cl_image = accel.to_memory_format(image, True)
            cl_mask = accel.to_memory_format(mask, True)
            fast = model(cl_image, cl_mask)
            handle.remove()
    assert seen == [True]
    for key in ("output", "composite"):
        torch.testing.assert_close(fast[key], plain[key], rtol=0, atol=1e-10)
    assert all(w.is_contiguous() for w in conv_weights(model))


def test_to_memory_format_leaves_other_ranks_and_values_alone():
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    y = accel.to_memory_format(x, True)
    assert torch.equal(x, y) and y.stride() == (105, 1, 21, 3)  # N x H x W x C in memory
    assert accel.to_memory_format(x, False) is x
    v = torch.randn(4, 5)
    assert accel.to_memory_format(v, True) is v


# ---------------------------------------------------------------------------- torch.compile
def test_compile_keeps_parameter_names_and_is_undone():
    model = build("partial_conv")
    keys = list(model.state_dict())
    with accel.accelerated(model, compile=True, compile_mode="default"):
        assert "inpaint" in vars(model)  # the instance's generator forward is compiled
        assert list(model.state_dict()) == keys  # no _orig_mod. prefix
        assert accel.compile_forward(model, "default").inpaint is model.inpaint  # idempotent
    assert "inpaint" not in vars(model) and list(model.state_dict()) == keys
    with pytest.raises(ValueError, match="compile_mode='fast'"):
        accel.compile_forward(model, "fast")
    ready = accel.prepare_for_inference(model.train(), channels_last=True, compile=True)
    assert ready is model and not model.training and "inpaint" in vars(model)
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in conv_weights(model))
    assert list(model.state_dict()) == keys
    assert "inpaint" not in vars(accel.uncompile_forward(model))


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["partial_conv", pytest.param("deepfill_v2", marks=pytest.mark.inductor)]
)
def test_compiled_predict_equals_eager(name):
    model = build(name)
    image, mask = batch(64)
    plain = predict(model, image, mask, 2, CPU)
    fast = predict(model, image, mask, 2, CPU, compile=True, compile_mode="default")
    for key in ("output", "composite"):
        torch.testing.assert_close(fast[key], plain[key], rtol=0, atol=1e-4)
    assert "inpaint" not in vars(model)


def _train_run(tmp_path: Path, name: str = "partial_conv", **speed) -> tuple[dict, nn.Module]:
    model = build(name)

    def batches(step, k):
        return batch(64, seed=10 * step + k)

    opts = TrainOptions(steps=2, batch_size=2, checkpoint_every=2, progress=False, **speed)
    return train(model, batches, opts, tmp_path, CPU), model


@pytest.mark.parametrize("name", ["partial_conv", "glcic"])
def test_channels_last_training_gives_same_losses(tmp_path, name):
    eager, _ = _train_run(tmp_path / "plain", name)
    fast, model = _train_run(tmp_path / "cl", name, channels_last=True)
    for k, v in eager["final_losses"].items():  # step 2's losses, after one update
        assert fast["final_losses"][k] == pytest.approx(v, rel=1e-4, abs=1e-6), k
    assert all(w.is_contiguous() for w in conv_weights(model))  # restored after training
    build(name).load_trained_state(load_state_dict(fast["checkpoint"])["trained_state"])


@pytest.mark.slow
@pytest.mark.inductor
def test_compiled_training_gives_same_losses_and_plain_checkpoint(tmp_path):
    eager, _ = _train_run(tmp_path / "eager")
    fast, fast_model = _train_run(tmp_path / "compiled", compile=True)
    assert eager["final_losses"].keys() == fast["final_losses"].keys()
    for k, v in eager["final_losses"].items():  # step 2's losses, after one update
        assert fast["final_losses"][k] == pytest.approx(v, rel=1e-4, abs=1e-5), k
    assert "inpaint" not in vars(fast_model)
    state = load_state_dict(fast["checkpoint"])["trained_state"]
    plain = build("partial_conv")
    assert list(state["generator"]) == list(plain.generator.state_dict())
    plain.load_trained_state(state)  # strict: an uncompiled model takes the checkpoint
    for a, b in zip(plain.generator.parameters(), fast_model.generator.parameters()):
        assert torch.equal(a, b)


# ---------------------------------------------------------------------------- AMP
# (model, max |diff|, mean |diff|) on [-1, 1] outputs of randomly initialised models at 64x64.
# Measured: partial_conv 8e-6 / -, glcic 3.9e-3 / -, gmcnn 6.0e-3 / 1.0e-3, deepfill_v1
# 2.1e-2 / 2.3e-3, edge_connect 0.11 / 1.6e-2 (two chained 8-block residual generators with
# instance norm; the edge map feeds the second one).  DeepFill v2 is left out: its random-init
# output is ~3e-7, so any tolerance would pass.
BF16_CASES = [
    ("partial_conv", 5e-2, 5e-3),
    ("glcic", 5e-2, 5e-3),
    ("gmcnn", 5e-2, 5e-3),
    ("deepfill_v1", 5e-2, 5e-3),
    ("edge_connect", 0.2, 3e-2),
]


@pytest.mark.parametrize(("name", "max_atol", "mean_atol"), BF16_CASES)
def test_bf16_autocast_predict_close_to_float32(name, max_atol, mean_atol):
    model = build(name)
    image, mask = batch(64)
    plain = predict(model, image, mask, 2, CPU)
    low = predict(model, image, mask, 2, CPU, amp="bf16")
    assert low["output"].dtype == torch.float32
    assert not torch.equal(low["output"], plain["output"])  # autocast did act
    diff = (low["output"] - plain["output"]).abs()
    assert diff.max() <= max_atol and diff.mean() <= mean_atol, (diff.max(), diff.mean())


def test_bf16_train_step_autocasts_and_stays_finite():
    model = build("partial_conv").train()
    optimizers = model.configure_optimizers()
    dtypes: list[torch.dtype] = []
    conv = next(m for m in model.generator.modules() if isinstance(m, torch.nn.Conv2d))
    # a partial convolution returns (features, updated mask)
    conv.register_forward_hook(
        lambda m, a, out: dtypes.append((out[0] if isinstance(out, tuple) else out).dtype)
    )
    logs, problem = train_step(
        model, optimizers, lambda s, k: batch(64, seed=s), 0, CPU, amp="bf16"
    )
    assert problem == "" and dtypes == [torch.bfloat16]
    assert all(torch.isfinite(torch.as_tensor(v)) for v in logs.values())
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize(
    ("value", "mode"),
    [("none", "none"), ("BF16", "bf16"), ("fp16", "fp16"), (True, "bf16"), (False, "none"),
     ("True", "bf16"), ("false", "none"), (None, "none")],
)  # fmt: skip
def test_amp_values(value, mode):
    assert accel.resolve_amp(value) == mode


def test_bad_amp_values_are_clear_errors():
    with pytest.raises(ValueError, match="amp='fp32' is not an autocast mode"):
        accel.resolve_amp("fp32")
    with pytest.raises(ValueError, match="amp=fp16 needs a CUDA device"):
        accel.resolve_amp("fp16", CPU)
    with pytest.raises(TypeError, match="amp must be"):
        accel.resolve_amp(16)
    image, mask = batch(64)
    with pytest.raises(ValueError, match="amp=fp16 needs a CUDA device"):
        predict(build("mean_fill"), image, mask, 2, CPU, amp="fp16")


def _compose(*overrides: str):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="bench", overrides=list(overrides))


def test_config_options_are_validated():
    cfg = _compose()
    for section in (cfg.eval, cfg.train):
        accel.validate(section, CPU)  # the defaults are valid
        assert accel.resolve_amp(section.amp) == "none" and not section.compile
    with pytest.raises(ValueError, match="amp='fp32'"):
        accel.validate(_compose("eval.amp=fp32").eval, CPU)
    with pytest.raises(ValueError, match="amp=fp16 needs a CUDA device"):
        accel.validate(_compose("train.amp=fp16").train, CPU)
    with pytest.raises(ValueError, match="compile_mode='fastest'"):
        accel.validate(_compose("eval.compile_mode=fastest").eval, CPU)
    cfg = _compose("train.amp=true", "eval.channels_last=true", "eval.compile=true")
    assert accel.resolve_amp(cfg.train.amp) == "bf16"  # the old boolean form
    assert cfg.eval.channels_last and cfg.eval.compile


@needs_cuda
def test_fp16_autocast_predict_close_to_float32_on_cuda():
    cuda = torch.device("cuda")
    model = build("partial_conv")
    image, mask = batch(64)
    plain = predict(model, image, mask, 2, cuda)
    low = predict(model, image, mask, 2, cuda, amp="fp16")
    torch.testing.assert_close(low["output"], plain["output"], rtol=0, atol=5e-2)


@needs_cuda
def test_fp16_training_uses_grad_scalers_and_checkpoints_them(tmp_path):
    model = build("partial_conv")
    opts = TrainOptions(steps=2, batch_size=2, checkpoint_every=2, progress=False, amp="fp16")
    summary = train(model, lambda s, k: batch(64, seed=s), opts, tmp_path, torch.device("cuda"))
    state = load_state_dict(summary["checkpoint"])
    assert set(state["grad_scalers"]) == {"generator"} and state["grad_scalers"]["generator"]
    assert all(torch.isfinite(p).all() for p in model.parameters())


# ---------------------------------------------------------------------------- inference_mode
@pytest.mark.parametrize("name", ["partial_conv", "deepfill_v2", "edge_connect"])
def test_predict_equals_no_grad_forward_and_returns_normal_tensors(name):
    model = build(name).eval()
    image, mask = batch(size_of(model))
    with torch.no_grad():  # batch by batch, as predict runs it (batching changes the sums)
        parts = [model(image[i : i + 1], mask[i : i + 1]) for i in range(len(image))]
        ref = {k: torch.cat([p[k] for p in parts]) for k in ("output", "composite")}
    modes: list[bool] = []
    model.register_forward_pre_hook(lambda m, a: modes.append(torch.is_inference_mode_enabled()))
    out = predict(model, image, mask, 1, CPU)  # two batches of one
    assert modes == [True, True]
    for key in ("output", "composite"):
        expected = ref[key].float().clamp(-1, 1)
        torch.testing.assert_close(out[key], expected, rtol=0, atol=0)
        t = out[key]
        assert not t.is_inference() and t.grad_fn is None and not t.requires_grad
        t.requires_grad_()  # raises for an inference tensor
        (t * 2).sum().backward()
        assert torch.equal(t.grad, torch.full_like(t, 2.0))
