"""The generic training loop: exact resume, NaN handling, atomic checkpoints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from benchmarks.train import (
    CHECKPOINT_NAME,
    NonFiniteLossError,
    TrainOptions,
    lr_factor,
    save_checkpoint,
    train_step,
)
from benchmarks.train import train as run_training
from zoo._weights import load_state_dict
from zoo.models import InpaintModel

REPO = Path(__file__).resolve().parents[1]


class TinyGAN(InpaintModel):
    """A two-layer generator and critic: enough to exercise every branch of the loop."""

    d_steps = 2

    def __init__(self, poison_step: int | None = None) -> None:
        super().__init__()
        self.generator = nn.Sequential(
            nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1), nn.Tanh()
        )
        self.discriminators["d"] = nn.Sequential(
            nn.Conv2d(3, 4, 4, stride=2), nn.ReLU(), nn.Conv2d(4, 1, 4)
        )
        self.poison_step = poison_step

    def inpaint(self, image, mask):
        x = torch.cat([image * (1 - mask), mask], dim=1)
        return {"output": self.generator(x)}

    def generator_loss(self, image, mask, out, step):
        l1 = (out["output"] - image).abs().mean()
        adv = -self.discriminators["d"](out["composite"]).mean()
        if step == self.poison_step:
            l1 = l1 * float("nan")
        return l1 + 0.1 * adv, {"l1": l1.detach(), "adv": adv.detach()}

    def discriminator_loss(self, image, mask, out, step):
        d = self.discriminators["d"]
        loss = torch.relu(1 - d(image)).mean() + torch.relu(1 + d(out["composite"])).mean()
        return loss, {"hinge": loss.detach()}

    def configure_optimizers(self):
        return {
            "generator": torch.optim.Adam(self.generator.parameters(), 1e-3),
            "discriminator": torch.optim.Adam(self.discriminators.parameters(), 1e-3),
        }


def batches(step: int, k: int):
    g = torch.Generator().manual_seed(1000 * step + k)
    image = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    mask = (torch.rand(2, 1, 16, 16, generator=g) > 0.7).float()
    return image, mask


def _opts(**kw) -> TrainOptions:
    return TrainOptions(
        **{
            "steps": 6,
            "batch_size": 2,
            "checkpoint_every": 2,
            "log_every": 1,
            "progress": False,
            **kw,
        }
    )


def _weights(model: InpaintModel) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resume_equals_uninterrupted(tmp_path):
    torch.manual_seed(0)
    full = TinyGAN()
    run_training(full, batches, _opts(), tmp_path / "full", torch.device("cpu"))

    torch.manual_seed(0)
    part = TinyGAN()
    run_training(part, batches, _opts(steps=4), tmp_path / "part", torch.device("cpu"))
    torch.manual_seed(123)  # a different process state: resume must restore everything
    resumed = TinyGAN()
    summary = run_training(
        resumed, batches, _opts(resume=True), tmp_path / "part", torch.device("cpu")
    )
    assert summary["resumed_from"] == 4
    a, b = _weights(full), _weights(resumed)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    log_steps = (tmp_path / "part" / "train_log.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in log_steps] == [1, 2, 3, 4, 5, 6]


def test_cosine_schedule_values():
    assert [lr_factor("constant", s, 4) for s in range(4)] == [1.0] * 4
    got = [lr_factor("cosine", s, 4) for s in range(4)]
    assert got == pytest.approx([1.0, (1 + 0.5**0.5) / 2, 0.5, (1 - 0.5**0.5) / 2], abs=1e-15)
    with pytest.raises(ValueError, match="lr_schedule='step'"):
        lr_factor("step", 0, 4)


class _Crash(Exception):
    pass


def test_cosine_schedule_applies_and_resumes_exactly(tmp_path):
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    constant = TinyGAN()
    run_training(constant, batches, _opts(), tmp_path / "constant", cpu)
    torch.manual_seed(0)
    full = TinyGAN()
    run_training(full, batches, _opts(lr_schedule="cosine"), tmp_path / "full", cpu)
    assert not torch.equal(full.generator[0].weight, constant.generator[0].weight)

    def crash_at_4(step, k):  # a run of 6 steps killed after its step-4 checkpoint
        if step == 4:
            raise _Crash
        return batches(step, k)

    torch.manual_seed(0)
    with pytest.raises(_Crash):
        run_training(TinyGAN(), crash_at_4, _opts(lr_schedule="cosine"), tmp_path / "part", cpu)
    torch.manual_seed(7)
    resumed = TinyGAN()
    opts = _opts(lr_schedule="cosine", resume=True)
    assert run_training(resumed, batches, opts, tmp_path / "part", cpu)["resumed_from"] == 4
    a, b = _weights(full), _weights(resumed)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_discriminator_frozen_during_generator_step(tmp_path):
    torch.manual_seed(0)
    model = TinyGAN()
    model.d_steps = 0  # only generator updates: the critic must not move
    before = {k: v.clone() for k, v in model.discriminators.state_dict().items()}
    run_training(model, batches, _opts(steps=3), tmp_path, torch.device("cpu"))
    for k, v in model.discriminators.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = TinyGAN(poison_step=3)
    with pytest.raises(NonFiniteLossError, match="step 3.*l1"):
        run_training(model, batches, _opts(), tmp_path, torch.device("cpu"))
    state = load_state_dict(tmp_path / "checkpoints" / CHECKPOINT_NAME)
    assert state["step"] == 2
    for v in state["trained_state"]["generator"].values():
        assert torch.isfinite(v).all()


def test_nan_policy_skip_counts_batches(tmp_path):
    torch.manual_seed(0)
    model = TinyGAN(poison_step=3)
    summary = run_training(model, batches, _opts(nan_policy="skip"), tmp_path, torch.device("cpu"))
    assert summary["skipped_batches"] == 1
    for p in model.parameters():
        assert torch.isfinite(p).all()


def test_failed_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"step": 1, "w": torch.ones(3)})

    def broken_save(obj, fh, *a, **k):
        fh.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(path, {"step": 2, "w": torch.zeros(3)})
    monkeypatch.undo()
    state = load_state_dict(path)
    assert state["step"] == 1 and torch.equal(state["w"], torch.ones(3))
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_resume_without_checkpoint_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*last.pt"):
        run_training(TinyGAN(), batches, _opts(resume=True), tmp_path, torch.device("cpu"))


TINY = [
    "model=deepfill_v2",
    "model.kwargs.cnum=8",
    "data.resolution=32",
    "data.test_crops=1",
    "train.steps=8",
    "train.batch_size=2",
    "train.checkpoint_every=1",
    "train.log_every=1",
    "train.progress=false",
    "eval.save_predictions=false",
    "eval.lpips=off",
]


def _bench(run_dir: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(REPO / "bench.py"), *TINY, f"hydra.run.dir={run_dir}", *extra],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    """Kill the real CLI with SIGKILL mid-training, resume, compare final weights."""
    full = _bench(tmp_path / "full")
    victim = _bench(tmp_path / "killed")
    ckpt = tmp_path / "killed" / "checkpoints" / CHECKPOINT_NAME
    deadline = time.time() + 240
    while time.time() < deadline and victim.poll() is None:
        if ckpt.exists() and load_state_dict(ckpt)["step"] >= 3:
            break
        time.sleep(0.05)
    assert victim.poll() is None, "run finished before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = load_state_dict(ckpt)["step"]
    assert killed_at < 8
    resumed = _bench(tmp_path / "killed", "train.resume=true")
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read().decode()
    assert full.wait(timeout=300) == 0, full.stdout.read().decode()
    a = load_state_dict(tmp_path / "full" / "checkpoints" / CHECKPOINT_NAME)
    b = load_state_dict(ckpt)
    assert a["step"] == b["step"] == 8
    for part in ("generator", "discriminators"):
        for k, v in a["trained_state"][part].items():
            torch.testing.assert_close(b["trained_state"][part][k], v, rtol=0, atol=0, msg=k)


def test_train_is_train_step_in_a_loop(tmp_path):
    """The loop adds checkpoints and logs around ``train_step``, nothing that changes weights."""
    torch.manual_seed(0)
    looped = TinyGAN()
    run_training(looped, batches, _opts(), tmp_path, torch.device("cpu"))
    torch.manual_seed(0)
    stepped = TinyGAN().train()
    optimizers = stepped.configure_optimizers()
    for step in range(6):
        logs, problem = train_step(stepped, optimizers, batches, step, torch.device("cpu"))
        assert problem == "" and set(logs) == {"d/hinge", "g/l1", "g/adv"}
    a, b = _weights(looped), _weights(stepped)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_train_step_reports_a_nan_and_applies_no_generator_update():
    torch.manual_seed(0)
    model = TinyGAN(poison_step=3).train()
    optimizers = model.configure_optimizers()
    before = {k: v.clone() for k, v in model.generator.state_dict().items()}
    logs, problem = train_step(model, optimizers, batches, 3, torch.device("cpu"))
    assert problem == "non-finite generator loss at step 3 (terms: l1)"
    for k, v in model.generator.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    # the critics were unfrozen again after the refused generator update
    assert all(p.requires_grad for p in model.discriminators.parameters())
