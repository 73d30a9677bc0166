"""Tokenizers a run reads its text through: bytes, or words the way word_language_model's data.py reads them.

- `ByteTokenizer`: every byte of a file is a token (vocabulary 256); nothing is ever out of vocabulary.
- `WordTokenizer`: each line of a UTF-8 file is `line.split()` plus `"<eos>"`, and ids are given in order
  of first appearance (over train, valid, test for a data directory), exactly as pytorch/examples'
  `word_language_model/data.py` builds its `Dictionary`, so the ids of a model trained there line up.

The tokenizer is stored in the run's checkpoint (`to_json`), so `eval` and `sample` read text the way
training did, and refuse what they cannot score (a word outside the vocabulary, ids beyond a byte).

>>> words = WordTokenizer.build([["the cat", "sat"]])
>>> words.words
('the', 'cat', '<eos>', 'sat')
>>> words.encode_lines(["the cat sat"]).tolist()
[0, 1, 3, 2]
>>> words.decode([0, 1, 2, 3])
'the cat\\nsat'
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

EOS = "<eos>"
TOKENIZERS = ("byte", "word")


class TokenizerError(ValueError):
    """Text a tokenizer cannot turn into ids (a word outside the vocabulary, undecodable UTF-8)."""


def read_lines(path: str | Path) -> Iterator[str]:
    """The lines of a UTF-8 file as word_language_model reads them (`open(path, "r", encoding="utf8")`,
    universal newlines), with a one-line error for undecodable bytes."""
    try:
        with open(path, encoding="utf8") as f:
            yield from f
    except UnicodeDecodeError:
        # The error's offset is within the chunk the text reader was decoding, not within the file.
        offset, reason = _first_bad_byte(path)
        raise TokenizerError(
            f"{path} is not UTF-8 text (byte {offset:,}: {reason}); a word-level run reads UTF-8"
        ) from None
    except OSError as err:
        raise TokenizerError(f"cannot read {path}: {err.strerror or err}") from None


def _first_bad_byte(path: str | Path) -> tuple[int, str]:
    """The file offset of the first byte of `path` that is not UTF-8, and why (from an incremental decode)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            # Bytes held back from the last chunk (a character cut in two) come first in the next decode.
            held = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as err:
                return offset - held + err.start, err.reason
            if not chunk:
                return offset, "unreadable"
            offset += len(chunk)


@dataclasses.dataclass(frozen=True)
class ByteTokenizer:
    """Raw bytes: token `b` is byte `b`.

    >>> ByteTokenizer().encode_bytes(b"hi").tolist()
    [104, 105]
    """

    kind = "byte"
    unit = "byte"

    @property
    def vocab_size(self) -> int:
        return 256

    def encode_bytes(self, data: bytes) -> np.ndarray:
        return np.frombuffer(data, dtype=np.uint8)

    def encode_text(self, text: str) -> np.ndarray:
        return self.encode_bytes(text.encode("utf-8"))

    def encode_prompt(self, text: str, *, source: str = "the prompt") -> np.ndarray:
        """The ids a model reads before it generates: the text's UTF-8 bytes, as int32."""
        return self.encode_text(text).astype(np.int32)

    def decode(self, ids: Iterable[int]) -> str:
        """UTF-8 text (invalid sequences shown as U+FFFD)."""
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")

    def text_decoder(self) -> _ByteText:
        """A decoder for ids that arrive in pieces (see `stream_text`)."""
        return _ByteText()

    def to_json(self) -> dict:
        return {"kind": "byte"}


