"""Layer collapse: layers of a ticket through which no signal passes from input to output.

Tanaka et al. (2020) call a layer collapsed when it is entirely pruned; more generally a
layer is useless when none of its live weights lies on a path from the input to the output.
:func:`collapsed_layers` checks both on a channel-level view of the network:

* a layer (prunable parameter) with no live weight is collapsed, always;
* for a plain chain of ``Linear``/``Conv`` layers (no residual ``add`` or ``cat`` in the
  ``torch.fx`` trace, each layer feeding the next, BatchNorm/activations/pooling keeping
  channel identity, ``flatten`` mapping channel ``c`` to features ``c*s .. c*s+s-1``), the
  units reachable from the input are propagated forward and the units that reach the output
  backward, through each layer's (out, in) connectivity (a conv connection is live when any
  of its kernel entries is); a layer is collapsed when no live connection joins a reachable
  input unit to an output unit that reaches the output.

Limits: biases are ignored (a path is made of weights); for residual networks (or anything
that is not such a chain) only the "no live weight" rule is applied, because a skip
connection can carry the signal around a layer whose own path is cut. Use
``graphtickets.graphs.layered_graph`` for the full, traced connectivity.

References
----------
.. [1] Tanaka, Kunin, Yamins, Ganguli. "Pruning neural networks without any data by
   iteratively conserving synaptic flow." NeurIPS 2020 (layer collapse, Fig. 1).
"""

from __future__ import annotations

import operator

import numpy as np
import torch
from torch import nn

from graphtickets.errors import GraphticketsError
from graphtickets.ticket import Ticket

__all__ = ["collapsed_layers", "is_chain", "channel_connectivity"]

_LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def channel_connectivity(mask: torch.Tensor) -> np.ndarray:
    """``(out, in)`` boolean matrix: a connection is live when any of its kernel entries is."""
    m = mask.detach().cpu().bool()
    if m.dim() == 1:  # a bias: no connection structure
        raise GraphticketsError("channel_connectivity takes a weight mask of 2 or more dimensions")
    return m.reshape(m.shape[0], m.shape[1], -1).any(dim=2).numpy()


def is_chain(model: nn.Module) -> bool:
    """True when ``torch.fx`` traces ``model`` with no ``add``/``cat`` merging two branches."""
    try:
        import torch.fx as fx

        graph = fx.symbolic_trace(model).graph
    except Exception:  # untraceable models are treated as non-chains
        return False
    merge_fns = {operator.add, operator.iadd, torch.add, torch.cat, torch.stack, torch.concat}
    for node in graph.nodes:
        if node.op == "call_function" and node.target in merge_fns:
            args = [a for a in node.args if isinstance(a, fx.Node)]
            flat = [a for a in (node.args[0] if node.args and isinstance(node.args[0], (list, tuple)) else []) if isinstance(a, fx.Node)]
            if len(args) >= 2 or len(flat) >= 2:
                return False
        if node.op == "call_method" and node.target in ("add", "add_"):
            return False
    return True


def _map_units(prev_out: np.ndarray, n_in: int, name: str) -> np.ndarray:
    """Units of the next layer's input from the previous layer's output units (flatten aware)."""
    n_out = prev_out.size
    if n_in == n_out:
        return prev_out
    if n_in % n_out == 0:  # flatten: channel c -> features c*s .. c*s+s-1
        return np.asarray(np.repeat(prev_out, n_in // n_out), dtype=bool)
    raise GraphticketsError(
        f"layer {name!r} takes {n_in} inputs but the layer before it gives {n_out} units; "
        "collapsed_layers handles chains of Linear/Conv (with flatten) only"
    )


def _to_prev(units: np.ndarray, n_prev: int) -> np.ndarray:
    """Backward version of :func:`_map_units`: a channel reaches the output if any feature does."""
    if units.size == n_prev:
        return units
    return np.asarray(units.reshape(n_prev, -1).any(axis=1), dtype=bool)


def collapsed_layers(model: nn.Module, ticket: Ticket) -> list[str]:
    """Names of the masked weights of ``ticket`` that carry no input-to-output signal.

    Parameters
    ----------
    model : nn.Module
        The architecture the ticket belongs to (weights are not read).
    ticket : Ticket

    Returns
    -------
    list of str
        Parameter names in mask order: layers with no live weight, and (for chains of
        Linear/Conv layers) layers with no live weight on an input-to-output path.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> t = Ticket({"0.weight": torch.tensor([[True, True], [False, False]]),
    ...             "2.weight": torch.tensor([[False, True]])})
    >>> collapsed_layers(net, t)   # the only live path enters unit 0, which 2.weight drops
    ['0.weight', '2.weight']
    """
    ticket.check(model)
    dead = [n for n, m in ticket.masks.items() if not bool(m.any())]
    if not is_chain(model):
        return dead
    layers = [(f"{mn}.weight" if mn else "weight", mod) for mn, mod in model.named_modules() if isinstance(mod, _LAYER_TYPES)]
    conn = []
    for name, mod in layers:
        w = mod.weight
        m = ticket.masks.get(name)
        if m is None:  # not masked: dense
            m = torch.ones(w.shape, dtype=torch.bool)
        if getattr(mod, "groups", 1) != 1:
            return dead  # grouped convs: channel maps differ; keep to the simple rule
        conn.append((name, channel_connectivity(m)))
    if not conn:
        return dead
    # forward: units reachable from the input
    fwd_in: list[np.ndarray] = []
    reach = np.ones(conn[0][1].shape[1], dtype=bool)
    for i, (name, c) in enumerate(conn):
        if i > 0:
            reach = _map_units(reach, c.shape[1], name)
        fwd_in.append(reach)
        reach = np.asarray((c & reach[None, :]).any(axis=1), dtype=bool)
    # backward: units that reach the output
    bwd_out: list[np.ndarray] = [np.empty(0, dtype=bool)] * len(conn)
    co = np.ones(conn[-1][1].shape[0], dtype=bool)
    for i in range(len(conn) - 1, -1, -1):
        name, c = conn[i]
        bwd_out[i] = co
        co = np.asarray((c & co[:, None]).any(axis=0), dtype=bool)
        if i > 0:
            co = _to_prev(co, conn[i - 1][1].shape[0])
    cut = {
        name
        for (name, c), r, o in zip(conn, fwd_in, bwd_out, strict=True)
        if not bool((c & o[:, None] & r[None, :]).any())
    }
    return [n for n in ticket.masks if n in cut or n in dead]
