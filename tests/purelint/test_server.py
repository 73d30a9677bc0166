"""`purelint server`: a real server subprocess driven over stdio by pygls's own LSP client.

The tests start `python -m purelint server` (one shared by most tests, each on its own documents)
and talk LSP to it the way an editor does; the client records the raw JSON-RPC bodies in both
directions (docs/purelint.md shows one such capture, which `test_docs_show_the_captured_exchange`
keeps true). A headless Neovim test runs the editor set-up the docs show, where `nvim` exists.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("pygls")
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from purelint import get_rule, lint_source
from purelint._lsp_text import Text

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data" / "lsp"
GUIDE = ROOT / "docs" / "purelint.md"
TIMEOUT = 15.0  # seconds to wait for one message; a loaded 2-core machine can be slow to start
# A finding after non-ASCII text: `é` is one UTF-16 unit, `😀` two, so the column in UTF-16
# units (what LSP counts by default) differs from the column in characters.
DEMO = (
    "import jax\n"
    "import jax.numpy as jnp\n"
    "\n"
    "\n"
    "@jax.jit\n"
    "def step(x, i):\n"
    "    x = jnp.asarray(x)\n"
    "    label = 'é😀'; x[i] = 0\n"
    "    print(label)\n"
    "    return x\n"
)
DEMO_URI = "file:///project/demo.py"


class Client(LanguageClient):
    """pygls's LSP client, plus what a test needs: the diagnostics and log lines received, waiting
    for the next ones, and the raw JSON-RPC bodies sent and received."""

    def __init__(self) -> None:
        super().__init__("purelint-tests", "1")
        self.diagnostics: dict[str, types.PublishDiagnosticsParams] = {}
        self.logs: list[str] = []
        self.wire: list[tuple[str, dict]] = []  # ("->" client to server | "<-", body)
        self.registrations: list[types.Registration] = []
        self.changed = asyncio.Condition()

        @self.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        async def on_diagnostics(params: types.PublishDiagnosticsParams) -> None:
            self.diagnostics[params.uri] = params
            async with self.changed:
                self.changed.notify_all()

        @self.feature(types.WINDOW_LOG_MESSAGE)
        def on_log(params: types.LogMessageParams) -> None:
            self.logs.append(params.message)

        @self.feature(types.CLIENT_REGISTER_CAPABILITY)
        def on_register(params: types.RegistrationParams) -> None:
            self.registrations.extend(params.registrations)

    async def start(self, *args: str, env: dict | None = None) -> None:
        await self.start_io(sys.executable, *(args or ("-m", "purelint", "server")), env=env, cwd=str(ROOT))
        process = self._server
        reader, writer = process.stdout, process.stdin
        read_exactly, write = reader.readexactly, writer.write

        async def recording_read(n: int) -> bytes:
            body = await read_exactly(n)
            self.wire.append(("<-", json.loads(body)))
            return body

        def recording_write(data: bytes) -> None:
            self.wire.append(("->", json.loads(data.split(b"\r\n\r\n", 1)[1])))
            write(data)

        reader.readexactly, writer.write = recording_read, recording_write

    async def open(
        self, capabilities: types.ClientCapabilities | None = None, options: dict | None = None
    ) -> types.InitializeResult:
        await self.start()
        result = await asyncio.wait_for(
            self.initialize_async(
                types.InitializeParams(
                    capabilities=capabilities or types.ClientCapabilities(),
                    root_uri=None,
                    initialization_options=options,
                )
            ),
            TIMEOUT,
        )
        self.initialized(types.InitializedParams())
        return result

    async def wait_for(self, uri: str, version: int | None = None, *, until=None) -> types.PublishDiagnosticsParams:
        """The diagnostics of `uri` once they are for `version` (any version when None) and
        `until(diagnostics)` holds."""

        def ready() -> bool:
            found = self.diagnostics.get(uri)
            return (
                found is not None and (version is None or found.version == version) and (until is None or until(found))
            )

        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(ready), TIMEOUT)
        return self.diagnostics[uri]

    async def close(self) -> None:
        await asyncio.wait_for(self.shutdown_async(None), TIMEOUT)
        self.exit(None)
        await asyncio.wait_for(self._server.wait(), TIMEOUT)
        await self.stop()


def run(scenario) -> None:
    async def main() -> None:
        client = Client()
        try:
            await scenario(client)
        finally:
            if client._server is not None and client._server.returncode is None:
                client._server.kill()
                await client._server.wait()
            await client.stop()

    asyncio.run(main())


class Shared:
    """One server for the tests that can share it (each uses its own documents), so the module pays
    for one server start: the client runs on an event loop in a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def start() -> Client:
            client = Client()
            await client.open(NOTEBOOK_CAPABILITIES)
            return client

        self.client = self._wait(start())

    def _wait(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=4 * TIMEOUT)

    def call(self, scenario):
        """Run `scenario(client)` on the server's loop and return its result (or raise its error)."""
        return self._wait(scenario(self.client))

    def stop(self) -> None:
        try:
            self.call(Client.close)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(TIMEOUT)
            self.loop.close()


