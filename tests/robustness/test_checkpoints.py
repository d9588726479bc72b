"""Weight files: only tensors are loaded, checksums are enforced, missing files are named."""

from __future__ import annotations

import pytest
import torch

from zoo._weights import MissingWeightsError, load_state_dict, sha256sum


class Payload:
    """Any user class: unpickling it means importing and running code, so it is refused."""

    def __init__(self) -> None:
        self.note = "not a tensor"


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.ones(2), "extra": Payload()}, path)
    with pytest.raises(ValueError, match="refused.*pickled Python objects"):
        load_state_dict(path)


def test_plain_state_dict_loads_and_checksum_is_enforced(tmp_path):
    path = tmp_path / "ok.pth"
    torch.save({"w": torch.arange(3.0), "meta": {"step": 3, "name": "x"}}, path)
    good = sha256sum(path)
    state = load_state_dict(path, sha256=good)
    assert torch.equal(state["w"], torch.arange(3.0)) and state["meta"]["step"] == 3
    with pytest.raises(ValueError, match="sha256 .* does not match the recorded 0+"):
        load_state_dict(path, sha256="0" * 64)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(MissingWeightsError, match=str(tmp_path / "nope.pth")):
        load_state_dict(tmp_path / "nope.pth")
