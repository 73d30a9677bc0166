"""`purelint server`: a real server subprocess driven over stdio by pygls's own LSP client.

Each test starts `python -m purelint server` and talks LSP to it the way an editor does; the client
records the raw JSON-RPC bodies in both directions (docs/purelint.md shows one such capture, which
`test_docs_show_the_captured_exchange` keeps true).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

pytest.importorskip("pygls")
from lsprotocol import types  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

from purelint import get_rule, lint_source  # noqa: E402
from purelint._lsp_text import Text  # noqa: E402

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
        self.changed = asyncio.Condition()

        @self.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        async def on_diagnostics(params: types.PublishDiagnosticsParams) -> None:
            self.diagnostics[params.uri] = params
            async with self.changed:
                self.changed.notify_all()

        @self.feature(types.WINDOW_LOG_MESSAGE)
        def on_log(params: types.LogMessageParams) -> None:
            self.logs.append(params.message)

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

    async def open(self, capabilities: types.ClientCapabilities | None = None, options: dict | None = None) -> None:
        await self.start()
        await asyncio.wait_for(self.initialize_async(types.InitializeParams(
            capabilities=capabilities or types.ClientCapabilities(),
            root_uri=None,
            initialization_options=options,
        )), TIMEOUT)
        self.initialized(types.InitializedParams())

    async def wait_for(self, uri: str, version: int | None = None) -> types.PublishDiagnosticsParams:
        """The diagnostics of `uri` once they are for `version` (any version when None)."""
        def ready() -> bool:
            found = self.diagnostics.get(uri)
            return found is not None and (version is None or found.version == version)

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


def open_params(uri: str, text: str, version: int = 1) -> types.DidOpenTextDocumentParams:
    return types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(uri=uri, language_id="python", version=version, text=text))


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
        text = text[:offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end):]
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
    return [(d.code, d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character) for d in params.diagnostics]


# --- the editing session ----------------------------------------------------------------------------


def test_open_fix_change_and_diagnostics_follow():
    async def scenario(client: Client) -> None:
        await client.open()
        started = time.perf_counter()
        client.text_document_did_open(open_params(DEMO_URI, DEMO))
        published = await client.wait_for(DEMO_URI, 1)
        print(f"didOpen -> diagnostics: {(time.perf_counter() - started) * 1000:.0f} ms")
        assert shown(published) == expected(DEMO) == [("PUR301", 7, 19, 7, 23), ("PUR001", 8, 4, 8, 16)]  # x at character 18, UTF-16 unit 19
        item = published.diagnostics[0]
        assert item.source == "purelint" and item.severity == types.DiagnosticSeverity.Warning
        assert item.code_description.href.endswith("/docs/purelint-rules.md#array-item-assignment-pur301")

        # The safe fix, offered first and preferred, then the noqa; the unsafe print fix is labelled.
        actions = await client.text_document_code_action_async(code_action_params(DEMO_URI, item))
        titles = [a.title for a in actions]
        assert titles == [
            "Fix PUR301: Use `x = x.at[i].set(...)`",
            "Suppress PUR301 with `# noqa: PUR301`",
            "Fix all safe purelint findings in this file",
        ]
        assert actions[0].is_preferred and actions[0].kind == types.CodeActionKind.QuickFix
        assert actions[2].kind == "source.fixAll.purelint"
        (edit,) = actions[0].edit.changes[DEMO_URI]
        assert (edit.range.start.line, edit.range.start.character) == (7, 20)  # only `[i] = 0` changes
        fixed = apply_edits(DEMO, actions[0].edit.changes[DEMO_URI])
        assert fixed == DEMO.replace("x[i] = 0", "x = x.at[i].set(0)")

        client.text_document_did_change(change_params(DEMO_URI, 2, fixed))
        published = await client.wait_for(DEMO_URI, 2)
        assert [d.code for d in published.diagnostics] == ["PUR001"]

        (print_fix, noqa) = await client.text_document_code_action_async(code_action_params(DEMO_URI, published.diagnostics[0]))
        assert print_fix.title == "Fix PUR001: Use `jax.debug.print` (unsafe fix: review it)" and not print_fix.is_preferred
        silenced = apply_edits(fixed, noqa.edit.changes[DEMO_URI])
        assert "    print(label)  # noqa: PUR001\n" in silenced
        client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=DEMO_URI)))
        client.text_document_did_change(change_params(DEMO_URI, 3, silenced))
        assert not (await client.wait_for(DEMO_URI, 3)).diagnostics
        await client.close()

    run(scenario)


def test_hover_shows_the_rule_page_and_fix_all_applies_every_safe_fix():
    source = DEMO + "\n\n@jax.jit\ndef g(y):\n    y = jnp.zeros(3)\n    y[0] = 1\n    return y.detach()\n"

    async def scenario(client: Client) -> None:
        await client.open()
        client.text_document_did_open(open_params(DEMO_URI, source))
        published = await client.wait_for(DEMO_URI, 1)
        first = published.diagnostics[0]
        hover = await client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=DEMO_URI), position=first.range.start,
        ))
        assert hover.contents.kind == types.MarkupKind.Markdown
        assert hover.contents.value == get_rule("PUR301").documentation()  # what `purelint rule PUR301` prints
        nothing = await client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=DEMO_URI), position=types.Position(line=0, character=0),
        ))
        assert nothing is None

        # What an editor asks for on save with `"source.fixAll.purelint": "explicit"`.
        (fix_all,) = await client.text_document_code_action_async(code_action_params(DEMO_URI, only=["source.fixAll"]))
        fixed = apply_edits(source, fix_all.edit.changes[DEMO_URI])
        from purelint._config import Config
        from purelint._runner import fix_text

        assert fixed == fix_text(source, "/project/demo.py", Config(), unsafe=False).text
        assert "y = y.at[0].set(1)" in fixed and "jax.lax.stop_gradient(y)" in fixed and "print(label)" in fixed
        await client.close()

    run(scenario)
