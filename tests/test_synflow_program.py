"""The autograd-free SynFlow program against autograd, the autograd engine and the generic path.

``synflow_program`` runs the flow of a traced network as explicit matrix products (im2col
columns, CSR and sampled products once a layer is thin). Checked here against code that does
not share it: autograd's gradients of the same float64 copy (``torch.nn`` layers), the masks
of the autograd engine (``synflow_engine.PROGRAM = False``) and of ``prune(..., fast=False)``
(``score_prune`` with autograd scores), and the fall back for networks the program does not
know.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import graphtickets as gt
from graphtickets.pruning import synflow_engine as E
from graphtickets.pruning import synflow_program as P
from graphtickets.pruning.synflow import _fold_batchnorm, linearized_copy


class _Net(nn.Module):
    """Padding, stride, dilation (strided and not), a non-square kernel, a 1x1 conv, a strided 1x1 shortcut, a
    residual add, an unfolded BatchNorm (after the add), max and average pooling, dropout,
    functional and method ReLU and flatten, biases."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.c2 = nn.Conv2d(6, 6, (3, 1), padding=(1, 0), bias=False)
        self.c3 = nn.Conv2d(6, 8, 3, stride=2, padding=2, dilation=2)
        self.short = nn.Conv2d(6, 8, 1, stride=2, bias=False)
        self.bn_after_add = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.dil = nn.Conv2d(8, 8, 3, padding=2, dilation=2, bias=False)
        self.c4 = nn.Conv2d(8, 8, 1)
        self.drop = nn.Dropout(0.3)
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(8, 12)
        self.fc2 = nn.Linear(12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.c1(x)))
        h = self.c2(h).relu() + h
        h = self.bn_after_add(self.c3(h) + self.short(h))
        h = self.c4(torch.relu(self.dil(self.pool(torch.nn.functional.relu(h)))))
        h = self.drop(self.avg(h))
        return self.fc2(torch.relu(self.fc1(torch.flatten(h, 1))))


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = _Net()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for bn in (net.bn1, net.bn_after_add):
            bn.running_var.uniform_(0.5, 2.0, generator=g)
    return net


IN = (3, 12, 10)


def _work(net: nn.Module) -> nn.Module:
    work = _fold_batchnorm(linearized_copy(net, torch.float64))
    with torch.no_grad():
        for m in work.modules():  # non-zero biases (BatchNorm's shift stays 0): their gradients are checked too
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                m.bias.uniform_(0.0, 0.5)
    return work


@pytest.mark.parametrize("with_biases", [True, False])
@pytest.mark.parametrize("sparse", [False, True])
def test_program_gradients_equal_autograd(sparse: bool, with_biases: bool) -> None:
    """Every gradient against autograd. Without a scored bias ReLU's backward mask is skipped:
    the gradients of the live (non-zero) weights must still equal autograd's."""
    net = _net()
    work = _work(net)
    with torch.no_grad():  # some pruned weights, and (sparse) CSR products on every layer
        for n, p in work.named_parameters():
            if n.endswith("weight") and p.dim() > 1:
                p[p < p.median()] = 0.0
                if not with_biases:
                    p[0] = 0.0  # a dead unit in every layer: ReLU's mask would matter for it
            elif n.endswith("bias") and not with_biases:
                p.zero_()  # as in the flow
    layers = {n for n, m in work.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    names = [n for n, p in work.named_parameters() if n.rpartition(".")[0] in layers and (with_biases or n.endswith("weight"))]
    prog = P.build(work, names, IN)
    assert prog is not None
    if sparse:
        for lay in prog.layers.values():
            values = lay.W.reshape(-1).numpy()
            lay.make_sparse(np.flatnonzero(values), values)
    # autograd on a deep copy (the program holds views of work's weights)
    ref = __import__("copy").deepcopy(work)
    params = dict(ref.named_parameters())
    for p in params.values():
        p.requires_grad_(True)
    out = ref(torch.ones((1, *IN), dtype=torch.float64))
    r_ref = out.sum()
    grads = torch.autograd.grad(r_ref, [params[n] for n in names])
    r = prog.flow()
    assert r == pytest.approx(float(r_ref.detach()), rel=1e-12)
    leaked = False
    for n, g in zip(names, grads, strict=True):
        mname, _, attr = n.rpartition(".")
        lay = prog.layers[mname]
        if attr == "weight":
            got = lay.G.view(g.shape)
            if sparse or not with_biases:  # only the live weights' gradients are defined to match
                live = params[n].detach() != 0
                torch.testing.assert_close(got[live], g[live], rtol=1e-12, atol=1e-14)
                leaked = leaked or not torch.allclose(got[~live], g[~live])
            else:
                torch.testing.assert_close(got, g, rtol=1e-12, atol=1e-14)
        else:
            assert lay.Gb is not None
            torch.testing.assert_close(lay.Gb, g, rtol=1e-12, atol=1e-14)
    if not with_biases and not sparse:  # the skipped mask did let gradient through dead units
        assert leaked


@pytest.mark.parametrize("sparse_everywhere", [False, True])
@pytest.mark.parametrize(
    "options",
    [dict(), dict(include_bias=True), dict(scope="layer"), dict(invert=True), dict(keep_classifier_dense=True, schedule="linear")],
)
def test_program_masks_equal_autograd_engine_and_generic_path(options: dict, sparse_everywhere: bool,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    if sparse_everywhere:  # every layer switches to CSR and sampled products once it has lost a weight
        monkeypatch.setattr(P, "SPARSE_MIN_SIZE", 0)
        monkeypatch.setattr(P, "SPARSE_BELOW", 1.0)
    net = _net(1)
    kw = dict(density=0.05, rounds=12, in_shape=IN, **options)
    fast = gt.pruning.prune(net, "synflow", **kw)
    slow = gt.pruning.prune(net, "synflow", fast=False, **kw)
    monkeypatch.setattr(E, "PROGRAM", False)
    autograd_engine = gt.pruning.prune(net, "synflow", **kw)
    assert fast == slow
    assert fast == autograd_engine


class _Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 6 * 6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.c(torch.relu(self.c(x)))).flatten(1))


