"""The study's stability step (analysis.stability), its report sections, and the rank-correlation test."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

import graphtickets as gt
from graphtickets.analysis.stability import joint_rank_correlation
from graphtickets.errors import ConfigError, GraphticketsError
from graphtickets.study import run, stability
from graphtickets.study.cell import derived_seed
from graphtickets.study.config import load_config
from graphtickets.study.grid import expand
from graphtickets.study.store import Store

TINY = {
    "name": "tiny-stability",
    "datasets": ["digits"],
    "models": [{"name": "mlp", "widths": [16, 16]}],
    "methods": {"random": {"scope": "global"}, "magnitude": {}, "snip": {},
                "gmp": {"regime": "study", "frequency": 5}},
    "densities": [0.3, 0.5],
    "seeds": [0],
    "train": {"epochs": 2, "batch_size": 64},
    "dense_reference": False,
    "analysis": {"null_samples": 0, "kinds": ["jaccard"], "functional": False,
                 "stability": {"densities": [0.3], "points": 5}},
}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stability") / "out"
    r = run(TINY, out, progress=False)
    assert r.failed == 0, r.errors
    return out


def _rows(out: Path) -> pd.DataFrame:
    with Store(out) as s:
        return stability.stored(s)


def test_stability_results_are_in_the_store_and_the_tables(study: Path) -> None:
    rows = _rows(study)
    cells = expand(load_config(TINY))
    want = {c.id for c in cells if c.method != "dense" and not c.variant and c.density == 0.3}
    assert set(rows["cell_id"]) == want and len(want) == 4
    assert (rows["error_barrier"] >= 0).all() and (rows["copy_a"] == "stored").all()
    assert set(rows["trained"]) == {"batched K=4"}  # the group's second trainings ran together
    assert (rows["seed_a"] == derived_seed(0, "train")).all() and (rows["seed_b"] == stability.stability_seed(0)).all()
    tab = pd.read_csv(study / "tables" / "stability.csv")
    assert sorted(tab["method"]) == ["gmp", "magnitude", "random", "snip"] and set(tab["density"]) == {0.3}
    per = pd.read_csv(study / "tables" / "stability_tickets.csv").set_index("id")
    np.testing.assert_allclose(per.loc[rows["cell_id"], "error_barrier"], rows["error_barrier"])
    # the barrier is path_barrier of the stored path: max error minus the mean of its ends
    for r in rows.itertuples():
        errs = pd.read_json(pd.io.common.StringIO(r.path), typ="series").to_numpy()
        assert len(errs) == 5 and r.error_barrier == pytest.approx(errs.max() - (errs[0] + errs[-1]) / 2, abs=1e-5)
    tests = pd.read_csv(study / "tables" / "tests.csv")
    t = tests[tests["section"] == "stability"]
    assert len(t) == 1 and t["n"].iloc[0] == 4 and t["family"].iloc[0] == "stability"
    assert np.isfinite(t["q"].iloc[0]) or not np.isfinite(t["p"].iloc[0])
    md = (study / "report.md").read_text()
    assert "## Stability: do two trainings of a ticket end in one basin?" in md
    assert (study / "figures" / "stability.png").is_file()
    sp = pd.read_csv(study / "tables" / "sparse_training.csv")
    assert list(sp["method"].unique()) == ["gmp"] and set(sp["run_accuracy_on"]) == {"eval"}
    assert "`gmp`: `start` and `end` are fractions of the run" in md


def test_resume_does_not_recompute(study: Path) -> None:
    before = _rows(study)
    run(TINY, study, progress=False)
    after = _rows(study)
    pd.testing.assert_frame_equal(before, after)  # same rows, same finish times
    study_cfg = load_config(TINY)
    with Store(study) as s:
        assert stability.run_stability(s, study_cfg, expand(study_cfg)) == 0


def test_two_identical_trainings_have_zero_barrier(study: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(TINY)
    cells = [c for c in expand(cfg) if c.method in ("random", "snip") and c.density == 0.3 and not c.variant]
    monkeypatch.setattr(stability, "stability_seed", lambda seed: derived_seed(seed, "train"))  # copy B = copy A's order
    with Store(study) as s:
        given = {c.id: {"ticket": s.load_ticket(c.id), "trained": None} for c in cells}
    rows = stability.stability_group([c.spec for c in cells], [c.id for c in cells], given, points=5)
    assert [r["copy_a"] for r in rows] == ["retrained", "retrained"]
    assert all(r["error_barrier"] == 0.0 and abs(r["loss_barrier"]) < 1e-6 for r in rows)
    assert all(r["error_a"] == r["error_b"] for r in rows)


def test_a_stability_density_not_in_the_study_is_a_clear_error(tmp_path: Path) -> None:
    bad = {**TINY, "analysis": {**TINY["analysis"], "stability": {"densities": [0.1]}}}
    with pytest.raises(ConfigError, match=r"analysis.stability.densities \[0.1\] names no density of the study"):
        run(bad, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "study.db").exists()  # refused before any cell ran
    with pytest.raises(ConfigError, match="points"):
        load_config({**TINY, "analysis": {"stability": {"points": 1}}})
    assert load_config({**TINY, "analysis": {"stability": True}}).analysis.stability.densities is None
    assert load_config({**TINY, "analysis": {}}).analysis.stability is None


def test_no_stability_table_without_the_option(tmp_path: Path) -> None:
    cfg = {**TINY, "methods": {"random": {"scope": "global"}}, "densities": [0.3],
           "analysis": {"null_samples": 0, "kinds": ["jaccard"], "functional": False}, "ablations": []}
    run(cfg, tmp_path / "out", progress=False, report=False)
    with sqlite3.connect(tmp_path / "out" / "study.db") as c:
        names = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "stability" not in names


# ---------------------------------------------------------------------------- the rank test
def test_joint_rank_correlation_of_one_block_is_spearman_with_its_exact_permutation_p() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=6), rng.normal(size=6)
    y[:3] += x[:3]
    t = pd.DataFrame({"method": list("abcdef"), "seed": 0, "x": x, "y": y})
    r = joint_rank_correlation(t, "x", "y", block=["seed"])
    assert r.rho == pytest.approx(sps.spearmanr(x, y).statistic) and r.exact and r.permutations == 720
    rho = sps.spearmanr(x, y).statistic  # the exact p by brute force over the 720 pairings, with scipy's rho
    null = [sps.spearmanr(x[list(p)], y).statistic for p in itertools.permutations(range(6))]
    assert r.p == pytest.approx(np.mean(np.abs(null) >= abs(rho) - 1e-12))


def test_joint_rank_correlation_permutes_labels_jointly_and_averages_within_the_unit_first() -> None:
    rng = np.random.default_rng(0)
    m = list("abcde")
    rows = []
    for seed, d in itertools.product(range(3), (0.1, 0.5)):
        x = rng.normal(size=5)
        rows += [{"method": k, "seed": seed, "density": d, "x": x[i], "y": x[i] + rng.normal(scale=0.5)}
                 for i, k in enumerate(m)]
    t = pd.DataFrame(rows)
    r = joint_rank_correlation(t, "x", "y")
    by_hand = np.mean([np.mean([sps.spearmanr(g["x"], g["y"]).statistic for _, g in gs.groupby("density")])
                       for _, gs in t.groupby("seed")])
    assert r.rho == pytest.approx(by_hand) and r.blocks == 6 and r.units == 3 and r.objects == 5
    # the exact p by brute force over the 120 joint relabellings
    ranks = {b: g.set_index("method").loc[m] for b, g in t.groupby(["seed", "density"])}
    null = []
    for perm in itertools.permutations(range(5)):
        per_seed = {}
        for (s, _), g in ranks.items():
            per_seed.setdefault(s, []).append(sps.spearmanr(g["x"].to_numpy()[list(perm)], g["y"]).statistic)
        null.append(np.mean([np.mean(v) for v in per_seed.values()]))
    assert r.p == pytest.approx(np.mean(np.abs(null) >= abs(by_hand) - 1e-12))
    # many objects: random permutations, (1 + k) / (1 + n)
    big = pd.DataFrame({"method": [f"m{i}" for i in range(12)], "seed": 0, "x": np.arange(12.0), "y": np.arange(12.0)})
    rb = joint_rank_correlation(big, "x", "y", block=["seed"], permutations=199)
    assert not rb.exact and rb.rho == pytest.approx(1.0) and rb.p == pytest.approx(1 / 200)


def test_joint_rank_correlation_needs_three_objects() -> None:
    t = pd.DataFrame({"method": ["a", "b"], "seed": 0, "x": [1.0, 2.0], "y": [2.0, 1.0]})
    r = joint_rank_correlation(t, "x", "y", block=["seed"])
    assert np.isnan(r.rho) and np.isnan(r.p) and r.objects == 2


# ---------------------------------------------------------------------------- schedules that cannot work
def test_set_with_one_epoch_would_never_update_and_says_so() -> None:
    model = gt.models.build("mlp", in_shape=(8,), num_classes=2, widths=(16,))
    data = [(np.zeros((4, 8), dtype=np.float32), np.zeros(4, dtype=np.int64))]
    import torch

    data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in data]
    with pytest.raises(GraphticketsError, match=r"epochs=1 no update would happen.*use epochs in \[2, \.\.\.\]"):
        gt.pruning.prune(model, "set", density=0.3, data=data, epochs=1)
