"""Ticket: counts, validation, apply, torch.nn.utils.prune interop, safetensors files."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as tprune

import graphtickets as gt
from graphtickets.errors import TicketError


def _net(seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return net


def _masks() -> dict[str, torch.Tensor]:
    m0 = torch.zeros(3, 4, dtype=torch.bool)
    m0[0, :] = True  # 4 kept of 12
    m2 = torch.tensor([[True, False, True], [False, False, True]])  # 3 kept of 6
    return {"0.weight": m0, "2.weight": m2}


def test_counts_by_hand():
    t = gt.Ticket(_masks(), method="manual")
    assert t.total == 18 and t.kept == 7
    assert t.density == pytest.approx(7 / 18)
    assert t.sparsity == pytest.approx(11 / 18)
    assert t.layer_densities() == {"0.weight": pytest.approx(4 / 12), "2.weight": pytest.approx(3 / 6)}
    assert t.layer_counts() == {"0.weight": (4, 12), "2.weight": (3, 6)}


def test_prunable_is_linear_and_conv_weights_only():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    names = list(gt.prunable(net))
    assert names == ["0.weight", "3.weight"]
    assert list(gt.prunable(net, include_bias=True)) == ["0.weight", "0.bias", "3.weight", "3.bias"]
    assert list(gt.prunable(net, keep_classifier_dense=True)) == ["0.weight"]


@pytest.mark.parametrize(
    "masks, fragment",
    [
        ({"0.weight": torch.ones(3, 4)}, "torch.bool"),
        ({"0.weight": [[True]]}, "torch.bool tensor"),
        ({}, "non-empty"),
        ({"0.weight": torch.zeros(3, 4, dtype=torch.bool)}, "density 0"),
    ],
)
def test_bad_masks_raise_clear_errors(masks, fragment):
    with pytest.raises(TicketError, match=fragment):
        gt.Ticket(masks)


def test_check_density_bounds():
    assert gt.check_density(1) == 1.0
    for bad in (0, -0.1, 1.5, float("nan"), "x"):
        with pytest.raises(TicketError, match=r"\(0, 1\]"):
            gt.check_density(bad)


def test_mismatch_with_model_names_the_problem():
    net = _net()
    with pytest.raises(TicketError, match="does not have"):
        gt.Ticket({"fc.weight": torch.ones(3, 4, dtype=torch.bool)}).apply(net)
    with pytest.raises(TicketError, match="shape"):
        gt.Ticket({"0.weight": torch.ones(4, 3, dtype=torch.bool)}).apply(net)


def test_apply_zeroes_exactly_the_pruned_weights():
    net, ref = _net(), _net()
    t = gt.Ticket(_masks())
    t.apply(net)
    for name, m in _masks().items():
        w, w0 = dict(net.named_parameters())[name], dict(ref.named_parameters())[name]
        assert torch.all(w[~m] == 0)
        assert torch.equal(w[m], w0[m])
    assert torch.equal(net[0].bias, ref[0].bias)  # biases untouched


def test_torch_prune_interop_both_ways():
    net = _net()
    t = gt.Ticket(_masks())
    t.to_torch_prune(net)
    assert hasattr(net[0], "weight_orig") and hasattr(net[0], "weight_mask")
    assert torch.equal(net[0].weight_mask.bool(), _masks()["0.weight"])
    back = gt.Ticket.from_torch_prune(net)
    assert back.masks.keys() == t.masks.keys()
    assert all(torch.equal(back.masks[k], t.masks[k]) for k in t.masks)
    # and from a model pruned by torch itself
    net2 = _net()
    tprune.l1_unstructured(net2[0], "weight", amount=6)
    t2 = gt.Ticket.from_torch_prune(net2)
    assert t2.kept == 6 and t2.total == 12
    with pytest.raises(TicketError, match="not pruned"):
        gt.Ticket.from_torch_prune(_net())


def test_save_load_round_trip_with_provenance(tmp_path):
    t = gt.Ticket(
        _masks(),
        method="snip",
        config={"seed": 3, "hparams": {"scope": "global", "shape": (1, 2)}, "model": {"name": "x"}},
        meta={"cost": {"seconds": 1.5, "epochs": 2}, "curve": torch.tensor([0.5, 0.25])},
    )
    p = t.save(tmp_path / "sub" / "t.safetensors")
    back = gt.Ticket.load(p)
    assert back == t
    assert list(back.masks) == ["0.weight", "2.weight"]
    assert back.config["hparams"]["shape"] == [1, 2]
    assert back.meta["cost"] == {"epochs": 2}  # wall-clock timings stay out of the file
    assert t.meta["cost"] == {"seconds": 1.5, "epochs": 2}  # ... and in memory
    assert back.verified is True
    assert back.meta["curve"] == [0.5, 0.25]
    assert back.meta["version"] == gt.__version__
    # the file is safetensors: header length + JSON header naming our metadata, no pickle
    raw = p.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    assert "graphtickets" in header["__metadata__"]
    assert b"\x80\x04" not in raw[:2]  # not a pickle protocol header
    assert not list((tmp_path / "sub").glob("*.tmp"))


def test_weights_round_trip(tmp_path):
    net = _net(1)
    w = {n: p.detach().clone() for n, p in net.named_parameters()}
    t = gt.Ticket(_masks(), weights=w)
    back = gt.Ticket.load(t.save(tmp_path / "w.safetensors"))
    assert back.weights is not None and torch.equal(back.weights["0.bias"], w["0.bias"])
    fresh = _net(2)
    back.apply(fresh)
    assert torch.equal(fresh[0].bias, w["0.bias"])
    assert torch.equal(fresh[0].weight, w["0.weight"] * _masks()["0.weight"])


def test_corrupt_and_foreign_files(tmp_path):
    from safetensors.torch import save_file

    good = gt.Ticket(_masks()).save(tmp_path / "good.safetensors")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(good.read_bytes()[:40])
    with pytest.raises(TicketError, match="corrupt"):
        gt.Ticket.load(corrupt)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"hello world, not a ticket")
    with pytest.raises(TicketError, match="corrupt|not a readable"):
        gt.Ticket.load(garbage)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"x": torch.zeros(2)}, str(foreign))
    with pytest.raises(TicketError, match="not a graphtickets ticket"):
        gt.Ticket.load(foreign)
    with pytest.raises(TicketError, match="no ticket file"):
        gt.Ticket.load(tmp_path / "missing.safetensors")


def test_build_model_needs_a_spec():
    with pytest.raises(TicketError, match="no model spec"):
        gt.Ticket(_masks()).build_model()


# ---------------------------------------------------------------------------- file integrity
def _header(raw: bytes) -> tuple[int, dict]:
    (n,) = struct.unpack("<Q", raw[:8])
    return 8 + n, json.loads(raw[8 : 8 + n])


def _flip(path, key: str, index: int, bits: int = 0x01) -> None:
    """XOR byte ``index`` of tensor ``key``'s data in a safetensors file with ``bits``."""
    raw = bytearray(path.read_bytes())
    start, header = _header(bytes(raw))
    begin, end = header[key]["data_offsets"]
    assert 0 <= index < end - begin
    raw[start + begin + index] ^= bits
    path.write_bytes(bytes(raw))


