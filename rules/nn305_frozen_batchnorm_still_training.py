import re
from dataclasses import dataclass

import libcst as cst

from nnlint.confirm.protocol import ProbeFinding, Verdict, confirmed, listed, refuted, unverifiable
from nnlint.names import dotted_name
from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.modules import has_batchnorm
from nnlint.script.objects import Origin, children_of, unwrap
from nnlint.script.roles import OPTIMIZER, Role
from nnlint.script.timeline import MODEL_CALL, TRAIN
from nnlint.script.training import TRAIN_MODE
from nnlint.tree import descendants

# Code that already keeps frozen BatchNorm in eval (timm's freeze_batch_norm_2d, torchvision's
# FrozenBatchNorm2d, mmcv's norm_eval, a `train()` override, `track_running_stats=False`).
_HANDLED = re.compile(
    r"FrozenBatchNorm|freeze_batch_norm|freeze_bn|freeze_norm|norm_eval|bn_eval|fix_bn|set_bn|"
    r"track_running_stats|def train\(self"
)
_NO_ROLE = Role("", None, "")
_ITERATION_WRAPPERS = ("list", "enumerate", "tqdm")
# A function applied to every module that puts normalisation layers in eval: `model.apply(set_bn_eval)`.
_EVAL_APPLIED = re.compile(r"bn|norm|eval|freeze", re.IGNORECASE)
_NAME_TESTS = ("startswith", "endswith", "__contains__")


@dataclass(frozen=True)
class _Freeze:
    node: cst.CSTNode  # the `p.requires_grad = False` statement or `requires_grad_(False)` call
    path: str  # what is frozen, as the function names it: "model", "self.backbone"
    function: cst.FunctionDef | None
    partial: str  # "" or why only part of `path` is frozen ("except `fc`")


