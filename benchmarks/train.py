"""One generic training loop for every model, GAN or not.

Per step ``s`` (``model.phases(s)`` says which parts train):

1. the batch of step ``s`` (images and masks are pure functions of ``(seed, s)``);
2. ``out = model(image, mask)``;
3. discriminator updates: ``model.d_steps`` of them, the first on ``out`` detached, the others
   on fresh batches of the same step (WGAN-GP critics take 5 per generator step);
4. a generator update on ``model.generator_loss(image, mask, out)``, with the discriminators
   frozen (their parameters get no gradient from it).

Checkpoints (``checkpoints/last.pt``) hold the trained modules, the optimizer states, the
torch RNG states and the step; they are written atomically (temporary file, fsync, rename),
so a kill at any moment leaves the previous checkpoint intact, and ``resume=True`` continues
exactly where the checkpoint left off.  A NaN or Inf loss stops the run naming the step and
the term (or, with ``nan_policy="skip"``, skips that update and counts it).

``ddp=True`` (under ``torchrun``) trains data-parallel: each rank takes its slice of every
global batch and the gradients are averaged over the ranks before each optimizer step
(:mod:`benchmarks.distributed`, which also says which losses make that equal to a
single-process run); only rank 0 writes the checkpoint, the CSV log and TensorBoard events.
One step of the loop is :func:`train_step`, which ``benchmarks.speed`` times.

Speed options (:mod:`benchmarks.accel`): ``amp`` autocasts the forward and the losses
(``none`` | ``bf16`` | ``fp16``; fp16 on CUDA with one GradScaler per optimizer, whose states
the checkpoint keeps), ``channels_last`` converts the model and every batch, ``compile``
compiles the generator forward (``model.inpaint``, parameter names unchanged, so checkpoints
load into uncompiled models).  The model is restored (eager, contiguous) when training ends.

``lr_schedule``: ``constant`` (the model's own learning rates throughout, as the papers' code)
or ``cosine`` (each base rate times :func:`lr_factor`, a pure function of the step).
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from zoo._weights import load_state_dict
from zoo.models import InpaintModel

from . import accel
from .distributed import Distributed, setup

__all__ = [
    "TrainOptions",
    "NonFiniteLossError",
    "train",
    "train_step",
    "lr_factor",
    "save_checkpoint",
    "CHECKPOINT_NAME",
]

CHECKPOINT_NAME = "last.pt"
BatchFn = Callable[[int, int], tuple[torch.Tensor, torch.Tensor]]


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or Inf; the last good checkpoint is kept."""


@dataclass
class TrainOptions:
    steps: int = 300
    batch_size: int = 4
    checkpoint_every: int = 100
    log_every: int = 10
    resume: bool = False
    amp: str | bool = "none"  # none | bf16 | fp16 (CUDA, GradScaler); true = bf16 (accel.py)
    channels_last: bool = False  # model and batches in torch.channels_last memory format
    compile: bool = False  # torch.compile the generator forward (model.inpaint)
    compile_mode: str = "default"  # a torch.compile mode (accel.COMPILE_MODES)
    nan_policy: str = "stop"  # stop | skip
    max_skipped: int = 10
    progress: bool = True
    ddp: bool = False  # data-parallel over torchrun ranks (benchmarks.distributed)
    lr_schedule: str = "constant"  # constant (the papers') | cosine (to 0 at the last step)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically: a crash leaves the old file untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _set_requires_grad(params: list[torch.nn.Parameter], flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)


def _check_finite(loss: torch.Tensor, logs: dict[str, torch.Tensor], what: str, step: int) -> str:
    """Empty string when finite, else a message naming the step and the bad terms."""
    if torch.isfinite(loss).all():
        return ""
    bad = [k for k, v in logs.items() if not torch.isfinite(torch.as_tensor(v)).all()]
    return f"non-finite {what} loss at step {step} (terms: {', '.join(bad) or 'total'})"


