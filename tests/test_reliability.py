"""Reliability (issue 17): every hostile case found by the sweep, each with its test.

Silently accepted input now fails with exit code 2 and one line naming input, problem and
fix, before any file is written; tracebacks became such lines; tickets prove what they are;
the store heals or says why; converters refuse what they cannot represent; a killed worker
costs at most its cells.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from torch import nn

import graphtickets as gt
from graphtickets.cli import main
from graphtickets.errors import ConfigError, GraphticketsError, TicketError, UnsupportedModuleError
from graphtickets.study import load_config, run

NO_CUDA = not torch.cuda.is_available()

MINI = {
    "name": "mini",
    "datasets": ["digits"],
    "models": [{"name": "mlp", "widths": [8]}],
    "methods": ["random", "magnitude"],
    "densities": [0.5],
    "seeds": [0],
    "train": {"epochs": 0},
    "analysis": {"null_samples": 0, "kinds": ["jaccard"]},
    "dense_reference": False,
}


def _error(capsys, argv: list[str]) -> str:
    """Run the CLI in-process; assert exit 2 with exactly one stderr line, no traceback; return it."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    out, err = capsys.readouterr()
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("graphtickets: error:"), err
    assert "Traceback" not in err
    return lines[0]


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


@pytest.fixture
def ticket_file(tmp_path: Path) -> Path:
    info = gt.data.info("digits")
    model = gt.models.build("mlp", in_shape=info.in_shape, num_classes=info.num_classes, widths=(8,), seed=0)
    return gt.pruning.prune(model, "magnitude", density=0.5, dataset="digits").save(tmp_path / "t.safetensors")


def _config(tmp_path: Path, **over) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**MINI, **over}))
    return path


# ---------------------------------------------------------------------------- 1. validated up front
@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["prune", "--method", "snip", "--density", "0.2", "--dataset", "digits", "--batches", "0"],
         "--batches must be an integer >= 1, got 0"),
        (["prune", "--method", "random", "--density", "0.2", "--batch-size", "10000000"], "above the limit 65536"),
        (["prune", "--method", "random", "--density", "0.2", "--seed", str(2**70)], "outside [0, 2**63 - 1]"),
        (["prune", "--method", "random", "--density", "0.2", "--seed", "-1"], "outside [0, 2**63 - 1]"),
        (["prune", "--method", "random", "--density", "nan"], "--density must be in (0, 1]"),
        (["prune", "--method", "imp", "--density", "0.2", "-p", "epochs=-1"], "-p.epochs must be an integer >= 1"),
        (["prune", "--method", "imp", "--density", "0.2", "-p", "epochs=1e20"], "-p.epochs must be an integer"),
        (["prune", "--method", "imp", "--density", "0.2", "-p", "epochs=100000"], "--allow-large"),
        (["prune", "--method", "imp", "--density", "0.2", "-p", "lr=-1"], "-p.lr must be in (0.0, inf)"),
        (["prune", "--method", "random", "--density", "0.2", "-p", "scope=both"], "-p.scope must be one of"),
        (["prune", "--method", "random", "--density", "0.2", "-p", "seed=3"], "set by the command itself"),
        (["train", "{ticket}", "--epochs", "0"], "--epochs must be an integer >= 1, got 0"),
        (["train", "{ticket}", "--epochs", "5000"], "above the limit 1000"),
        (["train", "{ticket}", "--lr", "inf"], "--lr must be a finite number > 0"),
        (["train", "{ticket}", "--optimizer", "lbfgs"], "lbfgs"),
        (["compare", "{ticket}", "{ticket}", "--nulls", "-1"], "--nulls must be an integer >= 0, got -1"),
        (["compare", "{ticket}", "{ticket}", "--nulls", "100000000"], "above the limit"),
        (["compare", "{ticket}", "{ticket}", "--kinds", "nonsense"], "nonsense"),
        (["run", "{config}", "--workers", "0", "--out", "{out}"], "--workers must be an integer >= 1, got 0"),
        (["run", "{config}", "--workers", "-1", "--out", "{out}"], "--workers must be an integer >= 1, got -1"),
        (["run", "{config}", "--workers", "100000", "--out", "{out}"], "above the limit"),
        (["run", "{config}", "--device", "tpu", "--out", "{out}"], "unknown device 'tpu'"),
        (["run", "{config}", "--scheduler", " ", "--out", "{out}"], "--scheduler must be"),
    ],
)
def test_bad_options_refused_before_any_file(capsys, monkeypatch, tmp_path, ticket_file, argv, fragment):
    monkeypatch.chdir(tmp_path)
    config = _config(tmp_path)
    out = tmp_path / "out"
    before = _tree(tmp_path)
    subst = {"{ticket}": str(ticket_file), "{config}": str(config), "{out}": str(out)}
    line = _error(capsys, [subst.get(a, a) for a in argv])
    assert fragment in line
    assert _tree(tmp_path) == before  # nothing written, not even an empty output folder