class FrozenBatchNormStillTraining(Rule):
    """
    ## What it does
    Flags parameters frozen with `requires_grad = False` (a loop over
    `X.parameters()`, `X.requires_grad_(False)`, `named_parameters()`
    filtered by name) on a network that contains BatchNorm (a torchvision
    or timm CNN such as ResNet, DenseNet, EfficientNet, MobileNet, or a
    class of the file with `nn.BatchNorm*`), when that network is still
    in train mode in the training loop (`model.train()`, or never put in
    `eval()`) and nothing puts the frozen part back in `eval()`.

    ## Why is this bad?
    `requires_grad = False` stops the gradients, not BatchNorm: in train
    mode every forward still replaces the running mean and variance with
    those of the new batches. The "frozen" feature extractor drifts away
    from the statistics its weights were trained with, features shift
    under the new head, and the small fine-tuning batches make the
    statistics noisy, so evaluation (which uses them) is worse than
    training suggests. Linear-evaluation protocols (MoCo, SimSiam) keep
    the frozen backbone in `eval()` for exactly this reason.

    ## Example
    ```python
    model = torchvision.models.resnet50(weights="DEFAULT")
    for p in model.parameters():
        p.requires_grad = False
    model.fc = nn.Linear(2048, 10)
    for epoch in range(epochs):
        model.train()
        ...
    ```

    ## Use instead
    ```python
    for epoch in range(epochs):
        model.train()
        model.apply(lambda m: m.eval() if isinstance(m, nn.BatchNorm2d) else None)
        ...
    ```
    or `model.backbone.eval()` after each `model.train()`, an overridden
    `train()` that re-evals the frozen part, or timm's
    `freeze_batch_norm_2d` / torchvision's `FrozenBatchNorm2d`. Adapting
    the statistics to the new data on purpose is a choice: say so with
    `# noqa: NN305`.

    ## Known problems
    Only models whose BatchNorm the file shows (a known CNN factory, or a
    class of the file) are judged; a freeze under a condition other than a
    parameter-name test is skipped.

    ## Runtime confirmation
    Planned: run one train-mode forward of the model as the loop does and
    compare the frozen part's BatchNorm running statistics before and
    after (confirmed when they change).
    """

    code = "NN305"
    name = "frozen-batchnorm-still-training"
    severity = "warning"
    summary = "Parameters frozen with requires_grad=False on a BatchNorm network still trained in train() mode"
    triggers = ("requires_grad = False", "requires_grad=False", "requires_grad_(False)")

    bad = [
        Example(
            """
import torch
import torch.nn as nn
from torchvision import models

model = models.densenet121(pretrained=True)
for param in model.parameters():
    param.requires_grad = False  # <--
model.classifier = nn.Linear(1024, 2)
optimizer = torch.optim.Adam(model.classifier.parameters(), lr=0.003)
for epoch in range(epochs):
    model.train()
    for inputs, labels in trainloader:
        optimizer.zero_grad()
        loss = criterion(model(inputs), labels)
        loss.backward()
        optimizer.step()
    model.eval()
    evaluate(model, testloader)
""",
            message="`model`",
        ),
        Example(
            """
import torch
import torchvision

model = torchvision.models.resnet18(pretrained=False, num_classes=10)
model.load_state_dict(state_dict, strict=False)
for name, param in model.named_parameters():
    if name not in ["fc.weight", "fc.bias"]:
        param.requires_grad = False  # <--
optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
for epoch in range(100):
    for x, y in train_loader:
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
""",
            note="SimCLR-style linear evaluation: the model is never put in eval(), so it trains in train mode",
        ),
        Example(
            """
import torch
import torch.nn as nn
import torchvision

class Classifier(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        resnet = torchvision.models.resnet50(weights="IMAGENET1K_V2")
        self.backbone = nn.Sequential(*list(resnet.children())[:-1])
        self.backbone.requires_grad_(False)  # <--
        self.head = nn.Linear(2048, num_classes)

    def forward(self, x):
        return self.head(self.backbone(x).flatten(1))

def train(model, loader, optimizer):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

def main():
    model = Classifier(10)
    optimizer = torch.optim.SGD(model.head.parameters(), lr=0.1)
    for epoch in range(30):
        train(model, loader, optimizer)
""",
            message="`model.backbone`",
            note="frozen inside the model class, trained by a function the file calls",
        ),
        Example(
            """
import torch
import torch.nn as nn
import torchvision.models as models

teacher = models.resnet101(pretrained=True)
for p in teacher.parameters():
    p.requires_grad = False  # <--
student = models.resnet18()
optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
for x, y in loader:
    with torch.no_grad():
        soft = teacher(x).softmax(-1)
    loss = kd_loss(student(x), soft, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
""",
            note="a frozen distillation teacher left in train mode: no_grad() does not stop BatchNorm updates",
        ),
        Example(
            """
import torch
import torch.nn as nn
import torchvision

model = torchvision.models.resnet18(pretrained=True)
for i, child in enumerate(model.children()):
    if i < 6:
        for param in child.parameters():
            param.requires_grad = False  # <--
model.fc = nn.Linear(512, 10)
optimizer = torch.optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.01)
for epoch in range(10):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
""",
            message="some of its children",
            note="the first children of a ResNet (stem, bn1, layer1, layer2) frozen in a loop",
        ),
        Example(
            """
import torch
import torch.nn as nn
from torchvision import models

def set_parameter_requires_grad(model, feature_extracting):
    if feature_extracting:
        for param in model.parameters():
            param.requires_grad = False  # <--

def initialize_model(num_classes, feature_extract):
    model_ft = models.resnet18(pretrained=True)
    set_parameter_requires_grad(model_ft, feature_extract)
    model_ft.fc = nn.Linear(model_ft.fc.in_features, num_classes)
    return model_ft, 224

def train_model(model, dataloaders, criterion, optimizer, num_epochs):
    for epoch in range(num_epochs):
        for phase in ["train", "val"]:
            if phase == "train":
                model.train()
            else:
                model.eval()
            for inputs, labels in dataloaders[phase]:
                optimizer.zero_grad()
                loss = criterion(model(inputs), labels)
                if phase == "train":
                    loss.backward()
                    optimizer.step()

model_ft, input_size = initialize_model(2, feature_extract=True)
params_to_update = [p for p in model_ft.parameters() if p.requires_grad]
optimizer_ft = torch.optim.SGD(params_to_update, lr=0.001, momentum=0.9)
train_model(model_ft, dataloaders, nn.CrossEntropyLoss(), optimizer_ft, num_epochs=15)
""",
            note="the feature-extraction recipe of the torchvision fine-tuning tutorial, through three functions",
        ),
    ]
    good = [
        Example(
            """
import torch
from torchvision import models

model = models.resnet50(pretrained=True)
for name, param in model.named_parameters():
    if name not in ["fc.weight", "fc.bias"]:
        param.requires_grad = False
optimizer = torch.optim.SGD(model.parameters(), lr=30.0)
for epoch in range(100):
    model.eval()
    for images, target in train_loader:
        loss = criterion(model(images), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
""",
            note="trap: MoCo/SimSiam linear evaluation keeps the frozen model in eval() while training the head",
        ),
        Example(
            """
import torch
import torchvision

model = torchvision.models.resnet50(pretrained=True)
for p in model.layer1.parameters():
    p.requires_grad = False
for epoch in range(10):
    model.train()
    model.layer1.eval()
    for x, y in loader:
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
""",
            note="trap: the frozen part put in eval after model.train() each epoch",
        ),
        Example(
            """
import torch
import torch.nn as nn
import torchvision

class FineTuner(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = torchvision.models.resnet50(pretrained=True)
        for p in self.backbone.parameters():
            p.requires_grad = False
        self.head = nn.Linear(1000, 10)

    def train(self, mode=True):
        super().train(mode)
        self.backbone.eval()
        return self

model = FineTuner()
for x, y in loader:
    model.train()
    optimizer.zero_grad()
    criterion(model(x), y).backward()
    optimizer.step()
""",
            note="trap: an overridden train() that re-evals the frozen BatchNorm",
        ),
        Example(
            """
import torch
import timm

model = timm.create_model("vit_base_patch16_224", pretrained=True, num_classes=10)
for name, p in model.named_parameters():
    if not name.startswith("head"):
        p.requires_grad = False
model.train()
for x, y in loader:
    optimizer.zero_grad()
    criterion(model(x), y).backward()
    optimizer.step()
""",
            note="trap: a ViT has LayerNorm only, nothing to drift",
        ),
        Example(
            """
import torch
import torchvision

backbone = torchvision.models.resnet50(pretrained=True)
backbone.requires_grad_(False)
backbone.eval()
with torch.no_grad():
    features = [backbone(x) for x, _ in loader]
""",
            note="trap: everything frozen, inference only",
        ),
        Example(
            """
import torch
from torchvision.ops.misc import FrozenBatchNorm2d
import torchvision

model = torchvision.models.resnet50(norm_layer=FrozenBatchNorm2d)
for p in model.layer1.parameters():
    p.requires_grad = False
model.train()
for x, y in loader:
    optimizer.zero_grad()
    criterion(model(x), y).backward()
    optimizer.step()
""",
            note="trap: FrozenBatchNorm2d keeps fixed statistics in train mode",
        ),
        Example(
            """
import torch

for epoch in range(epochs):
    for real, _ in loader:
        for p in netD.parameters():
            p.requires_grad = False
        loss_g = -netD(netG(noise())).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        for p in netD.parameters():
            p.requires_grad = True
""",
            note="a GAN discriminator frozen only for the generator's step is trained too",
        ),
        Example(
            """
import torch
import torchvision

model = torchvision.models.resnet50(pretrained=True)
for p in model.fc.parameters():
    p.requires_grad = False
model.train()
for x, y in loader:
    optimizer.zero_grad()
    criterion(model(x), y).backward()
    optimizer.step()
""",
            note="the frozen part (the classifier) holds no BatchNorm",
        ),
        Example(
            """
import torch
import torchvision

student = torchvision.models.resnet18(num_classes=10)
teacher = torchvision.models.resnet18(num_classes=10)
teacher.requires_grad_(False)
optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
for x, y in loader:
    student.train()
    teacher.train()
    with torch.no_grad():
        target = teacher(x).softmax(-1)
    loss = consistency(student(x), target) + criterion(student(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    update_ema(teacher, student)
""",
            note="a fully frozen mean teacher put in train() explicitly, on purpose",
        ),
    ]

    def __init__(self, context) -> None:
        super().__init__(context)
        self.freezes: list[_Freeze] = []
        self.unfrozen: list[_Freeze] = []  # `requires_grad = True` again: a GAN's discriminator, gradual unfreezing

    def visit_For(self, node: cst.For) -> None:
        owner = _parameters_of(node.iter)
        if owner is None:
            return
        target = node.target
        if isinstance(target, cst.Tuple) and len(target.elements) == 2:
            name_var, target = dotted_name(target.elements[0].value), target.elements[1].value
        else:
            name_var = None
        param = dotted_name(target)
        if param is None:
            return
        for statement, tests in _statements_with_tests(node.body.body, []):
            requires_grad = _sets_requires_grad(statement, param)
            if requires_grad is None:
                continue
            if requires_grad:
                self.unfrozen.append(_Freeze(statement, owner, self.context.enclosing_function(), ""))
                continue
            partial = _name_filter(tests, name_var)
            if partial is None:
                continue  # frozen under a condition that is not about the parameter's name
            if any(isinstance(loop, cst.For) and children_of(loop.iter) and owner in _names(loop.target)
                   for loop in self.context.enclosing_loops()):
                partial = "some of its children"
            self.freezes.append(_Freeze(statement, owner, self.context.enclosing_function(), partial))

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value == "requires_grad_":
            owner = dotted_name(func.value)
            if owner is None:
                return
            value = node.args[0].value if node.args else None
            if dotted_name(value) == "False" if value is not None else False:
                self.freezes.append(_Freeze(node, owner, self.context.enclosing_function(), ""))
            else:
                self.unfrozen.append(_Freeze(node, owner, self.context.enclosing_function(), ""))

    def leave_Module(self, node: cst.Module) -> None:
        if not self.freezes or _HANDLED.search(self.context.source):
            return
        script = script_model(self.context)
        objects = script.objects
        evaluated = _evaluated_parts(script)
        trained = _trained_in_train_mode(script)
        for freeze in self.freezes:
            # Each object the freeze may apply to (one per call of a `freeze(model)` helper, per `if` arm
            # choosing the architecture) that has BatchNorm.
            origins = objects.origins(freeze.path, freeze.function, at=freeze.node)
            frozen = [origin for origin in origins if has_batchnorm(objects, *origin)]
            if not frozen:
                continue
            if objects.covers(frozen, evaluated):
                continue  # the frozen part (or its BatchNorm layers) is put in eval somewhere
            unfrozen = [o for u in self.unfrozen for o in objects.origins(u.path, u.function, at=u.node)]
            if objects.covers(frozen, unfrozen, only_wider=True):
                continue  # trained again later (a GAN's discriminator, gradual unfreezing)
            for origins, forward, setter, loop in trained:
                part = objects.part_of(frozen, origins)
                if part is None or _after_training(script, freeze, loop) or _same_setting(objects, freeze.node, setter):
                    continue
                if not part and not freeze.partial and setter is not None and not _optimised(script, frozen):
                    continue  # a fully frozen model put in train() on purpose (a mean teacher's BatchNorm)
                self._report(script, freeze, forward, setter, loop.node, part, frozen[0])
                break

    def _report(self, script, freeze: _Freeze, forward, setter, loop, path: str, origin) -> None:
        subject = dotted_name(forward.node.func) or forward.subject or "model"  # as the training call writes it
        frozen = f"{subject}{'.' + path if path else ''}"
        what = f"`{frozen}`" + (f" ({freeze.partial})" if freeze.partial else "")
        if setter is not None:
            mode = f"`{script.code(setter.node)}` (line {script.line(setter.node)}) puts it in train mode for"
            after = f" after each `{script.code(setter.node)}`"
        else:
            mode, after = f"`{subject}` is never put in eval() before", ""
        if path or not (freeze.partial or setter is not None):
            fix = f"call `{frozen}.eval()`{after}"
        else:  # the whole model is frozen but part of it learns (a new head): only its BatchNorm layers
            fix = f"put its BatchNorm layers in eval(){after}"
        self.report(
            freeze.node,
            f"{what} is frozen with requires_grad=False but its BatchNorm layers keep updating their running "
            f"statistics: {mode} the training loop at line {script.line(loop)}; {fix}",
            facts={
                "frozen": frozen,
                "train_line": script.line(setter.node) if setter is not None else None,
                **_runtime_facts(origin),
            },
        )

    @staticmethod
    def runtime_check(finding: ProbeFinding, session) -> Verdict:
        """Build the model, freeze the part as the script does, run one train-mode forward of a copy: do the
        running statistics of its batch norms move?"""
        from nnlint.confirm.modes import running_statistics_drift

        record, why = session.model_named(finding.facts.get("built_by"))
        if record is None:
            return unverifiable(why)
        part = finding.facts.get("part", "")
        try:
            drifted, norms = running_statistics_drift(session, record, part)
        except AttributeError:
            return unverifiable(f"{record.name} as built here has no submodule `{part}`")
        data = {"model": record.name, "part": part, "batch_norms": norms, "drifted": drifted}
        where = f"`{part}` of {record.name}" if part else record.name
        if not norms:
            return refuted(f"{where} holds no batch norm with running statistics", **data)
        if not drifted:
            return refuted(
                f"in a train-mode forward of {record.name}, the running statistics of the {len(norms)} batch norm(s) "
                f"in {where} do not move",
                **data,
            )
        return confirmed(
            f"one train-mode forward of {record.name} on {record.probe.describe_input()}, {where} frozen, moves the "
            f"running statistics of {len(drifted)} of the {len(norms)} batch norm(s) in it: {listed(drifted)}",
            **data,
        )


