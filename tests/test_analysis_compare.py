"""compare(), pivot() and summarize()."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import graphtickets as gt
from graphtickets.analysis import DISTANCES, compare, distance, pivot, summarize
from graphtickets.analysis.compare import NO_NULL_VARIATION, NULL_COLUMNS, null_seed
from graphtickets.errors import GraphticketsError


@pytest.fixture(scope="module")
def setup() -> tuple[nn.Module, dict[str, gt.Ticket]]:
    m = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(16, 16, 16), seed=0)
    ts = {
        "rand": gt.pruning.prune(m, "random", density=0.2, seed=0),
        "mag": gt.pruning.prune(m, "magnitude", density=0.2, seed=0),
        "mag2": gt.pruning.prune(m, "magnitude", density=0.15, seed=0),
    }
    return m, ts


def test_compare_long_table_and_pivot(setup: tuple[nn.Module, dict[str, gt.Ticket]]) -> None:
    m, ts = setup
    table = compare(ts, m)
    defaults = [k for k, s in DISTANCES.items() if s.default and not s.needs_data]  # no data: no function kinds
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


def test_compare_with_nulls(setup: tuple[nn.Module, dict[str, gt.Ticket]]) -> None:
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


def test_summarize(setup: tuple[nn.Module, dict[str, gt.Ticket]]) -> None:
    m, ts = setup
    s = summarize(ts, m)
    assert list(s["name"]) == list(ts)
    for col in ("density", "effective_density", "log10_paths", "C", "L", "spectral_gap", "delta_r_mean"):
        assert col in s
    assert np.all(s["effective_density"] <= s["density"] + 1e-12)
    assert s.loc[0, "density"] == pytest.approx(ts["rand"].density)


# --------------------------------------------------------------------------- symmetric nulls
@pytest.fixture(scope="module")
def mlp() -> nn.Module:
    return gt.models.build("mlp", in_shape=(20,), num_classes=4, widths=(32, 32), seed=0)


def _planted(t: gt.Ticket, frac: float, seed: int) -> gt.Ticket:
    """``t`` with ``frac`` of each layer's live weights moved to random dead positions."""
    g = torch.Generator().manual_seed(seed)
    masks = {}
    for name, m in t.masks.items():
        flat = m.flatten().clone()
        on, off = flat.nonzero().flatten(), (~flat).nonzero().flatten()
        n = int(frac * on.numel())
        flat[on[torch.randperm(on.numel(), generator=g)[:n]]] = False
        flat[off[torch.randperm(off.numel(), generator=g)[:n]]] = True
        masks[name] = flat.reshape(m.shape)
    return t.replace(masks)


def test_null_columns_and_symmetry_under_swapping_a_and_b(mlp: nn.Module) -> None:
    a = gt.pruning.prune(mlp, "magnitude", density=0.2, seed=0)
    b = gt.pruning.prune(mlp, "random", density=0.2, seed=1)
    kinds = ["jaccard", "hamming", "spectral", "netlsd", "degree"]
    ab = compare({"x": a, "y": b}, mlp, kinds=kinds, null_samples=10, seed=3)
    ba = compare({"y": b, "x": a}, mlp, kinds=kinds, null_samples=10, seed=3)
    assert list(ab.columns) == ["a", "b", "kind", "value", *NULL_COLUMNS]
    assert (ab["a"] == "x").all() and (ba["a"] == "y").all() and (ab["null_n"] == 10).all()
    cols = ["value", "null_mean", "null_std", "z", "p_closer", "p_farther"]
    assert np.allclose(ab[cols].to_numpy(float), ba[cols].to_numpy(float), equal_nan=True)
    assert ab["z"].notna().all()


def test_z_is_nan_when_the_nulls_do_not_vary(mlp: nn.Module) -> None:
    a = gt.pruning.prune(mlp, "magnitude", density=0.2, seed=0)
    b = gt.pruning.prune(mlp, "snip", density=0.2, seed=0, data=[(torch.randn(16, 20), torch.randint(0, 4, (16,)))])
    t = compare({"a": a, "b": b}, mlp, kinds=["layer_density", "jaccard"], null_samples=10)
    ld = t[t["kind"] == "layer_density"].iloc[0]
    # the shuffle null keeps every layer's density: the distance is the same for every null
    assert ld["value"] > 0 and np.isnan(ld["z"]) and ld["note"] == NO_NULL_VARIATION
    assert ld["null_std"] <= 1e-9 * ld["value"]
    assert np.isfinite(t[t["kind"] == "jaccard"]["z"].iloc[0])
    # identical layer densities (two random tickets of one scope): value = nulls = 0 -> NaN, no division
    r1, r2 = (gt.pruning.prune(mlp, "random", density=0.2, seed=s, scope="layer") for s in (0, 1))
    t2 = compare({"a": r1, "b": r2}, mlp, kinds=["layer_density"], null_samples=5)
    assert np.isnan(t2["z"].iloc[0]) and t2["note"].iloc[0] == NO_NULL_VARIATION


