"""What tickets share beyond the null ladder: the trained ladder, input geometry, live units,
shared allocation and structure vs accuracy -- sections on a tiny study and on hand-made tickets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.special
import scipy.stats
import torch

import graphtickets as gt
from graphtickets.study import run, sections
from graphtickets.study.sections import (
    Context,
    allocation,
    geometry,
    structure_accuracy,
    trained_ladder,
    units,
)

TINY = {
    "name": "tiny-share",
    "datasets": ["digits"],
    "models": [{"name": "mlp", "widths": [16, 16]}],
    "methods": {"random": {"scope": "global"}, "magnitude": {}, "snip": {}},
    "densities": [0.3],
    "seeds": [0, 1],
    "train": {"epochs": 1},
    "ablations": ["shuffle", "in_degree", "rewire"],
    "dense_reference": False,
    "analysis": {"null_samples": 2},
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("share") / "out"
    res = run(TINY, out, progress=False)
    assert res.failed == 0
    return out


def test_in_degree_and_rewire_cells_keep_what_they_claim(tiny: Path) -> None:
    tk = pd.read_csv(tiny / "tables" / "tickets.csv")
    assert {"snip+in_degree", "snip+rewire", "snip+shuffle"} <= set(tk["method"])
    folder = tiny / "tickets"
    for seed in (0, 1):
        row = tk[tk["seed"] == seed].set_index("method")
        own, ind, rew = (gt.Ticket.load(folder / f"{row.loc[m, 'id']}.safetensors")
                         for m in ("snip", "snip+in_degree", "snip+rewire"))
        assert ind.meta["ablation"]["kind"] == "in_degree" and rew.meta["ablation"]["kind"] == "rewire"
        for n, m in own.masks.items():
            assert torch.equal(ind.masks[n].sum(1), m.sum(1))  # every unit's fan-in
            assert torch.equal(rew.masks[n].sum(1), m.sum(1)) and torch.equal(rew.masks[n].sum(0), m.sum(0))
        assert any(not torch.equal(ind.masks[n], own.masks[n]) for n in own.masks)  # and it moved something
        assert any(not torch.equal(rew.masks[n], own.masks[n]) for n in own.masks)


def test_every_section_writes_its_tables_on_a_tiny_study(tiny: Path) -> None:
    tables = tiny / "tables"
    for name in ("trained_ladder", "geometry", "geometry_fanout", "units", "units_overlap", "allocation",
                 "structure_accuracy"):
        assert (tables / f"{name}.csv").is_file(), name
    ladder = pd.read_csv(tables / "trained_ladder.csv")
    assert set(ladder["level"]) == {"shuffle", "in_degree", "rewire"} and set(ladder["n"]) == {2}
    tests = pd.read_csv(tables / "tests.csv")
    assert {"trained_ladder", "geometry", "units", "allocation", "structure_accuracy"} <= set(tests["section"])
    assert {"q", "unit", "n", "family"} <= set(tests.columns)
    tk = pd.read_csv(tables / "tickets.csv")
    assert {"layered.locality", "layered.live_units", "layered.live_fraction"} <= set(tk.columns)
    assert tk.loc[tk["variant"].isna(), "layered.locality"].notna().all()  # digits: ordered 8x8 pixels
    md = (tiny / "report.md").read_text()
    for heading in ("## Answer", "## Trained ladder", "## Input geometry", "## Live hidden units",
                    "## Shared layer allocation", "## Does structure predict accuracy"):
        assert heading in md, heading
    assert (tiny / "figures" / "trained_ladder.png").is_file() and (tiny / "figures" / "input_fanout.png").is_file()


def test_live_units_metric_matches_units_live_units() -> None:
    m = gt.models.build("mlp", in_shape=(6,), num_classes=2, widths=(4, 3), seed=0)
    t = gt.pruning.prune(m, "random", density=0.25, seed=3)
    got = gt.analysis.ticket_metrics(t, m)
    lu = gt.analysis.units.live_units(m, t)
    assert got["live_units"] == lu["live"].sum() and got["live_fraction"] == pytest.approx(lu["live"].mean())
    for layer, g in lu.groupby("layer"):
        assert got[f"live_units/{layer}"] == g["live"].sum()


# ----------------------------------------------------------------------------- hand-made tickets tables
def _ladder_table(gap_shuffle: list[float]) -> pd.DataFrame:
    rows = []
    for s, gap in enumerate(gap_shuffle):
        for m, base in (("snip", 0.6), ("magnitude", 0.55)):
            rows.append({"method": m, "base_method": m, "variant": "", "density": 0.2, "seed": s, "replicate": 0,
                         "accuracy": base + gap})
            rows.append({"method": f"{m}+shuffle", "base_method": m, "variant": "shuffle", "density": 0.2, "seed": s,
                         "replicate": 0, "accuracy": base})
            rows.append({"method": f"{m}+rewire", "base_method": m, "variant": "rewire", "density": 0.2, "seed": s,
                         "replicate": 0, "accuracy": base + gap})  # the rewired variant keeps all of it
    return pd.DataFrame(rows)


def _answer(name: str, tabs: dict[str, pd.DataFrame]) -> list[str]:
    every = {name: tabs}
    return [t for t, _ in sections.answer(every, sections.collect_tests(every))]


def test_trained_ladder_claim_disappears_when_the_effect_is_absent(tmp_path: Path) -> None:
    strong = trained_ladder.compute(Context(out=tmp_path, tickets=_ladder_table([0.10, 0.11, 0.12, 0.10]), distances=pd.DataFrame()))
    lad = strong["trained_ladder"].set_index(["method", "level"])
    assert lad.loc[("snip", "shuffle"), "gap"] == pytest.approx(0.1075)
    assert lad.loc[("snip", "rewire"), "kept"] == pytest.approx(1.0)  # rewired: the whole advantage kept
    t = strong["tests"].set_index("test")
    expect = scipy.stats.ttest_1samp([0.10, 0.11, 0.12, 0.10], 0.0)
    assert t.loc["snip:shuffle", "p"] == pytest.approx(expect.pvalue) and t.loc["snip:shuffle", "df"] == 3
    said = _answer("trained_ladder", strong)
    assert any(s.startswith("Trained alike, tickets beat their layer-shuffled variants") for s in said)
    weak = trained_ladder.compute(Context(out=tmp_path, tickets=_ladder_table([0.05, -0.06, 0.04, -0.05]), distances=pd.DataFrame()))
    said = _answer("trained_ladder", weak)
    assert not any(s.startswith("Trained alike") for s in said)
    assert any(s.startswith("The data do not show tickets training to another accuracy than their layer-shuffled") for s in said)


def test_structure_accuracy_partial_rho_against_a_hand_computation(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for s in range(3):
        la = rng.random(8)
        acc = la + rng.normal(0, 0.3, 8)
        metric = acc + rng.normal(0, 0.2, 8)
        for i in range(8):
            rows.append({"method": f"m{i}", "variant": "", "replicate": 0, "density": 0.1, "seed": s,
                         "accuracy": acc[i], "layer.a": la[i], "layered.thing": metric[i],
                         "layered.n_edges": 10.0 + i})  # set by density: not tested
    tk = pd.DataFrame(rows)
    out = structure_accuracy.compute(Context(out=tmp_path, tickets=tk, distances=pd.DataFrame()))
    tests = out["tests"].set_index("metric")
    assert list(tests.index) == ["layered.thing"]

    def partial(g: pd.DataFrame) -> float:  # the one-covariate formula of Spearman correlations
        rxy = scipy.stats.spearmanr(g["layered.thing"], g["accuracy"])[0]
        rxz = scipy.stats.spearmanr(g["layered.thing"], g["layer.a"])[0]
        ryz = scipy.stats.spearmanr(g["accuracy"], g["layer.a"])[0]
        return (rxy - rxz * ryz) / np.sqrt((1 - rxz**2) * (1 - ryz**2))

    per_seed = [partial(g) for _, g in tk.groupby("seed")]
    np.testing.assert_allclose(out["structure_accuracy"].sort_values("seed")["rho"], per_seed, atol=1e-10)
    assert set(out["structure_accuracy"]["df"]) == {8 - 2 - 1}
    assert tests.loc["layered.thing", "statistic"] == pytest.approx(np.mean(per_seed))
    assert tests.loc["layered.thing", "p"] == pytest.approx(scipy.stats.ttest_1samp(per_seed, 0.0).pvalue)


def test_allocation_concordance_is_tested_and_disappears_without_it(tmp_path: Path) -> None:
    def table(alike: bool) -> pd.DataFrame:
        rng = np.random.default_rng(1)
        rows = []
        for s in range(3):
            for i in range(8):
                prof = np.array([0.3, 0.1, 0.6]) + rng.normal(0, 0.01, 3) if alike else rng.random(3)
                rows.append({"method": f"m{i}", "variant": "", "replicate": 0, "density": 0.2, "seed": s,
                             "layer.fc1.weight": prof[0], "layer.fc2.weight": prof[1], "layer.out.weight": prof[2]})
        return pd.DataFrame(rows)

    yes = allocation.compute(Context(out=tmp_path, tickets=table(True), distances=pd.DataFrame()))
    t = yes["tests"].iloc[0]
    assert t["statistic"] == pytest.approx(1.0) and t["n"] == 3 and t["reference"] == "none"
    assert any(s.startswith("The methods allocate density across layers alike") for s in _answer("allocation", yes))
    no = allocation.compute(Context(out=tmp_path, tickets=table(False), distances=pd.DataFrame()))
    said = _answer("allocation", no)
    assert said and all(s.startswith("The data do not show the methods allocating") for s in said)


class _Store:
    """A study store's ``load_ticket``, from tickets in memory."""

    def __init__(self, tickets: dict[str, gt.Ticket]) -> None:
        self.tickets = tickets

    def load_ticket(self, cell_id: str) -> gt.Ticket:
        return self.tickets[cell_id]


