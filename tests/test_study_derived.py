"""Derived cells in a study: built after their sources, held out from their own seed, resumable, checked."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import torch

import graphtickets as gt
from graphtickets.errors import ConfigError
from graphtickets.study import run
from graphtickets.study.cell import sibling_seed
from graphtickets.study.config import load_config
from graphtickets.study.grid import expand
from graphtickets.study.store import Store

#: Two methods that find tickets, a baseline (not a source), one derived method; two seeds, one epoch.
TINY: dict[str, Any] = {
    "name": "tiny-derived",
    "datasets": ["digits"],
    "models": [{"name": "mlp", "widths": [16, 16]}],
    "methods": {"random": {"scope": "global"}, "snip": {}, "synflow": {}, "consensus": {}},
    "densities": [0.2],
    "seeds": [0, 1],
    "train": {"epochs": 1},
    "prune_data": {"batch_size": 32, "batches": 1},
    "dense_reference": False,
    "analysis": {"kinds": ["jaccard"], "null_samples": 0, "mds_kind": "jaccard", "functional": False},
}


def _cells(out: Path) -> Any:
    with Store(out) as store:
        return store.cells()


def _ticket(out: Path, method: str, seed: int) -> gt.Ticket:
    df = _cells(out)
    cid = df.loc[(df["method"] == method) & (df["seed"] == seed), "id"].item()
    with Store(out) as store:
        return store.load_ticket(cid)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("derived") / "study"
    res = run(TINY, out, progress=False, report=False)
    assert res.failed == 0 and res.done == res.cells == 2 * 5  # 3 methods + consensus twice, per seed
    return out


def test_a_held_out_ticket_reads_only_the_other_seeds_tickets(tiny: Path) -> None:
    info = gt.data.info("digits")
    model = gt.models.build("mlp", in_shape=info.in_shape, num_classes=info.num_classes, seed=0, widths=[16, 16])
    held = _ticket(tiny, "consensus:held_out", 0)
    other = [_ticket(tiny, m, 1) for m in ("snip", "synflow")]
    own = [_ticket(tiny, m, 0) for m in ("snip", "synflow")]
    seed = sibling_seed(0, "prune:consensus")
    by_hand = gt.pruning.prune(model, "consensus", density=0.2, sources=other, seed=seed)
    leaked = gt.pruning.prune(model, "consensus", density=0.2, sources=other + own, seed=seed)
    assert all(torch.equal(held.masks[n], by_hand.masks[n]) for n in held.masks)
    # the test can fail: had the study passed seed 0's tickets too, the mask would differ
    assert not all(torch.equal(held.masks[n], leaked.masks[n]) for n in held.masks)
    assert held.meta["held_out"] and held.meta["source_init_seeds"] == [1]
    assert sorted(r["method"] for r in held.meta["sources"]) == ["snip", "synflow"]  # random is a baseline
    same = _ticket(tiny, "consensus", 0)
    assert not same.meta["held_out"] and same.meta["source_init_seeds"] == [0]
    by_hand_same = gt.pruning.prune(model, "consensus", density=0.2, sources=own, seed=seed)
    assert all(torch.equal(same.masks[n], by_hand_same.masks[n]) for n in same.masks)


def test_provenance_names_the_source_cells(tiny: Path) -> None:
    df = _cells(tiny)
    ids = dict(zip(zip(df["method"], df["seed"], strict=True), df["id"], strict=True))
    for seed in (0, 1):
        r = df.loc[(df["method"] == "consensus:held_out") & (df["seed"] == seed)].iloc[0]
        want = sorted(ids[(m, 1 - seed)] for m in ("snip", "synflow"))
        assert r["config"]["method"]["derived"] == {"held_out": True, "sources": want}
        assert r["results"]["derived"]["source_cells"] == want and r["results"]["derived"]["source_seeds"] == [1 - seed]
        assert _ticket(tiny, "consensus:held_out", seed).meta["source_cells"] == want


def test_derived_cells_run_after_their_sources_and_resume(tiny: Path, tmp_path: Path) -> None:
    df = _cells(tiny)
    derived = df[df["method"].str.startswith("consensus")]
    assert derived["started"].min() >= df.loc[~df.index.isin(derived.index), "finished"].max()
    # a re-run recomputes nothing; a study cut off before a derived cell finished runs that one only
    out = tmp_path / "copy"

    shutil.copytree(tiny, out)
    assert run(TINY, out, progress=False, report=False).ran == 0
    gone = derived["id"].iloc[0]
    with sqlite3.connect(out / "study.db") as conn:
        conn.execute("DELETE FROM cells WHERE id = ?", (gone,))
    res = run(TINY, out, progress=False, report=False)
    assert res.ran == 1 and res.failed == 0 and res.done == res.cells


def test_adding_a_derived_method_runs_only_its_cells(tmp_path: Path) -> None:
    first = {**TINY, "methods": {"snip": {}, "synflow": {}}, "seeds": [0]}
    run(first, tmp_path, progress=False, report=False)
    res = run({**first, "methods": {"snip": {}, "synflow": {}, "profile": {"built_from": "same_init"}}}, tmp_path,
              progress=False, report=False)
    assert res.ran == 1 and res.failed == 0


@pytest.mark.parametrize(("methods", "seeds", "says"), [
    ({"snip": {}, "consensus": {}}, [0, 1], ["consensus", "at least two", "only snip"]),
    ({"random": {}, "magnitude": {}, "profile": {}}, [0, 1], ["profile", "at least two", "none"]),
    ({"snip": {}, "synflow": {}, "degrees": {}}, [0], ["methods.degrees", "one seed", "built_from: same_init"]),
    ({"snip": {}, "synflow": {}, "built_from": {}}, [0, 1], ["unknown method"]),
    ({"snip": {"built_from": "held_out"}, "synflow": {}}, [0, 1], ["methods.snip.built_from", "only derived"]),
    ({"snip": {}, "synflow": {}, "local": {"built_from": "other"}}, [0, 1], ["built_from"]),
])
def test_a_derived_method_without_what_it_needs_is_one_clear_error(methods: dict[str, Any], seeds: list[int],
                                                                    says: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        load_config({**TINY, "methods": methods, "seeds": seeds})
    assert all(s in str(err.value) for s in says), str(err.value)


def test_same_init_only_needs_one_seed_and_a_model_may_drop_sources() -> None:
    cells = expand(load_config({**TINY, "seeds": [0], "methods": {"snip": {}, "synflow": {},
                                                                  "consensus": {"built_from": "same_init"}}}))
    assert sorted(c.method for c in cells) == ["consensus", "snip", "synflow"]
    with pytest.raises(ConfigError, match="only synflow"):
        load_config({**TINY, "models": [{"name": "mlp", "widths": [16, 16], "methods": {"snip": False}}]})


def test_the_prior_section_writes_its_tables_and_tests(tiny: Path) -> None:
    import numpy as np
    import pandas as pd

    tk = pd.read_csv(tiny / "tables" / "tickets.csv")
    prior = pd.read_csv(tiny / "tables" / "prior.csv")
    tests = pd.read_csv(tiny / "tables" / "tests.csv")
    assert sorted(prior["method"]) == ["consensus", "consensus:held_out"]
    acc = tk.pivot_table(index="seed", columns="method", values="accuracy")
    best = max(["snip", "synflow"], key=lambda m: acc[m].mean())
    for r in prior.itertuples(index=False):
        d = (acc[r.method] - acc["random"]).to_numpy()
        assert r.best_method == best and r.n_seeds == 2
        np.testing.assert_allclose(r.diff_vs_random, d.mean())
        with np.errstate(divide="ignore", invalid="ignore"):  # a seed where best and random tie has no gap
            frac = d / (acc[best] - acc["random"]).to_numpy()
        frac = frac[np.isfinite(frac)]
        if frac.size:
            np.testing.assert_allclose(r.gap_closed, frac.mean())
        if d.std() > 0:  # the one-sample t test written out: t = mean / (s / sqrt(n)), two-sided, df = n - 1
            t = d.mean() / (d.std(ddof=1) / np.sqrt(d.size))
            from scipy.stats import t as tdist

            np.testing.assert_allclose(r.p, 2 * tdist.sf(abs(t), d.size - 1))
        assert r.test in set(tests["test"])
    mine = tests[tests["section"] == "prior"]
    assert {f.split(":")[0] for f in mine["test"]} == {"prior_vs_random", "held_out_vs_same", "beats_at_init"}
    assert (mine["unit"] == "init seed").all() and "q" in tests
    comp = pd.read_csv(tiny / "tables" / "compact.csv")
    assert sorted(comp["method"]) == ["consensus:held_out", "random", "snip", "synflow"]  # same-init priors left out
    assert (comp["params_compact"] <= comp["params_dense"]).all() and comp["accuracy_compact"].between(0, 1).all()
    # the sparse ticket's parameters: its live weights plus the biases (mlp 64-16-16-10: 42 biases)
    np.testing.assert_array_equal(comp["params_sparse"], tk.loc[tk["seed"] == 0, "kept"].iloc[0] + 16 + 16 + 10)
