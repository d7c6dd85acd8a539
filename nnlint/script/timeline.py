"""The training run as the file executes it: the events that matter, in order, through called functions.

The script is read from its entry points (the module's own statements, and every function the file
never calls, such as a `main` run from elsewhere or a Trainer method), with each call of a function of
the file replaced by that function's timeline (its parameters renamed to the caller's arguments, so
`validate(net)` and `model.eval()` inside `validate(model)` speak of the same `net`). A call of a
function of another project file (`from engine import train_one_epoch`) is followed the same way,
that file's code read with that file's imports and roles; its events carry the call of this file that
led there (`entry`), where a rule reports what it finds there. The result is a tree: events, loops and
branches. Loop, order, mode and gradient rules all read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from nnlint.context import FileContext
from nnlint.names import dotted_name
from nnlint.script.index import FileIndex
from nnlint.script.roles import MODEL, OPTIMIZER, SCHEDULER, Roles, argument_for, _unwrap
from nnlint.tree import child_nodes, descendants

ZERO_GRAD, BACKWARD, CLIP, STEP, SCHEDULER_STEP, EVAL, TRAIN, SET_MODE, MODEL_CALL, CREATE, NEXT_BATCH = (
    "zero_grad", "backward", "clip", "step", "scheduler.step", "eval", "train", "train(flag)", "model call",
    "create", "next(iter(loader))",
)  # fmt: skip
_CLIP_FUNCTIONS = ("clip_grad_norm_", "clip_grad_value_", "clip_grad_norm", "clip_grad_value")
_BACKWARD_FUNCTIONS = ("backward", "manual_backward")  # torch.autograd.backward, accelerator/fabric/Lightning
_NO_GRAD = ("torch.no_grad", "torch.inference_mode", "torch.autograd.no_grad", "torch.autograd.grad_mode.no_grad")
_MAX_INLINE_DEPTH = 4


@dataclass(frozen=True)
class Event:
    kind: str
    node: cst.CSTNode  # the call (or `p.grad = None` assignment) in the source
    subject: str | None  # the object acted on, named as the entry point knows it ("net", "optimizer")
    function: cst.FunctionDef | None  # where the code of the event is
    via: tuple[cst.Call, ...]  # the calls of the file's functions that led here, outermost first
    guarded: bool  # under an `if` (inside the innermost loop or inlined function around it)
    no_grad: bool  # inside `torch.no_grad()` / `inference_mode()`, here or around a call leading here
    closure: bool = False  # `optimizer.step(closure)`: the closure computes the gradients itself
    functions: tuple[cst.FunctionDef, ...] = ()  # the functions the run is inside: the root's, then each callee
    entry: cst.Call | None = None  # the call of the linted file that led into another file's code

    @property
    def site(self) -> cst.CSTNode:
        """Where in the linted file to report this event: itself, or the call that led to it."""
        return self.entry or self.node


@dataclass
class Loop:
    node: cst.For | cst.While
    body: list = field(default_factory=list)
    via: tuple[cst.Call, ...] = ()
    function: cst.FunctionDef | None = None
    iterates: str | None = None  # the name a `for` loop iterates over, as the entry point knows it
    entry: cst.Call | None = None  # as for events: the call of the linted file that led to this loop

    @property
    def site(self) -> cst.CSTNode:
        return self.entry or self.node


@dataclass
class Branch:
    arms: list[list]
    exhaustive: bool  # an `else` exists: one of the arms always runs


Item = Event | Loop | Branch


@dataclass
class Root:
    """An entry point: the module's statements (models start in train mode there) or an uncalled function."""

    node: cst.Module | cst.FunctionDef
    body: list[Item]

    @property
    def is_module(self) -> bool:
        return isinstance(self.node, cst.Module)


@dataclass(frozen=True)
class Source:
    """The file whose code the builder reads: the linted one, or a project file a call led into."""

    index: FileIndex
    roles: Roles

    @property
    def context(self) -> FileContext:
        return self.index.context


