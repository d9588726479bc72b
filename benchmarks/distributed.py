"""Data-parallel training over ``torchrun`` ranks: batch slices and gradient all-reduce.

``train.ddp=true`` under ``torchrun --nproc_per_node=N bench.py ...`` makes every rank run the
generic loop of :mod:`benchmarks.train` on its slice of the *same* global batch (the batch
function stays a pure function of ``(seed, step)``; rank ``r`` keeps rows
``[r * B / N, (r + 1) * B / N)``), and averages the gradients of every optimizer step over
the ranks before the step, so the generator and discriminator updates are identical on all
ranks.  Backends: NCCL on CUDA (one GPU per rank, ``cuda:LOCAL_RANK``), gloo on CPU.

Why a gradient all-reduce and not ``torch.nn.parallel.DistributedDataParallel``: the models
call parts of their generator directly (coarse / refine stages, edge + inpaint networks) and
the loop freezes and unfreezes the discriminators between the D and G updates; wrapping the
modules in DDP would change their state-dict keys and attribute paths and needs every
parameter to reach the loss through the wrapper's ``forward``.  The all-reduce here runs
after ``backward`` (bucketed, ``bucket_mib``), i.e. without DDP's overlap of communication
and backward, and gives the same update as DDP.

What equals a single-process run on the global batch (up to floating-point reduction order):
losses that are means of per-sample terms over equally sized slices (L1/L2 means, hinge and
non-saturating GAN losses, VGG feature losses).  What does not: batch statistics (BatchNorm
in training mode normalises over the rank's slice, as with DDP without SyncBatchNorm; the
running statistics of rank 0 are the ones saved), losses normalised by a batch-wide quantity
(e.g. EdgeConnect's L1 divided by the batch's mean hole ratio), and random draws inside a
step (WGAN-GP interpolation weights, random local crops): each rank draws its own from a
per-rank random stream.

The per-rank random streams: rank 0 keeps the process's stream (so a 1-rank run is the
single-process run), rank ``r > 0`` is reseeded with ``initial_seed + r * RANK_SEED_STRIDE``
at the start of training; checkpoints store every rank's RNG state, so a resumed run with the
same number of ranks continues each stream exactly.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["Distributed", "RANK_SEED_STRIDE", "setup", "is_main_process"]

Tensor = torch.Tensor

#: rank r > 0 reseeds its torch RNG with initial_seed + r * RANK_SEED_STRIDE
RANK_SEED_STRIDE = 1_000_003


def is_main_process() -> bool:
    """True on rank 0, and in any process that is not part of a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def _backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def setup(device: torch.device) -> tuple[Distributed | None, torch.device]:
    """Join the default process group, or create it from ``torchrun``'s environment
    (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``, ``LOCAL_RANK``).

    Returns ``(context, device)``; ``device`` is ``cuda:LOCAL_RANK`` for a CUDA run.  Without a
    process group and without ``WORLD_SIZE`` in the environment (plain ``python bench.py``)
    it warns and returns ``(None, device)``: a single-process run.
    """
    if not dist.is_available():
        raise RuntimeError("train.ddp=true, but this torch build has no torch.distributed")
    if not dist.is_initialized():
        if "WORLD_SIZE" not in os.environ:
            warnings.warn(
                "train.ddp=true without torchrun (WORLD_SIZE is not set): training in one "
                "process. Launch with: torchrun --nproc_per_node=N bench.py ... train.ddp=true",
                stacklevel=2,
            )
            return None, device
        owns_group = True
    else:
        owns_group = False
    if device.type == "cuda":
        device = _rank_device(device)
        torch.cuda.set_device(device)
    if owns_group:
        dist.init_process_group(backend=_backend(device), init_method="env://")
    context = Distributed(dist.get_rank(), dist.get_world_size(), device, owns_group=owns_group)
    return context, device


def _rank_device(device: torch.device) -> torch.device:
    if device.index is not None:
        return device
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


