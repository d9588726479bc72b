"""Data-parallel training (``train.ddp``): two gloo ranks on CPU equal one process.

The two ranks are two processes of this very file (``python tests/test_ddp.py --worker``)
started with the environment ``torchrun`` gives its workers (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR=127.0.0.1``, ``MASTER_PORT``); they run several scenarios in one
process group and save what they saw, and the test compares that with single-process runs on
the same global batches.

Tolerance: the model and data are float64, and the only difference between the runs is the
order of the reductions (a mean over 4 samples against the average of two means over 2, and
the gloo sum).  Each such rounding is ~1e-16 relative; Adam's step ``lr * m / (sqrt(v) +
eps)`` is a smooth function of the gradients (``eps`` = 1e-8 bounds its sensitivity near zero
gradients), so after six steps the weights may differ by a few ulps of lr-sized updates:
``atol=1e-12`` leaves room for that and would catch any real difference (a wrong slice, a
missing average or a rank that skipped an update moves weights by ~1e-4 and more).  The two
ranks themselves must agree exactly: they apply the same averaged gradients.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn as nn

REPO = Path(__file__).resolve().parents[1]
if __name__ == "__main__":  # worker mode: make the repository importable
    sys.path.insert(0, str(REPO))

from benchmarks.distributed import Distributed, setup  # noqa: E402
from benchmarks.train import NonFiniteLossError, TrainOptions  # noqa: E402
from benchmarks.train import train as run_training  # noqa: E402
from zoo.models import InpaintModel  # noqa: E402

GLOBAL_BATCH = 4
WORLD = 2
TOL = {"rtol": 0.0, "atol": 1e-12}


class TinyGAN(InpaintModel):
    """Two-layer generator and critic (no batch statistics, no random draws in a step), whose
    losses are means of per-sample terms: DDP must then equal one process exactly (up to
    rounding).  ``poison`` = (step, rank): that rank's generator loss is NaN at that step."""

    d_steps = 2

    def __init__(self, poison: tuple[int, int] | None = None, rank: int = 0) -> None:
        super().__init__()
        self.generator = nn.Sequential(
            nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1), nn.Tanh()
        )
        self.discriminators["d"] = nn.Sequential(
            nn.Conv2d(3, 4, 4, stride=2), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 4)
        )
        self.poison, self.rank = poison, rank

    def inpaint(self, image, mask):
        return {"output": self.generator(torch.cat([image * (1 - mask), mask], dim=1))}

    def generator_loss(self, image, mask, out, step):
        l1 = (out["output"] - image).abs().mean()
        adv = -self.discriminators["d"](out["composite"]).mean()
        if self.poison == (step, self.rank):
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


def batches(step: int, k: int, n: int = GLOBAL_BATCH):
    """The global batch ``k`` of step ``step``: a pure function of (step, k), float64."""
    g = torch.Generator().manual_seed(1000 * step + k)
    image = torch.rand(n, 3, 16, 16, generator=g, dtype=torch.float64) * 2 - 1
    mask = (torch.rand(n, 1, 16, 16, generator=g, dtype=torch.float64) > 0.6).double()
    return image, mask


def _opts(**kw) -> TrainOptions:
    base = {
        "steps": 6,
        "batch_size": GLOBAL_BATCH,
        "checkpoint_every": 2,
        "log_every": 1,
        "progress": False,
    }
    return TrainOptions(**{**base, **kw})


