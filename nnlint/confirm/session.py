"""One file's probe session: its models, built once, and the probe results every check shares
(child side, imports torch). A rule's `runtime_check` receives it.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnlint.confirm import coupling
from nnlint.confirm.intercept import INIT_FUNCTIONS, CallWatcher, LayoutCall, Site, install_layout_hooks, recording_layout, tensors_in
from nnlint.confirm.models import (
    BuildError,
    InputSpec,
    ProbeModel,
    as_sequence,
    build,
    fit_input,
    infer_input,
    out_of_memory,
    parse_input_spec,
    resolve_callable,
    shapes_only_reason,
)
from nnlint.confirm.safe_load import STOOD_IN, MissingModuleUsed, SafeImporter, install_stand_ins, loading_user_modules, module_name

# Calls that can leave a tensor constant; recorded during construction with the user's line when the
# user's code makes them (torch's own defaults, such as LayerNorm's weight of ones, are not the user's choice).
INIT_CALLS = frozenset({
    "zeros_", "ones_", "constant_", "zero_", "fill_", "zeros", "ones", "full", "zeros_like", "ones_like", "full_like",
    "copy_", "__setitem__", "new_zeros", "new_ones", "new_full",  # w.data.copy_(...), w[:] = 0.01, a new nn.Parameter
})  # fmt: skip
_CREATED = frozenset({"zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "new_zeros", "new_ones", "new_full"})


@dataclass
class InitCall:
    site: Site
    call: str
    data_ptr: int


@dataclass
class Determinism:
    """Two eval-mode forwards on one input: do they agree, and if not, which call first differed."""

    deterministic: bool
    max_difference: float
    first_random_site: Site | None
    sites_run: set[Site] = field(default_factory=set)
    first_random_call: str | None = None  # the torch function that ran there, e.g. "dropout"
    # Every call found random, in order: (site, call, max |difference| of its output). The second forward
    # replays each random call's output from the first, so that the calls after it are judged on their own.
    random_sites: list[tuple[Site, str, float]] = field(default_factory=list)
    judged_sites: set[Site] = field(default_factory=set)  # run before anything stopped the replay

    def random_at(self, path: str, line: int) -> tuple[Site, str, float] | None:
        return next((found for found in self.random_sites if (found[0].path, found[0].line) == (path, line)), None)


@dataclass
class ModelRecord:
    """A built model plus what was seen while building and probing it."""

    probe: ProbeModel
    init_calls: list[InitCall] = field(default_factory=list)
    passes: dict[str, int] = field(default_factory=lambda: {"forward": 0, "backward": 0})
    passes_by_check: dict[str, dict[str, int]] = field(default_factory=dict)  # the same passes, by check
    fit_forwards: int = 0  # forwards spent finding input sizes the model accepts, before any check
    determinism: Determinism | None = None
    initial_parameters: dict[str, torch.Tensor] = field(default_factory=dict)
    layout: dict[int, list[LayoutCall]] = field(default_factory=dict)  # by probe, from the fitting forwards
    batch_coupling: Any = None  # coupling.BatchCoupling, once probed
    causal_leak: Any = None  # coupling.CausalLeak, once probed
    init_verdicts: Any = None  # stuck_init.InitVerdict by site, once probed
    failed_probes: list[str] = field(default_factory=list)  # the universal probes that raised on it

    @property
    def name(self) -> str:
        return self.probe.name


class ProbeSession:
    """Loads the file (safely, see safe_load), builds its models, and runs probes on demand, once each."""

    def __init__(self, path: str, project: dict[str, Any]) -> None:
        self.path = path
        self.root = Path(project["root"])
        self.user_files = set(project["files"])
        self.seed = int(project["seed"])
        self.full_import = bool(project["full_import"])
        self.training_step: str | None = project.get("training_step")  # NN508's, "pkg.module:function"
        self.configured_models: dict[str, dict] = project["models"]
        self.constructor_calls: dict[str, list[dict]] = project["constructor_calls"]
        self.unbuilt: dict[str, str] = {}  # class name -> why it could not be built or probed
        self.missing: dict[str, str] = {}  # class name -> the package, not installed, it used and where
        self.check = "unattributed"  # who pays for the passes run now (see `charging`)
        self.memory_mb: int | None = project.get("memory_mb")  # the probe process's cap, for messages
        self.on_model: Callable[[str], None] = lambda name: None  # told each model as it is built (progress)
        self._built_by_name: dict[Any, ModelRecord | None] = {}  # models of other files, built on request
        self._imports_prepared = False
        install_layout_hooks()  # before the user's modules import torch's functions by name

    # -- loading and building -------------------------------------------------------------

    @cached_property
    def module(self):
        self._prepare_imports()
        with loading_user_modules():
            return importlib.import_module(module_name(Path(self.path))[0])

    @property
    def stand_ins(self) -> list[str]:
        """The packages, not installed, that the file's imports got stand-ins for (safe_load)."""
        return list(STOOD_IN)

    def _prepare_imports(self) -> None:
        """The file's directory (or package root) and the project root on sys.path, safe loading on; once."""
        if self._imports_prepared:
            return
        self._imports_prepared = True
        _, import_root = module_name(Path(self.path))
        for entry in (str(import_root), str(self.root)):
            if entry not in sys.path:
                sys.path.insert(0, entry)
        if not self.full_import:
            SafeImporter([self.root, import_root]).install()
            install_stand_ins([self.root, import_root], self.user_files)

    def resolve(self, target: str) -> Callable:
        """A configured `pkg.module:function` (a factory, a training step), imported as the file's own
        modules are (models.resolve_callable: BuildError naming the missing part)."""
        self._prepare_imports()
        with loading_user_modules():
            return resolve_callable(target)

    @cached_property
    def models(self) -> list[ModelRecord]:
        """Every nn.Module class of the file that can be built and run, outermost models first."""
        classes = [
            obj for obj in vars(self.module).values()
            if isinstance(obj, type) and issubclass(obj, nn.Module) and obj.__module__ == self.module.__name__
        ]  # fmt: skip
        records = [record for record in map(self._build, classes) if record is not None]
        contained = {type(sub) for r in records for sub in r.probe.module.modules() if sub is not r.probe.module}
        return sorted(records, key=lambda r: type(r.probe.module) in contained)

    def _build(self, cls: type, configured: dict | None = None) -> ModelRecord | None:
        """`cls` built and fitted to a probe input, by its config entry (or `configured`, when given)."""
        configured = self.configured_models.get(cls.__name__, {}) if configured is None else configured
        self.on_model(cls.__name__)
        init_calls: list[InitCall] = []

        def record_init(name, args, kwargs, result, site):
            if name in _CREATED:
                target = result
            else:  # nn.init.constant_ reaches the mode with its tensor as a keyword
                target = args[0] if args else kwargs.get("tensor")
            if isinstance(target, torch.Tensor) and target.numel():
                init_calls.append(InitCall(site, name, target.data_ptr()))

        seen_calls = self.constructor_calls.get(cls.__name__, [])
        try:
            try:
                with CallWatcher(self.user_files, record_init, INIT_CALLS, through=INIT_FUNCTIONS):
                    module, built_with = build(cls, configured, seen_calls, self.seed)
                shapes_only = ""
            except Exception as error:  # too big for the memory cap: its shapes can still be checked
                if not out_of_memory(error):
                    raise
                init_calls.clear()
                module, built_with = build(cls, configured, seen_calls, self.seed, device="meta")
                shapes_only = shapes_only_reason(cls.__name__, module, self.memory_mb)
            spec: InputSpec = parse_input_spec(configured["input"]) if "input" in configured else infer_input(module, self.user_files)
            probe = ProbeModel(cls.__name__, module, built_with, spec, causal=configured.get("causal", False))
            probe.shapes_only = shapes_only
            layout: dict[int, list[LayoutCall]] = {}
            fit_forwards = self._fit(probe, layout)
        except BuildError as error:
            self.unbuilt[cls.__name__] = str(error)
            return None
        except MissingModuleUsed as error:  # it uses a package that is not installed: NN902 names it
            self.unbuilt[cls.__name__] = self.missing[cls.__name__] = error.needs(cls.__name__)
            return None
        except Exception as error:  # the user's constructor or forward failed: unverifiable, with why
            self.unbuilt[cls.__name__] = f"{cls.__name__} failed while being built or run: {type(error).__name__}: {error}"
            return None
        record = ModelRecord(probe, init_calls, fit_forwards=fit_forwards, layout=layout)
        if not shapes_only:
            record.initial_parameters = {name: p.detach().clone() for name, p in module.named_parameters()}
        return record

    def _fit(self, probe: ProbeModel, layout: dict[int, list[LayoutCall]]) -> int:
        """`fit_input`, recording the layout trace; a model with a first Linear that rejects (B, F) is
        tried on (B, T, F). The forwards it ran."""
        trace = lambda index: self._tracing_layout(layout, index)  # noqa: E731
        try:
            return fit_input(probe, self.seed, trace)
        except BuildError as error:
            sequence = as_sequence(probe.spec)
            if sequence is None:
                raise
            probe.spec = sequence
            try:
                return fit_input(probe, self.seed, trace)
            except BuildError:
                raise error from None

    def model_named(self, name: str | None) -> tuple[ModelRecord | None, str]:
        """The model a training script builds with `name(...)` (`Net`, `models.Net`, as the file spells it),
        built as the file's own classes are; (None, why) when it cannot be found, built or run."""
        if not name:
            return None, "the static pass could not tell which class builds the model"
        maker: Any = self.module
        for part in name.split("."):
            maker = getattr(maker, part, None)
        if not callable(maker):
            return None, f"`{name}` is not defined in {Path(self.path).name} once imported"
        for record in self.models:
            if type(record.probe.module) is maker:
                return record, ""
        if maker not in self._built_by_name:
            self._built_by_name[maker] = self._build(maker)
        record = self._built_by_name[maker]
        if record is None:
            return None, self.unbuilt.get(getattr(maker, "__name__", name), f"`{name}` could not be built")
        return record, ""

    def models_covering(self, path: str, line: int, shapes_will_do: bool = False) -> list[ModelRecord]:
        """Built models that contain a module class whose source spans path:line; those built on the
        meta device only for a check that needs no numbers (`shapes_will_do`)."""
        return [
            record for record in self.models
            if (shapes_will_do or not record.probe.shapes_only)
            and (
                any(_spans(type(sub), path, line) for sub in record.probe.module.modules())
                # an init function outside the classes (`self.apply(init)`, a loop over modules()) ran there
                or any(call.site.path == path and call.site.line == line for call in record.init_calls)
            )
        ]  # fmt: skip

    def owns(self, path: str) -> bool:
        """Whether a runtime finding in `path` is this session's to report (another file's is that file's job's)."""
        return path == self.path

    def why_uncovered(self, path: str, line: int) -> str:
        """The `unverifiable` reason when no built model covers path:line (for the check that asked)."""
        too_big = [record.probe.shapes_only for record in self.models_covering(path, line, shapes_will_do=True)]
        if too_big or self.unbuilt:
            return "; ".join([*too_big, *self.unbuilt.values()])
        return f"no model built from {Path(path).name} runs line {line}"

    # -- probes ---------------------------------------------------------------------------

    @contextmanager
    def charging(self, check: str) -> Iterator[None]:
        """The passes run inside are counted for `check` (bench/confirm_cost.py shows what each check costs)."""
        previous, self.check = self.check, check
        try:
            yield
        finally:
            self.check = previous

    def count_pass(self, record: ModelRecord, kind: str) -> None:
        record.passes[kind] += 1
        by_check = record.passes_by_check.setdefault(self.check, {"forward": 0, "backward": 0})
        by_check[kind] += 1

    def pass_counts(self) -> dict[str, dict]:
        """The forward/backward passes each built model cost: in all, by check, and fitting its input."""
        built = self.__dict__.get("models", [])  # never built: nothing was asked of the file's models
        return {
            "passes": {record.name: record.passes for record in built},
            "costs": {r.name: {"by_check": r.passes_by_check, "fit_forwards": r.fit_forwards} for r in built},
        }

    def model_counts(self) -> dict[str, int]:
        """The file's models built (fitted to a probe input) and probed (every universal probe ran on
        real numbers): the JSON report's `stats.confirm` sums them over the files."""
        built = self.__dict__.get("models", [])
        probed = [r for r in built if not r.probe.shapes_only and not r.failed_probes]
        return {"built": len(built), "probed": len(probed)}

    def forward(self, record: ModelRecord, probe: int = 0, train: bool = False):
        record.probe.module.train(train)
        self.count_pass(record, "forward")
        return record.probe.module(record.probe.probe_input(probe, self.seed))

    def eval_determinism(self, record: ModelRecord) -> Determinism:
        """Two eval forwards on the same input, every torch call's output fingerprinted by site.

        It runs on a copy whose constant weights are re-drawn: a zero-initialised layer (NN201)
        feeds zeros to the dropout after it, and dropout of zeros looks deterministic.
        """
        if record.determinism is None:
            module = copy.deepcopy(record.probe.module).eval()
            generator = torch.Generator().manual_seed(self.seed)
            with torch.no_grad():
                for parameter in module.parameters():
                    if parameter.numel() > 1 and parameter.is_floating_point() and bool((parameter == parameter.flatten()[0]).all()):
                        parameter.copy_(torch.randn(parameter.shape, generator=generator))
            torch.manual_seed(self.seed)  # the evidence must not depend on which probes ran before
            replay = _Replay()
            outputs = []
            for run in (replay.record, replay.compare):
                with torch.no_grad(), CallWatcher(self.user_files, run):
                    outputs.append(tensors_in(module(record.probe.probe_input(0, self.seed))))
                    self.count_pass(record, "forward")
            out1, out2 = outputs
            difference = max((float((a - b).abs().max()) for a, b in zip(out1, out2) if a.numel()), default=0.0)
            difference = max([difference, *(found[2] for found in replay.random)])
            site, call, _ = replay.random[0] if replay.random else (None, None, None)
            sites_run = {s for s, _, _ in replay.first}
            record.determinism = Determinism(
                not replay.random and difference == 0.0, difference, site, sites_run, call, replay.random, replay.judged
            )
        return record.determinism

    @contextmanager
    def _tracing_layout(self, traces: dict[int, list[LayoutCall]], probe: int) -> Iterator[None]:
        """The layout calls of one fitting forward become the trace of its probe (the last try wins)."""
        with recording_layout(self.user_files) as calls:
            yield
        traces[probe] = calls

    def layout_trace(self, record: ModelRecord, probe: int = 0) -> list[LayoutCall]:
        """Every view/reshape/flatten/permute/transpose the user's code made in an eval forward of the probe
        (recorded while the input was fitted, so it costs no pass of its own)."""
        if probe not in record.layout:
            with recording_layout(self.user_files) as calls, torch.no_grad():
                self.forward(record, probe)
            record.layout[probe] = calls
        return record.layout[probe]

    def batch_coupling(self, record: ModelRecord):
        """NN102's per-sample gradient probe (nnlint.confirm.coupling), once per model."""
        if record.probe.shapes_only:
            return coupling.BatchCoupling(record.name, reason=record.probe.shapes_only)
        if record.batch_coupling is None:
            with self.charging("NN102"):
                record.batch_coupling = coupling.batch_coupling(self, record)
        return record.batch_coupling

    def causal_leak(self, record: ModelRecord):
        """NN103's per-step gradient probe, once per model (after the batch probe, which it relies on)."""
        if record.causal_leak is None:
            across_samples = self.batch_coupling(record)
            with self.charging("NN103"):
                record.causal_leak = coupling.causal_leak(self, record, across_samples)
        return record.causal_leak