class _CsvLog:
    """Append-only CSV of the logged losses; on resume, rows past the checkpoint are dropped."""

    def __init__(self, path: Path, resume_step: int) -> None:
        self.path = path
        self.fields: list[str] | None = None
        if resume_step > 0 and path.exists():
            with open(path, newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= resume_step]
            if rows:
                self.fields = list(rows[0].keys())
                self._write(rows, "w")
        elif path.exists():
            path.unlink()

    def _write(self, rows: list[dict], mode: str) -> None:
        with open(self.path, mode, newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.fields)
            if mode == "w":
                writer.writeheader()
            writer.writerows(rows)

    def append(self, row: dict[str, float]) -> None:
        if self.fields is None:
            self.fields = list(row.keys())
            self._write([], "w")
        self._write([{k: row.get(k, "") for k in self.fields}], "a")


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # noqa: BLE001 - tensorboard is optional
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def _batch(
    batches: BatchFn,
    step: int,
    k: int,
    device: torch.device,
    ddp: Distributed | None,
    channels_last: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch ``k`` of step ``step`` (this rank's slice of it under DDP) on ``device``."""
    image, mask = batches(step, k)
    if ddp is not None:
        image, mask = ddp.local_slice(image), ddp.local_slice(mask)
    image, mask = image.to(device), mask.to(device)
    return accel.to_memory_format(image, channels_last), accel.to_memory_format(mask, channels_last)


def _update(
    optimizer: torch.optim.Optimizer,
    loss: torch.Tensor,
    logs: dict[str, torch.Tensor],
    what: str,
    step: int,
    ddp: Distributed | None,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[dict[str, torch.Tensor], str]:
    """Check the loss (rank-averaged under DDP), then backward, average gradients, step.

    With a ``scaler`` (amp=fp16) the loss is scaled before backward and the step is skipped
    by the scaler when the scaled gradients overflowed (its scale then shrinks).
    Returns the logged terms and ``""``, or the message naming a non-finite loss (then
    nothing is updated)."""
    checked = loss
    if ddp is not None:
        checked, logs = ddp.average_logs(loss, logs)
    problem = _check_finite(checked, logs, what, step)
    if problem:
        return logs, problem
    optimizer.zero_grad(set_to_none=True)
    (loss if scaler is None else scaler.scale(loss)).backward()
    if ddp is not None:  # every rank has the same scale: averaging scaled gradients is exact
        ddp.average_gradients(p for group in optimizer.param_groups for p in group["params"])
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)
        scaler.update()
    return logs, ""


def train_step(
    model: InpaintModel,
    optimizers: dict[str, torch.optim.Optimizer],
    batches: BatchFn,
    step: int,
    device: torch.device,
    *,
    amp: str | bool = "none",
    channels_last: bool = False,
    scalers: dict[str, torch.amp.GradScaler] | None = None,
    ddp: Distributed | None = None,
) -> tuple[dict[str, torch.Tensor], str]:
    """One step of the loop (module docstring, points 1-4) on a model in training mode.

    ``amp`` is an autocast mode of :mod:`benchmarks.accel` (``none`` | ``bf16`` | ``fp16``;
    ``True`` = ``bf16``), ``scalers`` the GradScaler of each optimizer for ``fp16``
    (:func:`benchmarks.accel.make_grad_scalers`), ``channels_last`` converts the batches (the
    model is converted by the caller, see :func:`benchmarks.accel.accelerated`).
    Returns the logged terms (``d/<term>`` of the last discriminator update, ``g/<term>``)
    and ``""``, or a message naming the step and the non-finite loss term, in which case the
    update that found it (and every later one of this step) was not applied.
    """
    amp = accel.resolve_amp(amp, device)
    if amp == "fp16" and scalers is None:
        raise ValueError("amp=fp16 training needs GradScalers (accel.make_grad_scalers)")
    scalers = scalers or {}
    # discriminator parameters that train; frozen ones (a model's stage choice) stay frozen
    d_params = [p for p in model.discriminators.parameters() if p.requires_grad]
    image, mask = _batch(batches, step, 0, device, ddp, channels_last)
    train_g, train_d = model.phases(step)
    logs: dict[str, torch.Tensor] = {}
    with torch.set_grad_enabled(train_g), accel.autocast_context(device, amp):
        out = model(image, mask)
    problem = ""
    if train_d:
        d_logs: dict[str, torch.Tensor] = {}
        for k in range(model.d_steps):
            if k == 0:
                d_img, d_mask, d_out = image, mask, {n: v.detach() for n, v in out.items()}
            else:
                d_img, d_mask = _batch(batches, step, k, device, ddp, channels_last)
                with torch.no_grad(), accel.autocast_context(device, amp):
                    d_out = model(d_img, d_mask)
            with accel.autocast_context(device, amp):
                d_loss, d_logs = model.discriminator_loss(d_img, d_mask, d_out, step)
            d_logs, problem = _update(
                optimizers["discriminator"],
                d_loss,
                d_logs,
                "discriminator",
                step,
                ddp,
                scalers.get("discriminator"),
            )
            if problem:
                break
        logs.update({f"d/{k}": v for k, v in d_logs.items()})
    if train_g and not problem:
        _set_requires_grad(d_params, False)  # the generator update must not move the critics
        try:
            with accel.autocast_context(device, amp):
                g_loss, g_logs = model.generator_loss(image, mask, out, step)
            g_logs, problem = _update(
                optimizers["generator"],
                g_loss,
                g_logs,
                "generator",
                step,
                ddp,
                scalers.get("generator"),
            )
        finally:
            _set_requires_grad(d_params, True)
        logs.update({f"g/{k}": v for k, v in g_logs.items()})
    return logs, problem


def _read_checkpoint(path: Path, ddp: Distributed | None) -> dict[str, Any]:
    """The checkpoint at ``path``; under DDP rank 0 reads it and sends it to every rank (the
    other ranks' run directories need not hold it)."""
    payload: dict[str, Any] | None = None
    if ddp is None or ddp.is_main:
        try:
            payload = {"state": load_state_dict(path) if path.exists() else None}
        except Exception as exc:
            if ddp is not None:  # tell the waiting ranks before failing here
                ddp.broadcast_object({"error": f"{type(exc).__name__}: {exc}"})
            raise
    if ddp is not None:
        payload = ddp.broadcast_object(payload)
        if "error" in payload:
            raise RuntimeError(f"rank 0 could not read the checkpoint {path}: {payload['error']}")
    if payload["state"] is None:
        raise FileNotFoundError(
            f"train.resume=true but there is no checkpoint at {path}; resume by "
            f"running in the killed run's directory (hydra.run.dir=<that dir>)"
        )
    return payload["state"]


def _rng_state() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _restore_rng(rng: dict[str, Any], ddp: Distributed | None) -> None:
    """This process's random streams from a checkpoint's ``rng`` entry (its own rank's when
    the checkpoint was written by as many ranks; otherwise rank 0's, forked per rank)."""
    ranks = rng.get("ranks")
    exact = ddp is None or (ranks is not None and len(ranks) == ddp.world)
    mine = ranks[ddp.rank] if ddp is not None and exact else rng
    torch.set_rng_state(mine["torch"])
    if torch.cuda.is_available() and mine.get("cuda"):
        torch.cuda.set_rng_state_all(mine["cuda"])
    if not exact:
        ddp.seed_rank_stream()


def train(
    model: InpaintModel,
    batches: BatchFn,
    options: TrainOptions,
    run_dir: str | os.PathLike,
    device: torch.device,
    extra_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``model`` for ``options.steps`` steps; return a summary for ``metrics.json``.

    ``batches(step, k)`` returns the (image, mask) batch number ``k`` of step ``step`` on CPU
    (the global batch: under DDP every rank calls it and keeps its slice);
    ``extra_state`` (config, model name, ...) is stored in every checkpoint.
    """
    run_dir = Path(run_dir)
    ckpt_path = run_dir / "checkpoints" / CHECKPOINT_NAME
    run_dir.mkdir(parents=True, exist_ok=True)  # the log is written before any checkpoint
    ddp: Distributed | None = None
    if options.ddp:
        ddp, device = setup(device)
    try:
        accel.validate(options, device)
        with accel.accelerated(
            model,
            channels_last=options.channels_last,
            compile=options.compile,
            compile_mode=options.compile_mode,
        ):
            return _train(model, batches, options, run_dir, ckpt_path, device, ddp, extra_state)
    finally:
        if ddp is not None and ddp.owns_group:
            ddp.close()


LR_SCHEDULES = ("constant", "cosine")


def lr_factor(schedule: str, step: int, steps: int) -> float:
    """Multiplier of every optimizer's base learning rate at (0-based) ``step`` of ``steps``.

    ``constant``: 1 (what the papers' code does over a run); ``cosine``: ``(1 + cos(pi s /
    steps)) / 2``, from 1 at the first step towards 0 at the last (for short budgets, e.g. the
    CPU quick start).  A pure function of the step, so a resumed run is unchanged.
    """
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * step / max(steps, 1)))
    raise ValueError(f"train.lr_schedule={schedule!r}: expected one of {LR_SCHEDULES}")


def _set_lr(optimizers: dict[str, torch.optim.Optimizer], base: dict, factor: float) -> None:
    for name, opt in optimizers.items():
        for group, lr in zip(opt.param_groups, base[name]):
            group["lr"] = lr * factor


def _train(
    model: InpaintModel,
    batches: BatchFn,
    options: TrainOptions,
    run_dir: Path,
    ckpt_path: Path,
    device: torch.device,
    ddp: Distributed | None,
    extra_state: dict[str, Any] | None,
) -> dict[str, Any]:
    if ddp is not None and options.batch_size % ddp.world:
        raise ValueError(
            f"train.batch_size={options.batch_size} is not divisible by the {ddp.world} DDP "
            f"ranks; use a global batch size that is a multiple of --nproc_per_node"
        )
    main = ddp is None or ddp.is_main  # only rank 0 writes files
    model.to(device).train()
    if ddp is not None:
        ddp.broadcast_module(model)  # every rank starts from rank 0's weights
    lr_factor(options.lr_schedule, 0, options.steps)  # an unknown schedule fails here
    optimizers = model.configure_optimizers()
    base_lrs = {k: [g["lr"] for g in o.param_groups] for k, o in optimizers.items()}
    amp = accel.resolve_amp(options.amp, device)
    scalers = accel.make_grad_scalers(list(optimizers), device, amp)
    start = 0
    if options.resume:
        state = _read_checkpoint(ckpt_path, ddp)
        model.load_trained_state(state["trained_state"])
        for name, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, scaler in (scalers or {}).items():
            if name in state.get("grad_scalers", {}):  # absent: a run resumed with amp=fp16
                scaler.load_state_dict(state["grad_scalers"][name])
        _restore_rng(state["rng"], ddp)
        start = int(state["step"])
    elif ddp is not None:
        ddp.seed_rank_stream()

    log = _CsvLog(run_dir / "train_log.csv", start) if main else None
    writer = _tensorboard(run_dir) if main else None
    skipped = 0
    last: dict[str, float] = {}
    t0 = time.perf_counter()

    def checkpoint(step: int) -> None:
        rng = _rng_state()
        if ddp is not None:  # a collective: every rank takes part, rank 0 writes
            rng["ranks"] = ddp.gather_objects(_rng_state())
        if main:
            save_checkpoint(
                ckpt_path,
                {
                    "format": 1,
                    "step": step,
                    "trained_state": model.trained_state(),
                    "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                    "grad_scalers": {k: s.state_dict() for k, s in (scalers or {}).items()},
                    "rng": rng,
                    **(extra_state or {}),
                },
            )

    bar = tqdm(
        range(start, options.steps),
        initial=start,
        total=options.steps,
        disable=not (options.progress and main),
        desc="train",
        dynamic_ncols=True,
    )
    for step in bar:
        if options.lr_schedule != "constant":
            _set_lr(optimizers, base_lrs, lr_factor(options.lr_schedule, step, options.steps))
        logs, problem = train_step(
            model,
            optimizers,
            batches,
            step,
            device,
            amp=amp,
            channels_last=options.channels_last,
            scalers=scalers,
            ddp=ddp,
        )
        if problem:  # under DDP every rank sees the same (rank-averaged) verdict
            if options.nan_policy == "skip" and skipped < options.max_skipped:
                skipped += 1
                for opt in optimizers.values():
                    opt.zero_grad(set_to_none=True)
                continue
            raise NonFiniteLossError(
                f"{problem}; training stopped. The last good checkpoint "
                f"({ckpt_path if ckpt_path.exists() else 'none yet'}) is kept. "
                f"train.nan_policy=skip skips such batches (at most train.max_skipped)."
            )

        last = {k: float(v) for k, v in logs.items()}
        done = step + 1
        if main and (done % options.log_every == 0 or done == options.steps):
            rate = (done - start) / max(time.perf_counter() - t0, 1e-9)
            log.append({"step": done, **last, "it_per_s": rate})
            bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in list(last.items())[:4]})
            if writer is not None:
                for k, v in last.items():
                    writer.add_scalar(k, v, done)
        if done % options.checkpoint_every == 0 or done == options.steps:
            checkpoint(done)
    bar.close()
    if writer is not None:
        writer.close()
    seconds = time.perf_counter() - t0
    steps_run = options.steps - start
    return {
        "steps": options.steps,
        "resumed_from": start,
        "batch_size": options.batch_size,
        "seconds": seconds,
        "it_per_s": steps_run / seconds if seconds > 0 and steps_run else math.nan,
        "skipped_batches": skipped,
        "world_size": 1 if ddp is None else ddp.world,
        "final_losses": last,
        "checkpoint": str(ckpt_path) if ckpt_path.exists() else None,
    }
