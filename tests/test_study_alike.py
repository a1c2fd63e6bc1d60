"""The study's functional side: trained tickets kept, function kinds compared, structure -> function."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

import graphtickets as gt
from graphtickets.study import run
from graphtickets.study.alike import (
    function_kinds,
    functional_table,
    stratified_mantel,
    structure_function,
    structure_function_sentence,
)
from graphtickets.study.store import Store


def _sym(rng: np.random.Generator, n: int) -> np.ndarray:
    m = rng.random((n, n))
    m = m + m.T
    np.fill_diagonal(m, 0.0)
    return m


def test_stratified_mantel_with_one_group_is_the_mantel_test() -> None:
    rng = np.random.default_rng(3)
    a = _sym(rng, 5)
    b = a + 0.3 * _sym(rng, 5)
    r, p, n = stratified_mantel([a], [b], permutations=999)
    ref = gt.analysis.mantel(a, b, permutations=999, method="spearman")  # 5! = 120: both enumerate
    assert ref.exact and n == 10
    assert r == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)


def test_stratified_mantel_pools_pairs_and_permutes_within_groups() -> None:
    rng = np.random.default_rng(0)
    d1 = [_sym(rng, 4), _sym(rng, 3)]
    d2 = [_sym(rng, 4), _sym(rng, 3)]
    r, p, n = stratified_mantel(d1, d2, permutations=999)
    iu4, iu3 = np.triu_indices(4, 1), np.triu_indices(3, 1)
    x = np.concatenate([d1[0][iu4], d1[1][iu3]])
    y = np.concatenate([d2[0][iu4], d2[1][iu3]])
    assert n == 9 and r == pytest.approx(scipy.stats.spearmanr(x, y).statistic)
    # exact: 4! * 3! = 144 joint permutations, counted by hand here
    count = 0
    for p4 in itertools.permutations(range(4)):
        for p3 in itertools.permutations(range(3)):
            yp = np.concatenate([d2[0][np.ix_(p4, p4)][iu4], d2[1][np.ix_(p3, p3)][iu3]])
            count += abs(scipy.stats.spearmanr(x, yp).statistic) >= abs(r) - 1e-12
    assert p == pytest.approx(count / 144)
    # a monotone relation in every group: rho 1, and the identity is among the most extreme
    r2, p2, _ = stratified_mantel(d1, [m**2 for m in d1], permutations=999)
    assert r2 == pytest.approx(1.0) and p2 < 0.05
    # a pair without a value is left out of the statistic (and of every permutation)
    d2[1][0, 1] = d2[1][1, 0] = np.nan
    r3, p3, n3 = stratified_mantel(d1, d2, permutations=999)
    ok = np.isfinite(np.concatenate([d2[0][iu4], d2[1][iu3]]))
    assert n3 == 8 and r3 == pytest.approx(scipy.stats.spearmanr(x[ok], y[ok]).statistic) and 0 < p3 <= 1


def _synthetic_dist(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    methods = ["a", "b", "c", "d", "e"]
    for s in range(3):
        grp = f"ds/mlp/d0.2/s{s}"
        for x, y in itertools.combinations(methods, 2):
            j = rng.random()
            rows += [
                {"group": grp, "a": x, "b": y, "kind": "jaccard", "value": j},
                {"group": grp, "a": x, "b": y, "kind": "hamming", "value": rng.random()},
                {"group": grp, "a": x, "b": y, "kind": "agreement", "value": 0.5 * j + 0.05 * rng.random()},
                {"group": grp, "a": x, "b": y, "kind": "cka", "value": rng.random()},
            ]
    return pd.DataFrame(rows)


def test_structure_function_is_bh_corrected_and_names_the_best_predictor() -> None:
    dist = _synthetic_dist()
    sf = structure_function(dist, permutations=199, seed=1)
    assert len(sf) == 4 and set(sf["structure"]) == {"jaccard", "hamming"} and set(sf["function"]) == {"agreement", "cka"}
    np.testing.assert_allclose(sf["q"], scipy.stats.false_discovery_control(sf["p"].to_numpy(), method="bh"))
    assert (sf["significant"] == (sf["q"] <= 0.05)).all()
    top = sf.set_index(["structure", "function"]).loc[("jaccard", "agreement")]
    assert top["rho"] > 0.9 and top["significant"] and top["pairs"] == 30
    sentence = structure_function_sentence(sf)
    assert sentence is not None and "best predicts functional similarity is jaccard" in sentence
    # nothing survives: the sentence says so and names no predictor as one
    none = sf.assign(significant=False)
    assert "no structural distance predicts" in str(structure_function_sentence(none))
    ft = functional_table(dist)
    assert list(ft.columns) == ["agreement", "cka", "n"] and (ft["n"] == 3).all()
    assert function_kinds(["jaccard", "cka", "agreement"]) == ["cka", "agreement"]


TINY = {
    "name": "tinyfn",
    "datasets": ["digits"],
    "models": [{"name": "mlp", "widths": [16, 16]}],
    "methods": {"random": {"scope": "global"}, "magnitude": {}, "snip": {}},
    "densities": [0.5],
    "seeds": [0],
    "dense_reference": False,
    "train": {"epochs": 3, "lr": 0.05},
    "analysis": {"null_samples": 2},
}


@pytest.fixture(scope="module")
def tiny_fn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tinyfn") / "out"
    res = run(TINY, out, progress=False)
    assert (res.done, res.failed) == (3, 0)
    return out


def test_trained_tickets_are_kept_and_compared_by_function(tiny_fn: Path) -> None:
    with Store(tiny_fn) as st:
        cells = st.cells()
        for cid, acc in zip(cells["id"], [r["accuracy"] for r in cells["results"]], strict=True):
            trained = st.load_trained(cid)
            ticket = st.load_ticket(cid)
            assert trained is not None and trained.meta.get("weights") == "trained"
            assert all(torch_equal(trained.masks[n], m) for n, m in ticket.masks.items())
            # the kept weights are the trained network: its test accuracy is the cell's
            net = trained.build_model()
            trained.apply(net)
            test = gt.data.load("digits", split="test")
            ev = gt.training.evaluate(net, gt.data.batches(test, batch_size=1000, shuffle=False))
            assert ev["accuracy"] == pytest.approx(acc, abs=1e-9)
    d = pd.read_csv(tiny_fn / "tables" / "distances.csv")
    fn = d[d["kind"].isin(gt.analysis.FUNCTION_KINDS) & ~d["group"].str.endswith("/all")]
    assert set(fn["kind"]) == set(gt.analysis.FUNCTION_KINDS) and len(fn) == 3 * 4
    assert fn["z"].isna().all() and fn["value"].between(0, 2).all()
    assert fn[fn["kind"] == "agreement"]["value"].between(0, 1).all()
    report = (tiny_fn / "report.md").read_text()
    assert "What trained tickets compute" in report and "Does structure predict function?" in report
    assert (tiny_fn / "figures" / "structure_function.png").is_file()


def torch_equal(a: object, b: object) -> bool:
    import torch

    return bool(torch.equal(a, b))  # type: ignore[arg-type]


def _z_dist() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    rows = []
    for s in range(3):
        for d in (0.2, 0.05):
            grp = f"ds/mlp/d{d:g}/s{s}"
            for (x, y), zc in zip(itertools.combinations(["a", "b", "c"], 2), [-6.0, 0.0, 0.3], strict=True):
                for kind in ("jaccard", "spectral"):
                    rows.append({"group": grp, "seed": s, "density": d, "a": x, "b": y, "kind": kind,
                                 "value": rng.random(), "z": zc + 0.5 * rng.standard_normal(), "null_n": 10})
    return pd.DataFrame(rows)


def test_findings_quote_no_test_against_the_layer_shuffled_null() -> None:
    """The old Stouffer-combined tests against the layer shuffle (z from 10 nulls, normal p) are gone:
    every likeness test of the report is the null ladder's calibrated one (issue 32)."""
    from graphtickets.study.report import findings

    dist = _z_dist()
    tk = pd.DataFrame([{"id": f"{m}{s}", "dataset": "digits", "method": m, "variant": "", "density": d, "seed": s,
                        "accuracy": 0.5 + 0.01 * s, "family": "", "kind": ""}
                       for m in "abc" for s in range(3) for d in (0.2, 0.05)])
    f = findings(tk, dist)
    text = " ".join(f["sentences"])
    assert "null_tests" not in f and "Stouffer" not in text and "Strongest likeness" not in text
    assert set(f["methods"]["method"]) == set("abc")  # the per-method description stays, as a table


