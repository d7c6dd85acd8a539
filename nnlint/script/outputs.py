"""What a model's output is (logits, probabilities, log-probabilities), and where it meets a loss.

A loss function expects one kind of input: `CrossEntropyLoss` and `BCEWithLogitsLoss` take logits and
normalise them themselves, `NLLLoss` takes log-probabilities, `BCELoss` probabilities. The model that
produces the input is often written elsewhere (its class in model.py, the loss in train.py), so this
module answers two questions across the project's files:
- `output_kind(cls)`: what a model class's `forward` returns on every path: SOFTMAX, LOG_SOFTMAX,
  SIGMOID, LOGITS (its last op is a Linear or convolution layer), or None when unknown or when paths
  differ (`if not self.training: return F.softmax(x)` applies softmax only at inference). It follows
  `return F.softmax(x, dim=1)`, `x.sigmoid()`, `return self.act(x)` with `self.act = nn.Softmax(1)`,
  an `nn.Sequential` tail, local variables, helper methods, submodules of the project's other classes,
  and `forward` inherited from a base class of the project (in this file or another);
- `meetings`: the loss calls of this file (a criterion built from `nn.CrossEntropyLoss`, `NLLLoss`,
  `BCELoss`, `BCEWithLogitsLoss`, or `F.cross_entropy`, `F.nll_loss`, `F.binary_cross_entropy(_with_logits)`)
  whose prediction is of a known kind: an activation applied in this file (`criterion(torch.softmax(out, 1), y)`)
  or the output of a model whose class says it, followed through variables and helpers' parameters;
- `entered`: the loss calls in a function of another project file that this file runs and passes the
  model or the loss to (`train_one_epoch(model, criterion, loader)` with `loss = criterion(model(x), y)` in
  engine.py): that function's parameters are read as what this file's call passes, and the meeting is
  reported at the call, where the two ends are joined.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Protocol

import libcst as cst

from nnlint.context import FileContext
from nnlint.names import dotted_name
from nnlint.script.index import FileIndex
from nnlint.script.objects import Objects, unwrap
from nnlint.script.roles import argument_for
from nnlint.tree import child_nodes


class Script(Protocol):
    """What this module reads of a file's script model (nnlint.script.Script, which builds `Outputs` as one
    of its parts): this file's, or another project file's that a base class or a model class comes from."""

    context: FileContext

    @property
    def index(self) -> FileIndex: ...

    @property
    def objects(self) -> Objects: ...

    @property
    def outputs(self) -> Outputs: ...

    def at(self, node) -> str: ...

    def code(self, node) -> str: ...


SOFTMAX, LOG_SOFTMAX, SIGMOID, LOGITS = "softmax", "log_softmax", "sigmoid", "logits"
_LOG = "log"

# Losses by what they expect, and the name users know them by.
LOSS_CLASSES = {"CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss"}
LOSS_FUNCTIONS = {
    "cross_entropy": "CrossEntropyLoss", "nll_loss": "NLLLoss",
    "binary_cross_entropy": "BCELoss", "binary_cross_entropy_with_logits": "BCEWithLogitsLoss",
}  # fmt: skip
_ACTIVATIONS = {"softmax": SOFTMAX, "log_softmax": LOG_SOFTMAX, "sigmoid": SIGMOID, "expit": SIGMOID}
_ACTIVATION_LAYERS = {"Softmax": SOFTMAX, "Softmax2d": SOFTMAX, "LogSoftmax": LOG_SOFTMAX, "Sigmoid": SIGMOID}
_LOGIT_LAYERS = re.compile(r"^(Lazy)?(Linear|Bilinear|Conv\dd|ConvTranspose\dd)$")
# Layers that do not change what their input is: an `nn.Sequential` ends with the layer before them.
_PASSTHROUGH_LAYERS = re.compile(r"^(Dropout\w*|AlphaDropout|Flatten|Unflatten|Identity)$")
# Tensor operations that keep what a value is (a reshape of probabilities is still probabilities).
_SHAPE_METHODS = frozenset(
    {"view", "reshape", "squeeze", "unsqueeze", "flatten", "permute", "transpose", "contiguous", "float", "double",
     "half", "to", "cuda", "cpu", "clone", "clamp", "clip", "view_as", "reshape_as", "type", "type_as"}
)  # fmt: skip
# A pretrained classifier's head, which scripts replace (`model.fc = nn.Sequential(..., nn.LogSoftmax(1))`).
_HEADS = frozenset({"fc", "classifier", "head", "heads", "last_linear", "out", "output"})
_MAX_DEPTH = 8


@dataclass(frozen=True)
class Output:
    kind: str  # SOFTMAX, LOG_SOFTMAX, SIGMOID, LOGITS
    node: cst.CSTNode  # what makes it so: the activation call, the activation or last layer built in __init__
    model: str | None = None  # the class whose forward returns it; None: applied outside any model
    layer: bool = False  # the last layer of a torch container or a torchvision model (`nn.Sequential(..., nn.Sigmoid())`)


@dataclass(frozen=True)
class Meeting:
    """A loss call of this file and what its prediction argument is."""

    loss: cst.Call
    loss_name: str  # "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss"
    written: str  # how the file names it: "nn.CrossEntropyLoss", "F.cross_entropy"
    prediction: cst.BaseExpression
    output: Output
    model_call: cst.Call | None  # the `model(x)` the prediction comes from, when one is seen
    built: cst.Call | None  # what built that model (`Net(10)`), for the runtime check
    entry: cst.Call | None = None  # the call of this file that runs the loss, when it is in another file


@dataclass(frozen=True)
class _Found:
    output: Output | None
    model_call: cst.Call | None = None
    built: cst.Call | None = None


class Outputs:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.index = script.index
        self.context = script.context
        self._classes: dict[str, Output | None] = {}
        # While `entered` reads a function of this file for another file's call: (the function, the caller's
        # outputs, the call, the function the call is in). Its parameters then hold what that call passes.
        self._entry: tuple[cst.FunctionDef, Outputs, cst.Call, cst.FunctionDef | None] | None = None

    # -- model classes ---------------------------------------------------------------------------

    def output_kind(self, cls: cst.ClassDef) -> Output | None:
        """What this file's model class returns from `forward` on every path (None: unknown or mixed)."""
        key = cls.name.value
        if key not in self._classes:
            self._classes[key] = None  # a class reached again while reading itself says nothing
            self._classes[key] = self._class_output(cls)
        return self._classes[key]

    def is_module(self, cls: cst.ClassDef, depth: int = 0) -> bool:
        """An nn.Module, through base classes of this file and of the project's other files."""
        if cls.name.value in self.index.module_classes:
            return True
        return depth < _MAX_DEPTH and any(
            home.outputs.is_module(base, depth + 1) for home, base in self._bases(cls) if base is not cls
        )

    def forward_of(self, cls: cst.ClassDef, depth: int = 0) -> tuple[Script, cst.FunctionDef] | None:
        """The `forward` a class runs: its own, or the one it inherits from a project base class."""
        for statement in cls.body.body:
            if isinstance(statement, cst.FunctionDef) and statement.name.value == "forward":
                return self.script, statement
        for home, base in self._bases(cls):
            found = home.outputs.forward_of(base, depth + 1) if base is not cls and depth < _MAX_DEPTH else None
            if found is not None:
                return found
        return None

    def _bases(self, cls: cst.ClassDef) -> list[tuple[Script, cst.ClassDef]]:
        found = []
        for base in cls.bases:
            name = dotted_name(base.value)
            if name in self.index.classes:
                found.append((self.script, self.index.classes[name]))
            elif self.context.project is not None and name is not None:
                other = self.context.project.class_of(self.context, base.value)
                if other is not None:
                    found.append(other)
        return found

    def _class_output(self, cls: cst.ClassDef) -> Output | None:
        if not self.is_module(cls):
            return None
        found = self.forward_of(cls)
        if found is None:
            return None
        home, forward = found
        if home is not self.script:
            inherited = home.outputs._returned(forward)
            return Output(inherited.kind, inherited.node, cls.name.value) if inherited is not None else None
        returned = self._returned(forward)
        return Output(returned.kind, returned.node, cls.name.value) if returned is not None else None

    def _returned(self, function: cst.FunctionDef, depth: int = 0) -> Output | None:
        """What a function of this file returns, when every `return` agrees."""
        outputs = [self._trace(r.value, function, r, depth + 1) for r in _returns(function)]
        kinds = {found.output.kind if found is not None and found.output is not None else None for found in outputs}
        return outputs[0].output if outputs and len(kinds) == 1 and None not in kinds else None

    def module_output(self, built: cst.Call, depth: int = 0) -> Output | None:
        """What a module built by this call returns: an activation or logits layer, an `nn.Sequential`'s
        last layer, a model class of the project, a torchvision classifier (logits)."""
        if depth > _MAX_DEPTH:
            return None
        written = dotted_name(built.func) or ""
        qualified = self.context.call_name(built) or written
        last = qualified.rpartition(".")[2]
        if qualified.startswith("torch.nn."):
            if last in _ACTIVATION_LAYERS:
                return Output(_ACTIVATION_LAYERS[last], built, layer=True)
            if _LOGIT_LAYERS.match(last):
                return Output(LOGITS, built, layer=True)
            if last == "Sequential" and built.args and not any(arg.star for arg in built.args):
                layers = [arg.value for arg in built.args]
                while layers and _passthrough(self.context, layers[-1]):
                    layers.pop()
                if layers and isinstance(layers[-1], cst.Call):
                    return self.module_output(layers[-1], depth + 1)
            return None
        if written in self.index.classes:
            return self.output_kind(self.index.classes[written])
        if self.context.project is not None and written:
            other = self.context.project.class_of(self.context, built.func)
            if other is not None:
                return other[0].outputs.output_kind(other[1])
        if qualified.startswith("torchvision.models.") and qualified.count(".") == 2 and last[:1].islower():
            return Output(LOGITS, built, layer=True)
        return None

    # -- values ----------------------------------------------------------------------------------

    def _trace(self, expr: cst.BaseExpression, function, at: cst.CSTNode, depth: int) -> _Found | None:
        """What a value read at `at` is: an activation's output (with the model call under it), a model's
        output, or (None) unknown."""
        if depth > _MAX_DEPTH:
            return None
        expr = self._peel(expr)
        if isinstance(expr, cst.Call):
            kind = self._activation(expr)
            if kind is not None:
                argument = _receiver_or_first(expr)
                inner = self._trace(argument, function, at, depth + 1) if argument is not None else None
                if kind == _LOG:  # `torch.log(F.softmax(...))` is log_softmax, written unstably
                    if inner is None or inner.output is None or inner.output.kind != SOFTMAX:
                        return None
                    kind = LOG_SOFTMAX
                return _Found(Output(kind, expr), inner.model_call if inner else None, inner.built if inner else None)
            model = self._model_call(expr, function, at, depth)
            if model is not None:
                return model
            callee = self.index.callee(expr, function)
            if callee is not None and callee not in self.index.owner_class:
                returned = [self._trace(r.value, callee, r, depth + 1) for r in _returns(callee)]
                return _agreed(returned)
            return None
        name = dotted_name(expr)
        if name is None or name.startswith("self."):
            return None
        bindings = [b for b in self.index.lookup(name, function) if not isinstance(b.node, cst.AugAssign)]
        if len(bindings) > 1:
            bindings = self.script.objects.reaching(bindings, at)
        return _agreed([self._trace_binding(binding, name, depth) for binding in bindings])

    def _trace_binding(self, binding, name: str, depth: int) -> _Found | None:
        """What one assignment gives a name; for a helper's parameter (`def compute_loss(output, y)`),
        what every call of the file passes."""
        scope = binding.scope if isinstance(binding.scope, cst.FunctionDef) else None
        if isinstance(binding.node, cst.Param) and scope is not None:
            sites = self._sites(scope)
            passed = [argument_for(call, scope, name) for _, call, _ in sites]
            if not sites or any(argument is None for argument in passed):
                return None
            return _agreed([home._trace(arg, caller, call, depth + 1) for arg, (home, call, caller) in zip(passed, sites)])
        if binding.value is None or not isinstance(binding.node, (cst.Assign, cst.AnnAssign)) or _unpacked(binding, name):
            return None
        return self._trace(binding.value, scope, binding.node, depth + 1)

    def _model_call(self, call: cst.Call, function, at: cst.CSTNode, depth: int) -> _Found | None:
        """`model(x)`, `model.forward(x)`, `self.net(x)`, `self(x)`: the output of the module called."""
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == "forward":
            func = func.value
        if isinstance(func, cst.Call):  # `Net()(x)`, `nn.Linear(10, 2)(x)`
            output = self._built_output(func, depth)
            return _Found(output, call, func) if output is not None else None
        name = dotted_name(func)
        if name is None:
            return None
        owner = self.index.owner_class.get(function) if function is not None else None
        if name == "self":
            output = self.output_kind(owner) if owner is not None else None
            return _Found(output, call, None) if output is not None else None
        if name.startswith("self."):
            callee = self.index.callee(call, function)
            if callee is not None:  # a helper method: `return self.head(x)`
                returned = self._returned(callee, depth + 1)
                return _Found(returned, call) if returned is not None else None
            values = [b.value for b in self.index.bindings.get((owner, name), []) if b.value is not None]
            outputs = {self._built_output(unwrap(value), depth) for value in values}
            output = outputs.pop() if len(outputs) == 1 else None
            return _Found(output, call, unwrap(values[0])) if output is not None else None
        found = self._built(name, function, at)
        if found is None:
            return None
        home, built = found
        output = home._built_output(built, depth)
        # A part replaced here, or where the model was built (another file, for a model passed in).
        replaced = [(self, name)] if self._parts_replaced(name) else []
        if home is not self:
            replaced += [(home, held) for held in home._names_of(built) if home._parts_replaced(held)]
        if output is not None and replaced:
            # A pretrained classifier's new head says what it returns; a replaced part of any other model,
            # where it sits in forward is not known.
            where, held = replaced[0]
            output = where._replaced_head(held, depth) if output.node is built and len(replaced) == 1 else None
        return _Found(output, call, built) if output is not None else None

    def _built_output(self, value: cst.BaseExpression, depth: int) -> Output | None:
        return self.module_output(value, depth + 1) if isinstance(value, cst.Call) else None

    def _built(self, name: str, function, at: cst.CSTNode) -> tuple[Outputs, cst.Call] | None:
        """The constructor call of the module `name` holds where `at` reads it, with the outputs of its file.
        (Not `roles.built_by`: it takes a name's first binding, where a notebook re-builds `model`, and
        gives `model`'s constructor for `model.encoder`, whose output is not the model's.)"""
        calls = self.constructors(name, function, at)
        return calls[0] if calls and all(call is calls[0][1] for _, call in calls) else None

    def _names_of(self, built: cst.Call) -> list[str]:
        """The names this file binds to the object `built` makes (`model = Net().to(device)`)."""
        return [key[1] for key, found in self.index.bindings.items()
                for b in found if b.value is not None and unwrap(b.value) is built]  # fmt: skip

    def _sites(self, function: cst.FunctionDef) -> list[tuple[Outputs, cst.Call, cst.FunctionDef | None]]:
        """The calls that run `function`, each with the outputs of its file: this file's calls, and the other
        file's call that `entered` reads the function for."""
        found = [(self, call, caller) for call, caller in self.script.objects.call_sites(function)]
        if self._entry is not None and self._entry[0] is function:
            found.append(self._entry[1:])
        return found

    def constructors(self, name: str, function, at: cst.CSTNode, depth: int = 0) -> list[tuple[Outputs, cst.Call]] | None:
        """The calls that built what `name` holds where `at` reads it, each with the outputs of its file,
        through re-assignments, wrappers (`Net().to(device)`) and a function's parameter at each of its calls
        (`train(net, nn.NLLLoss())`, in this file or the other file of `entered`); None when a path is unknown."""
        bindings = [b for b in self.index.lookup(name, function) if not _wraps(b)]
        if len(bindings) > 1:
            bindings = self.script.objects.reaching(bindings, at)
        if not bindings or depth > _MAX_DEPTH:
            return None
        found = []
        for binding in bindings:
            scope = binding.scope if isinstance(binding.scope, cst.FunctionDef) else None
            if isinstance(binding.node, cst.Param) and scope is not None:
                values = [(home, argument_for(call, scope, binding.name), caller, call) for home, call, caller in self._sites(scope)]
            elif binding.value is not None and isinstance(binding.node, (cst.Assign, cst.AnnAssign)) and not _unpacked(binding, name):
                values = [(self, binding.value, scope, binding.node)]
            else:
                return None
            if not values:
                return None
            for home, value, scope, site in values:
                value = unwrap(value) if value is not None else None
                if isinstance(value, cst.Call) and home.index.callee(value, scope) is None:
                    found.append((home, value))
                    continue
                inner = home.constructors(dotted_name(value), scope, site, depth + 1) if dotted_name(value) else None
                if inner is None:
                    return None
                found.extend(inner)
        return found

    def _parts_replaced(self, name: str) -> bool:
        """The file assigns a part of the model: `model.fc = ...`, `model.classifier[6] = ...`, `model[-1] = ...`."""
        prefix = f"{name}."
        return any(key[1].startswith(prefix) for key in self.index.bindings) or self._item_assigned(name)

    def _item_assigned(self, name: str) -> bool:
        """`model[-1] = ...`, `model.classifier[6] = ...` (the index does not record subscript targets)."""
        return bool(re.search(rf"\b{re.escape(name)}(\.[\w.]+)?\[[^\]]*\]\s*=[^=]", self.context.source))

    def _replaced_head(self, name: str, depth: int) -> Output | None:
        """`model.fc = nn.Sequential(..., nn.LogSoftmax(1))`: what a torchvision model returns with its head
        replaced (the one part assigned, named like a head); unknown when anything else is replaced."""
        prefix = f"{name}."
        replaced = [(key[1], b) for key, found in self.index.bindings.items() if key[1].startswith(prefix) for b in found]
        heads = [b for attr, b in replaced if attr[len(prefix):] in _HEADS and isinstance(b.value, cst.Call)]
        if len(heads) != len(replaced) or len(heads) != 1 or self._item_assigned(name):
            return None
        return self.module_output(heads[0].value, depth + 1)

    def _activation(self, call: cst.Call) -> str | None:
        """SOFTMAX, LOG_SOFTMAX, SIGMOID or _LOG for `F.softmax(x)`, `torch.sigmoid(x)`, `x.softmax(-1)`,
        `torch.log(x)`, `nn.Softmax(dim=1)(x)`."""
        func = call.func
        qualified = self.context.call_name(call)
        if qualified is not None:
            module, _, last = qualified.rpartition(".")
            if module in ("torch", "torch.nn.functional", "torch.special"):
                return _LOG if last == "log" else _ACTIVATIONS.get(last)
            return None
        if isinstance(func, cst.Call):
            layer = self.context.call_name(func) or ""
            return _ACTIVATION_LAYERS.get(layer.rpartition(".")[2]) if layer.startswith("torch.nn.") else None
        if _tensor_method(call):
            attr = func.attr.value
            return _LOG if attr == "log" and not call.args else _ACTIVATIONS.get(attr) if attr != "expit" else None
        return None

    def _peel(self, expr: cst.BaseExpression) -> cst.BaseExpression:
        """`out.view(-1, C)[:, 0].float()` -> `out`: reshapes, slices and clamps keep what a value is."""
        while True:
            if isinstance(expr, cst.Subscript):
                expr = expr.value
            elif isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value in _SHAPE_METHODS \
                    and self.context.call_name(expr) is None:  # fmt: skip
                expr = expr.func.value
            elif isinstance(expr, cst.Call) and (self.context.call_name(expr) or "") in ("torch.squeeze", "torch.flatten",
                    "torch.reshape", "torch.clamp", "torch.clip") and expr.args:  # fmt: skip
                expr = expr.args[0].value
            else:
                return expr

    # -- losses ----------------------------------------------------------------------------------

    def loss_of(self, call: cst.Call, function) -> tuple[str, str] | None:
        """("CrossEntropyLoss", "nn.CrossEntropyLoss") for a call of a loss this module knows: `F.nll_loss(...)`,
        `criterion(...)` with `criterion = nn.CrossEntropyLoss()`, `nn.BCELoss()(...)`."""
        qualified = self.context.call_name(call) or ""
        module, _, last = qualified.rpartition(".")
        if module == "torch.nn.functional" and last in LOSS_FUNCTIONS:
            return LOSS_FUNCTIONS[last], dotted_name(call.func) or qualified
        func = call.func
        if isinstance(func, cst.Call):
            return self._loss_class(func)
        name = dotted_name(func)
        entered = self._entry is not None and self._entry[0] is function
        if name is None or not (name in self._loss_names or entered):
            return None
        if name.startswith("self."):
            owner = self.index.owner_class.get(function) if function is not None else None
            values = [(self, b.value) for b in self.index.bindings.get((owner, name), []) if b.value is not None]
        else:
            values = self.constructors(name, function, call) or []
        found = {home._loss_class(value) for home, value in values}
        return found.pop() if len(found) == 1 else None

    def _loss_class(self, value: cst.BaseExpression) -> tuple[str, str] | None:
        if not isinstance(value, cst.Call):
            return None
        qualified = self.context.call_name(value) or ""
        last = qualified.rpartition(".")[2]
        return (last, dotted_name(value.func) or qualified) if qualified.startswith("torch.nn.") and last in LOSS_CLASSES else None

    @cached_property
    def _loss_names(self) -> frozenset[str]:
        """Names the file gives a loss object, directly or as a parameter passed one: only calls of these can
        be losses (a cheap test before following a name's assignments, which needs positions)."""
        found = {name for (_, name), bindings in self.index.bindings.items()
                 if any(b.value is not None and self._loss_class(unwrap(b.value)) for b in bindings)}  # fmt: skip
        for _ in range(3):  # `train(criterion)` -> `def train(loss_fn)` -> `step(loss_fn)` ...
            for call, caller in self.index.calls:
                callee = self.index.callee(call, caller)
                if callee is None:
                    continue
                for param in [*callee.params.posonly_params, *callee.params.params, *callee.params.kwonly_params]:
                    argument = argument_for(call, callee, param.name.value)
                    if argument is not None and (self._loss_class(unwrap(argument)) or dotted_name(argument) in found):
                        found.add(param.name.value)
        return frozenset(found)

    def fed(self, kind: str, *losses: str) -> list[tuple[cst.Call, Meeting]]:
        """(loss call, meeting) for each loss of `losses` given an output of `kind`: what a rule reports."""
        meetings = [*self.meetings, *self.entered]
        return [(m.entry or m.loss, m) for m in meetings if m.output.kind == kind and m.loss_name in losses]

    @cached_property
    def meetings(self) -> list[Meeting]:
        """Every loss call of this file whose prediction is of a known kind."""
        found = (self._meeting(call, function) for call, function in self.index.calls)
        return [meeting for meeting in found if meeting is not None]

    def _meeting(self, call: cst.Call, function) -> Meeting | None:
        loss = self.loss_of(call, function)
        prediction = _prediction(call)
        if loss is None or prediction is None:
            return None
        traced = self._trace(prediction, function, call, 0)
        if traced is None or traced.output is None:
            return None
        return Meeting(call, loss[0], loss[1], prediction, traced.output, traced.model_call, traced.built)

    @cached_property
    def entered(self) -> list[Meeting]:
        """The meetings in functions of other project files that this file's calls run, known only through
        what the call passes (the model, the loss): each with `entry`, the call."""
        project = self.context.project
        found = []
        for call, caller in self.index.calls if project is not None else ():
            target = project.function(self.context, call)
            if target is not None:
                found.extend(target[0].outputs._entered(target[1], (self, call, caller)))
        return found

    def _entered(self, function: cst.FunctionDef, entry: tuple) -> list[Meeting]:
        """The loss calls written in `function` that are meetings when its parameters hold what `entry` (the
        other file's outputs, call and caller) passes, and not already meetings of this file."""
        own = {meeting.loss for meeting in self.meetings}
        self._entry = (function, *entry)
        try:
            found = [self._meeting(call, caller) for call, caller in self.index.calls if caller is function and call not in own]
        finally:
            self._entry = None
        return [replace(meeting, entry=entry[1]) for meeting in found if meeting is not None]


