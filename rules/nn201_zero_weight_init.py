import re
from collections.abc import Iterator
from pathlib import PurePath

import libcst as cst

from nnlint.confirm.protocol import ProbeFinding, Verdict, confirmed, refuted, unverifiable
from nnlint.rule import Example, Rule
from nnlint.tree import descendants, source_code

# Constant initialisers and the constant each writes (None: it is an argument).
_INIT_CALLS = {"torch.nn.init.zeros_": "0", "torch.nn.init.ones_": "1", "torch.nn.init.constant_": None}
_FILL_METHODS = {"zero_": "0", "fill_": None}
_CONSTANT_TENSORS = {"torch.zeros": "0", "torch.ones": "1", "torch.full": None}
_PARAMETER = {"torch.nn.Parameter", "torch.nn.parameter.Parameter"}
# Layers that hold a weight matrix or kernel: symmetric when every unit starts equal.
_WEIGHT_LAYERS = {
    f"torch.nn.{layer}"
    for layer in (
        "Linear", "LazyLinear", "Bilinear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d",
        "ConvTranspose2d", "ConvTranspose3d", "LazyConv1d", "LazyConv2d", "LazyConv3d",
    )
}  # fmt: skip

# Where a constant init is a known technique, not a bug: a final head (every class starts
# equally likely), the end of a residual branch (zero_init_residual, zero_init_last, Fixup,
# DiT's adaLN-zero, diffusion's zero_module), LoRA's B, norm scales and layer-scale gammas,
# positional embeddings and tokens, gates; and tests, which fix weights to get known outputs.
_DELIBERATE_WORDS = {
    "head", "heads", "classifier", "classes", "cls", "logits", "logit", "out", "output", "outputs",
    "final", "last", "readout", "pred", "score", "bn", "ln", "gn", "rms", "pos", "position",
    "token", "tokens", "mask", "gate", "gates", "gating", "scale", "gamma", "alpha", "beta", "ls",
    "skip", "test", "tests",
}  # fmt: skip
_DELIBERATE_PARTS = ("zero", "residual", "fixup", "lora", "adapter", "norm", "embed", "modulation", "classif")
# Whole layer names that mean a classifier (torchvision's `fc`) or a LoRA up-projection.
_DELIBERATE_LAYERS = {"fc", "b", "up"}
_HIDDEN_WORDS = {"hidden", "hid", "encoder"}
_LAYER_LISTS = {"layers", "linears", "convs", "fcs", "hidden"}
_NUMBERED = re.compile(r"^([A-Za-z_]*[A-Za-z])(\d+)$")
_WEIGHT_NAME = re.compile(r"^(w\d*|w_\w+)$|weight|kernel", re.IGNORECASE)

_FIX = "use the default init or nn.init.kaiming_uniform_/xavier_uniform_"


