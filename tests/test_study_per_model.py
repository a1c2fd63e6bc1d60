"""Per-model settings of a study (``models[i].methods``, ``models[i].train``): syntax, merge rules, errors, cells."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from graphtickets.errors import ConfigError
from graphtickets.study import expand, load_config
from graphtickets.study.config import MethodConfig, SourceConfig, merge_method

TWO: dict[str, Any] = {
    "name": "two",
    "datasets": ["mnist1d"],
    "models": [
        {"name": "mlp", "widths": [16, 16]},
        {"name": "resnet1d", "depth": 8, "widths": [4, 8, 8], "train": {"epochs": 3, "lr": 0.05},
         "methods": {"early_bird": {"model": {}}, "elastic": {"source": {"model": {"depth": 14}}}}},
    ],
    "methods": {
        "random": {},
        "imp": {"epochs": 1, "regime": "study"},
        "early_bird": {"epochs": 3, "model": {"batchnorm": True}},
        "elastic": {"source": {"method": "imp", "model": {"widths": [16, 16, 16]}, "hparams": {"rate": 0.5},
                               "regime": "study"}},
    },
    "densities": [0.2],
    "seeds": [0],
    "train": {"epochs": 2, "optimizer": "sgd", "lr": 0.1},
}


def _two(change: Any = None) -> dict[str, Any]:
    c = copy.deepcopy(TWO)
    if change is not None:
        change(c)
    return c


def _cells(cfg: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c.model, c.method): c.config for c in expand(load_config(cfg))}


def test_each_model_gets_its_own_method_settings_and_training() -> None:
    cells = _cells(TWO)
    mlp, res = "mlp(16,16)", "resnet1d(depth=8;4,8,8)"
    # MLP: the study-level entries
    assert cells[(mlp, "early_bird")]["method"]["model"] == {"batchnorm": True}
    assert cells[(mlp, "elastic")]["method"]["source"]["model"] == {"widths": [16, 16, 16]}
    assert cells[(mlp, "random")]["train"]["epochs"] == 2 and cells[(mlp, "random")]["train"]["lr"] == 0.1
    # resnet1d: the variant removed (it has BatchNorm), the source a deeper resnet1d, rate kept (merged)
    assert "model" not in cells[(res, "early_bird")]["method"]
    assert cells[(res, "early_bird")]["method"]["hparams"] == {"epochs": 3}
    src = cells[(res, "elastic")]["method"]["source"]
    assert src["model"] == {"depth": 14} and src["method"] == "imp" and src["hparams"]["rate"] == 0.5
    # its own training: every cell, and the methods following the study's regime (IMP, elastic's source)
    for m in ("random", "imp", "early_bird", "elastic", "dense"):
        t = cells[(res, m)]["train"]
        assert (t["epochs"], t["lr"], t["optimizer"]) == (3, 0.05, "sgd"), m
    assert cells[(res, "imp")]["method"]["hparams"]["lr"] == 0.05 and src["hparams"]["lr"] == 0.05
    assert cells[(res, "imp")]["method"]["hparams"]["epochs"] == 1  # set by the method: kept
    assert cells[(mlp, "imp")]["method"]["hparams"]["lr"] == 0.1


def test_a_model_without_settings_keeps_its_cell_ids() -> None:
    alone = {**copy.deepcopy(TWO), "models": [TWO["models"][0]]}
    ids_alone = {c.id for c in expand(load_config(alone))}
    ids_two = {c.id for c in expand(load_config(TWO)) if c.model == "mlp(16,16)"}
    assert ids_alone == ids_two


def test_hyperparameters_merge_model_replaces_source_merges() -> None:
    m = MethodConfig(name="early_bird", hparams={"epochs": 3, "window": 5}, model={"batchnorm": True})
    r = merge_method(m, {"window": 4, "model": {"widths": [8]}})
    assert r.hparams == {"epochs": 3, "window": 4} and r.model == {"widths": [8]}  # model replaced whole
    assert merge_method(m, {"model": {}}).model == {}
    e = MethodConfig(name="elastic", source=SourceConfig(model={"widths": [8, 8, 8]}, hparams={"rate": 0.5, "epochs": 2}))
    r = merge_method(e, {"source": {"hparams": {"epochs": 4}, "regime": "study"}})
    assert r.source is not None
    assert (r.source.model, r.source.hparams, r.source.regime) == ({"widths": [8, 8, 8]}, {"rate": 0.5, "epochs": 4}, "study")
    other = merge_method(e, {"source": {"method": "snip"}})  # another source method: a new source
    assert other.source is not None and (other.source.method, other.source.hparams, other.source.model) == ("snip", {}, {})


def test_false_leaves_a_method_out_for_one_model() -> None:
    cells = _cells(_two(lambda c: c["models"][1]["methods"].update(elastic=False)))
    assert ("resnet1d(depth=8;4,8,8)", "elastic") not in cells and ("mlp(16,16)", "elastic") in cells


def test_quick_wins_over_a_models_own_settings() -> None:
    cfg = _two(lambda c: c.update(quick={"methods": {"early_bird": {"epochs": 1}}}))
    cfg["models"][1]["methods"]["early_bird"]["epochs"] = 9
    q = load_config(cfg).apply_quick()
    res = q.models[1]
    assert q.train_for(res).epochs == 2  # min(model's 3, 2): quick's default cap applies to it too
    eb = next(m for m in q.methods_for(res) if m.name == "early_bird")
    assert eb.hparams["epochs"] == 1
    q2 = load_config(_two(lambda c: c.update(quick={"train": {"epochs": 1, "lr": 0.2}}))).apply_quick()
    assert (q2.train_for(q2.models[1]).epochs, q2.train_for(q2.models[1]).lr) == (1, 0.2)


@pytest.mark.parametrize("change, needles", [
    (lambda c: c["models"][1]["methods"].pop("early_bird"),
     ["methods.early_bird.model", "resnet1d", "batchnorm", "models[1] (resnet1d).methods.early_bird to change it"]),
    (lambda c: c["models"][1]["methods"].update(snip={}), ["models[1] (resnet1d).methods.snip", "not a method of this study"]),
    (lambda c: c["models"][1]["methods"].update(imp={"epochz": 1}), ["models[1] (resnet1d).methods.imp", "epochz"]),
    (lambda c: c["models"][1]["methods"].update(imp=3), ["methods", "imp", "mapping", "false"]),
    (lambda c: c["models"][1]["methods"].update(imp=True), ["imp", "mapping", "false"]),
    (lambda c: c["models"][1]["train"].update(lr=-1), ["train", "lr", "greater than 0"]),
    (lambda c: c["models"][1]["train"].update(lrr=1), ["train", "lrr", "unknown key"]),
    (lambda c: c["models"][1]["train"].update(epochs="3"), ["train", "epochs", "integer"]),
    (lambda c: c["models"][1]["train"].update(epochs=5000), ["models[1] (resnet1d).train.epochs", "above the limit"]),
    (lambda c: c["models"][1]["train"].update(optimizer="adamm"), ["train.optimizer", "adamm"]),
    (lambda c: c["models"][1]["methods"].update(random={"source": {"model": {}}}), ["methods.random.source", "only transform"]),
    (lambda c: c["models"][1]["methods"].update(elastic={"source": 3}), ["elastic.source", "mapping"]),
    (lambda c: c["models"][1]["methods"].update(elastic={"source": {"model": {"depth": 9}}}),
     ["models[1] (resnet1d).methods.elastic.source.model", "6n + 2"]),
    (lambda c: c["models"][1]["methods"].update(early_bird={"regime": "studyy"}),
     ["models[1] (resnet1d).methods.early_bird.regime"]),
    (lambda c: c["models"][1]["methods"].update(random={"import": {"files": "x"}}), ["import", "per model"]),
    (lambda c: c["models"][1]["methods"].update(random=False, imp=False, early_bird=False, elastic=False),
     ["every method is left out"]),
    (lambda c: c["models"].append({"name": "mlp", "widths": [16, 16], "train": {"epochs": 1}}),
     ["models", "mlp(16,16)", "list it once"]),
    (lambda c: c["models"][1].update(methods=[1]), ["methods", "method: false"]),
])
def test_bad_per_model_settings_name_the_key_and_the_fix(change: Any, needles: list[str]) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(_two(change))
    msg = str(exc.value)
    for n in needles:
        assert n in msg, (n, msg)


def test_the_conv_benchmark_study_validates_and_covers_every_method_on_both_models() -> None:
    from pathlib import Path

    from graphtickets.pruning import METHODS

    study = load_config(Path(__file__).resolve().parent.parent / "benchmarks" / "studies" / "mnist1d_conv.yaml")
    assert len(study.models) == 2
    cells = expand(study)
    for mc in study.models:
        own = {c.method for c in cells if c.model == mc.label() and not c.variant and c.method != "dense"}
        assert own == {n for n, s in METHODS.items() if s.family != "derived"}, mc.label()
    res = next(mc for mc in study.models if mc.name == "resnet1d")
    eb = next(m for m in study.methods_for(res) if m.name == "early_bird")
    el = next(m for m in study.methods_for(res) if m.name == "elastic")
    assert not eb.model and el.source is not None and el.source.model.get("depth", 0) > res.kwargs()["depth"]
    assert study.replicates == 2 and study.ablations == ["shuffle", "reinit"]
    q = study.apply_quick()
    assert len(expand(q)) < len(cells)
