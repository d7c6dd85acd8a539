"""`nnlint server` with a real LSP client (pytest-lsp): the server runs in its own process on stdio,
as an editor starts it, and every check goes through the protocol."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from conftest import BUGGY_LINE, BUGGY_NET, CLEAN_NET
from test_project import CALL_LINE, ENGINE, MODEL, TRAIN

SERVER = [sys.executable, "-m", "nnlint", "server"]
# The same server with NN301 broken for files named boom.py, as tests/test_cli.py breaks it for the CLI.
CRASHING_SERVER = [
    sys.executable, "-c", textwrap.dedent("""
        from nnlint.rule import all_rules
        from nnlint.lsp.server import serve
        [rule] = [rule for rule in all_rules() if rule.code == "NN301"]
        original = rule.visit_Call
        def crash(self, node):
            if "boom" in self.context.path:
                raise ValueError("rule bug")
            return original(self, node)
        rule.visit_Call = crash
        serve()
    """),
]  # fmt: skip


async def _start(client: LanguageClient, root: Path, editor: str = "visual-studio-code"):
    """Initialise a session as `editor` would (its capabilities as pytest-lsp records them)."""
    client.registrations = []
    client.editor = editor

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(params: types.RegistrationParams) -> None:  # as VS Code accepts them
        client.registrations.extend(params.registrations)

    initialized = await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(editor),
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
        )
    )
    client.position_encoding = initialized.capabilities.position_encoding or types.PositionEncodingKind.Utf16
    yield
    await client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, tmp_path):
    async for _ in _start(lsp_client, tmp_path):
        yield


# Each editor's preferred position encoding, which the server adopts (Neovim 0.11, Emacs 29); Neovim
# also takes workspace edits without `documentChanges`.
EDITORS = {"visual-studio-code": "utf-16", "neovim": "utf-8", "emacs": "utf-32"}


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), params=list(EDITORS))
async def any_client(lsp_client: LanguageClient, tmp_path, request):
    async for _ in _start(lsp_client, tmp_path, request.param):
        yield


@pytest_lsp.fixture(config=ClientServerConfig(server_command=CRASHING_SERVER))
async def crashing_client(lsp_client: LanguageClient, tmp_path):
    async for _ in _start(lsp_client, tmp_path):
        yield


class _Published(dict):
    """The client's store of published diagnostics, which also counts each publication per URI."""

    def __init__(self) -> None:
        super().__init__()
        self.count: dict[str, int] = {}

    def __setitem__(self, uri: str, diagnostics) -> None:
        self.count[uri] = self.count.get(uri, 0) + 1
        super().__setitem__(uri, diagnostics)


class Editor:
    """What an editor sends: open, edit, save, close; each returns the diagnostics published next."""

    def __init__(self, client: LanguageClient, root: Path) -> None:
        self.client = client
        self.client.diagnostics = self.published = _Published()
        self.root = root
        self.versions: dict[str, int] = {}

    def uri(self, name: str) -> str:
        """A file under the workspace, or a buffer with no file (`untitled:Untitled-1`)."""
        return name if name.startswith("untitled:") else (self.root / name).as_uri()

    async def diagnostics_after(self, name: str, send) -> list[types.Diagnostic]:
        """`send()` a message; the diagnostics the server publishes next for `name`."""
        uri = self.uri(name)
        self.client.diagnostics.pop(uri, None)
        send()
        async with asyncio.timeout(30):  # a safety net for a server that never answers, not a speed claim
            while uri not in self.client.diagnostics:
                await asyncio.sleep(0.01)
        return list(self.client.diagnostics[uri])

    async def open(self, name: str, text: str | None = None) -> list[types.Diagnostic]:
        text = (self.root / name).read_text() if text is None else text
        self.versions[name] = 1
        item = types.TextDocumentItem(uri=self.uri(name), language_id="python", version=1, text=text)
        return await self.diagnostics_after(
            name, lambda: self.client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=item))
        )

    async def change(self, name: str, *changes: types.TextDocumentContentChangeEvent, then: str | None = None):
        """Edit `name`; the diagnostics published next for `then` (default: the edited file)."""
        self.versions[name] += 1
        document = types.VersionedTextDocumentIdentifier(uri=self.uri(name), version=self.versions[name])
        params = types.DidChangeTextDocumentParams(text_document=document, content_changes=list(changes))
        return await self.diagnostics_after(then or name, lambda: self.client.text_document_did_change(params))

    async def replace(self, name: str, text: str, then: str | None = None) -> list[types.Diagnostic]:
        return await self.change(name, types.TextDocumentContentChangeWholeDocument(text=text), then=then)

    def type_now(self, name: str, text: str) -> None:
        """Replace the buffer and go on at once, as a user who asks for a fix while the lint waits."""
        self.versions[name] += 1
        document = types.VersionedTextDocumentIdentifier(uri=self.uri(name), version=self.versions[name])
        change = types.TextDocumentContentChangeWholeDocument(text=text)
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(document, [change]))

    async def code_actions(
        self, name: str, where: types.Range, diagnostics: list[types.Diagnostic], only: list[str] | None = None
    ) -> list[types.CodeAction]:
        params = types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=self.uri(name)),
            range=where,
            context=types.CodeActionContext(diagnostics=diagnostics, only=only),
        )
        return list(await self.client.text_document_code_action_async(params) or [])

    async def save(self, name: str, then: str | None = None) -> list[types.Diagnostic]:
        params = types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=self.uri(name)))
        return await self.diagnostics_after(then or name, lambda: self.client.text_document_did_save(params))

    async def close(self, name: str, then: str) -> list[types.Diagnostic]:
        params = types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=self.uri(name)))
        return await self.diagnostics_after(then, lambda: self.client.text_document_did_close(params))