def test_planted_likeness_gives_a_large_negative_z(mlp: nn.Module) -> None:
    a = gt.pruning.prune(mlp, "random", density=0.2, seed=0)
    b = _planted(a, 0.1, seed=1)
    t = compare({"a": a, "b": b}, mlp, kinds=["jaccard", "hamming", "aligned_jaccard"], null_samples=10)
    for kind in ("jaccard", "hamming", "aligned_jaccard"):
        r = t[t["kind"] == kind].iloc[0]
        assert r["z"] < -10, (kind, r["z"])
        assert r["p_closer"] == pytest.approx(1 / 11) and r["p_farther"] == 1.0


def test_calibration_independent_random_masks_have_z_near_zero(mlp: nn.Module) -> None:
    ts = {f"r{s}": gt.pruning.prune(mlp, "random", density=0.2, seed=s) for s in range(8)}
    t = compare(ts, mlp, kinds=["jaccard", "hamming", "netlsd", "degree"], null_samples=10, seed=0)
    # the 28 pairs share tickets (their z are correlated) and graph distances are skewed
    # (z from 10 nulls is then biased a little), hence the looser bound for graph kinds
    for kind, g in t.groupby("kind"):
        z = g["z"].dropna()
        assert len(z) == 28, kind
        assert abs(z.mean()) < (0.6 if kind in ("jaccard", "hamming") else 1.5), (kind, z.mean())
        assert 0.3 < z.std() < 3.0, (kind, z.std())
        assert 0.25 < g["p_closer"].mean() < 0.75, (kind, g["p_closer"].mean())


def test_feature_shortcuts_equal_the_registered_distances(mlp: nn.Module) -> None:
    a = gt.pruning.prune(mlp, "magnitude", density=0.1, seed=0)
    b = gt.pruning.prune(mlp, "random", density=0.1, seed=2)
    t = compare({"a": a, "b": b}, mlp, kinds=["spectral", "netlsd", "degree"])
    for kind in ("spectral", "netlsd", "degree"):
        assert t[t["kind"] == kind]["value"].iloc[0] == pytest.approx(distance(a, b, kind, model=mlp), rel=1e-12, abs=1e-12)


def test_null_seed_depends_on_seed_name_and_sample() -> None:
    assert len({null_seed(s, n, i) for s in (0, 1) for n in ("a", "b") for i in range(3)}) == 12


def test_null_distributions_do_not_depend_on_the_tickets_order(setup: tuple[nn.Module, dict[str, gt.Ticket]]) -> None:
    """Every reordering of the same named tickets gives each pair the same null columns."""
    import itertools

    m, ts = setup

    def nulls(order: tuple[str, ...]) -> dict[tuple[str, ...], tuple]:
        t = compare({n: ts[n] for n in order}, m, kinds=["jaccard"], null_samples=4, seed=3)
        return {tuple(sorted((r.a, r.b))): (r.value, r.null_mean, r.null_std, r.z) for r in t.itertuples()}

    first = nulls(tuple(ts))
    assert len(first) == 3 and all(v[2] > 0 for v in first.values())  # the nulls vary: a real draw
    for order in itertools.permutations(ts):
        assert nulls(order) == first, order


def test_null_seed_is_the_same_in_another_process() -> None:
    """No per-process state (Python's salted ``hash``) enters the seed."""
    import os
    import subprocess
    import sys

    code = "from graphtickets.analysis.compare import null_seed; print([null_seed(s, n, i) for s in (0, 7) for n in ('a', 'snip') for i in (0, 5)])"
    here = str([null_seed(s, n, i) for s in (0, 7) for n in ("a", "snip") for i in (0, 5)])
    salt = "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"  # another salt than this process's
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": salt}, timeout=300)
    assert out.stdout.strip() == here