def _runtime_facts(origin) -> dict:
    """The class that builds the frozen model and the frozen part's path in it, for the confirm pass."""
    binding, part = origin
    built = unwrap(binding.value) if binding.value is not None else None
    if isinstance(built, cst.Call):
        return {"built_by": dotted_name(built.func), "part": part}
    if isinstance(binding.node, cst.ClassDef):  # `self.backbone` inside the model's own class
        return {"built_by": binding.node.name.value, "part": part}
    return {"built_by": None, "part": part}


def _same_setting(objects, freeze: cst.CSTNode, setter) -> bool:
    """The freeze and the train() call sit under `if`s on one setting (`if args.weights == "freeze"` /
    `if args.weights == "finetune": model.train()`): the configuration that freezes is not the one that
    trains in train mode."""
    return setter is not None and bool(_guards(objects, freeze) & _guards(objects, setter.node))


def _guards(objects, target: cst.CSTNode) -> set[str]:
    """The settings the `if` tests around a node read (maximal dotted names: `args.weights`, not `args`)."""
    names = {
        dotted_name(n)
        for parent in objects.ancestors(target) if isinstance(parent, (cst.If, cst.IfExp))
        for n in descendants(parent.test) if isinstance(n, (cst.Name, cst.Attribute)) and dotted_name(n)
    }
    return {name for name in names if not any(other.startswith(name + ".") for other in names)}