@pytest.fixture(scope="module")
def server():
    shared = Shared()
    yield shared
    shared.stop()


def open_params(uri: str, text: str, version: int = 1) -> types.DidOpenTextDocumentParams:
    return types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=version, text=text)
    )


def change_params(uri: str, version: int, text: str) -> types.DidChangeTextDocumentParams:
    return types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
    )


def apply_edits(text: str, edits: list[types.TextEdit]) -> str:
    """What an editor does with a code action's edits (UTF-16 positions), last edit first."""
    document = Text(text)

    def offset(position: types.Position) -> int:
        line, column = document.purelint_position((position.line, position.character), "utf-16")
        start = document.starts[line - 1] if line - 1 < len(document.starts) else len(text)
        return start + column - 1

    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        text = text[: offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end) :]
    return text


def code_action_params(uri: str, diagnostic: types.Diagnostic | None = None, only=None) -> types.CodeActionParams:
    whole = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=10_000, character=0))
    return types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=diagnostic.range if diagnostic else whole,
        context=types.CodeActionContext(diagnostics=[diagnostic] if diagnostic else [], only=only),
    )


def expected(text: str, path: str = "demo.py") -> list[tuple[str, int, int, int, int]]:
    """The findings the library reports for `text`, as LSP (code, line, character, ...) in UTF-16."""
    document = Text(text)
    out = []
    for d in lint_source(text, path):
        start = document.lsp_position(d.line, d.column, "utf-16")
        end = document.lsp_position(d.end_line, d.end_column, "utf-16")
        out.append((d.code, *start, *end))
    return out


def shown(params: types.PublishDiagnosticsParams) -> list[tuple[str, int, int, int, int]]:
    return [
        (d.code, d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character)
        for d in params.diagnostics
    ]


# --- the editing session ----------------------------------------------------------------------------


def test_open_fix_change_and_diagnostics_follow(server):
    URI = "file:///project/editing.py"

    async def scenario(client: Client) -> None:
        started = time.perf_counter()
        client.text_document_did_open(open_params(URI, DEMO))
        published = await client.wait_for(URI, 1)
        print(f"didOpen -> diagnostics: {(time.perf_counter() - started) * 1000:.0f} ms")
        assert (
            shown(published) == expected(DEMO) == [("PUR301", 7, 19, 7, 23), ("PUR001", 8, 4, 8, 16)]
        )  # x at character 18, UTF-16 unit 19
        item = published.diagnostics[0]
        assert item.source == "purelint" and item.severity == types.DiagnosticSeverity.Warning
        assert item.code_description.href.endswith("/docs/purelint-rules.md#array-item-assignment-pur301")

        # The safe fix, offered first and preferred, then the noqa; the unsafe print fix is labelled.
        actions = await client.text_document_code_action_async(code_action_params(URI, item))
        titles = [a.title for a in actions]
        assert titles == [
            "Fix PUR301: Use `x = x.at[i].set(...)`",
            "Suppress PUR301 with `# noqa: PUR301`",
            "Fix all safe purelint findings in this file",
        ]
        assert actions[0].is_preferred and actions[0].kind == types.CodeActionKind.QuickFix
        assert actions[2].kind == "source.fixAll.purelint"
        (edit,) = actions[0].edit.changes[URI]
        assert (edit.range.start.line, edit.range.start.character) == (7, 20)  # only `[i] = 0` changes
        fixed = apply_edits(DEMO, actions[0].edit.changes[URI])
        assert fixed == DEMO.replace("x[i] = 0", "x = x.at[i].set(0)")

        client.text_document_did_change(change_params(URI, 2, fixed))
        published = await client.wait_for(URI, 2)
        assert [d.code for d in published.diagnostics] == ["PUR001"]

        (print_fix, noqa) = await client.text_document_code_action_async(
            code_action_params(URI, published.diagnostics[0])
        )
        assert (
            print_fix.title == "Fix PUR001: Use `jax.debug.print` (unsafe fix: review it)"
            and not print_fix.is_preferred
        )
        silenced = apply_edits(fixed, noqa.edit.changes[URI])
        assert "    print(label)  # noqa: PUR001\n" in silenced
        client.text_document_did_save(
            types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=URI))
        )
        client.text_document_did_change(change_params(URI, 3, silenced))
        assert not (await client.wait_for(URI, 3)).diagnostics

    server.call(scenario)


