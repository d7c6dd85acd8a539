"""What does the language server save an editor, against running the CLI on each save?

    python bench/lsp_latency.py [--rounds N] [PATHS...]     (default: the .py files under fixtures/)

For each file, in the same run:

- CLI: `python -m nnlint --format json FILE` in a fresh process, spawn to exit: what an editor
  integration that runs the linter on every save pays (interpreter start-up and imports included);
- server: one `nnlint server` process for the whole run; the time from a `didSave` notification
  (which lints at once, unlike typing, which waits DEBOUNCE_SECONDS for a pause) to the
  `publishDiagnostics` that answers it, through the real protocol (pygls' client).

Each is the median of --rounds; the ratio CLI / server is what compares (the milliseconds depend on
the machine and its load). Needs the `lsp` extra. Nothing is asserted: tests check behaviour.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

REPOSITORY = Path(__file__).resolve().parent.parent


def cli_seconds(path: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "nnlint", "--format", "json", "--exit-zero", path.name],
        cwd=path.parent, capture_output=True, check=True,
    )  # fmt: skip
    return time.perf_counter() - started


class Client:
    """A client that waits for the diagnostics of one URI at a time."""

    def __init__(self) -> None:
        self.client = LanguageClient("nnlint-bench", "1")
        self.waiting: dict[str, asyncio.Future] = {}

        @self.client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def published(params: types.PublishDiagnosticsParams) -> None:
            future = self.waiting.pop(params.uri, None)
            if future is not None and not future.done():
                future.set_result(len(params.diagnostics))

    async def start(self, root: Path) -> None:
        await self.client.start_io(sys.executable, "-m", "nnlint", "server")
        await self.client.initialize_async(
            types.InitializeParams(capabilities=types.ClientCapabilities(), root_uri=root.as_uri())
        )
        self.client.initialized(types.InitializedParams())

    async def answer(self, uri: str, send) -> float:
        future = self.waiting[uri] = asyncio.get_running_loop().create_future()
        started = time.perf_counter()
        send()
        await asyncio.wait_for(future, 120)
        return time.perf_counter() - started

    async def open(self, path: Path) -> None:
        item = types.TextDocumentItem(uri=path.as_uri(), language_id="python", version=1, text=path.read_text())
        params = types.DidOpenTextDocumentParams(item)
        await self.answer(path.as_uri(), lambda: self.client.text_document_did_open(params))

    async def save(self, path: Path) -> float:
        params = types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(path.as_uri()))
        return await self.answer(path.as_uri(), lambda: self.client.text_document_did_save(params))

    async def close(self, path: Path) -> None:
        params = types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(path.as_uri()))
        await self.answer(path.as_uri(), lambda: self.client.text_document_did_close(params))

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()


async def server_seconds(paths: list[Path], rounds: int) -> dict[Path, float]:
    client = Client()
    await client.start(REPOSITORY)
    medians = {}
    for path in paths:
        await client.open(path)  # the first lint of a file also reads the project files it calls into
        medians[path] = statistics.median([await client.save(path) for _ in range(rounds)])
        await client.close(path)  # one open buffer at a time: a save re-lints every open buffer
    await client.stop()
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    paths = [p.resolve() for p in options.paths] or sorted((REPOSITORY / "fixtures").rglob("*.py"))
    server = asyncio.run(server_seconds(paths, options.rounds))
    cli = {path: statistics.median(cli_seconds(path) for _ in range(options.rounds)) for path in paths}
    print(f"{'file':<48} {'lines':>6} {'CLI ms':>8} {'server ms':>10} {'CLI/server':>11}")
    for path in paths:
        lines = path.read_text().count("\n")
        shown = path.relative_to(REPOSITORY).as_posix() if path.is_relative_to(REPOSITORY) else str(path)
        ratio = cli[path] / server[path]
        print(f"{shown:<48} {lines:>6} {cli[path] * 1000:>8.0f} {server[path] * 1000:>10.1f} {ratio:>10.0f}x")
    ratios = [cli[path] / server[path] for path in paths]
    print(f"median CLI/server ratio over {len(paths)} files: {statistics.median(ratios):.0f}x "
          f"(medians of {options.rounds} rounds each; one server process, a fresh CLI process per run)")  # fmt: skip


if __name__ == "__main__":
    main()
