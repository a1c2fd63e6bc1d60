"""compare(), pivot() and summarize()."""

from __future__ import annotations

import numpy as np
import pytest

import graphtickets as gt
from graphtickets.analysis import DISTANCES, compare, distance, pivot, summarize
from graphtickets.errors import GraphticketsError


@pytest.fixture(scope="module")
def setup() -> tuple[object, dict[str, gt.Ticket]]:
    m = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(16, 16, 16), seed=0)
    ts = {
        "rand": gt.pruning.prune(m, "random", density=0.2, seed=0),
        "mag": gt.pruning.prune(m, "magnitude", density=0.2, seed=0),
        "mag2": gt.pruning.prune(m, "magnitude", density=0.15, seed=0),
    }
    return m, ts


def test_compare_long_table_and_pivot(setup: tuple[object, dict[str, gt.Ticket]]) -> None:
    m, ts = setup
    table = compare(ts, m)
    defaults = [k for k, s in DISTANCES.items() if s.default]
    assert list(table.columns) == ["a", "b", "kind", "value"]
    assert len(table) == 3 * len(defaults) and set(table["kind"]) == set(defaults)
    row = table[(table["a"] == "rand") & (table["b"] == "mag") & (table["kind"] == "jaccard")]
    assert row["value"].item() == pytest.approx(distance(ts["rand"], ts["mag"], "jaccard"))
    mat = pivot(table, "hamming")
    assert list(mat.index) == ["rand", "mag", "mag2"]
    assert np.allclose(mat.values, mat.values.T) and np.all(np.diag(mat.values) == 0)
    with pytest.raises(GraphticketsError, match="no rows"):
        pivot(table, "netlsdd")
    # without a model only mask distances run; a list gets index:method names
    t2 = compare(list(ts.values()), kinds=None)
    assert set(t2["kind"]) == {k for k in defaults if not DISTANCES[k].needs_model}
    assert t2["a"].iloc[0] == "0:random"


def test_compare_with_nulls(setup: tuple[object, dict[str, gt.Ticket]]) -> None:
    m, ts = setup
    table = compare(ts, m, kinds=["jaccard", "degree"], null_samples=4, seed=0)
    assert {"null_mean", "null_std", "z"} <= set(table.columns)
    assert np.all(table["null_std"] >= 0)
    r = table[(table["a"] == "mag") & (table["b"] == "mag2") & (table["kind"] == "jaccard")].iloc[0]
    # nested magnitude tickets overlap far more than a shuffle of one of them
    assert r["value"] < r["null_mean"] and r["z"] < -3
    again = compare(ts, m, kinds=["jaccard", "degree"], null_samples=4, seed=0)
    assert again.equals(table)
    rew = compare(ts, m, kinds=["degree"], null_samples=2, null="rewire")
    assert np.all(rew["null_mean"] > 0)


def test_summarize(setup: tuple[object, dict[str, gt.Ticket]]) -> None:
    m, ts = setup
    s = summarize(ts, m)
    assert list(s["name"]) == list(ts)
    for col in ("density", "effective_density", "log10_paths", "C", "L", "spectral_gap", "delta_r_mean"):
        assert col in s
    assert np.all(s["effective_density"] <= s["density"] + 1e-12)
    assert s.loc[0, "density"] == pytest.approx(ts["rand"].density)