def test_hover_shows_the_rule_page_and_fix_all_applies_every_safe_fix(server):
    URI = "file:///project/hover.py"
    source = DEMO + "\n\n@jax.jit\ndef g(y):\n    y = jnp.zeros(3)\n    y[0] = 1\n    return y.detach()\n"

    async def scenario(client: Client) -> None:
        client.text_document_did_open(open_params(URI, source))
        published = await client.wait_for(URI, 1)
        first = published.diagnostics[0]
        hover = await client.text_document_hover_async(
            types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=URI),
                position=first.range.start,
            )
        )
        assert hover.contents.kind == types.MarkupKind.Markdown
        assert hover.contents.value == get_rule("PUR301").documentation()  # what `purelint rule PUR301` prints
        nothing = await client.text_document_hover_async(
            types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=URI),
                position=types.Position(line=0, character=0),
            )
        )
        assert nothing is None

        # What an editor asks for on save with `"source.fixAll.purelint": "explicit"`.
        (fix_all,) = await client.text_document_code_action_async(code_action_params(URI, only=["source.fixAll"]))
        fixed = apply_edits(source, fix_all.edit.changes[URI])
        from purelint._config import Config
        from purelint._runner import fix_text

        assert fixed == fix_text(source, "/project/demo.py", Config(), unsafe=False).text
        assert "y = y.at[0].set(1)" in fixed and "jax.lax.stop_gradient(y)" in fixed and "print(label)" in fixed

    server.call(scenario)


def test_slow_typing_is_debounced_and_the_last_text_wins(server):
    """An editor sends one didChange per keystroke; the server lints once the typing pauses, and
    what it publishes matches the final text."""
    URI = "file:///project/typing.py"
    head = "import jax\nimport jax.numpy as jnp\n\n\n@jax.jit\ndef f(x):\n"
    typed = "    x = jnp.asarray(x); x[0] = 1; print('à😀', x)\n    return x.detach()\n"

    async def scenario(client: Client) -> None:
        client.text_document_did_open(open_params(URI, head))
        await client.wait_for(URI, 1)
        before = len([m for m in client.logs if m.startswith("purelint: lint ") and ": /project/typing.py:" in m])
        text, version = head, 1
        for char in typed:  # one incremental change per character, 10 ms apart (a fast typist)
            end = Text(text).lsp_offset(len(text), "utf-16")
            version += 1
            client.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
                    content_changes=[
                        types.TextDocumentContentChangePartial(
                            range=types.Range(
                                start=types.Position(line=end[0], character=end[1]),
                                end=types.Position(line=end[0], character=end[1]),
                            ),
                            text=char,
                        )
                    ],
                )
            )
            text += char
            await asyncio.sleep(0.01)
        last_change = time.perf_counter()
        published = await client.wait_for(URI, version)
        latency = time.perf_counter() - last_change
        lints = (
            len([m for m in client.logs if m.startswith("purelint: lint ") and ": /project/typing.py:" in m]) - before
        )
        print(f"{len(typed)} changes -> {lints} lint(s); last change -> diagnostics {latency * 1000:.0f} ms")
        assert text == head + typed
        assert shown(published) == expected(text)
        assert [d.code for d in published.diagnostics] == ["PUR301", "PUR001", "PUR305"]
        assert 1 <= lints <= len(typed) // 10  # far fewer lints than changes (1 when the machine keeps up)

    server.call(scenario)


# --- notebooks --------------------------------------------------------------------------------------

NOTEBOOK_URI = "file:///project/nb.ipynb"
NOTEBOOK_CAPABILITIES = types.ClientCapabilities(
    notebook_document=types.NotebookDocumentClientCapabilities(
        synchronization=types.NotebookDocumentSyncClientCapabilities()
    ),
    workspace=types.WorkspaceClientCapabilities(
        did_change_watched_files=types.DidChangeWatchedFilesClientCapabilities(dynamic_registration=True),
    ),
)


