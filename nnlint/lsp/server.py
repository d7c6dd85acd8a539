"""The language server: lints each open buffer as it is typed, publishes the findings as diagnostics,
and offers their safe fixes as code actions.

When to lint: at open and save at once, while typing once the edits pause (DEBOUNCE_SECONDS). When a
file changes, the project facts other files were linted with may be stale (nnlint.project follows calls
into other files and keeps what it read): the project is told (`Project.edited`, the unsaved text wins
over the disk), and the open buffers are linted again when the file is saved or closed, or when the
editor reports files changed on disk (the server asks it to watch WATCHED_FILES). An editor that
cannot watch files still gets fresh facts: each lint first checks the files read so far for changes
(`Project.refresh`).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types
from pygls import uris
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument

from nnlint import __version__
from nnlint.errors import ConfigError
from nnlint.finding import Finding
from nnlint.lsp.buffer import buffer_task
from nnlint.lsp.convert import (
    FIX_ALL, Positions, error_diagnostic, finding_diagnostic, fix_all, overlaps, quick_fix, tool_diagnostic,
)  # fmt: skip
from nnlint.project import project_at
from nnlint.runner import INTERNAL_ERROR, lint_data
from nnlint.source import encode_source

DEBOUNCE_SECONDS = 0.3
# Files whose change on disk may change an open buffer's findings: the project's modules and its config.
WATCHED_FILES = ("**/*.py", "**/pyproject.toml")


@dataclass(frozen=True)
class _Linted:
    """One version of a buffer, linted: its diagnostics, and the findings with a fix beside theirs."""

    version: int | None
    positions: Positions
    diagnostics: list[types.Diagnostic]
    fixable: list[tuple[Finding, types.Diagnostic]]


class NnlintServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("nnlint", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.linted: dict[str, _Linted] = {}
        self.roots: set[str] = set()  # the project roots linted so far, whose projects hear of edits
        self._waiting: dict[str, asyncio.TimerHandle] = {}

    def path_of(self, document: TextDocument) -> Path:
        """Where the buffer's file is; an unsaved new buffer is placed in the workspace folder."""
        path = uris.to_fs_path(document.uri)
        return Path(path) if path else self.fallback_root(None) / (document.filename or "untitled.py")

    def fallback_root(self, path: Path | None) -> Path:
        """Where paths are relative to without a config file: the innermost workspace folder holding
        `path`, else the file's directory (a buffer with no file: the workspace's root)."""
        root = self.workspace.root_path
        if path is None:
            return Path(root) if root else Path(os.getcwd())
        folders = [Path(p) for folder in self.workspace.folders.values() if (p := uris.to_fs_path(folder.uri))]
        holding = [folder for folder in [*folders, *([Path(root)] if root else [])] if path.is_relative_to(folder)]
        return max(holding, key=lambda folder: len(folder.parts)) if holding else path.parent

    def lint(self, document: TextDocument) -> _Linted:
        """Lint the buffer as it is now; never raises (a bug in nnlint becomes an NN900 diagnostic)."""
        positions = Positions(document.source, document.position_codec)
        diagnostics: list[types.Diagnostic] = []
        fixable: list[tuple[Finding, types.Diagnostic]] = []
        try:
            path = self.path_of(document)
            task = buffer_task(path, self.fallback_root(path))
            if task is not None:
                self._meet_root(task.root)
                project_at(task.root).refresh()
                result = lint_data(task, encode_source(document.source))
                for finding in result.findings:
                    diagnostic = finding_diagnostic(finding, positions)
                    diagnostics.append(diagnostic)
                    if finding.fix is not None:
                        fixable.append((finding, diagnostic))
                diagnostics.extend(tool_diagnostic(d, positions) for d in result.diagnostics)
        except ConfigError as error:
            diagnostics = [error_diagnostic(str(error))]
        except Exception as error:  # a bug in the server itself: say so in the editor, keep serving
            message = f"internal error in nnlint ({type(error).__name__}: {error}); please report it"
            diagnostics = [error_diagnostic(message, INTERNAL_ERROR)]
        return _Linted(document.version, positions, diagnostics, fixable)

    def _stop_waiting(self, uri: str) -> None:
        waiting = self._waiting.pop(uri, None)
        if waiting is not None:
            waiting.cancel()

    def lint_and_publish(self, uri: str) -> None:
        self._stop_waiting(uri)
        if uri not in self.workspace.text_documents:
            return  # closed while waiting
        document = self.workspace.get_text_document(uri)
        linted = self.linted[uri] = self.lint(document)
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=linted.diagnostics, version=document.version)
        )

    def lint_later(self, uri: str) -> None:
        """Lint once the edits pause: typing should not pay for a lint per keystroke."""
        self._stop_waiting(uri)
        self._waiting[uri] = asyncio.get_running_loop().call_later(DEBOUNCE_SECONDS, self.lint_and_publish, uri)

    def lint_all(self) -> None:
        for uri in list(self.workspace.text_documents):
            self.lint_and_publish(uri)

    def edited(self, path: Path, unsaved: str | None) -> None:
        """Tell the projects that may have read the file (nnlint.project) that it changed."""
        for root in self.roots:
            if path.resolve().is_relative_to(project_at(root).root):
                project_at(root).edited(path, unsaved)

    def _meet_root(self, root: str) -> None:
        """A project seen for the first time learns of the open buffers under it."""
        if root in self.roots:
            return
        self.roots.add(root)
        project = project_at(root)
        for document in self.workspace.text_documents.values():
            path = self.path_of(document)
            if path.resolve().is_relative_to(project.root):
                project.edited(path, document.source)

    def _versioned_edits(self) -> bool:
        """The client takes `documentChanges` (edits tied to a document version) in a workspace edit."""
        workspace = self.client_capabilities.workspace
        edits = workspace.workspace_edit if workspace is not None else None
        return bool(edits is not None and edits.document_changes)

    def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        document = self.workspace.get_text_document(uri)
        linted = self.linted.get(uri)
        if linted is None or linted.version != document.version:
            linted = self.linted[uri] = self.lint(document)
        version = document.version if self._versioned_edits() else None
        actions = [
            quick_fix(finding, diagnostic, uri, version, linted.positions)
            for finding, diagnostic in linted.fixable
            if overlaps(diagnostic.range, params.range)
        ]
        every = fix_all([finding for finding, _ in linted.fixable], uri, version, linted.positions)
        if every is not None:
            actions.append(every)
        wanted = [_kind(kind) for kind in params.context.only or ()]
        # Kinds are hierarchical: asking for "source.fixAll" gets "source.fixAll.nnlint".
        return [a for a in actions if not wanted or any(f"{_kind(a.kind)}.".startswith(f"{kind}.") for kind in wanted)]


