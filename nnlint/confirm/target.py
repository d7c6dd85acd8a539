"""`nnlint probe MODULE:CALLABLE`: build one named model and run every probe that needs no finding
(child side, imports torch): the universal probes of nnlint.confirm.universal, as `--confirm` runs
them on each model it builds.

The target is a class or a factory function, imported from the current
directory, the project root or its `src/` with the same safe loading as
`--confirm`.
Its session owns every file the model's code runs in, so a problem in a
class defined elsewhere is still reported.
"""

from __future__ import annotations

import sys
from functools import cached_property
from pathlib import Path

from nnlint.confirm.models import BuildError, resolve_callable
from nnlint.confirm.safe_load import SafeImporter
from nnlint.confirm.session import ModelRecord, ProbeSession
from nnlint.confirm.universal import runtime_findings


class TargetError(Exception):
    """The target cannot be probed (not found, not a model, cannot be built or fed): exit 2 with this."""


class TargetSession(ProbeSession):
    """The session of one named model: it is the only model, and every user file is its to report."""

    def __init__(self, target: str, cli_input: str | None, project: dict) -> None:
        super().__init__(target, project)
        self.target = target
        self.cli_input = cli_input
        self.search_path = [Path(entry) for entry in project["search_path"]]

    def owns(self, path: str) -> bool:
        return path in self.user_files

    @cached_property
    def models(self) -> list[ModelRecord]:
        for entry in reversed(self.search_path):
            if str(entry) not in sys.path:
                sys.path.insert(0, str(entry))
        if not self.full_import:
            SafeImporter(self.search_path).install()
        try:
            maker = resolve_callable(self.target)
        except BuildError as error:
            raise TargetError(str(error)) from None
        except Exception as error:  # the module was found; importing it failed
            module = self.target.partition(":")[0]
            raise TargetError(f"importing {module} raised {type(error).__name__}: {error}") from None
        if not hasattr(maker, "__name__"):
            raise TargetError(f"{self.target} is a {type(maker).__name__}, not a class or a function")
        self._watch_installed_package(maker)
        record = self._build(maker, self._entry(maker))
        if record is None:
            raise TargetError(self.unbuilt[maker.__name__])
        return [record]

    def _entry(self, maker) -> dict:
        """The `[tool.nnlint.models]` entry naming this target as its factory, else the one named after it;
        `--input` wins over the entry's input."""
        by_factory = [entry for entry in self.configured_models.values() if entry.get("factory") == self.target]
        entry = by_factory[0] if by_factory else self.configured_models.get(maker.__name__, {})
        return entry | ({"input": self.cli_input} if self.cli_input else {})

    def _watch_installed_package(self, maker) -> None:
        """A target outside the project (`torchvision.models:resnet18`): its package's files are the code to watch."""
        source = getattr(sys.modules.get(maker.__module__), "__file__", None)
        if source is None or str(Path(source).resolve()) in self.user_files:
            return
        top = getattr(sys.modules[maker.__module__.partition(".")[0]], "__file__", None) or source
        files = Path(top).parent.rglob("*.py") if top.endswith("__init__.py") else [Path(source)]
        self.user_files = self.user_files | {name for path in files for name in (str(path), str(path.resolve()))}


def probe_target(job: dict, project: dict) -> dict:
    """The child's result for `nnlint probe` (see child.py for the shape it shares with file jobs)."""
    session = TargetSession(job["target"], job.get("input"), project)
    try:
        [record] = session.models
    except TargetError as error:
        return {"target_error": str(error)}
    found, failed = runtime_findings(session, [])
    return {
        "verdicts": {},
        "runtime_findings": [vars(f) for f in found],
        "failed": failed,
        "model": {"name": record.name, "built_with": record.probe.built_with, "input": record.probe.describe_input()},
        "files_run": sorted({site.path for site in _sites_run(session, record)}),
        **session.pass_counts(),
    }


def _sites_run(session: ProbeSession, record: ModelRecord) -> set:
    """The user's lines the model's forward ran (for the files and lines counted in the report)."""
    if record.probe.shapes_only:
        return {call.site for calls in record.layout.values() for call in calls}
    return session.eval_determinism(record).sites_run