@dataclass
class Distributed:
    """The process group as the training loop needs it (default group, ``rank`` of ``world``)."""

    rank: int
    world: int
    device: torch.device
    owns_group: bool = False  # created by :func:`setup` (then :meth:`close` destroys it)
    bucket_mib: float = 25.0  # gradient all-reduce bucket size (DDP's default bucket_cap_mb)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def close(self) -> None:
        """Destroy the default process group (only the creator of the group should)."""
        if dist.is_initialized():
            dist.destroy_process_group()

    # ---------------------------------------------------------------- batches
    def local_slice(self, batch: Tensor) -> Tensor:
        """This rank's rows of the global batch ``batch`` (N x ...)."""
        n = batch.shape[0]
        if n % self.world:
            raise ValueError(
                f"train.batch_size={n} is not divisible by the {self.world} DDP ranks; use a "
                f"global batch size that is a multiple of --nproc_per_node"
            )
        per = n // self.world
        return batch[self.rank * per : (self.rank + 1) * per]

    # ---------------------------------------------------------------- start-up
    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Copy rank 0's parameters and buffers into every rank (in place)."""
        with torch.no_grad():
            for t in (*module.parameters(), *module.buffers()):
                dist.broadcast(t.data, src=0)

    def seed_rank_stream(self) -> None:
        """Give rank r > 0 its own torch random stream (rank 0 keeps the process's)."""
        if self.rank > 0:
            torch.manual_seed(torch.initial_seed() + self.rank * RANK_SEED_STRIDE)

    def broadcast_object(self, obj: object) -> object:
        """Rank 0's ``obj`` on every rank (pickled; for checkpoints and messages)."""
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_objects(self, obj: object) -> list[object]:
        """Every rank's ``obj``, in rank order, on every rank."""
        out: list[object] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    # ---------------------------------------------------------------- per step
    def average_logs(
        self, loss: Tensor, logs: dict[str, Tensor]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Rank-averaged (detached) loss and log terms: the global batch's values for mean
        losses, and NaN/Inf on every rank when any rank has one (so all ranks stop together)."""
        names = list(logs)
        values = [loss.detach().double().reshape(())]
        values += [torch.as_tensor(logs[k]).detach().double().reshape(()) for k in names]
        stacked = torch.stack([v.to(self.device) for v in values])  # (1 + terms,)
        dist.all_reduce(stacked, op=dist.ReduceOp.SUM)
        stacked = stacked / self.world
        return stacked[0], {k: stacked[i + 1] for i, k in enumerate(names)}

    def average_gradients(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Replace every gradient by its mean over the ranks (bucketed all-reduce).

        A parameter without a gradient on some rank but with one on another gets zeros there
        first (a data-dependent branch); one without a gradient anywhere keeps ``None``, so the
        optimizer skips it as it would in a single process.
        """
        params = [p for p in params if p.requires_grad or p.grad is not None]
        if not params:
            return
        present = torch.tensor(
            [float(p.grad is not None) for p in params], device=self.device
        )  # (P,)
        dist.all_reduce(present, op=dist.ReduceOp.MAX)
        grads = []
        for p, flag in zip(params, present.tolist()):
            if flag and p.grad is None:
                p.grad = torch.zeros_like(p)
            if flag:
                grads.append(p.grad)
        for bucket in self._buckets(grads):
            flat = torch.cat([g.reshape(-1) for g in bucket])  # (sum of numels,)
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            flat /= self.world
            offset = 0
            for g in bucket:
                g.copy_(flat[offset : offset + g.numel()].view_as(g))
                offset += g.numel()

    def _buckets(self, grads: list[Tensor]) -> list[list[Tensor]]:
        """Consecutive gradients of one dtype and device, about ``bucket_mib`` each."""
        cap = int(self.bucket_mib * 2**20)
        buckets: list[list[Tensor]] = []
        size = 0
        for g in grads:
            same = buckets and buckets[-1][0].dtype == g.dtype and buckets[-1][0].device == g.device
            if not same or size >= cap:
                buckets.append([])
                size = 0
            buckets[-1].append(g)
            size += g.numel() * g.element_size()
        return buckets