@pytest.fixture
def editor(client, tmp_path) -> Editor:
    return Editor(client, tmp_path)


@pytest.fixture
def any_editor(any_client, tmp_path) -> Editor:
    return Editor(any_client, tmp_path)


TOP = types.Range(types.Position(0, 0), types.Position(0, 0))


def _typed(where: types.Range, text: str) -> types.TextDocumentContentChangePartial:
    """An incremental edit: `where` replaced by `text`."""
    return types.TextDocumentContentChangePartial(range=where, text=text)


def _codes(diagnostics: list[types.Diagnostic]) -> list[tuple[int, str]]:
    """(1-based line, code) of each diagnostic, as the CLI counts lines."""
    return [(d.range.start.line + 1, d.code) for d in diagnostics]


@pytest.mark.asyncio
async def test_a_finding_is_a_diagnostic_with_the_clis_range_severity_and_docs_link(editor, write, nnlint):
    write({"net.py": BUGGY_NET})
    [diagnostic] = await editor.open("net.py")
    [finding] = nnlint("--format", "json", "net.py").json()["findings"]
    assert diagnostic.code == finding["code"] == "NN301"
    assert diagnostic.severity == types.DiagnosticSeverity.Error  # NN301's severity is "error"
    assert diagnostic.source == "nnlint"
    assert diagnostic.message == finding["message"]
    assert diagnostic.code_description.href == finding["url"]
    start, end = diagnostic.range.start, diagnostic.range.end
    assert (start.line + 1, start.character + 1, end.line + 1, end.character + 1) == (
        finding["line"], finding["column"], finding["end_line"], finding["end_column"],
    )  # fmt: skip


@pytest.mark.asyncio
async def test_warning_and_info_severities(editor, write):
    write({"pyproject.toml": "[tool.nnlint]\nextend-select = ['NN704']\n"})
    source = "import torch\n" + BUGGY_NET.replace("F.dropout(x, 0.5)", "F.softmax(x)") + "\ntorch.save(Net(), 'm.pt')\n"
    diagnostics = await editor.open("save.py", source)
    severities = {d.code: d.severity for d in diagnostics}
    assert severities == {"NN104": types.DiagnosticSeverity.Warning, "NN704": types.DiagnosticSeverity.Information}


@pytest.mark.asyncio
async def test_diagnostics_come_from_the_unsaved_buffer_on_every_change(editor, write):
    write({"net.py": BUGGY_NET})
    assert _codes(await editor.open("net.py")) == [(BUGGY_LINE, "NN301")]
    assert await editor.replace("net.py", CLEAN_NET) == []  # the disk still has the bug
    # An incremental edit: delete `, training=self.training` again.
    line = CLEAN_NET.splitlines()[BUGGY_LINE - 1]
    start = line.index(", training")
    end = start + len(", training=self.training")
    removal = _typed(types.Range(types.Position(BUGGY_LINE - 1, start), types.Position(BUGGY_LINE - 1, end)), "")
    assert _codes(await editor.change("net.py", removal)) == [(BUGGY_LINE, "NN301")]
    # A new line above the finding moves it.
    insert = _typed(TOP, "\n")
    assert _codes(await editor.change("net.py", insert)) == [(BUGGY_LINE + 1, "NN301")]
    assert _codes(await editor.save("net.py")) == [(BUGGY_LINE + 1, "NN301")]


