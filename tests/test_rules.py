"""The rules module (:mod:`graphtickets._rules`): the one home of the number, seed and size checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from graphtickets import _rules
from graphtickets.errors import GraphticketsError


def test_the_study_config_holds_the_same_limits_and_seed_range() -> None:
    # until study/config.py imports them from the rules module, its copies must not drift
    from graphtickets.study import config

    assert config.LIMITS == _rules.LIMITS
    assert config.MAX_SEED == _rules.MAX_SEED == 2**63 - 1


@pytest.mark.parametrize("bad", [True, 1.0, "1", None])
def test_a_seed_must_be_an_int(bad: object) -> None:
    with pytest.raises(GraphticketsError, match=r"seed must be an integer in \[0, 2\*\*63 - 1\], got "):
        _rules.check_seed(bad)


def test_check_size_names_the_limit_and_how_to_lift_it() -> None:
    assert _rules.check_size("epochs", 1000, low=1, limit="epochs") == 1000
    with pytest.raises(GraphticketsError, match="above the limit 1000; .* --allow-large"):
        _rules.check_size("epochs", 1001, low=1, limit="epochs")
    assert _rules.check_size("epochs", 1001, low=1, limit="epochs", allow_large=True) == 1001
    with pytest.raises(GraphticketsError, match=r"must be an integer >= 1, got 0"):
        _rules.check_size("epochs", 0, low=1)


@pytest.mark.parametrize(("v", "ok"), [(0.0, False), (1e-9, True), (1.0, False), (float("nan"), False), (True, False)])
def test_check_in_range_open_ends(v: float, ok: bool) -> None:
    if ok:
        _rules.check_in_range("rate", v, low=0.0, high=1.0, low_open=True, high_open=True)
    else:
        with pytest.raises(GraphticketsError, match="rate must be"):
            _rules.check_in_range("rate", v, low=0.0, high=1.0, low_open=True, high_open=True)


def test_the_error_class_can_be_named() -> None:
    from graphtickets.models.core import ModelError

    with pytest.raises(ModelError):
        _rules.check_seed(-1, error=ModelError)


# ---------------------------------------------------------------------------- one seed range everywhere
SEED_TAIL = "is outside [0, 2**63 - 1]; use a smaller non-negative integer"


def _tiny() -> torch.nn.Module:
    import graphtickets as gt

    return gt.models.build("mlp", in_shape=(4,), num_classes=2, widths=[3])


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(5, 4, generator=g), torch.tensor([0, 1, 0, 1, 1]))]


def _prune(seed: int, tmp_path: Path) -> None:
    import graphtickets as gt

    gt.pruning.prune(_tiny(), "random", density=0.5, seed=seed)


def _train(seed: int, tmp_path: Path) -> None:
    from graphtickets import training

    training.train(_tiny(), _batches(), epochs=1, lr=0.1, seed=seed)


def _train_many(seed: int, tmp_path: Path) -> None:
    from graphtickets import training

    training.train_many([_tiny(), _tiny()], _batches(), epochs=1, lr=0.1, optimizer="sgd", seed=seed)


def _build(seed: int, tmp_path: Path) -> None:
    import graphtickets as gt

    gt.models.build("mlp", in_shape=(4,), num_classes=2, widths=[3], seed=seed)


def _config(seed: int, tmp_path: Path) -> None:
    from graphtickets.study import load_config

    load_config({"name": "t", "datasets": ["digits"], "models": [{"name": "mlp", "widths": [4]}],
                 "methods": ["random"], "densities": [0.5], "seeds": [seed]})


def _cli(seed: int, tmp_path: Path) -> None:
    import contextlib
    import io

    from graphtickets.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(["prune", "--method", "random", "--density", "0.5", "--dataset", "digits", "--model-arg",
                   "widths=[4]", "--seed", str(seed), "--out", str(tmp_path / "t.safetensors")])
    if rc != 0:
        raise GraphticketsError(err.getvalue())


ENTRY_POINTS = {"prune": _prune, "train": _train, "train_many": _train_many, "build": _build, "config": _config,
                "cli": _cli}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("seed", [0, 2**63 - 1])
def test_every_entry_point_accepts_the_ends_of_the_seed_range(entry: str, seed: int, tmp_path: Path) -> None:
    ENTRY_POINTS[entry](seed, tmp_path)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("seed", [-1, 2**63])
def test_every_entry_point_refuses_a_seed_just_outside_with_the_same_message(entry: str, seed: int,
                                                                             tmp_path: Path) -> None:
    with pytest.raises(GraphticketsError) as info:
        ENTRY_POINTS[entry](seed, tmp_path)
    assert f"{seed} {SEED_TAIL}" in " ".join(str(info.value).split())