@dataclasses.dataclass(frozen=True)
class WordTokenizer:
    """Whitespace-separated words plus `<eos>` at the end of every line; ids in order of first appearance.

    >>> WordTokenizer.build([["a b a"]]).encode_lines(["b a"]).tolist()
    [1, 0, 2]
    """

    words: tuple[str, ...]
    kind = "word"
    unit = "word"

    def __post_init__(self):
        object.__setattr__(self, "_index", {word: i for i, word in enumerate(self.words)})

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    @classmethod
    def build(cls, sources: Iterable[Iterable[str]]) -> WordTokenizer:
        """The vocabulary of `sources` (each an iterable of lines, e.g. `read_lines(path)`), in order."""
        index: dict[str, int] = {}
        for lines in sources:
            for line in lines:
                for word in line.split() + [EOS]:
                    index.setdefault(word, len(index))
        return cls(tuple(index))

    def encode_lines(self, lines: Iterable[str], *, source: str = "the text") -> np.ndarray:
        """Ids of every word of every line, `<eos>` after each line; unknown words are refused by name."""
        index = self._index  # type: ignore[attr-defined]
        ids: list[int] = []
        for number, line in enumerate(lines, 1):
            for word in line.split() + [EOS]:
                try:
                    ids.append(index[word])
                except KeyError:
                    raise TokenizerError(
                        f"{source} line {number} has the word {word!r}, which is not in the run's vocabulary "
                        f"of {len(self.words):,} words; a word-level model can only score its own words"
                    ) from None
        return np.asarray(ids, dtype=np.int32)

    def encode_text(self, text: str) -> np.ndarray:
        # io.StringIO with newline=None splits lines exactly as reading a file in text mode does.
        import io

        return self.encode_lines(io.StringIO(text, newline=None), source="the prompt")

    def encode_prompt(self, text: str, *, source: str = "the prompt") -> np.ndarray:
        """The ids a model reads before it generates: the words of `text`, `<eos>` for each line break, and
        no `<eos>` after the last line, so that generation continues it; an empty prompt is one `<eos>`
        (generation starts as after a line end). Words outside the vocabulary are refused, naming `source`."""
        eos = self.encode_lines([""], source=source)
        parts = []
        for number, line in enumerate(text.split("\n")):
            if number:
                parts.append(eos)
            parts.append(self.encode_lines([line], source=source)[:-1])
        ids = np.concatenate(parts)
        return ids if ids.size else eos

    def decode(self, ids: Iterable[int]) -> str:
        """Words joined by spaces, a new line for every `<eos>`."""
        return self.text_decoder().decode(ids)

    def text_decoder(self) -> _WordText:
        """A decoder for ids that arrive in pieces (see `stream_text`)."""
        return _WordText(self.words)

    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(self.words).encode("utf-8")).hexdigest()[:16]

    def to_json(self) -> dict:
        return {"kind": "word", "words": list(self.words)}


Tokenizer = ByteTokenizer | WordTokenizer


class _ByteText:
    """Byte ids to text as they arrive: a character split between two pieces is written once, whole."""

    def __init__(self):
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def begin(self, prompt: str) -> str:
        return self._decoder.decode(prompt.encode("utf-8"))

    def decode(self, ids: Iterable[int]) -> str:
        return self._decoder.decode(bytes(int(i) for i in ids))

    def finish(self) -> str:
        return self._decoder.decode(b"", final=True) + "\n"


class _WordText:
    """Word ids to text as they arrive: words joined by spaces, a new line for every `<eos>`."""

    def __init__(self, words: tuple[str, ...]):
        self.words = words
        self.line_start = True

    def begin(self, prompt: str) -> str:
        self.line_start = not prompt or prompt.endswith("\n")
        return prompt

    def decode(self, ids: Iterable[int]) -> str:
        out = []
        for i in ids:
            word = self.words[int(i)]
            out.append("\n" if word == EOS else (word if self.line_start else " " + word))
            self.line_start = word == EOS
        return "".join(out)

    def finish(self) -> str:
        return "" if self.line_start else "\n"


def stream_text(tokenizer: Tokenizer, prompt: str, pieces: Iterable[Iterable[int]]) -> Iterator[str]:
    """The text of a generation as it arrives: the prompt with the first piece of ids, then each further
    piece, then the end (a line break where the text does not end with one).

    >>> "".join(stream_text(ByteTokenizer(), "de", [[102], [32, 120]]))
    'def x\\n'
    """
    decoder = tokenizer.text_decoder()
    pending = decoder.begin(prompt)
    for ids in pieces:
        yield pending + decoder.decode(ids)
        pending = ""
    yield pending + decoder.finish()


def tokenizer_from_json(data: dict | None) -> Tokenizer:
    """The tokenizer a checkpoint stores; checkpoints without one are byte-level (older runs)."""
    if data is None or data.get("kind") == "byte":
        return ByteTokenizer()
    if data.get("kind") == "word" and isinstance(data.get("words"), list):
        words = data["words"]
        if not all(isinstance(w, str) for w in words) or len(set(words)) != len(words):
            raise TokenizerError("the checkpoint's word vocabulary is damaged (non-text or repeated words)")
        return WordTokenizer(tuple(words))
    raise TokenizerError(f"unknown tokenizer in the checkpoint: {data.get('kind')!r}")


def summarize(tokenizer: Tokenizer) -> dict:
    """A short, human-readable stand-in for the tokenizer (the vocabulary itself can be 30k words)."""
    if isinstance(tokenizer, WordTokenizer):
        return {"kind": "word", "vocab_size": tokenizer.vocab_size, "fingerprint": tokenizer.fingerprint()}
    return tokenizer.to_json()


def check_ids(ids: Sequence[int] | np.ndarray, vocab_size: int, what: str) -> None:
    """Refuse token ids the model cannot read."""
    ids = np.asarray(ids)
    if ids.size and int(ids.max()) >= vocab_size:
        raise TokenizerError(f"{what} has token id {int(ids.max())}, outside the model's vocabulary of {vocab_size}")
