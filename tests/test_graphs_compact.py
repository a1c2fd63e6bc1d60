"""compact(model, ticket) (issue 26 item 3): a smaller dense network with the same function.

The oracle is the sparse network itself (the ticket applied to a copy), on random inputs in
eval mode, with random biases and BatchNorm statistics so that constants and folding matter.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import graphtickets as gt
from graphtickets.graphs import compact

ARCHS = {
    "mlp": {"name": "mlp", "widths": (24, 16)},
    "mlp_bn": {"name": "mlp", "widths": (24, 16), "batchnorm": True},
    "cnn1d": {"name": "cnn1d", "channels": 8, "batchnorm": True},
    "resnet1d": {"name": "resnet1d", "depth": 8, "widths": (4, 8, 8)},
}


def _model(arch: str) -> nn.Module:
    kw = dict(ARCHS[arch])
    m = gt.models.build(kw.pop("name"), in_shape=(40,), num_classes=5, seed=0, **kw)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-trivial biases and statistics: constants of cut-off units are not 0
        for mod in m.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                mod.running_mean.copy_(torch.rand(mod.num_features, generator=g) - 0.5)
                mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
                mod.weight.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
                mod.bias.copy_(torch.rand(mod.num_features, generator=g) - 0.5)
            elif isinstance(mod, (nn.Linear, nn.Conv1d)) and mod.bias is not None:
                mod.bias.copy_(torch.rand(mod.bias.shape, generator=g) - 0.5)
    return m


def _with_dead_units(model: nn.Module, ticket: gt.Ticket) -> gt.Ticket:
    """Cut every input of two first-layer units (constants) and every output of two others."""
    masks = {n: m.clone() for n, m in ticket.masks.items()}
    names = list(masks)
    masks[names[0]][:2] = False  # units 0, 1 of the first layer: no input -> constants
    masks[names[1]][:, 2:4] = False  # units 2, 3 of the first layer: no output -> dead
    return ticket.replace(masks)


def _same_function(model: nn.Module, ticket: gt.Ticket) -> nn.Module:
    before = copy.deepcopy(model.state_dict())
    small = compact(model, ticket).eval()
    sparse = ticket.apply(copy.deepcopy(model)).eval()
    x = torch.randn(128, 40, generator=torch.Generator().manual_seed(2)) * 2
    with torch.no_grad():
        torch.testing.assert_close(small(x), sparse(x), atol=1e-5, rtol=1e-5)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # model untouched
    return small


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("density", [0.5, 0.05])
def test_compact_equals_the_sparse_network(arch: str, density: float) -> None:
    model = _model(arch)
    ticket = gt.pruning.prune(model, "magnitude", density=density, seed=0)
    for t in (ticket, _with_dead_units(model, ticket)):
        small = _same_function(model, t)
        info = small.gt_compact
        assert info["params_after"] == sum(p.numel() for p in small.parameters())
        assert info["params_after"] <= info["params_before"]
    if density == 0.05:
        assert info["params_after"] < info["params_before"]


def test_cut_off_units_are_removed_and_their_constants_folded() -> None:
    model = _model("mlp")
    dense = gt.Ticket({n: torch.ones_like(p, dtype=torch.bool) for n, p in gt.prunable(model).items()})
    t = _with_dead_units(model, dense)
    small = _same_function(model, t)
    assert small.fc1.out_features == 20 and small.fc2.in_features == 20  # 2 constants + 2 dead units gone
    assert small.fc2.out_features == 16 and small.classifier.out_features == 5
    assert small.gt_compact["kept_units"]["fc1"] == (20, 24)


def test_resnet_keeps_its_residual_stream_and_narrows_inner_channels() -> None:
    model = _model("resnet1d")
    t = gt.pruning.prune(model, "random", density=0.05, seed=3)
    small = _same_function(model, t)
    inner = [(n, m) for n, m in small.named_modules() if n.endswith(".conv1") and isinstance(m, nn.Conv1d)]
    orig = dict(model.named_modules())
    assert any(m.out_channels < orig[n].out_channels for n, m in inner)  # inner channels narrowed
    for n, m in small.named_modules():
        if n.endswith(".conv2"):
            assert m.out_channels == orig[n].out_channels  # the residual stream keeps its width
