"""The null ladder: batched kinds equal the registered distances; shares on constructed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import graphtickets as gt
from graphtickets.analysis import DISTANCES, batched_distances, ladder_shares, null_ladder
from graphtickets.analysis.ladder import BATCHED_KINDS


@pytest.fixture(scope="module")
def mlp() -> torch.nn.Module:
    return gt.models.build("mlp", in_shape=(12,), num_classes=3, widths=(10,), seed=0)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_batched_kinds_equal_the_registered_distances(arch: str) -> None:
    if arch == "mlp":
        m = gt.models.build("mlp", in_shape=(12,), num_classes=3, widths=(10,), seed=0)
    else:
        m = gt.models.build("conv2", in_shape=(3, 8, 8), num_classes=3, seed=0)
    rng = np.random.default_rng(0)
    draws = [{n: rng.random((4, *p.shape)) < 0.3 for n, p in gt.prunable(m).items()} for _ in range(2)]
    for weighted in (True, False):
        got = batched_distances(draws[0], draws[1], BATCHED_KINDS, weighted=weighted)
        for i in range(4):
            ta, tb = (gt.Ticket({n: torch.from_numpy(v[i].copy()) for n, v in d.items()}) for d in draws)
            for kind in BATCHED_KINDS:
                want = gt.analysis.distance(ta, tb, kind, model=m, weighted=weighted)
                assert got[kind][i] == pytest.approx(want, rel=1e-12, abs=1e-12), (kind, weighted)


def _ticket(mask: np.ndarray, method: str) -> gt.Ticket:
    return gt.Ticket({"fc1.weight": torch.from_numpy(mask[:, :12].copy()),
                      "classifier.weight": torch.from_numpy(mask[:3, 12:22].copy())}, method=method)  # fmt: skip


def test_identical_tickets_are_beyond_every_null_and_the_table_is_reproducible(mlp: torch.nn.Module) -> None:
    t = gt.pruning.prune(mlp, "random", density=0.3, seed=0, scope="global")
    ts = {"x": t, "y": gt.Ticket({k: v.clone() for k, v in t.masks.items()}, method="copy")}
    tab = null_ladder(ts, mlp, kinds=["jaccard", "layer_density"], samples=200, seed=1)
    assert list(tab.columns) == gt.analysis.LADDER_COLUMNS
    jac = tab[tab["kind"] == "jaccard"]
    assert (jac["value"] == 0).all() and (jac["n_as_extreme"] == 0).all() and (jac["n_null"] == 200).all()
    assert (jac["null_mean"].diff().dropna() <= 1e-12).all()  # each level keeps more: nulls more alike
    assert jac["share"].iloc[1:].sum() + ladder_shares(tab).set_index("kind").loc["jaccard", "wiring"] == pytest.approx(1)
    ld = tab[tab["kind"] == "layer_density"]
    assert (ld.loc[ld["level"] != "global", "null_mean"] == 0).all()  # every level keeps the densities
    assert ld.loc[ld["level"] != "global", "note"].str.contains("no null variation").all()
    assert ladder_shares(tab).set_index("kind").loc["layer_density", "allocation"] == pytest.approx(1)
    pd.testing.assert_frame_equal(tab, null_ladder(ts, mlp, kinds=["jaccard", "layer_density"], samples=200, seed=1))
    other = null_ladder(ts, mlp, kinds=["jaccard"], samples=200, seed=2)
    assert not np.allclose(other["null_mean"], jac["null_mean"].to_numpy())


def test_shares_on_constructed_cases(mlp: torch.nn.Module) -> None:
    rng = np.random.default_rng(3)
    base = np.zeros((10, 22), dtype=bool)
    base[:, :12] = rng.random((10, 12)) < 0.3
    base[:3, 12:22] = rng.random((3, 10)) < 0.6
    # b keeps a's fan-ins exactly but moves every unit's inputs: same layer densities, so by
    # layer_density the whole likeness beyond chance is allocation
    b = base.copy()
    b[:, :12] = gt.pruning.randomize.draw_fan_in(base[:, :12], 1, np.random.default_rng(4))[0]
    b[:3, 12:22] = gt.pruning.randomize.draw_fan_in(base[:3, 12:22], 1, np.random.default_rng(5))[0]
    tab = null_ladder({"a": _ticket(base, "a"), "b": _ticket(b, "b")}, mlp, kinds=["layer_density"], samples=300, seed=0)
    sh = ladder_shares(tab).iloc[0]
    assert sh["allocation"] == pytest.approx(1.0) and sh["wiring"] == pytest.approx(0.0, abs=1e-12)
    # two disjoint tickets: jaccard 1, farther than chance -> no shares, with the reason
    tab = null_ladder({"a": _ticket(base, "a"), "s": _ticket(~base, "s")}, mlp, kinds=["jaccard"], samples=100, seed=0)
    sh = ladder_shares(tab).iloc[0]
    assert np.isnan(sh["allocation"]) and "no likeness beyond chance" in sh["note"]


def test_a_level_that_cannot_apply_says_why(mlp: torch.nn.Module) -> None:
    full_rows = np.zeros((10, 22), dtype=bool)
    full_rows[:5, :12] = True  # all-or-nothing rows: no fan-in null, one degree realization
    full_rows[:2, 12:22] = True
    ts = {"a": _ticket(full_rows, "a"), "b": _ticket(full_rows.copy(), "b")}
    tab = null_ladder(ts, mlp, kinds=["jaccard"], samples=20, seed=0).set_index("level")
    for level in ("fan_in", "degrees"):
        assert not tab.loc[level, "applies"] and str(tab.loc[level, "note"]).startswith("cannot apply")
        assert np.isnan(tab.loc[level, "z"]) and tab.loc[level, "null_sd"] == 0
    assert tab.loc["layer", "applies"] and tab.loc["global", "applies"]


def test_function_kinds_and_bad_levels_are_refused(mlp: torch.nn.Module) -> None:
    t = gt.pruning.prune(mlp, "random", density=0.3, seed=0)
    with pytest.raises(gt.errors.GraphticketsError, match="no null ladder"):
        null_ladder([t, t], mlp, kinds=["agreement"], samples=5)
    with pytest.raises(gt.errors.GraphticketsError, match="levels"):
        null_ladder([t, t], mlp, kinds=["jaccard"], levels=["rows"], samples=5)


def test_slow_kinds_build_null_tickets(mlp: torch.nn.Module) -> None:
    ts = [gt.pruning.prune(mlp, "random", density=0.3, seed=s) for s in range(2)]
    tab = null_ladder(ts, mlp, kinds=["degree", "jaccard"], samples={"degree": 4, "jaccard": 50}, seed=0,
                      levels=["layer", "degrees"])  # fmt: skip
    assert set(tab.loc[tab["kind"] == "degree", "n_null"]) == {4}
    assert set(tab.loc[tab["kind"] == "jaccard", "n_null"]) == {50}
    assert DISTANCES["degree"].feature is not None
    assert "shares need the global level" in ladder_shares(tab)["note"].iloc[0]
    capped = null_ladder(ts, mlp, kinds=["jaccard"], samples=50, seed=0, samples_by_level={"degrees": 7})
    assert capped.set_index("level")["n_null"].to_dict() == {"global": 50, "layer": 50, "fan_in": 50, "degrees": 7}
