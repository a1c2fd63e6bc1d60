"""Masks of every method are unchanged by the house refactor (issue 16: behaviour unchanged).

Recorded on main after the faithful-protocol, siblings and batched-training changes landed
(the refactor's baseline, per issue 16): the sha256 (first 16 hex digits) of the masks of
every registered method, plus variants of the shared scoring options (layer scope, rounds,
invert, include_bias, keep_classifier_dense, SynFlow's plain engine), on two seeds and two
models (an MLP with BatchNorm and the BatchNorm ``cnn1d``), density 0.2, on fixed synthetic
batches, one thread. A change of any method's masks fails here: re-record only with a
behaviour change that an issue asks for, and say so in its commit.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import torch

import graphtickets as gt

MODELS: dict[str, dict[str, Any]] = {
    "mlp_bn": {"name": "mlp", "widths": (16, 12), "batchnorm": True},
    "cnn1d_bn": {"name": "cnn1d", "batchnorm": True},
}
#: label -> (method, hyper-parameters)
CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "random": ("random", {}),
    "random_layer": ("random", {"scope": "layer"}),
    "magnitude": ("magnitude", {}),
    "magnitude_layer": ("magnitude", {"scope": "layer", "rounds": 3, "invert": True}),
    "snip": ("snip", {}),
    "snip_opts": ("snip", {"rounds": 2, "include_bias": True, "keep_classifier_dense": True}),
    "grasp": ("grasp", {}),
    "synflow": ("synflow", {"rounds": 5}),
    "synflow_slow": ("synflow", {"rounds": 5, "fast": False}),
    "imp": ("imp", {"rate": 0.6, "epochs": 1, "rewind": 1, "output_rate": 0.3}),
    "early_bird": ("early_bird", {"epochs": 2}),
    "early_magnitude": ("early_magnitude", {"epochs": 2}),
    "gem_miner": ("gem_miner", {"epochs": 1}),
}
EXPECTED: dict[tuple[str, int, str], str] = {
    ('mlp_bn', 0, 'random'): 'f52f967cbd58da1d',
    ('mlp_bn', 0, 'magnitude'): 'a8e194d6b2f7b663',
    ('mlp_bn', 0, 'snip'): '0c41cefca1bfb232',
    ('mlp_bn', 0, 'grasp'): 'b49e8f4c3adf7474',
    ('mlp_bn', 0, 'synflow'): 'c87d7543a1d80576',
    ('mlp_bn', 0, 'synflow_slow'): 'c87d7543a1d80576',
    ('mlp_bn', 0, 'magnitude_layer'): 'b58e41dca5081c11',
    ('mlp_bn', 0, 'snip_opts'): '49505e9557604dc8',
    ('mlp_bn', 0, 'random_layer'): 'f52f967cbd58da1d',
    ('mlp_bn', 0, 'imp'): 'bdb27e061c8c0dd9',
    ('mlp_bn', 0, 'early_bird'): '292dd10794cb3ecf',
    ('mlp_bn', 0, 'early_magnitude'): '88efd24ab0b604ae',
    ('mlp_bn', 0, 'gem_miner'): 'e11c74d80198a1ca',
    ('mlp_bn', 0, 'elastic'): 'e205dac2c6e1829e',
    ('mlp_bn', 1, 'random'): '851530d87e2214b3',
    ('mlp_bn', 1, 'magnitude'): '05276a5c083686ea',
    ('mlp_bn', 1, 'snip'): '0bc77f48034ddade',
    ('mlp_bn', 1, 'grasp'): 'f2b7865cd2b5d12d',
    ('mlp_bn', 1, 'synflow'): '28c4fb1b301f80b0',
    ('mlp_bn', 1, 'synflow_slow'): '28c4fb1b301f80b0',
    ('mlp_bn', 1, 'magnitude_layer'): '51cb10c70fd50c7e',
    ('mlp_bn', 1, 'snip_opts'): '8af237d88ff4b60e',
    ('mlp_bn', 1, 'random_layer'): '851530d87e2214b3',
    ('mlp_bn', 1, 'imp'): 'cc7ce0872a4d87e0',
    ('mlp_bn', 1, 'early_bird'): 'f4d52b8f27ead46e',
    ('mlp_bn', 1, 'early_magnitude'): '006d268ea2df5891',
    ('mlp_bn', 1, 'gem_miner'): '9fdac49bf3dcde51',
    ('mlp_bn', 1, 'elastic'): '81e76f6102dc63ff',
    ('cnn1d_bn', 0, 'random'): '84b98e8abe35eccf',
    ('cnn1d_bn', 0, 'magnitude'): '1109251f1bf2aba5',
    ('cnn1d_bn', 0, 'snip'): 'f0dd7687aad56d03',
    ('cnn1d_bn', 0, 'grasp'): 'e2cac9c8321ea2b2',
    ('cnn1d_bn', 0, 'synflow'): 'e692b1b964533da2',
    ('cnn1d_bn', 0, 'synflow_slow'): 'e692b1b964533da2',
    ('cnn1d_bn', 0, 'magnitude_layer'): '197392e207bc4161',
    ('cnn1d_bn', 0, 'snip_opts'): 'a655a34b100dd61a',
    ('cnn1d_bn', 0, 'random_layer'): '84b98e8abe35eccf',
    ('cnn1d_bn', 0, 'imp'): 'fe9dc1b5a7c03ee8',
    ('cnn1d_bn', 0, 'early_bird'): 'd565cec940d4db0a',
    ('cnn1d_bn', 0, 'early_magnitude'): '8aa61093579d17db',
    ('cnn1d_bn', 0, 'gem_miner'): 'fd9581f09b49a407',
    ('cnn1d_bn', 0, 'elastic'): '1109251f1bf2aba5',
    ('cnn1d_bn', 1, 'random'): '52879007b013c927',
    ('cnn1d_bn', 1, 'magnitude'): 'e916ea23ef28203c',
    ('cnn1d_bn', 1, 'snip'): '46a96addeffe9708',
    ('cnn1d_bn', 1, 'grasp'): '9c75ee41e7b98894',
    ('cnn1d_bn', 1, 'synflow'): '95223c12452ba0b5',
    ('cnn1d_bn', 1, 'synflow_slow'): '95223c12452ba0b5',
    ('cnn1d_bn', 1, 'magnitude_layer'): '68177e588d144fed',
    ('cnn1d_bn', 1, 'snip_opts'): '562cda80dd2c7b9f',
    ('cnn1d_bn', 1, 'random_layer'): '52879007b013c927',
    ('cnn1d_bn', 1, 'imp'): '4ce557d2ad8666c2',
    ('cnn1d_bn', 1, 'early_bird'): 'ea1303d886b82c62',
    ('cnn1d_bn', 1, 'early_magnitude'): 'e224e7746a941a7e',
    ('cnn1d_bn', 1, 'gem_miner'): '139fcbbde2d8f1f1',
    ('cnn1d_bn', 1, 'elastic'): 'e916ea23ef28203c',
}


def _data(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(64, 40, generator=g), torch.randint(0, 10, (64,), generator=g)
    return [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]


def _build(spec: dict[str, Any], seed: int) -> torch.nn.Module:
    spec = dict(spec)
    return gt.models.build(spec.pop("name"), in_shape=(40,), num_classes=10, seed=seed, **spec)


def _digest(ticket: gt.Ticket) -> str:
    h = hashlib.sha256()
    for name in sorted(ticket.masks):
        h.update(name.encode())
        h.update(ticket.masks[name].to(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("label", sorted(CALLS))
def test_masks_unchanged(model: str, seed: int, label: str) -> None:
    method, hp = CALLS[label]
    data = None if gt.pruning.METHODS[method].data_use == "none" else _data(seed)
    ticket = gt.pruning.prune(_build(MODELS[model], seed), method, density=0.2, data=data, seed=seed, **hp)
    assert _digest(ticket) == EXPECTED[(model, seed, label)]


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("seed", [0, 1])
def test_elastic_masks_unchanged(model: str, seed: int) -> None:
    deeper = {**MODELS[model], "widths": (16, 12, 12)} if model.startswith("mlp") else MODELS[model]
    source = gt.pruning.prune(_build(deeper, seed), "magnitude", density=0.2, seed=seed)
    ticket = gt.pruning.prune(_build(MODELS[model], seed), "elastic", density=0.2, source=source,
                              source_model=_build(deeper, seed), seed=seed)
    assert _digest(ticket) == EXPECTED[(model, seed, "elastic")]
