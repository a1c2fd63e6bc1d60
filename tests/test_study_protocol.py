"""Faithful protocols in the study: tickets carry their weights, IMP trajectories, ablations, regimes."""

from __future__ import annotations

import copy
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

import graphtickets as gt
from graphtickets.errors import ConfigError
from graphtickets.pruning import trajectory as traj_mod
from graphtickets.study import expand, load_config, run
from graphtickets.study.cell import _Context, derived_seed, run_cell, run_trajectory
from graphtickets.study.grid import trajectories, trajectory_config
from graphtickets.study.report import paired_difference, sanity_table

SMALL = {
    "name": "proto",
    "datasets": ["digits"],
    "models": [{"name": "mlp", "widths": [12, 12]}],
    "densities": [0.5, 0.2],
    "seeds": [0],
    "train": {"epochs": 1},
    "analysis": {"null_samples": 2},
}


def _imp_cell(rewind: int = 0, densities: list[float] | None = None) -> Any:
    cfg = {**SMALL, "methods": {"imp": {"epochs": 1, "rewind": rewind}}, "dense_reference": False,
           "densities": densities or [0.5]}
    return expand(load_config(cfg))[0]


def _count_imp_runs(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    calls: list[float] = []
    real = traj_mod.imp_rounds

    def counting(*a: Any, **kw: Any) -> Any:
        calls.append(kw["density"] if kw.get("density") is not None else min(kw["densities"]))
        return real(*a, **kw)

    monkeypatch.setattr(traj_mod, "imp_rounds", counting)
    return calls


# ---------------------------------------------------------------------------- item 6: weights
def test_rewound_imp_ticket_first_training_step_starts_from_theta_k(monkeypatch: pytest.MonkeyPatch) -> None:
    cell = _imp_cell(rewind=3)
    ctx = _Context.of(cell.spec, root=None, download=False, device="cpu")
    theta0 = ctx.build()
    tc = trajectory_config(cell.config)
    assert tc is not None
    ticket = run_trajectory(tc)[0.5]
    assert ticket.weights is not None  # rewound to iteration 3 of the dense training
    seen: list[dict[str, torch.Tensor]] = []
    real_train = gt.training.train

    def spy(net: torch.nn.Module, data: Any, **kw: Any) -> Any:
        seen.append({n: p.detach().clone() for n, p in net.named_parameters()})  # before the first step
        return real_train(net, data, **kw)

    monkeypatch.setattr(gt.training, "train", spy)
    out = run_cell(cell.config, cell_id=cell.id, given={"ticket": ticket})
    assert out.ok and out.results["start"] == "ticket" and len(seen) == 1
    start, init = seen[0], dict(theta0.named_parameters())
    for name, w in start.items():
        expected = ticket.weights[name] * ticket.masks[name] if name in ticket.masks else ticket.weights[name]
        assert torch.equal(w, expected), name  # theta_k (masked), not theta_0
    moved = [n for n in ticket.masks if not torch.equal(start[n], init[n].detach() * ticket.masks[n])]
    assert moved == list(ticket.masks)  # every layer differs from theta_0
    # the same when the cell runs its trajectory itself (the last train call is the cell's own)
    seen.clear()
    out2 = run_cell(cell.config, cell_id=cell.id)
    assert out2.results["start"] == "ticket"
    assert all(torch.equal(seen[-1][n], start[n]) for n in start)
    assert out2.results["accuracy"] == out.results["accuracy"]


def test_tickets_without_weights_start_from_the_model_init(monkeypatch: pytest.MonkeyPatch) -> None:
    cell = _imp_cell(rewind=0)
    seen: list[dict[str, torch.Tensor]] = []
    real_train = gt.training.train

    def spy(net: torch.nn.Module, data: Any, **kw: Any) -> Any:
        seen.append({n: p.detach().clone() for n, p in net.named_parameters()})
        return real_train(net, data, **kw)

    monkeypatch.setattr(gt.training, "train", spy)
    out = run_cell(cell.config, cell_id=cell.id)
    init = dict(_Context.of(cell.spec, root=None, download=False, device="cpu").build().named_parameters())
    assert out.results["start"] == "init"
    masks = out.ticket.masks
    assert all(torch.equal(seen[-1][n], init[n].detach() * masks[n]) for n in masks)


# ---------------------------------------------------------------------------- item 3: trajectories
def test_one_imp_run_serves_every_density_and_the_elastic_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = _count_imp_runs(monkeypatch)
    cfg = {**SMALL, "seeds": [0, 1], "dense_reference": False, "methods": {
        "random": {}, "imp": {"epochs": 1},
        "elastic": {"source": {"method": "imp", "model": {"widths": [12, 12, 12]}, "hparams": {"epochs": 1}}}}}
    study = load_config(cfg)
    cells = expand(study)
    assert len(trajectories(cells)) == 4  # (imp, elastic's source) x 2 seeds; not x 2 densities
    res = run(cfg, tmp_path / "out", progress=False, report=False, batched=False)  # one by one: the counted path (together: test_study_trajectories_together)
    assert res.failed == 0 and res.done == len(cells)
    assert sorted(calls) == [0.2] * 4  # each trajectory ran once, to the smallest density
    tk = res.tickets
    for seed in (0, 1):  # the IMP tickets of one seed are rounds of one run: nested
        ids = tk[(tk["method"] == "imp") & (tk["seed"] == seed)].sort_values("density")["id"]
        sparse, dense = (gt.Ticket.load(tmp_path / "out" / "tickets" / f"{i}.safetensors") for i in ids)
        assert all(not bool((sparse.masks[n] & ~dense.masks[n]).any()) for n in sparse.masks)
        assert sparse.density < dense.density
    # a second run finds everything: nothing runs, no IMP
    calls.clear()
    again = run(cfg, tmp_path / "out", progress=False, report=False)
    assert again.ran == 0 and calls == []


def test_trajectories_survive_a_kill_between_trajectory_and_cells(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = {**SMALL, "dense_reference": False, "methods": {"imp": {"epochs": 1}}}
    out = tmp_path / "out"
    first = run(cfg, out, progress=False, report=False)
    # simulate kill -9 after the trajectory was stored but before any cell was: drop the cell rows
    with sqlite3.connect(out / "study.db") as con:
        con.execute("DELETE FROM cells")
    calls = _count_imp_runs(monkeypatch)
    second = run(cfg, out, progress=False, report=False)
    assert calls == [] and second.ran == 2 and second.failed == 0
    pd.testing.assert_frame_equal(
        first.tickets[["id", "accuracy", "density_actual"]], second.tickets[["id", "accuracy", "density_actual"]]
    )
    # a trajectory's files without its row (killed while saving) are redone, not trusted
    with sqlite3.connect(out / "study.db") as con:
        con.execute("DELETE FROM cells")
        con.execute("DELETE FROM trajectories")
    third = run(cfg, out, progress=False, report=False)
    assert calls == [0.2] and third.failed == 0
    assert list(third.tickets["accuracy"]) == list(first.tickets["accuracy"])


def test_trajectory_rounds_and_requested_density_are_recorded() -> None:
    cell = _imp_cell(densities=[0.5, 0.2])
    tc = trajectory_config(cell.config)
    assert tc is not None and tc["densities"] == [0.5, 0.2]
    fam = run_trajectory(tc)
    assert fam[0.2].meta["trajectory"]["exact"] and fam[0.2].kept == round(0.2 * fam[0.2].total)
    t = fam[0.5]
    assert t.meta["density_requested"] == 0.5
    if t.meta["trajectory"]["exact"]:  # IMP with exact last cuts at every target
        assert abs(t.kept - round(0.5 * t.total)) <= 1
    else:  # the 0.8^r round nearest to 0.5 in log density is 0.512
        assert abs(t.density - 0.8**3) < 2 / t.total
    assert all(not bool((fam[0.2].masks[n] & ~t.masks[n]).any()) for n in t.masks)  # one run: nested


# ---------------------------------------------------------------------------- item 8: ablations
def test_ablation_cells_are_labelled_trained_identically_and_kept_out_of_the_distances(tmp_path: Path) -> None:
    cfg = {**SMALL, "densities": [0.3], "seeds": [0, 1], "methods": {"magnitude": {}, "snip": {}},
           "ablations": ["shuffle", "reinit"]}
    res = run(cfg, tmp_path / "out", progress=False)
    assert res.failed == 0
    tk = res.tickets
    assert set(tk["method"]) == {"magnitude", "snip", "magnitude+shuffle", "magnitude+reinit", "snip+shuffle",
                                 "snip+reinit", "dense"}
    assert set(tk.loc[tk["method"] == "snip+shuffle", "base_method"]) == {"snip"}
    folder = tmp_path / "out" / "tickets"
    for seed in (0, 1):
        row = tk[(tk["seed"] == seed)].set_index("method")
        own, shuf, rein = (gt.Ticket.load(folder / f"{row.loc[m, 'id']}.safetensors")
                           for m in ("snip", "snip+shuffle", "snip+reinit"))
        assert shuf.layer_counts() == own.layer_counts() and any(
            not torch.equal(shuf.masks[n], own.masks[n]) for n in own.masks)
        assert all(torch.equal(rein.masks[n], own.masks[n]) for n in own.masks)
        assert rein.config["model"]["seed"] == derived_seed(seed, "ablation:reinit")
    # the distances compare the methods' own tickets only
    assert set(res.distances["a"]) | set(res.distances["b"]) <= {"magnitude", "snip"} | set(tk["id"])
    assert not (set(res.distances["a"]) | set(res.distances["b"])) & set(tk.loc[tk["variant"] != "", "id"])
    report = (tmp_path / "out" / "report.md").read_text()
    # the sanity checks are tests of the report (section ``sanity``): verdicts from the one BH over all tests
    assert "Sanity checks: each ticket against its ablation variants" in report and "snip+shuffle" in report
    tests = pd.read_csv(tmp_path / "out" / "tables" / "tests.csv")
    sanity = tests[tests["section"] == "sanity"]
    assert not sanity.empty and sanity["test"].str.startswith(("snip vs", "magnitude vs")).all()
    assert sanity["q"].notna().all() and (sanity["unit"] == "init seed (paired t-test)").all()
    assert (tmp_path / "out" / "figures" / "sanity_checks.png").exists()


def test_an_ablation_cell_alone_equals_the_one_given_its_base(tmp_path: Path) -> None:
    cfg = {**SMALL, "densities": [0.3], "methods": {"snip": {}}, "ablations": ["shuffle"], "dense_reference": False}
    base, var = expand(load_config(cfg))
    own = run_cell(base.config, cell_id=base.id)
    given = run_cell(var.config, cell_id=var.id, given={"ticket": own.ticket})
    alone = run_cell(var.config, cell_id=var.id)
    assert given.results["accuracy"] == alone.results["accuracy"]
    assert all(torch.equal(given.ticket.masks[n], alone.ticket.masks[n]) for n in own.ticket.masks)
    assert var.base == base.id and var.variant == "shuffle" and var.method == "snip+shuffle"


def test_paired_difference_matches_scipy_and_the_formula() -> None:
    a, b = np.array([0.71, 0.69, 0.74, 0.70]), np.array([0.66, 0.67, 0.65, 0.69])
    r = paired_difference(a, b)
    d = a - b
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / np.sqrt(4)
    assert r["n"] == 4 and r["mean"] == pytest.approx(d.mean())
    assert (r["low"], r["high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert r["p"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    one = paired_difference([0.7], [0.6])
    assert one["n"] == 1 and np.isnan(one["low"]) and np.isnan(one["p"])
    same = paired_difference([0.5, 0.6], [0.5, 0.6])
    assert (same["low"], same["high"], same["p"]) == (0.0, 0.0, 1.0)


def test_sanity_verdicts() -> None:
    rows = []
    for seed, (own, shuf, rein) in enumerate([(0.70, 0.60, 0.69), (0.72, 0.61, 0.74), (0.71, 0.60, 0.70)]):
        rows += [{"method": "imp", "base_method": "imp", "variant": "", "density": 0.1, "seed": seed, "accuracy": own},
                 {"method": "imp+shuffle", "base_method": "imp", "variant": "shuffle", "density": 0.1, "seed": seed,
                  "accuracy": shuf},
                 {"method": "imp+reinit", "base_method": "imp", "variant": "reinit", "density": 0.1, "seed": seed,
                  "accuracy": rein}]
    t = sanity_table(pd.DataFrame(rows)).set_index("variant")
    assert t.loc["shuffle", "verdict"] == "beats" and t.loc["reinit", "verdict"] == "no clear difference"
    assert t.loc["shuffle", "difference"] == pytest.approx(0.1067, abs=1e-3)


# ---------------------------------------------------------------------------- regime and method specs
def test_regime_study_fills_the_training_settings_and_the_batch_size() -> None:
    cfg = {**SMALL, "train": {"epochs": 3, "optimizer": "sgd", "lr": 0.05, "batch_size": 32, "weight_decay": 1e-4},
           "methods": {"imp": {"rate": 0.2, "regime": "study"}, "early_bird": {"epochs": 2},
                       "elastic": {"source": {"method": "imp", "model": {"widths": [12, 12, 12]}, "regime": "study",
                                              "hparams": {"lr": 0.01}}}}}
    cells = {c.method: c for c in expand(load_config(cfg)) if c.density == 0.5}
    hp = cells["imp"].config["method"]["hparams"]
    assert (hp["epochs"], hp["optimizer"], hp["lr"], hp["weight_decay"], hp["rate"]) == (3, "sgd", 0.05, 1e-4, 0.2)
    assert cells["early_bird"].config["method"]["hparams"] == {"epochs": 2}  # its own regime
    src = cells["elastic"].config["method"]["source"]["hparams"]
    assert (src["epochs"], src["lr"]) == (3, 0.01)  # set explicitly: wins over the regime
    tc = trajectory_config(cells["imp"].config)
    assert tc is not None and tc["batch_size"] == 32  # training batches of train.batch_size
    with pytest.raises(ConfigError, match="does not train"):
        load_config({**cfg, "methods": {"snip": {"regime": "study"}}})
    with pytest.raises(ConfigError, match="takes no 'schedule'"):
        load_config({**cfg, "train": {"schedule": "cosine"}, "methods": {"early_bird": {"regime": "study"}}})
    with pytest.raises(ConfigError, match="unknown ablation"):
        load_config({**cfg, "ablations": ["invert"]})
    with pytest.raises(ConfigError, match="changes the prunable weights"):
        load_config({**cfg, "methods": {"early_bird": {"model": {"widths": [8, 8]}}}})
    ok = load_config({**cfg, "methods": {"early_bird": {"epochs": 1, "model": {"init": "kaiming_normal"}}}})
    (eb,) = [c for c in expand(ok) if c.method == "early_bird" and c.density == 0.5]
    assert eb.config["method"]["model"] == {"init": "kaiming_normal"} and eb.model == "mlp(12,12)"


def test_every_method_declares_how_it_uses_data_and_its_family() -> None:
    from graphtickets.pruning import DATA_USES, METHODS

    for name, spec in METHODS.items():
        assert spec.data_use in DATA_USES, name
        assert spec.family in ("baseline", "at init", "trained", "transform", "derived"), name
        assert (spec.data_use == "none") == (not spec.needs_data), name
        if spec.data_use == "epochs":
            assert "epochs" in spec.hparams() and spec.family == "trained", name
    assert METHODS["imp"].trajectory is not None


def test_schedule_reaches_the_training_of_every_ticket(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = {**SMALL, "densities": [0.5], "methods": ["magnitude"], "dense_reference": False,
           "train": {"epochs": 2, "optimizer": "sgd", "lr": 0.1, "schedule": "cosine"}}
    (cell,) = expand(load_config(cfg))
    seen: dict[str, Any] = {}
    real = gt.training.train

    def spy(net: torch.nn.Module, data: Any, **kw: Any) -> Any:
        seen.update(kw)
        return real(net, data, **kw)

    monkeypatch.setattr(gt.training, "train", spy)
    assert run_cell(copy.deepcopy(cell.config)).ok
    assert seen["settings"].schedule == "cosine" and seen["settings"].optimizer == "sgd"  # the cell's TrainSettings whole
    # without a schedule the cell config (and so the cell id) is what it was before the key existed
    (plain,) = expand(load_config({**cfg, "train": {"epochs": 2}}))
    assert "schedule" not in plain.config["train"]