def _kind(kind: types.CodeActionKind | str | None) -> str:
    """A code action kind as the protocol spells it ("quickfix"; str() of the enum is its Python name)."""
    return kind.value if isinstance(kind, types.CodeActionKind) else str(kind)


server = NnlintServer()


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: NnlintServer, params: types.DidOpenTextDocumentParams) -> None:
    ls.edited(ls.path_of(ls.workspace.get_text_document(params.text_document.uri)), params.text_document.text)
    ls.lint_and_publish(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: NnlintServer, params: types.DidChangeTextDocumentParams) -> None:
    document = ls.workspace.get_text_document(params.text_document.uri)
    ls.edited(ls.path_of(document), document.source)
    ls.lint_later(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: NnlintServer, params: types.DidSaveTextDocumentParams) -> None:
    ls.edited(ls.path_of(ls.workspace.get_text_document(params.text_document.uri)), None)
    ls.lint_all()


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: NnlintServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.linted.pop(uri, None)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
    path = uris.to_fs_path(uri)
    if path is not None:  # what other files are linted with is the file on disk again
        ls.edited(Path(path), None)
        ls.lint_all()


@server.feature(types.INITIALIZED)
async def initialized(ls: NnlintServer, params: types.InitializedParams) -> None:
    """Ask the editor to report the files that change outside it (a checkout, pyproject.toml), if it can."""
    workspace = ls.client_capabilities.workspace
    watching = workspace.did_change_watched_files if workspace is not None else None
    if watching is None or not watching.dynamic_registration:
        return
    watchers = [types.FileSystemWatcher(glob_pattern=pattern) for pattern in WATCHED_FILES]
    registration = types.Registration(
        id="nnlint-watched-files",
        method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
        register_options=types.DidChangeWatchedFilesRegistrationOptions(watchers=watchers),
    )
    try:
        await ls.client_register_capability_async(types.RegistrationParams(registrations=[registration]))
    except JsonRpcException:  # the editor declined: changes on disk count from each file's next lint
        pass


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def watched_files_changed(ls: NnlintServer, params: types.DidChangeWatchedFilesParams) -> None:
    """Files changed on disk: lint the open buffers again (their findings may follow calls into those
    files, and a pyproject.toml may have changed their settings). An open file's buffer still wins."""
    buffers = {ls.path_of(document) for document in ls.workspace.text_documents.values()}
    for change in params.changes:
        path = uris.to_fs_path(change.uri)
        if path is not None and Path(path) not in buffers:
            ls.edited(Path(path), None)
    ls.lint_all()


@server.feature(
    types.TEXT_DOCUMENT_CODE_ACTION,
    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix, FIX_ALL]),
)
def code_action(ls: NnlintServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    return ls.code_actions(params)


def serve() -> None:
    """Serve on stdin/stdout, as editors start language servers."""
    server.start_io()
