"""Effective masks: the weights of a ticket that lie on some input -> output path.

A live weight none of whose paths reaches both an input and an output cannot change the
network's output through that weight's own product chain (Vysogorets & Kempe 2023); two
tickets that differ only in such weights compute alike (up to biases of units that have
lost their inputs, which still pass a constant on). Every mask distance can be taken on the
effective masks: ``distance(a, b, kind, model=m, effective=True)``.

The paths are those of the layered graph (:func:`graphtickets.graphs.layered_graph`, the same
ones :func:`~graphtickets.analysis.effective_density` counts), so conv weights are judged at
channel level: a live kernel entry is effective when its (input channel, output channel)
pair lies on a live path -- exact for Linear layers, an upper bound for padded convs (see
:func:`~graphtickets.analysis.effective_density`).

References
----------
.. [1] A. Vysogorets, J. Kempe, "Connectivity Matters: Neural Network Pruning Through the Lens
   of Effective Sparsity", JMLR 24, 2023.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from graphtickets.analysis.structure import effective_mask
from graphtickets.errors import GraphticketsError
from graphtickets.ticket import Ticket

__all__ = ["effective_masks", "effective_ticket"]


def effective_masks(ticket: Ticket, model: nn.Module, *, input_shape: tuple[int, ...] | None = None) -> dict[str, torch.Tensor]:
    """The ticket's masks restricted to the weights on some input -> output path.

    Parameters
    ----------
    ticket : Ticket
    model : nn.Module
        The architecture (traced with ``torch.fx``).
    input_shape : tuple of int, optional
        One sample's shape, for models without ``gt_spec``.

    Returns
    -------
    dict[str, torch.Tensor]
        One bool tensor per mask of the ticket, ``<=`` the mask. Masks of Linear/Conv weights
        are restricted; other masks (biases, with ``include_bias``) are returned unchanged; a
        masked weight the traced network never uses is entirely ineffective.

    Examples
    --------
    >>> import torch, graphtickets as gt
    >>> m = gt.models.build("mlp", in_shape=(2,), num_classes=2, widths=(2,), seed=0)
    >>> t = gt.Ticket({"fc1.weight": torch.tensor([[True, True], [True, False]]),
    ...                "classifier.weight": torch.tensor([[True, False], [False, False]])})
    >>> effective_masks(t, m)["fc1.weight"].tolist()  # hidden unit 1 reaches no output
    [[True, True], [False, False]]

    References
    ----------
    Vysogorets & Kempe (2023), JMLR 24.
    """
    from graphtickets.graphs import layered_graph

    g = layered_graph(model, ticket, weights=None, input_shape=input_shape)
    _, eff = effective_mask(g)
    eff = eff.tocsr()
    out: dict[str, torch.Tensor] = {}
    seen: set[str] = set()
    rows = g.edge_params[g.edge_params["kind"].isin(("linear", "conv"))]
    for r in rows.itertuples():
        name = str(r.param)
        if name not in ticket.masks:
            continue
        mask = ticket.masks[name]
        s0, s1, d0, d1 = int(r.src_start), int(r.src_stop), int(r.dst_start), int(r.dst_stop)
        block = (eff[s0:s1, d0:d1] != 0).toarray().T  # (out units, in units) on a live path
        n_out, n_in = block.shape
        if mask.dim() < 2 or mask.shape[0] != n_out or n_in % mask.shape[1]:
            raise GraphticketsError(
                f"mask {name!r} of shape {tuple(mask.shape)} does not fit its layer's {n_in} inputs and "
                f"{n_out} outputs in the traced graph"
            )
        groups = n_in // mask.shape[1]
        cin_g, out_g = mask.shape[1], n_out // groups
        o = np.arange(n_out)
        cols = (o // out_g)[:, None] * cin_g + np.arange(cin_g)[None, :]
        channel = torch.from_numpy(np.take_along_axis(block, cols, axis=1))
        channel = channel.reshape(channel.shape + (1,) * (mask.dim() - 2))
        keep = mask & channel
        out[name] = out[name] | keep if name in seen else keep  # a weight used twice: on a path in any use
        seen.add(name)
    for name, mask in ticket.masks.items():
        if name not in out:
            traced = name.endswith(".weight") or name == "weight"
            out[name] = torch.zeros_like(mask) if traced and mask.dim() >= 2 else mask.clone()
    return {n: out[n] for n in ticket.masks}


def effective_ticket(ticket: Ticket, model: nn.Module, *, input_shape: tuple[int, ...] | None = None) -> Ticket:
    """The ticket with its masks replaced by :func:`effective_masks` (same provenance, no weights).

    ``meta["effective"] = True``. A ticket whose layers collapsed has no effective weight; its
    effective ticket keeps none (the only Ticket allowed to, so that distances between
    collapsed tickets stay defined: 0 between two empty masks).

    Parameters
    ----------
    ticket : Ticket
    model : nn.Module
    input_shape : tuple of int, optional

    Returns
    -------
    Ticket
    """
    masks = effective_masks(ticket, model, input_shape=input_shape)
    if any(bool(m.any()) for m in masks.values()):
        return ticket.replace(masks, effective=True)
    t = object.__new__(Ticket)  # every weight ineffective: bypass the "keeps no weight" check
    t.masks, t.method, t.config, t.weights = masks, ticket.method, dict(ticket.config), None
    t.meta = {**ticket.meta, "effective": True}
    return t
