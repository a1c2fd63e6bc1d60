"""What the study reads from the method registry: families, order, the reference methods -- never a name.

The study and its report hold no method names. What they need to know of a method they read
from its :class:`~graphtickets.pruning.core.MethodSpec` in :data:`graphtickets.pruning.METHODS`:

- its ``kind`` and ``family`` (``baseline``, ``at init``, ``trained``, ``transform``) for the
  tables, the order of methods in tables and figures, and the pruning-at-init set the report
  compares with (:func:`at_init`);
- whether it is a trained method with a ``trajectory`` (one run that serves every density,
  IMP's rounds): the report's "<method> vs pruning at init" section compares those with
  pruning at init (:func:`trajectory_trained`);
- whether it is the random baseline, the chance level of mask overlap
  (:func:`random_baseline`, derived from the spec: see there).

The dense reference is the study's own (:data:`graphtickets.study.grid.DENSE`), not a method;
its kind and family are ``"reference"``. Imports no study module but ``config``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from graphtickets.study.config import DENSE
from graphtickets.study.spec import HELD_OUT

__all__ = ["AT_INIT", "FAMILY_ORDER", "REFERENCE", "method_order", "kind_of", "family_of", "at_init",
           "trajectory_trained", "random_baseline", "display_name"]

#: Order of the method families in tables and figures (``MethodSpec.family``).
FAMILY_ORDER = ("baseline", "at init", "trained", "transform", "derived")
#: The family of the pruning-at-init methods (``MethodSpec.family``).
AT_INIT = "at init"
#: The kind and family of the dense reference cells in the tables.
REFERENCE = "reference"


def _spec(name: str) -> Any:
    """The registered spec of ``name``, or None (the dense reference, an imported method, an ablation label)."""
    import graphtickets.graphs  # noqa: F401  (registers the derived method relational)
    from graphtickets.pruning import METHODS

    return METHODS.get(name)


def kind_of(name: str) -> str:
    """``MethodSpec.kind`` of a method; ``"reference"`` for the dense reference; ``""`` when unknown (imported)."""
    spec = _spec(name)
    return spec.kind if spec is not None else REFERENCE if name == DENSE else ""


def family_of(name: str) -> str:
    """``MethodSpec.family`` of a method; ``"reference"`` for the dense reference; ``""`` when unknown (imported)."""
    spec = _spec(name)
    return spec.family if spec is not None else REFERENCE if name == DENSE else ""


def method_order(methods: Sequence[str]) -> list[str]:
    """Methods in a fixed order: by family (baselines, at init, trained, transforms, derived), then registration.

    An ablation variant (``snip+shuffle``) follows its method; a held-out derived ticket
    (``consensus:held_out``) follows the same-init one.
    """
    from graphtickets.pruning import METHODS

    ms = list(dict.fromkeys(methods))
    names = list(METHODS)

    def key(m: str) -> tuple[int, int, str, bool, str]:
        label, _, variant = str(m).partition("+")
        base = label.removesuffix(HELD_OUT)
        spec = METHODS.get(base)
        fam = FAMILY_ORDER.index(spec.family) if spec is not None and spec.family in FAMILY_ORDER else len(FAMILY_ORDER)
        return (fam, names.index(base) if base in names else len(names), base, label != base, variant)

    return sorted(ms, key=key)


def at_init(names: Iterable[str]) -> list[str]:
    """The pruning-at-init methods among ``names`` (spec family :data:`AT_INIT`), sorted by name."""
    return sorted(m for m in set(names) if (s := _spec(m)) is not None and s.family == AT_INIT)


def trajectory_trained(names: Iterable[str]) -> list[str]:
    """The trained methods with a trajectory among ``names`` (IMP: the trained ticket the report
    compares pruning at init with), in :func:`method_order`."""
    return method_order([m for m in set(names) if (s := _spec(m)) is not None and s.family == "trained"
                         and s.trajectory is not None])


def random_baseline() -> str | None:
    """The registered random baseline: the chance level of mask overlap (None if none is registered).

    :class:`~graphtickets.pruning.core.MethodSpec` has no field saying that a method draws its
    masks at random, so it is derived here, in one place: the first registered method of
    family ``baseline`` that takes a ``distribution`` of layer densities (random masks are
    drawn per layer from it; a magnitude baseline has none). The report compares the other
    tickets with it; the study builds the dense reference's all-ones ticket with it (density 1).
    """
    from graphtickets.pruning import METHODS

    return next((n for n, s in METHODS.items() if s.family == "baseline" and "distribution" in s.hparams()), None)


def display_name(name: str) -> str:
    """How the report's prose names a method it singles out (``imp`` -> ``IMP``)."""
    return name.upper()
