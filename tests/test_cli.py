"""The graphtickets command: listings, prune -> train -> info, one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

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


# ---------------------------------------------------------------------------- bad input, deeper
@pytest.fixture
def digits_ticket(tmp_path):
    """A magnitude ticket of a small digits MLP, saved to ``tmp_path / 'd.safetensors'``."""
    info = gt.data.info("digits")
    model = gt.models.build("mlp", in_shape=info.in_shape, num_classes=info.num_classes, widths=(8,), seed=0)
    path = tmp_path / "d.safetensors"
    gt.pruning.prune(model, "magnitude", density=0.5, dataset="digits").save(path)
    return path


def _one_error_line(capsys, argv) -> str:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    _, err = capsys.readouterr()
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("graphtickets: error:"), err
    return lines[0]


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["prune", "--method", "magnitude", "--density", "0.1", "-p", "rounds=abc"], "rounds must be an integer >= 1"),
        (["prune", "--method", "magnitude", "--density", "0.1", "-p", "rounds=0"], "rounds must be an integer >= 1"),
        (["prune", "--method", "synflow", "--density", "0.1", "-p", "rounds=-3"], "rounds must be an integer >= 1"),
        (["prune", "--method", "random", "--density", "0.1", "--out", "{dir}"], "is a directory"),
        (["prune", "--method", "random", "--density", "0.1", "--out", "{file}/t.safetensors"], "{file}"),
        (["train", "{ticket}", "--dataset", "mnist1d", "--epochs", "1"], "'mnist1d' has inputs (40,)"),
        (["train", "{ticket}", "--epochs", "1", "--device", "nonsense"], "is not a device"),
        (["graph", "{ticket}", "--out", "{dir}"], "is a directory"),
        (["info", "{list_json}"], "not an object"),
        (["info", "{config_str}"], "'config' is a str"),
        (["run", "{bad_yaml}"], "not valid YAML"),
        (["prune", "--method", "snip", "--density", "0.1", "--dataset", "mnist", "--root", "{dir}"], "--download"),
    ],
)
def test_bad_input_deeper_is_one_line_and_exit_2(capsys, monkeypatch, tmp_path, digits_ticket, argv, fragment):
    from safetensors.torch import save_file

    monkeypatch.chdir(tmp_path)  # a case that wrongly succeeded would write its ticket here
    folder = tmp_path / "folder"
    folder.mkdir()
    plain = tmp_path / "plain.txt"
    plain.write_text("not a folder")
    mask = {"mask::fc1.weight": torch.ones(2, 2, dtype=torch.bool)}
    list_json = tmp_path / "list.safetensors"
    save_file(mask, str(list_json), metadata={"graphtickets": "[1, 2]"})
    config_str = tmp_path / "config.safetensors"
    save_file(mask, str(config_str), metadata={"graphtickets": json.dumps(
        {"format": "graphtickets.ticket/1", "method": "m", "config": "oops", "meta": {}, "order": []})})
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("name: x\ndatasets: [digits\n  methods: {a: 1\n")
    subst = {"{dir}": str(folder), "{file}": str(plain), "{ticket}": str(digits_ticket),
             "{list_json}": str(list_json), "{config_str}": str(config_str), "{bad_yaml}": str(bad_yaml)}

    def fill(text: str) -> str:
        for k, v in subst.items():
            text = text.replace(k, v)
        return text

    line = _one_error_line(capsys, [fill(a) for a in argv])
    assert fill(fragment) in line


def test_train_shape_mismatch_names_both(capsys, digits_ticket):
    line = _one_error_line(capsys, ["train", str(digits_ticket), "--dataset", "mnist1d", "--epochs", "1"])
    assert "(1, 8, 8)" in line and "(40,)" in line and "digits" in line and "mnist1d" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a machine without CUDA")
def test_train_on_cuda_without_cuda_is_one_line(capsys, digits_ticket):
    line = _one_error_line(capsys, ["train", str(digits_ticket), "--epochs", "1", "--device", "cuda"])
    assert "CUDA" in line and "'cpu'" in line


def test_unexpected_error_is_one_line_with_a_hint_and_v_shows_traceback(capsys, monkeypatch, digits_ticket):
    def boom(*args, **kwargs):
        raise RuntimeError("something\nunexpected   happened")

    monkeypatch.setattr(gt.Ticket, "load", boom)
    line = _one_error_line(capsys, ["info", str(digits_ticket)])
    assert line == ("graphtickets: error: RuntimeError: something unexpected happened "
                    "(run `graphtickets -v ...` to see the traceback)")
    for argv in (["-v", "info", str(digits_ticket)], ["info", str(digits_ticket), "-v"]):
        code = main(argv)
        _, err = capsys.readouterr()
        assert code == 2 and "Traceback" in err and "RuntimeError: something" in err
        assert err.strip().splitlines()[-1] == "graphtickets: error: RuntimeError: something unexpected happened"


def test_os_errors_are_one_line(capsys, monkeypatch, digits_ticket):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/somewhere/t.safetensors")

    monkeypatch.setattr(gt.Ticket, "load", denied)
    line = _one_error_line(capsys, ["info", str(digits_ticket)])
    assert line == "graphtickets: error: Permission denied: /somewhere/t.safetensors"


def test_download_flag_reaches_the_loader(capsys, monkeypatch, tmp_path):
    seen = []
    real = gt.data.load

    def spy(name, **kw):
        seen.append((name, kw.get("download")))
        return real("digits", **{k: v for k, v in kw.items() if k != "download"})

    monkeypatch.setattr(gt.data, "load", spy)
    path = tmp_path / "s.safetensors"
    code, _, err = _run(capsys, "prune", "--method", "snip", "--density", "0.2", "--dataset", "digits",
                        "--model-arg", "widths=[8]", "--batches", "1", "--download", "--out", str(path))
    assert code == 0, err
    code, _, err = _run(capsys, "train", str(path), "--epochs", "1", "--download")
    assert code == 0, err
    assert seen and all(d is True for _, d in seen)


def test_console_script_is_declared():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "graphtickets"]
    assert ep.value == "graphtickets.cli:main"


def test_bad_input_traceback_only_with_vv(capsys, digits_ticket):
    argv = ["train", str(digits_ticket), "--dataset", "mnist1d"]
    assert main(["-v", *argv]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert main(["-vv", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("graphtickets: error:")


def test_compare_functional_of_trained_ticket_files(capsys, tmp_path):
    paths = []
    for method, seed in (("magnitude", 0), ("random", 1)):
        path = tmp_path / f"{method}.safetensors"
        assert _run(capsys, "prune", "--method", method, "--density", "0.5", "--dataset", "digits", "--seed", str(seed),
                    "--model-arg", "widths=[16]", "--out", str(path))[0] == 0
        paths.append(path)
    code, out, err = _run(capsys, "compare", *map(str, paths), "--functional")
    assert code == 2 and "carries no weights" in err and "--save-weights" in err and "Traceback" not in err
    for p in paths:
        assert _run(capsys, "train", str(p), "--epochs", "1", "--save-weights")[0] == 0
    assert gt.Ticket.load(paths[0]).meta["weights"] == "trained"
    code, out, _ = _run(capsys, "compare", *map(str, paths), "--functional", "--dataset", "digits")
    assert code == 0
    rows = {line.split()[2]: float(line.split()[3]) for line in out.splitlines()[1:] if line.strip()}
    assert set(rows) == set(gt.analysis.FUNCTION_KINDS)
    ts = [gt.Ticket.load(p) for p in paths]
    test = gt.data.batches(gt.data.load("digits", split="test"), batch_size=1000, shuffle=False)
    for kind, value in rows.items():
        assert value == pytest.approx(gt.analysis.distance(*ts, kind, data=test), abs=1e-3)
    code, _, err = _run(capsys, "compare", *map(str, paths), "--functional", "--dataset", "mnist1d")
    assert code == 2 and "digits" in err  # a dataset of another shape is refused in one line
