"""What a rule is, and how the engine finds the rules.

A rule is one class in one file of `rules/` (installed as `nnlint.rules`).
It carries its documentation (the class docstring, in ruff's sections), its
examples (which the test-suite runs), its static check (libcst `visit_<Node>`
/ `leave_<Node>` methods called during the engine's single traversal) and a
slot for its runtime confirmation. The engine imports every module of the
package and collects the `Rule` subclasses, so adding a rule touches no
engine file.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

import libcst as cst

if TYPE_CHECKING:
    from nnlint.context import FileContext

SEVERITIES = ("error", "warning", "info")
EXPECTED_MARKER = "# <--"
CODE_PATTERN = re.compile(r"^NN\d{3}$")


@dataclass(frozen=True)
class Example:
    """A code snippet in a rule's docs and tests.

    In a bad example every line ending in `# <--` must be reported, and no
    other; `message` (optional) must appear in each finding's message;
    `fixed` is the code once every safe fix is applied (`--fix`), and a bad
    example without it must get no fix. A good example must give no
    finding; traps from RULES.md are good examples whose `note` says which
    trap they are.
    """

    code: str
    note: str = ""
    message: str | None = None
    fixed: str | None = None

    @property
    def expected_lines(self) -> list[int]:
        return [n for n, text in enumerate(self.code.splitlines(), 1) if text.rstrip().endswith(EXPECTED_MARKER)]


@dataclass(frozen=True)
class Replacement:
    """A safe fix as a rule states it: put the node `new` where the node `old` is.

    The engine turns it into the minimal text edit (nnlint.edits). Rules attach one only when the
    change cannot alter what correct code does (ruff's "safe" fixes); otherwise they report without.
    """

    title: str  # what the fix does, e.g. "Pass training=self.training"
    old: cst.CSTNode
    new: cst.CSTNode


@dataclass
class Report:
    """A finding before positions are known: the engine turns it into a `Finding`."""

    node: cst.CSTNode
    message: str
    statement: cst.CSTNode | None
    facts: dict[str, Any] | None = None
    fix: Replacement | None = None


class Rule:
    """Base class of every rule. Subclasses set the class attributes and visit methods."""

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[str]
    summary: ClassVar[str]
    # A file is only checked by this rule if its text contains one of these
    # substrings; files that match no selected rule are not even parsed.
    triggers: ClassVar[tuple[str, ...]]
    bad: ClassVar[list[Example]]
    good: ClassVar[list[Example]]
    # Off unless selected by code or prefix (recipe advice, RULES.md "info").
    default_enabled: ClassVar[bool] = True
    # The confirm pass's check for this rule (see nnlint.confirm); None: static only.
    runtime_check: ClassVar[Any] = None
    # False for an R-only rule (RULES.md): only the confirm pass reports it, its `triggers` are empty
    # so the static pass never runs it, and its examples are checked by a runtime test.
    static: ClassVar[bool] = True

    def __init__(self, context: FileContext) -> None:
        self.context = context
        self.reports: list[Report] = []

    def report(
        self, node: cst.CSTNode, message: str, facts: dict[str, Any] | None = None, fix: Replacement | None = None
    ) -> None:
        """Report `node`. `facts` is what the static check learnt that its runtime check needs
        (e.g. a scheduler's arguments and the training length); it is not printed. `fix` is a safe
        fix, applied by `--fix`, shown by `--diff`, offered by editors."""
        self.reports.append(Report(node, message, self.context.current_statement(), facts, fix))

    @classmethod
    def fixable(cls) -> bool:
        """Whether some findings of this rule come with a safe fix (its bad examples show one)."""
        return any(example.fixed is not None for example in cls.bad)

    @classmethod
    def docs(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")


def _is_rule_class(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, Rule) and obj is not Rule and "code" in vars(obj)


@cache
def all_rules() -> tuple[type[Rule], ...]:
    """Every rule shipped in `nnlint.rules`, sorted by code."""
    import nnlint.rules as package

    found: dict[str, type[Rule]] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for obj in vars(module).values():
            if _is_rule_class(obj) and obj.__module__ == module.__name__:
                if obj.code in found:
                    raise RuntimeError(f"two rules claim {obj.code}: {found[obj.code].__name__}, {obj.__name__}")
                found[obj.code] = obj
    return tuple(found[code] for code in sorted(found))


def rule_by_code(code: str) -> type[Rule] | None:
    return next((rule for rule in all_rules() if rule.code == code.upper()), None)
