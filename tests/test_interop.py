"""Tickets from other tools and back: state dicts, mask dicts, .npz, the import/export commands."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune as tprune

import graphtickets as gt
from graphtickets import interop
from graphtickets.cli import main
from graphtickets.errors import TicketError


def _mlp(seed: int = 0) -> nn.Module:
    return gt.models.build("mlp", in_shape=(12,), num_classes=4, widths=(10, 8), seed=seed)


def _conv(seed: int = 0) -> nn.Module:
    return gt.models.build("conv2", in_shape=(1, 8, 8), num_classes=3, seed=seed, width=0.125)


@pytest.fixture(params=["mlp", "conv"])
def model_and_ticket(request):
    model = _mlp() if request.param == "mlp" else _conv()
    ticket = gt.pruning.prune(model, "random", density=0.3, seed=3)
    return model, ticket


def _same_masks(a: gt.Ticket, b: gt.Ticket) -> None:
    assert list(a.masks) == list(b.masks)
    for k in a.masks:
        assert a.masks[k].dtype == b.masks[k].dtype == torch.bool
        assert torch.equal(a.masks[k], b.masks[k]), k


# ---------------------------------------------------------------------------- state dicts
def test_state_dict_round_trip_is_exact(model_and_ticket):
    model, ticket = model_and_ticket
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sd = ticket.to_state_dict(model)
    # the model is untouched; pruned weights are zeros, the rest equals the model's values
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    for n, m in ticket.masks.items():
        assert torch.equal(sd[n] == 0, ~m)
        assert torch.equal(sd[n][m], before[n][m])
    back = gt.Ticket.from_state_dict(model, sd, method="random")
    _same_masks(ticket, back)
    assert back == ticket
    assert back.config["model"] == model.gt_spec
    assert back.meta["imported"]["rule"] == "zero = pruned"
    # and with weights kept: the state dict comes back bit for bit
    with_w = gt.Ticket.from_state_dict(model, sd, weights=True)
    again = with_w.to_state_dict(_mlp(seed=5) if "fc1.weight" in sd else _conv(seed=5))
    assert sd.keys() == again.keys()
    for k in sd:
        assert torch.equal(sd[k], again[k]), k


def test_zero_rule_hand_example():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    sd = model.state_dict()
    sd["0.weight"] = torch.tensor([[0.0, 1.5, -0.0], [2.0, float("nan"), 0.0]])
    sd["2.weight"] = torch.tensor([[0.25, 0.0]])
    sd["0.bias"] = torch.zeros(2)  # biases are not prunable: zeros there mean nothing
    t = gt.Ticket.from_state_dict(model, sd)
    assert t.masks["0.weight"].tolist() == [[False, True, False], [True, True, False]]
    assert t.masks["2.weight"].tolist() == [[True, False]]
    assert set(t.masks) == {"0.weight", "2.weight"}
    assert t.kept == 4 and t.total == 8
    # params= narrows what is read
    only = gt.Ticket.from_state_dict(model, sd, params=["2.weight"])
    assert list(only.masks) == ["2.weight"]


def test_dense_checkpoint_reads_as_density_one():
    model = _mlp()
    t = gt.Ticket.from_state_dict(model, model.state_dict())
    assert t.density == 1.0


def test_kept_zero_weight_needs_masks():
    model = _mlp()
    ticket = gt.pruning.prune(model, "magnitude", density=0.5)
    n = next(iter(ticket.masks))
    idx = ticket.masks[n].nonzero()[0]
    with torch.no_grad():
        model.get_parameter(n)[tuple(idx)] = 0.0  # a genuine zero at a kept position
    with pytest.raises(TicketError, match="masks=True"):
        ticket.to_state_dict(model)
    sd = ticket.to_state_dict(model, masks=True)
    assert sd[f"{n}_mask"].dtype == torch.bool
    back = gt.Ticket.from_state_dict(model, sd)
    _same_masks(ticket, back)
    assert back.meta["imported"]["rule"] == "explicit <name>_mask"


def test_torch_prune_state_dict_and_buffers_agree():
    model = _mlp()
    params = [(m, "weight") for m in model.modules() if isinstance(m, nn.Linear)]
    tprune.global_unstructured(params, pruning_method=tprune.L1Unstructured, amount=0.7)
    sd = model.state_dict()
    assert any(k.endswith("weight_orig") for k in sd)
    plain = _mlp()
    from_sd = gt.Ticket.from_state_dict(plain, sd, weights=True)
    from_buffers = gt.Ticket.from_torch_prune(model)
    _same_masks(from_sd, from_buffers)
    # torch's own masks (the oracle) against ours
    for name, buf in model.named_buffers():
        assert torch.equal(from_sd.masks[name.removesuffix("_mask")], buf.bool())
    # the weights read from weight_orig * mask equal torch's effective weights
    for name, _ in plain.named_parameters():
        mod, _, p = name.rpartition(".")
        assert torch.equal(from_sd.weights[name], getattr(model.get_submodule(mod), p).detach())


def test_module_prefix_and_nested_checkpoint(tmp_path):
    model = _mlp()
    ticket = gt.pruning.prune(model, "magnitude", density=0.2)
    sd = {f"module.{k}": v for k, v in ticket.to_state_dict(model).items()}
    path = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3, "state_dict": sd}, path)
    back = interop.load(path, model, method="magnitude")
    _same_masks(ticket, back)
    assert back.meta["imported"]["source"] == "ckpt.pth"
    assert len(back.meta["imported"]["sha256"]) == 64


def test_state_dict_errors():
    model = _mlp()
    sd = model.state_dict()
    with pytest.raises(TicketError, match="no entry 'fc2.weight'"):
        gt.Ticket.from_state_dict(model, {k: v for k, v in sd.items() if k != "fc2.weight"})
    bad = dict(sd)
    bad["fc1.weight"] = torch.ones(3, 3)
    with pytest.raises(TicketError, match="other widths"):
        gt.Ticket.from_state_dict(model, bad)
    with pytest.raises(TicketError, match="every prunable weight"):
        gt.Ticket.from_state_dict(model, {k: torch.zeros_like(v) for k, v in sd.items()})


# ---------------------------------------------------------------------------- files
@pytest.mark.parametrize("fmt,suffix", [("masks", ".pt"), ("open_lth", ".pth"), ("npz", ".npz"),
                                        ("masks", ".safetensors"), ("state_dict", ".pt"),
                                        ("state_dict", ".safetensors"), ("ticket", ".safetensors")])
def test_file_round_trips(tmp_path, model_and_ticket, fmt, suffix):
    model, ticket = model_and_ticket
    path = interop.save(ticket, tmp_path / f"t{suffix}", format=fmt, model=model)
    back = interop.load(path, model, method=ticket.method)
    _same_masks(ticket, back)
    if fmt == "ticket":
        assert back.config == ticket.config
    else:
        assert back.meta["imported"]["format"].startswith("masks" if fmt != "state_dict" else "state_dict")


def test_files_written_by_other_code_are_read(tmp_path):
    model = _mlp()
    ticket = gt.pruning.prune(model, "random", density=0.4, seed=1)
    # open_lth writes {name: int 0/1 tensor} with torch.save
    torch.save({k: v.int() for k, v in ticket.masks.items()}, tmp_path / "mask.pth")
    # a numpy user writes 0/1 uint8 arrays
    np.savez(tmp_path / "m.npz", **{k: v.numpy().astype(np.uint8) for k, v in ticket.masks.items()})
    # a torch.nn.utils.prune user saves the mask buffers
    pruned = _mlp()
    ticket.to_torch_prune(pruned)
    torch.save({k: v for k, v in pruned.state_dict().items() if k.endswith("_mask")}, tmp_path / "buffers.pt")
    for name in ("mask.pth", "m.npz", "buffers.pt"):
        back = interop.load(tmp_path / name, model)
        _same_masks(ticket, back)
    # the exported files open with the other tools' own loaders
    interop.save(ticket, tmp_path / "x.pt", format="masks")
    raw = torch.load(tmp_path / "x.pt", weights_only=True)
    assert all(torch.equal(raw[k], ticket.masks[k]) for k in ticket.masks)
    interop.save(ticket, tmp_path / "x.npz", format="npz")
    with np.load(tmp_path / "x.npz", allow_pickle=False) as z:
        assert all(np.array_equal(z[k], ticket.masks[k].numpy()) for k in ticket.masks)
    interop.save(ticket, tmp_path / "o.pth", format="open_lth")
    assert torch.load(tmp_path / "o.pth", weights_only=True)["fc1.weight"].dtype == torch.int32


def test_masks_without_model_and_partial_masks(tmp_path):
    model = _mlp()
    ticket = gt.pruning.prune(model, "magnitude", density=0.3)
    part = {k: v for k, v in ticket.masks.items() if k != "classifier.weight"}  # classifier kept dense
    torch.save(part, tmp_path / "part.pt")
    back = interop.load(tmp_path / "part.pt", model)
    assert list(back.masks) == list(part)
    free = interop.load(tmp_path / "part.pt")  # no model: the masks as they are
    assert free.config["model"] is None and list(free.masks) == list(part)


def test_pickled_model_is_refused(tmp_path):
    torch.save(_mlp(), tmp_path / "whole_model.pt")  # needs pickle to load
    with pytest.raises(TicketError, match="weights_only=True"):
        interop.load(tmp_path / "whole_model.pt", _mlp())


def test_bad_mask_values_and_missing_model(tmp_path):
    model = _mlp()
    with pytest.raises(TicketError, match="other than 0 and 1"):
        interop.from_masks(model, {"fc1.weight": torch.full((10, 12), 2)})
    torch.save(model.state_dict(), tmp_path / "w.pt")
    with pytest.raises(TicketError, match="needs the model"):
        interop.load(tmp_path / "w.pt")
    with pytest.raises(TicketError, match="does not have"):
        interop.from_masks(model, {"nope.weight": torch.ones(2, 2)})


def test_imported_ticket_for_a_study(tmp_path):
    model = _mlp()
    ticket = gt.pruning.prune(model, "snip", density=0.1, data=[(torch.randn(16, 12), torch.randint(0, 4, (16,)))])
    path = interop.save(ticket, tmp_path / "other.npz", format="npz")
    t = interop.imported_ticket(path, model, method="other_tool", density=0.1)
    assert t.method == "other_tool" and t.config["density"] == 0.1
    _same_masks(ticket, t)
    with pytest.raises(TicketError, match="density"):
        interop.imported_ticket(path, model, density=0.5)
    part = {k: v for k, v in ticket.masks.items() if k != "classifier.weight"}
    np.savez(tmp_path / "part.npz", **{k: v.numpy() for k, v in part.items()})
    with pytest.raises(TicketError, match="exactly gt.prunable"):
        interop.imported_ticket(tmp_path / "part.npz", model)


# ---------------------------------------------------------------------------- CLI
def test_cli_import_export_round_trip(tmp_path, capsys):
    model = gt.models.build("mlp", in_shape=(40,), num_classes=10, widths=(16, 16), seed=2)
    ticket = gt.pruning.prune(model, "magnitude", density=0.1)
    ticket.save(tmp_path / "t.safetensors")
    for fmt in ("state_dict", "masks", "npz", "open_lth"):
        out = tmp_path / f"e-{fmt}{'.npz' if fmt == 'npz' else '.pt'}"
        assert main(["export", str(tmp_path / "t.safetensors"), "--format", fmt, "--out", str(out)]) == 0
        back = tmp_path / f"back-{fmt}.safetensors"
        rc = main(["import", str(out), "--model", "mlp", "--dataset", "mnist1d", "--model-arg", "widths=[16,16]",
                   "--seed", "2", "--method", "magnitude", "--out", str(back)])
        assert rc == 0
        t = gt.Ticket.load(back)
        _same_masks(ticket, t)
        assert t.config["model"] == model.gt_spec  # the ticket rebuilds its model
        assert t.build_model().gt_spec == model.gt_spec
    # --like takes the architecture from a ticket
    assert main(["import", str(tmp_path / "e-npz.npz"), "--like", str(tmp_path / "t.safetensors"),
                 "--out", str(tmp_path / "like.safetensors")]) == 0
    _same_masks(ticket, gt.Ticket.load(tmp_path / "like.safetensors"))
    capsys.readouterr()
    # bad input: one line, exit 2
    assert main(["import", str(tmp_path / "e-state_dict.pt"), "--model", "mlp", "--dataset", "mnist1d",
                 "--out", str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "other widths" in err