# --------------------------------------------------------------------------- empirical p, adaptive draws
def _by_pair(t: pd.DataFrame) -> pd.DataFrame:
    key = [tuple(sorted((a, b))) + (k,) for a, b, k in zip(t["a"], t["b"], t["kind"], strict=True)]
    return t.drop(columns=["a", "b"]).set_axis(pd.MultiIndex.from_tuples(key), axis=0).sort_index()


def test_exceedances_and_empirical_p_by_hand(mlp: nn.Module) -> None:
    a = gt.pruning.prune(mlp, "magnitude", density=0.2, seed=0)
    b = gt.pruning.prune(mlp, "random", density=0.2, seed=4)
    t = compare({"a": a, "b": b}, mlp, kinds=["jaccard", "degree"], null_samples=9, seed=5).set_index("kind")
    for kind in ("jaccard", "degree"):
        nulls = np.array([distance(gt.analysis.shuffle_within_layers(a, null_seed(5, "a", s)),
                                   gt.analysis.shuffle_within_layers(b, null_seed(5, "b", s)), kind, model=mlp)
                          for s in range(9)])  # fmt: skip
        v = t.loc[kind, "value"]
        lo, hi = int((nulls <= v).sum()), int((nulls >= v).sum())
        assert (t.loc[kind, "n_closer"], t.loc[kind, "n_farther"]) == (lo, hi)
        assert t.loc[kind, "p_closer"] == pytest.approx((1 + lo) / 10) and t.loc[kind, "p_farther"] == pytest.approx((1 + hi) / 10)
        assert t.loc[kind, "p_two_sided"] == pytest.approx(min(1.0, 2 * min(1 + lo, 1 + hi) / 10))


def test_adaptive_draws_stop_in_the_bulk_run_on_in_the_tail_and_ignore_the_batches(mlp: nn.Module) -> None:
    a = gt.pruning.prune(mlp, "random", density=0.2, seed=0)
    ts = {"a": a, "planted": _planted(a, 0.1, seed=1), "other": gt.pruning.prune(mlp, "random", density=0.2, seed=3)}
    kw = dict(kinds=["jaccard", "netlsd"], max_null_samples=199, stop_after=5, seed=2)
    t = compare(ts, mlp, null_samples=8, **kw)  # type: ignore[arg-type]
    row = t[(t["b"] == "planted") & (t["kind"] == "jaccard")].iloc[0]
    assert row["null_n"] == 199 and row["n_closer"] == 0 and row["p_closer"] == pytest.approx(1 / 200)
    bulk = t[(t["a"] == "a") & (t["b"] == "other")]
    assert (bulk["null_n"] < 199).all() and (bulk[["n_closer", "n_farther"]] >= 5).all().all()
    # Besag-Clifford: the side that stopped at draw l with h = 5 exceedances has p = 5 / l
    r = bulk.iloc[0]
    nulls = [distance(gt.analysis.shuffle_within_layers(ts["a"], null_seed(2, "a", s)),
                      gt.analysis.shuffle_within_layers(ts["other"], null_seed(2, "other", s)), r["kind"], model=mlp)
             for s in range(int(r["null_n"]))]  # fmt: skip
    hand = gt.analysis.null_test(r["value"], nulls, stop_after=5)
    assert (r["p_closer"], r["p_farther"], r["null_n"]) == pytest.approx((hand.p_closer, hand.p_farther, hand.draws))
    # what a test reports depends on its own draws only, not on the batch schedule
    other = compare(ts, mlp, null_samples=3, **kw)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(t, other)


def test_rows_do_not_depend_on_the_order_of_tickets_and_units_get_their_own_stream(mlp: nn.Module) -> None:
    ts = {n: gt.pruning.prune(mlp, "random", density=0.2, seed=s) for s, n in enumerate(["x", "y", "z"])}
    kw = dict(kinds=["jaccard", "degree"], null_samples=6, max_null_samples=24, stop_after=3)
    fwd = compare(ts, mlp, seed="seed=1", **kw)  # type: ignore[arg-type]
    rev = compare(dict(reversed(list(ts.items()))), mlp, seed="seed=1", **kw)  # type: ignore[arg-type]
    cols = ["value", "null_mean", "null_std", "null_n", "n_closer", "n_farther", "p_closer", "p_farther", "p_two_sided"]
    assert np.allclose(_by_pair(fwd)[cols].to_numpy(float), _by_pair(rev)[cols].to_numpy(float))
    unit2 = compare(ts, mlp, seed="seed=2", **kw)  # type: ignore[arg-type]
    assert not np.allclose(fwd["null_mean"], unit2["null_mean"])  # another unit: other draws
