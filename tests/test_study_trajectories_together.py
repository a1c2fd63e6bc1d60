"""IMP trajectories of one architecture run together in a study (issue 28 item 2, in the study).

Held against the one-by-one path (``batched=False``: each trajectory alone, as before): the
same rounds and masks (to float32 near-ties at the magnitude cut), one job per (method, model)
whatever the number of seeds and replicates, and trajectories of other models stay apart.
"""

from __future__ import annotations

from pathlib import Path

import graphtickets as gt
from graphtickets.study import expand, load_config, run
from graphtickets.study.cell import run_trajectories_together, run_trajectory
from graphtickets.study.grid import trajectories
from graphtickets.study.runner import _trajectory_jobs

STUDY = {
    "name": "traj_together",
    "datasets": ["digits"],
    "models": [{"name": "mlp", "widths": [12]}, {"name": "mlp", "widths": [10]}],
    "methods": {"imp": {"rate": 0.5, "epochs": 1}, "random": {}},
    "densities": [0.5, 0.25],
    "seeds": [0, 1],
    "replicates": 2,
    "train": {"epochs": 1, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9},
    "analysis": {"null_samples": 0, "kinds": ["jaccard"]},
    "dense_reference": False,
}


def _flips(a: gt.Ticket, b: gt.Ticket) -> float:
    return sum(int((a.masks[k] != b.masks[k]).sum()) for k in a.masks) / max(b.kept, 1)


def test_jobs_group_seeds_and_replicates_of_one_model_only() -> None:
    units = {t.id: t for t in trajectories(expand(load_config(STUDY)))}
    assert len(units) == 8  # 2 models x 2 seeds x 2 replicates
    jobs = _trajectory_jobs(units, together=True)
    assert sorted(len(ids) for _, ids in jobs) == [4, 4]
    for _, ids in jobs:
        assert len({units[i].spec.model.config()["widths"][0] for i in ids}) == 1
    assert _trajectory_jobs(units, together=False) == [(i, [i]) for i in units]


def test_together_equals_each_alone() -> None:
    units = [t for t in trajectories(expand(load_config(STUDY))) if t.spec.model.config()["widths"] == [12]]
    together = run_trajectories_together([t.spec for t in units])
    for t, got in zip(units, together, strict=True):
        alone = run_trajectory(t.spec)
        assert sorted(got) == sorted(alone) == [0.25, 0.5]
        for d in alone:
            assert got[d].kept == alone[d].kept
            assert _flips(got[d], alone[d]) <= 0.02, (t.label, d)
            assert got[d].meta["trained_together"], t.label


def test_study_batched_trajectories_match_one_by_one(tmp_path: Path) -> None:
    seq = run(STUDY, tmp_path / "seq", batched=False, progress=False, report=False)
    bat = run(STUDY, tmp_path / "bat", progress=False, report=False)
    assert seq.failed == bat.failed == 0 and seq.done == bat.done
    imp = seq.tickets.loc[seq.tickets["method"] == "imp", "id"]
    assert len(imp) == 16  # 2 models x 2 densities x 2 seeds x 2 replicates
    for cid in imp:
        a = gt.Ticket.load(tmp_path / "seq" / "tickets" / f"{cid}.safetensors")
        b = gt.Ticket.load(tmp_path / "bat" / "tickets" / f"{cid}.safetensors")
        assert a.kept == b.kept and _flips(a, b) <= 0.02, cid
