import re
from dataclasses import dataclass

import libcst as cst

from nnlint.confirm.protocol import ProbeFinding, Verdict, confirmed, listed, refuted, unverifiable
from nnlint.names import dotted_name
from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.roles import OPTIMIZER, argument_for
from nnlint.script.index import words
from nnlint.tree import descendants, integer_value, source_code

# torch.nn layers that own no parameter: putting one in a model after the optimizer leaves nothing out.
_PARAMETER_FREE = re.compile(
    r"^(Identity|Flatten|Unflatten|Upsample\w*|Pixel(Un)?[Ss]huffle|ChannelShuffle|\w*Pad\dd|Fold|Unfold|"
    r"\w*Pool\dd|\w*Dropout\w*|R?ReLU6?|LeakyReLU|[CS]?ELU|GELU|SiLU|Mish|Sigmoid|LogSigmoid|Tanh|Tanhshrink|"
    r"Softmax\w*|LogSoftmax|Softmin|Softplus|Softsign|\w*shrink|Hard\w+|Threshold|GLU|CosineSimilarity|"
    r"PairwiseDistance|LocalResponseNorm|InstanceNorm\dd|Module|\w*Loss|DataParallel|DistributedDataParallel)$"
)
# Words naming a layer kept out of the optimizer on purpose: a target network, an EMA copy, a frozen teacher.
_NOT_TRAINED = frozenset({"target", "ema", "teacher", "momentum", "shadow", "frozen", "old", "avg", "average", "swa"})
_OPTIMIZER_NAME = re.compile(
    r"^(SGD|Adam\w*|RMSprop|Adagrad|Adadelta|Adamax|NAdam|RAdam|LBFGS|ASGD|Rprop|Lion|Lamb|LAMB|Fused\w+|Adafactor)$"
    r"|optimi[sz]er"
)
_WRAPPERS = ("to", "cuda", "cpu", "float", "half", "double", "bfloat16", "requires_grad_", "train")
_CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")
_MODEL_FACTORIES = ("torchvision.models.", "timm.create_model", "timm.models.")
# Calls that put a module into a model (position of the module argument):
# `model.add_module("fc", m)`, `model.layers.append(m)`; `setattr(model, "fc", m)` is read on its own.
_ADDERS = {"add_module": 1, "register_module": 1, "register_parameter": 1, "append": 0, "insert": 1}


@dataclass(frozen=True)
class _Replacement:
    node: cst.CSTNode  # the statement or call that puts the new layer in (reported)
    slot: str  # where it goes, as the scope names it: "model.fc", "model.classifier[…]"
    layer: str = ""  # the new layer in code, for the message: "model.classifier[6]", "model.layers[-1]"


