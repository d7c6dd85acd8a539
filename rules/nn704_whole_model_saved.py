from __future__ import annotations

import libcst as cst

from nnlint.names import dotted_name
from nnlint.rule import Example, Replacement, Rule
from nnlint.script import script_model
from nnlint.script.roles import MODEL
from nnlint.tree import source_code

# Methods that return the module they are called on.
_SAME_MODULE = frozenset(
    {"to", "cuda", "cpu", "eval", "train", "half", "float", "double", "bfloat16", "requires_grad_"}
)  # fmt: skip


class WholeModelSaved(Rule):
    """
    ## What it does
    Flags `torch.save(model, path)` whose first argument evidently holds an
    `nn.Module` (the script's model role): a name built in the file by a
    module class of the file, `nn.Sequential(...)`, `torchvision.models.*`,
    `timm.create_model(...)`, or whose `.parameters()` an optimizer trains;
    else a name that holds a network by convention (`model`, `net`, `netG`,
    `encoder`, ...) and is bound to nothing else. Also `self` in a module's
    method and `model.module`.

    ## Why is this bad?
    Saving the module pickles the object: the file records the class by its
    import path and rebuilds it through pickle. Renaming or moving the class,
    changing its attributes, or loading from another project breaks the
    checkpoint, and since PyTorch 2.6 `torch.load` refuses it by default
    (`weights_only=True`); loading it with `weights_only=False` runs arbitrary
    pickled code. A `state_dict()` is plain tensors keyed by parameter name
    and loads into any compatible model.

    ## Example
    ```python
    model = Net()
    ...
    torch.save(model, "model.pt")
    ```

    ## Use instead
    ```python
    torch.save(model.state_dict(), "model.pt")
    # later
    model = Net()
    model.load_state_dict(torch.load("model.pt"))
    ```
    For deployment without the Python class, export it instead
    (`torch.jit.script(model).save(path)`, `torch.export`).

    ## Fix
    `--fix` saves `model.state_dict()` only where the saved object is
    certainly an `nn.Module`: `self` in a module class, or a name every
    assignment of which builds a module (a module class of the file,
    `nn.Sequential(...)`, `torchvision.models.*`, `timm.create_model`), and
    only in a file that loads nothing (a `torch.load` there would get a
    state dict where it expects a model). Code elsewhere that loads the
    file must then build the model and call `load_state_dict`.

    ## Known problems
    Only the first argument is judged: a module stored inside a checkpoint
    dict (`{"model": model}`) is not flagged. A name bound to a call the file
    does not explain (`model = get_model(args)`) counts as a model only when an
    optimizer trains it.
    """

    code = "NN704"
    name = "whole-model-saved"
    severity = "info"
    summary = "torch.save(model) pickles the whole module: save model.state_dict() instead"
    triggers = ("save(",)
    default_enabled = False

    bad = [
        Example(
            """
import torch
import torch.nn as nn

class RNN(nn.Module):
    ...

decoder = RNN(n_characters, hidden_size, n_characters)

def save():
    torch.save(decoder, "char-rnn.pt")  # <--
""",
            message="decoder.state_dict()",
            note="spro/practical-pytorch char-rnn: a class of the file, saved from a helper",
            fixed="""
import torch
import torch.nn as nn

class RNN(nn.Module):
    ...

decoder = RNN(n_characters, hidden_size, n_characters)

def save():
    torch.save(decoder.state_dict(), "char-rnn.pt")  # <--
""",
        ),
        Example(
            """
import torch
import torchvision

resnet = torchvision.models.resnet18(pretrained=True)
torch.save(resnet, 'model.ckpt')  # <--
net1 = torch.nn.Sequential(torch.nn.Linear(1, 10), torch.nn.ReLU(), torch.nn.Linear(10, 1))
torch.save(net1, 'net.pkl')  # <--
""",
            note="yunjey/pytorch-tutorial, MorvanZhou: torchvision and nn.Sequential models",
            fixed="""
import torch
import torchvision

resnet = torchvision.models.resnet18(pretrained=True)
torch.save(resnet.state_dict(), 'model.ckpt')  # <--
net1 = torch.nn.Sequential(torch.nn.Linear(1, 10), torch.nn.ReLU(), torch.nn.Linear(10, 1))
torch.save(net1.state_dict(), 'net.pkl')  # <--
""",
        ),
        Example(
            """
import torch

def checkpoint(epoch, model):
    model_out_path = "model_epoch_{}.pth".format(epoch)
    torch.save(model, model_out_path)  # <--
    with open(args.save, 'wb') as f:
        torch.save(model.module, f)  # <--
""",
            note="pytorch/examples super_resolution, word_language_model: names that hold the network",
        ),
        Example(
            """
import torch
from torch import nn

class Classifier(nn.Module):
    def save(self, path):
        torch.save(self, path)  # <--

netG = Generator().cuda()
optimizerG = torch.optim.Adam(netG.parameters(), lr=2e-4)
torch.save(obj=netG.cpu(), f="G.pt")  # <--
""",
            note="self in a module; an imported class, known to be a model because an optimizer trains it (not fixed)",
            fixed="""
import torch
from torch import nn

class Classifier(nn.Module):
    def save(self, path):
        torch.save(self.state_dict(), path)  # <--

netG = Generator().cuda()
optimizerG = torch.optim.Adam(netG.parameters(), lr=2e-4)
torch.save(obj=netG.cpu(), f="G.pt")  # <--
""",
        ),
        Example(
            """
import torch
from torch import nn

def save_model(model, PATH):
    torch.save(model, PATH)  # <--

class Trainer:
    def __init__(self, network: nn.Module, optimizer):
        self.network = network
        self.optimizer = optimizer

    def checkpoint(self, path):
        torch.save(self.network, path)  # <--
        torch.save(self.optimizer, path + ".opt")
""",
            note="a save helper from a public course repo; an attribute set from a parameter named like a network",
        ),
        Example(
            """
import torch
from torch import nn

model = nn.Linear(4, 2).cuda()
torch.save(model, "last.pt")  # <--
restored = torch.load("last.pt")
""",
            note="not fixed: the file loads the whole model back",
        ),
    ]
    good = [
        Example(
            """
import torch

torch.save(model.state_dict(), "model.pt")
torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict()}, "ckpt.pt")
state = {"net": net.state_dict(), "acc": acc}
torch.save(state, "./checkpoint/ckpt.pth")
""",
            note="trap: a state_dict, a checkpoint dict of state dicts",
        ),
        Example(
            """
import torch

model = Net()
scripted = torch.jit.script(model)
torch.save(scripted, "scripted.pt")
model = torch.export.export(model, (x,))
torch.save(model, "exported.pt2")
""",
            note="trap: a TorchScript module, an exported program (rebinding model)",
        ),
        Example(
            """
import torch

model_to_save = {"model": model_converted}
torch.save(model_to_save, args.output_model)
torch.save(train_features.cpu(), "trainfeat.pth")
torch.save(embeddings, "emb.pt")
""",
            note="trap: tensors and dicts, even under a model-like name (detr's converter)",
        ),
        Example(
            """
import torch

class MultilayerPerceptron:
    def __init__(self, num_features):
        self.weight = torch.zeros(num_features, 1)

model = MultilayerPerceptron(4)
torch.save(model, "mlp.pt")
label_encoder = LabelEncoder().fit(labels)
torch.save(label_encoder, "labels.pt")
""",
            note="a class of the file that is not an nn.Module; sklearn's LabelEncoder",
        ),
        Example(
            """
import torch

class Trainer:
    def save(self, path):
        torch.save(self, path)
        torch.save(self.model.state_dict(), path)

def save_on_master(*args, **kwargs):
    torch.save(*args, **kwargs)
""",
            note="self of a class that is not a module; forwarding wrappers",
        ),
        Example(
            """
import torch

class Exporter:
    def __init__(self, path):
        self.model = torch.jit.load(path)

    def save(self, path):
        torch.save(self.model, path)
""",
            note="trap: a TorchScript module held in an attribute",
        ),
    ]

    def __init__(self, context) -> None:
        super().__init__(context)
        self.saves: list[tuple[cst.Call, cst.BaseExpression, cst.FunctionDef | None]] = []

    def visit_Call(self, node: cst.Call) -> None:
        if self.context.call_name(node) != "torch.save":
            return
        saved = next((arg.value for arg in node.args if arg.keyword is not None and arg.keyword.value == "obj"), None)
        if saved is None and node.args and node.args[0].keyword is None and not node.args[0].star:
            saved = node.args[0].value
        if saved is not None:
            self.saves.append((node, saved, self.context.enclosing_function()))

    def leave_Module(self, node: cst.Module) -> None:
        if not self.saves:
            return
        script = script_model(self.context)
        # A load in the file may expect the whole model back from what it saves.
        loads = "load(" in self.context.source
        for call, saved, function in self.saves:
            if holds_module(script, saved, function):
                name = source_code(saved) if len(source_code(saved)) <= 40 else "model"
                state_dict = cst.Call(cst.Attribute(saved, cst.Name("state_dict")))
                certain = not loads and certainly_module(script, saved, function)
                self.report(
                    call,
                    f"`torch.save({name}, ...)` pickles the whole module, tying the file to the class's current "
                    "code and import path (and `torch.load` refuses it by default since PyTorch 2.6); "
                    f"save `{name}.state_dict()` and load it into a freshly built model",
                    fix=Replacement("Save the state_dict()", saved, state_dict) if certain else None,
                )