def _model(seed: int = 0, **kw) -> TinyGAN:
    torch.manual_seed(seed)
    return TinyGAN(**kw).double()


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------------- worker (one rank)
def _worker(out: Path) -> None:
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    cpu = torch.device("cpu")
    dist.init_process_group("gloo", init_method="env://")
    results: dict[str, object] = {}
    mine = out / f"rank{rank}"

    # A: six DDP steps; rank 1 starts from other weights (rank 0's must be broadcast)
    model = _model(seed=rank)
    summary = run_training(model, batches, _opts(ddp=True), mine / "full", cpu)
    results["full"] = _state(model)
    results["world_size"] = summary["world_size"]

    # B: four steps, then resume to six; only rank 0's directory holds the checkpoint
    run_training(_model(seed=rank), batches, _opts(ddp=True, steps=4), mine / "part", cpu)
    torch.manual_seed(123 + rank)  # resume must restore the random streams itself
    resumed = _model(seed=7)
    summary = run_training(resumed, batches, _opts(ddp=True, resume=True), mine / "part", cpu)
    results["resumed"] = _state(resumed)
    results["resumed_from"] = summary["resumed_from"]

    # C: a NaN on rank 1 only stops both ranks, naming the step and the term
    try:
        run_training(_model(poison=(3, 1), rank=rank), batches, _opts(ddp=True), mine / "nan", cpu)
        results["nan"] = "no error"
    except NonFiniteLossError as exc:
        results["nan"] = str(exc)

    # D: a global batch the ranks cannot split evenly
    try:
        run_training(_model(), batches, _opts(ddp=True, batch_size=3), mine / "odd", cpu)
        results["odd"] = "no error"
    except ValueError as exc:
        results["odd"] = str(exc)
    dist.destroy_process_group()

    # E: train() creates the group from torchrun's environment and destroys it afterwards
    os.environ["MASTER_PORT"] = os.environ["SECOND_PORT"]
    model = _model()
    run_training(model, batches, _opts(ddp=True, steps=2), mine / "owned", cpu)
    results["owned"] = _state(model)
    results["group_left_open"] = dist.is_initialized()
    torch.save(results, out / f"result{rank}.pt")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("ddp")
    ports = (str(_free_port()), str(_free_port()))
    procs = []
    for rank in range(WORLD):
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(WORLD),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": ports[0],
            "SECOND_PORT": ports[1],
            "OMP_NUM_THREADS": "1",
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "--worker", str(out)],
                env=env,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        )
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=120)[0].decode())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log
    return out, [torch.load(out / f"result{r}.pt", weights_only=True) for r in range(WORLD)]


def _single(tmp_path: Path, name: str, **kw) -> TinyGAN:
    model = _model()
    run_training(model, batches, _opts(**kw), tmp_path / name, torch.device("cpu"))
    return model


def _assert_states(a: dict, b: dict, **tol) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], **tol, msg=lambda m, k=k: f"{k}: {m}")


def test_two_ranks_equal_one_process_on_the_global_batch(ddp_results, tmp_path):
    _, results = ddp_results
    single = _state(_single(tmp_path, "single"))
    assert results[0]["world_size"] == WORLD
    _assert_states(results[0]["full"], single, **TOL)
    _assert_states(results[1]["full"], results[0]["full"], rtol=0, atol=0)