class ZeroWeightInit(Rule):
    """
    ## What it does
    Flags a hidden layer's weight initialised to a constant: `nn.init.zeros_`,
    `nn.init.ones_`, `nn.init.constant_`, `w.data.zero_()`, `w.data.fill_(c)`,
    or a weight created as `nn.Parameter(torch.zeros(out, in))` (`torch.ones`,
    `torch.full` likewise). A weight counts as hidden when its layer is named
    like one (`fc1` next to an `fc2`, `hidden`, `encoder`, `layers[i]`), or when
    the init runs for every `nn.Linear`/`nn.Conv*` of a model (a loop over
    `modules()` or an `apply` function) or every parameter named `weight`.

    ## Why is this bad?
    Units that start identical receive identical gradients and stay identical
    forever, so the layer has the capacity of a single unit; with zero weights
    feeding zero weights no gradient flows at all. The loss creeps down a
    little and nothing raises. (Recipe: "weights initialised to zero is the
    most common mistake"; Karpathy: "init well".)

    Zero init is deliberate, and not flagged, on a final head or output
    layer, the last layer or norm of a residual branch (`zero_init_residual`,
    `zero_init_last`, Fixup, adaLN-zero, `zero_module`), LoRA's `B`, biases,
    norm weights (`ones_`), layer-scale gammas, positional embeddings, tokens
    and gates: each of those still gets distinct gradients.

    ## Example
    ```python
    for m in self.modules():
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.weight)
    ```

    ## Use instead
    ```python
    for m in self.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    ```

    ## Known problems
    A layer is only known to be hidden from its name or from an all-layer
    loop; `nn.init.zeros_(self.proj.weight)` or a layer whose siblings are
    defined in another file is not flagged, and neither is zeroing "every
    Linear" when every Linear in the file is built under a head-like name
    (VGG's `classifier` MLP).

    ## Runtime confirmation
    `--confirm` builds the model, runs one probe forward and backward, and
    looks at the flagged tensor's gradient: zero gradient (it never learns) or
    identical gradient rows (its units never become different) confirm the
    finding; a gradient that differs between rows (a head, LoRA B or residual
    gamma that learns its way out of the constant) refutes it.
    """

    code = "NN201"
    name = "zero-weight-init"
    severity = "error"
    summary = "A hidden layer's weight is initialised to a constant, so its units never break symmetry"
    triggers = ("zeros_(", "ones_(", "constant_(", "zero_(", "fill_(", "zeros(", "ones(", "full(")

    bad = [
        Example(
            """
from torch import nn

class ViT(nn.Module):
    def _init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.weight)  # <--
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
""",
            note="the classic: every nn.Linear zeroed, hidden ones included; biases and norms are fine",
            message="every nn.Linear",
        ),
        Example(
            """
import torch.nn as nn

def weights_init(m):
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.constant_(m.weight, 0.01)  # <--

model.apply(weights_init)
""",
            note="an apply-style init function; a non-zero constant is just as symmetric",
            message="constant (0.01)",
        ),
        Example(
            """
import torch
from torch import nn

class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.fc2 = nn.Linear(256, 10)
        nn.init.zeros_(self.fc1.weight)  # <--
        self.hidden.weight.data.fill_(1.0)  # <--
        with torch.no_grad():
            self.encoder.weight.zero_()  # <--
""",
            note="named hidden layers: fc1 (an fc2 follows), hidden, encoder",
            message="is initialised to a constant",
        ),
        Example(
            """
import torch
import torch.nn as nn

class TwoLayerNet(nn.Module):
    def __init__(self, d_in, d_hidden):
        super().__init__()
        self.W1 = nn.Parameter(torch.zeros(d_in, d_hidden))  # <--
        self.hidden_weight = nn.Parameter(torch.ones(d_hidden, d_hidden))  # <--
        self.W2 = nn.Parameter(torch.zeros(d_hidden, 10))

W1 = torch.full((784, 100), 0.1, requires_grad=True)  # <--
W2 = torch.randn(100, 10, requires_grad=True)
""",
            note="hidden weight matrices created constant (W1 before a W2; the last, W2, may be zero); from scratch too",
        ),
        Example(
            """
from torch import nn

class Deep(nn.Module):
    def reset(self):
        for i in range(len(self.layers)):
            nn.init.zeros_(self.layers[i].weight)  # <--
        for layer in self.hidden_layers:
            layer.weight.data.fill_(0.5)  # <--
        self.net[0].weight.data.zero_()  # <--
""",
            note="layers of a list, and the first of a Sequential",
        ),
        Example(
            """
from torch import nn

for name, param in model.named_parameters():
    if "weight" in name:
        nn.init.zeros_(param)  # <--
""",
            note="every parameter named weight",
        ),
    ]
    good = [
        Example(
            """
from torch import nn

class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(512, 512)
        self.head = nn.Linear(512, 10)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.fc1.bias)
        self.net[-1].weight.data.zero_()
""",
            note="trap: zero init of the final head (also the last of a Sequential); biases",
        ),
        Example(
            """
import torch
from torch import nn

class LoRALinear(nn.Module):
    def __init__(self, base, rank=8):
        super().__init__()
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.zeros_(self.lora_B)
        nn.init.zeros_(self.lora_up.weight)
        nn.init.zeros_(self.B.weight)
        for name, m in self.named_modules():
            if isinstance(m, nn.Linear) and "lora_B" in name:
                nn.init.zeros_(m.weight)
""",
            note="trap: LoRA B matrices start at zero so the adapter starts as the identity",
        ),
        Example(
            """
from torch import nn

class ResNet(nn.Module):
    def __init__(self, zero_init_residual=False):
        super().__init__()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.constant_(m.bn3.weight, 0)

class Block(nn.Module):
    def zero_init_last(self):
        nn.init.zeros_(self.conv2.weight)
""",
            note="trap: zero_init_residual (last BatchNorm gamma of each branch), zero_init_last, norm weights",
        ),
        Example(
            """
from torch import nn

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(64)
        self.fc1 = nn.Linear(64, 64)
        self.fc2 = nn.Linear(64, 64)
        nn.init.ones_(self.norm1.weight)
        self.bn.weight.data.fill_(1.0)
        for m in self.modules():
            if isinstance(m, nn.LayerNorm):
                nn.init.constant_(m.weight, 1)
        nn.init.zeros_(self.mlp.fc2.weight)
""",
            note="trap: norm weights set to one; the last layer of a branch (fc2, no fc3)",
        ),
        Example(
            """
import torch
from torch import nn

class ViT(nn.Module):
    def __init__(self, dim, n):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, dim))
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * n - 1, dim))
        self.gamma = nn.Parameter(1e-5 * torch.ones(dim))
        self.weight = nn.Parameter(torch.zeros(dim))
        self.register_buffer("running_mean", torch.zeros(dim, dim))
        nn.init.constant_(self.adaLN_modulation[-1].weight, 0)
        nn.init.zeros_(self.proj_out.weight)
""",
            note="trap: tokens, positional embeddings, layer-scale gamma, 1-D weights, buffers, adaLN-zero, proj_out",
        ),
        Example(
            """
import torch
from torch import nn

class MyLinear(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_out, n_in))
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.kaiming_uniform_(self.weight)

    def forward(self, x):
        h = torch.zeros(x.shape[0], 64)
        return h
""",
            note="trap: a placeholder re-initialised by reset_parameters; zeros for activations",
        ),
        Example(
            """
import torch

W = torch.zeros(784, 10, requires_grad=True)
b = torch.zeros(10, requires_grad=True)
""",
            note="trap: softmax regression; its only layer is the output, and zero init is standard",
        ),
        Example(
            """
from torch import nn

class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(512, 10)
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.normal_(m.conv1.weight, 0, 0.01)
                nn.init.constant_(m.conv2.weight, 0)
            elif isinstance(m, Bottleneck):
                nn.init.normal_(m.conv1.weight, 0, 0.01)
                nn.init.normal_(m.conv2.weight, 0, 0.01)
                nn.init.constant_(m.conv3.weight, 0)
            elif isinstance(m, nn.Linear):
                nn.init.constant_(m.weight, 0)
""",
            note="trap: Fixup zeroes each branch's last conv and every Linear when the only Linear is the classifier",
        ),
        Example(
            """
from torch import nn

def test_forward_is_sum():
    model.fc1.weight.data.fill_(1.0)
    model.fc2.weight.data.fill_(1.0)
""",
            note="trap: tests fix weights to get outputs they can check",
        ),
        Example(
            """
from torch import nn

def init_weight_vit(module, name, classifier_name="head"):
    if isinstance(module, nn.Linear):
        if name.startswith(classifier_name):
            nn.init.zeros_(module.weight)
        else:
            nn.init.trunc_normal_(module.weight, std=0.02)

class NfNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        for n, m in self.named_modules():
            if "fc" in n and isinstance(m, nn.Linear):
                if cfg.zero_init_fc:
                    nn.init.zeros_(m.weight)
""",
            note="trap: the all-Linear loops of timm, narrowed to the classifier by name or by a zero-init option",
        ),
    ]

    def visit_Call(self, node: cst.Call) -> None:
        name = self.context.call_name(node)
        if name in _INIT_CALLS and node.args:
            constant = _INIT_CALLS[name] or _argument_code(node, 1, "val")
            self._check_constant_weight(node, node.args[0].value, constant, name)
        elif isinstance(node.func, cst.Attribute) and node.func.attr.value in _FILL_METHODS:
            method = node.func.attr.value
            constant = _FILL_METHODS[method] or _argument_code(node, 0, "value")
            self._check_constant_weight(node, node.func.value, constant, f"Tensor.{method}")

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) == 1:
            self._check_constant_parameter(node, node.targets[0].target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._check_constant_parameter(node, node.target, node.value)

    def _check_constant_weight(self, node: cst.Call, tensor: cst.BaseExpression, constant: str, init: str) -> None:
        """An init call or fill on `tensor`: report it when `tensor` is a hidden layer's weight."""
        tensor = _without_data(tensor)
        if self._deliberate(tensor):
            return
        if _is_weight_attribute(tensor):
            evidence = self._hidden_layer(tensor.value)
        elif isinstance(tensor, cst.Name) and self._every_weight_parameter(tensor):
            evidence = "every-weight-parameter"
        else:
            return
        if evidence and not self._reinitialised(tensor, evidence, placeholder=False):
            self._report(node, tensor, constant, init, evidence)

    def _check_constant_parameter(self, node: cst.CSTNode, target: cst.BaseExpression, value: cst.BaseExpression):
        """`self.W1 = nn.Parameter(torch.zeros(out, in))` or `W1 = torch.zeros(..., requires_grad=True)`."""
        constant_tensor = _learnable_constant(value, self.context)
        if constant_tensor is None or not _is_matrix(constant_tensor) or self._deliberate(target):
            return
        if _is_weight_attribute(target) and source_code(target.value) != "self":
            evidence = self._hidden_layer(target.value)  # self.fc1.weight = nn.Parameter(...)
        elif _WEIGHT_NAME.search(_last_name(target) or ""):
            # A lone `W` is a linear model's only (output) layer; `W1` next to a `W2` is hidden.
            evidence = self._hidden_layer(target)
        else:
            return
        if evidence and not self._reinitialised(target, evidence, placeholder=True):
            name = self.context.call_name(constant_tensor)
            constant = _CONSTANT_TENSORS[name] or _argument_code(constant_tensor, 1, "fill_value")
            self._report(node, target, constant, name, evidence)

    def _hidden_layer(self, layer: cst.BaseExpression) -> str | None:
        """How we know `layer` (the owner of a `.weight`, or a weight matrix itself) is hidden, or None."""
        if isinstance(layer, cst.Name):
            if self._layer_types(layer) and self._bound_per_module(layer) and not self._only_a_classifier_built(layer):
                return "every-layer"
            if any(_words(source_code(loop.iter)) & _LAYER_LISTS for loop in self._loops_binding(layer)):
                return "layer-list"
        names = _chain_names(layer)
        if any(_words(name) & _HIDDEN_WORDS for name in names):
            return "hidden-name"
        if isinstance(layer, cst.Subscript) and _indexes_hidden_layers(layer):
            return "layer-list"
        numbered = _NUMBERED.match(names[-1]) if names else None
        if numbered and self._has_later_sibling(layer, *numbered.groups()):
            return "numbered-layer"
        return None

    def _deliberate(self, tensor: cst.BaseExpression) -> bool:
        """Whether the tensor or what surrounds the init names a place where constant init is the technique."""
        if _is_test_path(self.context.path):
            return True
        names = _chain_names(tensor)
        if len(names) >= 2 and names[-2].lower() in _DELIBERATE_LAYERS:
            return True
        if _has_negative_index(tensor):
            return True
        context = [source_code(tensor)] + [source_code(test) for test in self._enclosing_conditions()]
        definitions = (cst.FunctionDef, cst.ClassDef)
        context += [node.name.value for node in self.context.ancestors if isinstance(node, definitions)]
        context += [source_code(node.iter) for node in self.context.ancestors if isinstance(node, cst.For)]
        return any(_is_deliberate_text(text) for text in context)

    def _enclosing_conditions(self) -> Iterator[cst.BaseExpression]:
        """Tests of the `if`s whose body (not `else`) holds the current node."""
        ancestors = self.context.ancestors
        for parent, child in zip(ancestors, ancestors[1:]):
            if isinstance(parent, cst.If) and child is parent.body:
                yield parent.test

    def _layer_types(self, layer: cst.Name) -> list[str]:
        """The weight-layer classes that an enclosing `isinstance(layer, ...)`, `type(layer) == ...`
        or class-name test (DCGAN's `classname.find("Conv") != -1`) selects; [] for any other test."""
        for test in self._enclosing_conditions():
            for node in descendants(test):
                classes = _tested_classes(node, layer.value)
                if classes is not None:
                    names = [self.context.qualified_name(c) for c in classes]
                    if all(name in _WEIGHT_LAYERS for name in names):
                        return names
            words = {w for s in descendants(test) if isinstance(s, cst.SimpleString) for w in _words(s.value)}
            if words & {"linear", "conv"}:
                return sorted(words & {"linear", "conv"})
        return []

    def _bound_per_module(self, layer: cst.Name) -> bool:
        """`layer` is a loop variable or the argument of an init function passed to `apply`."""
        function = self.context.enclosing_function()
        if function is not None and any(param.name.value == layer.value for param in function.params.params):
            return True
        return bool(self._loops_binding(layer))

    def _loops_binding(self, name: cst.Name) -> list[cst.For]:
        return [
            loop
            for loop in self.context.enclosing_loops()
            if isinstance(loop, cst.For) and any(n.value == name.value for n in _bound_names(loop.target))
        ]

    def _every_weight_parameter(self, tensor: cst.Name) -> bool:
        """`for name, p in model.named_parameters(): if "weight" in name: init(p)`."""
        over_parameters = any(
            isinstance(loop.iter, cst.Call)
            and isinstance(loop.iter.func, cst.Attribute)
            and loop.iter.func.attr.value in ("parameters", "named_parameters")
            for loop in self._loops_binding(tensor)
        )
        return over_parameters and any("weight" in _words(source_code(test)) for test in self._enclosing_conditions())

    def _only_a_classifier_built(self, layer: cst.Name) -> bool:
        """Fixup zeroes "every nn.Linear" of a ResNet, whose only Linear is its classifier."""
        layer_types = self._layer_types(layer)
        built = heads = 0
        for node in descendants(self.context.ancestors[0]):
            if isinstance(node, cst.Call) and self.context.call_name(node) in layer_types:
                built += 1
            elif isinstance(node, (cst.Assign, cst.AnnAssign)) and node.value is not None:
                targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
                if any(_is_head_name(_last_name(t)) for t in targets):
                    heads += sum(
                        isinstance(call, cst.Call) and self.context.call_name(call) in layer_types
                        for call in descendants(node.value)
                    )
        return built > 0 and (heads == built or (built == 1 and layer_types == ["torch.nn.Linear"]))

    def _has_later_sibling(self, layer: cst.BaseExpression, base: str, number: str) -> bool:
        """`fc1` is hidden when an `fc2` follows it, under the same owner (`self.`, `m.`)."""
        prefix = source_code(layer)[: -len(base + number)]
        later = re.compile(re.escape(prefix + base) + r"(\d+)$")
        for node in descendants(self._sibling_scope(layer)):
            if isinstance(node, (cst.Attribute, cst.Name)):
                match = later.match(source_code(node))
                if match and int(match.group(1)) > int(number):
                    return True
        return False

    def _sibling_scope(self, layer: cst.BaseExpression) -> cst.CSTNode:
        """The class for `self.` layers; else the innermost block, which for an
        `isinstance(m, Block)` branch holds only that block's layers."""
        if _root_name(layer) == "self":
            return self.context.enclosing_class() or self.context.ancestors[0]
        blocks = [node for node in self.context.ancestors if isinstance(node, cst.IndentedBlock)]
        return blocks[-1] if blocks else self.context.ancestors[0]

    def _reinitialised(self, tensor: cst.BaseExpression, evidence: str, placeholder: bool) -> bool:
        """A constant that is later initialised at random, frozen or reset is not the init that trains.
        Only for named tensors: for a loop variable, another branch's init is another layer's."""
        if evidence in ("every-layer", "every-weight-parameter"):
            return False
        scope = self.context.enclosing_class() or self.context.ancestors[0]
        target = source_code(tensor)
        for node in descendants(scope):
            if isinstance(node, cst.Call) and node.args:
                name = self.context.call_name(node) or ""
                if name.startswith("torch.nn.init.") and name not in _INIT_CALLS:
                    if source_code(_without_data(node.args[0].value)) == target:
                        return True
            if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
                method, receiver = node.func.attr.value, source_code(_without_data(node.func.value))
                if receiver == target and method in ("normal_", "uniform_", "copy_", "requires_grad_"):
                    return True
                # A Parameter placeholder is what reset_parameters()/init_weights() exist to fill.
                if placeholder and receiver == "self" and re.search("init|reset|apply", method):
                    return True
            if isinstance(node, cst.Assign) and any(
                source_code(t.target) == f"{target}.requires_grad" for t in node.targets
            ):
                return True
        return False

    def _report(self, node: cst.CSTNode, tensor: cst.BaseExpression, constant: str, init: str, evidence: str):
        text = source_code(tensor)
        klass = self.context.enclosing_class()
        facts = {"tensor": text, "constant": constant, "init": init, "evidence": evidence}
        facts["class"] = klass.name.value if klass else None
        # Where the runtime check finds the tensor on a built model: `fc1.weight`, or every layer of a type.
        facts["attribute"] = text.removeprefix("self.") if _root_name(tensor) == "self" else None
        subject = f"`{text}` is"
        if evidence == "every-layer":
            facts["layer_types"] = self._layer_types(tensor.value)
            kinds = " / ".join(t.replace("torch.nn.", "nn.") for t in facts["layer_types"])
            subject = f"`{text}` of every {kinds}, hidden layers included, is"
        elif evidence == "every-weight-parameter":
            subject = f"every weight `{text}` of the model is"
        self.report(
            node,
            f"{subject} initialised to a constant ({constant}): every hidden unit gets the same gradient "
            f"and symmetry never breaks; {_FIX}",
            facts=facts,
        )

    @staticmethod
    def runtime_check(finding: ProbeFinding, session) -> Verdict:
        """After one probe backward, a weight constant-initialised at this line that gets no gradient or
        identical gradient rows, even with every other constant weight re-drawn, is stuck (confirmed); if
        every such weight learns, refuted (e.g. a head). See nnlint.confirm.stuck_init."""
        from nnlint.confirm.stuck_init import init_verdicts

        models = session.models_covering(finding.path, finding.line)
        if not models:
            return unverifiable(session.why_uncovered(finding.path, finding.line))
        model = models[0]
        verdict = next((v for site, v in init_verdicts(session, model).items() if (site.path, site.line) == (finding.path, finding.line)), None)
        if verdict is None:
            return unverifiable(f"no parameter of {model.name} is still constant after the init at line {finding.line}")
        data = {"model": model.name, "parameters": {**verdict.set_here, **verdict.stuck}}
        if verdict.unused == set(verdict.set_here):
            return unverifiable(f"{model.name}'s probe forward uses none of the weights set here", **data)
        if not verdict.stuck:
            return refuted(verdict.evidence(model.name), **data)
        return confirmed(verdict.evidence(model.name), **data)


def _words(text: str) -> set[str]:
    """`adaLN_modulation` -> {ada, ln, modulation}; `bn3` -> {bn, 3}."""
    return {word.lower() for word in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", text)}


def _is_deliberate_text(text: str) -> bool:
    lowered = text.lower()
    return bool(_words(text) & _DELIBERATE_WORDS) or any(part in lowered for part in _DELIBERATE_PARTS)


def _tested_classes(node: cst.CSTNode, variable: str) -> list[cst.BaseExpression] | None:
    """The classes in `isinstance(variable, (A, B))` or `type(variable) == A` / `is A`; None otherwise."""
    if isinstance(node, cst.Call) and source_code(node.func) == "isinstance" and len(node.args) == 2:
        if source_code(node.args[0].value) == variable:
            classes = node.args[1].value
            return [e.value for e in classes.elements] if isinstance(classes, cst.Tuple) else [classes]
    if isinstance(node, cst.Comparison) and source_code(node.left) == f"type({variable})" and len(node.comparisons) == 1:
        if isinstance(node.comparisons[0].operator, (cst.Equal, cst.Is)):
            return [node.comparisons[0].comparator]
    return None


def _is_head_name(name: str | None) -> bool:
    return name is not None and (name.lower() in _DELIBERATE_LAYERS or _is_deliberate_text(name))


def _without_data(tensor: cst.BaseExpression) -> cst.BaseExpression:
    """`w.data` is `w`."""
    while isinstance(tensor, cst.Attribute) and tensor.attr.value == "data":
        tensor = tensor.value
    return tensor


def _is_weight_attribute(tensor: cst.BaseExpression) -> bool:
    return isinstance(tensor, cst.Attribute) and tensor.attr.value == "weight"


def _chain_names(node: cst.BaseExpression) -> list[str]:
    """`self.layers[0].fc1` -> [self, layers, fc1] (subscripts dropped, outermost first)."""
    names = []
    while isinstance(node, (cst.Attribute, cst.Subscript)):
        if isinstance(node, cst.Attribute):
            names.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        names.append(node.value)
    return names[::-1]


def _last_name(node: cst.BaseExpression) -> str | None:
    names = _chain_names(node)
    return names[-1] if names else None


def _root_name(node: cst.BaseExpression) -> str | None:
    names = _chain_names(node)
    return names[0] if names else None


def _subscript_indexes(node: cst.BaseExpression) -> Iterator[cst.BaseExpression]:
    while isinstance(node, (cst.Attribute, cst.Subscript)):
        if isinstance(node, cst.Subscript):
            for element in node.slice:
                if isinstance(element.slice, cst.Index):
                    yield element.slice.value
        node = node.value


def _has_negative_index(node: cst.BaseExpression) -> bool:
    """`net[-1]` is the last layer."""
    return any(isinstance(index, cst.UnaryOperation) for index in _subscript_indexes(node))


def _indexes_hidden_layers(layer: cst.Subscript) -> bool:
    """`layers[i]` / `hidden[0]`, or `net[0]`: the first of a Sequential that has more after it."""
    index = next(_subscript_indexes(layer), None)
    if isinstance(index, cst.Integer) and index.value == "0":
        return True
    return bool(_words(source_code(layer.value)) & _LAYER_LISTS)


def _bound_names(target: cst.BaseExpression) -> Iterator[cst.Name]:
    if isinstance(target, cst.Name):
        yield target
    elif isinstance(target, (cst.Tuple, cst.List)):
        for element in target.elements:
            yield from _bound_names(element.value)


def _argument_code(call: cst.Call, position: int, keyword: str) -> str:
    for index, arg in enumerate(call.args):
        if (arg.keyword is not None and arg.keyword.value == keyword) or (arg.keyword is None and index == position):
            return source_code(arg.value)
    return "?"


def _learnable_constant(value: cst.BaseExpression, context) -> cst.Call | None:
    """The `torch.zeros(...)` in `nn.Parameter(torch.zeros(...))` or `torch.zeros(..., requires_grad=True)`."""
    if not isinstance(value, cst.Call):
        return None
    name = context.call_name(value)
    if name in _PARAMETER and value.args and isinstance(value.args[0].value, cst.Call):
        frozen = any(arg.keyword is not None and arg.keyword.value == "requires_grad" for arg in value.args)
        inner = value.args[0].value
        return inner if not frozen and context.call_name(inner) in _CONSTANT_TENSORS else None
    learnable = any(
        arg.keyword is not None and arg.keyword.value == "requires_grad" and source_code(arg.value) == "True"
        for arg in value.args
    )
    return value if learnable and name in _CONSTANT_TENSORS else None


def _is_matrix(call: cst.Call) -> bool:
    """At least two dims and no literal 1: a (1, 1, dim) token or a (C, 1, 1) scale is no weight matrix."""
    positional = [arg for arg in call.args if arg.keyword is None and arg.star != "**"]
    sized = {arg.keyword.value: arg.value for arg in call.args if arg.keyword is not None}
    dims: list[cst.BaseExpression]
    if "size" in sized:
        shape = sized["size"]
    elif len(positional) == 1 or (positional and source_code(call.func).endswith("full")):
        shape = positional[0].value
    else:
        shape = None
    if shape is not None:
        if not isinstance(shape, (cst.Tuple, cst.List)):
            return False
        dims = [element.value for element in shape.elements]
        starred = any(isinstance(element, cst.StarredElement) for element in shape.elements)
    else:
        dims = [arg.value for arg in positional]
        starred = any(arg.star == "*" for arg in call.args)
    literal_one = any(isinstance(dim, cst.Integer) and dim.value == "1" for dim in dims)
    return len(dims) >= 2 and not starred and not literal_one


def _is_test_path(path: str) -> bool:
    parts = PurePath(path).parts
    name = parts[-1] if parts else ""
    return (
        any(part in ("test", "tests") for part in parts[:-1])
        or name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
    )