def _names(target: cst.BaseExpression) -> set[str]:
    """The names a for-loop target binds: `child`, `(i, child)`."""
    if isinstance(target, (cst.Tuple, cst.List)):
        return {dotted_name(e.value) for e in target.elements} - {None}
    return {dotted_name(target)} - {None}


def _parameters_of(iterable: cst.BaseExpression) -> str | None:
    """`X` of `for p in X.parameters()` / `X.named_parameters()` (through `list(...)`, `enumerate(...)`)."""
    while isinstance(iterable, cst.Call) and iterable.args and dotted_name(iterable.func) in _ITERATION_WRAPPERS:
        iterable = iterable.args[0].value
    if isinstance(iterable, cst.Call) and isinstance(iterable.func, cst.Attribute):
        if iterable.func.attr.value in ("parameters", "named_parameters") and not iterable.args:
            return dotted_name(iterable.func.value)
    return None


def _statements_with_tests(statements, tests):
    """Every simple statement of a loop body with the `if` tests (and whether it is in the else arm) above it."""
    for statement in statements:
        if isinstance(statement, cst.BaseSmallStatement):  # `for p in m.parameters(): p.requires_grad = False`
            yield statement, tests
        elif isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                yield small, tests
        elif isinstance(statement, cst.If):
            yield from _statements_with_tests(statement.body.body, [*tests, (statement.test, True)])
            orelse = statement.orelse
            if isinstance(orelse, cst.Else):
                yield from _statements_with_tests(orelse.body.body, [*tests, (statement.test, False)])
            elif isinstance(orelse, cst.If):
                yield from _statements_with_tests([orelse], [*tests, (statement.test, False)])


