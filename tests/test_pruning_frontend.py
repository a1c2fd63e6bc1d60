"""The pruning front end's input checks: unknown methods, rounds."""

from __future__ import annotations

import pytest
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
