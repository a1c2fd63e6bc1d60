"""One writer for every output: atomic for files, straight through for streams, never a rename
over what is not a regular file.

:func:`write_output` is how graphtickets writes a ticket file, an import/export, a graph, a table,
a figure, a report or a study file. What each kind of path gets:

- a **new path** or a **regular file**: written atomically — the bytes go to a temporary file in
  the same folder, are flushed and fsynced, and the temporary file is renamed over the path; an
  existing file keeps its permissions (a new one gets ``0o644``);
- a **symbolic link** (relative, absolute, or dangling): followed; its target is written the same
  way (the link itself stays a link);
- a **FIFO** or a **character device** (``/dev/stdout``, ``/dev/full``, a pipe a reader waits on):
  the bytes are written straight through, as a shell redirection does; a write that fails there
  (``/dev/full``: no space left) is an error;
- a **folder**, a **block device** or a **socket**: refused with one line naming the fix.

On any failing write (ENOSPC, EIO, EDQUOT, EROFS, EACCES, ...) at any point — the temporary
file, its body, the fsync, the rename — the temporary file is removed, whatever was at the path
before is kept, and :class:`OutputError` names the path and the cause (the CLI prints it as one
line and exits 2). The bytes are produced in memory first, so a format that needs a seekable file
(safetensors, parquet, PNG) streams as well as a text one.

This module is low (layer 0): it imports only :mod:`graphtickets.errors`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from graphtickets.errors import GraphticketsError

__all__ = ["OutputError", "write_output", "resolve_output", "output_kind"]

#: The mode a new output file gets (an existing file keeps its own).
NEW_FILE_MODE = 0o644

Producer = bytes | str | Callable[[BinaryIO], None]


class OutputError(GraphticketsError, OSError):
    """An output that cannot be written (the message names the path and the cause)."""


def output_kind(path: str | os.PathLike[str]) -> str:
    """What ``path`` is now: ``new``, ``file``, ``dir``, ``fifo``, ``chardev``, ``blockdev``, ``socket``.

    Symbolic links are followed (a dangling link is ``new``: its target will be created).

    Examples
    --------
    >>> output_kind("/nonexistent/of/graphtickets")
    'new'
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "new"
    except NotADirectoryError:
        return "new"
    for test, name in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISFIFO, "fifo"),
                       (stat.S_ISCHR, "chardev"), (stat.S_ISBLK, "blockdev"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "other"


def resolve_output(path: str | os.PathLike[str]) -> Path:
    """The path the bytes go to: ``path`` with every symbolic link followed (dangling included)."""
    if not isinstance(path, (str, os.PathLike)):
        raise OutputError(f"an output needs a file path (str or pathlib.Path), got {type(path).__name__}")
    p = Path(path)
    if p.is_symlink() or any(q.is_symlink() for q in p.parents):
        return Path(os.path.realpath(p))
    return p


def _cause(exc: OSError) -> str:
    code = exc.errno
    if code is not None and code in errno.errorcode:
        return f"{exc.strerror or os.strerror(code)} ({errno.errorcode[code]})"
    return str(exc.strerror or exc)


def _payload(data: Producer) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    import io

    buf = io.BytesIO()
    data(buf)
    return buf.getvalue()


def _refuse(path: Path, kind: str, what: str) -> None:
    fixes = {
        "dir": f"is a folder; give a file name inside it, e.g. {str(path / ('out' + path.suffix))!r}",
        "blockdev": "is a block device; graphtickets never writes into one: give a file name",
        "socket": "is a socket; graphtickets cannot write a file there: give a file name",
        "other": "is not a file; give a file name",
    }
    raise OutputError(f"cannot write the {what} to {str(path)!r}: it {fixes[kind]}")


def _stream(path: Path, payload: bytes, what: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as exc:
        raise OutputError(f"cannot write the {what} to {str(path)!r}: {_cause(exc)}") from None
    try:
        view = memoryview(payload)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    except OSError as exc:
        raise OutputError(f"cannot write the {what} to {str(path)!r}: {_cause(exc)}") from None
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def _atomic(path: Path, payload: bytes, what: str, mode: int | None) -> None:
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        short = os.fsencode(path.name)[:96].decode("utf-8", errors="ignore")  # room for the suffix
        fd, tmp = tempfile.mkstemp(prefix=f".{short}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, NEW_FILE_MODE if mode is None else mode)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise OutputError(
            f"cannot write the {what} to {str(path)!r}: {_cause(exc)}; nothing there was changed"
        ) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def write_output(path: str | os.PathLike[str], data: Producer, *, what: str = "output") -> Path:
    """Write ``data`` to ``path``: atomically for files, straight through for FIFOs and devices.

    Parameters
    ----------
    path : path-like
        Where to write (see the module docstring for what each kind of path gets).
    data : bytes, str or callable
        The content: bytes, text (written as UTF-8), or a function that writes the content into
        the binary file object it is given (it gets an in-memory buffer, so it may seek).
    what : str
        What is written ("ticket file", "table", ...), for the error message.

    Returns
    -------
    pathlib.Path
        The path given (not the link's target).

    Raises
    ------
    OutputError
        If ``path`` is a folder, a block device or a socket, or any write fails; whatever was at
        ``path`` before is kept, and no temporary file is left behind.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_output(d / "a.txt", "hello\\n", what="note").read_text()
    'hello\\n'
    """
    given = Path(path) if isinstance(path, (str, os.PathLike)) else path
    target = resolve_output(given)
    kind = output_kind(target)
    if kind in ("dir", "blockdev", "socket", "other"):
        _refuse(target, kind, what)
    payload = _payload(data)
    if kind in ("fifo", "chardev"):
        _stream(target, payload, what)
    else:
        mode = stat.S_IMODE(os.stat(target).st_mode) if kind == "file" else None
        _atomic(target, payload, what, mode)
    return Path(given)