def _sets_requires_grad(statement: cst.CSTNode, param: str) -> bool | None:
    """False/True for `p.requires_grad = False/True` or `p.requires_grad_(False/True)`; None otherwise."""
    if isinstance(statement, cst.Assign) and any(dotted_name(t.target) == f"{param}.requires_grad" for t in
                                                 statement.targets):
        return _literal(statement.value)
    if isinstance(statement, cst.Expr) and isinstance(statement.value, cst.Call):
        call = statement.value
        if dotted_name(call.func) == f"{param}.requires_grad_":
            return _literal(call.args[0].value) if call.args else True
    return None


def _literal(value: cst.BaseExpression) -> bool | None:
    name = dotted_name(value)
    return {"True": True, "False": False}.get(name or "")


def _name_filter(tests, name_var: str | None) -> str | None:
    """What a freeze under these tests spares, for the message: nothing (empty text) when it is
    unconditional, "except `fc.weight`" under `if name not in [...]`; None when another condition decides
    (a positive name test, a counter): which part is frozen is not known well enough."""
    spared = []
    for test, taken in tests:
        words = _name_test(test, name_var)
        if words is None:
            return None
        positive, literals = words
        if positive == taken:
            return None  # freezes only the named parts
        spared.extend(literals)
    return f"except {', '.join(f'`{s}`' for s in sorted(spared))}" if spared else ""