def cell_uri(n: int) -> str:
    return f"vscode-notebook-cell:/project/nb.ipynb#cell{n}"


def test_notebook_cells_get_their_findings_and_a_fix_may_edit_two_cells(server):
    cells = [
        (types.NotebookCellKind.Code, "import jax.numpy as jnp\nfrom jax import jit\n"),
        (types.NotebookCellKind.Markup, "# `x.detach()` is torch"),
        (types.NotebookCellKind.Code, "%matplotlib inline\n@jit\ndef f(x):\n    return jnp.sin(x).detach()"),
    ]

    async def scenario(client: Client) -> None:
        client.notebook_document_did_open(
            types.DidOpenNotebookDocumentParams(
                notebook_document=types.NotebookDocument(
                    uri=NOTEBOOK_URI,
                    notebook_type="jupyter-notebook",
                    version=1,
                    cells=[types.NotebookCell(kind=kind, document=cell_uri(n)) for n, (kind, _) in enumerate(cells, 1)],
                ),
                cell_text_documents=[
                    types.TextDocumentItem(
                        uri=cell_uri(n),
                        language_id="python" if kind == types.NotebookCellKind.Code else "markdown",
                        version=1,
                        text=text,
                    )
                    for n, (kind, text) in enumerate(cells, 1)
                ],
            )
        )
        third = await client.wait_for(cell_uri(3), 1)
        assert not (await client.wait_for(cell_uri(1), 1)).diagnostics
        assert cell_uri(2) not in client.diagnostics  # markdown is not linted
        assert shown(third) == [("PUR305", 3, 11, 3, 30)]

        (fix, _noqa, _fix_all) = await client.text_document_code_action_async(
            code_action_params(cell_uri(3), third.diagnostics[0])
        )
        assert fix.title == "Fix PUR305: Use `jax.lax.stop_gradient`"
        changes = fix.edit.changes
        assert sorted(changes) == [cell_uri(1), cell_uri(3)]  # the import lands in the first cell
        new = {n: apply_edits(text, changes.get(cell_uri(n), [])) for n, (_, text) in enumerate(cells, 1)}
        assert new[1] == "import jax.numpy as jnp\nfrom jax import jit\nimport jax\n"
        assert new[3].endswith("    return jax.lax.stop_gradient(jnp.sin(x))")

        client.notebook_document_did_change(
            types.DidChangeNotebookDocumentParams(
                notebook_document=types.VersionedNotebookDocumentIdentifier(uri=NOTEBOOK_URI, version=2),
                change=types.NotebookDocumentChangeEvent(
                    cells=types.NotebookDocumentCellChanges(
                        text_content=[
                            types.NotebookDocumentCellContentChanges(
                                document=types.VersionedTextDocumentIdentifier(uri=cell_uri(n), version=2),
                                changes=[types.TextDocumentContentChangeWholeDocument(text=new[n])],
                            )
                            for n in (1, 3)
                        ]
                    )
                ),
            )
        )
        assert not (await client.wait_for(cell_uri(3), 2)).diagnostics
        client.notebook_document_did_close(
            types.DidCloseNotebookDocumentParams(
                notebook_document=types.NotebookDocumentIdentifier(uri=NOTEBOOK_URI),
                cell_text_documents=[types.TextDocumentIdentifier(uri=cell_uri(n)) for n in (1, 2, 3)],
            )
        )

    server.call(scenario)


# --- never blocking: bad code, a crashing rule, the configuration -----------------------------------


