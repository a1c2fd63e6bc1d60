"""The null ladder section: its tables, its calibration under a known null, its Answer sentences.

Oracles: the empirical p's definition ((1 + k) / (1 + n), never below 1 / (1 + n)), masks built by
hand (independent draws vs shared masks), the uniform law of p-values under a null that holds by
construction (independent uniformly random tickets), scipy's KS test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

import graphtickets as gt
from graphtickets.study import run, sections
from graphtickets.study.grid import GroupKey
from graphtickets.study.sections import ladder as L
from graphtickets.ticket import Ticket

METHODS = ("snip", "grasp", "imp")  # data-driven: one family of methods


@pytest.fixture
def few_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fewer null draws (the procedure is the same; the tests stay fast)."""
    monkeypatch.setattr(L, "DRAWS", 199)
    monkeypatch.setattr(L, "DEGREE_FIRST", 19)
    monkeypatch.setattr(L, "DEGREE_DRAWS", 59)


def _model() -> torch.nn.Module:
    return gt.models.build("mlp", in_shape=(12,), num_classes=3, widths=(10,), seed=0)


def _layer_random(model: torch.nn.Module, seed: int, density: float = 0.3) -> dict[str, torch.Tensor]:
    """A mask with exactly round(density * n) weights kept in every layer, uniformly placed."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, p in gt.prunable(model).items():
        k = round(density * p.numel())
        flat = torch.zeros(p.numel(), dtype=torch.bool)
        flat[torch.randperm(p.numel(), generator=g)[:k]] = True
        out[name] = flat.reshape(p.shape)
    return out


def _groups(shared: bool, seeds: int = 3) -> list[tuple[GroupKey, dict[str, Ticket]]]:
    """Per init seed: three data-driven methods' tickets with one allocation (every layer at 0.3):
    independent masks, or one mask shared by all three (``shared``) but for a few moved weights."""
    model = _model()
    out = []
    for s in range(seeds):
        if shared:
            base = _layer_random(model, 1000 + s)
            masks = []
            for i in range(len(METHODS)):
                m = {k: v.clone() for k, v in base.items()}
                w = next(iter(m))
                on, off = torch.nonzero(m[w].reshape(-1)).ravel(), torch.nonzero(~m[w].reshape(-1)).ravel()
                flat = m[w].reshape(-1)
                flat[on[i]], flat[off[i]] = False, True  # one weight moved: still the same layer counts
                masks.append(m)
        else:
            masks = [_layer_random(model, 100 * s + i) for i in range(len(METHODS))]
        key = GroupKey("toy", "mlp(10)", 0.3, s)
        out.append((key, {meth: Ticket(masks=mk, method=meth) for meth, mk in zip(METHODS, masks, strict=True)}))
    return out


def test_tables_have_their_columns_and_p_never_below_its_floor(few_draws: None) -> None:
    tabs = L.ladder_tables(_groups(shared=False, seeds=2))
    assert set(tabs) == {"ladder", "ladder_families", "ladder_shares", "ladder_skipped", "tests"}
    lad = tabs["ladder"]
    assert list(lad.columns) == L.LADDER_TABLE_COLUMNS
    tested = lad[lad["p"].notna()]
    assert (tested["p"] >= 1.0 / (1.0 + tested["n_null"]) - 1e-12).all()
    np.testing.assert_allclose(tested["p"], (1 + tested["n_as_extreme"]) / (1 + tested["n_null"]))
    assert set(tested[tested["level"] != "degrees"]["n_null"]) == {199}
    assert set(tested[tested["level"] == "degrees"]["n_null"]) <= {19, 59}
    # layer_density cannot vary where every layer's count is kept: not tested, and said so
    assert lad[(lad["kind"] == "layer_density") & (lad["level"] != "global")]["p"].isna().all()
    assert any("layer_density" in w for w in tabs["ladder_skipped"]["what"])
    assert set(tabs["ladder_skipped"]["what"]) >= set(L.NOT_RUN)
    tests = tabs["tests"]
    assert list(tests.columns[:7]) == sections.TEST_COLUMNS and (tests["unit"] == "init seed").all()
    assert (tests["n"] == 2).all()  # seeds combined: one test per pair x kind x level
    assert len(tests) == 3 * 5 + 5 and tests["test"].is_unique  # 3 pairs and one family, x 5 (kind, level)
    sh = tabs["ladder_shares"]
    assert {"allocation", "fan_in", "fan_out", "unit_degrees", "wiring", "beyond_chance"} <= set(sh.columns)
    ok = sh[sh[["allocation", "unit_degrees", "wiring"]].notna().all(axis=1)]
    np.testing.assert_allclose(ok["allocation"] + ok["unit_degrees"] + ok["wiring"], 1.0)


def test_groups_draw_independent_nulls(few_draws: None) -> None:
    """Two groups with the very same tickets get different null draws (never one stream for all)."""
    (k0, t0), (k1, _) = _groups(shared=False, seeds=2)
    tabs = L.ladder_tables([(k0, t0), (k1, t0)])
    lad = tabs["ladder"][tabs["ladder"]["p"].notna()]
    a, b = (lad[lad["seed"] == s].set_index(["pair", "kind", "level"])["null_mean"] for s in (0, 1))
    assert (a != b).all()


def _said(tabs: dict[str, pd.DataFrame]) -> list[str]:
    return [t for t, _ in sections.answer({"ladder": tabs}, sections.collect_tests({"ladder": tabs}))]


def test_shared_masks_are_claimed_and_independent_ones_are_not(few_draws: None) -> None:
    indep = L.ladder_tables(_groups(shared=False))
    shared = L.ladder_tables(_groups(shared=True))
    ti, ts = indep["tests"].set_index("test"), shared["tests"].set_index("test")
    # same allocation by construction: layer_density is 0, below the global null -- in both
    assert ti.loc["methods:data-driven:layer_density:global", "p"] < 0.01
    for level in ("layer", "fan_in", "degrees"):
        assert ti.loc[f"methods:data-driven:jaccard:{level}", "p"] > 0.05  # nothing shared beyond allocation
        assert ti.loc[f"pair:snip ~ grasp:jaccard:{level}", "p"] > 0.01
        assert ts.loc[f"methods:data-driven:jaccard:{level}", "p"] < 0.01  # the very same weights
    said_i, said_s = _said(indep), _said(shared)
    beyond = "Beyond layer allocation, tickets of data-driven methods keep the same weights"
    wiring = "Beyond unit degrees (fan-in and fan-out), tickets of data-driven methods share exact wiring"
    assert any(s.startswith(beyond) for s in said_s) and any(s.startswith(wiring) for s in said_s)
    assert not any(s.startswith(beyond) or s.startswith(wiring) for s in said_i)
    assert ("The data do not show that tickets of data-driven methods keep the same weights beyond their layer "
            "allocation.") in said_i
    assert any(s.startswith("Tickets of data-driven methods share their layer allocation") for s in said_i)


def test_pvalues_are_uniform_under_independent_random_tickets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Calibration: 50 replicates of two independent uniformly random tickets (global scope, so
    every level's null holds); per level the 50 p-values are independent. Valid: P(p <= u) <= u
    at u = 0.05, 0.1, 0.2, 0.5, up to the Monte Carlo error (3 sd, sd = sqrt(u (1 - u) / 50): 0.057
    at u = 0.2). jaccard (nearly continuous here) is also not conservative: KS against U(0, 1).
    layer_density on this tiny net takes a few values only, so its ties make p conservative.)"""
    monkeypatch.setattr(L, "DRAWS", 99)
    monkeypatch.setattr(L, "DEGREE_FIRST", 19)
    monkeypatch.setattr(L, "DEGREE_DRAWS", 39)
    model = _model()
    ps: dict[str, list[float]] = {}
    for r in range(50):
        ts = {m: gt.pruning.prune(model, "random", density=0.3, seed=10 * r + i, scope="global")
              for i, m in enumerate(METHODS[:2])}
        t = L.ladder_tables([(GroupKey("toy", "mlp(10)", 0.3, 0), ts)])["tests"]
        for row in t[t["test"].str.startswith("pair:")].itertuples():
            ps.setdefault(f"{row.kind}@{row.level}", []).append(float(row.p))
    assert len(ps) == 5
    for what, v in ps.items():
        p = np.asarray(v)
        for u in (0.05, 0.1, 0.2, 0.5):
            assert np.mean(p <= u) <= u + 3 * np.sqrt(u * (1 - u) / p.size), (what, u)
        if what.startswith("jaccard"):
            assert stats.kstest(p, "uniform").pvalue > 1e-3, what