class OptimizerMissesNewLayer(Rule):
    """
    ## What it does
    Flags a layer put into a model (`model.fc = nn.Linear(...)`,
    `model.classifier[6] = ...`, `setattr(model, "head", ...)`,
    `model.add_module(...)`, timm's `model.reset_classifier(n)`) *after*
    an optimizer was built from that model's parameters
    (`SGD(model.parameters())`, `filter(lambda p: p.requires_grad,
    model.parameters())`, `[{"params": model.parameters()}]`), when the
    same optimizer is used afterwards.

    ## Why is this bad?
    An optimizer copies the list of parameters it is given when it is
    built. A layer created later has new parameters that no param group
    holds: they get gradients but `optimizer.step()` never updates them.
    The fine-tuned head stays at its random initialisation, accuracy stays
    near chance for the new classes, and nothing raises. (Recipe: set up
    the model completely, then build the optimizer.)

    ## Example
    ```python
    model = torchvision.models.resnet50(weights="DEFAULT")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    model.fc = nn.Linear(2048, num_classes)
    train(model, optimizer)
    ```

    ## Use instead
    ```python
    model = torchvision.models.resnet50(weights="DEFAULT")
    model.fc = nn.Linear(2048, num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    ```
    or `optimizer.add_param_group({"params": model.fc.parameters()})`
    after the replacement. A layer without parameters (`nn.Identity()`,
    `nn.Dropout()`), an optimizer rebuilt after the replacement, or one not
    used again is not flagged.

    ## Known problems
    The optimizer and the replacement must be in the same function (or in
    a function it calls with the model); an optimizer kept on `self` in one
    method and a layer replaced in another are not compared.

    ## Runtime confirmation
    Planned: build the model and the optimizer as the script does, then
    list the trainable parameters that no param group holds (confirmed
    when the new layer's are among them).
    """

    code = "NN407"
    name = "optimizer-misses-new-layer"
    severity = "error"
    summary = "A layer replaced or added after the optimizer was built from model.parameters() is never optimised"
    triggers = ("optim", "SGD", "Adam")  # an optimizer is built in the file

    bad = [
        Example(
            """
import torch
import torch.nn as nn
import torchvision

model = torchvision.models.resnet18(pretrained=True)
optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
model.fc = nn.Linear(model.fc.in_features, 2)  # <--
for epoch in range(25):
    for inputs, labels in loader:
        optimizer.zero_grad()
        criterion(model(inputs), labels).backward()
        optimizer.step()
""",
            message="`model.fc`",
        ),
        Example(
            """
import torch
from torch import nn, optim
from torchvision import models

def main(args):
    model = models.vgg16(pretrained=True)
    optimizer = optim.Adam(filter(lambda p: p.requires_grad, model.parameters()), lr=1e-4)
    model.classifier[6] = nn.Linear(4096, args.num_classes)  # <--
    setattr(model, "aux", nn.Sequential(nn.ReLU(), nn.Linear(4096, 2)))  # <--
    model.add_module("extra", nn.LayerNorm(4096))  # <--
    fit(model, optimizer, args.epochs)
""",
            note="filtered parameters; indexed, setattr and add_module replacements",
        ),
        Example(
            """
import torch
import timm

model = timm.create_model("resnet50", pretrained=True)
opt = torch.optim.AdamW([{"params": model.parameters(), "lr": 1e-4}])
model.reset_classifier(num_classes=10)  # <--
train(model, opt)
""",
            note="param-group list; timm's reset_classifier builds a new head",
        ),
        Example(
            """
import torch
import torch.nn as nn
import torch.optim as optim

class DeepQNetwork(nn.Module):
    def __init__(self, lr, n_actions):
        super().__init__()
        self.fc1 = nn.Linear(8, 256)
        self.optimizer = optim.Adam(self.parameters(), lr=lr)
        self.fc2 = nn.Linear(256, n_actions)  # <--

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))
""",
            note="RL agents that build their optimizer inside __init__, before the last layers",
        ),
        Example(
            """
import torch
import torch.nn as nn

def replace_head(net, n):
    net.fc = nn.Linear(512, n)

model = Net()
optimizer = torch.optim.Adam(model.parameters())
for task in tasks:
    replace_head(model, task.num_classes)  # <--
    train(model, optimizer, task)
""",
            note="through a called function; the optimizer of the first task is reused for every new head",
        ),
        Example(
            """
import torch
import torch.nn as nn

def finetune(model, loader, num_classes):
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-3)
    model.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(768, num_classes))  # <--
    for x, y in loader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
""",
            note="the parameters gathered in a list first",
        ),
    ]
    good = [
        Example(
            """
import torch
import torch.nn as nn
import torchvision

model = torchvision.models.resnet18(pretrained=True)
for param in model.parameters():
    param.requires_grad = False
model.fc = nn.Linear(model.fc.in_features, 2)
optimizer = torch.optim.SGD(model.fc.parameters(), lr=0.001, momentum=0.9)
train(model, optimizer)
""",
            note="trap: the usual fine-tuning recipe, replacement before the optimizer is built",
        ),
        Example(
            """
import torch
import torch.nn as nn

optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
pretrain(model, optimizer)
model.fc = nn.Linear(512, 10)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
finetune(model, optimizer)
""",
            note="trap: the optimizer is rebuilt after the replacement",
        ),
        Example(
            """
import torch

optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
model.training = False
model.fc.weight.data = torch.zeros(10, 512)
model.fc.requires_grad = False
model.name = "resnet"
train(model, optimizer)
""",
            note="trap: assignments of attributes that are not modules",
        ),
        Example(
            """
import torch
import torch.nn as nn

optimizer = torch.optim.Adam(model.parameters())
model.fc = nn.Identity()
model.head.drop = nn.Dropout(0.2)
model.act = nn.ReLU(inplace=True)
model.features = nn.Sequential(*list(model.features.children())[:-1])
model.reset_classifier(0)
train(model, optimizer)
""",
            note="trap: layers without parameters (and existing layers re-arranged): nothing to miss",
        ),
        Example(
            """
import torch
import torch.nn as nn

optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
model.fc = nn.Linear(2048, 10)
optimizer.add_param_group({"params": model.fc.parameters()})
train(model, optimizer)
""",
            note="trap: the new layer's parameters are added with add_param_group",
        ),
        Example(
            """
import torch
import torch.nn as nn

optimizer = torch.optim.SGD(model.backbone.parameters(), lr=0.01)
model.head = nn.Linear(2048, 10)
train(model, optimizer)

if args.pretrained:
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
else:
    net.fc = nn.Linear(512, 10)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
train(net, optimizer)
""",
            note="an optimizer built for another part of the model; a replacement in an exclusive branch",
        ),
        Example(
            """
import torch
import torch.nn as nn

for fold in range(5):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train(model, optimizer)
    model.fc = nn.Linear(512, 10)
evaluate(model)
""",
            note="the head is reset for the next fold, whose optimizer is built anew",
        ),
        Example(
            """
import torch
import torch.nn as nn

class QNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

class Agent(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = QNetwork()
        self.optimizer = torch.optim.Adam(self.parameters(), lr=1e-3)
        self.q_target = QNetwork()
        self.ema_head = nn.Linear(64, 4)
""",
            note="a target network or EMA copy kept out of the optimizer on purpose",
        ),
        Example(
            """
import torch
import torch.nn as nn

optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
model.fc = nn.Linear(2048, 10)
head_optimizer = torch.optim.Adam(model.fc.parameters(), lr=1e-3)
train(model, [optimizer, head_optimizer])
""",
            note="the new layer gets its own optimizer",
        ),
    ]

    def __init__(self, context) -> None:
        super().__init__(context)
        self.candidates: list[tuple[cst.Call, list[str], cst.FunctionDef | None]] = []

    def visit_Call(self, node: cst.Call) -> None:
        # Cheap filter during the traversal: the script model is only built for files that build an
        # optimizer-looking object (`SGD(...)`, `build_optimizer(...)`) from some `X.parameters()`, directly
        # or through one name (`params = [p for p in model.parameters() if p.requires_grad]`).
        name = dotted_name(node.func)
        last = name.rsplit(".", 1)[-1] if name else ""
        models = _models_optimised(node.args) if last[:1].isupper() or "optim" in last.lower() else []
        if models or _OPTIMIZER_NAME.search(last) and any(isinstance(a.value, cst.Name) for a in node.args):
            self.candidates.append((node, models, self.context.enclosing_function()))

    def leave_Module(self, node: cst.Module) -> None:
        if not self.candidates:
            return
        script = script_model(self.context)
        checked = set()
        for call, models, function in self.candidates:
            role = script.roles.role_of_value(call, function)
            if role is None or role.role != OPTIMIZER:
                continue
            models = models or _models_optimised(
                b.value for a in call.args if isinstance(a.value, cst.Name)
                for b in script.index.lookup(a.value.value, function)[-1:] if b.value is not None
            )
            statements = script.statements.of(function)
            statement = statements.statement_of(call)
            if statement is None or id(statement) in checked:
                continue
            checked.add(id(statement))
            kept_as = _bound_name(statement)
            if kept_as is None:
                continue
            for replacement in _replacements(script, function):
                model = next((m for m in models if _inside(replacement.slot, m)), None)
                if model is None or _NOT_TRAINED & set(words(replacement.slot.rsplit(".", 1)[-1])):
                    continue
                if not statements.runs_after(replacement.node, call):
                    continue
                if model in statements.written_between(call, replacement.node):
                    continue  # `model = other_model` in between: not the model the optimizer holds
                if not _handles_parameters_of(statements, replacement) and _still_used(
                    script, statements, kept_as, replacement
                ):
                    self._report(script, replacement, call, kept_as, model, function)

    def _report(self, script, replacement: _Replacement, optimizer: cst.Call, kept_as: str, model: str, function) -> None:
        layer = replacement.layer or replacement.slot
        built = script.roles.built_by(model, function)
        assign = replacement.node.body[0] if isinstance(replacement.node, cst.SimpleStatementLine) else replacement.node
        runtime = {
            "built_by": dotted_name(built.func) if built is not None else None,
            # `model.fc = nn.Linear(512, 10)`: the replacement the confirm pass re-enacts on the built model
            "target": script.code(assign.targets[0].target) if isinstance(assign, cst.Assign) else None,
            "new_layer": script.code(assign.value) if isinstance(assign, cst.Assign) else None,
        }
        self.report(
            replacement.node,
            f"`{layer}` is a new layer put in after `{kept_as}` was built from `{model}.parameters()` (line "
            f"{script.line(optimizer)}): its parameters are in no param group, so it never trains; build the "
            f"optimizer after this line or call `{kept_as}.add_param_group({{'params': {layer}.parameters()}})`",
            facts={"model": model, "layer": layer, "optimizer_line": script.line(optimizer), **runtime},
        )

    @staticmethod
    def runtime_check(finding: ProbeFinding, session) -> Verdict:
        """Build the model, an optimizer over its parameters, re-enact the replacement: which parameters
        does no param group hold?"""
        from nnlint.confirm.optimizer import parameters_left_out

        facts = finding.facts
        if not facts.get("target"):
            return unverifiable("the new layer is put in by a call, which the confirm pass does not re-enact")
        record, why = session.model_named(facts.get("built_by"))
        if record is None:
            return unverifiable(why)
        outcome = parameters_left_out(session, record, facts["model"], facts["target"], facts["new_layer"])
        if isinstance(outcome, str):
            return unverifiable(outcome)
        left_out, total = outcome
        data = {"model": record.name, "left_out": left_out, "parameters": total}
        replaced = f"after `{facts['target']} = {facts['new_layer']}` on {record.name}"
        if not left_out:
            return refuted(f"{replaced}, every parameter is in the optimizer", **data)
        return confirmed(
            f"{replaced}, {len(left_out)} of {total} parameter tensors are in no param group: {listed(left_out)}",
            **data,
        )


