"""One model of the training script, computed once per file and shared by every rule that asks.

- `index`: where the file's functions, classes and bindings are (`nnlint.script.index`);
- `roles`: which names hold a model, optimizer, scheduler, loss, loader, dataset (`roles`);
- `timeline`: the run as the file executes it, through its own functions (`timeline`);
- `training`: the training iterations, their epoch loops, and each model's train/eval mode at each
  of its calls (`training`);
- `flow`: where a tensor's value comes from within a function (`dataflow`);
- `executed_iterations`: the training iterations that run when the file itself is executed (`executed`);
- `evaluation`: the model calls that evaluate or predict rather than train (`evaluation`);
- `objects`: which object a name holds at a line, through wrappers, helpers and re-bindings (`objects`);
- `statements`: order within one function: what runs after what, in which exclusive arm (`statements`);
- `constants`: the numbers the file gives its names and settings (`constants`);
- `length`: how long the run trains, and whether a line runs per batch or per epoch (`length`);
- `schedules`: the LR schedulers and hand-written decays, and where each is stepped (`schedules`);
- `outputs`: what each model's forward returns, and where a model's output meets a loss (`outputs`);
- `layouts`: each tensor's symbolic dims within a function, through layers, views and permutes (`layout`).

Each part is built on first use, at the end of the traversal (rules ask from `leave_Module`, when the
import table is complete), so a rule that needs only the roles never pays for the timeline.
"""

from __future__ import annotations

from functools import cached_property

from nnlint.context import FileContext
from nnlint.script.constants import Constants
from nnlint.script.dataflow import DataFlow
from nnlint.script.evaluation import Evaluation
from nnlint.script.executed import executed_iterations
from nnlint.script.index import FileIndex
from nnlint.script.length import RunLength
from nnlint.script.modules import mode_free
from nnlint.script.objects import Objects
from nnlint.script.outputs import Outputs
from nnlint.script.roles import Roles
from nnlint.script.schedules import Schedules
from nnlint.script.statements import Statements
from nnlint.script.timeline import Timeline
from nnlint.script.training import Iteration, Training


class Script:
    def __init__(self, context: FileContext) -> None:
        self.context = context

    @cached_property
    def index(self) -> FileIndex:
        return FileIndex(self.context)

    @cached_property
    def roles(self) -> Roles:
        return Roles(self.index)

    @cached_property
    def timeline(self) -> Timeline:
        return Timeline(self.index, self.roles)

    @cached_property
    def training(self) -> Training:
        return Training(self.timeline)

    @cached_property
    def flow(self) -> DataFlow:
        return DataFlow(self.index, self.roles)

    @cached_property
    def evaluation(self) -> Evaluation:
        return Evaluation(self.index, self.roles, self.timeline, self.training)

    @cached_property
    def executed_iterations(self) -> list[Iteration]:
        """The training iterations that run when this file is executed (not a library's step functions)."""
        return executed_iterations(self.index, self.training)

    @cached_property
    def constants(self) -> Constants:
        """The numbers the file gives its names and settings: `constants.value(expr, function)` (`constants`)."""
        return Constants(self.index)

    @cached_property
    def length(self) -> RunLength:
        """How long the run trains and how often a line runs, per batch or per epoch (`length`)."""
        return RunLength(self.index, self.roles, lambda: self.timeline, self.constants)

    @cached_property
    def schedules(self) -> Schedules:
        """The LR schedulers with their arguments and steps, and decays written by hand (`schedules`)."""
        return Schedules(self.index, lambda: self.timeline, self.constants, self.length)

    @cached_property
    def statements(self) -> Statements:
        """Statement order within each function (`statements.of(function)`): runs after, exclusive
        branches, names read and written between two statements (`statements`)."""
        return Statements(self.context)

    @cached_property
    def objects(self) -> Objects:
        """Which object a name holds where it is read, and which of its assignments that read sees (`objects`)."""
        return Objects(self.index, self.flow)

    @cached_property
    def outputs(self) -> Outputs:
        """What each model class's forward returns (softmax, log_softmax, sigmoid, logits) and where a
        model's output meets a loss (`outputs`)."""
        return Outputs(self)

    @cached_property
    def layouts(self):
        """Symbolic tensor layouts per function: views read as dims, layouts at each call (`layout`)."""
        from nnlint.script.layout import Layouts

        return Layouts(self.context, self.index)

    def mode_free(self, subject: str, scope) -> bool:
        """The model named `subject` (in `scope`) has no layer whose output depends on train/eval mode."""
        return mode_free(self.index, self.roles, subject, scope)

    def owns(self, node) -> bool:
        """The node is in the linted file (not in a project file the timeline followed a call into)."""
        return self.context.where(node)[0] is self.context

    def line(self, node) -> int:
        """The node's line, in whichever file it is (`at` says which)."""
        return self.context.where(node)[1].start.line

    def at(self, node) -> str:
        """Where a node is, for messages: "line 41" here, "engine.py:41" in another project file."""
        return self.context.at(node)

    def quote(self, event) -> str:
        """An event's code for messages, with where it is when that is another file:
        "`model.eval()` (engine.py:13, run by `evaluate(model, val_loader)`)"."""
        return f"`{self.code(event.node)}`{self.elsewhere(event.node, event.entry)}"

    def elsewhere(self, node, entry) -> str:
        """" (engine.py:13, run by `evaluate(model, val_loader)`)" for a node of another file that the call
        `entry` of this file leads to; "" without an entry."""
        if entry is None:
            return ""
        call = self.code(entry)
        if len(call) > 60:
            call = f"{self.code(entry.func)}(...)"
        return f" ({self.at(node)}, run by `{call}`)"

    def code(self, node) -> str:
        """The source of a node on one line, for messages."""
        return " ".join(self.context.module.code_for_node(node).split())

    def reports(self, found):
        """Each node once (a function inlined at two call sites gives its events twice), and only the
        linted file's own: what a followed call finds in another project file is reported when that
        file is linted, unless a rule moves it to the call that led there (`Event.site`)."""
        seen = set()
        for item in found:
            node = item[0]
            if id(node) not in seen and self.owns(node):
                seen.add(id(node))
                yield item


def script_model(context: FileContext) -> Script:
    """The script model of the file being linted, built by whichever rule asks first."""
    return context.shared(Script, lambda: Script(context))