def test_accuracy_and_distance_ci_over_init_seeds() -> None:
    from graphtickets.study.alike import accuracy_ci, distance_ci

    tk = pd.DataFrame({"method": ["m"] * 4, "density": [0.2] * 4, "seed": [0, 0, 1, 2], "accuracy": [0.5, 0.7, 0.7, 0.8]})
    ci = accuracy_ci(tk)  # seed 0's two siblings count once (0.6)
    from scipy import stats

    lo, hi = stats.t.interval(0.95, 2, loc=0.7, scale=stats.sem([0.6, 0.7, 0.8]))  # Student t, df = 2 (not the bootstrap)
    assert ci.loc["m", "d=0.2"] == f"0.700 [{lo:.3f}, {hi:.3f}]" == "0.700 [0.452, 0.948]"
    assert accuracy_ci(tk[tk["seed"] == 1]).loc["m", "d=0.2"] == "0.700"
    dci = distance_ci(_z_dist())
    row = dci[(dci["pair"] == "a ~ b") & (dci["kind"] == "jaccard")].iloc[0]
    assert row["seeds"] == 3 and row["low"] <= row["mean"] <= row["high"]


def test_consensus_per_density_and_seed_against_a_hand_count(tiny_fn: Path) -> None:
    import torch

    from graphtickets.study.alike import consensus_tables
    from graphtickets.study.tabular import tables

    with Store(tiny_fn) as st:
        tk, _ = tables(st)
        ct = consensus_tables(st, tk)
        tickets = [st.load_ticket(i) for i in tk["id"]]
    row = ct["cores"].loc[(0.5, 0)]
    stacked = {n: torch.stack([t.masks[n] for t in tickets]).sum(0) for n in tickets[0].masks}
    assert row["tickets"] == 3 and row["k"] == 2
    assert row["all"] == sum(int((c == 3).sum()) for c in stacked.values())
    assert row["core_k"] == sum(int((c >= 2).sum()) for c in stacked.values())
    # independent layer-shuffled masks: a weight of layer l is kept by ticket t with probability p_tl
    p = {n: [float(t.masks[n].float().mean()) for t in tickets] for n in stacked}
    expected_all = sum(stacked[n].numel() * np.prod(p[n]) for n in stacked)
    assert row["expected_all"] == pytest.approx(expected_all)
    lay = ct["layers"].xs(0.5, level="density")
    assert lay["core"].sum() == pytest.approx(row["core_k"]) and lay["expected_core"].sum() == pytest.approx(row["expected_k"])
    report = (tiny_fn / "report.md").read_text()
    assert "Consensus across methods" in report and (tiny_fn / "figures" / "consensus.png").is_file()


