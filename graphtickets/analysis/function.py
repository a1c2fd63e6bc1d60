"""Functional similarity of trained tickets: do two sparse networks compute alike?

Distance kinds of the ``"function"`` family (registered in
:data:`~graphtickets.analysis.DISTANCES`); each compares two tickets that carry their trained
weights (``ticket.weights``, e.g. from :func:`with_trained_weights`) on the same test batches:

=====================  ===================================================================
``agreement``          1 - fraction of test inputs on which both predict the same class
``agreement_kappa``    1 - Cohen's kappa of the two predictions (chance agreement from both
                       prediction distributions), in ``[0, 2]``
``error_consistency``  1 - Cohen's kappa of being right (chance from both accuracies;
                       Geirhos et al. 2020), in ``[0, 2]``
``cka``                1 - linear CKA (Kornblith et al. 2019) of the hidden representations,
                       averaged over layers
=====================  ===================================================================

``distance(a, b, "cka", model=m, data=test_batches)``: ``model`` is the architecture (each
ticket is applied to a copy of it: its weights copied in, its mask enforced); without it the
ticket's recorded model spec is built. ``data`` is an iterable of ``(inputs, targets)``
batches, read once per call into a list so that both tickets see the same inputs in the same
order (a shuffling loader is fine). Each ticket is run once per :func:`distance` or
:func:`~graphtickets.analysis.compare` call (its predictions and representations are cached
for all pairs and kinds).

Hidden representations
----------------------
The representation of a layer is what the next weight layer reads: the input of every
Linear/Conv module (a forward pre-hook), except those run before any weight layer (the
data itself). A tensor read by several modules (a ResNet block's first conv and its
downsampling shortcut) counts once, named by the first module reading it. So an MLP
``fc1 -> relu -> fc2 -> relu -> classifier`` has two: ``fc2`` (relu(fc1 x)) and
``classifier``; a conv net has its post-activation, post-pooling feature maps and its
flattened features. Nothing is model-specific. Conv maps ``(N, C, *positions)`` are flattened
to ``N x (C * positions)`` (``conv="flatten"``, default: a position-sensitive comparison) or
averaged over positions to ``N x C`` (``conv="mean"``: invariant to where a feature fires).

Linear CKA is ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`` on column-centred ``X``, ``Y``
(the biased HSIC estimator, as in Kornblith et al.); it is computed from the features
(``p <= n``) or the centred Gram matrix (``p > n``), whichever is smaller, on the first
``cka_examples`` test inputs (default :data:`CKA_MAX_EXAMPLES`). It is invariant to an
orthogonal transform and an isotropic scaling of either representation, 1 for identical
ones. A layer whose representation is constant in both networks counts as CKA 1 (nothing
differs), in one of them as 0.

The loss barrier on the linear path between two trained tickets (:func:`loss_barrier`,
Frankle et al. 2020) is a function, not a registered distance: it is 0 for distinct networks
that are linearly connected, so it is no distance in the registry's sense.

References
----------
.. [1] S. Kornblith, M. Norouzi, H. Lee, G. Hinton, "Similarity of Neural Network
   Representations Revisited", ICML 2019 (linear CKA).
.. [2] J. Cohen, "A coefficient of agreement for nominal scales", Educational and Psychological
   Measurement 20, 1960.
.. [3] R. Geirhos, K. Meding, F. A. Wichmann, "Beyond accuracy: quantifying trial-by-trial
   behaviour of CNNs and humans by measuring error consistency", NeurIPS 2020.
.. [4] J. Frankle, G. K. Dziugaite, D. M. Roy, M. Carbin, "Linear Mode Connectivity and the
   Lottery Ticket Hypothesis", ICML 2020 (loss/error barrier on the linear path).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from graphtickets.analysis.distances.registry import Context, register_distance
from graphtickets.errors import GraphticketsError
from graphtickets.ticket import Ticket, prunable

__all__ = [
    "CKA_MAX_EXAMPLES",
    "FUNCTION_KINDS",
    "FunctionProfile",
    "profile",
    "with_trained_weights",
    "agreement",
    "cohen_kappa",
    "error_consistency",
    "linear_cka",
    "cka_layers",
    "functional_details",
    "BarrierResult",
    "loss_barrier",
]

#: CKA uses at most this many test inputs (the first ones; Gram matrices are n x n).
CKA_MAX_EXAMPLES = 2048
#: The registered kinds of the function family.
FUNCTION_KINDS = ("agreement", "agreement_kappa", "error_consistency", "cka")


# --------------------------------------------------------------------------- data and weights
def as_batches(data: Any) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """``data`` read once into a list of ``(inputs, targets)`` batches (targets may be None).

    Accepts an iterable of ``(x, y)`` pairs (a list, ``gt.data.batches(...)``, a DataLoader)
    or of bare input tensors.
    """
    if data is None:
        raise GraphticketsError(
            "functional distances need data=<test batches>, e.g. "
            "gt.data.batches(gt.data.load(name, split='test'), batch_size=1000, shuffle=False)"
        )
    try:
        items = list(data)
    except TypeError:
        raise GraphticketsError(f"data must be an iterable of (inputs, targets) batches, got {type(data).__name__}") from None
    out: list[tuple[torch.Tensor, torch.Tensor | None]] = []
    for b in items:
        if isinstance(b, torch.Tensor):
            out.append((b, None))
        elif isinstance(b, (tuple, list)) and b and isinstance(b[0], torch.Tensor):
            y = b[1] if len(b) > 1 and isinstance(b[1], torch.Tensor) else None
            out.append((b[0], y))
        else:
            raise GraphticketsError(f"each batch must be an (inputs, targets) pair of tensors, got {type(b).__name__}")
    if not out:
        raise GraphticketsError("data holds no batches (an empty or exhausted iterable)")
    return out


def with_trained_weights(ticket: Ticket, model: nn.Module) -> Ticket:
    """``ticket`` carrying ``model``'s current (trained) state: every parameter and buffer.

    The returned ticket has the same masks and provenance, ``weights`` = ``model.state_dict()``
    (pruned entries zeroed by the mask) and ``meta["weights"] = "trained"``. Saved with
    ``save``, it is what the function family and ``graphtickets compare --functional`` read.

    Parameters
    ----------
    ticket : Ticket
        The ticket ``model`` was trained with.
    model : nn.Module
        The trained network.

    Returns
    -------
    Ticket
    """
    ticket.check(model)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    for n, m in ticket.masks.items():
        key = n if n in state else f"{n}_orig"  # a model pruned with torch.nn.utils.prune
        w = state.pop(key)
        state[n] = w * m.to(w.dtype)
        state.pop(f"{n}_mask", None)
    r = ticket.replace(dict(ticket.masks), weights="trained")
    return Ticket(masks=r.masks, method=r.method, config=r.config, meta=r.meta, weights=state)


# --------------------------------------------------------------------------- profiles
@dataclass
class _Rep:
    """One layer's centred representation: features ``(n, p)`` or Gram ``(n, n)``, and its norm."""

    kind: str
    value: np.ndarray
    norm: float
    constant: bool