def _prediction(call: cst.Call) -> cst.BaseExpression | None:
    """The prediction a loss is called with: its first positional argument, or `input=`."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == "input":
            return arg.value
    positional = [arg for arg in call.args if arg.keyword is None]
    return positional[0].value if positional and not positional[0].star else None


def _receiver_or_first(call: cst.Call) -> cst.BaseExpression | None:
    """The tensor an activation applies to: `x` of `x.softmax(1)`, `F.softmax(x, 1)`, `torch.log(x)`."""
    if _tensor_method(call):
        return call.func.value
    if call.args and call.args[0].keyword is None and not call.args[0].star:
        return call.args[0].value
    return None


def _tensor_method(call: cst.Call) -> bool:
    """`out.softmax(1)`, `model(x).sigmoid()`: a method of a tensor (not `self.softmax(x)`, a layer of the model)."""
    func = call.func
    return isinstance(func, cst.Attribute) and not (
        isinstance(func.value, cst.Name) and func.value.value in ("self", "torch", "F", "nn", "functional")
    )


def _passthrough(context, layer: cst.BaseExpression) -> bool:
    return isinstance(layer, cst.Call) and bool(_PASSTHROUGH_LAYERS.match((context.call_name(layer) or "").rpartition(".")[2]))


def _agreed(found: list[_Found | None]) -> _Found | None:
    """The one thing every path gives, or None when one is unknown or they differ."""
    kinds = {f.output.kind if f is not None and f.output is not None else None for f in found}
    return found[0] if found and len(kinds) == 1 and None not in kinds else None


def _unpacked(binding, name: str) -> bool:
    """`out, hidden = model(x)`: the name holds one part of the value, not the value."""
    node = binding.node
    targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
    return not any(dotted_name(target) == name for target in targets)


def _wraps(binding) -> bool:
    """`model = model.to(device)`: the name keeps the object it held."""
    value = unwrap(binding.value) if binding.value is not None else None
    return value is not binding.value and dotted_name(value) == binding.name if value is not None else False


def _returns(function: cst.FunctionDef) -> list[cst.Return]:
    """The `return value` statements of a function itself (not of functions or lambdas nested in it)."""
    found, stack = [], list(child_nodes(function.body))
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Return) and node.value is not None:
            found.append(node)
        elif not isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            stack.extend(child_nodes(node))
    return found


def ends(script: Script, meeting: Meeting) -> str:
    """Both ends of a meeting, for messages: "`Net.forward` returns `F.softmax(...)` (model.py:41) into
    `nn.CrossEntropyLoss` (line 77)", or "`torch.softmax(out, 1)` (line 63) goes into `F.cross_entropy` (line 63)"."""
    output = meeting.output
    code = script.code(output.node)
    if len(code) > 40 and isinstance(output.node, cst.Call):
        code = f"{script.code(output.node.func)}(...)"
    loss = f"`{meeting.written}` ({script.at(meeting.loss)})"
    if meeting.entry is not None:
        loss = f"`{meeting.written}` ({script.at(meeting.loss)}, run by `{script.code(meeting.entry.func)}(...)`)"
    if output.model is not None:
        return f"`{output.model}.forward` returns `{code}` ({script.at(output.node)}) into {loss}"
    if output.layer and meeting.model_call is not None and output.node is meeting.built and output.kind != LOGITS:
        return f"`{script.code(meeting.model_call)}` applies `{code}` ({script.at(output.node)}) and goes into {loss}"
    if output.layer and meeting.model_call is not None:
        model = script.code(meeting.model_call.func)
        return f"`{model}` ends with `{code}` ({script.at(output.node)}) and its output goes into {loss}"
    return f"`{code}` ({script.at(output.node)}) goes into {loss}"


def facts(meeting: Meeting) -> dict[str, str | None]:
    """What the runtime check needs: the model called and the constructor that built it (as NN302 gives)."""
    model_call = meeting.model_call
    return {
        "model": dotted_name(model_call.func) if model_call is not None else None,
        "built_by": dotted_name(meeting.built.func) if meeting.built is not None else None,
        "output": meeting.output.kind,
        "loss": meeting.loss_name,
        # "script": the activation is written in the training code (`torch.softmax(model(x), 1)`), so the
        # model's own output says nothing about it; "model": its forward or last layer applies it.
        "applied_by": "model" if meeting.output.model is not None or meeting.output.layer else "script",
    }