@pytest.mark.asyncio
async def test_a_burst_of_typing_is_linted_once_it_pauses_not_per_keystroke(editor, write):
    write({"net.py": BUGGY_NET})
    await editor.open("net.py")
    uri, before = editor.uri("net.py"), editor.published.count[editor.uri("net.py")]
    for _ in range(9):  # nine keystrokes, the bug left in
        editor.type_now("net.py", BUGGY_NET + "# typing\n")
    assert await editor.replace("net.py", CLEAN_NET) == []  # the tenth fixes it: its lint is the one published
    assert editor.published.count[uri] - before < 10


def _units(text: str, encoding: str) -> int:
    """The length of `text` in the code units of a position encoding."""
    return {"utf-8": len(text.encode("utf-8")), "utf-16": len(text.encode("utf-16-le")) // 2}.get(encoding, len(text))


@pytest.mark.asyncio
async def test_columns_are_in_the_clients_position_encoding(any_editor):
    """An emoji before the finding: 4 UTF-8 units, 2 UTF-16 units, 1 character, as the editor negotiated."""
    source = BUGGY_NET.replace("return F.dropout", "y = '😀'; return F.dropout")
    [diagnostic] = await any_editor.open("net.py", source)
    line = source.splitlines()[BUGGY_LINE - 1]
    assert any_editor.client.position_encoding == EDITORS[any_editor.client.editor]
    expected = _units(line[: line.index("F.dropout")], any_editor.client.position_encoding)
    assert diagnostic.range.start.character == expected


@pytest.mark.asyncio
async def test_a_new_buffer_never_saved_is_linted_with_the_workspace_config(editor, write):
    write({"pyproject.toml": "[tool.nnlint]\nselect = ['NN104']\n"})
    source = BUGGY_NET + "\n\ndef probabilities(x):\n    return F.softmax(x)\n"
    assert _codes(await editor.open("untitled:Untitled-1", source)) == [(BUGGY_LINE + 4, "NN104")]


@pytest.mark.asyncio
async def test_an_unparsable_buffer_is_an_nn901_diagnostic_at_its_line(editor):
    diagnostics = await editor.open("broken.py", CLEAN_NET + "\n\ndef f(:\n    pass\n")
    assert _codes(diagnostics) == [(BUGGY_LINE + 3, "NN901")]
    assert "syntax error" in diagnostics[0].message
    # Fixing the buffer clears it; the server is still serving.
    assert await editor.replace("broken.py", CLEAN_NET + "\n\ndef f():\n    pass\n") == []


@pytest.mark.asyncio
async def test_binary_and_oversized_buffers_are_nn901_diagnostics(editor, write):
    write({"pyproject.toml": "[tool.nnlint]\nmax-file-size = 1000\n"})
    [binary] = await editor.open("binary.py", BUGGY_NET + "\x00")
    assert (binary.code, binary.range.start.line + 1) == ("NN901", BUGGY_LINE + 1) and "NUL" in binary.message
    [large] = await editor.open("large.py", BUGGY_NET + "#" * 1000)
    assert large.code == "NN901" and "larger than max-file-size (1,000 bytes)" in large.message
    assert _codes(await editor.open("net.py", BUGGY_NET)) == [(BUGGY_LINE, "NN301")]


@pytest.mark.asyncio
async def test_a_buffer_with_a_coding_line_is_linted_in_its_encoding(editor):
    source = "# -*- coding: latin-1 -*-\n# café\n" + BUGGY_NET
    assert _codes(await editor.open("latin.py", source)) == [(BUGGY_LINE + 2, "NN301")]


@pytest.mark.asyncio
async def test_tool_nnlint_is_honoured_and_reread_after_each_edit(editor, write, tmp_path):
    write({"pyproject.toml": "[tool.nnlint]\nignore = ['NN301']\n", "net.py": BUGGY_NET, "tests/net.py": BUGGY_NET})
    assert await editor.open("net.py") == []
    (tmp_path / "pyproject.toml").write_text("[tool.nnlint]\nper-file-ignores = { 'tests/**' = ['NN3'] }\n")
    assert _codes(await editor.save("net.py")) == [(BUGGY_LINE, "NN301")]
    assert await editor.open("tests/net.py") == []
    (tmp_path / "pyproject.toml").write_text("[tool.nnlint]\nexclude = ['net.py']\n")
    assert await editor.save("net.py") == []


@pytest.mark.asyncio
async def test_a_bad_config_is_an_error_diagnostic_not_a_crash(editor, write, tmp_path):
    write({"pyproject.toml": "[tool.nnlint]\nselectt = ['NN3']\n", "net.py": BUGGY_NET})
    [diagnostic] = await editor.open("net.py")
    assert diagnostic.severity == types.DiagnosticSeverity.Error
    assert diagnostic.message.startswith("nnlint: error: ") and "unknown key(s) selectt" in diagnostic.message
    (tmp_path / "pyproject.toml").write_text("[tool.nnlint]\nselect = ['NN3']\n")
    assert _codes(await editor.save("net.py")) == [(BUGGY_LINE, "NN301")]


@pytest.mark.asyncio
async def test_a_crashing_rule_is_an_nn900_diagnostic_and_the_server_keeps_serving(crashing_client, write, tmp_path):
    write({"boom.py": BUGGY_NET, "net.py": BUGGY_NET})
    editor = Editor(crashing_client, tmp_path)
    [diagnostic] = await editor.open("boom.py")
    assert diagnostic.code == "NN900" and "ValueError: rule bug" in diagnostic.message
    assert _codes(await editor.open("net.py")) == [(BUGGY_LINE, "NN301")]


def _training_project(write) -> None:
    write({"model.py": MODEL, "engine.py": ENGINE, "train.py": TRAIN.format(engine="engine")})


ENGINE_RESTORING_TRAIN_MODE = ENGINE.replace("    return correct\n", "    model.train()\n    return correct\n")


@pytest.mark.asyncio
async def test_cross_file_facts_follow_a_saved_edit_of_the_other_file(editor, write, tmp_path):
    """train.py's NN303 comes from `model.eval()` in engine.py: fixing engine.py must clear it."""
    _training_project(write)
    assert (CALL_LINE, "NN303") in _codes(await editor.open("train.py"))
    await editor.open("engine.py")
    (tmp_path / "engine.py").write_text(ENGINE_RESTORING_TRAIN_MODE)  # the editor writes, then says so
    await editor.replace("engine.py", ENGINE_RESTORING_TRAIN_MODE)
    assert (CALL_LINE, "NN303") not in _codes(await editor.save("engine.py", then="train.py"))


@pytest.mark.asyncio
async def test_cross_file_facts_follow_the_other_files_unsaved_buffer_until_it_is_closed(editor, write):
    _training_project(write)
    assert (CALL_LINE, "NN303") in _codes(await editor.open("train.py"))
    await editor.open("engine.py")
    await editor.replace("engine.py", ENGINE_RESTORING_TRAIN_MODE)  # not saved
    comment = _typed(TOP, "# \n")
    assert (CALL_LINE + 1, "NN303") not in _codes(await editor.change("train.py", comment))
    # Closed without saving: the disk's engine.py, which never restores train mode, counts again.
    assert (CALL_LINE + 1, "NN303") in _codes(await editor.close("engine.py", then="train.py"))


@pytest.mark.asyncio
async def test_cross_file_facts_follow_a_change_made_outside_the_editor(editor, write, tmp_path):
    _training_project(write)
    assert (CALL_LINE, "NN303") in _codes(await editor.open("train.py"))
    (tmp_path / "engine.py").write_text(ENGINE_RESTORING_TRAIN_MODE)  # e.g. a git checkout
    assert (CALL_LINE, "NN303") not in _codes(await editor.save("train.py"))


def test_server_without_the_lsp_extra_is_a_clear_error():
    """Without pygls installed (hidden from the import system here), `nnlint server` says what to install."""
    script = "import sys; sys.modules['pygls'] = None; from nnlint.cli import main; main(['server'])"
    outcome = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert outcome.returncode == 2
    assert outcome.stderr.strip() == "nnlint: error: `nnlint server` needs pygls: pip install 'nnlint[lsp]'"
    assert "Traceback" not in outcome.stderr


def _apply(text: str, edits: list[types.TextEdit], encoding: str = "utf-16") -> str:
    """Apply LSP edits as an editor does: positions in the negotiated code units, the last edit first."""
    lines = re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z", text)

    def offset(position: types.Position) -> int:
        line = lines[position.line] if position.line < len(lines) else ""
        units = 0
        for characters, char in enumerate(line):
            if units >= position.character:
                return sum(map(len, lines[: position.line])) + characters
            units += _units(char, encoding)
        return sum(map(len, lines[: position.line])) + len(line)

    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        text = text[: offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end) :]
    return text


