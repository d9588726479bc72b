"""No code path downloads anything: with every network entry point of torch and urllib
replaced by a tripwire and an empty weight cache, models build, run and fail only with
MissingWeightsError naming the file and folder; LPIPS is recorded as unavailable."""

from __future__ import annotations

import urllib.request

import pytest
import torch

import zoo
from benchmarks.metrics import LPIPSScorer
from zoo._registry import accepts
from zoo._weights import MissingWeightsError


class NetworkUsed(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch, empty_torch_home):
    def tripwire(*args, **kwargs):
        raise NetworkUsed(f"network access attempted: {args[:1]}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", tripwire)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", tripwire)
    monkeypatch.setattr(urllib.request, "urlopen", tripwire)
    return empty_torch_home


def test_lpips_without_weights_never_downloads(no_network):
    scorer = LPIPSScorer("auto")
    assert not scorer.available and "alexnet-owt-7be5be79.pth" in scorer.reason


#: options that switch on a model's VGG-based terms where its default configuration has none
VGG_ON = {"shift_net": {"style_weight": 0.1, "content_weight": 0.01}}


@pytest.mark.parametrize("name", [n for n in zoo.list_models() if accepts(n, "vgg")])
def test_vgg_losses_fail_with_the_file_name_not_a_download(no_network, name):
    torch.manual_seed(0)
    # the loss network is built lazily, so building the model needs no weights
    model = zoo.create_model(name, vgg="imagenet", **VGG_ON.get(name, {})).train()
    size = model.input_size or max(128, model.pad_multiple)
    image = torch.rand(2, 3, size, size) * 2 - 1
    mask = torch.zeros(2, 1, size, size)
    mask[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1
    with pytest.raises(MissingWeightsError) as err:
        out = model(image, mask)
        model.generator_loss(image, mask, out, 10**9)
        model.eval()(image, mask)  # MSNPS needs VGG-19 at inference (texture step)
    message = str(err.value)
    assert ".pth" in message and str(no_network) in message
