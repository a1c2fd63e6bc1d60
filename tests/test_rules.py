"""The rules module (:mod:`graphtickets._rules`): the one home of the number, seed and size checks."""

from __future__ import annotations

import pytest

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