def _write_raw(path, tensors, provenance) -> None:
    from safetensors.torch import save_file

    meta = {"graphtickets": provenance if isinstance(provenance, str) else json.dumps(provenance)}
    save_file(tensors, str(path), metadata=meta)


def _prov(**over):
    return {"format": gt.ticket.FORMAT, "method": "m", "config": {}, "meta": {}, "order": ["0.weight"], **over}


def _recorded(path) -> str:
    _, header = _header(path.read_bytes())
    return header["__metadata__"]["graphtickets.sha256"]


def test_file_records_a_sha256_of_its_bytes(tmp_path):
    import hashlib

    w = {n: p.detach().clone() for n, p in _net(1).named_parameters()}
    p = gt.Ticket(_masks(), method="snip", config={"density": 0.4}, weights=w).save(tmp_path / "t.safetensors")
    raw = p.read_bytes()
    digest = _recorded(p)
    # independent recomputation: the file's bytes with the 64 hex digits of the digest as "0"
    assert raw.count(digest.encode()) == 1
    assert hashlib.sha256(raw.replace(digest.encode(), b"0" * 64)).hexdigest() == digest
    # and safetensors itself reads the file (names, tensors)
    from safetensors import safe_open

    with safe_open(str(p), framework="pt") as f:
        assert set(f.keys()) == {"mask::0.weight", "mask::2.weight", *(f"weight::{n}" for n in w)}
        assert torch.equal(f.get_tensor("mask::2.weight"), _masks()["2.weight"])
        assert torch.equal(f.get_tensor("weight::0.bias"), w["0.bias"])


def test_same_ticket_same_bytes(tmp_path):
    t = gt.Ticket(_masks(), method="snip", config={"b": 1, "a": [1, 2]}, meta={"z": 1, "cost": {"seconds": 1.0}})
    a = t.save(tmp_path / "a.safetensors").read_bytes()
    t.meta["cost"]["seconds"] = 2.5  # another timing, same ticket
    t.meta["history"] = [{"epoch": 1, "seconds": 0.3, "train_seconds": 9.0}]
    b = t.save(tmp_path / "b.safetensors").read_bytes()
    t.meta.pop("history")
    assert a != b  # the history's epoch numbers are part of the description...
    c = t.save(tmp_path / "c.safetensors").read_bytes()
    assert a == c  # ...but the timings are not
    back = gt.Ticket.load(tmp_path / "b.safetensors")
    assert back.meta["history"] == [{"epoch": 1}]