def _models_optimised(arguments) -> list[str]:
    """`X` of each `X.parameters()` / `X.named_parameters()` read by a call's arguments (or expressions)."""
    found = []
    for argument in arguments:
        for node in descendants(argument.value if isinstance(argument, cst.Arg) else argument):
            if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
                if node.func.attr.value in ("parameters", "named_parameters"):
                    owner = dotted_name(node.func.value)
                    if owner is not None and owner not in found:
                        found.append(owner)
    return found


def _inside(slot: str, model: str) -> bool:
    """A slot is inside the model whose parameters were given: `model.fc` in `model`, `model.classifier[…]`
    in `model.classifier`."""
    return slot.startswith(model + ".") or slot.startswith(model + "[")


def _bound_name(statement: cst.CSTNode) -> str | None:
    """The name the optimizer (or the object built around it) is kept in: `optimizer = SGD(...)`."""
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        small = statement.body[0]
        if isinstance(small, cst.Assign) and len(small.targets) == 1:
            return dotted_name(small.targets[0].target)
        if isinstance(small, cst.AnnAssign):
            return dotted_name(small.target)
    return None


def _replacements(script, function) -> list[_Replacement]:
    """Layers with parameters put into a model in `function` (None: the module's own code), directly or by
    a function of the file it calls."""
    statements = script.statements.of(function)
    found = [r for r in _assigned_layers(statements) if _has_parameters(r.node.value, script, function)]
    for call in statements.calls:
        found.extend(_by_call(script, call, function))
    return found