class Timeline:
    def __init__(self, index: FileIndex, roles: Roles) -> None:
        self.index = index
        self.context = index.context
        home = Source(index, roles)
        called = {self.index.callee(call, caller) for call, caller in index.calls}
        self.roots = [Root(self.context.module, self._block(self.context.module.body, _Frame.top(None, home)))]
        for functions in index.functions.values():
            for function in functions:
                if function not in called and not self._nested(function):
                    frame = _Frame.top(function, home)
                    if decorated_without_grad(self.context, function):
                        frame = frame.without_grad()
                    self.roots.append(Root(function, self._block(_body(function), frame)))

    def _nested(self, function: cst.FunctionDef) -> bool:
        return self.index.parent_function.get(function) is not None

    # -- building -------------------------------------------------------------------------

    def _block(self, statements, frame: _Frame) -> list[Item]:
        items: list[Item] = []
        for statement in statements:
            items.extend(self._statement(statement, frame))
        return items

    def _statement(self, node: cst.CSTNode, frame: _Frame) -> list[Item]:
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            return []
        if isinstance(node, cst.SimpleStatementLine):
            return [item for small in node.body for item in self._simple(small, frame)]
        if isinstance(node, cst.If):
            items = self._expression(node.test, frame)
            if is_main_guard(node.test):
                return items + self._block(_body(node), frame)
            arms = [self._block(_body(node), frame.guard())] if not _dead_end(node) else []
            orelse = node.orelse
            while isinstance(orelse, cst.If):  # elif chains are arms of one branch
                items += self._expression(orelse.test, frame)
                if not _dead_end(orelse):
                    arms.append(self._block(_body(orelse), frame.guard()))
                orelse = orelse.orelse
            if orelse is not None and not _dead_end(orelse):
                arms.append(self._block(_body(orelse), frame.guard()))
            return items + [Branch(arms, orelse is not None)]
        if isinstance(node, (cst.For, cst.While)):
            head = self._expression(node.iter if isinstance(node, cst.For) else node.test, frame)
            iterates = self._subject(_iterated(node.iter), frame) if isinstance(node, cst.For) else None
            loop = Loop(node, via=frame.via, function=frame.function, iterates=iterates, entry=frame.entry)
            loop.body = self._block(_body(node), frame.enter_loop())
            return head + [loop]
        if isinstance(node, cst.With):
            items = [item for with_item in node.items for item in self._expression(with_item.item, frame)]
            inner = frame.without_grad() if any(disables_grad(frame.home.context, w.item) for w in node.items) else frame
            return items + self._block(_body(node), inner)
        if isinstance(node, cst.Try):
            items = self._block(_body(node), frame)
            handlers = [self._block(_body(handler), frame.guard()) for handler in node.handlers]
            if handlers:
                items.append(Branch([[], *handlers], False))
            if node.finalbody is not None:
                items += self._block(_body(node.finalbody), frame)
            return items
        return []

    def _simple(self, node: cst.CSTNode, frame: _Frame) -> list[Item]:
        items = self._expression(node, frame)
        if isinstance(node, cst.Assign):
            for target in node.targets:
                if _is_grad_attribute(target.target) and isinstance(node.value, cst.Name) and node.value.value == "None":
                    items.append(frame.event(ZERO_GRAD, node, None))
                name = dotted_name(target.target)
                if name and self._creates_model(node.value, name, frame):
                    items.append(frame.event(CREATE, node, frame.rename(name)))
        return items

    def _creates_model(self, value: cst.BaseExpression, name: str, frame: _Frame) -> bool:
        """`model = Net()`, `net = models.resnet18()`, `model = ImportedNet()` for a name holding a model: a
        new module, in train mode. Not `model = model.to(device)`, nor `model = load(path)` (it may return
        a model in eval mode)."""
        roles = frame.home.roles
        role = roles.role_of_value(value, frame.function)
        if role is None:
            built = _unwrap(value)
            constructs = isinstance(built, cst.Call) and (dotted_name(built.func) or "").rpartition(".")[2][:1].isupper()
            role = roles.of(name, frame.function) if constructs else None
        return role is not None and role.role == MODEL and not _wraps(value, name)

    def _expression(self, node: cst.CSTNode, frame: _Frame) -> list[Item]:
        """The events of the calls in an expression or simple statement, innermost (first evaluated) first."""
        items: list[Item] = []
        for call in _calls_post_order(node):
            items.extend(self._scaler_step(call, frame))
            event = self._event(call, frame)
            if event is not None:
                items.append(event)
            home, callee = self._callee(call, frame)
            if callee is not None and frame.can_inline(callee):
                inner = frame.call(call, callee, self._renames(call, callee, home, frame), home)
                if decorated_without_grad(home.context, callee):
                    inner = inner.without_grad()
                items.extend(self._block(_body(callee), inner))
        return items

    def _callee(self, call: cst.Call, frame: _Frame) -> tuple[Source, cst.FunctionDef | None]:
        """The function a call runs: one of the file whose code this is, or of another project file."""
        home = frame.home
        callee = home.index.callee(call, frame.function)
        project = home.context.project
        if callee is None and project is not None:
            found = project.function(home.context, call)
            if found is not None:
                script, callee = found
                home = Source(script.index, script.roles)
        return home, callee

    def _renames(self, call: cst.Call, callee: cst.FunctionDef, home: Source, frame: _Frame) -> dict[str, str]:
        # A nested function sees its caller's variables (a closure); any other sees only globals.
        renames = dict(frame.renames) if home.index.parent_function.get(callee) is frame.function else {}
        # A local of the called function is not the caller's variable of the same name.
        renames.update({name: f"{callee.name.value}.<locals>.{name}" for scope, name in home.index.bindings if scope is callee})
        for param in [*callee.params.posonly_params, *callee.params.params, *callee.params.kwonly_params]:
            argument = argument_for(call, callee, param.name.value)
            name = dotted_name(_unwrap(argument)) if argument is not None else None
            if name is not None:
                renames[param.name.value] = frame.rename(name)
        return renames

    def _event(self, call: cst.Call, frame: _Frame) -> Event | None:
        func = call.func
        qualified = frame.home.context.call_name(call) or ""
        last = qualified.rsplit(".", 1)[-1] if qualified else (func.attr.value if isinstance(func, cst.Attribute) else "")
        if isinstance(func, cst.Attribute):
            receiver = func.value
            method = func.attr.value
            if "zero_grad" in method:
                return frame.event(ZERO_GRAD, call, self._subject(receiver, frame))
            if _is_grad_attribute(receiver) and method == "zero_" or (
                isinstance(receiver, cst.Attribute) and receiver.attr.value == "data" and _is_grad_attribute(receiver.value) and method == "zero_"
            ):
                return frame.event(ZERO_GRAD, call, None)
            if method == "backward" and not call.args[1:]:
                return frame.event(BACKWARD, call, self._subject(_scaled(receiver), frame))
            if method in _BACKWARD_FUNCTIONS and call.args:  # accelerator.backward(loss)
                return frame.event(BACKWARD, call, self._subject(call.args[0].value, frame))
            if method == "step":
                return self._step(call, receiver, frame)
            if method in ("eval", "train") and not call.args:
                return self._mode(call, receiver, EVAL if method == "eval" else TRAIN, frame)
            if method == "train" and len(call.args) == 1:  # `train(False)`; `train(is_training)`: either mode
                flag = call.args[0].value
                literal = flag.value if isinstance(flag, cst.Name) and flag.value in ("True", "False") else None
                kind = {"True": TRAIN, "False": EVAL}.get(literal, SET_MODE)
                return self._mode(call, receiver, kind, frame)
        if isinstance(func, cst.Name) and "zero_grad" in func.value:
            return frame.event(ZERO_GRAD, call, None)
        if isinstance(func, cst.Name) and func.value == "next" and len(call.args) == 1:
            inner = call.args[0].value
            if isinstance(inner, cst.Call) and dotted_name(inner.func) == "iter" and inner.args:
                return frame.event(NEXT_BATCH, call, self._subject(inner.args[0].value, frame))
        if last in _CLIP_FUNCTIONS and call.args:
            return frame.event(CLIP, call, self._subject(call.args[0].value, frame))
        if qualified == "torch.autograd.backward" and call.args:
            return frame.event(BACKWARD, call, self._subject(call.args[0].value, frame))
        if isinstance(func, (cst.Name, cst.Attribute)) and frame.home.roles.is_(func, frame.function, MODEL):
            return frame.event(MODEL_CALL, call, self._subject(func, frame))
        return None

    def _scaler_step(self, call: cst.Call, frame: _Frame) -> list[Event]:
        """`loss_scaler(loss, optimizer, ...)`: timm's NativeScaler (DeiT, MAE, ConvNeXt) back-propagates
        the loss and steps the optimizer in one call."""
        name = dotted_name(call.func) or ""
        positional = [arg.value for arg in call.args if arg.keyword is None and not arg.star]
        if "scaler" not in name.rpartition(".")[2].lower() or len(positional) < 2:
            return []
        role = frame.home.roles.of(positional[1], frame.function)
        if role is None or role.role != OPTIMIZER:
            return []
        return [frame.event(BACKWARD, call, self._subject(positional[0], frame)),
                frame.event(STEP, call, self._subject(positional[1], frame))]  # fmt: skip

    def _step(self, call: cst.Call, receiver: cst.BaseExpression, frame: _Frame) -> Event | None:
        role = frame.home.roles.of(receiver, frame.function)
        if role is not None and role.role == OPTIMIZER:
            closure = bool(call.args) and call.args[0].keyword in (None,) or any(
                arg.keyword is not None and arg.keyword.value == "closure" for arg in call.args
            )
            return frame.event(STEP, call, self._subject(receiver, frame), closure=closure)
        if role is not None and role.role == SCHEDULER:
            return frame.event(SCHEDULER_STEP, call, self._subject(receiver, frame))
        name = dotted_name(receiver) or ""
        if "scaler" in name.lower() and call.args:  # GradScaler.step(optimizer)
            return frame.event(STEP, call, self._subject(call.args[0].value, frame))
        return None

    def _mode(self, call: cst.Call, receiver: cst.BaseExpression, kind: str, frame: _Frame) -> Event | None:
        role = frame.home.roles.of(receiver, frame.function)
        if (role is None or role.role == MODEL) and dotted_name(receiver) is not None:
            return frame.event(kind, call, self._subject(receiver, frame))
        return None

    def _subject(self, expr: cst.BaseExpression, frame: _Frame) -> str | None:
        name = dotted_name(_unwrap(expr))
        return frame.rename(name) if name is not None else None

    # -- reading ----------------------------------------------------------------------------

    def loops(self) -> list[tuple[Loop, Root]]:
        """Every loop of every entry point, outer loops before the loops inside them."""
        found = []

        def visit(items, root):
            for item in items:
                if isinstance(item, Loop):
                    found.append((item, root))
                    visit(item.body, root)
                elif isinstance(item, Branch):
                    for arm in item.arms:
                        visit(arm, root)

        for root in self.roots:
            visit(root.body, root)
        return found