@dataclass
class FunctionProfile:
    """What one trained ticket computes on the test batches.

    Attributes
    ----------
    predictions : numpy.ndarray
        Predicted class per test input (argmax of the outputs).
    labels : numpy.ndarray or None
        The class targets (None when the batches carry none).
    accuracy, loss : float
        On the test batches (cross-entropy; NaN without labels).
    layers : list of str
        Names of the hidden representations (the module reading each).
    reps : list
        Their centred features or Gram matrices (internal).
    """

    predictions: np.ndarray
    labels: np.ndarray | None
    accuracy: float
    loss: float
    layers: list[str]
    reps: list[_Rep] = field(repr=False)


def _network(ticket: Ticket, model: nn.Module | None) -> nn.Module:
    if ticket.weights is None:
        raise GraphticketsError(
            f"the {ticket.method} ticket carries no weights; functional distances compare trained networks: "
            f"train it and attach the weights with gt.analysis.with_trained_weights(ticket, model) "
            f"(or `graphtickets train --save-weights`)"
        )
    if model is None:
        if not ticket.config.get("model"):
            raise GraphticketsError("pass model=<the tickets' architecture>; the ticket records no model spec to build it")
        return ticket.build_model()
    net = copy.deepcopy(model)
    ticket.apply(net)
    return net