def test_flipped_byte_in_the_mask_data_is_detected(tmp_path):
    p = gt.Ticket(_masks()).save(tmp_path / "t.safetensors")
    _flip(p, "mask::0.weight", 5)  # a False becomes True: still a valid bool mask
    with pytest.raises(TicketError, match="does not match the sha256"):
        gt.Ticket.load(p)
    t = gt.Ticket.load(p, verify=False)
    assert t.verified is False and "sha256" in t.verify_note and t.kept == 8


def test_flipped_byte_in_the_weight_data_is_detected(tmp_path):
    w = {n: p.detach().clone() for n, p in _net(1).named_parameters()}
    p = gt.Ticket(_masks(), weights=w).save(tmp_path / "w.safetensors")
    _flip(p, "weight::0.bias", 2, bits=0x10)
    with pytest.raises(TicketError, match="does not match the sha256"):
        gt.Ticket.load(p)


def _rewrite(path, edit) -> None:
    """Rewrite a ticket file as valid safetensors with ``edit(header)`` applied (length fixed up)."""
    raw = path.read_bytes()
    start, header = _header(raw)
    edit(header)
    hb = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()  # canonical, as save writes
    hb += b" " * (-(8 + len(hb)) % 8)
    path.write_bytes(struct.pack("<Q", len(hb)) + hb + raw[start:])


def test_edited_description_is_refused(tmp_path):
    """A ticket relabelled (method, density) or stripped of its hash is refused; verify=False reads it, unverified."""
    p = gt.Ticket(_masks(), method="synflow", config={"density": 0.05}).save(tmp_path / "t.safetensors")

    def relabel(header):
        prov = json.loads(header["__metadata__"]["graphtickets"])
        prov["method"], prov["config"]["density"] = "imp", 0.9
        header["__metadata__"]["graphtickets"] = json.dumps(prov, sort_keys=True, separators=(",", ":"))

    _rewrite(p, relabel)
    with pytest.raises(TicketError, match="does not match the sha256") as info:
        gt.Ticket.load(p)
    assert str(p) in str(info.value) and "verify=False" in str(info.value)
    t = gt.Ticket.load(p, verify=False)
    assert t.method == "imp" and t.verified is False

    q = gt.Ticket(_masks(), method="synflow").save(tmp_path / "q.safetensors")
    _rewrite(q, lambda h: h["__metadata__"].pop("graphtickets.sha256"))
    with pytest.raises(TicketError, match="records no sha256"):
        gt.Ticket.load(q)
    _flip(q, "mask::0.weight", 5)  # no hash left: the edit would otherwise pass
    assert gt.Ticket.load(q, verify=False).verified is False

    for k in range(8):  # a description whose header gets padding
        r = gt.Ticket(_masks(), config={"pad": "x" * k}).save(tmp_path / "r.safetensors")
        raw = bytearray(r.read_bytes())
        start, _ = _header(bytes(raw))
        end = 8 + len(bytes(raw[8:start]).rstrip(b" "))
        if end < start:
            break
    raw[end] = ord("\t")  # header padding: JSON-equivalent, but not the bytes save writes
    r.write_bytes(bytes(raw))
    with pytest.raises(TicketError, match="header is not the one"):
        gt.Ticket.load(r)


def _write_v1(path, masks, *, digest: bool = True, **prov) -> None:
    """A file as format 1 wrote it: provenance + a sha256 of the mask bytes (names, shapes, dtypes, bytes)."""
    import hashlib

    from safetensors.torch import save_file

    meta = {"graphtickets": json.dumps({"format": "graphtickets.ticket/1", "method": "m", "config": {},
                                        "meta": {}, "order": list(masks), **prov})}
    if digest:
        h = hashlib.sha256()
        for name, m in sorted(masks.items()):
            h.update(f"{name}\0{tuple(m.shape)}\0{m.dtype}\0".encode())
            h.update(bytes(int(v) for v in m.flatten().tolist()))
        meta["graphtickets.masks_sha256"] = h.hexdigest()
    save_file({f"mask::{k}": v for k, v in masks.items()}, str(path), metadata=meta)


def test_old_format_files_still_load_marked_unverified(tmp_path):
    old = tmp_path / "old.safetensors"
    _write_v1(old, _masks(), method="snip")
    t = gt.Ticket.load(old)
    assert t.method == "snip" and t.kept == 7 and t.verified is False and "old format" in t.verify_note
    _flip(old, "mask::0.weight", 5)
    with pytest.raises(TicketError, match="masks do not match"):
        gt.Ticket.load(old)
    # re-saving upgrades it to the current, verified format
    up = gt.Ticket.load(old, verify=False).save(tmp_path / "up.safetensors")
    assert gt.Ticket.load(up).verified is True


