"""Study configs: validation errors name the key and the fix; grid expansion; pinned cell ids."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from graphtickets.errors import ConfigError, DataError
from graphtickets.study import expand, load_config
from graphtickets.study.config import default_config_path
from graphtickets.study.grid import canonical_json, cell_id

BASE = {
    "name": "t",
    "datasets": ["digits"],
    "models": [{"name": "mlp", "widths": [16]}],
    "methods": {"random": {}, "imp": {"epochs": 1}},
    "densities": [0.5],
    "seeds": [0],
}


def _with(**kw: object) -> dict:
    return {**BASE, **kw}


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "study.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "change, needles",
    [
        ({"methods": ["random", "snipp"]}, ["methods", "snipp", "known methods", "snip", "synflow"]),
        ({"densities": [0.5, 1.5]}, ["densities", "outside (0, 1]", "fraction of weights KEPT"]),
        ({"densities": [0.0]}, ["densities", "outside (0, 1]"]),
        ({"datasets": ["mnist2d"]}, ["datasets", "mnist2d", "known datasets", "mnist1d"]),
        ({"models": [{"name": "resnet7"}]}, ["models", "resnet7", "known models", "resnet20"]),
        ({"methods": {"imp": {"epochz": 3}}}, ["methods.imp", "epochz", "its hyperparameters are", "epochs"]),
        ({"methods": {"imp": {"eval_data": 3}}}, ["methods.imp", "eval_data", "set by the study"]),
        ({"methods": {"elastic": {"source": {"method": "elastic"}}}}, ["methods.elastic.source.method", "not a method that finds"]),
        ({"trian": {"epochs": 3}}, ["trian", "unknown key"]),
        ({"train": {"epochs": -1}}, ["train.epochs", "greater than or equal to 0"]),
        ({"seeds": []}, ["seeds", "at least one seed"]),
        ({"analysis": {"kinds": ["jacard"]}}, ["analysis.kinds", "jacard", "known kinds", "jaccard"]),
    ],
)
def test_bad_config_names_the_key_and_the_fix(change: dict, needles: list[str]) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(_with(**change))
    msg = str(exc.value)
    for n in needles:
        assert n in msg, (n, msg)


def test_bad_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, "name: [unclosed"))
    with pytest.raises(ConfigError, match="YAML mapping"):
        load_config(_write(tmp_path, "- just\n- a list\n"))
    with pytest.raises(ConfigError, match="name: required key is missing"):
        load_config(_write(tmp_path, "datasets: [digits]\nmodels: [mlp]\nmethods: [random]\ndensities: [0.5]\n"))


BASE_YAML = """\
name: t
datasets: [digits]
models:
  - {name: mlp, widths: [16]}
methods:
  random: {}
  imp: {epochs: 1}
  elastic: {source: {method: imp, model: {widths: [16, 16]}, hparams: {epochs: 1}}}
densities: [0.5]
seeds: [0]
train: {epochs: 1, optimizer: adam}
device: cpu
quick:
  methods: {imp: {epochs: 1}, elastic.source: {epochs: 1}}