def disables_grad(context: FileContext, expr: cst.BaseExpression, by_name: bool = False) -> bool:
    """`torch.no_grad()`, `torch.inference_mode()`, `torch.set_grad_enabled(False)` (a `with` item or a
    decorator): code under it builds no autograd graph, so it neither trains nor keeps graphs alive.
    `by_name` also takes any callable whose name ends so (`utils.no_grad()`, `torch.autograd.inference_mode`,
    `set_grad_enabled` from elsewhere): a rule that only skips what runs under it (NN506) loses no precision
    by the looser test; the timeline's `no_grad` marks torch's own names only."""
    target = expr.func if isinstance(expr, cst.Call) else expr
    qualified = context.qualified_name(target) or dotted_name(target) or ""  # `torch` via a star import
    if qualified in _NO_GRAD or by_name and qualified.endswith(("no_grad", "inference_mode")):
        return True
    setter = qualified.endswith("set_grad_enabled") if by_name else qualified == "torch.set_grad_enabled"
    if setter and isinstance(expr, cst.Call) and expr.args:
        value = expr.args[0].value
        return isinstance(value, cst.Name) and value.value == "False"
    return False


def decorated_without_grad(context: FileContext, function: cst.FunctionDef) -> bool:
    """`@torch.no_grad()`, `@torch.inference_mode()`, or a decorator of the project named so (YOLOv5's
    `@smart_inference_mode()`): a decorator's name says what it does more reliably than a `with` item's."""
    return any(disables_grad(context, decorator.decorator, by_name=True) for decorator in function.decorators)


