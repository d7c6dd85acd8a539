"""Which rules lint an editor's buffer: those `nnlint check` would run on the file once saved.

The same `[tool.nnlint]` (the nearest pyproject.toml with one, read again at every lint so that an
edit of it takes effect at once), the same per-file-ignores; a file the `exclude` setting names is not
linted, as a directory walk of the CLI would skip it.
"""

from __future__ import annotations

from pathlib import Path

from nnlint.config import find_config, load_settings
from nnlint.runner import FileTask, file_task


def buffer_task(path: Path, fallback_root: Path) -> FileTask | None:
    """How to lint the buffer of the file at `path`, or None if `exclude` names it. Without a config
    file, paths are relative to `fallback_root` (the editor's workspace folder). Raises ConfigError."""
    settings = load_settings(find_config(path.parent), fallback_root)
    try:
        relative = path.relative_to(settings.root).as_posix()
    except ValueError:
        relative = None
    if relative is not None and settings.exclude_spec().match_file(relative):
        return None
    return file_task(path, settings, settings.selected_rules(), settings.root)