@pytest.mark.skipif(not NO_CUDA, reason="checks a machine without CUDA")
def test_run_on_cuda_without_cuda_is_refused_up_front(capsys, tmp_path):
    out = tmp_path / "out"
    line = _error(capsys, ["run", str(_config(tmp_path)), "--device", "cuda", "--out", str(out)])
    assert "CUDA" in line and "use device 'cpu'" in line and "--device" in line and not out.exists()
    line = _error(capsys, ["run", str(_config(tmp_path, device="cuda:0")), "--out", str(out)])
    assert "CUDA" in line and not out.exists()


@pytest.mark.parametrize(
    "over, fragment",
    [
        ({"densities": [0.2, 0.2]}, "densities: 0.2 is listed twice"),
        ({"seeds": [1, 1]}, "seeds: 1 is listed twice"),
        ({"datasets": ["digits", "digits"]}, "datasets: 'digits' is listed twice"),
        ({"models": [{"name": "mlp", "widths": [8]}, {"name": "mlp", "widths": [8]}]}, "listed twice"),
        ({"train": {"epochs": "1e20"}}, "train.epochs: Input should be a valid integer, got str '1e20'"),
        ({"train": {"epochs": 10**20}}, "train.epochs = 100000000000000000000 is above the limit 1000"),
        ({"train": {"epochs": True}}, "train.epochs: Input should be a valid integer, got bool True"),
        ({"train": {"lr": float("nan")}}, "train.lr"),
        ({"train": {"momentum": 1.5}}, "train.momentum"),
        ({"densities": ["0.2"]}, "densities[0]: Input should be a valid number, got str '0.2'"),
        ({"analysis": {"null_samples": 10**12}}, "analysis.null_samples = 1000000000000 is above the limit"),
        ({"analysis": {"null_samples_by_kind": {"jaccard": -1}}}, "must be an integer >= 0"),
        ({"methods": {"imp": {"epochs": -1}}}, "methods.imp.epochs must be an integer >= 1, got -1"),
        ({"methods": {"imp": {"rate": 1.5}}}, "methods.imp.rate must be in (0.0, 1.0)"),
        ({"methods": {"synflow": {"rounds": 10**9}}}, "methods.synflow.rounds = 1000000000 is above the limit"),
        ({"methods": {"imp": [1, 2]}}, "give its hyperparameters as a mapping"),
        ({"seeds": [2**70]}, "outside [0, 2**63 - 1]"),
        ({"seeds": [-3]}, "outside [0, 2**63 - 1]"),
        ({"models": [{"name": "mlp", "widths": [10**6, 10**6]}]}, "above the limit 200,000,000"),
        ({"prune_data": {"batches": 0}}, "prune_data.batches"),
        ({"dense_reference": "yes"}, "dense_reference: Input should be a valid boolean"),
    ],
)
def test_bad_config_values_fail_at_load(over, fragment):
    with pytest.raises(ConfigError) as info:
        load_config({**MINI, **over})
    assert fragment in str(info.value)


def test_allow_large_lifts_the_limits():
    cfg = load_config({**MINI, "allow_large": True, "train": {"epochs": 5000},
                       "methods": {"synflow": {"rounds": 20000}}, "analysis": {"null_samples": 20000}})
    assert cfg.train.epochs == 5000 and cfg.methods[0].hparams["rounds"] == 20000
    assert [c.id for c in gt.study.expand(cfg)] == [c.id for c in gt.study.expand(load_config(
        {**MINI, "train": {"epochs": 5000}, "methods": {"synflow": {"rounds": 20000}},
         "analysis": {"null_samples": 20000}, "allow_large": True}))]


def test_a_failed_config_leaves_nothing_behind(capsys, tmp_path):
    out = tmp_path / "out"
    for over in ({"seeds": [2**70]}, {"methods": {"imp": {"epochs": -1}}}, {"densities": [0.2, 0.2]}):
        line = _error(capsys, ["run", str(_config(tmp_path, **over)), "--out", str(out)])
        assert str(tmp_path / "study.yaml") in line
        assert not out.exists()


