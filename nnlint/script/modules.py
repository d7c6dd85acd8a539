"""What the file's own model classes are made of, as far as the file shows.

NN302 and NN303 warn about a model evaluated or trained in the wrong mode; a model whose layers do
not depend on the mode (no dropout, no batch norm) computes the same either way, so the warning
would be noise. That is decidable statically only for a class of the project (this file or one it
imports from) built from torch layers and the project's other classes; anything imported from
elsewhere may hold such a layer (`mode_free`).

NN305 asks the converse for a frozen model: does it (or the part frozen) certainly hold BatchNorm, whose
running statistics train mode keeps updating (`has_batchnorm`): a known torchvision/timm CNN family, or
a class of the file that builds BatchNorm layers.
"""

from __future__ import annotations

import re

import libcst as cst

from nnlint.names import dotted_name
from nnlint.script.index import Binding, FileIndex
from nnlint.script.objects import Objects, unwrap
from nnlint.script.roles import Roles
from nnlint.tree import descendants

# Recurrent layers (`nn.LSTM`, Opacus' `DPLSTM`) depend on the mode only through a `dropout` argument,
# which the class source would show.
_RECURRENT = re.compile(r"(LSTM|GRU|RNN)$")
_MODE_DEPENDENT = re.compile(
    r"Dropout|BatchNorm|dropout|batch_norm|RReLU|rrelu|track_running_stats|self\.training|Transformer|MultiheadAttention"
)


def mode_free(index: FileIndex, roles: Roles, subject: str, scope: cst.FunctionDef | None) -> bool:
    """True when `subject` (or the model it is a part of: `model.encoder`) is built from torch layers or
    classes of this file that provably have no mode-dependent layer."""
    built = roles.built_by(subject, scope)
    return built is not None and _built_mode_free(index, built, set())


def _built_mode_free(index: FileIndex, built: cst.Call, seen: set[str]) -> bool:
    """`Net(...)` of a mode-free class of the file, or `nn.Sequential(nn.Linear(...), nn.ReLU())`."""
    home = _class_home(index, built.func)
    if home is not None:
        return _class_is_mode_free(*home, seen)
    if not (index.context.qualified_name(built.func) or "").startswith("torch.nn."):
        return False
    if _MODE_DEPENDENT.search(_source(index, built)):
        return False
    layers = [node for node in _calls_in(built) if node is not built and _is_class_call(node)]
    return all(_built_mode_free(index, layer, seen) for layer in layers)


def _is_class_call(call: cst.Call) -> bool:
    return (dotted_name(call.func) or "").rpartition(".")[2][:1].isupper()


def _class_home(index: FileIndex, func: cst.BaseExpression) -> tuple[FileIndex, str] | None:
    """The file index holding the class a call builds, and its name: this file's, or another project file's."""
    name = dotted_name(func)
    if name in index.classes:
        return index, name
    project = index.context.project
    found = project.class_of(index.context, func) if project is not None else None
    return (found[0].index, found[1].name.value) if found is not None else None


def _class_is_mode_free(index: FileIndex, name: str, seen: set[str]) -> bool:
    key = f"{index.context.path}:{name}"
    if key in seen:
        return True
    seen.add(key)
    cls = index.classes[name]
    if _MODE_DEPENDENT.search(_source(index, cls)):
        return False
    for node in _calls_in(cls):
        called = dotted_name(node.func)
        if called is None or called.startswith("self.") or called in ("super",):
            continue
        home = _class_home(index, node.func)
        if home is not None:
            if not _class_is_mode_free(*home, seen):
                return False
        elif (index.context.qualified_name(node.func) or "").startswith("torch."):
            continue
        elif called[:1].isupper() and not _RECURRENT.search(called):
            return False  # a layer class from elsewhere: it may hold dropout or batch norm
    return True


# Architectures built with BatchNorm, by factory name (torchvision.models.<name>, timm.create_model("<name>")).
_BATCHNORM_ARCHITECTURES = re.compile(
    r"^(tv_|tf_)?(resnet\d|resnext|seresnext?\d|ecaresnet|skresnet|wide_resnet|densenet|efficientnet|"
    r"mobilenet_?v[234]|mnasnet|shufflenet|regnet_?[xy]|googlenet|inception_v3|vgg\d+_bn|dla\d|dpn\d|hrnet|"
    r"xception|res2net|resnest|rexnet|ghostnet|cspresnet|cspdarknet|darknet|mixnet|lcnet|tinynet|"
    r"fcn_resnet|deeplabv3_|lraspp|r3d_|mc3_|r2plus1d_)"
)
# The children of those models that hold BatchNorm layers (`model.layer4`, `model.features`), and not the head.
_BATCHNORM_CHILDREN = re.compile(r"^(bn\d|layer\d|features|blocks|stem|stages|conv_stem|body|backbone|encoder)$")
_BATCHNORM_LAYER = re.compile(r"(Sync)?BatchNorm\dd$")
_MAX_DEPTH = 6  # objects, parts and classes followed by `has_batchnorm`