def _cli_fixed(nnlint, tmp_path: Path, name: str, source: str) -> str:
    """What `nnlint --fix` writes for the same source."""
    (tmp_path / "cli").mkdir(exist_ok=True)
    (tmp_path / "cli" / name).write_text(source)
    nnlint("--fix", f"cli/{name}")
    return (tmp_path / "cli" / name).read_text()


@pytest.mark.asyncio
async def test_a_quick_fix_edits_the_buffer_as_nnlint_fix_edits_the_file(any_editor, write, nnlint, tmp_path):
    """NN301's fix after an emoji, in each editor's position encoding: its edit gives the CLI's fixed file."""
    editor = any_editor
    source = BUGGY_NET.replace("return F.dropout", "y = '😀'; return F.dropout")
    write({"net.py": source})
    [diagnostic] = await editor.open("net.py")
    actions = await editor.code_actions("net.py", diagnostic.range, [diagnostic])
    [quick] = [action for action in actions if action.kind == types.CodeActionKind.QuickFix]
    assert list(quick.diagnostics) == [diagnostic] and quick.title.endswith("(NN301)") and quick.is_preferred
    if editor.client.capabilities.workspace.workspace_edit.document_changes:
        [change] = quick.edit.document_changes  # tied to the version it was computed for
        assert (change.text_document.uri, change.text_document.version) == (editor.uri("net.py"), 1)
        edits = change.edits
    else:
        assert quick.edit.document_changes is None
        [(uri, edits)] = quick.edit.changes.items()
        assert uri == editor.uri("net.py")
    fixed = _apply(source, edits, editor.client.position_encoding)
    assert fixed == _cli_fixed(nnlint, tmp_path, "net.py", source)
    assert fixed != source and await editor.replace("net.py", fixed) == []


