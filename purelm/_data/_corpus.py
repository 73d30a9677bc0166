"""Text corpora: discovery, a deterministic train/validation split, tokenization, and truncated-BPTT windows.

By default every file is read as raw bytes and every byte is a token (vocabulary 256), so any file works
and nothing is ever out of vocabulary. With a `WordTokenizer` (purelm._data._tokenizer) files are read as UTF-8
lines of words, as pytorch/examples' word_language_model reads them. A directory holding `train.txt` and
`valid.txt` (and usually `test.txt`; their layout) is read as those splits instead of being walked.

>>> corpus = load_corpus()  # the running interpreter's standard library, tests excluded  # doctest: +SKIP
>>> streams = batchify(corpus.train, batch_size=32)  # 32 contiguous streams         # doctest: +SKIP
>>> window(streams, 0, seq_len=64).shape                                              # doctest: +SKIP
(32, 64)
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import os
import sys
import sysconfig
from pathlib import Path

import numpy as np

from purelm._data._tokenizer import ByteTokenizer, Tokenizer, TokenizerError, WordTokenizer, read_lines

VOCAB_SIZE = 256
LAYOUT = ("train.txt", "valid.txt", "test.txt")
VAL_FRACTION = 0.05
DEFAULT_INCLUDE = "*"
# Directories that are never part of a corpus: caches, VCS metadata and installed third-party packages.
_SKIP_DIRS = frozenset({"__pycache__", "site-packages", "dist-packages", "node_modules"})
# The default corpus leaves out the standard library's own test suites (idlelib has "idle_test").
_TEST_DIRS = frozenset({"test", "tests", "idle_test"})


class DataError(ValueError):
    """Unusable training data (missing path, no matching files, empty corpus, too short for a window)."""


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """Where a corpus comes from: `paths=None` means the built-in default corpus.

    >>> DataSpec(paths=("notes/",), include="*.md")  # every .md file under notes/
    DataSpec(paths=('notes/',), include='*.md')
    """

    paths: tuple[str, ...] | None = None
    include: str | None = None

    def to_json(self) -> dict:
        return {"paths": None if self.paths is None else list(self.paths), "include": self.include}

    @classmethod
    def from_json(cls, data: dict) -> DataSpec:
        paths = data.get("paths")
        return cls(paths=None if paths is None else tuple(paths), include=data.get("include"))


@dataclasses.dataclass(frozen=True)
class Corpus:
    """Training and validation tokens (uint8 arrays for bytes, int32 for words) and what they were read from.

    `test` is the layout directory's `test.txt` (None for other data).
    """

    train: np.ndarray
    val: np.ndarray
    num_files: int
    num_val_files: int
    description: str
    test: np.ndarray | None = None

    def fingerprint(self) -> str:
        """A short hash of both splits, stored in checkpoints so a resumed run can tell the data changed."""
        digest = hashlib.sha256()
        for split in (self.train, self.val):
            digest.update(len(split).to_bytes(8, "little"))
            digest.update(split.tobytes())
        return digest.hexdigest()[:16]


def default_corpus_root() -> Path:
    """The running interpreter's standard library sources (`sysconfig`'s "stdlib" path)."""
    return Path(sysconfig.get_paths()["stdlib"])


def _walk(root: Path, include: str, skip_dirs: frozenset[str]) -> list[tuple[str, Path]]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        # Pruning in place keeps os.walk out of skipped trees; sorting makes the walk order reproducible.
        dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs and not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if name.startswith(".") or not (fnmatch.fnmatch(name, include) or fnmatch.fnmatch(rel, include)):
                continue
            found.append((rel, path))
    return found


def discover_files(spec: DataSpec) -> list[tuple[str, Path]]:
    """List `(name, path)` for every file of the corpus, in a reproducible order.

    `name` is the path relative to the directory argument it was found under (the file's own name for a file
    argument); it decides the train/validation split, so the split is the same on every machine.
    Explicit file arguments are always included; `include` filters files found in directories.
    """
    if spec.paths is None:
        root = default_corpus_root()
        found = _walk(root, spec.include or "*.py", _SKIP_DIRS | _TEST_DIRS)
        if not found:
            raise DataError(f"no Python sources found in the standard library at {root}")
        return found
    if not spec.paths:
        raise DataError("no data paths given")
    include = spec.include or DEFAULT_INCLUDE
    files: list[tuple[str, Path]] = []
    seen: set[Path] = set()
    for arg in spec.paths:
        path = Path(arg)
        if path.is_dir():
            found = _walk(path, include, _SKIP_DIRS)
            if not found:
                raise DataError(f"no files matching {include!r} under {arg}")
        elif path.is_file():
            found = [(path.name, path)]
        else:
            raise DataError(f"no such file or directory: {arg}")
        for name, file in found:
            resolved = file.resolve()
            if resolved not in seen:
                seen.add(resolved)
                files.append((name, file))
    return files


def is_validation(name: str, fraction: float = VAL_FRACTION) -> bool:
    """Whether the file `name` belongs to the validation split (a hash of the name, not of random draws)."""
    bucket = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little") % 1_000_000
    return bucket < fraction * 1_000_000


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}") from None


def _describe(spec: DataSpec) -> str:
    if spec.paths is None:
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        return f"Python {version} standard library ({default_corpus_root()})"
    return ", ".join(spec.paths)


def layout_dir(spec: DataSpec) -> Path | None:
    """The directory when `spec` is one directory in word_language_model's layout (`train.txt`,
    `valid.txt`, optionally `test.txt`), else None."""
    if spec.paths is None or len(spec.paths) != 1:
        return None
    path = Path(spec.paths[0])
    if path.is_dir() and (path / LAYOUT[0]).is_file() and (path / LAYOUT[1]).is_file():
        return path
    return None


def _tokens(tokenizer: Tokenizer, path: Path) -> np.ndarray:
    if isinstance(tokenizer, WordTokenizer):
        try:
            return tokenizer.encode_lines(read_lines(path), source=str(path))
        except TokenizerError as err:
            raise DataError(str(err)) from None
    return np.frombuffer(_read(path), dtype=np.uint8)


def _word_tokenizer(paths: list[Path]) -> WordTokenizer:
    try:
        return WordTokenizer.build(read_lines(path) for path in paths)
    except TokenizerError as err:
        raise DataError(str(err)) from None


def read_bytes(spec: DataSpec) -> tuple[np.ndarray, str]:
    """All bytes of a corpus, unsplit (for scoring held-out text), and a one-line description."""
    files = discover_files(spec)
    data = b"".join(_read(path) for _, path in files)
    if not data:
        raise DataError(f"corpus is empty: {len(files)} file(s), 0 bytes")
    return np.frombuffer(data, dtype=np.uint8), f"{_describe(spec)}: {len(files)} files, {len(data):,} bytes"


def read_tokens(spec: DataSpec, tokenizer: Tokenizer) -> tuple[np.ndarray, str]:
    """All tokens of held-out text, unsplit, and a one-line description: a layout directory's `test.txt`,
    or every file of `spec` in order. Words outside the tokenizer's vocabulary are refused by name."""
    root = layout_dir(spec)
    if root is not None:
        if not (root / LAYOUT[2]).is_file():
            raise DataError(f"{root} has no {LAYOUT[2]} to score; name the file to score instead")
        files = [(LAYOUT[2], root / LAYOUT[2])]
    else:
        files = discover_files(spec)
    ids = np.concatenate([_tokens(tokenizer, path) for _, path in files])
    unit = tokenizer.unit
    if not ids.size:
        raise DataError(f"no text to score: {len(files)} file(s), 0 {unit}s")
    what = str(files[0][1]) if root is not None else _describe(spec)
    return ids, f"{what}: {len(files)} file{'s' if len(files) > 1 else ''}, {ids.size:,} {unit}s"


