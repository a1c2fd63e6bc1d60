"""The one output writer (issue 30): what each kind of path gets, and failing writes.

Oracles: the file system itself (os.stat of what is left at the path, the folder's listing),
never the writer's own helpers.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphtickets import _io
from graphtickets._io import OutputError, output_kind, write_output


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_new_and_existing_files_are_written_atomically_and_keep_permissions(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "t.bin"
    write_output(p, b"one")
    assert p.read_bytes() == b"one" and stat.S_IMODE(p.stat().st_mode) == 0o644
    os.chmod(p, 0o600)
    inode = p.stat().st_ino
    write_output(p, "two")
    assert p.read_bytes() == b"two"
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert p.stat().st_ino != inode  # a new file renamed over the old one
    assert _listing(p.parent) == ["t.bin"]  # no temporary file left


def test_a_producer_function_may_seek(tmp_path: Path) -> None:
    def produce(f):  # type: ignore[no-untyped-def]
        f.write(b"xxxx")
        f.seek(0)
        f.write(b"ab")

    assert write_output(tmp_path / "s", produce).read_bytes() == b"abxx"


@pytest.mark.parametrize("how", ["relative", "absolute"])
def test_a_symlink_is_followed_and_stays_a_link(tmp_path: Path, how: str) -> None:
    target = tmp_path / "real.csv"
    target.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to("real.csv" if how == "relative" else target)
    write_output(link, "new")
    assert link.is_symlink() and os.readlink(link) == ("real.csv" if how == "relative" else str(target))
    assert target.read_text() == "new"


def test_a_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "later.txt")
    write_output(link, "made")
    assert link.is_symlink() and (tmp_path / "later.txt").read_text() == "made"


def test_a_fifo_is_written_straight_through(tmp_path: Path) -> None:
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_output(fifo, b"through the pipe")
    reader.join(10)
    assert got == [b"through the pipe"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still the FIFO


def _own_device(tmp_path: Path, name: str, major: int, minor: int) -> Path:
    """A character device node of our own (in tmp_path) for /dev/full or /dev/null semantics."""
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    node = tmp_path / name
    try:
        os.mknod(node, stat.S_IFCHR | 0o600, os.makedev(major, minor))
    except OSError as exc:  # e.g. a container without CAP_MKNOD
        pytest.skip(f"cannot make a device node here: {exc}")
    return node


def test_a_full_device_fails_with_no_space_and_stays_a_device(tmp_path: Path) -> None:
    full = _own_device(tmp_path, "full", 1, 7)
    try:
        with pytest.raises(OutputError, match="ENOSPC") as info:
            write_output(full, b"x" * 10, what="ticket file")
    except OSError as exc:  # pragma: no cover - a node that cannot even be opened
        pytest.skip(f"device node not usable here: {exc}")
    assert str(full) in str(info.value) and "ticket file" in str(info.value)
    assert stat.S_ISCHR(full.stat().st_mode)


def test_a_null_device_is_written_and_kept(tmp_path: Path) -> None:
    null = _own_device(tmp_path, "null", 1, 3)
    write_output(null, b"gone")
    assert stat.S_ISCHR(null.stat().st_mode)


def test_folder_and_socket_are_refused_naming_the_fix(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="is a folder; give a file name"):
        write_output(tmp_path, b"x")
    sock_path = tmp_path / "s.sock"
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(sock_path))
        with pytest.raises(OutputError, match="socket"):
            write_output(sock_path, b"x")
        assert stat.S_ISSOCK(sock_path.stat().st_mode)
    finally:
        s.close()


def test_a_read_only_folder_keeps_what_was_there(tmp_path: Path) -> None:
    p = tmp_path / "ro" / "t.txt"
    p.parent.mkdir()
    p.write_text("before")
    os.chmod(p.parent, 0o500)
    try:
        if os.geteuid() == 0:  # root writes anyway: simulate EROFS at the temporary file instead
            pytest.skip("root ignores folder permissions (EROFS is injected in the next test)")
        with pytest.raises(OutputError, match=str(p.parent.name)):
            write_output(p, "after")
        assert p.read_text() == "before"
    finally:
        os.chmod(p.parent, 0o700)


class _FailingFile:
    """A binary file that raises ``code`` once ``limit`` bytes were written (a full disk)."""

    def __init__(self, real, limit: int, code: int) -> None:  # type: ignore[no-untyped-def]
        self.real, self.limit, self.code, self.n = real, limit, code, 0

    def write(self, b: bytes) -> int:
        if self.n + len(b) > self.limit:
            raise OSError(self.code, os.strerror(self.code))
        self.n += len(b)
        return self.real.write(b)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.real, name)

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: object) -> None:
        self.real.close()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EROFS])
@pytest.mark.parametrize("where", ["open", "body", "fsync", "rename"])
def test_a_failing_write_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            code: int, where: str) -> None:
    p = tmp_path / "out.csv"
    p.write_text("before")
    err = OSError(code, os.strerror(code))

    def boom(*a: object, **k: object) -> None:
        raise err

    if where == "open":
        monkeypatch.setattr(_io.tempfile, "mkstemp", boom)
    elif where == "body":
        real_fdopen = os.fdopen
        monkeypatch.setattr(_io.os, "fdopen", lambda fd, mode: _FailingFile(real_fdopen(fd, mode), 3, code))
    elif where == "fsync":
        monkeypatch.setattr(_io.os, "fsync", boom)
    else:
        monkeypatch.setattr(_io.os, "replace", boom)
    with pytest.raises(OutputError) as info:
        write_output(p, "after" * 100, what="table")
    monkeypatch.undo()
    assert p.read_text() == "before"
    assert _listing(tmp_path) == ["out.csv"]
    msg = str(info.value)
    assert str(p) in msg and errno.errorcode[code] in msg and "\n" not in msg


def test_output_kind_names_each_kind(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    os.mkfifo(tmp_path / "p")
    assert [output_kind(tmp_path / n) for n in ("f", "p", "nope")] + [output_kind(tmp_path)] == [
        "file", "fifo", "new", "dir"]


_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\x00"),
    min_size=1, max_size=60,
).filter(lambda s: s not in (".", "..") and len(os.fsencode(s)) <= 250)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=_names)
def test_any_file_name_round_trips(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "h"
    folder.mkdir(exist_ok=True)
    p = folder / name
    write_output(p, name)
    assert p.read_text(encoding="utf-8") == name
    assert not [n for n in _listing(folder) if n.endswith(".tmp")]
    p.unlink()


def test_a_long_name_gets_a_temporary_file_that_fits(tmp_path: Path) -> None:
    name = "é" * 120 + ".csv"  # 244 bytes: the temporary name must stay under the 255-byte limit
    write_output(tmp_path / name, "x")
    assert (tmp_path / name).read_text() == "x"


# --- the command line: `graphtickets prune --out` through every kind of path (the cases) ---

def _prune(out: Path) -> list[str]:
    return ["prune", "--method", "random", "--density", "0.5", "--model", "mlp", "--model-arg", "widths=[8]",
            "--dataset", "digits", "--out", str(out)]


def test_prune_out_a_symlink_writes_its_target(tmp_path: Path) -> None:
    from graphtickets.cli import main
    from graphtickets.ticket import Ticket

    target = tmp_path / "thesis" / "t.safetensors"
    target.parent.mkdir()
    target.write_bytes(b"stale")
    link = tmp_path / "t.safetensors"
    link.symlink_to(target)
    assert main(_prune(link)) == 0
    assert link.is_symlink()
    assert Ticket.load(target).density == pytest.approx(0.5, abs=0.01)


def test_prune_out_a_fifo_streams_the_ticket(tmp_path: Path) -> None:
    from graphtickets.cli import main
    from graphtickets.ticket import Ticket

    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    assert main(_prune(fifo)) == 0
    reader.join(10)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    (tmp_path / "copy.safetensors").write_bytes(got[0])
    assert Ticket.load(tmp_path / "copy.safetensors").method == "random"


def test_prune_out_a_full_device_exits_2_and_keeps_the_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from graphtickets.cli import main

    full = _own_device(tmp_path, "full", 1, 7)
    assert main(_prune(full)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ENOSPC" in err[0] and str(full) in err[0]
    assert stat.S_ISCHR(full.stat().st_mode)


# --- every writer of the package goes through write_output -------------------------------------

def test_no_module_writes_or_renames_files_itself() -> None:
    """Only _io writes output files (the store's move of a broken study.db aside is the one rename)."""
    import ast

    pkg = Path(__file__).resolve().parents[1] / "graphtickets"
    banned_attrs = {"replace", "rename", "write_text", "write_bytes", "savefig", "to_csv", "to_parquet",
                    "mkstemp", "write_graphml", "savez", "save_file", "save"}
    found = []
    for path in sorted(pkg.rglob("*.py")):
        if path.name == "_io.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name == "open" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant) \
                    and any(c in str(node.args[1].value) for c in "wx"):  # "a": appending to study.log
                found.append(f"{path.name}:{node.lineno} open(..., {node.args[1].value!r})")
            if name in banned_attrs and isinstance(f, ast.Attribute):
                owner = ast.unparse(f.value)
                if name == "save" and owner != "torch":
                    continue  # other objects' save methods (Ticket.save goes through write_output)
                if name in ("replace", "rename") and owner != "os":
                    continue  # str.replace, DataFrame.rename; Path.rename is never used (see below)
                if name in ("to_csv", "to_parquet", "savefig", "savez", "write_graphml", "save", "save_file") and node.args \
                        and not any(isinstance(a, ast.Name) and a.id in ("f", "fh") for a in node.args):
                    found.append(f"{path.name}:{node.lineno} {owner}.{name}(<path>)")
                elif name in ("rename", "replace", "write_text", "write_bytes", "mkstemp"):
                    found.append(f"{path.name}:{node.lineno} {owner}.{name}")
    allowed = {"store.py"}  # check_db moves a broken study.db aside (a regular file, by the store)
    left = [x for x in found if x.split(":")[0] not in allowed]
    assert left == [], left


def test_graph_out_a_full_device_exits_2_and_keeps_the_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from graphtickets.cli import main

    ticket = tmp_path / "t.safetensors"
    assert main(_prune(ticket)) == 0
    full = _own_device(tmp_path, "full", 1, 7)
    capsys.readouterr()
    assert main(["graph", str(ticket), "--format", "edgelist", "--out", str(full)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ENOSPC" in err[0]
    assert stat.S_ISCHR(full.stat().st_mode)


def test_graph_out_a_symlink_writes_its_target(tmp_path: Path) -> None:
    from graphtickets.cli import main

    ticket = tmp_path / "t.safetensors"
    assert main(_prune(ticket)) == 0
    target = tmp_path / "g.graphml"
    link = tmp_path / "link.graphml"
    link.symlink_to(target)
    assert main(["graph", str(ticket), "--out", str(link)]) == 0
    assert link.is_symlink() and target.read_text().lstrip().startswith("<?xml")
