"""The graphtickets command: listings, prune -> train -> info, one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

import graphtickets as gt
from graphtickets.cli import main, parse_assignments


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("what, registry", [("methods", "pruning.METHODS"), ("models", "models.MODELS"), ("datasets", "data.DATASETS")])
def test_listings_name_every_registry_entry(capsys, what, registry):
    mod, attr = registry.split(".")
    code, out, _ = _run(capsys, what)
    assert code == 0
    names = {line.split()[0] for line in out.splitlines()[2:] if line.strip()}
    assert names == set(getattr(getattr(gt, mod), attr))


def test_prune_train_info_round_trip(capsys, tmp_path):
    path = tmp_path / "t.safetensors"
    code, out, _ = _run(capsys, "prune", "--method", "magnitude", "--density", "0.1", "--dataset", "digits",
                        "--model-arg", "widths=[16]", "--out", str(path))
    assert code == 0 and path.exists()
    t = gt.Ticket.load(path)
    assert t.method == "magnitude" and t.kept == round(0.1 * t.total)
    assert t.config["model"]["widths"] == [16] and t.config["dataset"] == "digits"

    code, out, _ = _run(capsys, "train", str(path), "--epochs", "1")
    assert code == 0 and "test accuracy" in out
    trained = gt.Ticket.load(path)
    acc = trained.meta["train"]["test_accuracy"]
    assert 0.0 <= acc <= 1.0 and trained.meta["train"]["epochs"] == 1
    assert trained == t  # same masks: training never changes the mask

    code, out, _ = _run(capsys, "info", str(path))
    assert code == 0
    assert "magnitude" in out and "fc1.weight" in out and f"{t.kept}/{t.total}" in out


def test_prune_with_data_and_hparams(capsys, tmp_path):
    path = tmp_path / "s.safetensors"
    code, _, _ = _run(capsys, "prune", "--method", "snip", "--density", "0.2", "--dataset", "digits",
                      "--model-arg", "widths=[16]", "--batches", "2", "-p", "scope=layer", "--out", str(path))
    assert code == 0
    t = gt.Ticket.load(path)
    assert t.config["hparams"]["scope"] == "layer"
    assert all(k == round(0.2 * n) for k, n in t.layer_counts().values())


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["prune", "--method", "nope", "--density", "0.1"], "unknown method 'nope'"),
        (["prune", "--method", "random", "--density", "1.5"], "(0, 1]"),
        (["prune", "--method", "random", "--density", "0.1", "--model", "resnet999"], "unknown model"),
        (["prune", "--method", "random", "--density", "0.1", "-p", "bogus=1"], "does not take 'bogus'"),
        (["prune", "--method", "random", "--density", "0.1", "-p", "novalue"], "key=value"),
        (["info", "/nonexistent/t.safetensors"], "no ticket file"),
        (["prune", "--density", "0.1"], "--method"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, fragment):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors exit from inside parse_args
        code = exc.code
    _, err = capsys.readouterr()
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("graphtickets: error:"), err
    assert fragment in lines[0]
    assert "Traceback" not in err


def test_corrupt_ticket_file(capsys, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 5)
    code, _, err = _run(capsys, "info", str(bad))
    assert code == 2 and "corrupt" in err and len(err.strip().splitlines()) == 1


def test_console_script_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "graphtickets.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and gt.__version__ in r.stdout


def test_parse_assignments_reads_yaml_values():
    assert parse_assignments(["a=1", "b=[1, 2]", "c=x", "d=true", "e=0.5"]) == {
        "a": 1, "b": [1, 2], "c": "x", "d": True, "e": 0.5,
    }
