"""The study trains cells that share their batches together (issue 18 item 2), and falls back per cell.

Held against one-by-one training (``batched=False``, the path every earlier result came
from): same masks, test accuracies within 0.002 (float32 rounding of batched products);
a model the stacked engine cannot run (a conv net) trains alone and gives exactly the
one-by-one tables; a cell that failed in a batched group is retried alone on resume.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

import graphtickets as gt
from graphtickets.study import expand, load_config, run
from graphtickets.study.cell import run_cell, run_cells_batched_safe, train_key

TIMING = ["seconds", "search_seconds", "train_seconds"]

MLP_STUDY = {
    "name": "batched",
    "datasets": ["digits"],
    "models": [{"name": "mlp", "widths": [16, 16]}],
    "methods": {"random": {"scope": "global"}, "magnitude": {}, "snip": {}},
    "ablations": ["shuffle", "reinit"],
    "densities": [0.2, 0.5],
    "seeds": [0],
    "train": {"epochs": 2, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4,
              "schedule": "cosine"},
    "analysis": {"null_samples": 0, "kinds": ["jaccard"]},
    "dense_reference": False,
}


def _trained(out: Path) -> dict[str, str]:
    with sqlite3.connect(out / "study.db") as c:
        rows = c.execute("SELECT id, results FROM cells WHERE status = 'done'").fetchall()
    import json

    return {i: json.loads(r).get("trained", "") for i, r in rows}


def _masks_equal(a: Path, b: Path, ids: list[str]) -> None:
    for cid in ids:
        ta = gt.Ticket.load(a / "tickets" / f"{cid}.safetensors")
        tb = gt.Ticket.load(b / "tickets" / f"{cid}.safetensors")
        assert set(ta.masks) == set(tb.masks)
        assert all(bool((ta.masks[k] == tb.masks[k]).all()) for k in ta.masks), cid


def test_train_key_groups_every_method_and_ablation_at_one_density_and_seed() -> None:
    cells = expand(load_config(MLP_STUDY))
    keys = {train_key(c.config) for c in cells}
    assert len(keys) == 2  # two densities, one seed
    for d in (0.2, 0.5):
        group = [c for c in cells if c.density == d]
        assert len({train_key(c.config) for c in group}) == 1 and len(group) == 9  # 3 methods x (1 + 2 ablations)


def test_siblings_train_on_their_own_batches_so_each_replicate_is_its_own_group() -> None:
    cells = expand(load_config({**MLP_STUDY, "replicates": 2}))
    keys = {(c.density, c.replicate): train_key(c.config) for c in cells}
    assert len(set(keys.values())) == 4  # two densities x two replicates
    for d in (0.2, 0.5):
        assert keys[(d, 0)] != keys[(d, 1)]
        assert len({train_key(c.config) for c in cells if c.density == d and c.replicate == 1}) == 1


def test_batched_study_equals_one_by_one_within_float32(tmp_path: Path) -> None:
    seq = run(MLP_STUDY, tmp_path / "seq", batched=False, progress=False, report=False)
    bat = run(MLP_STUDY, tmp_path / "bat", progress=False, report=False)
    assert seq.done == bat.done == 18 and seq.failed == bat.failed == 0
    a, b = seq.tickets.set_index("id"), bat.tickets.set_index("id").loc[seq.tickets["id"]]
    # training does not change a mask: masks and every graph metric are identical
    _masks_equal(tmp_path / "seq", tmp_path / "bat", list(a.index))
    metric_cols = [c for c in a.columns if c.startswith(("layered.", "bipartite.", "relational.", "layer."))]
    pd.testing.assert_frame_equal(a[metric_cols], b[metric_cols], check_exact=True)
    assert np.abs(a["accuracy"].to_numpy() - b["accuracy"].to_numpy()).max() <= 0.002
    assert np.abs(a["loss"].to_numpy() - b["loss"].to_numpy()).max() <= 1e-3
    # method cells train 3 together per density, then ablation cells 6 together
    how_seq, how_bat = _trained(tmp_path / "seq"), _trained(tmp_path / "bat")
    assert all(v == "" for v in how_seq.values())  # one-by-one: the path of before, nothing recorded
    variants = set(bat.tickets.loc[bat.tickets["variant"] != "", "id"])
    assert {how_bat[i] for i in how_bat if i not in variants} == {"batched K=3"}
    assert {how_bat[i] for i in variants} == {"batched K=6"}
    pd.testing.assert_frame_equal(seq.distances, bat.distances, check_exact=True)  # jaccard: masks only


def test_group_function_against_run_cell_and_a_failing_cell_fails_alone() -> None:
    cells = [c for c in expand(load_config(MLP_STUDY)) if c.density == 0.5 and not c.variant]
    bad = {**cells[0].config, "method": {**cells[0].config["method"], "name": "no_such_method"}}
    configs = [c.config for c in cells] + [bad]
    ids = [c.id for c in cells] + ["bad"]
    outs = run_cells_batched_safe(configs, ids)
    assert [o.id for o in outs] == ids
    assert not outs[-1].ok and "no_such_method" in str(outs[-1].error)
    for c, o in zip(cells, outs, strict=False):
        alone = run_cell(c.config, cell_id=c.id)
        assert o.ok and o.results["trained"] == "batched K=3"
        assert o.ticket is not None and alone.ticket is not None and o.trained is not None and alone.trained is not None
        assert all(bool((o.ticket.masks[k] == alone.ticket.masks[k]).all()) for k in alone.ticket.masks)
        assert abs(o.results["accuracy"] - alone.results["accuracy"]) <= 0.002
        # final weights of the trained networks: float32 rounding apart (2 epochs of SGD + momentum, cosine)
        assert alone.trained.weights is not None and o.trained.weights is not None
        for k, w in alone.trained.weights.items():
            assert np.allclose(o.trained.weights[k].numpy(), w.numpy(), rtol=1e-4, atol=1e-5), (c.method, k)
        for ea, eb in zip(alone.results["history"], o.results["history"], strict=True):
            assert abs(ea["loss"] - eb["loss"]) < 1e-4 and ea["iterations"] == eb["iterations"]


def test_conv_model_cells_train_stacked_with_the_one_by_one_results(tmp_path: Path) -> None:
    """Conv cells of one group train together on the stacked conv engine (issue 28), same tables."""
    cfg = {**MLP_STUDY, "name": "conv", "models": [{"name": "conv2", "width": 0.125}],
           "ablations": [], "densities": [0.3], "train": {"epochs": 1}}
    seq = run(cfg, tmp_path / "seq", batched=False, progress=False, report=False)
    bat = run(cfg, tmp_path / "bat", progress=False, report=False)
    assert seq.done == bat.done == 3
    stable = [c for c in seq.tickets.columns if c not in TIMING]
    pd.testing.assert_frame_equal(seq.tickets[stable], bat.tickets[stable], check_exact=True)
    how = set(_trained(tmp_path / "bat").values())
    assert how == {"batched K=3"}


def test_resume_runs_only_the_failed_cell_of_a_batched_group(tmp_path: Path, flaky_method: str) -> None:
    cfg = {**MLP_STUDY, "methods": [flaky_method, "random", "magnitude"], "ablations": [], "densities": [0.5]}
    first = run(cfg, tmp_path / "out", progress=False, report=False)
    assert (first.done, first.failed) == (2, 1)
    before = _trained(tmp_path / "out")
    assert set(before.values()) == {"batched K=2"}  # the failed cell's partners trained together
    again = run(cfg, tmp_path / "out", progress=False, report=False)
    assert (again.ran, again.done, again.failed) == (1, 3, 0)
    after = _trained(tmp_path / "out")
    assert {k: v for k, v in after.items() if k in before} == before  # finished cells untouched
    assert [v for k, v in after.items() if k not in before] == ["alone: one cell"]