"""


@pytest.mark.parametrize(
    "old, new, needles",
    [
        ("{name: mlp, widths: [16]}", "{name: mlp, widthz: [16]}",
         ["models[0] (mlp)", "no argument 'widthz'", "its arguments are", "widths"]),
        ("{name: mlp, widths: [16]}", "{name: mlp, widths: sixteen}", ["models[0] (mlp)", "cannot build", "widths"]),
        ("model: {widths: [16, 16]}", "model: {depth: 3}", ["methods.elastic.source.model", "no argument 'depth'"]),
        ("imp: {epochs: 1}\n  elastic", "imp: {epochs: ten}\n  elastic", ["methods.imp.epochs", "'ten' is not an integer"]),
        ("imp: {epochs: 1}\n  elastic", "imp: {epochs: 1, rate: high}\n  elastic", ["methods.imp.rate", "not a number"]),
        ("imp: {epochs: 1}\n  elastic", "imp: {epochs: 1, optimizer: adamz}\n  elastic",
         ["methods.imp.optimizer", "unknown optimizer 'adamz'", "adam"]),
        ("hparams: {epochs: 1}}", "hparams: {epochz: 1}}", ["methods.elastic.source.hparams", "epochz"]),
        ("device: cpu", "device: tpu", ["device", "unknown device 'tpu'", "cuda"]),
        ("optimizer: adam}", "optimizer: adamz}", ["train.optimizer", "unknown optimizer 'adamz'", "sgd"]),
        ("methods: {imp: {epochs: 1}", "methods: {impp: {epochs: 1}",
         ["quick.methods.impp", "not a method of this study", "elastic.source"]),
        ("methods: {imp: {epochs: 1}", "methods: {random.source: {}",
         ["quick.methods.random.source", "not a method of this study"]),
        ("methods: {imp: {epochs: 1}", "methods: {imp: {epochz: 1}", ["quick", "methods.imp", "epochz"]),
        ("methods: {imp: {epochs: 1}", "train: {epochz: 1}\n  methods: {imp: {epochs: 1}", ["quick", "train.epochz", "unknown key"]),
    ],
)
def test_bad_files_fail_at_load_time_naming_the_key_and_the_fix(tmp_path: Path, old: str, new: str, needles: list[str]) -> None:
    assert old in BASE_YAML
    load_config(_write(tmp_path, BASE_YAML))  # the base file is fine
    with pytest.raises(ConfigError) as exc:
        load_config(_write(tmp_path, BASE_YAML.replace(old, new, 1)))
    msg = str(exc.value)
    assert msg.startswith(str(tmp_path / "study.yaml")), msg
    for n in needles:
        assert n in msg, (n, msg)


def test_a_scalar_density_is_a_list_of_one() -> None:
    assert load_config(_with(densities=0.5)).densities == [0.5]


def test_missing_dataset_files_raise_data_error(tmp_path: Path) -> None:
    from graphtickets.study import run

    cfg = _with(datasets=[{"name": "cifar10", "root": str(tmp_path / "data")}], models=[{"name": "conv2"}],
                methods=["random"])
    with pytest.raises(DataError) as exc:
        run(cfg, tmp_path / "out", progress=False)
    assert "datasets.cifar10" in str(exc.value) and "cifar" in str(exc.value).lower()


def test_every_bundled_study_validates() -> None:
    root = Path(__file__).resolve().parents[1] / "benchmarks" / "studies"
    files = sorted(root.glob("*.yaml"))
    names = {f.stem for f in files}
    assert {"default", "digits", "cifar10_conv", "cifar10_vgg", "cifar10_resnet"} <= names
    for f in files:
        study = load_config(f)
        assert expand(study) and expand(study.apply_quick())
    # the packaged studies equal the benchmark ones (`graphtickets run mnist1d_full` finds the bundled copy)
    for name in ("default", "mnist1d_full", "structure"):
        assert (default_config_path().parent / f"{name}.yaml").read_text() == (root / f"{name}.yaml").read_text()
    assert load_config("mnist1d_full").name == "mnist1d_full"


def test_default_study_covers_every_method_and_the_issue_grid() -> None:
    from graphtickets.pruning import METHODS

    study = load_config(None)
    # every method but the derived ones (built from other tickets: the study integration of issue 26 adds them)
    found = {n for n, s in METHODS.items() if s.family != "derived"}
    assert {m.name for m in study.methods} == found
    assert study.densities == [0.2, 0.05] and len(study.seeds) == 3
    assert study.ablations == ["shuffle", "in_degree", "rewire", "reinit"]  # the trained ladder (issue 24)
    # the regime chosen on the validation split (benchmarks/results/regime/mlp/chosen.json)
    regime = json.loads((Path(__file__).resolve().parents[1] / "benchmarks/results/regime/mlp/chosen.json").read_text())["regime"]
    assert {k: getattr(study.train, k) for k in ("optimizer", "lr", "epochs", "batch_size", "weight_decay", "momentum",
                                                 "schedule")} == {k: v for k, v in regime.items() if k != "steps_full_train"}
    cells = expand(study)
    # every method x 2 densities x 3 seeds, four times more for the ablations, once more for the sibling
    # replicate (replicates: 2; not ablated), + one dense reference per seed
    assert study.replicates == 2
    assert len(cells) == len(found) * 2 * 3 * (1 + 4 + 1) + 3
    imp = next(c for c in cells if c.method == "imp")
    assert imp.config["method"]["hparams"]["epochs"] == study.train.epochs  # IMP rounds trained like the tickets
    assert imp.config["trajectory"] == {"densities": [0.2, 0.05]}
    q = study.apply_quick()
    assert q.name == "default-quick" and len(q.seeds) == 1 and len(q.densities) == 1
    assert q.train.epochs < study.train.epochs
    full = load_config(Path(__file__).resolve().parents[1] / "benchmarks" / "studies" / "mnist1d_full.yaml")
    assert full.densities == [0.2, 0.05, 0.01] and full.seeds == study.seeds and full.ablations == study.ablations
    assert full.replicates == study.replicates


def test_grid_expansion_order_and_content() -> None:
    study = load_config(_with(seeds=[0, 1], densities=[0.5, 0.1], models=["mlp", {"name": "mlp", "widths": [8]}]))
    cells = [c for c in expand(study) if c.method != "dense"]
    assert len(cells) == 2 * 2 * 2 * 2
    dense = [c for c in expand(study) if c.method == "dense"]
    assert [(c.model, c.seed, c.density) for c in dense] == [("mlp", 0, 1.0), ("mlp", 1, 1.0), ("mlp(8)", 0, 1.0), ("mlp(8)", 1, 1.0)]
    assert not [c for c in expand(study.model_copy(update={"dense_reference": False})) if c.method == "dense"]
    assert len({c.id for c in cells}) == len(cells)
    first = cells[0]
    assert (first.dataset, first.model, first.method, first.density, first.seed) == ("digits", "mlp", "random", 0.5, 0)
    assert [c.method for c in cells[:2]] == ["random", "imp"]
    assert cells[2].seed == 1 and cells[4].density == 0.1
    assert cells[8].model == "mlp(8)" and cells[8].config["model"] == {"name": "mlp", "widths": [8]}


def test_cell_id_is_sha256_of_canonical_json_and_pinned() -> None:
    cells = expand(load_config(BASE))
    c = cells[0]
    # the canonical JSON spelled out by hand: sorted keys, no spaces
    literal = (
        '{"dataset":{"name":"digits"},"density":0.5,"format":"graphtickets.cell/1",'
        '"method":{"hparams":{},"name":"random"},"model":{"name":"mlp","widths":[16]},'
        '"prune_data":{"batch_size":128,"batches":10},"seed":0,'
        '"train":{"batch_size":128,"epochs":10,"eval_batch_size":1000,"lr":0.0012,"momentum":0.9,'
        '"optimizer":"adam","weight_decay":0.0}}'
    )
    assert canonical_json(c.config) == literal
    assert c.id == hashlib.sha256(literal.encode()).hexdigest()[:16]
    # regression pins: change these only with a CELL_FORMAT bump (finished studies would re-run)
    assert c.id == "f50842f7070ca91d"
    # an IMP cell records the densities its trajectory serves (one IMP run serves every density,
    # so its ticket depends on them): its id moved from d8dbad5dde7045d1; without that key it
    # is the old config exactly, and cells of methods without a trajectory keep their ids
    assert cells[1].config["trajectory"] == {"densities": [0.5]}
    assert cells[1].id == "0eacd4c209a86ace"
    assert cell_id({k: v for k, v in cells[1].config.items() if k != "trajectory"}) == "d8dbad5dde7045d1"


def test_cell_id_ignores_key_order_and_where_things_run() -> None:
    a = expand(load_config(BASE))
    b = expand(load_config({**BASE, "device": "cuda", "datasets": [{"name": "digits", "root": "/elsewhere"}]}))
    assert [c.id for c in a] == [c.id for c in b]
    assert cell_id({"x": 1, "y": 2}) == cell_id({"y": 2, "x": 1})
    changed = expand(load_config({**BASE, "methods": {"random": {}, "imp": {"epochs": 2}}}))
    assert changed[0].id == a[0].id and changed[1].id != a[1].id


def test_method_values_follow_the_method_s_own_rules() -> None:
    # SET's default layer densities ("er") and IMP's cosine learning-rate schedule are valid values,
    # though random's ``distribution`` and the scoring methods' ``schedule`` allow other ones
    base = {"name": "r", "datasets": ["digits"], "models": [{"name": "mlp", "widths": [8]}], "densities": [0.5],
            "seeds": [0], "train": {"epochs": 1}}
    ok = load_config({**base, "methods": {"set": {"distribution": "er"}, "imp": {"schedule": "cosine"}}})
    assert {m.name for m in ok.methods} >= {"set", "imp"}
    with pytest.raises(ConfigError, match=r"methods\.imp\.schedule must be one of 'cosine', 'step'"):
        load_config({**base, "methods": {"imp": {"schedule": "linear"}}})