def test_seed_combination_is_valid_when_densities_of_a_seed_are_dependent() -> None:
    """Bonferroni within a seed then Fisher over seeds rejects at most at the nominal rate under
    the null, even when a seed's two densities give the very same p (the most dependent case):
    5,000 replicates of 3 seeds, Monte Carlo sd at 0.05 is 0.003."""
    rng = np.random.default_rng(0)
    n, seeds = 5_000, 3
    u = (np.floor(rng.random((n, seeds)) * 500) + 1) / 500  # discrete uniform p, as with 499 draws
    rows = pd.DataFrame({"rep": np.repeat(np.arange(n), 2 * seeds), "seed": np.tile(np.repeat(np.arange(seeds), 2), n),
                         "p": np.repeat(u.ravel(), 2), "z": 0.0, "n_null": 499})
    per = L._within_seed(rows, ["rep"], "z")
    assert (per["groups"] == 2).all()
    from graphtickets.analysis import combine_independent

    comb = per.groupby("rep")["p"].apply(lambda p: combine_independent(p.to_numpy()))
    assert np.mean(comb <= 0.05) <= 0.05 + 3 * 0.003


TINY = {
    "name": "tiny-ladder",
    "datasets": ["digits"],
    "models": [{"name": "mlp", "widths": [16]}],
    "methods": {"random": {"scope": "global"}, "magnitude": {}, "snip": {}},
    "densities": [0.2],
    "seeds": [0],
    "train": {"epochs": 1},
    "analysis": {"null_samples": 2},
}


def test_a_study_writes_the_ladder_and_opens_with_its_answer(few_draws: None, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(TINY, out, progress=False)
    lad = pd.read_csv(out / "tables" / "ladder.csv")
    assert set(lad["level"]) == {"global", "layer", "fan_in", "degrees"} and lad["pair"].nunique() == 3
    tests = pd.read_csv(out / "tables" / "tests.csv")
    mine = tests[tests["section"] == "ladder"]
    assert len(mine) >= 3 * 5 and mine["q"].notna().all()
    md = (out / "report.md").read_text()
    assert "## What tickets share, level by level: the null ladder" in md
    assert (out / "figures" / L.FIGURE).is_file()
    assert "Stouffer" not in md and "Tests against the layer-shuffled null" not in md