def no_grad_nodes(context: FileContext, node: cst.CSTNode, by_name: bool = False) -> set[int]:
    """The ids of the nodes under a `with torch.no_grad()` / `inference_mode()` block inside `node`
    (evaluation inside a training loop: no graph is built there)."""
    inside: set[int] = set()
    for block in descendants(node):
        if isinstance(block, cst.With) and any(disables_grad(context, item.item, by_name) for item in block.items):
            inside |= {id(n) for n in descendants(block)}
    return inside


def loss_expression(backward: cst.Call) -> cst.BaseExpression | None:
    """What a backward call back-propagates: `loss` in `loss.backward()`, `scaler.scale(loss).backward()`,
    `accelerator.backward(loss)`."""
    func = backward.func
    if isinstance(func, cst.Attribute) and func.attr.value == "backward" and not backward.args:
        return _scaled(func.value)
    return backward.args[0].value if backward.args else None


def events(items: list[Item], into_loops: bool = True) -> list[Event]:
    """The events of a block in order, every arm of every branch included."""
    found = []
    for item in items:
        if isinstance(item, Event):
            found.append(item)
        elif isinstance(item, Loop):
            if into_loops:
                found.extend(events(item.body, into_loops))
        else:
            for arm in item.arms:
                found.extend(events(arm, into_loops))
    return found