def _centred(chunks: list[torch.Tensor]) -> _Rep:
    raw = torch.cat(chunks).to(torch.float64).numpy()
    x = raw - raw.mean(axis=0, keepdims=True)
    constant = bool(np.abs(x).max(initial=0.0) <= 1e-12 * max(float(np.abs(raw).max(initial=0.0)), 1e-300))
    n, p = x.shape
    if p <= n:
        return _Rep("features", x, float(np.linalg.norm(x.T @ x)), constant)
    g = x @ x.T
    return _Rep("gram", g, float(np.linalg.norm(g)), constant)


def _hsic(a: _Rep, b: _Rep) -> float:
    if a.kind == "features" and b.kind == "features":
        return float(np.sum((b.value.T @ a.value) ** 2))
    if a.kind == "gram" and b.kind == "gram":
        return float(np.sum(a.value * b.value))
    f, g = (a, b) if a.kind == "features" else (b, a)
    return float(np.sum(f.value * (g.value @ f.value)))


def _cka(a: _Rep, b: _Rep) -> float:
    if a.constant or b.constant:
        return 1.0 if a.constant and b.constant else 0.0
    return float(np.clip(_hsic(a, b) / (a.norm * b.norm), 0.0, 1.0))


def profile(
    ticket: Ticket,
    model: nn.Module | None,
    data: Any,
    *,
    conv: str = "flatten",
    cka_examples: int | None = CKA_MAX_EXAMPLES,
    device: str | torch.device = "cpu",
    representations: bool = True,
) -> FunctionProfile:
    """Run a trained ticket on the test batches: predictions, accuracy, loss, representations.

    Parameters
    ----------
    ticket : Ticket
        Carrying its trained ``weights``.
    model : nn.Module or None
        The architecture (a copy is used); None: built from the ticket's spec.
    data : iterable of (inputs, targets)
    conv : {"flatten", "mean"}
        How representations with positions (conv maps) become vectors (module docstring).
    cka_examples : int or None
        Representations keep the first this many inputs (None: all).
    device : str or torch.device
    representations : bool
        Collect hidden representations (only predictions otherwise).

    Returns
    -------
    FunctionProfile
    """
    if conv not in ("flatten", "mean"):
        raise GraphticketsError(f"conv must be 'flatten' or 'mean', got {conv!r}")
    batches = as_batches(data)  # a list already read is only checked (no copy of the tensors)
    net = _network(ticket, model).to(device)
    net.eval()
    rec = _Recorder(conv, None if cka_examples is None else int(cka_examples))
    handles = rec.attach(net) if representations else []
    try:
        preds, labels, losses = _predict(net, batches, device, rec)
    finally:
        for h in handles:
            h.remove()
    p = torch.cat(preds).numpy()
    lab = torch.cat(labels).numpy() if len(labels) == len(preds) else None
    acc = float(np.mean(p == lab)) if lab is not None else float("nan")
    loss = float(sum(losses) / p.size) if lab is not None else float("nan")
    names = [n for n in (rec.first_order or []) if n in rec.chunks]
    reps = [_centred(rec.chunks[n]) for n in names]
    return FunctionProfile(predictions=p, labels=lab, accuracy=acc, loss=loss, layers=names, reps=reps)


