from __future__ import annotations

import libcst as cst

from nnlint.names import dotted_name
from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.roles import MODEL
from nnlint.tree import source_code

# A wrapper's forward that only hands over to the wrapped module (export wrappers, adapters) is not the smell.
_DELEGATING_METHODS = frozenset({"forward", "__call__"})


class ForwardCalledDirectly(Rule):
    """
    ## What it does
    Flags `model.forward(x)` where `model` evidently holds an `nn.Module`
    (the script's model role): a name built in the file by a module class of
    the file, `nn.Sequential(...)`, `torchvision.models.*`, or whose
    `.parameters()` an optimizer trains; else a name that holds a network by
    convention (`model`, `net`, `encoder`, ...) and is bound to nothing else;
    an attribute the class sets to a module (`self.conv = nn.Conv2d(...)`,
    then `self.conv.forward(x)`); and `model.module`.

    ## Why is this bad?
    `model(x)` goes through `nn.Module.__call__`, which runs the forward
    pre-hooks, forward hooks and backward hooks registered on the module;
    `model.forward(x)` skips them. Whatever relies on hooks then silently does
    nothing for that call: pruning and weight norm masks, quantization
    observers, activation capture for feature extraction or Grad-CAM,
    profilers; and `model.module.forward(x)` also bypasses the DataParallel
    or DDP wrapper around it (its input scattering and buffer broadcast).

    ## Example
    ```python
    for images, labels in trainloader:
        output = model.forward(images)
        loss = criterion(output, labels)
    ```

    ## Use instead
    ```python
    for images, labels in trainloader:
        output = model(images)
        loss = criterion(output, labels)
    ```

    ## Known problems
    Not flagged, because they are how the language or the library is meant
    to be used: `super().forward(...)`, an unbound call on a class
    (`Base.forward(self, x)`), `self.forward(...)` inside the class, a
    wrapper's `forward` that only hands over to the wrapped module (`return
    self.model.forward(...)`, or passing its own `*args, **kwargs` through),
    and a call inside a hook (where `__call__` would re-enter the hooks).
    Objects that are not modules (autograd `Function`s, OpenCV's `cv2.dnn`
    nets, RPC remote modules) are left alone when the file shows what they
    are; a module held in a list and called in a loop is not followed.
    """

    code = "NN702"
    name = "forward-called-directly"
    severity = "info"
    summary = "model.forward(x) skips the module's hooks: call model(x)"
    triggers = (".forward(",)
    default_enabled = False

    bad = [
        Example(
            """
import torch
from torch import nn

class Network(nn.Module):
    ...

model = Network(784, 10, [512, 256, 128])
for images, labels in trainloader:
    output = model.forward(images)  # <--
    loss = criterion(output, labels)
""",
            message="model(images)",
            note="udacity deep-learning-v2-pytorch fc_model",
        ),
        Example(
            """
import torch
import torch.nn as nn

class Net(nn.Module):
    ...

class DQN(object):
    def __init__(self):
        self.eval_net, self.target_net = Net(), Net()
        self.optimizer = torch.optim.Adam(self.eval_net.parameters(), lr=LR)

    def choose_action(self, x):
        actions_value = self.eval_net.forward(x)  # <--
        return actions_value
""",
            note="MorvanZhou DQN: an attribute of a plain class, a model because an optimizer trains it",
        ),
        Example(
            """
import torch.nn as nn
import torch.nn.functional as F

class ResNeXtBottleneck(nn.Module):
    def __init__(self, in_channels, D):
        super(ResNeXtBottleneck, self).__init__()
        self.conv_reduce = nn.Conv2d(in_channels, D, kernel_size=1, bias=False)
        self.bn_reduce = nn.BatchNorm2d(D)

    def forward(self, x):
        bottleneck = self.conv_reduce.forward(x)  # <--
        return F.relu(self.bn_reduce.forward(bottleneck), inplace=True)  # <--
""",
            note="prlz77/ResNeXt.pytorch: submodules called through forward inside forward",
        ),
        Example(
            """
def evaluate(model, batch):
    _, train_acc = model.forward(batch, mode="train")  # <--
    return model.module.forward(batch)  # <--
""",
            note="a LightningModule called from outside; .module.forward also bypasses DDP",
        ),
    ]
    good = [
        Example(
            """
from torch import nn

class Block(nn.LayerNorm):
    def forward(self, x):
        x = super().forward(x)
        x = super(Block, self).forward(x)
        x = nn.LayerNorm.forward(self, x)
        return Base.forward(self, x)

class Classifier(LightningModule):
    def training_step(self, batch, batch_idx):
        loss, acc = self.forward(batch, mode="train")
        return loss
""",
            note="trap: super(), unbound calls on a class, self.forward inside the class",
        ),
        Example(
            """
class TorchExportableModuleWithStaticCache(torch.nn.Module):
    def __init__(self, model: PreTrainedModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids=None, inputs_embeds=None):
        \"\"\"Forward pass compatible with the ExecuTorch runner.\"\"\"
        return self.model.forward(input_ids=input_ids, inputs_embeds=inputs_embeds)

class TimmWrapperModel(PreTrainedModel):
    def forward(self, pixel_values, **kwargs):
        pixel_values = pixel_values.to(self.device, self.dtype)
        last_hidden_state = self.timm_model.forward(pixel_values, **kwargs)
        return last_hidden_state
""",
            note="trap: library wrappers delegating to the wrapped model (transformers)",
        ),
        Example(
            """
def capture(module, inputs, output):
    return module.forward(*inputs)

def register_hook(model):
    def hook(model, inputs):
        model.forward(inputs[0])
    model.register_forward_pre_hook(hook)
""",
            note="trap: hooks call forward so as not to re-enter the hooks",
        ),
        Example(
            """
import cv2
from torch.autograd import Function

class MultilayerPerceptron():
    def forward(self, x):
        return x @ self.weight

class _EfficientCat(object):
    def forward(self, *inputs):
        ...

model = MultilayerPerceptron(num_features=784)
a_1, a_2 = model.forward(features)

def compute_mse(net, data_loader):
    for features, targets in data_loader:
        logits, probas = net.forward(features)

compute_mse(model, test_loader)

class Bottleneck(Function):
    def __init__(self, shared_alloc):
        self.efficient_cat = _EfficientCat(shared_alloc)

    def forward(self, *inputs):
        return self.efficient_cat.forward(*inputs)

net = cv2.dnn.readNetFromONNX(w)
net.setInput(im)
y = net.forward()
""",
            note="not modules: a from-scratch model class, an old-style autograd Function helper, OpenCV's dnn net",
        ),
        Example(
            """
class DetectMultiBackend(nn.Module):
    def __init__(self, w):
        net = cv2.dnn.readNetFromONNX(w)
        self.__dict__.update(locals())

    def forward(self, im):
        self.net.setInput(im)
        return self.net.forward()

class HybridModel(torch.nn.Module):
    def __init__(self, remote_emb_module, device):
        self.remote_emb_module = remote_emb_module

    def forward(self, indices, offsets):
        emb_lookup = self.remote_emb_module.forward(indices, offsets)
        return self.fc(emb_lookup)
""",
            note="yolov5's attribute set through __dict__; an RPC RemoteModule is called through forward",
        ),
    ]

    def __init__(self, context) -> None:
        super().__init__(context)
        self.calls: list[tuple[cst.Call, cst.FunctionDef | None]] = []

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not (isinstance(func, cst.Attribute) and func.attr.value == "forward"):
            return
        receiver = dotted_name(func.value)
        if receiver is None or receiver in ("self", "cls"):
            return  # super().forward, self.forward, factory().forward
        if receiver.split(".")[-1][:1].isupper() or _first_argument_is_self(node):
            return  # Base.forward(self, x): an explicit unbound call
        function = self.context.enclosing_function()
        if function is not None and ("hook" in function.name.value.lower() or _delegates(function, node)):
            return
        self.calls.append((node, function))

    def leave_Module(self, node: cst.Module) -> None:
        if not self.calls:
            return
        script = script_model(self.context)
        for call, function in self.calls:
            if holds_module(script, call.func.value, function):
                receiver = dotted_name(call.func.value)
                arguments = source_code(call).split(".forward", 1)[1] if len(source_code(call)) <= 60 else "(...)"
                wrapper = " and the DataParallel/DDP wrapper around it" if receiver.endswith(".module") else ""
                self.report(
                    call,
                    f"`{receiver}.forward{arguments}` bypasses `nn.Module.__call__`{wrapper}: the module's hooks "
                    "(pruning masks, quantization observers, feature capture, profilers) do not run for it; "
                    f"call `{receiver}{arguments}`",
                )