def _name_test(test: cst.BaseExpression, name_var: str | None):
    """(`True` for a test that holds for the named part, the names) for tests on the parameter's name:
    `"fc" in name`, `name.startswith("fc")`, `name not in [...]`, `not name.startswith(...)`."""
    if name_var is None:
        return None
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        inner = _name_test(test.expression, name_var)
        return (not inner[0], inner[1]) if inner else None
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
        comparison = test.comparisons[0]
        operator = comparison.operator
        sides = (test.left, comparison.comparator)
        if isinstance(operator, (cst.In, cst.NotIn)) and any(dotted_name(side) == name_var for side in sides):
            literals = [n.evaluated_value for side in sides for n in descendants(side)
                        if isinstance(n, cst.SimpleString)]
            return (isinstance(operator, cst.In), literals) if literals else None
    if isinstance(test, cst.Call) and isinstance(test.func, cst.Attribute) and dotted_name(test.func.value) == name_var:
        if test.func.attr.value in _NAME_TESTS:
            literals = [n.evaluated_value for n in descendants(test) if isinstance(n, cst.SimpleString)]
            return (True, literals) if literals else None
    return None


def _after_training(script, freeze: _Freeze, loop) -> bool:
    """A freeze written after the training loop in the same function (e.g. before exporting) does not
    affect it."""
    return loop.function is freeze.function and script.line(freeze.node) > script.line(loop.node)


