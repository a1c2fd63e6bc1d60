"""Calibration of the report's statistics sections under a study made only of independent random tickets.

Under the null (every method's ticket an independent uniformly random mask of the same layer
counts, accuracies that do not depend on the method) each section's test family must reject at
about its nominal rate alpha = 0.05. Monte Carlo: ``N`` simulated p-values per family, computed by
the sections' own functions (not hundreds of studies); the rejection rate has standard error
``sqrt(alpha (1 - alpha) / N)`` (0.0077 for N = 800, 0.0141 for N = 240, 0.0126 for N = 300) and each check allows
3 standard errors above alpha (and, where the statistic is continuous, below it). Finally the
Answer, built from one such null study, states no likeness.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from graphtickets.study import sections
from graphtickets.study.sections import Context
from graphtickets.study.sections import consensus as sec_consensus
from graphtickets.study.sections import sanity as sec_sanity
from graphtickets.study.sections import structure_function as sec_sf
from graphtickets.study.sections.accuracy import smallest_effect

ALPHA = 0.05
METHODS = ["m0", "m1", "m2", "m3", "m4"]
DENSITIES = (0.5, 0.2)
SEEDS = (0, 1, 2)


def _se(n: int, p: float = ALPHA) -> float:
    return float(np.sqrt(p * (1 - p) / n))


def _null_tickets(rng: np.random.Generator) -> pd.DataFrame:
    """A tickets table of 2 methods with a shuffle variant each: accuracy independent of method and variant."""
    rows = []
    for m, d, s in itertools.product(["m0", "m1"], DENSITIES, SEEDS):
        seed_effect = rng.normal(0, 0.05)  # a seed shifts ticket and variant alike (they share init and data order)
        for variant in ("", "shuffle"):
            rows.append({"dataset": "ds", "model": "mlp", "method": f"{m}+{variant}" if variant else m, "base_method": m,
                         "variant": variant, "density": d, "seed": s, "replicate": 0,
                         "accuracy": 0.6 + seed_effect + rng.normal(0, 0.02)})
    return pd.DataFrame(rows)


def test_sanity_tests_reject_at_their_nominal_rate() -> None:
    rng = np.random.default_rng(11)
    ps = np.concatenate([sec_sanity.sanity_tests(sec_sanity.sanity_table(_null_tickets(rng)))["p"].to_numpy()
                         for _ in range(200)])
    assert ps.size == 800  # 200 studies x 2 methods x 2 densities x 1 variant
    rate = float(np.mean(ps <= ALPHA))
    assert abs(rate - ALPHA) <= 3 * _se(ps.size), rate  # a continuous t statistic: exact in both directions


def _null_distances(rng: np.random.Generator, n_in: int = 60) -> pd.DataFrame:
    """Distances of a null study: independent random nested masks per (method, seed) (the d = 0.2 mask inside
    the d = 0.5 one, as in a study), and independent random predictions per (method, seed) shared by both
    densities: structure and function are independent, but each is dependent across a seed's groups."""
    rows = []
    for s in SEEDS:
        ranks = {m: rng.permutation(n_in) for m in METHODS}
        preds = {m: rng.integers(0, 3, size=40) for m in METHODS}
        for d in DENSITIES:
            masks = {m: r < int(d * n_in) for m, r in ranks.items()}
            for a, b in itertools.combinations(METHODS, 2):
                inter, union = (masks[a] & masks[b]).sum(), (masks[a] | masks[b]).sum()
                flip = rng.random(40) < 0.2 * d  # what the density changes in the predictions
                pb = np.where(flip, rng.integers(0, 3, size=40), preds[b])
                for kind, v in (("jaccard", 1 - inter / union), ("agreement", float(np.mean(preds[a] != pb)))):
                    rows.append({"group": f"ds/mlp/d{d:g}/s{s}", "dataset": "ds", "model": "mlp", "density": d,
                                 "seed": s, "a": a, "b": b, "kind": kind, "value": float(v)})
    return pd.DataFrame(rows)