def test_a_crashing_rule_is_logged_and_the_others_still_report():
    async def scenario(client: Client) -> None:
        await client.start(str(DATA / "crashing_server.py"))  # PUR001 raises on every print()
        result = await asyncio.wait_for(
            client.initialize_async(
                types.InitializeParams(
                    # A client that counts positions in UTF-8 bytes (as Neovim does internally).
                    capabilities=types.ClientCapabilities(
                        general=types.GeneralClientCapabilities(position_encodings=["utf-8"])
                    ),
                    initialization_options={"rulesUrl": "file:///docs/rules.md"},
                )
            ),
            TIMEOUT,
        )
        assert result.capabilities.notebook_document_sync is None  # offered only to clients that sync notebooks
        assert result.capabilities.position_encoding == "utf-8"
        client.text_document_did_open(open_params(DEMO_URI, DEMO))
        published = await client.wait_for(DEMO_URI, 1)
        assert [d.code for d in published.diagnostics] == ["PUR301"]
        assert published.diagnostics[0].range.start.character == len("    label = 'é😀'; ".encode())  # 22 bytes
        assert published.diagnostics[0].code_description.href == "file:///docs/rules.md#array-item-assignment-pur301"
        (crash,) = [m for m in client.logs if "internal error" in m]
        assert crash.startswith(
            "purelint: internal error: rule PUR001 crashed at /project/demo.py:7: ValueError: broken on purpose"
        )
        assert crash.endswith("; linting on without that rule")
        actions = await client.text_document_code_action_async(code_action_params(DEMO_URI, published.diagnostics[0]))
        # The finding's own fix and noqa; "fix all" re-lints, which the broken rule breaks.
        assert [a.title for a in actions] == [
            "Fix PUR301: Use `x = x.at[i].set(...)`",
            "Suppress PUR301 with `# noqa: PUR301`",
        ]
        # Still serving: a syntax error gives its PUR999, hover and code actions answer.
        client.text_document_did_change(change_params(DEMO_URI, 2, DEMO + "def broken(:\n"))
        (error,) = (await client.wait_for(DEMO_URI, 2)).diagnostics
        assert error.code == "PUR999" and error.severity == types.DiagnosticSeverity.Error
        assert list(await client.text_document_code_action_async(code_action_params(DEMO_URI, error))) == []
        await client.close()

    run(scenario)


def test_configuration_comes_from_the_nearest_pyproject_like_the_command_line(server, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.purelint]\nignore = ["PUR001"]\nexclude = ["generated"]\n')
    (tmp_path / "pkg").mkdir()
    (tmp_path / "generated").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "pyproject.toml").write_text('[tool.purelint]\nselect = ["NOPE"]\n')
    uris = {name: (tmp_path / name / "m.py").as_uri() for name in ("pkg", "generated", "bad")}
    (tmp_path / "pkg" / "m.py").write_text(DEMO)

    async def scenario(client: Client) -> None:
        for uri in uris.values():
            client.text_document_did_open(open_params(uri, DEMO))
        assert [d.code for d in (await client.wait_for(uris["pkg"], 1)).diagnostics] == ["PUR301"]
        assert not (await client.wait_for(uris["generated"], 1)).diagnostics
        (bad,) = (await client.wait_for(uris["bad"], 1)).diagnostics
        assert bad.message == "purelint: configuration error: unknown rule code or prefix 'NOPE' in select"
        # Editing pyproject.toml: the client reports it (the server asked to watch those files),
        # and the open files are linted again with the new configuration.
        (watch,) = [r for r in client.registrations if r.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES]
        assert [w["globPattern"] for w in watch.register_options["watchers"]] == ["**/pyproject.toml"]
        (tmp_path / "pyproject.toml").write_text('[tool.purelint]\nignore = ["PUR301"]\n')  # and no exclude
        client.workspace_did_change_watched_files(
            types.DidChangeWatchedFilesParams(
                changes=[
                    types.FileEvent(uri=(tmp_path / "pyproject.toml").as_uri(), type=types.FileChangeType.Changed),
                ]
            )
        )
        for name in ("pkg", "generated"):
            await client.wait_for(
                uris[name], 1, until=lambda published: [d.code for d in published.diagnostics] == ["PUR001"]
            )

    # The command line reads this configuration for this file: PUR001 ignored.
    cli = subprocess.run(
        [sys.executable, "-m", "purelint", "--no-cache", str(tmp_path / "pkg" / "m.py")], capture_output=True, text=True
    )
    assert "PUR301" in cli.stdout and "PUR001" not in cli.stdout
    server.call(scenario)


# --- the command, without a client ------------------------------------------------------------------