def test_duplicate_yaml_keys_and_binary_yaml_name_the_file(capsys, tmp_path):
    dup = tmp_path / "dup.yaml"
    dup.write_text("name: x\nname: y\ndatasets: [digits]\n")
    line = _error(capsys, ["run", str(dup), "--out", str(tmp_path / "o")])
    assert str(dup) in line and "'name' is given twice" in line
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    line = _error(capsys, ["run", str(binary), "--out", str(tmp_path / "o")])
    assert str(binary) in line and "not a text YAML file" in line
    line = _error(capsys, ["run", str(tmp_path), "--out", str(tmp_path / "o")])
    assert "is a folder" in line
    assert not (tmp_path / "o").exists()


def test_out_naming_an_existing_file(capsys, tmp_path):
    target = tmp_path / "taken.txt"
    target.write_text("keep me")
    line = _error(capsys, ["run", str(_config(tmp_path)), "--out", str(target)])
    assert "is an existing file" in line and str(target) in line
    assert target.read_text() == "keep me"
    line = _error(capsys, ["run", str(_config(tmp_path)), "--out", str(target / "sub")])
    assert "is a file, not a folder" in line


def test_prune_to_an_unwritable_place_names_the_users_path(capsys, tmp_path):
    blocker = tmp_path / "plain.txt"
    blocker.write_text("x")
    line = _error(capsys, ["prune", "--method", "random", "--density", "0.2", "--out", str(blocker / "t.safetensors")])
    assert str(blocker) in line and ".tmp" not in line


# ---------------------------------------------------------------------------- 2. errors one can act on
def test_broken_pipe_ends_quietly(tmp_path):
    """``graphtickets info BIG | head -c 1``: more output than a pipe holds, the reader gone: exit 141, no message."""
    big = gt.Ticket({f"layer{i}.weight": torch.ones(2, 2, dtype=torch.bool) for i in range(3000)})
    path = big.save(tmp_path / "big.safetensors")
    env = {**os.environ, "PYTHONPATH": str(Path(gt.__file__).parent.parent)}
    proc = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m graphtickets.cli info {path} | head -c 1; echo \" ${{PIPESTATUS[0]}}\""],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.stdout == "t 141\n" and proc.stderr == "", (proc.stdout, proc.stderr)


def test_api_wrong_input_width_says_both_shapes():
    m = gt.models.build("mlp", in_shape=(40,), num_classes=10, widths=(16,), seed=0)
    y = torch.zeros(4, dtype=torch.long)
    for fn in (gt.training.train, gt.training.evaluate):
        with pytest.raises(GraphticketsError) as info:
            fn(m, [(torch.randn(4, 41), y)])
        assert "expects 40 input features, the batch gives it 41" in str(info.value) and "(40,)" in str(info.value)
    conv = gt.models.build("conv2", in_shape=(1, 8, 8), num_classes=10, seed=0)
    with pytest.raises(GraphticketsError, match="expects 1 input channels, the batch has 3"):
        gt.training.evaluate(conv, [(torch.randn(2, 3, 8, 8), torch.zeros(2, dtype=torch.long))])


@pytest.mark.parametrize("label", [99, 10, -1])
def test_api_labels_outside_the_classes_are_named(label):
    m = gt.models.build("mlp", in_shape=(40,), num_classes=10, widths=(16,), seed=0)
    y = torch.zeros(4, dtype=torch.long)
    y[2] = label
    with pytest.raises(GraphticketsError) as info:
        gt.training.train(m, [(torch.randn(4, 40), y)])
    assert f"label {label} is outside [0, 10)" in str(info.value) and "0..9" in str(info.value)


def test_api_float_labels_and_bad_targets():
    m = gt.models.build("mlp", in_shape=(40,), num_classes=10, widths=(16,), seed=0)
    x = torch.randn(4, 40)
    with pytest.raises(GraphticketsError, match="labels are floats.*y.long"):
        gt.training.train(m, [(x, torch.zeros(4))])
    with pytest.raises(GraphticketsError, match="one class index per example"):
        gt.training.train(m, [(x, torch.zeros(4, 3))])
    with pytest.raises(GraphticketsError, match="4 inputs but 3 targets"):
        gt.training.evaluate(m, [(x, torch.zeros(3, dtype=torch.long))])