def test_function_kinds_follow_the_analysis_config() -> None:
    from graphtickets.study.comparisons import function_kinds as study_function_kinds
    from graphtickets.study.comparisons import null_counts
    from graphtickets.study.config import load_config

    base = {**TINY, "analysis": {"null_samples": 2}}
    assert study_function_kinds(load_config(base)) == list(gt.analysis.FUNCTION_KINDS)
    assert not set(null_counts(load_config(base))) & set(gt.analysis.FUNCTION_KINDS)  # no nulls for them
    listed = {**TINY, "analysis": {"kinds": ["jaccard", "cka"]}}
    assert study_function_kinds(load_config(listed)) == ["cka"] and list(null_counts(load_config(listed))) == ["jaccard"]
    assert study_function_kinds(load_config({**TINY, "analysis": {"functional": False}})) == []


def test_effective_table_against_hand_computed_effective_jaccard(tiny_fn: Path) -> None:
    import torch

    from graphtickets.study.alike import effective_table
    from graphtickets.study.tabular import tables

    with Store(tiny_fn) as st:
        tk, _ = tables(st)
        eff = effective_table(st, tk)
        tickets = {str(r.method): st.load_ticket(str(r.id)) for r in tk.itertuples()}
    model = tickets["snip"].build_model()
    a, b = (gt.analysis.effective_masks(tickets[m], model) for m in ("magnitude", "snip"))
    inter = sum(int((a[n] & b[n]).sum()) for n in a)
    union = sum(int((a[n] | b[n]).sum()) for n in a)
    row = eff[(eff["pair"] == "magnitude ~ snip") & (eff["kind"] == "jaccard")].iloc[0]
    assert row["effective"] == pytest.approx(1 - inter / union)
    pa, pb = tickets["magnitude"].masks, tickets["snip"].masks
    plain = 1 - sum(int((pa[n] & pb[n]).sum()) for n in pa) / sum(int((pa[n] | pb[n]).sum()) for n in pa)
    assert row["plain"] == pytest.approx(plain) and row["difference"] == pytest.approx(row["effective"] - plain)
    assert isinstance(a["fc1.weight" if "fc1.weight" in a else next(iter(a))], torch.Tensor)
    assert "Effective-mask distances" in (tiny_fn / "report.md").read_text()