# Torch calls that draw random numbers: in the second eval forward, their output is replaced by the first's.
_RANDOM_CALLS = frozenset({
    "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout", "feature_dropout",
    "native_dropout", "bernoulli", "bernoulli_", "rand", "randn", "rand_like", "randn_like", "randint", "randint_like",
    "randperm", "normal", "normal_", "uniform_", "multinomial", "poisson", "exponential_", "geometric_", "cauchy_",
    "log_normal_", "random_", "rrelu", "rrelu_",
})  # fmt: skip


class _Replay:
    """Two eval forwards, call by call: the first records each call's fingerprint (and the output of the
    calls that draw random numbers); the second compares, and where a random call's output differs, puts
    the first forward's output in its place, so that each later random call is judged on the same inputs
    (two functional dropouts: both are found, not only the first). A differing call that draws nothing,
    or control flow that parts, ends the comparison: what follows is its consequence."""

    def __init__(self) -> None:
        self.first: list[tuple[Site, str, float]] = []
        self.kept: dict[int, list[torch.Tensor]] = {}
        self.random: list[tuple[Site, str, float]] = []
        self.judged: set[Site] = set()
        self.index = 0
        self.stopped = False

    @staticmethod
    def _fingerprint(result) -> float:
        return sum(float(t.detach().double().sum()) for t in tensors_in(result) if t.is_floating_point())

    def record(self, name, args, kwargs, result, site) -> None:
        if name in _RANDOM_CALLS and not _passed_through(name, args, result):
            self.kept[len(self.first)] = [t.detach().clone() for t in tensors_in(result)]
        self.first.append((site, name, self._fingerprint(result)))

    def compare(self, name, args, kwargs, result, site) -> None:
        index, self.index = self.index, self.index + 1
        if self.stopped or index >= len(self.first) or self.first[index][:2] != (site, name):
            self.stopped = True
            return
        self.judged.add(site)
        if self._fingerprint(result) == self.first[index][2]:
            return
        kept, now = self.kept.get(index), tensors_in(result)
        same_shapes = kept is not None and [t.shape for t in kept] == [t.shape for t in now]
        difference = max((float((a - b).abs().max()) for a, b in zip(kept, now) if a.numel()), default=0.0) if same_shapes else 0.0
        self.random.append((site, name, difference))
        if not same_shapes:
            self.stopped = True  # nothing to replay: what follows differs because of this call
            return
        for tensor, value in zip(now, kept):
            tensor.copy_(value)


def _passed_through(name: str, args: tuple, result) -> bool:
    """A dropout in eval (or with p=0) hands back its input: nothing drawn, nothing to keep."""
    if name.endswith("_") or not args or not isinstance(args[0], torch.Tensor):
        return False
    outputs = tensors_in(result)
    return len(outputs) == 1 and outputs[0].data_ptr() == args[0].data_ptr() and outputs[0].shape == args[0].shape


def _spans(cls: type, path: str, line: int) -> bool:
    try:
        if inspect.getsourcefile(cls) != path:
            return False
        lines, start = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return False
    return start <= line < start + len(lines)