class _Recorder:
    """Forward hooks that keep what each weight layer reads: the hidden representations.

    A weight layer's pre-hook records its input once the first weight layer has run (the data
    itself is no representation), once per tensor (a tensor read by several modules counts
    for the first), keeping at most ``limit`` examples in all. ``order`` is the order the
    tensors were read in on the current batch; ``first_order`` that of the first batch.
    """

    def __init__(self, conv: str, limit: int | None) -> None:
        self.conv, self.limit = conv, limit
        self.chunks: dict[str, list[torch.Tensor]] = {}
        self.kept = 0  # examples seen on the batches before this one
        self.first_order: list[str] | None = None
        self.start_batch()

    def start_batch(self) -> None:
        self.ran = False  # has a weight layer run on this batch yet
        self.seen: dict[int, torch.Tensor] = {}  # held: ids stay unique within the batch
        self.order: list[str] = []

    def attach(self, net: nn.Module) -> list[Any]:
        modules = dict(net.named_modules())
        handles = []
        for n in dict.fromkeys(p.rpartition(".")[0] for p in prunable(net)):
            if n in modules:
                handles.append(modules[n].register_forward_pre_hook(self._reader(n)))
                handles.append(modules[n].register_forward_hook(self._ran))
        return handles

    def _ran(self, _m: nn.Module, _a: Any, _o: Any) -> None:
        self.ran = True

    def _reader(self, name: str) -> Any:
        def hook(_m: nn.Module, args: tuple[Any, ...]) -> None:
            x = args[0] if args else None
            if not isinstance(x, torch.Tensor) or not self.ran or id(x) in self.seen:
                return
            self.seen[id(x)] = x
            if self.limit is None or self.kept < self.limit:
                self._keep(name, x)
            self.order.append(name)

        return hook

    def _keep(self, name: str, x: torch.Tensor) -> None:
        v = x.detach()
        if v.dim() > 2:
            v = v.flatten(1) if self.conv == "flatten" else v.mean(dim=tuple(range(2, v.dim())))
        if self.limit is not None:
            v = v[: self.limit - self.kept]
        self.chunks.setdefault(name, []).append(v.to("cpu", torch.float32).clone())  # later in-place ops cannot touch it

    def end_batch(self, n_examples: int) -> None:
        if self.first_order is None:
            self.first_order = list(self.order)
        elif self.order != self.first_order:
            raise GraphticketsError("the network read different hidden tensors on different batches; "
                                    "cannot line up its representations")  # fmt: skip
        self.kept += n_examples


def _predict(
    net: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor | None]], device: str | torch.device, rec: _Recorder
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[float]]:
    """Predicted classes, class targets and summed cross-entropies per batch (``rec`` records the rest)."""
    preds, labels, losses = [], [], []
    with torch.no_grad():
        for x, y in batches:
            rec.start_batch()
            out = net(x.to(device))
            rec.end_batch(int(x.shape[0]))
            if out.dim() != 2 or out.shape[1] < 2:
                raise GraphticketsError(f"functional distances need class scores (batch x classes), got outputs of shape {tuple(out.shape)}")
            preds.append(out.argmax(dim=1).cpu())
            if y is not None and not y.is_floating_point() and y.dim() == 1:
                labels.append(y.cpu())
                losses.append(float(nn.functional.cross_entropy(out, y.to(device), reduction="sum")))
    return preds, labels, losses


def _profile(ctx: Context, t: Any) -> FunctionProfile:
    if not isinstance(t, Ticket):
        raise GraphticketsError("functional distances compare trained tickets (with weights), not graphs")
    if "function:data" not in ctx.cache:
        ctx.cache["function:data"] = as_batches(ctx.data)
    key = (id(t), "function")
    if key not in ctx.cache:
        opts = {k: ctx.options[k] for k in ("conv", "cka_examples", "device") if k in ctx.options}
        ctx.cache[key] = (t, profile(t, ctx.model, ctx.cache["function:data"], **opts))
    return ctx.cache[key][1]


