"""Shared fixtures: a fake torch cache holding generated (random) ImageNet backbone files.

Nothing in the test suite may download weights.  ``fake_torch_home`` points ``TORCH_HOME`` at a
temporary folder whose ``hub/checkpoints/`` holds files with torchvision's exact names
(``vgg16-397923af.pth``, ``vgg19-dcbb9e9d.pth``, ``alexnet-owt-7be5be79.pth``) and torchvision's
exact key layout and shapes (``features.<i>.*`` and ``classifier.<i>.*``), so both the project's
loaders and ``torchvision.models.*(weights=...)`` (``strict=True``) accept them.

The convolution weights are seeded random (Kaiming-normal, fan-out, as torchvision initialises;
small random biases) so features are non-trivial.  To keep the files small and fast to write,
the huge fully-connected ``classifier`` tensors are zero tensors expanded from a single element
(``torch.save`` stores one float for each); they load with the right shape.  The files are
generated once per session.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

#: torchvision cfgs: conv widths and "M" (max pool) for features; classifier Linear shapes
_VGG_CFG = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M"]
    + [512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M"]
    + [512, 512, 512, 512, "M"],
}
_FILES = {
    "vgg16": "vgg16-397923af.pth",
    "vgg19": "vgg19-dcbb9e9d.pth",
    "alexnet": "alexnet-owt-7be5be79.pth",
}
#: AlexNet (torchvision "owt"): features index -> (out, in, k); classifier Linear indices
_ALEXNET_CONVS = {0: (64, 3, 11), 3: (192, 64, 5), 6: (384, 192, 3), 8: (256, 384, 3)}
_ALEXNET_CONVS[10] = (256, 256, 3)
_CLASSIFIERS = {
    "vgg16": {0: (4096, 512 * 7 * 7), 3: (4096, 4096), 6: (1000, 4096)},
    "vgg19": {0: (4096, 512 * 7 * 7), 3: (4096, 4096), 6: (1000, 4096)},
    "alexnet": {1: (4096, 256 * 6 * 6), 4: (4096, 4096), 6: (1000, 4096)},
}


def _conv_shapes(arch: str) -> dict[int, tuple[int, int, int]]:
    if arch == "alexnet":
        return dict(_ALEXNET_CONVS)
    shapes, idx, in_ch = {}, 0, 3
    for v in _VGG_CFG[arch]:
        if v == "M":
            idx += 1
        else:
            shapes[idx] = (int(v), in_ch, 3)
            in_ch, idx = int(v), idx + 2
    return shapes


def make_fake_state_dict(arch: str, *, seed: int = 0, features_only: bool = False) -> dict:
    """A torchvision-layout state dict for ``arch`` with seeded random conv weights."""
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for idx, (out_ch, in_ch, k) in _conv_shapes(arch).items():
        std = (2.0 / (out_ch * k * k)) ** 0.5
        state[f"features.{idx}.weight"] = torch.randn(out_ch, in_ch, k, k, generator=gen) * std
        state[f"features.{idx}.bias"] = torch.randn(out_ch, generator=gen) * 0.01
    if not features_only:
        for idx, (out_f, in_f) in _CLASSIFIERS[arch].items():
            # one stored float each: zero tensors of the exact torchvision shape
            state[f"classifier.{idx}.weight"] = torch.zeros(1).expand(out_f, in_f)
            state[f"classifier.{idx}.bias"] = torch.zeros(1).expand(out_f)
    return state


@pytest.fixture(scope="session")
def fake_checkpoint_files(tmp_path_factory) -> dict[str, Path]:
    """``{arch: path}`` of generated torchvision-layout checkpoints (written once)."""
    folder = tmp_path_factory.mktemp("torch_home") / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    paths = {}
    for seed, (arch, name) in enumerate(_FILES.items()):
        paths[arch] = folder / name
        torch.save(make_fake_state_dict(arch, seed=seed), paths[arch])
    return paths


@pytest.fixture
def fake_torch_home(monkeypatch, fake_checkpoint_files) -> Path:
    """Sets ``TORCH_HOME`` to the fake cache; returns its ``hub/checkpoints`` folder."""
    folder = fake_checkpoint_files["vgg16"].parent
    monkeypatch.setenv("TORCH_HOME", str(folder.parent.parent))
    return folder


@pytest.fixture
def empty_torch_home(monkeypatch, tmp_path) -> Path:
    """Sets ``TORCH_HOME`` to an empty folder; returns its (absent) ``hub/checkpoints`` path."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path / "hub" / "checkpoints"


@pytest.fixture
def write_fake_checkpoint(monkeypatch, tmp_path) -> Callable[..., Path]:
    """``write(arch, *, features_only=False, prefix=True, seed=0)`` writes a checkpoint under a
    fresh ``TORCH_HOME`` (set for this test) and returns its path; ``prefix=False`` stores a
    ``model.features.state_dict()``-style extract (keys ``<i>.weight``)."""
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def write(arch: str, *, features_only: bool = False, prefix: bool = True, seed: int = 0):
        state = make_fake_state_dict(arch, seed=seed, features_only=features_only)
        if not prefix:
            state = {k[len("features.") :]: v for k, v in state.items()}
        path = folder / _FILES[arch]
        torch.save(state, path)
        return path

    return write
