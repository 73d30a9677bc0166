"""Reading and writing source files: decoding as Python does, and atomic writes.

Reading keeps what the file was: the encoding (PEP 263 cookie, UTF-8 with or without BOM) and its line
endings, so that a fixed file differs from the original only inside the edited expressions.

Example:
    >>> source_of(b"\\xef\\xbb\\xbfx = 1\\r\\n", "m.py")
    Source(text='x = 1\\r\\n', encoding='utf-8-sig')
    >>> decode_source(b"# -*- coding: latin-1 -*-\\nx = '\\xe9'\\n")[-4:]
    "'é'\\n"
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import tempfile
import tokenize

__all__ = [
    "Source", "SourceError", "decode_source", "read_bytes", "read_source", "source_of", "write_atomic", "write_source",
]  # fmt: skip


class SourceError(Exception):
    """A file that cannot be read or decoded; the message names the problem in one line."""


@dataclasses.dataclass(frozen=True)
class Source:
    """Decoded file text, exactly as on disk (line endings untouched), and how to encode it back."""

    text: str
    encoding: str  # a Python codec name; "utf-8-sig" means the file starts with a BOM


def _encoding(data: bytes) -> str:
    """The encoding Python reads `data` with (BOM, PEP 263 coding cookie, else UTF-8); SyntaxError
    for an unknown or contradictory declaration."""
    return tokenize.detect_encoding(io.BytesIO(data).readline)[0]


def decode_source(data: bytes) -> str:
    """Decode Python source bytes the way Python does (BOM, PEP 263 coding cookie, else UTF-8).
    Raises UnicodeDecodeError, LookupError or SyntaxError when that is impossible."""
    return data.decode(_encoding(data))


def source_of(data: bytes, path: str) -> Source:
    """The text of source bytes and the encoding to write it back with; a failure raises
    SourceError naming `path` and the reason."""
    try:
        encoding = _encoding(data)
    except SyntaxError as err:
        raise SourceError(f"{path}: cannot decode: {err}") from None
    try:
        return Source(data.decode(encoding), encoding)
    except (UnicodeDecodeError, LookupError) as err:
        reason = err.reason if isinstance(err, UnicodeDecodeError) else err
        raise SourceError(f"{path}: cannot decode as {encoding}: {err.__class__.__name__}: {reason}") from None


def read_bytes(path: str | os.PathLike) -> bytes:
    """A file's bytes; a file that cannot be read raises SourceError naming the reason."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as err:
        raise SourceError(f"{os.fspath(path)}: cannot read: {err.strerror or err}") from None


def read_source(path: str | os.PathLike) -> Source:
    return source_of(read_bytes(path), os.fspath(path))


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Replace `path` with `data` through a temporary file in the same directory (never half-written)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".purelint-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        with contextlib.suppress(OSError):  # a new file keeps mkstemp's private mode
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_source(path: str | os.PathLike, text: str, encoding: str) -> None:
    """Atomically write `text` back in the file's own encoding (a BOM stays a BOM)."""
    write_atomic(path, text.encode(encoding))
