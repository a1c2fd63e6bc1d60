"""The model registry and the :func:`build` / :func:`build_from_spec` front end.

A model is registered as a plain builder ``fn(in_shape, num_classes, **kw) -> nn.Module``.
:func:`build` validates the request, runs the builder under a forked torch RNG seeded with
``seed`` (the caller's global RNG state is restored afterwards) and attaches the spec as
``model.gt_spec`` so that a ticket can record it and rebuild the model.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from graphtickets._json import plain
from graphtickets._registry import Registry
from graphtickets._rules import check_seed
from graphtickets.errors import GraphticketsError

__all__ = ["MODELS", "INITS", "ModelError", "register_model", "build", "build_from_spec", "spec_of", "initialize"]

Builder = Callable[..., nn.Module]

#: ``name -> builder`` of every model :func:`build` knows.
MODELS: Registry[Builder] = Registry("model")


class ModelError(GraphticketsError):
    """A model request that cannot be built (bad shape, class count or keyword argument)."""


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder(in_shape, num_classes, **kw)`` as model ``name``."""

    def deco(fn: Builder) -> Builder:
        MODELS.register(name, fn)
        return fn

    return deco


#: Initialisation schemes :func:`build` accepts as ``init=``.
INITS = ("default", "kaiming_normal")


def initialize(model: nn.Module, init: str) -> nn.Module:
    """Re-initialise the Linear/Conv layers of ``model`` in place (uses the global torch RNG).

    Parameters
    ----------
    model : nn.Module
    init : {"default", "kaiming_normal"}
        ``"default"`` leaves PyTorch's initialisation (Kaiming-uniform with ``a = sqrt(5)``)
        untouched. ``"kaiming_normal"`` draws every Linear/Conv weight from
        ``N(0, 2 / fan_in)`` (``nn.init.kaiming_normal_``, fan_in, ReLU gain) and sets their
        biases to zero, as open_lth and the Gem-Miner reference code do. BatchNorm layers keep
        their defaults (weight 1, bias 0).

    Returns
    -------
    nn.Module
        ``model`` itself.
    """
    if init not in INITS:
        raise ModelError(f"init must be one of {', '.join(map(repr, INITS))}, got {init!r}")
    if init == "kaiming_normal":
        for mod in model.modules():
            if isinstance(mod, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(mod.weight, mode="fan_in", nonlinearity="relu")
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
    return model


def _strict_leaf(obj: Any) -> Any:
    """A model keyword value as a plain JSON value, or a :class:`ModelError` naming it."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str, float)):
        return obj
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:  # numpy / torch scalars
        return obj.item()
    raise ModelError(
        f"model keyword value {obj!r} ({type(obj).__name__}) is not a plain JSON value; "
        f"pass numbers, strings, booleans or lists so the model spec can be saved with a ticket"
    )



def _check_shape(in_shape: Any) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in in_shape)
        ok = all(float(s) == int(s) for s in in_shape)
    except (TypeError, ValueError):
        raise ModelError(f"in_shape must be a sequence of positive ints, got {in_shape!r}") from None
    if not ok or not 1 <= len(shape) <= 3 or any(s < 1 for s in shape):
        raise ModelError(
            f"in_shape must be 1 to 3 positive ints ((L,), (C, L) or (C, H, W)), without the batch "
            f"dimension; got {in_shape!r}"
        )
    return shape


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise ModelError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def spec_of(name: str, in_shape: Sequence[int], num_classes: int, seed: int, **kw: Any) -> dict[str, Any]:
    """The model spec as plain JSON types: ``{"name", "in_shape", "num_classes", "seed", **kw}``."""
    return plain({"name": name, "in_shape": list(in_shape), "num_classes": num_classes, "seed": seed, **kw}, leaf=_strict_leaf)


def build(
    name: str,
    *,
    in_shape: Sequence[int],
    num_classes: int,
    seed: int = 0,
    init: str = "default",
    **kw: Any,
) -> nn.Module:
    """Build model ``name`` for inputs of ``in_shape`` and ``num_classes`` outputs.

    Parameters are initialised (torch's default initialisers, or ``init``) under a forked RNG
    seeded with ``seed``: the same seed gives the same parameters bit for bit, and the
    caller's global torch RNG state is unchanged.

    Parameters
    ----------
    name : str
        A key of :data:`MODELS` (``"mlp"``, ``"lenet300_100"``, ``"conv2"``, ``"vgg16"``,
        ``"resnet20"``, ...).
    in_shape : sequence of int
        Shape of one input without the batch dimension: ``(L,)``, ``(C, L)`` or ``(C, H, W)``.
    num_classes : int
        Number of outputs.
    seed : int, default 0
        Seed of the initialisation, in ``[0, 2**63 - 1]`` (:func:`graphtickets._rules.check_seed`).
    init : {"default", "kaiming_normal"}, default "default"
        Initialisation scheme (:func:`initialize`). A non-default scheme is recorded in the
        spec (``gt_spec["init"]``) so that :func:`build_from_spec` rebuilds the same weights;
        the default one is left out of the spec, so specs made before the option existed are
        unchanged.
    **kw
        Model options (``widths`` for ``mlp``, ``width`` multiplier for conv nets, ...).

    Returns
    -------
    nn.Module
        With attribute ``gt_spec``: the spec :func:`build_from_spec` takes.

    Raises
    ------
    UnknownNameError
        ``name`` is not registered (the message lists the known names).
    ModelError
        Bad shape, class count or keyword argument.

    Examples
    --------
    >>> m = build("mlp", in_shape=(40,), num_classes=10, widths=(32,))
    >>> m(torch.zeros(2, 40)).shape
    torch.Size([2, 10])
    >>> m.gt_spec["widths"]
    [32]
    """
    builder = MODELS.get_or_raise(name)
    shape = _check_shape(in_shape)
    n_cls = _check_int(num_classes, "num_classes", 1)
    seed_i = check_seed(seed, error=ModelError)
    sig = inspect.signature(builder)
    options = [p for p in sig.parameters if p not in ("in_shape", "num_classes")]
    unknown = [k for k in kw if k not in sig.parameters or k in ("in_shape", "num_classes")]
    if unknown:
        raise ModelError(
            f"model {name!r} takes no keyword argument(s) {unknown}; its options are: "
            f"{', '.join(options) or 'none'}"
        )
    if not isinstance(init, str) or init not in INITS:
        raise ModelError(f"init must be one of {', '.join(map(repr, INITS))}, got {init!r}")
    extra = {"init": init} if init != "default" else {}
    spec = spec_of(name, shape, n_cls, seed_i, **kw, **extra)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed_i)
        try:
            model = builder(shape, n_cls, **kw)
        except ModelError:
            raise
        except (TypeError, ValueError) as exc:
            raise ModelError(f"cannot build model {name!r} with {kw}: {exc}") from None
        initialize(model, init)
    # a plain attribute (not a submodule or tensor)
    model.gt_spec = spec  # type: ignore[assignment]
    return model


def build_from_spec(spec: Mapping[str, Any]) -> nn.Module:
    """Build a model from its spec (``model.gt_spec``, or a ticket's ``config["model"]``).

    Parameters
    ----------
    spec : mapping
        ``{"name", "in_shape", "num_classes", "seed" (optional, default 0), **kw}``.

    Returns
    -------
    nn.Module
        Identical, parameter for parameter, to the model the spec was taken from at build time.
    """
    if not isinstance(spec, Mapping):
        raise ModelError(f"a model spec must be a dict, got {type(spec).__name__}")
    missing = [k for k in ("name", "in_shape", "num_classes") if k not in spec]
    if missing:
        raise ModelError(f"model spec {dict(spec)} lacks {missing}; a spec is model.gt_spec")
    rest = {k: v for k, v in spec.items() if k not in ("name", "in_shape", "num_classes", "seed")}
    # ``init`` (when present) travels in ``rest`` to :func:`build`
    return build(
        spec["name"],
        in_shape=spec["in_shape"],
        num_classes=spec["num_classes"],
        seed=spec.get("seed", 0),
        **rest,
    )


def scaled(channels: int, width: float) -> int:
    """``channels * width`` rounded, at least 1."""
    return max(1, int(math.floor(channels * width + 0.5)))


def check_width(width: Any) -> float:
    """Validate a width multiplier (a positive number)."""
    try:
        w = float(width)
    except (TypeError, ValueError):
        raise ModelError(f"width must be a positive number, got {width!r}") from None
    if not w > 0 or math.isinf(w) or isinstance(width, bool):
        raise ModelError(f"width must be a positive number, got {width!r}")
    return w