def _optimised(script, frozen: list[Origin]) -> bool:
    """An optimizer of the file is built from the frozen model's parameters: part of it still learns."""
    index, objects = script.index, script.objects
    for call, function in index.calls:
        # `SGD(model.parameters())`, or through one name: `params = [p for p in model.parameters() if ...]`
        read = [a.value for a in call.args] + [
            b.value for a in call.args if isinstance(a.value, cst.Name)
            for b in index.lookup(a.value.value, function) if b.value is not None
        ]
        owners = {
            dotted_name(n.func.value) for value in read for n in descendants(value)
            if isinstance(n, cst.Call) and isinstance(n.func, cst.Attribute)
            and n.func.attr.value in ("parameters", "named_parameters")
        } - {None}
        if not owners or (script.roles.role_of_value(call, function) or _NO_ROLE).role != OPTIMIZER:
            continue
        if any(objects.covers(frozen, objects.origins(owner, function, call)) for owner in owners):
            return True
    return False


def _evaluated_parts(script) -> list[Origin]:
    """The parts of models the file puts in eval (`model.backbone.eval()`, `self.encoder.train(False)`) and
    the models whose modules a loop or `apply` puts in eval one by one (`for m in model.modules(): m.eval()`)."""
    index, objects = script.index, script.objects
    found = []
    for call, function in index.calls:
        func = call.func
        if not isinstance(func, cst.Attribute):
            continue
        method = func.attr.value
        if method == "eval" or method == "train" and call.args and dotted_name(call.args[0].value) == "False":
            receiver = dotted_name(func.value)
            if receiver is None:
                continue
            if "." not in receiver:
                loop = next((b for b in index.lookup(receiver, function) if isinstance(b.node, cst.For)), None)
                owner = _modules_of(loop.node.iter) if loop is not None else None
                if owner is not None:
                    found.extend(objects.origins(owner, function, call))
                    continue
            found.extend(origin for origin in objects.origins(receiver, function, call) if origin[1])
        elif method == "apply" and call.args and dotted_name(func.value) and _evaluates(call.args[0].value):
            found.extend(objects.origins(dotted_name(func.value), function, call))
    return found


def _trained_in_train_mode(script):
    """(the models it calls, the forward, the train() event that set the mode or None, the loop) for each
    model call of a training iteration that may run in train mode."""
    found = []
    for iteration in script.training.iterations:
        if iteration.loop is None:
            continue
        scope = iteration.root.node if isinstance(iteration.root.node, cst.FunctionDef) else None
        for event in iteration.events:
            if event.kind != MODEL_CALL or not event.subject:
                continue
            setters = [setter for mode, setter in script.training.modes(event.node) if mode == TRAIN_MODE]
            if not setters:
                continue
            # Read the model where the call is written (`model(x)` inside `main()` or `train(model, ...)`);
            # failing that, as the entry point knows it, where the entry point calls in.
            written = dotted_name(event.node.func) if isinstance(event.node, cst.Call) else None
            origins = (written and script.objects.origins(written, event.function, event.node)) or script.objects.origins(
                event.subject, scope, event.via[0] if event.via else event.node
            )
            if origins:
                setter = next((s for s in setters if s is not None and s.kind == TRAIN), None)
                found.append((origins, event, setter, iteration.loop))
    return found


def _evaluates(function: cst.BaseExpression) -> bool:
    """`set_bn_eval`, `lambda m: m.eval() if isinstance(m, nn.BatchNorm2d) else None`: not `init_weights`."""
    if isinstance(function, cst.Lambda):
        return any(isinstance(n, cst.Attribute) and n.attr.value == "eval" for n in descendants(function.body))
    name = dotted_name(function)
    return bool(name and _EVAL_APPLIED.search(name))


def _modules_of(iterable: cst.BaseExpression) -> str | None:
    """`X` of `for m in X.modules()` / `X.children()`."""
    if isinstance(iterable, cst.Call) and isinstance(iterable.func, cst.Attribute):
        if iterable.func.attr.value in ("modules", "children", "named_modules", "named_children"):
            return dotted_name(iterable.func.value)
    return None
