"""The transfer axis (issue 25): tickets found on one task, trained from the same initial weights and
tested on another; its config checks, its cells and ids, and the transfer section."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from graphtickets import data
from graphtickets.errors import ConfigError
from graphtickets.study import run
from graphtickets.study.config import load_config
from graphtickets.study.grid import expand
from graphtickets.study.store import Store

PERM = {"name": "digits", "label_perm": 1}
TINY: dict[str, Any] = {
    "name": "tiny-transfer",
    "datasets": ["digits", PERM],
    "models": [{"name": "mlp", "widths": [16]}],
    "methods": {"random": {}, "magnitude": {}, "snip": {}},
    "densities": [0.3],
    "seeds": [0, 1],
    "train": {"epochs": 1},
    "dense_reference": False,
    "analysis": {"null_samples": 0},
    "transfer": {"found_on": ["digits", PERM], "trained_on": ["digits", PERM]},
}


def _config(**over: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(TINY)
    cfg.update(over)
    return cfg


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("transfer")
    run(_config(), out, workers=1, progress=False)
    return out


def test_cells_without_transfer_keep_their_ids() -> None:
    plain = _config()
    del plain["transfer"]
    before = expand(load_config(plain))
    after = expand(load_config(_config()))
    assert [c.id for c in after[: len(before)]] == [c.id for c in before]
    assert all("transfer" not in c.config for c in before)
    moved = after[len(before):]
    # snip is the one data-driven method: one transfer cell per seed and ordered pair of tasks
    assert sorted((c.base_method, c.found_on, c.dataset, c.seed) for c in moved) == sorted(
        ("snip", x, y, s) for x, y in (("digits", "digits[label_perm=1]"), ("digits[label_perm=1]", "digits"))
        for s in (0, 1))
    ids = {c.id: c for c in after}
    for c in moved:  # the ticket comes from the found-on task's own cell
        base = ids[c.base]
        assert (base.dataset, base.base_method, base.seed, base.found_on) == (c.found_on, c.base_method, c.seed, "")


@pytest.mark.parametrize(("transfer", "match"), [
    ({"found_on": ["mnist1d"], "trained_on": ["digits"]}, "not one of the study's datasets"),
    ({"found_on": ["digitz"], "trained_on": ["digits"]}, "unknown dataset"),
    ({"found_on": [{"name": "digits", "label_perm": 1, "shufle": True}], "trained_on": ["digits"]}, "takes no argument"),
    ({"found_on": ["digits"], "trained_on": ["digits"]}, "no pair of different tasks"),
    ({"found_on": ["digits"], "trained_on": [{"name": "digits", "classes": [0, 1]}]}, "differ"),
    ({"found_on": ["digits"]}, "trained_on"),
])
def test_bad_transfer_is_one_config_error(tmp_path: Path, transfer: dict[str, Any], match: str) -> None:
    cfg = _config(transfer=transfer, datasets=["digits", PERM, {"name": "digits", "classes": [0, 1]}])
    with pytest.raises(ConfigError, match=match):
        run(cfg, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()  # nothing written


def test_transfer_cells_train_and_test_on_their_task(study: Path) -> None:
    cells = expand(load_config(_config()))
    with Store(study) as store:
        done = store.done_ids()
        assert all(c.id in done for c in cells)
        for c in (c for c in cells if c.found_on):
            ticket, base = store.load_ticket(c.id), store.load_ticket(str(c.base))
            assert all(torch.equal(ticket.masks[n], base.masks[n]) for n in base.masks)  # X's very ticket
            row = store.cells([c.id]).iloc[0]
            assert row["results"]["transfer"] == {"found_on": c.found_on, "trained_on": c.dataset}
            own = next(o for o in cells if (o.dataset, o.base_method, o.seed, o.found_on) ==
                       (c.dataset, c.base_method, c.seed, ""))
            # the same mask, trained on Y from the same initial weights with Y's batches, tested on Y,
            # gives what Y's own cell gives with X's mask: checked by running it here by hand
            from graphtickets import training
            from graphtickets.study.cell import _Context
            ctx = _Context.of(c.spec, root=None, download=False, device="cpu")
            assert ctx.dataset == c.dataset
            net = ctx.build()
            ticket.apply(net)
            training.train(net, ctx.batches(ctx.batch_size), masks=ticket, settings=ctx.train,
                           device="cpu", seed=ctx.train_seed)
            acc = training.evaluate(net, ctx.test_batches, masks=ticket)["accuracy"]
            assert acc == pytest.approx(row["results"]["accuracy"], abs=1e-6)
            assert own.id != c.id


def test_label_permuted_task_has_other_labels() -> None:
    a, b = data.load("digits", split="test"), data.load("digits", split="test", label_perm=1)
    xa, ya = a.tensors if hasattr(a, "tensors") else (a[:][0], a[:][1])
    xb, yb = b.tensors if hasattr(b, "tensors") else (b[:][0], b[:][1])
    assert torch.equal(xa, xb) and not torch.equal(ya, yb)


def test_data_free_masks_equal_on_every_task(study: Path) -> None:
    cells = expand(load_config(_config()))
    with Store(study) as store:
        for m in ("random", "magnitude"):
            for s in (0, 1):
                own = [c for c in cells if c.base_method == m and c.seed == s and not c.found_on]
                assert len(own) == 2
                a, b = (store.load_ticket(c.id) for c in own)
                assert all(torch.equal(a.masks[n], b.masks[n]) for n in a.masks)


def test_transfer_section_tables(study: Path) -> None:
    tr = pd.read_csv(study / "tables" / "transfer.csv")
    assert {"method", "density", "found_on", "trained_on", "mean", "n", "gap"} <= set(tr.columns)
    snip = tr[(tr["method"] == "snip")]
    assert len(snip) == 4 and (snip["n"] == 2).all()
    tk = pd.read_csv(study / "tables" / "tickets.csv")
    assert "found_on" not in tk.columns or tk["found_on"].isna().all()  # transfer rows are apart
    # the Y->Y mean is the own cells' mean accuracy on Y
    for y in ("digits", "digits[label_perm=1]"):
        own = tk[(tk["dataset"] == y) & (tk["method"] == "snip")]["accuracy"].mean()
        cell = snip[(snip["found_on"] == y) & (snip["trained_on"] == y)]
        assert float(cell["mean"].iloc[0]) == pytest.approx(own)
    free = tr[tr["method"] == "random"]
    assert free["same_mask"].all() and free["gap"].isna().all()  # the report says so, not a gap of 0
    tests = pd.read_csv(study / "tables" / "tests.csv")
    assert (tests["section"] == "transfer").any() and np.isfinite(tests.loc[tests["section"] == "transfer", "q"]).any()
    report = (study / "report.md").read_text()
    assert "Transfer" in report and "same mask" in report


def test_gap_and_distance_by_hand(study: Path) -> None:
    import graphtickets as gt
    from graphtickets.study.sections import transfer as sec

    cells = expand(load_config(_config()))
    tr = pd.read_csv(study / "tables" / "transfer.csv")
    same = pd.read_csv(study / "tables" / "transfer_same.csv")
    with Store(study) as store:
        rows = store.cells().set_index("id")
        acc = {c.id: rows.loc[c.id, "results"]["accuracy"] for c in cells}
        x, y = "digits", "digits[label_perm=1]"
        own = {c.seed: c for c in cells if (c.base_method, c.dataset, c.found_on) == ("snip", y, "")}
        moved = {c.seed: c for c in cells if (c.base_method, c.dataset, c.found_on) == ("snip", y, x)}
        gaps = [acc[own[s].id] - acc[moved[s].id] for s in (0, 1)]
        row = tr[(tr["method"] == "snip") & (tr["found_on"] == x) & (tr["trained_on"] == y)].iloc[0]
        assert row["gap"] == pytest.approx(np.mean(gaps))
        from scipy import stats
        assert row["p"] == pytest.approx(stats.ttest_rel([acc[own[s].id] for s in (0, 1)],
                                                         [acc[moved[s].id] for s in (0, 1)]).pvalue)
        fx = {c.seed: c for c in cells if (c.base_method, c.dataset, c.found_on) == ("snip", x, "")}
        model = gt.models.build("mlp", in_shape=(1, 8, 8), num_classes=10, widths=[16])
        d = [gt.analysis.distance(store.load_ticket(fx[s].id), store.load_ticket(own[s].id), "jaccard", model=model)
             for s in (0, 1)]
    r = same[(same["method"] == "snip")].iloc[0]
    assert r["distance"] == pytest.approx(np.mean(d))
    assert 1 / (1 + sec.NULL_DRAWS) <= r["p"] <= 1 and r["draws"] == sec.NULL_DRAWS


def test_no_transfer_no_section(tmp_path: Path) -> None:
    from graphtickets.study.sections import Context
    from graphtickets.study.sections import transfer as sec

    plain = _config()
    del plain["transfer"]
    ctx = Context(out=tmp_path, tickets=pd.DataFrame({"method": ["snip"]}), distances=pd.DataFrame(),
                  store=object(), study=load_config(plain))
    assert sec.compute(ctx) == {}


def test_bundled_transfer_study() -> None:
    from graphtickets.pruning import METHODS
    from graphtickets.study.config import default_config_path

    root = Path(__file__).resolve().parents[1] / "benchmarks" / "studies"
    assert (default_config_path().parent / "transfer.yaml").read_text() == (root / "transfer.yaml").read_text()
    study = load_config("transfer")  # `graphtickets run transfer` finds the packaged copy
    assert study.name == "transfer" and study.transfer is not None
    assert {m.name for m in study.methods} == {n for n, s in METHODS.items() if s.family != "derived"}
    assert study.densities == [0.2, 0.05] and len(study.seeds) == 3
    tasks = [d.name for d in study.datasets]
    assert tasks[0] == "mnist1d" and "mnist1d[shuffle_seq]" in tasks and len(tasks) == 3
    assert set(study.transfer.found_on) == set(study.transfer.trained_on) == set(tasks)
    cells = expand(study)
    moved = [c for c in cells if c.found_on]
    free = {"random", "magnitude", "synflow", "smart_ratio"}
    assert not {c.base_method for c in moved} & free
    assert len(moved) == (len(study.methods) - len(free)) * 6 * 2 * 3