@pytest.mark.parametrize("call", [
    lambda: gt.training.train(None, []),
    lambda: gt.training.evaluate(None, []),
    lambda: gt.graphs.layered_graph(None),
    lambda: gt.graphs.relational_graph(None),
    lambda: gt.graphs.layer_bipartite(None),
    lambda: gt.Ticket.load(None),
])
def test_api_none_instead_of_a_model_or_path(call):
    with pytest.raises(GraphticketsError, match="torch.nn.Module|path of a ticket file"):
        call()


@pytest.mark.parametrize("density", [True, "0.1", torch.tensor(0.1)])
def test_api_density_is_strict(density):
    m = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(8,), seed=0)
    with pytest.raises(TicketError, match="density must be a number"):
        gt.pruning.prune(m, "random", density=density)


@pytest.mark.parametrize("n", [2.5, True, "4"])
def test_api_n_nodes_must_be_an_integer(n):
    m = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(8, 8, 8), seed=0)
    with pytest.raises(GraphticketsError, match="n_nodes must be an integer"):
        gt.graphs.relational_graph(m, n_nodes=n)


# ---------------------------------------------------------------------------- 3. tickets that prove what they are
def _edit_header(path: Path, edit) -> None:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    edit(header)
    hb = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    hb += b" " * (-(8 + len(hb)) % 8)
    path.write_bytes(struct.pack("<Q", len(hb)) + hb + raw[8 + n :])


def test_tampered_tickets_are_refused_by_info_and_graph(capsys, tmp_path, ticket_file):
    def strip_and_edit(header):  # remove the hash, then flip one mask byte
        header["__metadata__"].pop("graphtickets.sha256")

    _edit_header(ticket_file, strip_and_edit)
    raw = bytearray(ticket_file.read_bytes())
    raw[-1] ^= 1
    ticket_file.write_bytes(bytes(raw))
    for cmd in (["info", str(ticket_file)], ["graph", str(ticket_file), "--out", str(tmp_path / "g.graphml")]):
        line = _error(capsys, cmd)
        assert "records no sha256" in line and "--no-verify" in line
    assert not (tmp_path / "g.graphml").exists()
    assert main(["info", str(ticket_file), "--no-verify"]) == 0
    out = capsys.readouterr().out
    assert "verified  NO" in out


def test_relabelled_ticket_is_refused(capsys, tmp_path):
    m = gt.models.build("mlp", in_shape=(8,), num_classes=3, widths=(8,), seed=0)
    path = gt.pruning.prune(m, "synflow", density=0.2).save(tmp_path / "s.safetensors")

    def relabel(header):
        prov = json.loads(header["__metadata__"]["graphtickets"])
        prov["method"], prov["config"]["density"] = "imp", 0.9
        header["__metadata__"]["graphtickets"] = json.dumps(prov, sort_keys=True, separators=(",", ":"))

    _edit_header(path, relabel)
    line = _error(capsys, ["info", str(path)])
    assert "does not match the sha256" in line and str(path) in line


def test_same_command_and_seed_give_a_byte_identical_ticket(capsys, tmp_path):
    files = []
    for i in range(2):
        path = tmp_path / f"t{i}.safetensors"
        assert main(["prune", "--method", "imp", "--density", "0.3", "--dataset", "digits", "--model-arg",
                     "widths=[8]", "-p", "epochs=1", "--seed", "3", "--out", str(path)]) == 0
        assert main(["train", str(path), "--epochs", "1", "--seed", "3"]) == 0
        files.append(path.read_bytes())
    capsys.readouterr()
    assert files[0] == files[1]
    t = gt.Ticket.load(tmp_path / "t0.safetensors")
    assert t.verified and "seconds" not in json.dumps(t.meta)


# ---------------------------------------------------------------------------- 4. a store that heals or says why
def _stable(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=[c for c in ("seconds", "search_seconds", "train_seconds") if c in df]).reset_index(drop=True)