def certainly_module(script, expr: cst.BaseExpression, function: cst.FunctionDef | None) -> bool:
    """Whether `expr` is an nn.Module beyond doubt: `self` in a module class, or a name every binding of
    which builds one (by a constructor, not by its name or an optimizer's say)."""
    expr = _same_module(expr)
    name = dotted_name(expr)
    if name == "self":
        return holds_module(script, expr, function)
    bindings = [b for b in script.index.lookup(name, function) if not _rebinds_itself(b)] if name else []
    return bool(bindings) and all(_builds_module(script, binding) for binding in bindings)


def _builds_module(script, binding) -> bool:
    if binding.value is None:
        return False
    scope = binding.scope if isinstance(binding.scope, cst.FunctionDef) else None
    found = script.roles.role_of_value(binding.value, scope, binding)
    return found is not None and found.role == MODEL and found.how.startswith("built by")


def _rebinds_itself(binding) -> bool:
    """`model = model.cuda()`: the name keeps the module it held."""
    return binding.value is not None and dotted_name(_same_module(binding.value)) == binding.name


def _same_module(expr: cst.BaseExpression) -> cst.BaseExpression:
    """`model.cpu().eval()` -> `model`."""
    while isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value in _SAME_MODULE:
        expr = expr.func.value
    return expr


def holds_module(script, expr: cst.BaseExpression, function: cst.FunctionDef | None) -> bool:
    """Whether `expr` evidently holds an nn.Module, by the script's roles, plus what a save adds:
    `self` in a module's method, `model.module` (the network inside DataParallel / DDP)."""
    expr = _same_module(expr)
    if isinstance(expr, cst.Call):
        found = script.roles.role_of_value(expr, function)
        return found is not None and found.role == MODEL
    name = dotted_name(expr)
    if name is None:
        return False
    if name == "self":
        owner = script.index.owner_class.get(function) if function is not None else None
        return owner is not None and owner.name.value in script.index.module_classes
    if name.endswith(".module"):
        return holds_module(script, expr.value, function)
    if name.startswith("self.") and not script.index.lookup(name, function):
        return False  # set through setattr, __dict__ or a base class: its name is no evidence
    return script.roles.is_(name, function, MODEL)