def test_file_without_digest_is_refused_and_non_boolean_bytes_always(tmp_path):
    old = tmp_path / "old.safetensors"
    _write_v1(old, {"0.weight": torch.tensor([[True, False], [True, True]])}, digest=False)
    with pytest.raises(TicketError, match="no sha256"):
        gt.Ticket.load(old)
    t = gt.Ticket.load(old, verify=False)
    assert t.kept == 3 and t.method == "m" and t.verified is False
    _flip(old, "mask::0.weight", 1, bits=0x02)  # byte 0 -> 2: not a bool
    with pytest.raises(TicketError, match="other than 0/1"):
        gt.Ticket.load(old, verify=False)


@pytest.mark.parametrize("bad", [None, 3, b"x.safetensors", ["a"]])
def test_load_and_save_need_a_path(tmp_path, bad):
    with pytest.raises(TicketError, match="path"):
        gt.Ticket.load(bad)
    with pytest.raises(TicketError, match="path"):
        gt.Ticket(_masks()).save(bad)


def test_unwritable_place_names_the_users_path(tmp_path):
    blocker = tmp_path / "plain.txt"
    blocker.write_text("a file, not a folder")
    target = blocker / "t.safetensors"
    with pytest.raises(TicketError) as info:
        gt.Ticket(_masks()).save(target)
    assert str(target) in str(info.value) and ".tmp" not in str(info.value)


@pytest.mark.parametrize("bad", [True, False, "0.1", torch.tensor(0.1), None, [0.1], 0, 1.5, float("nan")])
def test_density_is_strict(bad):
    with pytest.raises(TicketError, match="density"):
        gt.check_density(bad) if hasattr(gt, "check_density") else gt.ticket.check_density(bad)


def test_density_accepts_numbers():
    import numpy as np

    assert gt.ticket.check_density(np.float32(0.5)) == 0.5 and gt.ticket.check_density(1) == 1.0


@pytest.mark.parametrize(
    "provenance, fragment",
    [
        ("[1, 2]", "is a JSON list, not an object"),
        ('"just a string"', "is a JSON str, not an object"),
        ("{not json", "not valid JSON"),
        (_prov(config="oops"), "'config' is a str"),
        (_prov(meta=[1]), "'meta' is a list"),
        (_prov(order={"a": 1}), "'order' is a dict"),
        (_prov(format="graphtickets.ticket/9"), "ticket format 'graphtickets.ticket/9'"),
        ({"method": "m"}, "ticket format None"),
    ],
)
def test_bad_provenance_is_a_ticket_error(tmp_path, provenance, fragment):
    p = tmp_path / "bad.safetensors"
    _write_raw(p, {"mask::0.weight": torch.ones(2, 2, dtype=torch.bool)}, provenance)
    with pytest.raises(TicketError) as info:
        gt.Ticket.load(p)
    assert fragment in str(info.value)
    assert str(p) in str(info.value)


def test_save_to_a_directory_is_a_ticket_error(tmp_path):
    with pytest.raises(TicketError, match="is a directory"):
        gt.Ticket(_masks()).save(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_ticket_file_alone_rebuilds_its_model(tmp_path):
    """prune a BatchNorm model -> save -> load -> build_model() == the original model with the ticket applied."""
    import copy

    model = gt.models.build("conv2", in_shape=(3, 8, 8), num_classes=4, seed=7)
    t = gt.pruning.prune(model, "magnitude", density=0.3, seed=1)
    path = t.save(tmp_path / "t.safetensors")
    del t
    back = gt.Ticket.load(path)
    rebuilt = back.build_model()
    expected = copy.deepcopy(model)
    with torch.no_grad():
        for n, p in expected.named_parameters():
            if n in back.masks:
                p.mul_(back.masks[n].to(p.dtype))
    a, b = rebuilt.state_dict(), expected.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert back.kept == round(0.3 * back.total)


def test_bn_resnet_ticket_file_alone_rebuilds_its_model(tmp_path):
    model = gt.models.build("resnet20", in_shape=(3, 8, 8), num_classes=4, seed=3)
    t = gt.pruning.prune(model, "random", density=0.2, seed=2)
    rebuilt = gt.Ticket.load(t.save(tmp_path / "r.safetensors")).build_model()
    expected = t.apply(gt.models.build_from_spec(model.gt_spec))
    assert any("bn" in k or "running_mean" in k for k in rebuilt.state_dict())
    assert all(torch.equal(v, expected.state_dict()[k]) for k, v in rebuilt.state_dict().items())
    # and the original model, masked by hand, is the same network
    params = dict(model.named_parameters())
    for n, m in t.masks.items():
        assert torch.equal(rebuilt.get_parameter(n), params[n].detach() * m)