def test_resume_redoes_cells_whose_ticket_file_is_missing_or_broken(tmp_path, caplog):
    out = tmp_path / "out"
    first = run(MINI, out, progress=False, report=False)
    assert (first.done, first.ran) == (2, 2)
    files = sorted(f for f in (out / "tickets").glob("*.safetensors") if not f.name.endswith(".trained.safetensors"))
    files[0].unlink()
    files[1].write_bytes(files[1].read_bytes()[:-3])  # truncated
    with caplog.at_level("WARNING", logger="graphtickets"):
        again = run(MINI, out, progress=False, report=False)
    assert (again.done, again.ran, again.failed) == (2, 2, 0)
    said = caplog.text
    assert "is missing; re-running the cell" in said and "fails its check" in said
    assert all(f.is_file() for f in files)
    pd.testing.assert_frame_equal(_stable(again.tickets), _stable(first.tickets))
    # a valid ticket file of another cell copied over is not this cell's file
    files[0].write_bytes(files[1].read_bytes())
    with caplog.at_level("WARNING", logger="graphtickets"):
        third = run(MINI, out, progress=False, report=False)
    assert third.ran == 1 and "is not the file this cell wrote" in caplog.text
    assert run(MINI, out, progress=False, report=False).ran == 0


@pytest.mark.parametrize("damage", ["empty", "garbage"])
def test_corrupt_store_is_named_and_restart_moves_it_aside(capsys, tmp_path, damage):
    out = tmp_path / "out"
    config = _config(tmp_path)
    assert main(["run", str(config), "--out", str(out), "--no-progress", "--no-report"]) == 0
    capsys.readouterr()
    tables = {p: p.read_bytes() for p in (out / "tables").iterdir()}
    (out / "report.html").write_text("<p>the good report</p>")
    db = out / "study.db"
    for side in ("study.db-wal", "study.db-shm"):
        (out / side).unlink(missing_ok=True)
    db.write_bytes(b"" if damage == "empty" else b"SQLite format 3\x00" + os.urandom(3000))
    for argv in (["report", str(out)], ["run", str(config), "--out", str(out), "--no-progress"]):
        line = _error(capsys, argv)
        assert str(db) in line and "--restart" in line
    assert {p: p.read_bytes() for p in (out / "tables").iterdir()} == tables  # good outputs untouched
    assert (out / "report.html").read_text() == "<p>the good report</p>"
    assert main(["run", str(config), "--out", str(out), "--no-progress", "--no-report", "--restart"]) == 0
    capsys.readouterr()
    assert len(list(out.glob("study.db.broken-*"))) == 1
    assert pd.read_csv(out / "tables" / "tickets.csv").shape[0] == 2


def test_report_never_replaces_good_outputs_with_an_empty_report(capsys, tmp_path):
    out = tmp_path / "out"
    assert main(["run", str(_config(tmp_path)), "--out", str(out), "--no-progress", "--no-report"]) == 0
    capsys.readouterr()
    before = (out / "tables" / "tickets.csv").read_bytes()
    with sqlite3.connect(out / "study.db") as c:
        c.execute("DELETE FROM cells")
    line = _error(capsys, ["report", str(out)])
    assert "no finished cell" in line and "left as they are" in line
    assert (out / "tables" / "tickets.csv").read_bytes() == before


# ---------------------------------------------------------------------------- 5. converters refuse alike
class _LSTMNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.lstm, self.b, self.c = nn.Linear(8, 8), nn.LSTM(8, 8, batch_first=True), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x):
        h, _ = self.lstm(self.a(x).unsqueeze(1))
        return self.c(self.b(h[:, 0]))


class _AttentionNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.att, self.b, self.c = nn.Linear(8, 8), nn.MultiheadAttention(8, 2, batch_first=True), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x):
        q = self.a(x).unsqueeze(1)
        h, _ = self.att(q, q, q)
        return self.c(self.b(h[:, 0]))


class _EmbeddingNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb, self.a, self.b, self.c = nn.Embedding(10, 8), nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x):
        return self.c(self.b(self.a(self.emb(x))))


class _BranchyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x):
        h = self.a(x)
        if h.sum() > 0:  # data-dependent control flow
            h = self.b(h)
        return self.c(h)


@pytest.mark.parametrize("net", [_LSTMNet, _AttentionNet, _EmbeddingNet, _BranchyNet])
def test_every_converter_refuses_what_layered_graph_refuses(net):
    model = net()
    model.gt_spec = {"name": "custom", "in_shape": (8,), "num_classes": 2}
    with pytest.raises(UnsupportedModuleError) as ref:
        gt.graphs.layered_graph(model)
    calls = {
        "relational_graph": lambda m: gt.graphs.relational_graph(m),
        "layer_bipartite": lambda m: gt.graphs.layer_bipartite(m),
        "ticket_metrics(relational)": lambda m: gt.analysis.ticket_metrics(None, m, graph="relational"),
        "ticket_metrics(layered)": lambda m: gt.analysis.ticket_metrics(None, m, graph="layered"),
    }
    for name, call in calls.items():
        with pytest.raises(UnsupportedModuleError) as info:
            call(model)
        assert str(info.value) == str(ref.value), name
    del model.gt_spec  # without a spec the check still refuses (shape inferred, or the shape-free check)
    for call in (gt.graphs.relational_graph, gt.graphs.layer_bipartite):
        with pytest.raises(UnsupportedModuleError):
            call(model)