# --------------------------------------------------------------------------- pairwise measures
def _pair(pa: Any, pb: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(pa).ravel(), np.asarray(pb).ravel()
    if a.shape != b.shape or a.size == 0:
        raise GraphticketsError(f"predictions of different lengths ({a.size} and {b.size}); use the same test inputs")
    return a, b


def agreement(pa: Any, pb: Any) -> float:
    """Fraction of inputs on which two predictions agree.

    Examples
    --------
    >>> agreement([0, 1, 2, 2], [0, 1, 1, 2])
    0.75
    """
    a, b = _pair(pa, pb)
    return float(np.mean(a == b))


def cohen_kappa(pa: Any, pb: Any) -> float:
    """Cohen's kappa of two predictions: ``(p_o - p_e) / (1 - p_e)``.

    ``p_o`` is the observed agreement, ``p_e = sum_c f_a(c) f_b(c)`` the agreement expected
    of independent predictions with the same class frequencies ``f_a``, ``f_b``. 1 for
    identical predictions, about 0 for independent ones, negative below chance. When
    ``p_e = 1`` (both always predict one and the same class) kappa is 1.

    Examples
    --------
    >>> round(cohen_kappa([0, 0, 1, 1], [0, 1, 1, 1]), 4)
    0.5

    References
    ----------
    J. Cohen, Educational and Psychological Measurement 20, 1960.
    """
    a, b = _pair(pa, pb)
    po = float(np.mean(a == b))
    classes, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    fa = np.bincount(inv[: a.size], minlength=classes.size) / a.size
    fb = np.bincount(inv[a.size :], minlength=classes.size) / b.size
    pe = float(np.sum(fa * fb))
    if pe >= 1.0 - 1e-15:
        return 1.0 if po >= 1.0 - 1e-15 else 0.0
    return (po - pe) / (1.0 - pe)


def error_consistency(pa: Any, pb: Any, labels: Any) -> float:
    """Cohen's kappa of being right, given both accuracies (Geirhos et al. 2020).

    ``c_obs`` = fraction of inputs both get right or both get wrong; ``c_exp = acc_a acc_b +
    (1 - acc_a)(1 - acc_b)`` is that fraction for independent errors at these accuracies;
    ``kappa = (c_obs - c_exp) / (1 - c_exp)``: about 0 when the two err independently, 1 when
    they err on exactly the same inputs (1 also when ``c_exp = 1``: both always right or
    always wrong).

    Examples
    --------
    >>> error_consistency([0, 1, 2, 0], [0, 1, 0, 0], [0, 1, 2, 1])  # right/wrong: 1101, 1100
    0.5

    References
    ----------
    R. Geirhos, K. Meding, F. A. Wichmann, NeurIPS 2020.
    """
    a, b = _pair(pa, pb)
    y = np.asarray(labels).ravel()
    if y.shape != a.shape:
        raise GraphticketsError("labels must have one entry per prediction")
    ra, rb = a == y, b == y
    c_obs = float(np.mean(ra == rb))
    acc_a, acc_b = float(ra.mean()), float(rb.mean())
    c_exp = acc_a * acc_b + (1 - acc_a) * (1 - acc_b)
    if c_exp >= 1.0 - 1e-15:
        return 1.0 if c_obs >= 1.0 - 1e-15 else 0.0
    return (c_obs - c_exp) / (1.0 - c_exp)


def linear_cka(x: Any, y: Any) -> float:
    """Linear CKA between two representations of the same ``n`` inputs.

    ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`` with ``X`` (``n x p``), ``Y`` (``n x q``)
    column-centred; inputs with more than two dimensions are flattened per example.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(50, 4))
    >>> round(linear_cka(x, 3 * x @ np.linalg.qr(np.random.default_rng(1).normal(size=(4, 4)))[0]), 10)
    1.0

    References
    ----------
    Kornblith et al., "Similarity of Neural Network Representations Revisited", ICML 2019.
    """
    tx, ty = (torch.as_tensor(np.asarray(v, dtype=np.float64)) for v in (x, y))
    if tx.shape[0] != ty.shape[0]:
        raise GraphticketsError(f"the representations have {tx.shape[0]} and {ty.shape[0]} rows; they must be of the same inputs")
    return _cka(_centred([tx.reshape(tx.shape[0], -1)]), _centred([ty.reshape(ty.shape[0], -1)]))


def _profiles(a: Ticket, b: Ticket, model: nn.Module | None, data: Any, **options: Any) -> tuple[FunctionProfile, FunctionProfile]:
    """The profiles of two tickets on the same test batches (read once)."""
    ctx = Context(model=model, data=data, options=options)
    return _profile(ctx, a), _profile(ctx, b)


def _layer_ckas(fa: FunctionProfile, fb: FunctionProfile) -> dict[str, float]:
    if fa.layers != fb.layers:
        raise GraphticketsError(f"the networks have different hidden layers ({fa.layers} vs {fb.layers}); compare one architecture")
    return {n: _cka(ra, rb) for n, ra, rb in zip(fa.layers, fa.reps, fb.reps, strict=True)}


def cka_layers(
    a: Ticket, b: Ticket, *, model: nn.Module | None = None, data: Any, conv: str = "flatten",
    cka_examples: int | None = CKA_MAX_EXAMPLES, device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Linear CKA of two trained tickets per hidden representation (module docstring).

    Parameters
    ----------
    a, b : Ticket
    model, data, conv, cka_examples, device
        As in :func:`functional_details`.

    Returns
    -------
    dict[str, float]
        ``{name of the module reading it: CKA}`` in forward order.
    """
    return _layer_ckas(*_profiles(a, b, model, data, conv=conv, cka_examples=cka_examples, device=device))


def functional_details(
    a: Ticket, b: Ticket, *, model: nn.Module | None = None, data: Any, conv: str = "flatten",
    cka_examples: int | None = CKA_MAX_EXAMPLES, device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Every functional comparison of two trained tickets in one pass.

    Parameters
    ----------
    a, b : Ticket
        Trained tickets (carrying ``weights``) of one architecture.
    model : nn.Module, optional
        The architecture (a copy is used); default: built from each ticket's spec.
    data : iterable of (inputs, targets)
        Test batches, read once; both tickets see them in the same order.
    conv : {"flatten", "mean"}
        How conv maps become vectors (module docstring).
    cka_examples : int or None
        CKA on the first this many inputs (None: all).
    device : str or torch.device

    Returns
    -------
    dict[str, float]
        ``accuracy_a``, ``accuracy_b``, ``agreement``, ``kappa``, ``error_consistency``,
        ``cka`` (mean over layers) and ``cka/<layer>`` per layer (similarities, not
        distances: the registered kinds are 1 minus these).
    """
    fa, fb = _profiles(a, b, model, data, conv=conv, cka_examples=cka_examples, device=device)
    per = _layer_ckas(fa, fb)
    out = {"accuracy_a": fa.accuracy, "accuracy_b": fb.accuracy, "agreement": agreement(fa.predictions, fb.predictions),
           "kappa": cohen_kappa(fa.predictions, fb.predictions)}  # fmt: skip
    out["error_consistency"] = error_consistency(fa.predictions, fb.predictions, fa.labels) if fa.labels is not None else float("nan")
    out["cka"] = float(np.mean(list(per.values()))) if per else float("nan")
    out.update({f"cka/{k}": v for k, v in per.items()})
    return out


# --------------------------------------------------------------------------- registered kinds
@register_distance("agreement", needs_model=True, family="function", needs_data=True, question="function",
                   representative=True)
def _agreement(a: Any, b: Any, ctx: Context) -> float:
    """1 - fraction of test inputs on which the two trained tickets predict the same class."""
    return 1.0 - agreement(_profile(ctx, a).predictions, _profile(ctx, b).predictions)


@register_distance("agreement_kappa", needs_model=True, family="function", needs_data=True, question="function")
def _agreement_kappa(a: Any, b: Any, ctx: Context) -> float:
    """1 - Cohen's kappa of the two predictions (in [0, 2]; 1 = chance agreement)."""
    return 1.0 - cohen_kappa(_profile(ctx, a).predictions, _profile(ctx, b).predictions)


@register_distance("error_consistency", needs_model=True, family="function", needs_data=True, question="function")
def _error_consistency(a: Any, b: Any, ctx: Context) -> float:
    """1 - Geirhos et al.'s error consistency (in [0, 2]; 1 = independent errors)."""
    fa, fb = _profile(ctx, a), _profile(ctx, b)
    if fa.labels is None:
        raise GraphticketsError("error_consistency needs class targets in the test batches")
    return 1.0 - error_consistency(fa.predictions, fb.predictions, fa.labels)


@register_distance("cka", needs_model=True, family="function", needs_data=True, question="function")
def _cka_distance(a: Any, b: Any, ctx: Context) -> float:
    """1 - linear CKA of the hidden representations, averaged over layers."""
    per = _layer_ckas(_profile(ctx, a), _profile(ctx, b))
    if not per:
        raise GraphticketsError("the network has no hidden representation (a single weight layer); cka needs one")
    return 1.0 - float(np.mean(list(per.values())))


# --------------------------------------------------------------------------- loss barrier
@dataclass(frozen=True)
class BarrierResult:
    """The loss and error along the linear path between two trained tickets.

    Attributes
    ----------
    barrier : float
        ``max_i [L(alpha_i) - ((1 - alpha_i) L(0) + alpha_i L(1))]`` (cross-entropy, >= 0).
    error_barrier : float
        The same for the test error (Frankle et al.'s instability).
    alphas, losses, errors : tuple of float
        The path.
    """

    barrier: float
    error_barrier: float
    alphas: tuple[float, ...]
    losses: tuple[float, ...]
    errors: tuple[float, ...]


def loss_barrier(
    a: Ticket, b: Ticket, *, model: nn.Module | None = None, data: Any, points: int = 11,
    device: str | torch.device = "cpu",
) -> BarrierResult:
    """Loss (and error) barrier on the linear path between two trained tickets of one init.

    Each ticket's network (its weights with its mask multiplied in) gives a state ``A``, ``B``;
    the path is ``((K - i) A + i B) / K``, ``i = 0..K`` (``K = points - 1``; computed so that
    swapping ``a`` and ``b`` gives the same numbers), every parameter and float buffer
    (BatchNorm statistics included) interpolated, and evaluated on ``data``. The barrier is the
    largest excess of the path's loss over the straight line between its ends (0 when the
    path never rises above it). Frankle et al. find trained IMP tickets of one init (rewound
    early enough) linearly connected -- barrier near 0 -- and tickets of different inits not;
    between different inits hidden units are not aligned and the path is not meaningful.

    Parameters
    ----------
    a, b : Ticket
        Trained tickets (with ``weights``) of one architecture.
    model : nn.Module, optional
        The architecture (default: built from ``a``'s spec).
    data : iterable of (inputs, targets)
    points : int, default 11
    device : str or torch.device

    Returns
    -------
    BarrierResult

    References
    ----------
    J. Frankle et al., "Linear Mode Connectivity and the Lottery Ticket Hypothesis", ICML 2020.
    """
    k = int(points) - 1
    if k < 2:
        raise GraphticketsError(f"points must be >= 3, got {points}")
    batches = as_batches(data)
    if any(y is None for _, y in batches):
        raise GraphticketsError("loss_barrier needs class targets in the test batches")
    na, nb = _network(a, model), _network(b, model)
    sa, sb = na.state_dict(), nb.state_dict()
    if sa.keys() != sb.keys():
        raise GraphticketsError("the two tickets' networks have different parameters; compare one architecture")
    if all(torch.equal(sa[n], sb[n]) for n in sa):
        alphas = tuple(i / k for i in range(k + 1))
        ev = _evaluate(na, batches, device)
        return BarrierResult(0.0, 0.0, alphas, (ev[0],) * (k + 1), (ev[1],) * (k + 1))
    net = copy.deepcopy(na)
    losses, errors = [], []
    for i in range(k + 1):
        mixed = {n: ((k - i) * sa[n] + i * sb[n]) / k if sa[n].is_floating_point() else torch.maximum(sa[n], sb[n])
                 for n in sa}  # fmt: skip
        net.load_state_dict(mixed)
        loss, err = _evaluate(net, batches, device)
        losses.append(loss)
        errors.append(err)

    def excess(v: list[float]) -> float:
        return max(0.0, max(v[i] - ((k - i) * v[0] + i * v[k]) / k for i in range(k + 1)))

    return BarrierResult(excess(losses), excess(errors), tuple(i / k for i in range(k + 1)), tuple(losses), tuple(errors))


def _evaluate(net: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor | None]], device: str | torch.device) -> tuple[float, float]:
    net.to(device).eval()
    total = wrong = 0.0
    n = 0
    with torch.no_grad():
        for x, y in batches:
            assert y is not None
            out = net(x.to(device))
            yy = y.to(device)
            total += float(nn.functional.cross_entropy(out, yy, reduction="sum"))
            wrong += float((out.argmax(dim=1) != yy).sum())
            n += int(yy.shape[0])
    return total / n, wrong / n
