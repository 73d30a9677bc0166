"""The pytest plugin: `pytest --purelint-probe` runs the tests under the probe.

pytest loads this module (through the `pytest11` entry point) in every run, so it imports neither
JAX, NumPy nor the linter: the probe, and JAX, start only when the option is given. It starts before
the first conftest is imported, so transformations applied at import time are watched. Each finding
names the test that first showed it. Findings fail the run (exit status 1) unless the tests
already failed. With pytest-xdist each worker runs its own probe and the controller merges the
findings.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from purelint import Diagnostic

_KEY = "purelint_probe"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("purelint", "purelint probe")
    group.addoption(
        "--purelint-probe",
        action="store_true",
        help="report impurities that happen in traced JAX code (purelint probe)",
    )
    group.addoption(
        "--purelint-probe-format",
        choices=("text", "json", "sarif", "github"),
        default="text",
        help="the probe's report format (default: text)",
    )
    group.addoption("--purelint-probe-output", metavar="FILE", help="write the probe's report to FILE")


class _Run:
    """The probe over one pytest run (of one xdist worker, under xdist)."""

    def __init__(self, config: pytest.Config) -> None:
        from purelint._probe._control import start
        from purelint._probe._state import STATE

        self.config = config
        self.owned = not STATE.active  # under `purelint probe -m pytest` that probe runs the show
        self.recorder = start() if self.owned else STATE.recorder
        self.findings: list[Diagnostic] | None = None
        self.merged: list[Diagnostic] = []

    def finish(self) -> list[Diagnostic]:
        if self.findings is None:
            from purelint._probe import _report
            from purelint._probe._control import stop

            if self.owned:
                stop()
            self.findings = [r.diagnostic for r in _report.diagnostics(self.recorder)]
        return _dedupe([*self.findings, *self.merged])


def _dedupe(found: list[Diagnostic]) -> list[Diagnostic]:
    unique = {(d.code, d.path, d.line, d.column): d for d in reversed(found)}
    return sorted(unique.values(), key=lambda d: d.sort_key())


_stash = pytest.StashKey[_Run]()


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    if getattr(early_config.known_args_namespace, "purelint_probe", False):
        early_config.stash[_stash] = _Run(early_config)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: Any) -> Any:
    probe = item.config.stash.get(_stash, None)
    if probe is None:
        return (yield)
    probe.recorder.context = item.nodeid
    try:
        return (yield)
    finally:
        probe.recorder.context = None


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    probe = node.config.stash.get(_stash, None)
    output = getattr(node, "workeroutput", {}).get(_KEY)
    if probe is not None and output:
        from purelint import Diagnostic

        probe.merged.extend(Diagnostic.from_dict(d) for d in json.loads(output))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    probe = config.stash.get(_stash, None)
    if probe is None:
        return
    findings = probe.finish()
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller reports
        workeroutput[_KEY] = json.dumps([d.to_dict() for d in findings])
        return
    if findings and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    probe = config.stash.get(_stash, None)
    if probe is None or getattr(config, "workeroutput", None) is not None:
        return
    from purelint._probe import _report
    from purelint._probe._control import write_atomic

    findings = probe.finish()
    fmt = config.getoption("purelint_probe_format")
    text = _report.render(findings, fmt)
    path = config.getoption("purelint_probe_output")
    terminalreporter.section("purelint probe")
    if path:
        write_atomic(path, text)
        terminalreporter.write_line(
            f"purelint probe: {len(findings)} finding{'s' * (len(findings) != 1)}, written to {path}"
        )
    else:
        terminalreporter.write(text)