def load_corpus(
    spec: DataSpec = DataSpec(), *, val_fraction: float = VAL_FRACTION, tokenizer: Tokenizer | None = None
) -> Corpus:
    """Read a corpus and split it into training and validation tokens.

    A directory in word_language_model's layout gives its `train.txt` and `valid.txt` (and `test.txt`).
    Otherwise files go to validation by a hash of their name; when that leaves one side empty (a corpus of
    one or a few files), the last `val_fraction` of the concatenated tokens becomes the validation split.
    `tokenizer` defaults to bytes (see `load_tokens` to build a word vocabulary from the data).

    >>> corpus = load_corpus(DataSpec(paths=("notes.txt",)))  # doctest: +SKIP
    >>> corpus.train.dtype                                     # doctest: +SKIP
    dtype('uint8')
    """
    tokenizer = ByteTokenizer() if tokenizer is None else tokenizer
    unit = tokenizer.unit
    root = layout_dir(spec)
    if root is not None:
        test_path = root / LAYOUT[2]
        train, val = _tokens(tokenizer, root / LAYOUT[0]), _tokens(tokenizer, root / LAYOUT[1])
        test = _tokens(tokenizer, test_path) if test_path.is_file() else None
        if not train.size or not val.size:
            empty = LAYOUT[0] if not train.size else LAYOUT[1]
            raise DataError(f"{root / empty} is empty")
        description = (
            f"{root} ({'/'.join(LAYOUT if test is not None else LAYOUT[:2])}): {train.size:,} training "
            f"{unit}s, {val.size:,} validation {unit}s"
        )
        return Corpus(train, val, 2 + (test is not None), 1, description, test)
    files = discover_files(spec)
    parts: dict[bool, list[np.ndarray]] = {False: [], True: []}
    for name, path in files:
        parts[is_validation(name, val_fraction)].append(_tokens(tokenizer, path))
    dtype = np.uint8 if isinstance(tokenizer, ByteTokenizer) else np.int32
    train, val = (np.concatenate(parts[side] or [np.zeros(0, dtype)]).astype(dtype) for side in (False, True))
    num_val = len(parts[True])
    if not train.size or not val.size:
        data = np.concatenate([train, val])
        if not data.size:
            raise DataError(f"corpus is empty: {len(files)} file(s), 0 {unit}s")
        cut = data.size - max(1, round(data.size * val_fraction))
        train, val, num_val = data[:cut], data[cut:], 0
    description = (
        f"{_describe(spec)}: {len(files)} files, {train.size:,} training {unit}s, {val.size:,} validation {unit}s"
    )
    return Corpus(train=train, val=val, num_files=len(files), num_val_files=num_val, description=description)