def _geometry_ctx(tmp_path: Path, *, local_snip: bool, dataset: Any = "mnist1d") -> Context:
    """snip (data-driven) with contiguous blocks of inputs per unit or random ones; random and
    magnitude (data-free) random; 3 init seeds, one density."""
    model = gt.models.build("mlp", in_shape=(40,), num_classes=10, widths=(16,), seed=0)
    rows, store = [], {}
    for s in range(3):
        rng = np.random.default_rng(s)
        for method in ("snip", "random", "magnitude"):
            w = np.zeros((16, 40), dtype=bool)
            for u in range(16):
                if method == "snip" and local_snip:
                    start = rng.integers(0, 36)
                    w[u, start:start + 4] = True
                else:
                    w[u, rng.choice(40, 4, replace=False)] = True
            t = gt.Ticket({"fc1.weight": torch.from_numpy(w), "classifier.weight": torch.ones(10, 16, dtype=torch.bool)},
                          method=method, config={"model": model.gt_spec, "dataset": dataset})
            cid = f"{method}-{s}"
            store[cid] = t
            rows.append({"id": cid, "method": method, "variant": "", "replicate": 0, "density": 0.1, "seed": s})
    return Context(out=tmp_path, tickets=pd.DataFrame(rows), distances=pd.DataFrame(), store=_Store(store))


