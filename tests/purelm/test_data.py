"""Corpus discovery, the deterministic split, and truncated-BPTT batching."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from purelm._data._corpus import (
    DataError,
    DataSpec,
    batchify,
    default_corpus_root,
    discover_files,
    eval_windows,
    is_validation,
    load_corpus,
    num_windows,
    read_bytes,
    training_streams,
    window,
)


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_directories_recurse_with_include_glob_and_skip_hidden_and_caches(tmp_path):
    root = _tree(
        tmp_path / "corpus",
        {
            "a.py": "a",
            "b.txt": "b",
            "sub/c.py": "c",
            "sub/deeper/d.py": "d",
            ".hidden/e.py": "e",
            "__pycache__/f.py": "f",
            ".g.py": "g",
        },
    )
    spec = DataSpec(paths=(str(root),), include="*.py")
    assert [name for name, _ in discover_files(spec)] == ["a.py", "sub/c.py", "sub/deeper/d.py"]
    everything = DataSpec(paths=(str(root),))
    assert [name for name, _ in discover_files(everything)] == ["a.py", "b.txt", "sub/c.py", "sub/deeper/d.py"]
    by_path = DataSpec(paths=(str(root),), include="sub/*")
    assert [name for name, _ in discover_files(by_path)] == ["sub/c.py", "sub/deeper/d.py"]


def test_explicit_files_are_always_included_once(tmp_path):
    root = _tree(tmp_path, {"notes.txt": "hello", "d/x.py": "x"})
    spec = DataSpec(paths=(str(root / "notes.txt"), str(root / "d"), str(root / "d" / "x.py")), include="*.py")
    assert [name for name, _ in discover_files(spec)] == ["notes.txt", "x.py"]


@pytest.mark.parametrize(
    ("files", "paths", "include", "message"),
    [
        ({}, ["missing"], None, "no such file or directory: "),
        ({"a.txt": "a"}, ["."], "*.py", "no files matching '*.py' under "),
        ({"a.txt": "", "b.txt": ""}, ["."], None, "corpus is empty: 2 file(s), 0 bytes"),
    ],
)
def test_bad_data_is_a_data_error(tmp_path, files, paths, include, message):
    _tree(tmp_path, files)
    spec = DataSpec(paths=tuple(str(tmp_path / p) for p in paths), include=include)
    with pytest.raises(DataError, match=None) as err:
        load_corpus(spec)
    assert message in str(err.value)


def test_default_corpus_is_the_stdlib_without_tests():
    files = discover_files(DataSpec())
    names = [name for name, _ in files]
    assert len(files) > 100
    assert "os.py" in names and "json/__init__.py" in names
    assert all(name.endswith(".py") for name in names)
    assert not any({"test", "tests", "idle_test", "site-packages"} & set(name.split("/")[:-1]) for name in names)
    assert all(path.is_relative_to(default_corpus_root()) for _, path in files)


def test_split_is_by_name_hash_roughly_five_percent_and_stable():
    names = [f"pkg/module_{i}.py" for i in range(4000)]
    chosen = [is_validation(n) for n in names]
    assert 0.035 < sum(chosen) / len(names) < 0.065
    assert chosen == [is_validation(n) for n in names]
    # The name is relative to the corpus root, so the split does not depend on where the corpus lives.
    assert is_validation("json/decoder.py") == is_validation("json/decoder.py", 0.05)


def test_split_keeps_files_whole(tmp_path):
    files = {f"f{i:03d}.txt": f"<{i:03d}>" * 10 for i in range(200)}
    corpus = load_corpus(DataSpec(paths=(str(_tree(tmp_path, files)),)))
    val_files = [name for name in sorted(files) if is_validation(name)]
    assert val_files and corpus.num_val_files == len(val_files)
    assert corpus.val.tobytes() == "".join(files[n] for n in val_files).encode()
    assert len(corpus.train) + len(corpus.val) == sum(len(t) for t in files.values())
    assert corpus.fingerprint() == load_corpus(DataSpec(paths=(str(tmp_path),))).fingerprint()


def test_one_file_falls_back_to_splitting_its_tail(tmp_path):
    text = bytes(range(256)) * 8
    (tmp_path / "one.bin").write_bytes(text)
    corpus = load_corpus(DataSpec(paths=(str(tmp_path / "one.bin"),)))
    cut = len(text) - round(len(text) * 0.05)
    assert corpus.train.tobytes() == text[:cut] and corpus.val.tobytes() == text[cut:]
    data, description = read_bytes(DataSpec(paths=(str(tmp_path / "one.bin"),)))
    assert data.tobytes() == text and "1 files, 2,048 bytes" in description


@settings(max_examples=50, deadline=None)
@given(length=st.integers(1, 400), batch=st.integers(1, 8), seq=st.integers(1, 16))
def test_windows_continue_each_contiguous_stream(length, batch, seq):
    tokens = np.arange(length, dtype=np.int64) % 251
    streams = batchify(tokens, batch)
    n = length // batch
    assert streams.shape == (batch, n) and streams.dtype == np.int32
    for b in range(batch):
        np.testing.assert_array_equal(streams[b], tokens[b * n : (b + 1) * n])
    count = num_windows(streams, seq)
    if count:
        joined = np.concatenate([window(streams, i, seq) for i in range(count)], axis=1)
        np.testing.assert_array_equal(joined, streams[:, : count * seq])


def test_a_corpus_shorter_than_one_batch_of_windows_is_refused():
    with pytest.raises(DataError, match=r"2,047 bytes, shorter than one batch of windows .*2,048 bytes"):
        training_streams(np.zeros(2047, np.uint8), 32, 64)
    assert training_streams(np.zeros(2048, np.uint8), 32, 64).shape == (32, 64)


def test_eval_windows_use_fewer_streams_for_short_text():
    tokens = np.arange(1000) % 256
    windows = eval_windows(tokens, batch_size=32, seq_len=64)
    assert windows.shape == (1, 15, 64)  # 1000 // 64 = 15 streams of one window
    np.testing.assert_array_equal(windows[0, 1], tokens[66:130])
    assert eval_windows(tokens, 32, 64, multiple_of=4).shape == (1, 12, 64)
    long = eval_windows(np.arange(5000) % 256, 4, 64)
    assert long.shape == (19, 4, 64)
    np.testing.assert_array_equal(long[1, 0], np.arange(64, 128))
    with pytest.raises(DataError, match="shorter than one window"):
        eval_windows(tokens[:63], 32, 64)
    with pytest.raises(DataError, match="shorter than 4 windows"):
        eval_windows(tokens[:200], 32, 64, multiple_of=4)
