"""The fast SynFlow engine against autograd and against the generic float64 path.

``synflow_engine`` computes Conv2d/Linear gradients itself (dense channels_last products, or
CSR products for large sparse convs) and selects among survivors only. Every check here
compares with code that does not share it: autograd's gradients of ``torch.nn`` layers, and
``prune(..., fast=False)`` (``score_prune`` with autograd scores and ``topk_flat``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import graphtickets as gt
from graphtickets.pruning import synflow_engine as E


def _seeded(build, seed: int) -> nn.Module:  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    return build()


@pytest.fixture
def force_sparse(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every conv switches to CSR products as soon as it has lost any weight."""
    monkeypatch.setattr(E, "SPARSE_MIN_SIZE", 0)
    monkeypatch.setattr(E, "SPARSE_BELOW", 1.0)
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


CONVS = [
    dict(in_channels=3, out_channels=5, kernel_size=3, padding=1),
    dict(in_channels=3, out_channels=4, kernel_size=(3, 1), stride=2, padding=(1, 0), bias=False),
    dict(in_channels=3, out_channels=6, kernel_size=2, dilation=2, padding=2),
    dict(in_channels=3, out_channels=2, kernel_size=1),
]


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("kw", CONVS)
def test_layer_gradients_equal_autograd(kw: dict, sparse: bool) -> None:
    conv = _seeded(lambda: nn.Conv2d(**kw), 0).double()
    with torch.no_grad():
        conv.weight.abs_()
        conv.weight[conv.weight < 0.1] = 0.0  # some pruned weights
    x = torch.rand(1, 3, 9, 7, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    layer = E._Layer(conv)
    if sparse:
        values = E._np_memory(layer.W)
        layer.make_sparse(np.flatnonzero(values), values)
    out, saved = layer.forward(x)
    xr = x.clone().requires_grad_(True)
    ref = conv(xr)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    g = torch.rand_like(ref)
    layer.calls = 0
    dx = layer.backward(g, saved, tuple(x.shape), True)
    gw, gx = torch.autograd.grad(ref, [conv.weight, xr], g)
    torch.testing.assert_close(dx, gx, rtol=1e-12, atol=1e-12)
    # G is (out, kh*kw*in): the channels_last memory order of the weight
    torch.testing.assert_close(layer.G, gw.permute(0, 2, 3, 1).reshape(gw.shape[0], -1), rtol=1e-12, atol=1e-12)
    if conv.bias is not None:
        assert layer.Gb is not None
        torch.testing.assert_close(layer.Gb, g.sum(dim=(0, 2, 3)), rtol=1e-12, atol=1e-12)


class _Zoo(nn.Module):
    """Strides, dilation, a non-square kernel, a grouped conv (autograd fallback), a conv used
    twice (gradients accumulate), a residual add, BatchNorm, max pooling, a Linear on a 3-D
    tensor and biases."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.shared = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.c2 = nn.Conv2d(8, 8, (3, 1), stride=2, padding=(1, 0))
        self.g = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2)
        self.seq = nn.Linear(2, 6)
        self.fc = nn.Linear(8 * 6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.c1(x)))
        h = torch.relu(self.shared(h)) + h
        h = torch.relu(self.shared(h))
        h = torch.max_pool2d(torch.relu(self.c2(h)), (1, 2))  # (8, 4, 2)
        h = torch.relu(self.g(h))
        h = torch.relu(self.seq(h.mean(dim=2)))  # Linear on (1, 8, 2) -> (1, 8, 6)
        return self.fc(h.flatten(1))


def _zoo() -> nn.Module:
    net = _seeded(_Zoo, 3)
    with torch.no_grad():
        net.bn1.running_var.uniform_(0.5, 2.0, generator=torch.Generator().manual_seed(1))
    return net


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(include_bias=True),
        dict(scope="layer"),
        dict(invert=True),
        dict(keep_classifier_dense=True, schedule="linear"),
    ],
)
def test_engine_equals_generic_path(options: dict, sparse: bool, request: pytest.FixtureRequest) -> None:
    if sparse:
        request.getfixturevalue("force_sparse")
    net = _zoo()
    kw = dict(density=0.05, rounds=12, in_shape=(3, 8, 8), **options)
    fast = gt.pruning.prune(net, "synflow", **kw)
    slow = gt.pruning.prune(net, "synflow", fast=False, **kw)
    assert fast == slow


@pytest.mark.parametrize("program", [False, True])
def test_engine_with_prior_and_resnet(program: bool, force_sparse: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """ResNet-20 with a prior mask on the autograd engine (every conv on CSR products) and on
    the autograd-free program (which must be the one running it)."""
    monkeypatch.setattr(E, "PROGRAM", program)
    net = gt.models.build("resnet20", in_shape=(3, 16, 16), num_classes=10, seed=0)
    if program:
        from graphtickets.pruning import synflow_program as P
        from graphtickets.pruning.synflow import _fold_batchnorm, linearized_copy

        assert P.build(_fold_batchnorm(linearized_copy(net, torch.float64)), list(gt.prunable(net)), (3, 16, 16)) is not None
    prior = gt.pruning.prune(net, "random", density=0.6, seed=2)
    kw = dict(density=0.02, rounds=20 if program else 8, in_shape=(3, 16, 16), prior=prior)
    fast = gt.pruning.prune(net, "synflow", **kw)
    slow = gt.pruning.prune(net, "synflow", fast=False, **kw)
    assert fast == slow
    assert all(not bool((m & ~prior.masks[n]).any()) for n, m in fast.masks.items())


@pytest.mark.parametrize("fast", [True, False])
def test_flow_overflowing_float64_is_a_clear_error(fast: bool) -> None:
    net = _seeded(lambda: nn.Sequential(*[nn.Linear(16, 16, bias=False) for _ in range(40)]), 0)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(1e10)  # R ~ (16 * 1e10)^40: beyond float64
    with pytest.raises(gt.GraphticketsError, match="not finite even in float64"):
        gt.pruning.prune(net, "synflow", density=0.1, rounds=2, in_shape=(16,), fast=fast)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [7, 1000, 300_000])
def test_the_one_selection_against_a_sort(seed: int, n: int) -> None:
    """``select.smallest`` (used by SynFlow's rounds and, as its complement, by ``topk_flat`` for
    every method) against a plain stable sort: the q smallest live scores, ties taken from the
    HIGHEST position; with heavy ties, -inf and NaN (dead) entries; small arrays and ones large
    enough for the sampled bound."""
    from graphtickets.pruning.select import smallest, topk_flat

    rng = np.random.default_rng(seed)
    s = rng.integers(0, max(3, n // 50), size=n).astype(np.float64)  # many ties
    s[rng.random(n) < 0.05] = -np.inf
    dead = rng.random(n) < 0.3
    v = s.copy()
    v[dead] = np.nan
    live = np.flatnonzero(~dead)
    for q in {0, 1, live.size // 3, live.size - 1, live.size}:
        # oracle: sort live entries by (score ascending, position descending) and take q
        order = np.lexsort((-live, v[live]))
        want = np.sort(live[order[:q]])
        got = smallest(v, q, int(live.size))
        np.testing.assert_array_equal(got, want)
        # topk_flat keeps the complement among all entries (no NaN there)
        k = n - q
        keep_order = np.lexsort((np.arange(n), -s))  # score descending, position ascending
        want_keep = np.zeros(n, dtype=bool)
        want_keep[keep_order[:k]] = True
        np.testing.assert_array_equal(topk_flat(s, k), want_keep)