@dataclass(frozen=True)
class _Frame:
    """Where the builder is: the function whose code it reads, the calls that led there, renames."""

    function: cst.FunctionDef | None
    via: tuple[cst.Call, ...]
    renames: tuple[tuple[str, str], ...]
    guarded: bool
    no_grad: bool
    active: tuple[cst.FunctionDef, ...]
    home: Source  # the file whose code this is
    entry: cst.Call | None = None  # the call of the linted file that led into another file

    @staticmethod
    def top(function: cst.FunctionDef | None, home: Source) -> _Frame:
        return _Frame(function, (), (), False, False, (function,) if function else (), home)

    def event(self, kind: str, node: cst.CSTNode, subject: str | None, closure: bool = False) -> Event:
        return Event(kind, node, subject, self.function, self.via, self.guarded, self.no_grad, closure, self.active, self.entry)

    def rename(self, name: str) -> str:
        head, dot, rest = name.partition(".")
        mapped = dict(self.renames).get(head, head)
        return f"{mapped}{dot}{rest}"

    def guard(self) -> _Frame:
        return _replace(self, guarded=True)

    def enter_loop(self) -> _Frame:
        return _replace(self, guarded=False)

    def without_grad(self) -> _Frame:
        return _replace(self, no_grad=True)

    def can_inline(self, callee: cst.FunctionDef) -> bool:
        return callee not in self.active and len(self.via) < _MAX_INLINE_DEPTH

    def call(self, call: cst.Call, callee: cst.FunctionDef, renames: dict[str, str], home: Source) -> _Frame:
        entry = self.entry or (call if home.context is not self.home.context else None)
        via = (*self.via, call)
        return _Frame(callee, via, tuple(renames.items()), self.guarded, self.no_grad, (*self.active, callee), home, entry)


def _replace(frame: _Frame, **changes) -> _Frame:
    values = {**frame.__dict__, **changes}
    return _Frame(**values)


def _body(node: cst.CSTNode) -> list[cst.CSTNode]:
    body = node.body
    if isinstance(body, cst.BaseSuite):
        return list(body.body)
    return list(body) if isinstance(body, (list, tuple)) else []


def _calls_post_order(node: cst.CSTNode) -> list[cst.Call]:
    """Calls in an expression in the order Python runs them (arguments before the call), skipping
    lambdas, comprehensions' deferred bodies excepted: those run in place."""
    found: list[cst.Call] = []

    def visit(current: cst.CSTNode) -> None:
        if isinstance(current, (cst.Lambda, cst.FunctionDef, cst.ClassDef)):
            return
        for child in child_nodes(current):
            visit(child)
        if isinstance(current, cst.Call):
            found.append(current)

    visit(node)
    return found


def _is_grad_attribute(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Attribute) and node.attr.value == "grad"


def _scaled(receiver: cst.BaseExpression) -> cst.BaseExpression:
    """`scaler.scale(loss)` -> `loss`: AMP scales the loss it back-propagates."""
    if isinstance(receiver, cst.Call) and isinstance(receiver.func, cst.Attribute) and receiver.func.attr.value == "scale":
        if receiver.args:
            return receiver.args[0].value
    return receiver


def _wraps(value: cst.BaseExpression, name: str) -> bool:
    """`model = model.to(device)`, `model = DDP(model)`: not a new model."""
    return name in {dotted_name(_unwrap(node)) for node in [value, *(arg.value for arg in getattr(value, "args", ()))]}


def _iterated(iterable: cst.BaseExpression) -> cst.BaseExpression:
    """`enumerate(tqdm(loader))` -> `loader`."""
    while isinstance(iterable, cst.Call) and dotted_name(iterable.func) in ("enumerate", "tqdm", "tqdm.tqdm", "iter") and iterable.args:
        iterable = iterable.args[0].value
    return iterable


def _dead_end(arm: cst.CSTNode) -> bool:
    """An arm that ends in `raise` or `assert False`: the run does not go on from it."""
    body = _body(arm)
    last = body[-1] if body else None
    small = last.body[-1] if isinstance(last, cst.SimpleStatementLine) and last.body else None
    if isinstance(small, cst.Raise):
        return True
    return isinstance(small, cst.Assert) and isinstance(small.test, cst.Name) and small.test.value == "False"


def is_main_guard(test: cst.BaseExpression) -> bool:
    return isinstance(test, cst.Comparison) and dotted_name(test.left) == "__name__"
