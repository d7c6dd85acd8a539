"""`nnlint probe MODULE:CALLABLE`: build one named model and run every probe that needs no finding
(child side, imports torch).

The target is a class or a factory function, imported from the current
directory, the project root or its `src/` with the same safe loading as
`--confirm`.
Its session owns every file the model's code runs in, so a problem in a
class defined elsewhere is still reported. Besides the universal probes
(nnlint.confirm.universal), two checks the static rules make only at a
finding run here on the whole model:

* eval randomness (NN301): in eval(), two forwards differ, first at a dropout
  call that does not pass `training`;
* stuck constant init (NN201): a weight set to a constant at the user's line
  gets no gradient, or identical gradient rows, after one probe backward,
  even with every other constant weight re-drawn (a norm layer in front of a
  zero-initialised head gets no gradient at step 0 only because of the head).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache, cached_property
from pathlib import Path

import torch

from nnlint.confirm.intercept import Site
from nnlint.confirm.models import BuildError, resolve_callable
from nnlint.confirm.protocol import MONTE_CARLO_CLASS, RuntimeFinding
from nnlint.confirm.safe_load import SafeImporter
from nnlint.confirm.session import ModelRecord, ProbeSession
from nnlint.confirm.universal import runtime_findings

# Deliberate Monte-Carlo dropout lives in classes named so: the convention of the static rule NN301
# (rules/nn301_functional_dropout_always_on.py), which the engine may not import.


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
    # The universal probes last: an eval-mode forward with gradients on (the per-sample check) leaves
    # graph tensors in some models' caches (timm's LeViT attention biases), which copy.deepcopy refuses.
    checks = {
        "eval randomness": eval_randomness,
        "stuck constant init": stuck_constant_inits,
        "universal": lambda session, record: runtime_findings(session, []),
    }
    found: list[RuntimeFinding] = []
    failed: list[str] = []
    for name, check in checks.items():
        with session.charging(name):
            try:
                found += check(session, record)
            except Exception as error:  # the model fails under this probe (Inception's train-mode aux head on
                # small inputs): the other probes still report
                failed.append(f"the {name} probe raised {type(error).__name__}: {str(error)[:200]}")
    return {
        "verdicts": {},
        "runtime_findings": [vars(f) for f in sorted(found, key=lambda f: (f.path, f.line, f.code))],
        "failed": failed,
        "model": {"name": record.name, "built_with": record.probe.built_with, "input": record.probe.describe_input()},
        "files_run": sorted({site.path for site in session.eval_determinism(record).sites_run}),
        **session.pass_counts(),
    }


def eval_randomness(session: ProbeSession, record: ModelRecord) -> list[RuntimeFinding]:
    """NN301 where no finding pointed: in eval(), the first call whose output differs between two
    forwards is a dropout that passes no `training` (random noise of other kinds may be the model's design)."""
    run = session.eval_determinism(record)
    site, call = run.first_random_site, run.first_random_call or ""
    if run.deterministic or site is None or "dropout" not in call or not session.owns(site.path):
        return []
    if _deliberate_dropout(site):
        return []
    probe = f"{record.name} on {record.probe.describe_input()}"
    evidence = f"in eval(), two forwards of {probe} differ by up to {run.max_difference:.3g}, first at this {call}()"
    data = {"model": record.name, "input": record.probe.describe_input(), "max_difference": run.max_difference}
    data["call"] = call
    message = f"`{call}` stays on after model.eval(); pass training=self.training or use an nn.Dropout module"
    return [RuntimeFinding("NN301", site.path, site.line, message, evidence, data)]


def _deliberate_dropout(site: Site) -> bool:
    """A dropout call at this line that passes `training` (any value: MC dropout writes True), or one inside
    a class named like MCDropout, as the static rule NN301 judges them."""
    tree = _parsed(site.path)
    if tree is None:
        return False
    for node in ast.walk(tree):
        if not getattr(node, "lineno", 0) <= site.line <= (getattr(node, "end_lineno", 0) or 0):
            continue
        if isinstance(node, ast.ClassDef) and MONTE_CARLO_CLASS.search(node.name):
            return True
        if isinstance(node, ast.Call) and "dropout" in ast.unparse(node.func):
            # F.dropout(input, p, training, inplace): training is the third argument.
            if len(node.args) >= 3 or any(keyword.arg in ("training", "train") for keyword in node.keywords):
                return True
    return False


@cache
def _parsed(path: str) -> ast.Module | None:
    try:
        return ast.parse(Path(path).read_bytes(), path)
    except (OSError, SyntaxError, ValueError):
        return None


def stuck_constant_inits(session: ProbeSession, record: ModelRecord) -> list[RuntimeFinding]:
    """NN201 where no finding pointed: lines that set weights to a constant, judged by `constant_init_learning`.

    At step 0 a weight also gets no gradient when a constant weight after it
    blocks the way (a zero-initialised head, a residual branch's zero gamma),
    which the first update lifts. So a line's stuck verdict must hold with the
    other constant weights re-drawn: first those that learnt (one backward for
    all lines), then, for each line still stuck, every other one.
    """
    init_sites = {call.site for call in record.init_calls if session.owns(call.site.path)}
    sites = sorted(init_sites, key=lambda site: (site.path, site.line))
    if not sites:
        return []
    learning = {site: session.constant_init_learning(record, site.path, site.line) for site in sites}
    gradients = session.gradients(record)
    # A parameter the forward never used has no gradient because of that, not because of its init.
    stuck = {
        site: {name for name, how in by_name.items() if how != "learns" and gradients[name] is not None}
        for site, by_name in learning.items()
    }
    suspects = set().union(*stuck.values())
    if not suspects:
        return []
    with _others_redrawn(record, session.seed, kept=suspects):
        unblocked = session.backward_probe(record, record.probe.module)
    found = []
    for site in sites:
        again = session.constant_init_learning(record, site.path, site.line, unblocked)
        if not any(again[name] != "learns" for name in stuck[site]):
            continue
        with _others_redrawn(record, session.seed, kept=set(learning[site])):
            alone_gradients = session.backward_probe(record, record.probe.module)
        alone = session.constant_init_learning(record, site.path, site.line, alone_gradients)
        verdicts = {name: alone[name] for name in sorted(stuck[site]) if alone[name] != "learns"}
        if verdicts:
            found.append(_stuck_finding(record, site, learning[site], verdicts, alone))
    return found


def _stuck_finding(record: ModelRecord, site: Site, set_here: dict, verdicts: dict, alone: dict) -> RuntimeFinding:
    calls = sorted({call.call for call in record.init_calls if call.site == site})
    examples = ", ".join(f"{name} ({how})" for name, how in list(verdicts.items())[:3])
    evidence = (
        f"after one backward of {record.name} (every other constant weight re-drawn), "
        f"{len(verdicts)} of {len(set_here)} weights set here are stuck: {examples}"
    )
    message = f"{'/'.join(calls)}() sets weights to a constant that never learn or never break symmetry"
    data = {"model": record.name, "parameters": {name: alone[name] for name in set_here}}
    return RuntimeFinding("NN201", site.path, site.line, message, evidence, data)


@contextmanager
def _others_redrawn(record: ModelRecord, seed: int, kept: set[str]) -> Iterator[None]:
    """The model with the parameters that were constant when built, but those in `kept`, re-drawn;
    restored after (in place: a copy of the model costs memory, and some models refuse deepcopy)."""
    module = record.probe.module
    generator = torch.Generator().manual_seed(seed)
    redrawn = []
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            initial = record.initial_parameters[name]
            if name not in kept and bool((initial == initial.flatten()[0]).all()):
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
                redrawn.append((parameter, initial))
    try:
        yield
    finally:
        with torch.no_grad():
            for parameter, initial in redrawn:
                parameter.copy_(initial)