def _assigned_layers(statements) -> list[_Replacement]:
    """Assignments into a model's attribute or item (`model.fc = ...`, `model.classifier[6] = ...`),
    whatever the value: the caller checks that it brings parameters."""
    found = []
    for target, node in statements.assigned:
        slot = _slot(target)
        if slot is not None and ("." in slot or slot.endswith("[…]")):
            found.append(_Replacement(node, slot, _code(target)))
    return found


def _by_call(script, call: cst.Call, function) -> list[_Replacement]:
    """A layer with parameters put in by this call: `setattr(model, "fc", ...)`, `model.add_module(...)`,
    `layers.append(...)`, timm's `reset_classifier(n)`, or a file function assigning into its argument."""
    func = call.func
    name = func.attr.value if isinstance(func, cst.Attribute) else dotted_name(func)
    if name == "setattr" and len(call.args) == 3:
        owner, attribute = dotted_name(call.args[0].value), call.args[1].value
        if not owner or not isinstance(attribute, cst.SimpleString):
            return []
        if not _has_parameters(call.args[2].value, script, function):
            return []
        return [_Replacement(call, f"{owner}.{attribute.evaluated_value}")]
    if isinstance(func, cst.Attribute) and name in _ADDERS:
        owner = dotted_name(func.value)
        position = _ADDERS[name]
        module = next((a.value for a in call.args if a.keyword and a.keyword.value in ("module", "param")), None)
        if module is None and len(call.args) > position and call.args[position].keyword is None:
            module = call.args[position].value
        if not owner or module is None or not _has_parameters(module, script, function):
            return []
        if name == "append":
            return [_Replacement(call, f"{owner}[…]", f"{owner}[-1]")]
        if name == "insert":
            return [_Replacement(call, f"{owner}[…]", f"{owner}[{_code(call.args[0].value)}]")]
        return [_Replacement(call, f"{owner}.{_added_name(call)}")]
    if isinstance(func, cst.Attribute) and name == "reset_classifier":
        owner = dotted_name(func.value)
        classes = call.args[0].value if call.args else None
        if owner and classes is not None and integer_value(classes) != 0:
            return [_Replacement(call, f"{owner}.<classifier>", f"{owner}.get_classifier()")]
        return []
    callee = script.index.callee(call, function)
    if callee is None or callee is function:
        return []
    found = []
    for replacement in _assigned_layers(script.statements.of(callee)):
        head, _, rest = replacement.slot.partition(".")
        argument = head if head == "self" else argument_for(call, callee, head)
        owner = argument if isinstance(argument, str) else (dotted_name(argument) if argument is not None else None)
        if owner and _has_parameters(replacement.node.value, script, callee):
            layer = f"{owner}{replacement.layer[len(head):]}"
            found.append(_Replacement(call, f"{owner}.{rest}", layer))
    return found