def test_the_command_without_pygls_with_bad_arguments_and_linting_without_importing_pygls(tmp_path):
    """One process: `purelint FILE` leaves pygls unimported; then, with pygls made unimportable,
    `purelint server` names it in one line, and a bad argument is a usage error."""
    (tmp_path / "m.py").write_text(DEMO)
    code = f"""if True:
        import contextlib, io, json, sys
        from purelint._cli import main
        main(['--no-cache', {str(tmp_path / "m.py")!r}])
        imported = sorted(m for m in ('pygls', 'lsprotocol') if m in sys.modules)
        sys.modules['pygls'] = None
        results = []
        for argv in (['server'], ['server', '--tcp']):
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                results.append((main(argv), err.getvalue()))
        print(json.dumps([imported, results]))
    """
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    imported, [missing, bad] = json.loads(result.stdout.splitlines()[-1])
    assert imported == []
    assert missing == [2, "purelint: error: `purelint server` needs the pygls package: pip install 'pygls>=2.1'\n"]
    assert bad[0] == 2 and bad[1].startswith(
        "purelint: error: unknown argument '--tcp'; usage: purelint server [--stdio]"
    )


# --- positions and edits, in process ----------------------------------------------------------------

_PIECES = st.sampled_from(["a", "x = 1", "é", "😀", "\n", "\r\n", "\r", "  ", "# c"])


@settings(max_examples=150, deadline=None)
@given(
    old=st.lists(_PIECES, max_size=12).map("".join),
    new=st.lists(_PIECES, max_size=12).map("".join),
    encoding=st.sampled_from(["utf-8", "utf-16", "utf-32"]),
)
def test_edits_turn_the_old_text_into_the_new_one_in_every_position_encoding(old, new, encoding):
    document = Text(old)
    spans = []
    for start, end, content in document.edits(new, encoding):
        offsets = []
        for line, character in (start, end):
            line1, column = document.purelint_position((line, character), encoding)
            assert Text(old).lsp_position(line1, column, encoding) == (line, character)  # a real character boundary
            offsets.append((document.starts[line1 - 1] if line1 - 1 < len(document.starts) else len(old)) + column - 1)
        spans.append((*offsets, content))
    for begin, stop, content in sorted(spans, reverse=True):
        old = old[:begin] + content + old[stop:]
    assert old == new


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # An existing `# noqa: CODES` list is extended.
        (
            "import jax\nimport jax.numpy as jnp\n@jax.jit\ndef f(x):\n    x = jnp.zeros(3)\n    x[0] = 1; print(x)  # noqa: PUR001\n    return x\n",
            (6, "    x[0] = 1; print(x)  # noqa: PUR001, PUR301"),
        ),
        # Inside brackets a comment is fine on the first line.
        ("import jax\n@jax.jit\ndef f(x):\n    print(\n        x)\n    return x\n", (4, "    print(  # noqa: PUR001")),
        # The first line ends inside a string, or after a backslash: the last line gets it.
        (
            "import jax\n@jax.jit\ndef f(x):\n    print('''a\n    b''', x)\n    return x\n",
            (5, "    b''', x)  # noqa: PUR001"),
        ),
        (
            "import jax\n@jax.jit\ndef f(x):\n    print(x, \\\n        x)\n    return x\n",
            (5, "        x)  # noqa: PUR001"),
        ),
    ],
)
def test_noqa_goes_where_it_silences_the_finding(source, expected):
    from purelint._lsp_documents import noqa_line

    finding = lint_source(source, "m.py")[0]
    assert noqa_line(source, finding) == expected


def test_rule_links_point_at_the_rule_headings_of_the_rules_reference():
    from purelint import all_rules
    from purelint._lsp_documents import rule_url

    headings = re.findall(r"^## (.+)$", (ROOT / "docs" / "purelint-rules.md").read_text(encoding="utf-8"), re.MULTILINE)
    # GitHub's anchors: lower case, punctuation other than `-` dropped, spaces become `-`.
    anchors = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}
    for code in all_rules():
        assert rule_url(code).split("#")[1] in anchors


# --- a real editor ----------------------------------------------------------------------------------


