"""Siblings (``replicates: R``): same init, other stochastic seeds; the noise floor of the comparisons."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from graphtickets.errors import ConfigError
from graphtickets.study import expand, load_config
from graphtickets.study.cell import derived_seed, run_cell, sibling_seed
from graphtickets.study.grid import trajectories

BASE = {
    "name": "t",
    "datasets": ["digits"],
    "models": [{"name": "mlp", "widths": [16]}],
    "methods": {"random": {}, "magnitude": {}, "snip": {}, "imp": {"epochs": 1}},
    "densities": [0.5, 0.2],
    "seeds": [0, 1],
    "train": {"epochs": 0},
    "ablations": ["shuffle"],
}


def _with(**kw: object) -> dict:  # type: ignore[type-arg]
    return {**BASE, **kw}


# ---------------------------------------------------------------------------- config
def test_replicates_default_is_one_and_quick_may_override() -> None:
    assert load_config(BASE).replicates == 1
    study = load_config(_with(replicates=3, quick={"replicates": 1}))
    assert study.replicates == 3
    assert study.apply_quick().replicates == 1


@pytest.mark.parametrize("bad, needle", [
    (0, ">= 1"), (-2, ">= 1"), (True, "replicates"), ("2", "replicates"), (1.5, "replicates"), (101, "above the limit"),
])
def test_replicates_validated_strictly(bad: object, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as err:
        load_config(_with(replicates=bad))
    assert "replicates" in str(err.value)


def test_replicates_limit_lifted_by_allow_large_and_quick_checked() -> None:
    assert load_config(_with(replicates=101, allow_large=True)).replicates == 101
    with pytest.raises(ConfigError, match="replicates"):
        load_config(_with(quick={"replicates": 0}))


# ---------------------------------------------------------------------------- grid
def test_replicate_zero_keeps_every_cell_id_and_siblings_are_added() -> None:
    plain = expand(load_config(BASE))
    rep = expand(load_config(_with(replicates=3)))
    assert [c.id for c in rep if c.replicate == 0] == [c.id for c in plain]
    assert all("replicate" not in c.config for c in rep if c.replicate == 0)
    own = [c for c in plain if c.method != "dense" and not c.variant]
    sibs = [c for c in rep if c.replicate > 0]
    assert len(sibs) == 2 * len(own)  # replicates 1 and 2 of every method cell
    assert {c.config["replicate"] for c in sibs} == {1, 2}
    # siblings are not ablated and have no dense reference of their own
    assert not any(c.variant or c.method == "dense" for c in sibs)
    assert len({c.id for c in rep}) == len(rep)
    for s in sibs:
        base = {k: v for k, v in s.config.items() if k != "replicate"}
        twin = next(c for c in plain if c.config == base)
        assert (s.method, s.density, s.seed) == (twin.method, twin.density, twin.seed)


def test_one_imp_trajectory_per_seed_and_replicate() -> None:
    plain = trajectories(expand(load_config(BASE)))
    rep = trajectories(expand(load_config(_with(replicates=2))))
    assert len(plain) == 2 and len(rep) == 4  # 2 init seeds x 2 replicates, each serving both densities
    assert {t.id for t in plain} <= {t.id for t in rep}
    assert sorted(t.config.get("replicate", 0) for t in rep) == [0, 0, 1, 1]


def test_sibling_seed_keeps_replicate_zero() -> None:
    assert sibling_seed(5, "train") == derived_seed(5, "train") == sibling_seed(5, "train", 0)
    assert len({sibling_seed(5, "prune:snip", r) for r in range(4)}) == 4
    assert sibling_seed(5, "train", 1) != sibling_seed(5, "prune:snip", 1)


# ---------------------------------------------------------------------------- cells
def _cells(method: str) -> list:  # type: ignore[type-arg]
    cfg = _with(methods={method: {}}, seeds=[0], densities=[0.2], replicates=3, ablations=[], dense_reference=False)
    return expand(load_config(cfg))


def _masks_equal(a: dict, b: dict) -> bool:  # type: ignore[type-arg]
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("method", ["magnitude", "synflow"])
def test_siblings_of_a_data_free_method_are_identical(method: str) -> None:
    cells = _cells(method)
    outs = [run_cell(c.config, cell_id=c.id) for c in cells]
    assert [c.replicate for c in cells] == [0, 1, 2]
    for o in outs[1:]:
        assert _masks_equal(o.ticket.masks, outs[0].ticket.masks)


@pytest.mark.parametrize("method", ["random", "snip"])
def test_siblings_of_a_stochastic_method_differ_but_share_the_init(method: str) -> None:
    cells = _cells(method)
    outs = [run_cell(c.config, cell_id=c.id) for c in cells]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not _masks_equal(outs[i].ticket.masks, outs[j].ticket.masks)
    # same initial weights: with no training, the trained weights are the init times the mask
    w = [o.trained.weights for o in outs]
    names = list(outs[0].ticket.masks)
    for n in names:
        both = outs[0].ticket.masks[n] & outs[1].ticket.masks[n]
        assert both.any()
        assert torch.equal(w[0][n][both], w[1][n][both])
    # replicate 0 is what the cell gave before replicates existed (same seeds)
    again = run_cell({k: v for k, v in cells[0].config.items()}, cell_id=cells[0].id)
    assert _masks_equal(again.ticket.masks, outs[0].ticket.masks)
    assert np.isclose(again.results["accuracy"], outs[0].results["accuracy"])


# ---------------------------------------------------------------------------- a tiny study: floor and excess
TINY = {
    "name": "tinysib",
    "datasets": ["digits"],
    "models": [{"name": "mlp", "widths": [16, 16]}],
    "methods": {"random": {"scope": "global"}, "magnitude": {}, "snip": {}, "imp": {"epochs": 1}},
    "densities": [0.2],
    "seeds": [0],
    "train": {"epochs": 1},
    "analysis": {"null_samples": 3},
    "replicates": 2,
}


@pytest.fixture(scope="module")
def tiny_sib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from graphtickets.study import run

    out = tmp_path_factory.mktemp("sib") / "out"
    res = run(TINY, out, progress=False)
    assert (res.done, res.failed, res.cells) == (9, 0, 9)  # 4 methods x 2 replicates + dense
    return out


def test_tiny_study_keeps_sibling_distances_apart(tiny_sib: Path) -> None:
    from graphtickets.study.store import Store
    from graphtickets.study.tabular import sibling_table

    tk = pd.read_csv(tiny_sib / "tables" / "tickets.csv")
    assert sorted(tk["replicate"]) == [0] * 5 + [1] * 4
    dist = pd.read_csv(tiny_sib / "tables" / "distances.csv")
    assert not dist["group"].str.contains("siblings").any()
    per = dist[~dist["group"].str.endswith("/all")]
    assert set(per["a"]) | set(per["b"]) == set(TINY["methods"])  # type: ignore[arg-type]
    every = dist[dist["group"].str.endswith("/all")]  # the MDS map: replicate 0's tickets only
    assert set(every["a"]) | set(every["b"]) == set(tk.loc[(tk["replicate"] == 0) & (tk["method"] != "dense"), "id"])
    sib = pd.read_csv(tiny_sib / "tables" / "siblings.csv")
    assert set(sib["method"]) == set(TINY["methods"])  # type: ignore[arg-type]
    assert set(zip(sib["a"], sib["b"], strict=True)) == {("r0", "r1")}
    same = sib.groupby("method")["identical"].all()
    assert same["magnitude"] and not same["random"] and not same["snip"]
    # identical masks <=> hamming distance 0 (computed by the comparison, not by the identity check)
    ham = sib[sib["kind"] == "hamming"].set_index("method")["value"]
    assert ham["magnitude"] == 0.0 and ham["random"] > 0 and ham["snip"] > 0
    with Store(tiny_sib) as st:
        assert len(sibling_table(st)) == len(sib)
    report = (tiny_sib / "report.md").read_text()
    # section ``siblings``: deterministic-given-init methods named and kept out of the floor, excess unclipped per kind
    assert "Deterministic given the init (identical masks for every replicate, measured): magnitude" in report
    assert "Excess over siblings" in report and "never averaged across families" in report
    ex = pd.read_csv(tiny_sib / "tables" / "siblings_excess.csv")
    assert set(ex["status"]) <= {"ok", "deterministic", "null cannot vary", "floor reaches the null", "no siblings"}
    assert (ex.loc[ex["pair"] == "magnitude ~ random", "floor_from"] == "b").all()  # magnitude's floor 0 left out


def test_excess_over_siblings_matches_a_hand_computation_from_the_store(tiny_sib: Path) -> None:
    from graphtickets.study.alike import excess_table
    from graphtickets.study.store import Store

    with Store(tiny_sib) as st:
        raw = st.distances()
    dist = pd.read_csv(tiny_sib / "tables" / "distances.csv")
    sib = pd.read_csv(tiny_sib / "tables" / "siblings.csv")
    ex = excess_table(dist, sib)
    assert not ex.empty and ex["excess"].notna().any()
    finite = ex["excess"].dropna()
    assert ((finite >= 0) & (finite <= 1)).all()
    checked = 0
    for kind in ("jaccard", "hamming", "layer_density"):
        grp = raw[~raw["grp"].str.contains("#") & ~raw["grp"].str.endswith("/all") & (raw["kind"] == kind)]
        for r in grp.itertuples():
            w = []
            for m in (r.a, r.b):
                row = raw[(raw["grp"] == f"{r.grp}#siblings:{m}") & (raw["kind"] == kind)]
                assert len(row) == 1
                w.append(float(row["value"].iloc[0]))
            floor = (w[0] + w[1]) / 2
            scale = r.null_mean - floor
            pair = " ~ ".join(sorted((r.a, r.b)))
            got = ex[(ex["pair"] == pair) & (ex["kind"] == kind)]["excess"].iloc[0]
            if abs(scale) <= 1e-12 * max(abs(r.null_mean), abs(floor)):
                assert np.isnan(got)
                continue
            want = min(max((r.value - floor) / scale, 0.0), 1.0)
            assert got == pytest.approx(want, abs=1e-12)
            checked += 1
    assert checked >= 6