@pytest.mark.parametrize(
    "model",
    [
        _Shared(),  # a conv called twice
        nn.Sequential(nn.Conv2d(3, 4, 3, groups=1, padding="same"), nn.Flatten(), nn.Linear(4 * 36, 2)),  # string padding
        nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 16, 2)),  # an unknown module
        nn.Sequential(nn.Conv2d(3, 3, 3, groups=3), nn.Flatten(), nn.Linear(3 * 16, 2)),  # a grouped conv
    ],
)
def test_unknown_networks_fall_back_to_autograd_with_the_same_mask(model: nn.Module) -> None:
    names = list(gt.prunable(model))
    assert P.build(_fold_batchnorm(linearized_copy(model, torch.float64)), names, (3, 6, 6)) is None
    kw = dict(density=0.2, rounds=5, in_shape=(3, 6, 6))
    assert gt.pruning.prune(model, "synflow", **kw) == gt.pruning.prune(model, "synflow", fast=False, **kw)


def test_networks_with_a_large_conv_run_on_the_autograd_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory-bound convolutions (``LARGEST_CONV`` weights or more) are left to the autograd engine."""
    net = _net(2)
    work = _fold_batchnorm(linearized_copy(net, torch.float64))
    names = list(gt.prunable(net))
    assert P.build(work, names, IN) is not None
    monkeypatch.setattr(P, "LARGEST_CONV", 6 * 6 * 9)  # c3 (8*6*3*3 = 432 weights) reaches it
    assert P.build(work, names, IN) is None
    kw = dict(density=0.1, rounds=6, in_shape=IN)
    assert gt.pruning.prune(net, "synflow", **kw) == gt.pruning.prune(net, "synflow", fast=False, **kw)


def test_tied_weights_are_left_to_autograd() -> None:
    """Two layers holding one weight: each call's gradient must add up, which the program does
    not do across layers, so it declines."""
    net = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 3, 3, padding=1), nn.Flatten(), nn.Linear(108, 2))
    net[2].weight = net[0].weight
    names = ["0.weight", "4.weight"]  # named_parameters() lists the shared weight once
    assert [n for n, _ in net.named_parameters() if n.endswith("weight")] == names
    assert P.build(_fold_batchnorm(linearized_copy(net, torch.float64)), names, (3, 6, 6)) is None


@pytest.mark.parametrize(
    ("name", "kw", "shape"),
    [("mlp", {"widths": (64, 32), "batchnorm": True}, (40,)), ("conv4", {}, (3, 16, 16)), ("resnet32", {"width": 0.5}, (3, 16, 16))],
)
def test_program_runs_the_model_zoo_with_the_generic_mask(name: str, kw: dict, shape: tuple) -> None:
    net = gt.models.build(name, in_shape=shape, num_classes=10, seed=1, **kw)
    assert P.build(_fold_batchnorm(linearized_copy(net, torch.float64)), list(gt.prunable(net)), shape) is not None
    for options in (dict(), dict(include_bias=True)):
        kw_ = dict(density=0.03, rounds=15, in_shape=shape, **options)
        assert gt.pruning.prune(net, "synflow", **kw_) == gt.pruning.prune(net, "synflow", fast=False, **kw_)