def _handles_parameters_of(statements, replacement: _Replacement) -> bool:
    """The code reads the new layer's parameters after putting it in (a second optimizer, a param group,
    freezing it), or hands the layer to an optimizer (`Adam([self.log_alpha])`): it knows where they go."""
    after = statements.start(replacement.node)
    wanted = {f"{replacement.slot}.{method}" for method in ("parameters", "named_parameters", "requires_grad_")}
    if any(name in wanted and statements.start(node) > after for name, node in statements.reads):
        return True
    return any(
        _OPTIMIZER_NAME.search((dotted_name(call.func) or "").rsplit(".", 1)[-1]) and statements.start(call) > after
        and any(isinstance(n, (cst.Name, cst.Attribute)) and dotted_name(n) == replacement.slot
                for n in descendants(call))
        for call in statements.calls
    )


def _still_used(script, statements, kept_as: str, replacement: _Replacement) -> bool:
    """The optimizer built before the replacement is read after it (before any rebuild), or kept on
    `self` where other methods read it; also around a loop that holds the replacement."""
    after = statements.start(replacement.node)
    events = sorted(
        [(statements.start(node), "read") for name, node in statements.reads if name == kept_as]
        + [(statements.start(node), "write") for name, node in statements.writes if name == kept_as]
    )
    if any(
        isinstance(call.func, cst.Attribute) and call.func.attr.value == "add_param_group"
        and dotted_name(call.func.value) == kept_as and statements.start(call) > after
        for call in statements.calls
    ):
        return False
    for start, kind in events:
        if start > after:
            return kind == "read"
    loop = next((n for n in statements.ancestors(replacement.node) if isinstance(n, (cst.For, cst.While))), None)
    if loop is not None:
        inside = [kind for start, kind in events if statements.start(loop) < start < after]
        if inside and "write" not in inside:
            return True
    if kept_as.startswith("self.") and isinstance(statements.scope, cst.FunctionDef):
        owner = script.index.owner_class.get(statements.scope)
        return owner is not None and len(script.index.bindings.get((owner, kept_as), [])) == 1
    return False


