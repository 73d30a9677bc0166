"""The result cache and the parallel runner: keys, misses, warm runs, order, concurrent writers."""

import json
import os

import pytest

import purelint
from purelint._cache import CACHE_DIR, Cache, fingerprint
from purelint._parallel import default_jobs, run_files

CALLS: list[str] = []


def summarise(path, data):
    """A stand-in for linting: what a worker saw, so tests can tell where results came from."""
    CALLS.append(path)
    if data is None:
        return [{"path": path, "error": "unreadable"}]
    return [{"path": path, "lines": data.count(b"\n"), "pid": os.getpid()}]


@pytest.fixture
def tree(tmp_path):
    paths = []
    for i in range(12):
        path = tmp_path / f"m{i:02d}.py"
        path.write_text("x = 1\n" * (i + 1) + "y = 2\n" * (40 if i == 3 else 0))
        paths.append(str(path))
    CALLS.clear()
    return tmp_path, paths


def test_get_put_and_misses(tmp_path):
    cache = Cache(str(tmp_path), fingerprint({"select": ["PUR001"]}))
    key = cache.key("a.py", b"x = 1\n")
    assert cache.get(key) is None
    cache.put(key, [{"code": "PUR001", "line": 1}])
    assert cache.get(key) == [{"code": "PUR001", "line": 1}]
    assert key != cache.key("b.py", b"x = 1\n") != cache.key("a.py", b"x = 2\n")
    top = tmp_path / CACHE_DIR
    assert (top / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (top / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")


def test_torn_or_foreign_entries_are_misses(tmp_path):
    cache = Cache(str(tmp_path), "f")
    key = cache.key("a.py", b"")
    cache.put(key, [1])
    entry = os.path.join(cache.directory, key + ".json")
    with open(entry, "w") as handle:
        handle.write('{"key": "')
    assert cache.get(key) is None
    with open(entry, "w") as handle:
        json.dump({"key": "other", "results": []}, handle)
    assert cache.get(key) is None


def test_fingerprint_follows_config_and_version(monkeypatch):
    base = fingerprint({"select": ["PUR001"], "scope": "traced"})
    assert base == fingerprint({"scope": "traced", "select": ["PUR001"]})
    assert base != fingerprint({"select": ["PUR001"], "scope": "all"})
    monkeypatch.setattr(purelint, "__version__", "99.0")
    assert base != fingerprint({"select": ["PUR001"], "scope": "traced"})


def test_unwritable_cache_costs_speed_not_results(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = Cache(str(blocker), "f")  # the cache directory would have to live under a file
    cache.put(cache.key("a.py", b""), [1])
    assert cache.get(cache.key("a.py", b"")) is None


def test_warm_run_calls_the_task_for_nothing(tree):
    root, paths = tree
    cache = Cache(str(root), "fp")
    cold = run_files(paths, summarise, jobs=1, cache=cache)
    assert paths == CALLS
    CALLS.clear()
    assert run_files(paths, summarise, jobs=1, cache=cache) == cold
    assert CALLS == []
    with open(paths[5], "a") as handle:
        handle.write("z = 3\n")
    warm = run_files(paths, summarise, jobs=1, cache=cache)
    assert [paths[5]] == CALLS
    assert warm[5][0]["lines"] == cold[5][0]["lines"] + 1


def test_unreadable_files_reach_the_task_and_are_not_cached(tree):
    root, _paths = tree
    cache = Cache(str(root), "fp")
    missing = str(root / "gone.py")
    assert run_files([missing], summarise, jobs=1, cache=cache) == [[{"path": missing, "error": "unreadable"}]]
    assert run_files([missing], summarise, jobs=1, cache=cache) and [missing, missing] == CALLS


def test_parallel_results_keep_input_order_and_fill_the_cache(tree):
    root, paths = tree
    cache = Cache(str(root), "fp")
    serial = run_files(paths, summarise, jobs=1)
    parallel = run_files(paths, summarise, jobs=2, cache=cache)
    assert _without_pid(parallel) == _without_pid(serial)
    assert {run[0]["pid"] for run in parallel} != {os.getpid()}  # the work ran in worker processes
    CALLS.clear()
    assert run_files(paths, summarise, jobs=2, cache=cache) == parallel
    assert CALLS == []
    assert len(os.listdir(cache.directory)) == len(paths)


def _without_pid(runs):
    return [[{k: v for k, v in result.items() if k != "pid"} for result in run] for run in runs]


def test_default_jobs_is_positive():
    assert default_jobs() >= 1