def test_structure_function_tests_reject_at_their_nominal_rate() -> None:
    rng = np.random.default_rng(12)
    ps = []
    for _ in range(240):
        t = sec_sf.structure_function_tests(_null_distances(rng))
        assert list(t["structure"]) == ["jaccard"] and bool(t["exact"].iloc[0])  # 5! = 120 relabellings
        ps.append(float(t["p"].iloc[0]))
    rate = float(np.mean(np.asarray(ps) <= ALPHA))
    # the exact permutation p has atoms of 1/120: P(p <= 0.05) = 6/120 = 0.05 for a statistic without ties
    assert abs(rate - ALPHA) <= 3 * _se(len(ps)), rate


def _null_consensus(rng: np.random.Generator, samples: int = 99, numel: int = 120, n: int = 4
                    ) -> tuple[pd.DataFrame, dict[tuple[float, int], np.ndarray]]:
    """Cores of independent random nested masks and their joint null draws (same permutation at every density of
    a seed, as :func:`graphtickets.study.sections.consensus.consensus_rows` draws them): draw 0 is the study."""
    rows, nulls = [], {}
    k = n // 2 + 1
    for s in SEEDS:
        ranks = np.argsort(rng.random((samples + 1, n, numel)), axis=2)  # each method's positions in keep order
        for d in DENSITIES:
            kept = (ranks < int(d * numel)).sum(axis=1)  # per draw and weight: methods keeping it
            cores = (kept >= k).sum(axis=1)
            rows.append({"density": d, "seed": s, "core_k": float(cores[0])})
            nulls[(d, s)] = cores[1:].astype(float)
    return pd.DataFrame(rows), nulls


def test_consensus_test_rejects_at_most_at_its_nominal_rate() -> None:
    rng = np.random.default_rng(13)
    ps = np.array([float(sec_consensus.consensus_tests(*_null_consensus(rng))["p"].iloc[0]) for _ in range(300)])
    rate = float(np.mean(ps <= ALPHA))
    # core sizes are integers: ties count as extreme, so the test may be conservative, never liberal
    assert rate <= ALPHA + 3 * _se(ps.size), rate
    assert rate >= 0.01, rate  # and not dead: it does reject under the null at a rate near alpha


def test_consensus_test_detects_shared_weights() -> None:
    rng = np.random.default_rng(14)
    cores, nulls = _null_consensus(rng)
    strong = cores.assign(core_k=cores["core_k"] + 15)  # 15 more weights in the majority core at every group
    t = sec_consensus.consensus_tests(strong, nulls)
    assert t["statistic"].iloc[0] > 0 and t["p"].iloc[0] == pytest.approx(1 / 100)  # the floor of 99 joint draws


def test_smallest_detectable_effect_has_its_stated_power() -> None:
    rng = np.random.default_rng(15)
    for n in (3, 5):
        delta = smallest_effect(n)
        p = stats.ttest_1samp(rng.normal(delta, 1.0, size=(20000, n)), 0.0, axis=1).pvalue
        assert abs(float(np.mean(p <= ALPHA)) - 0.8) <= 3 * _se(20000, 0.8)


def test_the_answer_of_a_null_study_claims_no_likeness(tmp_path: Path) -> None:
    rng = np.random.default_rng(16)
    ctx = Context(out=tmp_path, tickets=_null_tickets(rng), distances=_null_distances(rng))
    cores, nulls = _null_consensus(rng)
    tables = {"sanity": sec_sanity.compute(ctx), "structure_function": sec_sf.compute(ctx),
              "consensus": {"consensus_cores": cores, "tests": sec_consensus.consensus_tests(cores, nulls)}}
    tests = sections.collect_tests(tables)
    assert tests.attrs["tests"] == 4 + 1 + 1 and not tests["significant"].any()
    said = [text for text, _ in sections.answer(tables, tests)]
    assert said and all(s.startswith("The data do not show") for s in said), said
    # and the same tables with an effect planted: its sentence comes, the others stay absent
    tables["consensus"]["tests"] = sec_consensus.consensus_tests(cores.assign(core_k=cores["core_k"] + 15), nulls)
    tables["consensus"]["tests"]["p"] = 1e-4  # as if drawn with many more nulls
    said = [text for text, _ in sections.answer(tables, sections.collect_tests(tables))]
    assert any(s.startswith("A majority of the methods keep more of the same weights") for s in said), said
