"""The study reads methods from the registry, never by name (issue 16): graphtickets.study.methods."""

from __future__ import annotations

from graphtickets.pruning import METHODS
from graphtickets.study.grid import DENSE
from graphtickets.study.methods import (
    at_init,
    family_of,
    kind_of,
    method_order,
    random_baseline,
    trajectory_trained,
)


def test_the_registry_gives_the_sets_the_papers_name() -> None:
    names = list(METHODS)
    # pruning at initialization: SNIP (Lee et al. 2019), GraSP (Wang et al. 2020), SynFlow (Tanaka et al. 2020)
    pai = at_init(names)
    assert {"grasp", "snip", "synflow"} <= set(pai) and pai == sorted(pai)
    assert not set(pai) & {"random", "magnitude", "imp", "early_bird", "gem_miner", "elastic"}
    # the trained method whose one run serves every density: IMP's rounds (Frankle & Carbin 2019)
    assert trajectory_trained(names)[:1] == ["imp"]
    assert not set(trajectory_trained(names)) & {"random", "snip", "early_bird", "gem_miner", "elastic"}
    assert random_baseline() == "random"


def test_dense_reference_and_unknown_names() -> None:
    assert (kind_of(DENSE), family_of(DENSE)) == ("reference", "reference")
    assert (kind_of("other_tool"), family_of("other_tool")) == ("", "")
    assert at_init(["other_tool", DENSE, "snip+shuffle"]) == [] and trajectory_trained([DENSE]) == []


def test_method_order_by_family_then_registration_variants_after_their_method() -> None:
    assert method_order(["imp", "snip+shuffle", "elastic", "snip", "random", "other_tool"]) == [
        "random", "snip", "snip+shuffle", "imp", "elastic", "other_tool"]