def test_supported_models_still_convert_without_a_spec():
    mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    assert gt.graphs.relational_graph(mlp, n_nodes=4).n_nodes == 4
    conv = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(3, 1))  # spatial size unknown: shape-free check
    assert gt.graphs.layer_bipartite(conv)["0.weight"].n_edges == 54


# ---------------------------------------------------------------------------- 6. faults of the distributed run
_CRASH_ID: list[str] = []


def _crashing_cell(config, **kw):
    """Runs on a worker: the cell whose id is in ``crash`` ends the worker process (as an OOM kill would)."""
    from graphtickets.study.cell import run_cell_safe

    if kw.get("cell_id") == config.get("_crash_id"):
        os._exit(137)
    return run_cell_safe({k: v for k, v in config.items() if k != "_crash_id"}, **kw)


SLOW = {**MINI, "methods": {"imp": {"epochs": 1}, "magnitude": {}, "random": {}}, "train": {"epochs": 1}}


@pytest.mark.slow
def test_worker_killed_mid_study_costs_at_most_its_cells(tmp_path, monkeypatch):
    """A worker SIGKILLed by pid while cells run: Dask re-runs its cell; tables equal an undisturbed run."""
    pytest.importorskip("dask.distributed")
    from graphtickets.study import executors, runner

    made: list[executors.DaskExecutor] = []
    real = runner.make_executor

    def spy(**kw):
        ex = real(**kw)
        made.append(ex)
        return ex

    monkeypatch.setattr(runner, "make_executor", spy)
    killed: list[int] = []

    def killer() -> None:
        deadline = time.time() + 60
        while time.time() < deadline:
            if made and isinstance(made[0], executors.DaskExecutor):
                try:
                    if any(made[0].client.processing().values()):
                        pids = made[0].client.run(os.getpid)
                        pid = sorted(pids.values())[0]
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                        return
                except Exception:  # noqa: BLE001 - the cluster may be starting
                    pass
            time.sleep(0.05)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    res = run(SLOW, tmp_path / "dask", workers=2, progress=False, report=False)
    t.join(timeout=5)
    assert killed, "no worker was killed"
    assert res.done == res.cells == 3
    ref = run(SLOW, tmp_path / "ref", progress=False, report=False)
    pd.testing.assert_frame_equal(_stable(res.tickets), _stable(ref.tickets))
    pd.testing.assert_frame_equal(res.distances.reset_index(drop=True), ref.distances.reset_index(drop=True))


@pytest.mark.slow
def test_a_cell_that_crashes_its_worker_is_recorded_failed_with_the_reason(tmp_path, monkeypatch):
    pytest.importorskip("dask.distributed")
    import cloudpickle

    from graphtickets.study import executors, runner

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    cells = gt.study.expand(load_config(MINI))
    crash = next(c for c in cells if c.method == "magnitude")

    class Crashy(executors.DaskExecutor):
        cell_fn = staticmethod(_crashing_cell)

        def map(self, cells, on_start=None, inputs=None):
            for c in cells:
                c.config["_crash_id"] = crash.id
            yield from super().map(cells, on_start, inputs)

    monkeypatch.setattr(runner, "make_executor", lambda **kw: Crashy(workers=2, **{k: v for k, v in kw.items() if k not in ("workers", "scheduler")}))
    # one by one: the crash is wired into the per-cell function (batched groups run another one)
    res = run(MINI, tmp_path / "out", workers=2, progress=False, report=False, batched=False)
    assert (res.done, res.failed) == (1, 1)
    (err,) = res.errors.values()
    assert "KilledWorker" in err and "died" in err
    with sqlite3.connect(tmp_path / "out" / "study.db") as c:
        status, error = c.execute("SELECT status, error FROM cells WHERE id = ?", (crash.id,)).fetchone()
    assert status == "failed" and "out of memory" in error
    monkeypatch.undo()
    again = run(MINI, tmp_path / "out", progress=False, report=False)  # the next run redoes it
    assert (again.done, again.ran, again.failed) == (2, 1, 0)
