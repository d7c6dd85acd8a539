"""Which names hold a model, an optimizer, a scheduler, a loss function, a data loader or a dataset.

A name gets its role from what built it (`torch.optim.SGD(...)`, `nn.CrossEntropyLoss()`,
`DataLoader(...)`, a class of the file that is an nn.Module, `torchvision.models.resnet18()`), from
being passed as `X.parameters()` to an optimizer (then X is a model), from the arguments a function of
the file is called with (`train(net, loader, opt)` gives `train`'s parameters their roles), and, when
nothing else says, from its own name (`model`, `optimizer`, `criterion`, `train_loader`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import libcst as cst

from nnlint.names import dotted_name
from nnlint.script.index import Binding, FileIndex, words
from nnlint.tree import descendants

MODEL, OPTIMIZER, SCHEDULER, CRITERION, LOADER, DATASET = (
    "model", "optimizer", "scheduler", "criterion", "loader", "dataset",
)  # fmt: skip

_OPTIMIZER_NAMES = frozenset(
    {
        "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam", "LBFGS",
        "SparseAdam", "ASGD", "Rprop", "Lion", "Lamb", "LAMB", "FusedAdam", "FusedLAMB", "FusedSGD",
        "Adafactor", "AdamW8bit", "Adam8bit", "PagedAdamW", "Adan", "Lookahead", "ZeroRedundancyOptimizer",
    }
)  # fmt: skip
_OPTIMIZER_FACTORY = re.compile(r"(create|build|get|make)_?optimi[sz]er")
_SCHEDULER_FACTORY = re.compile(r"(create|build|get|make)_?(lr_)?scheduler|get_\w*schedule")
_MODEL_FACTORIES = ("torchvision.models.", "timm.create_model", "timm.models.", "segmentation_models_pytorch.")
# Calls that return the module they are given (or a wrapper that trains the same parameters).
_MODEL_WRAPPERS = frozenset(
    {"DataParallel", "DistributedDataParallel", "DDP", "compile", "deepcopy", "to", "cuda", "cpu", "float",
     "half", "double", "bfloat16", "train", "eval", "requires_grad_", "to_empty", "prepare", "setup"}
)  # fmt: skip
# Attributes of an object that name a submodule (`model.encoder(x)`), when nothing else says.
_SUBMODULE_NAMES = frozenset({"model", "module", "net", "encoder", "decoder", "backbone", "head", "classifier", "generator", "discriminator"})
# Classes from these libraries are not torch modules, whatever the variable holding one is called.
_OTHER_FRAMEWORKS = ("sklearn.", "xgboost.", "lightgbm.", "catboost.", "gensim.", "tensorflow.", "keras.", "jax.",
                     "flax.", "numpy.", "pandas.", "statsmodels.")  # fmt: skip
_VERBS = frozenset({"is", "has", "get", "set", "save", "load", "wrap", "unwrap", "build", "create", "make", "init",
                    "update", "prepare", "setup", "train", "eval", "evaluate", "freeze", "copy", "export", "compile",
                    "print", "log", "to", "run", "call", "apply", "check", "register"})  # fmt: skip
_METRIC_WORDS = frozenset({"psnr", "ssim", "lpips", "fid", "metric", "metrics", "meter", "loss", "accuracy", "score"})
_NOT_MODULES = re.compile(r"Loss$|^(Parameter|ParameterList|ParameterDict|Identity|init|functional|utils|Module)$")

# Name words that say a role when nothing else does.
_NAME_ROLES = [
    (OPTIMIZER, re.compile(r"^(optimi[sz]er|opt|optim)(_?[a-z0-9]+)?$|_(optimi[sz]er|opt|optim)$")),
    (SCHEDULER, re.compile(r"^(lr_)?(scheduler|sched)(_?[a-z0-9]+)?$|_(scheduler|sched)$")),
    (CRITERION, re.compile(r"^(criterion|loss_fn|loss_func|lossfn|loss_function|loss_fcn|criterion_\w+)$")),
    (LOADER, re.compile(r"(^|_)(loader|dataloader|data_loader)s?($|_)|^(train|val|valid|test)loader$")),
    (MODEL, re.compile(r"^(model|net|network|classifier|generator|discriminator|net_?[gd]|encoder|decoder|"
                       r"student|teacher|ema_model|backbone)(_?[a-z0-9]+)?$|_(model|net)$")),
]  # fmt: skip


@dataclass(frozen=True)
class Role:
    role: str
    binding: Binding | None  # where the name was given it (None: only its name says so)
    how: str  # e.g. "built by `torch.optim.SGD`", "named like one"


class Roles:
    def __init__(self, index: FileIndex) -> None:
        self.index = index
        self.context = index.context
        self._cache: dict[tuple[str, cst.FunctionDef | None], Role | None] = {}
        self._resolving: set[tuple[str, cst.FunctionDef | None]] = set()

    def of(self, expr: cst.BaseExpression | str, function: cst.FunctionDef | None) -> Role | None:
        """The role of what an expression names inside `function` (the module when None)."""
        name = expr if isinstance(expr, str) else dotted_name(_unwrap(expr))
        if name is None:
            return None
        key = (name, function)
        if key not in self._cache:
            if key in self._resolving:
                return None
            self._resolving.add(key)
            self._cache[key] = self._resolve(name, function)
            self._resolving.discard(key)
        return self._cache[key]

    def is_(self, expr: cst.BaseExpression | str, function: cst.FunctionDef | None, role: str) -> bool:
        found = self.of(expr, function)
        return found is not None and found.role == role

    def _resolve(self, name: str, function: cst.FunctionDef | None) -> Role | None:
        bindings = self.index.lookup(name, function)
        for binding in bindings:
            found = self._role_of_binding(binding)
            if found is not None:
                return found
        if name in self.models_by_optimizer:
            return Role(MODEL, None, "its parameters are given to an optimizer")
        if any(b.value is not None for b in bindings) and not self._only_wrappers(bindings):
            if not all(self._builds_unknown_class(b) for b in bindings if b.value is not None):
                return None  # bound to something else here (`loss = criterion(...)`, `opt = args.opt`)
        head = name.split(".")[0]
        if not bindings and (self.context.imports.qualified_name(cst.Name(head)) or head in self.index.classes
                             or head in self.index.functions):
            return None  # a class or function: `Net(...)` builds a model, it is not one
        return self._by_name(name)

    def _builds_unknown_class(self, binding: Binding) -> bool:
        """`model = ResNetUNet(...)` with the class imported from the project: the name may say the role."""
        value = _unwrap(_strip_await(binding.value))
        if not isinstance(value, cst.Call):
            return False
        qualified = self.context.call_name(value) or dotted_name(value.func) or ""
        last = qualified.rsplit(".", 1)[-1]
        if last in self.index.classes or not last[:1].isupper():
            return False  # the file's own classes are known: a Module is a model, anything else is not
        if _METRIC_WORDS & {*words(last), *words(binding.name.rpartition(".")[2])}:
            return False  # `psnr_model = PSNR()`: a metric, not a network to put in eval mode
        return not qualified.startswith(_OTHER_FRAMEWORKS) and not qualified.startswith("torch.")

    def built_by(self, subject: str, function: cst.FunctionDef | None) -> cst.Call | None:
        """The call that built the model `subject` (or the model it is part of: `model.encoder`), through
        wrappers: `Net(10)` for `model = Net(10).to(device)`."""
        while subject:
            role = self.of(subject, function)
            if role is not None and role.role == MODEL:
                for binding in [role.binding] if role.binding is not None else self.index.lookup(subject, function):
                    built = _unwrap(_strip_await(binding.value)) if binding.value is not None else None
                    if isinstance(built, cst.Call) and not _is_wrapper_of_itself(binding):
                        return built
            subject = subject.rpartition(".")[0]
        return None

    def _only_wrappers(self, bindings: list[Binding]) -> bool:
        return all(binding.value is None or _is_wrapper_of_itself(binding) for binding in bindings)

    def _role_of_binding(self, binding: Binding) -> Role | None:
        if binding.value is None:
            if isinstance(binding.node, cst.Param):
                return self._role_of_parameter(binding)
            return None
        return self.role_of_value(binding.value, binding.scope if isinstance(binding.scope, cst.FunctionDef) else None, binding)

    def role_of_value(self, value: cst.BaseExpression, function, binding: Binding | None = None) -> Role | None:
        """The role of the object an expression builds: `optim.SGD(...)`, `Net().to(device)`, `DDP(model)`."""
        value = _unwrap(_strip_await(value))
        if not isinstance(value, cst.Call):
            name = dotted_name(value)
            if name is not None and binding is not None and name != binding.name:
                found = self.of(name, function)  # `net = model`
                return Role(found.role, binding, found.how) if found else None
            return None
        qualified = self.context.call_name(value) or dotted_name(value.func) or ""
        last = qualified.rsplit(".", 1)[-1]
        role = _role_of_constructor(qualified, last, self.index)
        if role is not None:
            return Role(role, binding, f"built by `{qualified}`")
        callee = self.index.callee(value, function)
        if callee is not None:
            returned = self.returned_role(callee)
            return Role(returned.role, binding, returned.how) if returned else None
        if last in _MODEL_WRAPPERS:
            inner = value.func.value if isinstance(value.func, cst.Attribute) and last in _METHOD_WRAPPERS else None
            if inner is None and value.args:
                inner = value.args[0].value
            if inner is not None:
                found = self.role_of_value(inner, function) if isinstance(_unwrap(inner), cst.Call) else self.of(inner, function)
                if found is not None and found.role == MODEL:
                    return Role(MODEL, binding, found.how)
        return None

    def returned_role(self, function: cst.FunctionDef) -> Role | None:
        """The role of what a function of the file returns (`def build(): ...; return model`), if one."""
        key = ("<return>", function)
        if key in self._resolving:
            return None
        self._resolving.add(key)
        try:
            returns = [node.value for node in descendants(function) if isinstance(node, cst.Return) and node.value]
            roles = {found.role: found for found in (self._role_of_expression(value, function) for value in returns) if found}
            return next(iter(roles.values())) if len(roles) == 1 else None
        finally:
            self._resolving.discard(key)

    def _role_of_expression(self, value: cst.BaseExpression, function) -> Role | None:
        return self.role_of_value(value, function) if isinstance(_unwrap(value), cst.Call) else self.of(value, function)

    def _role_of_parameter(self, binding: Binding) -> Role | None:
        """A parameter named for its role, or passed something with a role at every call of the file."""
        function = binding.scope
        assert isinstance(function, cst.FunctionDef)
        param = binding.node
        roles = set()
        for call, caller in self.index.calls:
            if self.index.callee(call, caller) is not function:
                continue
            argument = argument_for(call, function, param.name.value)
            if argument is not None:
                found = self.of(argument, caller)
                roles.add(found.role if found else None)
        if len(roles) == 1 and None not in roles:
            return Role(roles.pop(), binding, "passed one at every call")
        if roles - {None}:
            return None  # passed different things
        return self._by_name(binding.name)

    @staticmethod
    def _by_name(name: str) -> Role | None:
        owner, _, last = name.rpartition(".")
        if owner and owner != "self" and last not in _SUBMODULE_NAMES:
            return None  # `model.generator_forward`, `args.model`: a method or a setting, not a module
        lowered = last.lower() if not re.search("[a-z][A-Z]", last) else "_".join(words(last))
        if lowered.lstrip("_").split("_")[0] in _VERBS:
            return None  # `save_model`, `is_peft_model`, `self._wrap_model`: a function about a model
        for role, pattern in _NAME_ROLES:
            if pattern.search(lowered):
                if role == MODEL and _METRIC_WORDS & set(words(last)):
                    return None  # `psnr_model`, `lpips_model`: a metric, not a network to put in eval mode
                return Role(role, None, "named like one")
        return None

    @cached_property
    def models_by_optimizer(self) -> dict[str, cst.Call]:
        """Names whose `.parameters()` an optimizer is built from (`SGD(net.parameters())`): models."""
        found = {}
        for call, _ in self.index.calls:
            qualified = self.context.call_name(call) or ""
            if _role_of_constructor(qualified, qualified.rsplit(".", 1)[-1], self.index) != OPTIMIZER:
                continue
            for node in descendants(call):
                if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
                    if node.func.attr.value in ("parameters", "named_parameters"):
                        owner = dotted_name(node.func.value)
                        if owner is not None:
                            found.setdefault(owner.split(".")[0] if not owner.startswith("self.") else owner, call)
        return found


_METHOD_WRAPPERS = frozenset({"to", "cuda", "cpu", "float", "half", "double", "bfloat16", "train", "eval",
                              "requires_grad_", "to_empty"})  # fmt: skip


def _role_of_constructor(qualified: str, last: str, index: FileIndex) -> str | None:
    if qualified.startswith("torch.optim.lr_scheduler.") or _SCHEDULER_FACTORY.search(last.lower()):
        return SCHEDULER
    if last in _OPTIMIZER_NAMES and "." in qualified or _OPTIMIZER_FACTORY.search(last.lower()):
        return OPTIMIZER
    if qualified.startswith("torch.nn.") and last.endswith("Loss"):
        return CRITERION
    if last.endswith("DataLoader") and "." in qualified or qualified == "DataLoader":
        return LOADER
    if qualified.startswith("torchvision.datasets.") or last in ("ImageFolder", "TensorDataset"):
        return DATASET
    if last in index.module_classes or qualified.startswith(_MODEL_FACTORIES):
        return MODEL
    if qualified.startswith("torch.nn.") and last[:1].isupper() and not _NOT_MODULES.search(last):
        return MODEL
    if last == "from_pretrained" and re.search(r"(Model|For\w+)\w*\.from_pretrained$", qualified):
        return MODEL
    return None


def _is_wrapper_of_itself(binding: Binding) -> bool:
    """`model = model.to(device)`, `model = DDP(model)`: the name keeps what it held."""
    value = binding.value
    if not isinstance(value, cst.Call):
        return False
    inner = value.func.value if isinstance(value.func, cst.Attribute) else (value.args[0].value if value.args else None)
    return inner is not None and dotted_name(_unwrap(inner)) == binding.name


def _unwrap(expr: cst.BaseExpression) -> cst.BaseExpression:
    """`model.to(device).cuda()` -> `model`: the object a chain of wrapper methods starts from."""
    while isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value in _METHOD_WRAPPERS:
        expr = expr.func.value
    return expr


def _strip_await(expr: cst.BaseExpression) -> cst.BaseExpression:
    return expr.expression if isinstance(expr, cst.Await) else expr


def argument_for(call: cst.Call, function: cst.FunctionDef, parameter: str) -> cst.BaseExpression | None:
    """The argument a call passes for one parameter of the function it runs (by keyword or position)."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == parameter:
            return arg.value
    params = [*function.params.posonly_params, *function.params.params]
    if params and params[0].name.value in ("self", "cls") and isinstance(call.func, cst.Attribute):
        params = params[1:]
    positional = [arg for arg in call.args if arg.keyword is None]
    if any(arg.star for arg in positional):
        return None
    names = [param.name.value for param in params]
    if parameter in names and names.index(parameter) < len(positional):
        return positional[names.index(parameter)].value
    return None
