"""Typed cells (issue 29): ``expand`` yields frozen CellSpecs whose canonical content keeps every cell id.

A finished study resumes with nothing recomputed only if every cell's id is the one it had:
the ids below were recorded on main before the cells became typed (the same canonical JSON
hashed), and ``CellSpec.from_config`` reads every canonical config back to the same spec.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from graphtickets.errors import GraphticketsError
from graphtickets.study.config import load_config
from graphtickets.study.grid import cell_id, expand, trajectories
from graphtickets.study.spec import (
    TICKET_SOURCES,
    CellSpec,
    Dense,
    Derived,
    FromSource,
    FromTrajectory,
    Imported,
    Own,
    TrajectorySpec,
)
from graphtickets.training import TrainSettings, train, train_many

ROOT = Path(__file__).resolve().parents[1]

#: Recorded on main (before the typed cells): quick.yaml's cells, by method, and its trajectories.
QUICK_IDS = {
    "random": "36a539c7ab8e529a", "magnitude": "eb66de3fe8e0aa03", "snip": "45b610796f0edd12",
    "synflow": "e5472013a83ce3a3", "imp": "7987bb7aaa00c4b0", "elastic": "8cf67fa75f435bac",
    "dense": "f6b6739664b7dd82",
}
QUICK_TRAJECTORIES = ["47f22b31ec88b622", "ba61378ce3d05526"]
#: The default study's cells: (method, density, seed, replicate) -> id, recorded on main.
DEFAULT_IDS = {
    ("snip", 0.05, 0, 0): "6c0d87a7ca486fa5", ("imp", 0.05, 0, 0): "33952043cc7fbd1c",
    ("early_bird", 0.05, 0, 0): "bd3577dc09b8be79", ("gem_miner", 0.05, 0, 0): "1bdda03c5067b02c",
    ("elastic", 0.05, 0, 0): "6e2110526adbd2a9", ("imp", 0.05, 0, 1): "508ac9153654c238",
    ("elastic", 0.05, 0, 1): "140af6c657f8d768", ("snip+shuffle", 0.05, 0, 0): "c575ee6712307597",
    ("random", 0.2, 0, 1): "a0564e5deda8f7ec",
}
DEFAULT_TRAJECTORIES = ["70db704aa89dd83c", "25c9b466e6ec6f00"]


def test_quick_study_cell_ids_are_pinned() -> None:
    cells = expand(load_config(ROOT / "benchmarks" / "studies" / "quick.yaml"))
    assert {c.method: c.id for c in cells} == QUICK_IDS
    assert [t.id for t in trajectories(cells)] == QUICK_TRAJECTORIES


def test_default_study_cell_ids_are_pinned() -> None:
    cells = expand(load_config(None))
    ids = {(c.method, c.density, c.seed, c.replicate): c.id for c in cells}
    assert {k: ids[k] for k in DEFAULT_IDS} == DEFAULT_IDS
    assert [t.id for t in trajectories(cells)][:2] == DEFAULT_TRAJECTORIES


@pytest.mark.parametrize("config", [None, ROOT / "benchmarks" / "studies" / "quick.yaml"])
def test_every_cell_reads_back_from_its_canonical_config(config: Path | None) -> None:
    for c in expand(load_config(config)):
        spec = CellSpec.from_config(c.config)
        assert spec == c.spec and spec.config() == c.config and cell_id(spec.config()) == c.id
        tc = c.spec.trajectory()
        if tc is not None:
            assert TrajectorySpec.from_config(tc.config()) == tc


def test_each_ticket_source_kind_appears_where_the_config_says(tmp_path: Path) -> None:
    (tmp_path / "t_d0.5_s0.npz").write_bytes(b"not read by expand; only hashed")
    study = load_config({
        "name": "kinds", "datasets": ["digits"], "models": [{"name": "mlp", "widths": [8]}], "densities": [0.5],
        "methods": {"random": {}, "imp": {"epochs": 1}, "elastic": {"source": {"method": "snip", "model": {"widths": [8, 8]}}},
                    "other": {"import": {"files": str(tmp_path / "t_d{density}_s{seed}.npz"), "kind": "masks"}},
                    "consensus": {"built_from": "same_init"}},
        "ablations": ["shuffle"], "replicates": 2,
    })
    cells = expand(study)
    kinds = {c.method: type(c.spec.ticket) for c in cells if c.replicate == 0}
    assert kinds == {"random": Own, "imp": FromTrajectory, "elastic": FromSource, "other": Imported, "dense": Dense,
                     "random+shuffle": Own, "imp+shuffle": FromTrajectory, "elastic+shuffle": FromSource,
                     "other+shuffle": Imported, "consensus": Derived, "consensus+shuffle": Derived}
    assert set(kinds.values()) == set(TICKET_SOURCES)
    for c in cells:
        assert CellSpec.from_config(c.config) == c.spec and cell_id(c.spec.config()) == c.id
    other = next(c for c in cells if c.method == "other")
    assert isinstance(other.spec.ticket, Imported) and other.spec.ticket.path(0.5, 0).endswith("t_d0.5_s0.npz")
    # a sibling is its cell plus the replicate; an ablation its cell plus the kind
    # a derived cell names its sources: the non-baseline methods' cells of its density and seed
    cons = next(c for c in cells if c.method == "consensus" and c.replicate == 0)
    by_id = {c.id: c for c in cells}
    assert isinstance(cons.spec.ticket, Derived) and not cons.spec.ticket.held_out
    assert sorted(by_id[i].method for i in cons.spec.ticket.sources) == ["elastic", "imp", "other"]
    snip_src = next(c for c in cells if c.method == "elastic" and c.replicate == 1)
    assert snip_src.config["replicate"] == 1 and snip_src.spec.trajectory() is None  # snip has no trajectory


def test_cell_specs_are_frozen_and_an_unknown_key_is_refused() -> None:
    (cell, *_) = expand(load_config(ROOT / "benchmarks" / "studies" / "quick.yaml"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cell.spec.density = 0.5  # type: ignore[misc]
    with pytest.raises(GraphticketsError, match="unknown keys surprise"):
        CellSpec.from_config({**cell.config, "surprise": 1})
    with pytest.raises(GraphticketsError, match="format"):
        CellSpec.from_config({**cell.config, "format": "graphtickets.cell/0"})


def _net_and_data() -> tuple[nn.Module, list[Any], dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(8, 4, generator=g), torch.randint(0, 2, (8,), generator=g)) for _ in range(3)]
    net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    mask = {"0.weight": torch.rand(6, 4, generator=g) > 0.5}
    return net, data, mask


def test_train_takes_the_settings_whole_or_as_keywords_with_the_same_result() -> None:
    kw: dict[str, Any] = {"epochs": 3, "optimizer": "adam", "lr": 0.01, "weight_decay": 1e-4, "schedule": "cosine"}
    a, data, mask = _net_and_data()
    b = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    b.load_state_dict(a.state_dict())
    ha = train(a, data, masks=mask, seed=1, **kw)
    hb = train(b, data, masks=mask, seed=1, settings=TrainSettings(**kw))
    assert [e["loss"] for e in ha.epochs] == [e["loss"] for e in hb.epochs]
    assert all(torch.equal(pa, pb) for pa, pb in zip(a.parameters(), b.parameters(), strict=True))
    nets = [nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    (h1,) = train_many([nets[0]], data, masks=[mask], seed=1, **kw)
    (h2,) = train_many([nets[1]], data, masks=[mask], seed=1, settings=TrainSettings(**kw))
    assert [e["loss"] for e in h1.epochs] == [e["loss"] for e in h2.epochs]


def test_settings_and_a_keyword_of_another_value_are_not_mixed() -> None:
    net, data, mask = _net_and_data()
    with pytest.raises(GraphticketsError, match="either whole .* lr"):
        train(net, data, masks=mask, settings=TrainSettings(epochs=1), lr=0.5)
    with pytest.raises(GraphticketsError, match="either whole .* epochs"):
        train_many([net], data, settings=TrainSettings(), epochs=2)
    with pytest.raises(GraphticketsError, match="must be a TrainSettings"):
        train(net, data, settings={"epochs": 1})  # type: ignore[arg-type]