def has_batchnorm(objects: Objects, binding: Binding, path: str, depth: int = 0) -> bool:
    """The part `path` ("" = all) of the object built at `binding` (an `Objects` origin) holds BatchNorm
    layers, whose running statistics move in train mode even with every parameter frozen (NN305): a
    torchvision/timm CNN (and which of its children), a class of the file, `self` inside one."""
    if depth > _MAX_DEPTH:
        return False
    index = objects.index
    if binding.name == "self" and isinstance(binding.node, cst.ClassDef):
        return _class_part_has_batchnorm(objects, binding.node, path, depth)
    value = unwrap(binding.value) if binding.value is not None else None
    if not isinstance(value, cst.Call):
        return False
    scope = binding.scope if isinstance(binding.scope, cst.FunctionDef) else None
    if not path:
        return builds_batchnorm(objects, value, scope, depth + 1)
    name = dotted_name(value.func) or ""
    if name in index.module_classes:
        return _class_part_has_batchnorm(objects, index.classes[name], path, depth)
    if batchnorm_architecture(index.context.call_name(value) or name, value):
        return bool(_BATCHNORM_CHILDREN.match(path.split(".")[0]))
    return False


def builds_batchnorm(objects: Objects, value: cst.BaseExpression, scope, depth: int = 0, shallow: bool = False) -> bool:
    """The module an expression builds has BatchNorm: a BatchNorm layer, a known CNN, a class of the file
    with BatchNorm, or a container / slice of the children of one (`nn.Sequential(*list(resnet.children()))`)."""
    if depth > _MAX_DEPTH:
        return False
    index = objects.index
    for node in [value] if shallow else descendants(value):
        if isinstance(node, cst.Call):
            qualified = index.context.call_name(node) or dotted_name(node.func) or ""
            last = qualified.rsplit(".", 1)[-1]
            if _BATCHNORM_LAYER.match(last) or batchnorm_architecture(qualified, node):
                return True
            if last in index.module_classes and _class_has_batchnorm(objects, index.classes[last], depth + 1):
                return True
        elif isinstance(node, cst.Name) and not shallow and scope is not None:
            origins = objects.origins(node.value, scope, None, depth + 1)
            if any(o.value is not None and has_batchnorm(objects, o, part, depth + 1) for o, part in origins):
                return True
    return False


def batchnorm_architecture(qualified: str, call: cst.Call) -> bool:
    """A torchvision or timm model of a family built with BatchNorm (ResNet, DenseNet, EfficientNet, ...;
    not ViTs, which have LayerNorm only)."""
    if qualified.startswith("torchvision.models."):
        return bool(_BATCHNORM_ARCHITECTURES.match(qualified.rsplit(".", 1)[-1]))
    if qualified in ("timm.create_model", "timm.models.create_model") and call.args:
        name = call.args[0].value
        return isinstance(name, cst.SimpleString) and bool(_BATCHNORM_ARCHITECTURES.match(name.evaluated_value))
    return False


def _class_part_has_batchnorm(objects: Objects, cls: cst.ClassDef, path: str, depth: int) -> bool:
    """`self.<path>` of a class of the file: the object its one `self.x = ...` assignment builds."""
    if not path:
        return _class_has_batchnorm(objects, cls, depth)
    first, _, rest = path.partition(".")
    bindings = [b for b in objects.index.bindings.get((cls, f"self.{first}"), []) if b.value is not None]
    if len(bindings) != 1:
        return False
    method = next((a for a in reversed(objects.ancestors(bindings[0].node)) if isinstance(a, cst.FunctionDef)), None)
    binding = Binding(first, bindings[0].value, bindings[0].node, method or cls)
    origins = objects.origins_of_binding(binding, depth + 1)
    return bool(origins) and all(
        has_batchnorm(objects, origin, ".".join(p for p in (part, rest) if p), depth + 1) for origin, part in origins
    )


def _class_has_batchnorm(objects: Objects, cls: cst.ClassDef, depth: int) -> bool:
    """A class of the file that names BatchNorm or builds a layer that has it (one of its other classes)."""
    if "BatchNorm" in _source(objects.index, cls):
        return True
    return any(builds_batchnorm(objects, node, None, depth + 1, shallow=True) for node in _calls_in(cls))


def _calls_in(node: cst.CSTNode) -> list[cst.Call]:
    """The calls written in a class or expression: the layers it builds (and anything else it calls)."""
    return [n for n in descendants(node) if isinstance(n, cst.Call)]


def _source(index: FileIndex, node: cst.CSTNode) -> str:
    """The source of a class or call: what its text says of the layers in it (`BatchNorm`, `Dropout`)."""
    return index.context.module.code_for_node(node)
