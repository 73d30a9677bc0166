"""Run a per-file task over many files: cached results first, the rest over a process pool.

The task is `task(path, data) -> list` (JSON-serialisable results; `data` is the file's bytes, or None
when it could not be read, so the task reports that itself). It must be picklable (a module-level
function, or a `functools.partial` of one) to run in worker processes. Results come back in input
order whatever the number of workers, so output is deterministic. A task that raises `TaskError`
for a file leaves a `Failure` in that file's slot and the run goes on.

Example:
    >>> def count_lines(path, data):
    ...     return [data.count(b"\\n")]
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp(), "a.py"); _ = p.write_text("x = 1\\ny = 2\\n")
    >>> run_files([str(p)], count_lines, jobs=1)
    [[2]]
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

from purelint._cache import Cache

Task = Callable[[str, "bytes | None"], list]


def default_jobs() -> int:
    """All the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


class TaskError(Exception):
    """Raised by a task for a file it could not handle; that file's result becomes a `Failure`."""


@dataclasses.dataclass(frozen=True)
class Failure:
    """The result slot of a file whose task raised `TaskError` (never cached)."""

    path: str
    message: str


def _work(task: Task, cache: Cache | None, path: str, data: bytes | None, key: str | None) -> list | Failure:
    try:
        results = task(path, data)
    except TaskError as error:
        return Failure(path, str(error))
    if cache is not None and key is not None:
        cache.put(key, results)
    return results


def _work_chunk(
    task: Task, cache: Cache | None, chunk: list[tuple[str, bytes | None, str | None]]
) -> list[list | Failure]:
    return [_work(task, cache, path, data, key) for path, data, key in chunk]


def run_files(
    paths: Sequence[str], task: Task, *, jobs: int | None = None, cache: Cache | None = None
) -> list[list | Failure]:
    """`task(path, data)` for every path, in order; cache hits skip the task entirely."""
    results: list[list | Failure | None] = [None] * len(paths)
    pending: list[tuple[int, str, bytes | None, str | None]] = []
    for index, path in enumerate(paths):
        data = _read(path)
        key = cache.key(path, data) if cache is not None and data is not None else None
        hit = cache.get(key) if cache is not None and key is not None else None
        if hit is not None:
            results[index] = hit
        else:
            pending.append((index, path, data, key))
    jobs = default_jobs() if jobs is None or jobs < 1 else jobs
    workers = min(jobs, len(pending))
    if workers <= 1:
        for index, path, data, key in pending:
            results[index] = _work(task, cache, path, data, key)
        return results  # type: ignore[return-value]
    # Several chunks per worker balance the load when file sizes differ a lot.
    chunks = _chunks(pending, workers * 4)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_work_chunk, task, cache, [item[1:] for item in chunk]) for chunk in chunks]
        for chunk, future in zip(chunks, futures):
            for (index, *_), result in zip(chunk, future.result()):
                results[index] = result
    return results  # type: ignore[return-value]


def _chunks(items: list, count: int) -> list[list]:
    """Split into about `count` chunks of similar total size, keeping input order inside each."""
    total = sum(len(item[2] or b"") + 1 for item in items)
    target = max(1, total // count)
    chunks, current, size = [], [], 0
    for item in items:
        current.append(item)
        size += len(item[2] or b"") + 1
        if size >= target:
            chunks.append(current)
            current, size = [], 0
    if current:
        chunks.append(current)
    return chunks
