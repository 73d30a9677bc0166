"""Tokenizers: bytes, and words exactly as pytorch/examples word_language_model's data.py reads them."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from purelm._data._corpus import DataError, DataSpec, build_tokenizer, layout_dir, load_corpus, read_tokens
from purelm._data._tokenizer import (
    ByteTokenizer,
    TokenizerError,
    WordTokenizer,
    read_lines,
    tokenizer_from_json,
)


def their_corpus(root):
    """word_language_model's data.py `Corpus`, restated (their Dictionary.add_word and tokenize loops)."""
    word2idx, idx2word = {}, []
    splits = []
    for name in ("train.txt", "valid.txt", "test.txt"):
        with open(root / name, encoding="utf8") as f:
            for line in f:
                for word in line.split() + ["<eos>"]:
                    if word not in word2idx:
                        idx2word.append(word)
                        word2idx[word] = len(idx2word) - 1
        with open(root / name, encoding="utf8") as f:
            ids = [word2idx[word] for line in f for word in line.split() + ["<eos>"]]
        splits.append(np.asarray(ids, dtype=np.int64))
    return idx2word, splits


# Line ends of every kind, tabs, non-breaking and other Unicode spaces, empty lines, no final newline.
TRICKY = {
    "train.txt": " = Valkyria = \n\n the  cat\tsat\r\non the mat @-@ 3\u00a0km\rcafé\u2003naïve\n",
    "valid.txt": "the dog \u2028 ran\n\nfar away",
    "test.txt": "a zebra\n \n",
}


@pytest.fixture
def tricky_dir(tmp_path):
    for name, text in TRICKY.items():
        (tmp_path / name).write_bytes(text.encode("utf-8"))
    return tmp_path


def test_word_ids_match_word_language_model(tricky_dir):
    words, (train, valid, test) = their_corpus(tricky_dir)
    tokenizer = build_tokenizer(DataSpec(paths=(str(tricky_dir),)), "word")
    assert list(tokenizer.words) == words
    corpus = load_corpus(DataSpec(paths=(str(tricky_dir),)), tokenizer=tokenizer)
    assert np.array_equal(corpus.train, train) and np.array_equal(corpus.val, valid)
    assert np.array_equal(corpus.test, test)
    ids, what = read_tokens(DataSpec(paths=(str(tricky_dir),)), tokenizer)
    assert np.array_equal(ids, test) and what.startswith(str(tricky_dir / "test.txt"))
    assert layout_dir(DataSpec(paths=(str(tricky_dir),))) == tricky_dir


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(alphabet=st.sampled_from(list("ab c\n\r\t\u00a0\u2028é")), max_size=30), min_size=1, max_size=3)
)
def test_word_ids_match_word_language_model_on_any_text(tmp_path_factory, texts):
    root = tmp_path_factory.mktemp("any")
    for name, text in zip(("train.txt", "valid.txt", "test.txt"), texts + [""] * 3, strict=False):
        (root / name).write_bytes(text.encode("utf-8"))
    words, splits = their_corpus(root)
    tokenizer = WordTokenizer.build(read_lines(root / n) for n in ("train.txt", "valid.txt", "test.txt"))
    assert list(tokenizer.words) == words
    for name, ids in zip(("train.txt", "valid.txt", "test.txt"), splits, strict=True):
        assert tokenizer.encode_lines(read_lines(root / name)).tolist() == ids.tolist()


def test_decode_unknown_words_and_round_trip_through_json():
    tokenizer = WordTokenizer.build([["the cat sat", "on the mat"]])
    ids = tokenizer.encode_lines(["the cat sat", "on the mat"])
    assert tokenizer.decode(ids) == "the cat sat\non the mat\n"
    with pytest.raises(TokenizerError, match="line 2 has the word 'dog', which is not in the run's vocabulary of 6"):
        tokenizer.encode_lines(["the cat", "the dog"], source="x.txt")
    assert tokenizer_from_json(tokenizer.to_json()) == tokenizer
    assert tokenizer_from_json(None) == ByteTokenizer() == tokenizer_from_json({"kind": "byte"})
    with pytest.raises(TokenizerError, match="damaged"):
        tokenizer_from_json({"kind": "word", "words": ["a", "a"]})
    assert ByteTokenizer().decode(ByteTokenizer().encode_text("héllo")) == "héllo"


def test_undecodable_text_and_files_for_word_runs(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"caf\xe9\n")
    with pytest.raises(DataError, match=r"latin1.txt is not UTF-8 text \(byte 3"):
        build_tokenizer(DataSpec(paths=(str(bad),)), "word")
    # Word runs on plain files: vocabulary over the training files, then the validation ones.
    good = tmp_path / "good.txt"
    good.write_text("one two\nthree one\n" * 30)
    tokenizer = build_tokenizer(DataSpec(paths=(str(good),)), "word")
    assert tokenizer.words == ("one", "two", "<eos>", "three")
    corpus = load_corpus(DataSpec(paths=(str(good),)), tokenizer=tokenizer)
    assert corpus.train.size + corpus.val.size == 180 and corpus.test is None