@pytest.mark.asyncio
async def test_a_fix_asked_for_before_the_lint_ran_fits_the_buffer_as_it_is_now(editor, write):
    write({"net.py": BUGGY_NET})
    [diagnostic] = await editor.open("net.py")
    moved = "# a new first line\n" + BUGGY_NET
    editor.type_now("net.py", moved)  # the debounced lint has not run yet
    line = types.Range(types.Position(BUGGY_LINE, 0), types.Position(BUGGY_LINE + 1, 0))  # the moved line, selected
    [quick] = await editor.code_actions("net.py", line, [], only=[types.CodeActionKind.QuickFix])
    [change] = quick.edit.document_changes
    assert change.text_document.version == 2
    assert _apply(moved, change.edits) == "# a new first line\n" + CLEAN_NET


@pytest.mark.asyncio
async def test_fix_all_applies_every_fix_of_the_file_at_once(editor, nnlint, tmp_path):
    source = (
        "import torch\nfrom torch.nn import functional as F\n\n\n"
        "def nll(x, y):\n    return torch.log(F.softmax(x, dim=1)), torch.log(F.softmax(y, dim=1))\n"
    )
    diagnostics = await editor.open("loss.py", source)
    assert _codes(diagnostics) == [(6, "NN502"), (6, "NN502")]
    [every] = await editor.code_actions("loss.py", TOP, [], only=[types.CodeActionKind.SourceFixAll])  # on no finding
    assert every.kind == "source.fixAll.nnlint"
    [change] = every.edit.document_changes
    fixed = _apply(source, change.edits)
    assert fixed == _cli_fixed(nnlint, tmp_path, "loss.py", source)
    assert "torch.log(" not in fixed and await editor.replace("loss.py", fixed) == []
    assert await editor.code_actions("loss.py", TOP, []) == []


@pytest.mark.asyncio
async def test_files_changed_on_disk_relint_the_open_buffers_at_once(editor, write, tmp_path):
    """The server asks the editor to watch the project's modules and configs; a reported change
    (a checkout of engine.py, an edit of pyproject.toml) lints the open buffers again."""
    _training_project(write)
    assert (CALL_LINE, "NN303") in _codes(await editor.open("train.py"))
    [registration] = editor.client.registrations
    assert registration.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES
    assert [w["globPattern"] for w in registration.register_options["watchers"]] == ["**/*.py", "**/pyproject.toml"]

    def disk_changed(name: str, kind: types.FileChangeType):
        event = types.FileEvent(uri=editor.uri(name), type=kind)
        return lambda: editor.client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams([event]))

    (tmp_path / "engine.py").write_text(ENGINE_RESTORING_TRAIN_MODE)
    diagnostics = await editor.diagnostics_after("train.py", disk_changed("engine.py", types.FileChangeType.Changed))
    assert (CALL_LINE, "NN303") not in _codes(diagnostics)
    (tmp_path / "engine.py").write_text(ENGINE)
    (tmp_path / "pyproject.toml").write_text("[tool.nnlint]\nselect = ['NN303']\n")
    created = disk_changed("pyproject.toml", types.FileChangeType.Created)
    diagnostics = await editor.diagnostics_after("train.py", created)
    assert _codes(diagnostics) == [(CALL_LINE, "NN303")]
