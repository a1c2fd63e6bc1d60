"""Imported tickets as a "method" of a study (``methods.<name>.import``): config form, checks, a run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

import graphtickets as gt
from graphtickets.errors import ConfigError
from graphtickets.study import run
from graphtickets.study.cell import derived_seed
from graphtickets.study.config import load_config
from graphtickets.study.grid import expand

SEEDS = [0, 1]


def _tiny(files: object, **imp: object) -> dict:
    return {
        "name": "tiny_import",
        "datasets": ["digits"],
        "models": [{"name": "mlp", "widths": [16, 16]}],
        "methods": {"magnitude": {}, "other_tool": {"import": {"files": files, **imp}}},
        "densities": [0.2],
        "seeds": SEEDS,
        "train": {"epochs": 1},
        "analysis": {"null_samples": 2, "kinds": ["jaccard", "hamming"]},
        "dense_reference": False,
    }


def _write_magnitude_tickets(folder: Path) -> dict[int, gt.Ticket]:
    """The tickets the study's magnitude cells find, written as sparse state dicts (another tool's output)."""
    info = gt.data.info("digits")
    out = {}
    for seed in SEEDS:
        model = gt.models.build("mlp", in_shape=info.in_shape, num_classes=info.num_classes, widths=[16, 16], seed=seed)
        t = gt.pruning.prune(model, "magnitude", density=0.2, seed=derived_seed(seed, "prune:magnitude"))
        torch.save(t.to_state_dict(model), folder / f"other_d0.2_s{seed}.pt")
        out[seed] = t
    return out


def test_imported_tickets_run_like_the_method_that_made_them(tmp_path: Path) -> None:
    made = _write_magnitude_tickets(tmp_path)
    res = run(_tiny(str(tmp_path / "other_d{density}_s{seed}.pt")), tmp_path / "out", progress=False)
    assert (res.done, res.failed) == (4, 0)
    tk = pd.read_csv(tmp_path / "out" / "tables" / "tickets.csv").sort_values(["seed", "method"])
    assert sorted(set(tk["method"])) == ["magnitude", "other_tool"]
    for seed in SEEDS:
        rows = tk[tk["seed"] == seed].set_index("method")
        ours = gt.Ticket.load(tmp_path / "out" / "tickets" / f"{rows.loc['other_tool', 'id']}.safetensors")
        assert ours.method == "other_tool"
        assert all(torch.equal(ours.masks[n], m) for n, m in made[seed].masks.items())  # the file's masks, exactly
        # same masks, same initial weights, same training seed: the same trained accuracy and graphs
        assert rows.loc["other_tool", "accuracy"] == rows.loc["magnitude", "accuracy"]
        assert rows.loc["other_tool", "layered.effective_fraction"] == rows.loc["magnitude", "layered.effective_fraction"]
        assert rows.loc["other_tool", "relational.clustering"] == rows.loc["magnitude", "relational.clustering"]
    dist = pd.read_csv(tmp_path / "out" / "tables" / "distances.csv")
    jac = dist[(dist["kind"] == "jaccard")]
    assert len(jac) == len(SEEDS) and (jac["value"] == 0.0).all()  # each imported ticket equals magnitude's


def test_import_paths_relative_to_the_config_file_and_mapping_form(tmp_path: Path) -> None:
    _write_magnitude_tickets(tmp_path)
    cfg = _tiny({0.2: {0: "other_d0.2_s0.pt", 1: "other_d0.2_s1.pt"}}, kind="state_dict")
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(cfg))
    study = load_config(tmp_path / "study.yaml")
    cells = [c for c in expand(study) if c.method == "other_tool"]
    assert [c.config["method"]["import"]["files"]["0.2"][str(c.seed)] for c in cells] == [
        str(tmp_path.resolve() / f"other_d0.2_s{s}.pt") for s in SEEDS
    ]
    # a replaced file is another ticket: the cell ids change
    before = {c.id for c in cells}
    torch.save({"fc1.weight": torch.zeros(1)}, tmp_path / "other_d0.2_s1.pt")
    after = {c.id for c in expand(load_config(tmp_path / "study.yaml")) if c.method == "other_tool"}
    assert before != after


@pytest.mark.parametrize(
    ("files", "extra", "match"),
    [
        ("nowhere_d{density}_s{seed}.pt", {}, r"methods\.other_tool\.import: file of density 0\.2, seed 0: .*does not exist"),
        ({0.2: {0: "x.pt"}}, {}, r"lists no file for density 0\.2, seed 1"),
        ("t_{dens}.pt", {}, r"not a template of \{density\} and \{seed\}"),
        ("x.pt", {"kind": "pickle"}, r"kind"),
    ],
)
def test_import_config_errors_name_the_key_and_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       files: object, extra: dict, match: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.pt").write_bytes(b"")
    with pytest.raises(ConfigError, match=match):
        load_config(_tiny(files, **extra))


def test_import_refuses_builtin_names_and_method_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write_magnitude_tickets(tmp_path)
    cfg = _tiny("other_d{density}_s{seed}.pt")
    cfg["methods"] = {"snip": {"import": {"files": "other_d{density}_s{seed}.pt"}}}
    with pytest.raises(ConfigError, match=r"methods\.snip: 'snip' is a built-in method; give the imported"):
        load_config(cfg)
    cfg["methods"] = {"other": {"epochs": 2, "import": {"files": "other_d{density}_s{seed}.pt"}}}
    with pytest.raises(ConfigError, match=r"take only import: .*remove hyperparameters epochs"):
        load_config(cfg)
    cfg["methods"] = {"other": {"import": {"files": "other_d{density}_s{seed}.pt"}}}
    assert load_config(cfg).methods[0].imported is not None
    (tmp_path / "d").mkdir()
    cfg["methods"] = {"other": {"import": {"files": "d"}}}
    with pytest.raises(ConfigError, match=r"'.*d' is not a file"):
        load_config(cfg)