def test_headless_neovim_shows_findings_and_applies_a_fix(tmp_path):
    """Neovim runs the set-up docs/purelint.md shows (data/lsp/purelint.lua) on a real file."""
    nvim = shutil.which("nvim")
    if nvim is None:
        pytest.skip("nvim is not on PATH (apt-get install neovim); the headless editor test needs it")
    if shutil.which("purelint", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("no `purelint` executable next to this Python (the Neovim set-up starts `purelint server`)")
    (tmp_path / "pyproject.toml").write_text("[tool.purelint]\n")
    (tmp_path / "demo.py").write_text(DEMO, encoding="utf-8")
    out = tmp_path / "nvim.json"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # `purelint` from this venv
        "PURELINT_NVIM_CONFIG": str(DATA / "purelint.lua"),
        "PURELINT_NVIM_OUT": str(out),
    }
    subprocess.run(
        [nvim, "--headless", "--noplugin", "-n", "-i", "NONE", "-u", str(DATA / "nvim_driver.lua"), "demo.py"],
        cwd=tmp_path,
        env=env,
        timeout=90,
        check=True,
        capture_output=True,
    )
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["attached"] and report["updated"]
    # Neovim counts columns in bytes: `x` follows 22 bytes (é is 2 bytes, 😀 4), so the UTF-16
    # position the server sent (character 19) was read right.
    assert [(d["code"], d["lnum"], d["col"], d["end_col"], d["source"]) for d in report["before"]] == [
        ("PUR301", 7, 22, 26, "purelint"),
        ("PUR001", 8, 4, 16, "purelint"),
    ]
    assert report["hover"] == get_rule("PUR301").documentation()
    assert report["applied"] == "Fix PUR301: Use `x = x.at[i].set(...)`"
    assert report["lines"][7] == "    label = 'é😀'; x = x.at[i].set(0)"
    assert [d["code"] for d in report["after"]] == ["PUR001"]


def test_docs_show_the_neovim_set_up_that_is_tested():
    assert (DATA / "purelint.lua").read_text(encoding="utf-8") in GUIDE.read_text(encoding="utf-8")


# --- the exchange docs/purelint.md shows ------------------------------------------------------------

CAPTURE_URI = "file:///project/step.py"
CAPTURE = "import jax\n\n\n@jax.jit\ndef step(x, i):\n    x = jax.numpy.asarray(x)\n    x[i] = 0\n    return x\n"
_CAPTURED = re.compile(r"(<!-- lsp-capture:start[^\n]*-->\n).*?(<!-- lsp-capture:end -->)", re.DOTALL)


def _pretty(value, indent: str = "") -> str:
    """JSON with each object or list on one line when it fits in 100 columns, else one item a line."""
    flat = json.dumps(value, ensure_ascii=False)
    if len(indent) + len(flat) <= 100 or not isinstance(value, (dict, list)) or not value:
        return flat
    inner = indent + "  "
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k)}: {_pretty(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    return "[\n" + ",\n".join(inner + _pretty(v, inner) for v in value) + f"\n{indent}]"


def _render(wire: list[tuple[str, dict]]) -> str:
    """didOpen, the publishDiagnostics it causes, one codeAction request and its response, as sent
    (pretty-printed; the client's request id, a random UUID, shown as 1)."""
    opened = next(body for way, body in wire if body.get("method") == "textDocument/didOpen")
    published = next(body for way, body in wire if body.get("method") == "textDocument/publishDiagnostics")
    request = next(body for way, body in wire if body.get("method") == "textDocument/codeAction")
    response = next(
        body for way, body in wire if way == "<-" and body.get("id") == request["id"] and "method" not in body
    )
    blocks = []
    for title, body in (
        ("client → server", opened),
        ("server → client", published),
        ("client → server", request),
        ("server → client", response),
    ):
        body = {**body, "id": 1} if "id" in body else body
        blocks.append(f"// {title}\n{_pretty(body)}")
    return "```jsonc\n" + "\n".join(blocks) + "\n```\n"


def test_docs_show_the_captured_exchange(server):
    """The JSON-RPC messages in docs/purelint.md are the ones this test records; run it with
    PURELINT_WRITE_CAPTURE=1 to write them there after a change."""

    async def scenario(client: Client) -> None:
        start = len(client.wire)
        client.text_document_did_open(open_params(CAPTURE_URI, CAPTURE))
        (finding,) = (await client.wait_for(CAPTURE_URI, 1)).diagnostics
        await client.text_document_code_action_async(code_action_params(CAPTURE_URI, finding, only=["quickfix"]))
        capture = _render(client.wire[start:])
        guide = GUIDE.read_text(encoding="utf-8")
        assert _CAPTURED.search(guide), "docs/purelint.md lacks the lsp-capture markers"
        updated = _CAPTURED.sub(lambda m: m.group(1) + capture + m.group(2), guide)
        if os.environ.get("PURELINT_WRITE_CAPTURE") == "1" and updated != guide:
            GUIDE.write_text(updated, encoding="utf-8")
            guide = updated
        assert updated == guide, "docs/purelint.md shows another exchange: rerun with PURELINT_WRITE_CAPTURE=1"

    server.call(scenario)