def test_geometry_claim_holds_for_local_tickets_and_disappears_for_random_ones(tmp_path: Path) -> None:
    yes = geometry.compute(_geometry_ctx(tmp_path, local_snip=True))
    loc = yes["geometry"].groupby("method")["locality"].mean()
    assert loc["snip"] < 0.3 and abs(loc["random"] - 1) < 0.3  # contiguous blocks of 4: gap 1 vs 41/5
    said = _answer("geometry", yes)
    assert any(s.startswith("Data-driven tickets keep local inputs closer together than data-free ones") for s in said)
    no = geometry.compute(_geometry_ctx(tmp_path, local_snip=False))
    said = _answer("geometry", no)
    assert not any(s.startswith("Data-driven tickets keep local inputs closer") for s in said)
    assert any(s.startswith("The data do not show data-driven tickets keeping local inputs") for s in said)
    fan = yes["geometry_fanout"]
    assert len(fan) == 3 * 40 and set(fan["position"]) == set(range(40))


def test_geometry_inputs_without_order_are_skipped_with_the_reason(tmp_path: Path) -> None:
    out = geometry.compute(_geometry_ctx(tmp_path, local_snip=True, dataset={"name": "mnist1d", "shuffle_seq": True}))
    assert "geometry" not in out and "tests" not in out
    assert "inputs without order" in out["geometry_skipped"]["reason"].iloc[0]
    blocks = geometry.render(out, Context(out=tmp_path, tickets=pd.DataFrame(), distances=pd.DataFrame()))
    assert any(kind == "p" and "skipped" in str(text) for kind, text in blocks)


def test_units_overlap_test_finds_shared_units_and_not_random_ones(tmp_path: Path) -> None:
    model = gt.models.build("mlp", in_shape=(8,), num_classes=2, widths=(20,), seed=0)

    def ctx(shared: bool) -> Context:
        rows, store = [], {}
        for s in range(3):
            rng = np.random.default_rng(10 + s)
            keep = rng.choice(20, 8, replace=False)
            for method in ("a", "b", "c"):
                live = keep if shared else rng.choice(20, 8, replace=False)
                w = torch.zeros(20, 8, dtype=torch.bool)
                w[torch.from_numpy(live), 0] = True
                t = gt.Ticket({"fc1.weight": w, "classifier.weight": torch.ones(2, 20, dtype=torch.bool)},
                              method=method, config={"model": model.gt_spec})
                store[f"{method}-{s}"] = t
                rows.append({"id": f"{method}-{s}", "method": method, "variant": "", "replicate": 0, "density": 0.1, "seed": s})
        return Context(out=tmp_path, tickets=pd.DataFrame(rows), distances=pd.DataFrame(), store=_Store(store))

    yes = units.compute(ctx(True))
    assert set(yes["units"]["live"]) == {8}
    pair = yes["units_overlap"].iloc[0]
    assert pair["both"] == 8 and pair["expected"] == pytest.approx(8 * 8 / 20)
    assert pair["p"] == pytest.approx(1 / scipy.special.comb(20, 8))  # the same 8 of 20
    assert yes["tests"]["p"].iloc[0] == pytest.approx(1 / (1 + units.NULL_DRAWS))
    said = _answer("units", units.compute(ctx(False)))
    assert all(s.startswith("The data do not show the methods keeping the same hidden units") for s in said)
