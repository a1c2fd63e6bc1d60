"""The pruning front end's input checks: unknown methods, rounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import graphtickets as gt
from graphtickets.errors import GraphticketsError, UnknownNameError


def test_unknown_method_lists_every_registered_name(tiny_mlp: nn.Module) -> None:
    with pytest.raises(UnknownNameError) as info:
        gt.pruning.prune(tiny_mlp, "magnitud", density=0.5)
    msg = str(info.value)
    assert msg.startswith("unknown method 'magnitud'; known methods: ")
    listed = msg.split("known methods: ", 1)[1].split(".", 1)[0].split(", ")
    assert listed == sorted(gt.pruning.METHODS)  # every name, once, sorted
    assert "Did you mean 'magnitude'?" in msg
    assert isinstance(info.value, GraphticketsError) and isinstance(info.value, KeyError)


@pytest.mark.parametrize("rounds", [0, -1, "abc", 2.0, True, None])
@pytest.mark.parametrize("method", ["magnitude", "snip", "synflow"])
def test_rounds_must_be_a_positive_integer(tiny_mlp: nn.Module, tiny_batches: list, method: str, rounds: object) -> None:
    kw = {"in_shape": (40,)} if method == "synflow" else {}
    data = tiny_batches if gt.pruning.METHODS[method].needs_data else None
    with pytest.raises(GraphticketsError, match="rounds must be an integer >= 1"):
        gt.pruning.prune(tiny_mlp, method, density=0.5, data=data, rounds=rounds, **kw)


def test_schedule_densities_checks_rounds() -> None:
    with pytest.raises(GraphticketsError, match="rounds must be an integer >= 1, got 'x'"):
        gt.pruning.schedule_densities(0.1, "x")  # type: ignore[arg-type]
    assert gt.pruning.schedule_densities(0.1, 1) == [0.1]


@pytest.mark.parametrize("model", [None, "mlp", {"fc.weight": 1}])
def test_model_must_be_a_module(model: object) -> None:
    with pytest.raises(GraphticketsError, match=r"model must be a torch nn\.Module .* got "):
        gt.pruning.prune(model, "random", density=0.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [2**70, 2**64, 2**63, -1])
def test_seed_out_of_generator_range_is_refused(tiny_mlp: nn.Module, seed: int) -> None:
    with pytest.raises(GraphticketsError, match=r"seed -?\d+ is outside \[0, 2\*\*63 - 1\]"):
        gt.pruning.prune(tiny_mlp, "random", density=0.5, seed=seed)


@pytest.mark.parametrize("seed", [0, 2**63 - 1])
@pytest.mark.parametrize("name", sorted(gt.pruning.METHODS))
def test_seed_range_edges_are_accepted_by_every_method(tiny_mlp: nn.Module, tiny_batches: list, name: str,
                                                       seed: int) -> None:
    """Both ends of the seed range reach every method's generators (torch's, numpy's, training's)."""
    from test_pruning_contract import MODEL_FOR, _run

    model = MODEL_FOR.get(name, lambda m: m)(tiny_mlp)
    t = _run(name, model, tiny_batches, seed=seed)
    assert t.config["seed"] == seed and t.kept > 0


def test_the_seed_check_replaces_the_generators_raw_errors() -> None:
    torch.Generator().manual_seed(2**63 - 1)
    np.random.default_rng(2**63 - 1)
    with pytest.raises(ValueError):  # just outside: the raw errors the check replaces
        np.random.default_rng(-1)
    with pytest.raises((RuntimeError, ValueError, OverflowError)):
        torch.Generator().manual_seed(2**64)