def test_ddp_steps_differ_from_a_local_batch_run(ddp_results, tmp_path):
    """The comparison above has teeth: one process on a rank's half batch ends elsewhere."""
    _, results = ddp_results
    model = _model()

    def half(step, k):
        image, mask = batches(step, k)
        return image[: GLOBAL_BATCH // WORLD], mask[: GLOBAL_BATCH // WORLD]

    opts = _opts(batch_size=GLOBAL_BATCH // WORLD)
    run_training(model, half, opts, tmp_path / "half", torch.device("cpu"))
    w = results[0]["full"]["generator.0.weight"]
    assert (model.state_dict()["generator.0.weight"] - w).abs().max() > 1e-5


def test_only_rank_zero_writes(ddp_results, tmp_path):
    out, _ = ddp_results
    rank0, rank1 = out / "rank0" / "full", out / "rank1" / "full"
    assert (rank0 / "checkpoints" / "last.pt").is_file()
    assert not rank1.exists() or not any(rank1.rglob("*"))
    single = tmp_path / "single"
    _single(tmp_path, "single")
    ddp_log = (rank0 / "train_log.csv").read_text().splitlines()
    one_log = (single / "train_log.csv").read_text().splitlines()
    assert ddp_log[0] == one_log[0] and len(ddp_log) == len(one_log) == 7
    for a, b in zip(ddp_log[1:], one_log[1:]):  # logged losses are the global batch's
        va = [float(x) for x in a.split(",")[:-1]]  # it_per_s (last column) is a timing
        vb = [float(x) for x in b.split(",")[:-1]]
        torch.testing.assert_close(torch.tensor(va), torch.tensor(vb), rtol=1e-12, atol=0)


def test_ddp_resume_equals_uninterrupted(ddp_results, tmp_path):
    _, results = ddp_results
    assert results[0]["resumed_from"] == results[1]["resumed_from"] == 4
    single = _state(_single(tmp_path, "single"))
    for r in range(WORLD):
        _assert_states(results[r]["resumed"], results[0]["full"], rtol=0, atol=0)
    _assert_states(results[0]["resumed"], single, **TOL)


def test_nan_on_one_rank_stops_every_rank(ddp_results):
    _, results = ddp_results
    for r in range(WORLD):
        assert "non-finite generator loss at step 3 (terms: l1)" in results[r]["nan"]


def test_indivisible_global_batch_is_refused_on_every_rank(ddp_results):
    _, results = ddp_results
    for r in range(WORLD):
        assert "batch_size=3 is not divisible by the 2 DDP ranks" in results[r]["odd"]


def test_group_created_from_torchrun_environment(ddp_results, tmp_path):
    _, results = ddp_results
    single = _state(_single(tmp_path, "single", steps=2))
    for r in range(WORLD):
        assert results[r]["group_left_open"] is False
        _assert_states(results[r]["owned"], single, **TOL)


# ---------------------------------------------------------------------- no process group
def test_ddp_without_torchrun_trains_in_one_process(monkeypatch, tmp_path):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.warns(UserWarning, match="without torchrun"):
        ctx, device = setup(torch.device("cpu"))
    assert ctx is None and device == torch.device("cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = _state(_single(tmp_path, "ddp", ddp=True, steps=2))
    _assert_states(a, _state(_single(tmp_path, "plain", steps=2)), rtol=0, atol=0)


@pytest.mark.parametrize("world", [1, 2, 4])
def test_local_slices_tile_the_global_batch(world):
    batch = torch.arange(8 * 3, dtype=torch.float64).reshape(8, 3)
    parts = [Distributed(r, world, torch.device("cpu")).local_slice(batch) for r in range(world)]
    torch.testing.assert_close(torch.cat(parts), batch, rtol=0, atol=0)
    assert all(len(p) == 8 // world for p in parts)
    with pytest.raises(ValueError, match="not divisible by the 3 DDP ranks"):
        Distributed(0, 3, torch.device("cpu")).local_slice(batch)


def test_gradient_buckets_respect_size_and_dtype():
    ctx = Distributed(0, 2, torch.device("cpu"), bucket_mib=1.0)  # 1 MiB = 2**18 float32
    half = 2**17
    grads = [torch.zeros(half), torch.zeros(half), torch.zeros(half)]
    grads += [torch.zeros(10, dtype=torch.float64), torch.zeros(3), torch.zeros(3)]
    buckets = ctx._buckets(grads)
    assert [[g.numel() for g in b] for b in buckets] == [[half, half], [half], [10], [3, 3]]
    flat = [g for b in buckets for g in b]
    assert len(flat) == len(grads) and all(a is b for a, b in zip(flat, grads))


# ---------------------------------------------------------------------- the real CLI
def _schema_has_ddp() -> bool:
    import dataclasses

    from benchmarks.config import TrainConfig

    return any(f.name == "ddp" for f in dataclasses.fields(TrainConfig))


TINY_BENCH = [
    "model=deepfill_v2",
    "model.kwargs.cnum=8",
    "data.resolution=32",
    "data.test_crops=1",
    "train.steps=3",
    "train.batch_size=4",
    "train.log_every=1",
    "train.progress=false",
    "eval.save_predictions=false",
    "eval.lpips=off",
]


@pytest.mark.slow
@pytest.mark.skipif(not _schema_has_ddp(), reason="the config schema has no train.ddp key")
def test_torchrun_bench_equals_single_process(tmp_path):
    """``torchrun --nproc_per_node=2 bench.py ... train.ddp=true`` against ``bench.py``.

    float32 DeepFill v2 (no batch statistics, mean losses): the ranks' partial means and the
    gloo sum round differently (~1e-7 relative); Adam's first steps move each weight by about
    lr = 1e-4 whatever the gradient's size, so a wrong slice or a missing update shows as
    differences of ~1e-4, while rounding stayed below 1e-6 in three steps here.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    port = str(_free_port())
    ddp_dir, one_dir = tmp_path / "ddp", tmp_path / "one"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    launcher += ["--master_addr=127.0.0.1", f"--master_port={port}"]
    for cmd in (
        [*launcher, "bench.py", *TINY_BENCH, "train.ddp=true", f"hydra.run.dir={ddp_dir}"],
        [sys.executable, "bench.py", *TINY_BENCH, f"hydra.run.dir={one_dir}"],
    ):
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
    a = torch.load(ddp_dir / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(one_dir / "checkpoints" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 3 and len(a["rng"]["ranks"]) == 2
    for part in ("generator", "discriminators"):
        _assert_states(a["trained_state"][part], b["trained_state"][part], rtol=0, atol=1e-5)
    assert (ddp_dir / "metrics.json").is_file()


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    _worker(Path(sys.argv[2]))
