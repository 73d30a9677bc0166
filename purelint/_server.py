"""`purelint server`: a Language Server (LSP) over stdio, built on pygls.

What it does for an open Python file or notebook (see docs/purelint.md, "Editor integration"):

- publishes findings on open and save at once, and while typing once the text has been still for
  `debounce` seconds (0.2 by default), each with a link to its rule's docs;
- reads the configuration the way the command line does (`load_config` from the file's directory:
  the nearest pyproject.toml with a [tool.purelint] table), on every lint, so an edited pyproject.toml
  counts from the next keystroke; files the configuration excludes get no findings;
- offers each finding's fix (safe ones preferred, unsafe ones labelled), `# noqa: CODE`, and
  "fix all safe findings" (`source.fixAll.purelint`), all computed by the `--fix` machinery;
- shows the rule's page (`purelint rule CODE`) when hovering a finding.

Linting runs in a worker thread, so the server keeps reading messages while it lints; a result
for a text that changed meanwhile is dropped. A rule that crashes is logged and left out, the other
rules still report. Every lint is logged (window/logMessage, type Log) with its time.

Initialization options: `{"debounce": 0.2, "rulesUrl": "https://.../purelint-rules.md"}`.

pygls is imported here only, and only `purelint server` imports this module.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from purelint._config import Config, ConfigError, load_config

try:  # pygls first: it needs lsprotocol, and without pygls nothing else is worth importing
    from lsprotocol import types
    from pygls.lsp.server import LanguageServer
    from pygls.uris import to_fs_path
except ImportError as error:  # reported by `main`, as one line
    MISSING: str | None = (error.name or "pygls").split(".")[0]
else:
    MISSING = None

from purelint._lsp_text import FIX_ALL
from purelint._report import RULES_URL

if TYPE_CHECKING:
    from types import ModuleType

    from purelint._lsp_documents import Finding, Target


def _documents() -> ModuleType:
    """The LSP documents machinery, which loads libcst and the rules: imported on first use (the
    server starts it on its lint thread right after `initialize`), so `initialize` answers at once."""
    import purelint._lsp_documents

    return purelint._lsp_documents


__all__ = ["main"]

USAGE = "usage: purelint server [--stdio]   (a Language Server speaking LSP over stdin/stdout)"
DEBOUNCE = 0.2  # seconds of quiet after a change before linting; a typist's pause between words
PYTHON_SUFFIXES = (".py", ".pyi")


def _language_server() -> LanguageServer:
    """The pygls server: incremental text sync, and the Python cells of every notebook type."""
    return LanguageServer(
        "purelint",
        _version(),
        text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
        notebook_document_sync=types.NotebookDocumentSyncOptions(
            # "*": every notebook type (the spec's wildcard); its Python cells are synced.
            notebook_selector=[
                types.NotebookDocumentFilterWithNotebook(
                    notebook="*", cells=[types.NotebookCellLanguage(language="python")]
                )
            ],
            save=True,
        ),
    )


class Session:
    """The server's state: open documents' pending lints and their latest findings."""

    def __init__(self) -> None:
        self.ls = _language_server()
        self.debounce = DEBOUNCE
        self.rules_url = RULES_URL
        self.lints = 0  # lints run so far (the log numbers them)
        # One worker thread: lints run one at a time, off the thread that reads the editor's messages.
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="purelint-lint")
        self.pending: dict[str, asyncio.Task] = {}  # key (document or notebook uri) -> its next lint
        self.results: dict[str, tuple[str, list[Finding]]] = {}  # key -> (text linted, findings)
        self.published: dict[str, list[str]] = {}  # key -> documents that were sent diagnostics
        self._register()

    # --- wiring ---------------------------------------------------------------------------------

    def _register(self) -> None:
        ls = self.ls
        ls.feature(types.INITIALIZE)(_handler(self.initialize))
        ls.feature(types.TEXT_DOCUMENT_DID_OPEN)(lambda p: self.schedule(p.text_document.uri, 0))
        ls.feature(types.TEXT_DOCUMENT_DID_CHANGE)(lambda p: self.schedule(p.text_document.uri, self.debounce))
        ls.feature(types.TEXT_DOCUMENT_DID_SAVE)(lambda p: self.schedule(p.text_document.uri, 0))
        ls.feature(types.TEXT_DOCUMENT_DID_CLOSE)(lambda p: self.close(p.text_document.uri))
        ls.feature(types.NOTEBOOK_DOCUMENT_DID_OPEN)(lambda p: self.schedule(p.notebook_document.uri, 0))
        ls.feature(types.NOTEBOOK_DOCUMENT_DID_CHANGE)(lambda p: self.schedule(p.notebook_document.uri, self.debounce))
        ls.feature(types.NOTEBOOK_DOCUMENT_DID_SAVE)(lambda p: self.schedule(p.notebook_document.uri, 0))
        ls.feature(types.NOTEBOOK_DOCUMENT_DID_CLOSE)(lambda p: self.close(p.notebook_document.uri))
        ls.feature(
            types.TEXT_DOCUMENT_CODE_ACTION,
            types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix, FIX_ALL]),
        )(_handler(self.code_action))
        ls.feature(types.TEXT_DOCUMENT_HOVER)(_handler(self.hover))
        ls.feature(types.INITIALIZED)(lambda p: self.watch_configuration())
        ls.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)(_handler(self.watched_files_changed))

    def initialize(self, params: types.InitializeParams) -> None:
        options = params.initialization_options if isinstance(params.initialization_options, dict) else {}
        debounce = options.get("debounce", self.debounce)
        if isinstance(debounce, (int, float)) and not isinstance(debounce, bool) and 0 <= debounce <= 10:
            self.debounce = float(debounce)
        else:
            self.log(f"purelint: ignoring debounce={debounce!r}: seconds between 0 and 10", types.MessageType.Warning)
        if isinstance(options.get("rulesUrl"), str):
            self.rules_url = options["rulesUrl"]
        self.worker.submit(_documents)  # load the linter while the editor sends its first document

    def watch_configuration(self) -> None:
        """Ask the client to report changes to pyproject.toml files, where it can."""
        watched = (
            self.ls.client_capabilities.workspace and self.ls.client_capabilities.workspace.did_change_watched_files
        )
        if not (watched and watched.dynamic_registration):
            return  # the configuration is still read on every lint, so the next edit sees it
        self.ls.client_register_capability(
            types.RegistrationParams(
                registrations=[
                    types.Registration(
                        id="purelint-pyproject",
                        method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                        register_options=types.DidChangeWatchedFilesRegistrationOptions(
                            watchers=[types.FileSystemWatcher(glob_pattern="**/pyproject.toml")]
                        ),
                    )
                ]
            )
        )

    def watched_files_changed(self, params: types.DidChangeWatchedFilesParams) -> None:
        """A pyproject.toml changed: lint every open document again with the new configuration."""
        if any(change.uri.endswith("pyproject.toml") for change in params.changes):
            for key in list(self.published):
                self.schedule(key, 0)

    def log(self, message: str, kind: types.MessageType | None = None) -> None:
        self.ls.window_log_message(types.LogMessageParams(type=kind or types.MessageType.Log, message=message))

    @property
    def encoding(self) -> str:
        encoding = self.ls.workspace.position_encoding
        return str(getattr(encoding, "value", encoding) or "utf-16")

    # --- documents ------------------------------------------------------------------------------

    def target(self, key: str) -> Target | None:
        """A snapshot of what `key` (a document or notebook uri) holds now; None if not Python."""
        workspace = self.ls.workspace
        notebook = workspace.get_notebook_document(notebook_uri=key)
        if notebook is not None:
            cells = []
            for cell in notebook.cells:
                document = workspace.get_text_document(cell.document)
                code = cell.kind == types.NotebookCellKind.Code and document.language_id in (None, "python")
                cells.append(_documents().Cell(cell.document, document.source, code))
            return _documents().NotebookTarget(key, _path(key, workspace.root_path, ".ipynb"), cells)
        document = workspace.text_documents.get(unquote(key))  # open documents only, never the disk
        path = _path(key, workspace.root_path, ".py")
        if document is None or (document.language_id != "python" and not path.endswith(PYTHON_SUFFIXES)):
            return None
        return _documents().PythonTarget(key, path, document.source)

    def key(self, uri: str) -> str:
        """The uri a document is linted under: its notebook's for a notebook cell, else its own."""
        notebook = self.ls.workspace.get_notebook_document(cell_uri=uri)
        return notebook.uri if notebook is not None else uri

    def versions(self, target: Target) -> dict[str, int | None]:
        return {uri: self.ls.workspace.get_text_document(uri).version for uri in target.documents()}

    # --- linting --------------------------------------------------------------------------------

    def schedule(self, key: str, delay: float) -> None:
        """Lint `key` after `delay` seconds, replacing a lint scheduled before (the debounce)."""
        previous = self.pending.pop(key, None)
        if previous is not None:
            previous.cancel()
        self.pending[key] = asyncio.get_running_loop().create_task(self._lint_later(key, delay))

    async def _lint_later(self, key: str, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        target = self.target(key)
        if target is None:
            return
        versions = self.versions(target)
        findings, extra = await self._run_lint(target)
        if self.versions(target) != versions or self.pending.get(key) is not asyncio.current_task():
            return  # the text changed while linting: the lint scheduled for the change publishes
        del self.pending[key]
        self.publish(key, target, findings, extra, versions)

    async def _run_lint(self, target: Target) -> tuple[list[Finding], list[types.Diagnostic]]:
        """Lint in a worker thread, then send its log lines (the connection belongs to this loop)."""
        self.lints += 1
        findings, extra, logs = await asyncio.get_running_loop().run_in_executor(
            self.worker, self._lint, target, self.lints
        )
        for message, kind in logs:
            self.log(message, kind)
        return findings, extra

    def _lint(
        self, target: Target, number: int
    ) -> tuple[list[Finding], list[types.Diagnostic], list[tuple[str, types.MessageType]]]:
        """Runs in a worker thread: touches only the snapshot, never the connection."""
        logs: list[tuple[str, types.MessageType]] = []
        started = time.perf_counter()
        try:
            config = self.config(target)
        except ConfigError as error:
            message = f"purelint: configuration error: {error}"
            logs.append((message, types.MessageType.Error))
            start = types.Position(line=0, character=0)
            return (
                [],
                [types.Diagnostic(range=types.Range(start=start, end=start), message=message, source="purelint")],
                logs,
            )
        if config.is_excluded(target.path):
            logs.append((f"purelint: {target.path} is excluded by {config.source}", types.MessageType.Log))
            return [], [], logs
        try:
            diagnostics = _documents().lint_safely(target, config, lambda m: logs.append((m, types.MessageType.Error)))
            encoding = self.encoding
            findings = [target.place(d, encoding) for d in diagnostics]
        except Exception as error:  # a purelint bug outside the rules: say so, keep serving
            logs.append(
                (f"purelint: internal error on {target.path}: {type(error).__name__}: {error}", types.MessageType.Error)
            )
            return [], [], logs
        elapsed = (time.perf_counter() - started) * 1000
        logs.append(
            (
                f"purelint: lint {number}: {target.path}: {len(findings)} findings in {elapsed:.1f} ms",
                types.MessageType.Log,
            )
        )
        return findings, [], logs

    def config(self, target: Target) -> Config:
        """The command line's configuration for this file: the nearest pyproject.toml above it."""
        return load_config(start=Path(target.path).absolute().parent)

    def publish(
        self, key: str, target: Target, findings: list[Finding], extra: list[types.Diagnostic], versions: dict
    ) -> None:
        self.results[key] = (target.text, findings)
        documents = target.documents()
        for uri in self.published.get(key, []):
            if uri not in documents:  # a cell that left the notebook
                self._send(uri, [], None)
        for uri in documents:
            shown = [f.lsp(self.rules_url) for f in findings if f.uri == uri]
            self._send(uri, (extra if uri == documents[0] else []) + shown, versions.get(uri))
        self.published[key] = documents

    def _send(self, uri: str, diagnostics: list[types.Diagnostic], version: int | None) -> None:
        self.ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version)
        )

    def close(self, key: str) -> None:
        task = self.pending.pop(key, None)
        if task is not None:
            task.cancel()
        self.results.pop(key, None)
        for uri in self.published.pop(key, [key]):
            self._send(uri, [], None)

    async def findings(self, target: Target) -> list[Finding]:
        """The findings for the target's current text: the published ones, or a fresh lint."""
        text, findings = self.results.get(target.uri, (None, []))
        if text != target.text:
            findings, _extra = await self._run_lint(target)
        return findings

    # --- requests -------------------------------------------------------------------------------

    async def code_action(self, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        target = self.target(self.key(params.text_document.uri))
        if target is None:
            return None
        findings = await self.findings(target)
        try:
            request = _documents().Request(
                params.text_document.uri,
                params.range,
                params.context.only,
                self.config(target),
                self.encoding,
                self.rules_url,
            )
            return await asyncio.get_running_loop().run_in_executor(
                self.worker, _documents().code_actions, target, findings, request
            )
        except Exception as error:  # a crash while fixing: log it, the editor just gets no actions
            self.log(
                f"purelint: internal error while computing code actions: {type(error).__name__}: {error}",
                types.MessageType.Error,
            )
            return None

    async def hover(self, params: types.HoverParams) -> types.Hover | None:
        target = self.target(self.key(params.text_document.uri))
        if target is None:
            return None
        return _documents().hover(await self.findings(target), params.text_document.uri, params.position)


def _handler(method: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A plain function calling a bound method: pygls marks its handlers with attributes, which
    methods cannot carry, and tells async handlers by `iscoroutinefunction`."""
    if asyncio.iscoroutinefunction(method):

        async def handle_async(params: Any) -> Any:
            return await method(params)

        return handle_async

    def handle(params: Any) -> Any:
        return method(params)

    return handle


def _path(uri: str, root: str | None, suffix: str) -> str:
    """The file a document is (config and per-file-ignores follow it); an unsaved document counts
    as a file in the workspace root."""
    path = to_fs_path(uri) if uri.startswith("file:") else None
    return path or str(Path(root or Path.cwd()) / f"untitled{suffix}")


def _version() -> str:
    from purelint import __version__

    return __version__


def main(argv: Sequence[str]) -> int:
    """`purelint server [--stdio]`: serve LSP on stdin/stdout until the client says exit."""
    if any(arg in ("-h", "--help") for arg in argv):
        print(USAGE)
        return 0
    unknown = [arg for arg in argv if arg != "--stdio"]  # editors often pass --stdio; it is the only transport
    if unknown:
        print(f"purelint: error: unknown argument {unknown[0]!r}; {USAGE}", file=sys.stderr)
        return 2
    if MISSING is not None:
        print(
            f"purelint: error: `purelint server` needs the {MISSING} package: pip install 'pygls>=2.1'", file=sys.stderr
        )
        return 2
    Session().ls.start_io()
    return 0