def build_tokenizer(spec: DataSpec, kind: str, *, val_fraction: float = VAL_FRACTION) -> Tokenizer:
    """A fresh tokenizer of `kind` ("byte" or "word") for the data of `spec`.

    Word vocabularies follow word_language_model: order of first appearance over train, valid, test for a
    layout directory; over the training files, then the validation files, otherwise.
    """
    if kind == "byte":
        return ByteTokenizer()
    if kind != "word":
        raise DataError(f"unknown tokenizer {kind!r} (byte or word)")
    root = layout_dir(spec)
    if root is not None:
        return _word_tokenizer([root / name for name in LAYOUT if (root / name).is_file()])
    files = discover_files(spec)
    ordered = [path for name, path in files if not is_validation(name, val_fraction)]
    ordered += [path for name, path in files if is_validation(name, val_fraction)]
    return _word_tokenizer(ordered)


def batchify(tokens: np.ndarray, batch_size: int) -> np.ndarray:
    """Cut a token stream into `batch_size` contiguous streams, dropping the tail that does not divide.

    Stream `b` holds tokens `[b*n, (b+1)*n)`, so consecutive windows of one row continue the same text (as in
    PyTorch's word-language-model example).

    >>> batchify(np.arange(10), 3)
    array([[0, 1, 2],
           [3, 4, 5],
           [6, 7, 8]], dtype=int32)
    """
    n = len(tokens) // batch_size
    return np.asarray(tokens[: n * batch_size], dtype=np.int32).reshape(batch_size, n)


def num_windows(streams: np.ndarray, seq_len: int, overlap: int = 0) -> int:
    """How many full windows each stream holds (one epoch): windows start every `seq_len` tokens and hold
    `seq_len + overlap` (word_language_model's `get_batch` reads one token past its `bptt`: `overlap=1`)."""
    return (streams.shape[1] - overlap) // seq_len


def window(streams: np.ndarray, index: int, seq_len: int, overlap: int = 0) -> np.ndarray:
    """The `index`-th window of every stream: `Int[batch, seq_len + overlap]`."""
    start = index * seq_len
    return streams[:, start : start + seq_len + overlap]


def windows(streams: np.ndarray, indices, seq_len: int, overlap: int = 0) -> np.ndarray:
    """The windows at `indices`, stacked: `Int[len(indices), batch, seq_len + overlap]`."""
    return np.stack([window(streams, index, seq_len, overlap) for index in indices])


def training_streams(
    tokens: np.ndarray, batch_size: int, seq_len: int, unit: str = "byte", overlap: int = 0
) -> np.ndarray:
    """`batchify` with the error a user sees when the data cannot fill a single batch of windows."""
    if len(tokens) // batch_size < seq_len + overlap:
        raise DataError(
            f"the training split has {len(tokens):,} {unit}s, shorter than one batch of windows "
            f"(data.batch_size={batch_size} x data.seq_len={seq_len} = {batch_size * seq_len:,} {unit}s); "
            "use more data or a smaller data.batch_size or data.seq_len"
        )
    return batchify(tokens, batch_size)


def eval_windows(tokens: np.ndarray, batch_size: int, seq_len: int, *, multiple_of: int = 1) -> np.ndarray:
    """Arrange evaluation bytes as `Int[windows, streams, seq_len]`, using up to `batch_size` streams.

    Short texts use fewer streams (a multiple of `multiple_of`, the number of devices) rather than failing.
    """
    streams = min(batch_size, len(tokens) // seq_len) // multiple_of * multiple_of
    if streams == 0:
        raise DataError(
            f"the evaluation text has {len(tokens):,} bytes, shorter than "
            f"{'one window' if multiple_of == 1 else f'{multiple_of} windows (one per device)'} "
            f"(--seq-len {seq_len})"
        )
    rows = batchify(tokens, streams)
    windows = num_windows(rows, seq_len)
    return rows[:, : windows * seq_len].reshape(streams, windows, seq_len).transpose(1, 0, 2)
