"""Atomic file writes: a reader (or a run killed mid-write) sees the old file or the new one, never half;
and directory locks that end with the process that holds them.

A killed writer (SIGKILL, a power cut) can leave its temporary file, `.NAME.XXXXXXXX.tmp`, behind:
`remove_leftovers` removes those of a directory's files once no writer can be running.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from purelm._runtime import _signals

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; directories are not locked there
    fcntl = None  # type: ignore[assignment]


def _temp_prefix(name: str) -> str:
    return f".{name}."


_TEMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file next to `path`; on success it replaces `path` in one `os.replace`.

    SIGINT and SIGTERM wait for the write to end (`purelm._runtime._signals.shielded`), so that an interrupted
    command leaves no temporary file. An `OSError` names `path` (a full disk reports no file name itself).

    >>> with atomic_writer("out.bin") as f:  # doctest: +SKIP
    ...     f.write(b"data")
    """
    path = Path(path)
    with _signals.shielded(), _naming(path):
        # Same directory, so the final rename never crosses file systems (where it would not be atomic).
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name), suffix=_TEMP_SUFFIX, dir=path.parent)
        try:
            # mkstemp makes the file private (0600); the result should have the mode any new file gets.
            os.fchmod(fd, 0o666 & ~_umask())
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Give an `OSError` raised without a file name (a write that finds the disk full) the name of `path`."""
    try:
        yield
    except OSError as err:
        if err.filename is not None or err.errno is None:
            raise
        raise type(err)(err.errno, err.strerror, os.fspath(path)) from err


def _umask() -> int:
    # The process umask can only be read by setting it; put it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically (temp file in the same directory + `os.replace`)."""
    with atomic_writer(path) as f:
        f.write(data)


def append_text(path: str | os.PathLike[str], text: str) -> None:
    """Append `text` to `path` (created if missing); an `OSError` names `path`, as `atomic_writer`'s do."""
    path = Path(path)
    with _naming(path), path.open("a", encoding="utf-8") as f:
        f.write(text)


def remove_leftovers(directory: str | os.PathLike[str], names: Iterable[str]) -> list[Path]:
    """Remove the temporary files that writers of `directory`'s files `names`, killed mid-write, left
    behind; returns them. Only call it where no writer of those files can be running (under `locked`)."""
    removed = []
    for name in names:
        for path in Path(directory).glob(f"{_temp_prefix(name)}*{_TEMP_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


# ------------------------------------------------------------------------------------------ locks


class Locked(RuntimeError):
    """Another process holds the lock; `holder` is its process id, if it wrote one."""

    def __init__(self, path: Path, holder: int | None):
        super().__init__(f"{path} is locked by process {holder if holder is not None else '(unknown)'}")
        self.path, self.holder = path, holder


_held: dict[str, list] = {}  # lock file (resolved) -> [open file, depth]


@contextlib.contextmanager
def locked(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (created if missing) for the block, or raise `Locked`
    at once. The kernel drops the lock when the process ends, however it ends (`fcntl.flock`), so no
    stale lock is ever left. Re-entrant within a process; a no-op where `fcntl` does not exist.

    >>> with locked("runs/x/.lock"):  # doctest: +SKIP
    ...     write_the_run()
    """
    path = Path(path)
    key = os.path.realpath(path)
    if fcntl is None:
        yield
        return
    if key in _held:
        _held[key][1] += 1
        try:
            yield
        finally:
            _held[key][1] -= 1
        return
    handle = open(path, "a+", encoding="ascii")  # noqa: SIM115 (kept open while the lock is held)
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        text = handle.read().strip()
        handle.close()
        raise Locked(path, int(text) if text.isdigit() else None) from None
    # The holder's pid, for the message another process gets; the lock itself is the flock.
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    _held[key] = [handle, 1]
    try:
        yield
    finally:
        _held[key][1] -= 1
        if not _held[key][1]:
            del _held[key]
            handle.close()  # releases the lock
