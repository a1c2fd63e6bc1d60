"""Fuzzing (issue 17): CLI arguments, study config documents and corrupted ticket files.

Properties: the CLI exits 0, or 2 with a one-line ``graphtickets: error:`` message and never a
traceback, and a refused command leaves no output behind; a ticket file with any byte changed
(or cut short) is always refused. In-process calls of ``graphtickets.cli.main`` and few
examples keep this to seconds.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphtickets as gt
from graphtickets.cli import main
from graphtickets.errors import GraphticketsError, TicketError

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
                derandomize=True)

BASE = {
    "name": "fz",
    "datasets": ["digits"],
    "models": [{"name": "mlp", "widths": [8]}],
    "methods": {"random": {}, "magnitude": {}},
    "densities": [0.5],
    "seeds": [0],
    "train": {"epochs": 0},
    "analysis": {"null_samples": 0, "kinds": ["jaccard"]},
    "dense_reference": False,
}


@pytest.fixture(scope="module")
def workdir() -> Path:
    d = Path(tempfile.mkdtemp(prefix="gt-fuzz-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def ticket_path(workdir: Path) -> Path:
    info = gt.data.info("digits")
    model = gt.models.build("mlp", in_shape=info.in_shape, num_classes=info.num_classes, widths=(8,), seed=0)
    t = gt.pruning.prune(model, "magnitude", density=0.5, dataset="digits")
    t.weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    return t.save(workdir / "t.safetensors")


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _check(capsys, argv: list[str], cwd: Path) -> int:
    """Run the CLI; assert the exit-code contract; on exit 2 assert nothing new appeared in ``cwd``."""
    before = _files(cwd)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage errors (2) and --help (0)
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        errors = [line for line in err.splitlines() if line.startswith("graphtickets: error:")]
        assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
        assert _files(cwd) == before, (argv, _files(cwd) - before)
    return code


# ---------------------------------------------------------------------------- CLI arguments
_NUMBERS = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0", "1", "-1", "0.5", "1e20", "nan", "inf", "", "abc", "True", "[1, 2]", "{a: 1}"]),
)
_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)


@st.composite
def _argv(draw) -> list[str]:
    cmd = draw(st.sampled_from(["prune", "train", "info", "compare", "graph", "report", "run", "methods", "bogus"]))
    opts = {
        "prune": ["--seed", "--batches", "--batch-size", "--model", "--dataset", "--model-arg", "-p"],
        "train": ["--epochs", "--lr", "--weight-decay", "--batch-size", "--seed", "--device", "--optimizer"],
        "info": ["--json"],
        "compare": ["--nulls", "--seed", "--kinds"],
        "graph": ["--format", "--kind"],
        "report": [],
        "run": ["--workers", "--device", "--scheduler"],
        "methods": [],
        "bogus": ["--x"],
    }[cmd]
    argv = [cmd]
    if cmd == "prune":
        argv += ["--method", draw(st.sampled_from(["random", "magnitude", "nonsense"])), "--dataset", "digits",
                 "--model-arg", "widths=[4]", "--density", draw(st.one_of(st.sampled_from(["0.5", "0.1"]), _NUMBERS))]
    if cmd in ("train", "info", "graph"):
        argv.append(draw(st.sampled_from(["{ticket}", "{missing}", "{dir}", "{junk}"])))
    if cmd == "compare":
        argv += ["{ticket}", draw(st.sampled_from(["{ticket}", "{junk}"]))]
    if cmd == "report":
        argv.append(draw(st.sampled_from(["{dir}", "{missing}", "{junk}"])))
    if cmd == "run":
        argv.append(draw(st.sampled_from(["{config_bad}", "{junk}", "{missing}"])))
    for opt in draw(st.lists(st.sampled_from(opts), max_size=3, unique=True)) if opts else []:
        argv.append(opt)
        if opt == "--json":
            continue
        if opt in ("--model-arg", "-p"):
            argv.append(draw(st.sampled_from(["widths=[4]", "scope=layer", "rounds=0", "x=1", "junk", "="])))
        else:
            argv.append(draw(st.one_of(_NUMBERS, _TEXT)))
    return argv


def test_cli_arguments_exit_0_or_2_with_one_line(capsys, monkeypatch, workdir, ticket_path):
    case = workdir / "cli"
    case.mkdir()
    junk = case / "junk.bin"
    junk.write_bytes(b"\x00\xff garbage")
    bad = case / "bad.yaml"
    bad.write_text(yaml.safe_dump({**BASE, "densities": [2.0]}))
    (case / "adir").mkdir()
    fill = {"{ticket}": str(ticket_path), "{missing}": str(case / "missing.safetensors"), "{dir}": str(case / "adir"),
            "{junk}": str(junk), "{config_bad}": str(bad)}
    monkeypatch.chdir(case)

    @FUZZ
    @given(_argv())
    def check(argv: list[str]) -> None:
        args = [fill.get(a, a) for a in argv]
        code = _check(capsys, args, case)
        if code == 0 and args[0] == "prune":  # a ticket written by a successful prune is complete
            written = sorted(case.glob("*.safetensors"))
            for w in written:
                assert gt.Ticket.load(w).verified
                w.unlink()

    check()


# ---------------------------------------------------------------------------- config documents
_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
              st.floats(allow_nan=True, allow_infinity=True), _TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_TEXT, inner, max_size=3)),
    max_leaves=6,
)
_PATHS = [("name",), ("datasets",), ("models",), ("models", 0), ("models", 0, "widths"), ("methods",),
          ("methods", "random"), ("methods", "magnitude"), ("densities",), ("densities", 0), ("seeds",), ("seeds", 0),
          ("train",), ("train", "epochs"), ("train", "lr"), ("train", "batch_size"), ("analysis", "null_samples"),
          ("analysis", "kinds"), ("device",), ("dense_reference",), ("quick",), ("prune_data", "batches"),
          ("allow_large",), ("unknown_key",)]


def _mutate(doc: dict, path: tuple, value) -> dict:
    import copy

    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value  # a list index or a mapping key alike
    return out


_KEYS = {"name", "datasets", "models", "methods", "densities", "seeds", "train", "analysis", "device",
         "dense_reference", "quick", "prune_data", "allow_large"}


def _count(v, low: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _invalid(doc) -> str | None:
    """Why a document is plainly invalid by the documented rules, written here (None: no plain reason)."""
    if not isinstance(doc, dict):
        return "not a mapping"
    if set(doc) - _KEYS:
        return "unknown key"
    ds = doc.get("densities")
    if not isinstance(ds, list) or not all(isinstance(d, (int, float)) and not isinstance(d, bool)
                                           and math.isfinite(d) and 0 < d <= 1 for d in ds):
        return "densities"
    seeds = doc.get("seeds")
    if not isinstance(seeds, list) or not all(_count(x, 0) and x < 2**63 for x in seeds):
        return "seeds"
    if not isinstance(doc.get("name"), str) or re.fullmatch(r"[A-Za-z0-9_.-]+", doc["name"]) is None:
        return "name"  # a study name is a folder-safe word
    train, analysis = doc.get("train"), doc.get("analysis")
    if not isinstance(train, dict) or not _count(train.get("epochs", 0), 0) or not _count(train.get("batch_size", 1), 1):
        return "train"
    lr = train.get("lr", 0.1)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr < 0:
        return "train.lr"
    if not isinstance(analysis, dict) or not _count(analysis.get("null_samples", 0), 0):
        return "analysis"
    return None


def test_the_plain_validity_rules_know_the_base_document():
    assert _invalid(BASE) is None
    assert _invalid({**BASE, "unknown_key": 1}) == "unknown key"
    assert _invalid({**BASE, "densities": [True]}) == "densities"
    assert _invalid({**BASE, "train": {"epochs": 0, "lr": math.inf}}) == "train.lr"


@st.composite
def _document(draw) -> str:
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "text", "base"]))
    if kind == "text":
        return draw(st.text(max_size=60))
    doc = BASE
    if kind == "base":  # valid documents: the base, or the base with one harmless value changed
        name = draw(st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True))
        return yaml.safe_dump({**BASE, "name": name, "densities": [draw(st.sampled_from([0.5, 0.2, 1.0]))]},
                              allow_unicode=True)
    for path in draw(st.lists(st.sampled_from(_PATHS), min_size=1, max_size=3)):
        try:
            doc = _mutate(doc, path, draw(_VALUES))
        except (KeyError, IndexError, TypeError):
            continue
    return yaml.safe_dump(doc, allow_unicode=True)


def test_config_documents_exit_2_one_line_and_leave_nothing(capsys, monkeypatch, workdir):
    """Every fuzzed study document is refused with one line, or passes validation; nothing is written either way.

    Acceptance is told from refusal (the stop below records it): an accepted document breaks no
    plain rule of :func:`_invalid`, the base documents are accepted, and the run saw both outcomes.
    """
    from graphtickets.study import runner

    accepted: list[int] = []
    outcomes = {"accepted": 0, "refused": 0, "base accepted": 0}

    def stop(study) -> None:  # validation passed: stop before the study runs (it would create its folder next)
        accepted.append(1)
        raise GraphticketsError("VALID-CONFIG")

    monkeypatch.setattr(runner, "_check_data", stop)
    case = workdir / "cfg"
    case.mkdir()
    monkeypatch.chdir(case)

    @FUZZ
    @given(_document())
    def check(text: str) -> None:
        path = case / "study.yaml"
        path.write_text(text, encoding="utf-8")
        out = case / "out"
        before = _files(case)
        accepted.clear()
        try:
            code = main(["run", str(path), "--out", str(out), "--no-progress"])
        except SystemExit as exc:
            code = int(exc.code or 0)
        _, err = capsys.readouterr()
        assert code == 2 and "Traceback" not in err, err
        lines = err.strip().splitlines()
        assert lines and lines[-1].startswith("graphtickets: error:") and len(
            [x for x in lines if x.startswith("graphtickets: error:")]) == 1, err
        assert not out.exists() and _files(case) == before
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            doc = None
        if accepted:
            assert "VALID-CONFIG" in err and _invalid(doc) is None, (_invalid(doc), text)
        else:
            assert "VALID-CONFIG" not in err
        is_base = isinstance(doc, dict) and set(doc) == set(BASE) and all(
            doc[k] == BASE[k] for k in BASE if k not in ("name", "densities"))
        if is_base and _invalid(doc) is None:
            assert accepted, f"a valid document was refused: {err}"
            outcomes["base accepted"] += 1
        outcomes["accepted" if accepted else "refused"] += 1

    check()
    assert all(n > 0 for n in outcomes.values()), outcomes


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.binary(max_size=200))
def test_binary_config_files_are_refused_naming_the_file(data):
    from graphtickets.errors import ConfigError
    from graphtickets.study import load_config

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "study.yaml"
        path.write_bytes(data)
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert str(path) in str(info.value)


# ---------------------------------------------------------------------------- corrupted ticket files
@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.data())
def test_any_corrupted_byte_is_refused(data):
    with tempfile.TemporaryDirectory() as d:
        src = _small_ticket(Path(d))
        raw = bytearray(src.read_bytes())
        how = data.draw(st.sampled_from(["flip", "flip", "flip", "truncate", "insert", "many"]))
        if how == "flip" or how == "many":
            for _ in range(1 if how == "flip" else data.draw(st.integers(2, 8))):
                i = data.draw(st.integers(0, len(raw) - 1))
                raw[i] ^= data.draw(st.integers(1, 255))
        elif how == "truncate":
            del raw[data.draw(st.integers(0, len(raw) - 1)):]
        else:
            i = data.draw(st.integers(0, len(raw)))
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=8))
        if bytes(raw) == src.read_bytes():  # several flips may cancel out
            return
        bad = Path(d) / "bad.safetensors"
        bad.write_bytes(bytes(raw))
        with pytest.raises(TicketError) as info:
            gt.Ticket.load(bad)
        assert str(bad) in str(info.value)


def _small_ticket(folder: Path) -> Path:
    g = torch.Generator().manual_seed(0)
    masks = {"a.weight": torch.rand(3, 4, generator=g) > 0.5, "b.weight": torch.rand(2, 3, generator=g) > 0.3}
    masks["a.weight"][0, 0] = True
    weights = {"a.weight": torch.randn(3, 4, generator=g), "a.bias": torch.randn(3, generator=g)}
    weights["b.weight"] = torch.randn(2, 3, generator=g)
    t = gt.Ticket(masks, method="snip", config={"density": 0.5, "model": {"name": "mlp"}}, meta={"x": math.pi},
                  weights=weights)
    return t.save(folder / "t.safetensors")


def test_corrupted_ticket_through_the_cli(capsys, workdir, ticket_path):
    raw = bytearray(ticket_path.read_bytes())
    for i in range(0, len(raw), max(1, len(raw) // 25)):
        bad = workdir / "cli-bad.safetensors"
        copy = bytearray(raw)
        copy[i] ^= 0x20
        bad.write_bytes(bytes(copy))
        for argv in (["info", str(bad)], ["graph", str(bad), "--out", str(workdir / "g.graphml")]):
            assert _check(capsys, argv, workdir) == 2
        assert not (workdir / "g.graphml").exists()