def _first_argument_is_self(call: cst.Call) -> bool:
    return bool(call.args) and isinstance(call.args[0].value, cst.Name) and call.args[0].value.value == "self"


def _delegates(function: cst.FunctionDef, call: cst.Call) -> bool:
    """A wrapper handing its own call over: passes its own *args/**kwargs through, or is a forward whose
    whole body is `return self.<wrapped>.forward(...)`."""
    params = (function.params.star_arg, function.params.star_kwarg)
    own = {param.name.value for param in params if isinstance(param, cst.Param)}
    if any(arg.star and isinstance(arg.value, cst.Name) and arg.value.value in own for arg in call.args):
        return True
    if function.name.value not in _DELEGATING_METHODS:
        return False
    statements = [s for s in function.body.body if not _is_docstring(s)]
    return (
        len(statements) == 1
        and isinstance(statements[0], cst.SimpleStatementLine)
        and isinstance(statements[0].body[0], cst.Return)
        and statements[0].body[0].value is call
    )


def _is_docstring(statement: cst.CSTNode) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, cst.BaseString)
    )


def holds_module(script, expr: cst.BaseExpression, function: cst.FunctionDef | None) -> bool:
    """Whether `expr` evidently holds an nn.Module, by the script's roles; `model.module` is the network
    inside DataParallel / DDP, and `self.x` needs an assignment in the class (yolov5 fills `self.net`, an
    OpenCV net, through `__dict__`)."""
    name = dotted_name(expr)
    if name is None:
        return False
    if name.endswith(".module"):
        return holds_module(script, expr.value, function)
    if name.startswith("self.") and not script.index.lookup(name, function):
        return False
    found = script.roles.of(name, function)
    if found is None or found.role != MODEL:
        return False
    # In a file whose own plain classes define forward (from-scratch models), only a module seen built
    # (or trained by an optimizer) counts, not a name or a parameter that is passed one.
    return not _plain_classes_with_forward(script) or found.how.startswith("built by") or "optimizer" in found.how


def _plain_classes_with_forward(script) -> bool:
    """The file defines `forward` on a class with no base or `object` (a from-scratch model, an old-style
    autograd helper): there `model.forward(x)` may well be the only way to call it."""
    return any(
        all(dotted_name(base.value) == "object" for base in cls.bases)
        and any(isinstance(item, cst.FunctionDef) and item.name.value == "forward" for item in cls.body.body)
        for cls in script.index.classes.values()
    )