def _slot(target: cst.BaseExpression) -> str | None:
    """`model.fc` -> "model.fc"; `model.classifier[6]` -> "model.classifier[…]"."""
    if isinstance(target, cst.Subscript):
        owner = dotted_name(target.value)
        return f"{owner}[…]" if owner else None
    return dotted_name(target)


def _code(node: cst.CSTNode) -> str:
    return " ".join(source_code(node).split())


def _added_name(call: cst.Call) -> str:
    first = call.args[0].value if call.args else None
    return first.evaluated_value if isinstance(first, cst.SimpleString) else "<added>"


def _has_parameters(value: cst.BaseExpression, script, function, depth: int = 0) -> bool:
    """The expression builds a new module with parameters (or a new nn.Parameter): a torch layer, a
    container holding one, a module class of the file, a torchvision/timm model."""
    if depth > 3:
        return False
    if isinstance(value, cst.Name):
        bindings = script.index.lookup(value.value, function)
        return len(bindings) == 1 and bindings[0].value is not None and _has_parameters(
            bindings[0].value, script, function, depth + 1
        )
    while isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and value.func.attr.value in _WRAPPERS:
        value = value.func.value  # `nn.Linear(512, 10).to(device)`
    if not isinstance(value, cst.Call):
        return False
    qualified = script.context.call_name(value) or dotted_name(value.func) or ""
    last = qualified.rsplit(".", 1)[-1]
    if qualified in ("torch.nn.Parameter", "torch.nn.parameter.Parameter"):
        return not any(
            a.keyword and a.keyword.value == "requires_grad" and dotted_name(a.value) == "False" for a in value.args
        )
    if qualified.startswith("torch.nn.") and last in _CONTAINERS:
        # `nn.Sequential(nn.Dropout(), nn.Linear(...))`, `nn.ModuleList([...])`; not `*list(m.children())[:-1]`
        parts = [a.value for a in value.args if not a.star] + [
            element.value for a in value.args if isinstance(a.value, (cst.List, cst.Tuple))
            for element in a.value.elements if isinstance(element, cst.Element)
        ]
        return any(_has_parameters(part, script, function, depth + 1) for part in parts)
    if qualified.startswith("torch.nn.") and last[:1].isupper():
        return not _PARAMETER_FREE.match(last)
    if last in script.index.module_classes:
        return _class_has_parameters(script, script.index.classes[last], depth)
    return qualified.startswith(_MODEL_FACTORIES)


def _class_has_parameters(script, cls: cst.ClassDef, depth: int) -> bool:
    """A module class of the file builds a layer with parameters (`class Swish(nn.Module)` builds none); a
    base class from elsewhere may, so it counts."""
    if depth > 3:
        return False
    if any((script.context.qualified_name(base.value) or "").rpartition(".")[0] not in ("torch.nn", "")
           or dotted_name(base.value) in script.index.module_classes
           and _class_has_parameters(script, script.index.classes[dotted_name(base.value)], depth + 1)
           for base in cls.bases):
        return True
    return any(isinstance(node, cst.Call) and _has_parameters(node, script, None, depth + 1)
               for node in descendants(cls.body))
