"""Contract of every registered pruning method (loops over gt.pruning.METHODS at test time).

Methods registered by other modules are picked up automatically. A method that needs more
than the defaults to run quickly on a tiny MLP gets them from TEST_HPARAMS (extend it when you
register a method); "train" methods get any of TRAIN_BUDGET_KEYS they accept set to 1;
"transform" methods (made from another ticket) are skipped unless SOURCE_ARGS supplies them;
methods with ``min_sources > 0`` (family "derived") get ``sources``: tickets of two methods on two
seeds of the same model (DERIVED_SOURCES).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import graphtickets as gt
import graphtickets.graphs  # noqa: F401  (registers the derived method "relational")
from graphtickets.errors import GraphticketsError
from graphtickets.pruning import METHODS

#: Per-method hyperparameters that make the method fast on the tiny MLP.
TEST_HPARAMS: dict[str, dict[str, Any]] = {
    "synflow": {"rounds": 5},
    "imp": {"rate": 0.5, "epochs": 1},  # 2 rounds to density 0.3 (IMP's rounds follow from rate)
    "early_bird": {"epochs": 2},
    "early_magnitude": {"epochs": 2},
    "gem_miner": {"epochs": 1},
    # two batches x 1 epoch = 2 steps: an update every step (the defaults, 100, exceed the run)
    "rigl": {"delta_t": 1},
    "gmp": {"frequency": 1},
    "set": {"epochs": 2},  # one SET update (after epoch 1)
}
#: Budget hyperparameters set to 1 for "train" methods that accept them (unless in TEST_HPARAMS).
TRAIN_BUDGET_KEYS = ("epochs", "iterations", "steps", "train_epochs")
#: Per-method callables giving extra arguments for "transform" methods: (model, data) -> hparams.
SOURCE_ARGS: dict[str, Callable[[nn.Module, Any], dict[str, Any]]] = {
    # same depth: the identity mapping, so the transformed ticket keeps the source's exact count
    "elastic": lambda model, data: {
        "source": gt.pruning.prune(model, "magnitude", density=DENSITY),
        "source_model": model,
    },
}

DENSITY = 0.3


def DERIVED_SOURCES(model: nn.Module, data: Any) -> dict[str, Any]:  # noqa: N802  (a table like SOURCE_ARGS)
    """Sources of a derived method: magnitude and SNIP tickets of ``model`` on two seeds."""
    return {"sources": [gt.pruning.prune(model, m, density=DENSITY, data=data, seed=s)
                        for m in ("magnitude", "snip") for s in (0, 1)]}  # fmt: skip

#: Methods that need another model than tiny_mlp: (tiny_mlp) -> model with the same inputs.
MODEL_FOR: dict[str, Callable[[nn.Module], nn.Module]] = {
    # Early-Bird draws channel masks from BatchNorm scales: tiny_mlp with BatchNorm1d
    "early_bird": lambda m: gt.models.build("mlp", in_shape=(40,), num_classes=3, widths=(8, 6), seed=0, batchnorm=True),
}


def _hparams(name: str, model: nn.Module, data: Any) -> dict[str, Any]:
    spec = METHODS[name]
    accepted = spec.hparams()
    hp = dict(TEST_HPARAMS.get(name, {}))
    dropped = sorted(set(hp) - set(accepted))
    assert not dropped, f"TEST_HPARAMS[{name!r}] passes {dropped}, which {name!r} does not take"
    if spec.kind == "train":
        for key in TRAIN_BUDGET_KEYS:
            if key in accepted and key not in hp:
                hp[key] = 1
    if name in SOURCE_ARGS:
        hp.update(SOURCE_ARGS[name](model, data))
    if spec.min_sources > 0:
        hp.update(DERIVED_SOURCES(model, data))
    return {k: v for k, v in hp.items() if k in accepted}


def _run(name: str, model: nn.Module, data: Any, seed: int = 0, **extra: Any) -> gt.Ticket:
    spec = METHODS[name]
    if spec.kind == "transform" and name not in SOURCE_ARGS:
        pytest.skip(f"{name!r} is a transform of another ticket; add SOURCE_ARGS[{name!r}] to test it here")
    hp = {**_hparams(name, model, data), **extra}
    return gt.pruning.prune(model, name, density=DENSITY, data=data if spec.needs_data or spec.kind == "train" else None, seed=seed, **hp)


def _names() -> list[str]:
    return sorted(METHODS)


@pytest.mark.parametrize("name", _names())
def test_method_contract(name: str, tiny_mlp: nn.Module, tiny_batches: list) -> None:
    spec = METHODS[name]
    tiny_mlp = MODEL_FOR.get(name, lambda m: m)(tiny_mlp)
    assert spec.kind in ("baseline", "init", "train", "transform", "derived")
    assert (spec.kind == "derived") == (spec.family == "derived") == (spec.min_sources > 0)
    # a method that trains for epochs is found by training: kind "train", family "trained"
    assert (spec.data_use == "epochs") == (spec.kind == "train") and (spec.kind == "train") == (spec.family == "trained")
    assert spec.summary and spec.reference
    before = {k: v.clone() for k, v in tiny_mlp.state_dict().items()}
    params = dict(tiny_mlp.named_parameters())
    a = _run(name, tiny_mlp, tiny_batches, seed=3)
    # bool masks of the right shapes, keyed by parameter names
    assert a.masks and all(n in params for n in a.masks)
    for n, m in a.masks.items():
        assert m.dtype == torch.bool and tuple(m.shape) == tuple(params[n].shape)
    # exact count: round(d*N) globally, or round(d*n_l) in every layer (layer scope)
    total = sum(m.numel() for m in a.masks.values())
    per_layer = all(int(m.sum()) == round(DENSITY * m.numel()) for m in a.masks.values())
    assert a.kept == round(DENSITY * total) or per_layer, (a.kept, round(DENSITY * total))
    # the model is untouched
    after = tiny_mlp.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    # deterministic for a seed
    b = _run(name, tiny_mlp, tiny_batches, seed=3)
    assert a.masks.keys() == b.masks.keys() and all(torch.equal(a.masks[n], b.masks[n]) for n in a.masks)
    # provenance
    # every method, transforms included, was asked for DENSITY and records it
    assert a.method == name and a.config["seed"] == 3 and a.config["density"] == DENSITY
    assert "seconds" in a.meta["cost"]


@pytest.mark.parametrize("name", _names())
def test_method_nested_in_prior(name: str, tiny_mlp: nn.Module, tiny_batches: list) -> None:
    if "prior" not in METHODS[name].hparams():
        pytest.skip(f"{name!r} takes no prior mask")
    tiny_mlp = MODEL_FOR.get(name, lambda m: m)(tiny_mlp)
    prior = gt.pruning.prune(tiny_mlp, "random", density=0.6, seed=9)
    t = _run(name, tiny_mlp, tiny_batches, seed=1, prior=prior)
    for n, m in t.masks.items():
        assert not bool((m & ~prior.masks[n]).any()), f"{name} revived pruned weights of {n}"


@pytest.mark.parametrize("name", [n for n in _names() if "invert" in METHODS[n].hparams()])
def test_invert_keeps_a_different_ticket(name: str, tiny_mlp: nn.Module, tiny_batches: list) -> None:
    a = _run(name, tiny_mlp, tiny_batches)
    b = _run(name, tiny_mlp, tiny_batches, invert=True)
    assert a.kept == b.kept and a != b


@pytest.mark.parametrize("name", [n for n in _names() if METHODS[n].needs_data])
def test_data_methods_refuse_missing_data(name: str, tiny_mlp: nn.Module) -> None:
    with pytest.raises(gt.errors.GraphticketsError, match="data"):
        gt.pruning.prune(tiny_mlp, name, density=DENSITY, **_hparams(name, tiny_mlp, None) if METHODS[name].kind != "transform" else {})


@pytest.mark.parametrize("name", [n for n in _names() if METHODS[n].min_sources > 0])
def test_derived_methods_refuse_missing_sources(name: str, tiny_mlp: nn.Module) -> None:
    with pytest.raises(GraphticketsError, match="sources=\\[Ticket"):
        gt.pruning.prune(tiny_mlp, name, density=DENSITY)
    other = gt.models.build("mlp", in_shape=(40,), num_classes=3, widths=(9, 6), seed=0)
    alien = [gt.pruning.prune(other, "random", density=DENSITY, seed=s) for s in range(2)]
    with pytest.raises(GraphticketsError, match="same architecture"):
        gt.pruning.prune(tiny_mlp, name, density=DENSITY, sources=alien)


def test_every_scoring_method_takes_the_shared_options() -> None:
    # the README: every scoring method takes scope, rounds, schedule, prior, include_bias,
    # keep_classifier_dense and invert (declared once, in ScoringOptions)
    scorers = {n for n, s in METHODS.items() if s.scoring}
    assert {"random", "magnitude", "snip", "grasp", "synflow"} <= scorers
    for name in scorers:
        assert set(gt.pruning.SCORING_OPTIONS) <= set(METHODS[name].hparams()), name


def test_readme_recipe_adds_a_scoring_method(tiny_mlp: nn.Module) -> None:
    # the "Adding a method" recipe of the README, in a few lines: a scorer and its registration
    from graphtickets.pruning import register_scorer, score_prune

    def my_scores(model: nn.Module, masks: dict, data: Any, generator: Any) -> dict:
        return {n: p.detach().abs() ** 2 for n, p in model.named_parameters() if n in masks}

    @register_scorer("test_square", needs_data=False, kind="init", summary="keep the largest w^2", reference="-")
    def my_method(model: nn.Module, *, density: float, data: Any = None, seed: int = 0, **options: Any) -> Any:
        return score_prune(model, my_scores, density=density, seed=seed, **options)

    try:
        t = gt.pruning.prune(tiny_mlp, "test_square", density=DENSITY, scope="layer", invert=True)
        m = gt.pruning.prune(tiny_mlp, "magnitude", density=DENSITY, scope="layer", invert=True)
        assert t.masks.keys() == m.masks.keys() and all(torch.equal(t.masks[n], m.masks[n]) for n in t.masks)
        assert t.config["hparams"]["scope"] == "layer" and t.config["hparams"]["rounds"] == 1
        with pytest.raises(GraphticketsError, match="does not take"):
            gt.pruning.prune(tiny_mlp, "test_square", density=DENSITY, temperature=1.0)
    finally:
        del METHODS["test_square"]


@pytest.mark.parametrize("name", _names())
def test_method_rules_name_its_hyperparameters_and_pass_its_defaults(name: str) -> None:
    # every rule is about a hyperparameter the method has, and the method's own defaults pass them
    spec = METHODS[name]
    rules, defaults = spec.rules(), spec.hparams()
    assert set(rules) <= set(defaults), f"{name}: rules for {sorted(set(rules) - set(defaults))}"
    spec.check_values(f"methods.{name}", defaults)


@pytest.mark.parametrize(("name", "key", "good", "bad"), [
    ("set", "distribution", "er", "normal"), ("rigl", "distribution", "erk", "er2"),
    ("random", "distribution", "erk", "er"), ("imp", "schedule", "cosine", "linear"),
    ("rigl", "schedule", "step", "exponential"), ("snip", "schedule", "linear", "cosine"),
])
def test_a_name_means_what_its_method_says(name: str, key: str, good: str, bad: str) -> None:
    # ``schedule``/``distribution`` mean different things to different methods: each holds its own
    spec = METHODS[name]
    spec.check_values(f"methods.{name}", {key: good})
    with pytest.raises(ValueError, match=rf"methods\.{name}\.{key} must be one of .*got '{bad}'"):
        spec.check_values(f"methods.{name}", {key: bad})


def test_imp_output_rate_takes_its_named_value() -> None:
    # the default "half" (Frankle & Carbin) is a valid value; another word or a rate of 1 is not
    imp = METHODS["imp"]
    imp.check_values("methods.imp", {"output_rate": "half"})
    imp.check_values("methods.imp", {"output_rate": 0.1})
    with pytest.raises(ValueError, match=r"output_rate must be a number or one of 'half', got 'third'"):
        imp.check_values("methods.imp", {"output_rate": "third"})
    with pytest.raises(ValueError, match=r"output_rate must be in \[0.0, 1.0\), got 1.0"):
        imp.check_values("methods.imp", {"output_rate": 1.0})
