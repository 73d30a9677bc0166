"""Starting and stopping the probe, and `purelint.probe()`, its library face."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable
from typing import IO, Any

from purelint import Diagnostic
from purelint._probe import _report
from purelint._probe._frames import USER, classify_path
from purelint._probe._state import STATE, Patches, Recorder, clock

__all__ = ["ProbeError", "probe", "start", "stop", "user_files", "write_atomic", "write_report"]


class ProbeError(RuntimeError):
    """The probe cannot run (JAX missing, or one is already running)."""


_patches: Patches | None = None


def start() -> Recorder:
    """Install the hooks and begin a run; returns the run's recorder."""
    global _patches
    if STATE.active:
        raise ProbeError("a probe is already running")
    try:
        import jax  # noqa: F401 - the probe watches JAX: without it there is nothing to do
    except ImportError as error:
        raise ProbeError(f"the probe needs JAX ({error}); install it with `pip install 'purelint[probe]'`") from None
    from purelint._probe import _effects, _keys, _transforms

    STATE.recorder = recorder = Recorder()
    patches = Patches()
    try:
        _effects.install(patches)
        _keys.install(patches)
        _transforms.install(patches)
    except Exception:
        patches.restore()
        _transforms.uninstall()
        raise
    _patches = patches
    STATE.active = True
    return recorder


def stop() -> Recorder:
    """Remove the hooks (whatever the program did meanwhile) and end the run."""
    global _patches
    from purelint._probe import _transforms

    STATE.active = False
    if _patches is not None:
        _patches.restore()
        _patches = None
    _transforms.uninstall()
    return STATE.recorder


def user_files(recorder: Recorder, extra: Iterable[str] = ()) -> list[str]:
    """The program's own source files the run loaded, for `--compare`."""
    files = set(extra)
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if (
            isinstance(path, str)
            and path.endswith(".py")
            and classify_path(path, getattr(module, "__name__", "")) == USER
        ):
            files.add(path)
    files.update(r.site.path for r in recorder.findings.values())
    files.update(f.code.co_filename for f in recorder.functions if f.code is not None)
    return sorted(f for f in files if not f.startswith("<") and os.path.isfile(f))


class probe(contextlib.ContextDecorator):
    """Watch JAX's transformations while a block (or a decorated function) runs, and report the
    impurities that happened, with the linter's codes.

    >>> import purelint
    >>> with purelint.probe(output=None) as watched:   # doctest: +SKIP
    ...     train()
    >>> [d.code for d in watched.findings]             # doctest: +SKIP

    `output` is a stream or a file path for the report (default: stderr; None: no report),
    `output_format` one of the linter's formats, `compare` adds the static-vs-dynamic comparison.
    Inside a running probe (`purelint probe`, `pytest --purelint-probe`) it only watches.
    """

    def __init__(
        self, *, output: IO[str] | str | Any | None = "stderr", output_format: str = "text", compare: bool = False
    ) -> None:
        if output_format not in ("text", "json", "sarif", "github"):
            raise ValueError(f"unknown output format {output_format!r}")
        self.output = output
        self.output_format = output_format
        self.compare = compare
        self.findings: list[Diagnostic] = []
        self._nested: list[bool] = []
        self._started = 0.0

    def __enter__(self) -> probe:
        self._nested.append(STATE.active)
        if not STATE.active:
            start()
            self._started = clock()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._nested.pop():
            return
        recorder = stop()
        wall = clock() - self._started
        reported = _report.diagnostics(recorder)
        self.findings = [r.diagnostic for r in reported]
        if self.output is not None:
            write_report(reported, recorder, self.output, self.output_format, compare=self.compare, wall=wall)


def write_report(
    reported: list,
    recorder: Recorder,
    output: Any,
    fmt: str,
    *,
    compare: bool,
    wall: float,
    files: Iterable[str] = (),
    summary: bool = True,
) -> None:
    """The report to `output` ("stderr", a stream or a path, written atomically), the summary to stderr."""
    spent = recorder.spent
    if compare:
        comparison = _report.compare(reported, user_files(recorder, files), named=files)
        text = _report.render_comparison(comparison, "json" if fmt == "json" else "text")
    else:
        text = _report.render([r.diagnostic for r in reported], fmt, color=False)
    if fmt == "github" and not reported and not compare:
        text = ""
    sys.stdout.flush()
    if output == "stderr" or output is sys.stderr:
        sys.stderr.write(text)
    elif isinstance(output, (str, os.PathLike)):
        write_atomic(os.fspath(output), text)
    else:
        output.write(text)
    if summary:
        for line in _report.summary(recorder, reported, wall, spent):
            print(line, file=sys.stderr)
    sys.stderr.flush()


def write_atomic(path: str, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename, so a reader never sees half a
    report. A path that exists and is not a regular file (`/dev/stdout`, a pipe) is written directly."""
    if os.path.exists(path) and not os.path.isfile(path):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
