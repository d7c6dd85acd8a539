import math
import re

import libcst as cst

from nnlint.names import dotted_name
from nnlint.rule import Example, Report, Rule
from nnlint.script import script_model
from nnlint.script.transforms import assigned_values, converts
from nnlint.tree import descendants, source_code

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_TOLERANCE = 0.01
_USE = f"mean={IMAGENET_MEAN}, std={IMAGENET_STD}"

# torchvision's classification, segmentation and quantized weights all expect ImageNet statistics.
# Detection models normalise inside (GeneralizedRCNNTransform); video and optical-flow weights use others.
_OTHER_FAMILIES = {"detection", "video", "optical_flow"}
_OTHER_MODEL_NAMES = re.compile(r"rcnn|retinanet|ssd|fcos|keypoint|r3d|mc3|r2plus1d|s3d|mvit|swin3d|raft")
_WEIGHTS_CLASS = re.compile(r"_Weights$")
# Ways to preprocess that cannot be read as numbers here: the weights' own transforms, timm's or
# transformers' configs, a `normalize` helper, `x * 2 - 1`. Any of them: the author chose on purpose.
_OTHER_PREPROCESSING = re.compile(
    r"\.transforms\(\)|resolve_data_config|resolve_model_data_config|create_transform|transforms_imagenet"
    r"|ImageProcessor|FeatureExtractor|\bnormali[sz]e\w*\(|\*\s*2\s*-\s*1\b|\b2\s*\*\s*\w+\s*-\s*1\b"
)
_IMAGENET_NAME = re.compile(r"imagenet", re.IGNORECASE)
_INVERSE_CONTEXT = re.compile(r"denorm|unnorm|inv|undo|reverse|restore", re.IGNORECASE)
# A replaced first convolution (`model.conv1 = nn.Conv2d(1, 64, ...)`) no longer holds ImageNet filters.
_FIRST_LAYER = re.compile(r"(\.conv1|\.features\[0\](\[0\])?|\.conv_stem|\.stem(\[0\])?)$")
_MEAN = re.compile(r"mean|\bmu\b|avg|imagenet|\b\d{2,3}\.\d", re.IGNORECASE)
_IMAGE_LIBRARIES = ("torchvision.", "albumentations.", "kornia.")
_TENSOR_WRAPPERS = {"tensor", "Tensor", "FloatTensor", "as_tensor", "array", "asarray"}
_RESHAPES = {"view", "reshape", "unsqueeze", "to", "cuda", "float", "view_as", "expand"}


class PretrainedWithoutItsNormalization(Rule):
    """
    ## What it does
    Flags torchvision weights pretrained on ImageNet (`resnet50(pretrained=True)`,
    `weights="IMAGENET1K_V1"`, `weights=ResNet50_Weights.DEFAULT`) in a file
    whose image transforms normalise with other statistics
    (`Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))`, a dataset's own mean/std),
    or convert images with `ToTensor()` and never normalise at all.

    ## Why is this bad?
    A pretrained network's first layer was tuned to inputs standardised with
    the ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).
    Fed `[0, 1]` or `[-1, 1]` images, every activation is shifted and
    rescaled: fine-tuning starts from a worse point and converges lower, and
    frozen features (linear probes, perceptual losses) are simply off. Nothing
    raises. (Recipe: "use the preprocessing the pretrained model was trained with".)

    ## Example
    ```python
    model = models.resnet50(pretrained=True)
    transform = transforms.Compose([
        transforms.Resize((224, 224)),
        transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    ])
    ```

    ## Use instead
    ```python
    weights = models.ResNet50_Weights.DEFAULT
    model = models.resnet50(weights=weights)
    transform = weights.transforms()  # or Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    ```

    ## Known problems
    The model and the transforms must be in the same file; a file that builds
    no transforms, or normalises in a way whose numbers cannot be read here
    (`weights.transforms()`, timm's data config, `Normalize(args.mean, ...)`,
    a module that normalises its own input as perceptual losses do), is not
    flagged. Detection models (which normalise inside) and video weights are
    not checked.
    """

    code = "NN604"
    name = "pretrained-without-its-normalization"
    severity = "warning"
    summary = "Pretrained torchvision weights with Normalize values other than ImageNet's, or no Normalize"
    triggers = (
        "pretrained=True", "pretrained = True", "pretrained_backbone=True", "_Weights", 'weights="', "weights='",
        'weights = "', "IMAGENET1K",
    )  # fmt: skip

    bad = [
        Example(
            """
import torch
import torchvision.models as models
import torchvision.transforms as transforms

model = models.resnet50(pretrained=True)
model.fc = torch.nn.Linear(2048, 2)

train_transforms = transforms.Compose([
    transforms.Resize((224,224)),
    transforms.ToTensor(),
    transforms.Normalize((0.5,0.5,0.5), (0.5,0.5,0.5))  # <--
    ])
""",
            message="line 6",
            note="a face-mask classifier fine-tuned from ResNet-50 on [-1, 1] inputs",
        ),
        Example(
            """
from torchvision import models, transforms

transform = transforms.Compose([
    transforms.Resize((224, 224)),
    transforms.ToTensor(),  # <--
])

def get_resnet_model():
    model = models.resnet18(weights=models.ResNet18_Weights.IMAGENET1K_V1)
    return model.eval()
""",
            message="Normalize",
            note="no Normalize at all, the model built after the transforms",
        ),
        Example(
            """
import torchvision
from torchvision import transforms
from torchvision.models import ResNet50_Weights, resnet50

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = [0.2470, 0.2435, 0.2616]

def create_model():
    return resnet50(weights=ResNet50_Weights.DEFAULT)

test_tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean=CIFAR_MEAN, std=CIFAR_STD)])  # <--
gray = transforms.Normalize((0.1307,), (0.3081,))  # <--
""",
            note="dataset statistics through named constants; one-channel MNIST statistics",
        ),
        Example(
            """
import torch
from torchvision import models
from torchvision.transforms import v2

net = torch.hub.load("pytorch/vision", "vgg16", weights="IMAGENET1K_V1")
pipeline = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])  # <--
""",
            note="torch.hub and the transforms v2 API",
        ),
        Example(
            """
import torchvision
from torchvision import transforms

model = torchvision.models.resnet50(weights="IMAGENET1K_V2")
t = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean=[0.5] * 3, std=[0.5] * 3)])  # <--
inv = transforms.Normalize(mean=[-1, -1, -1], std=[2, 2, 2])
""",
            message="mean=(0.5, 0.5, 0.5)",
            note="its inverse (for display) is not reported, the [-1, 1] normalisation is",
        ),
    ]
    good = [
        Example(
            """
from torchvision import models, transforms

weights = models.ResNet50_Weights.DEFAULT
model = models.resnet50(weights=weights)
preprocess = weights.transforms()
train_tf = transforms.Compose([transforms.RandomResizedCrop(224), transforms.ToTensor()])
""",
            note="trap: weights.transforms() used as the transform",
        ),
        Example(
            """
import numpy as np
import torchvision
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torchvision import transforms

model = torchvision.models.densenet121(pretrained=True)
mean = np.array([0.485, 0.456, 0.406])
std = [0.229, 0.224, 0.225]
a = transforms.Normalize(mean, std)
b = transforms.Normalize(mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD)
c = transforms.Normalize([0.485, 0.456, 0.406], (0.229, 0.224, 0.225))
d = transforms.Normalize(mean=[0.48, 0.46, 0.41], std=[0.23, 0.22, 0.22])
denorm = transforms.Normalize((-2.12, -2.04, -1.80), (4.37, 4.46, 4.44))
unnormalize = transforms.Normalize(mean=[-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225], std=[1 / 0.229, 1 / 0.224, 1 / 0.225])
""",
            note="trap: ImageNet statistics in any form (arrays, lists, tuples, timm constants, rounded); denormalisers",
        ),
        Example(
            """
import torch
from torch import nn
from torchvision import models, transforms

class VGGPerceptualLoss(nn.Module):
    def __init__(self):
        super().__init__()
        self.vgg = models.vgg19(weights=models.VGG19_Weights.IMAGENET1K_V1).features[:35].eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, sr, hr):
        sr = (sr - self.mean) / self.std
        hr = (hr - self.mean) / self.std
        return nn.functional.mse_loss(self.vgg(sr), self.vgg(hr))

transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])
""",
            note="trap: a pretrained feature extractor for a perceptual loss that normalises inside its module",
        ),
        Example(
            """
import torch
from torchvision import models

model = models.resnet50(pretrained=True)
model.fc = torch.nn.Linear(2048, 10)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
""",
            note="trap: no transforms in this file (they may be built in another): stay silent",
        ),
        Example(
            """
from torch import nn
from torchvision import models, transforms
from torchvision.models.detection import fasterrcnn_resnet50_fpn

detector = fasterrcnn_resnet50_fpn(weights="DEFAULT")
scratch = models.resnet18(pretrained=False)
maybe = models.resnet18(pretrained=args.pretrained)
mnist_net = models.resnet18(pretrained=True)
mnist_net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
""",
            note="detection models normalise inside; no or unknown weights; a replaced first conv learns its own input",
        ),
        Example(
            """
from torchvision import transforms
from torchvision.models import inception_v3

inception = inception_v3(pretrained=True, transform_input=False, aux_logits=False).eval()
transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])])
""",
            note="Inception scores and FID: with transform_input=False the original weights take [-1, 1] inputs",
        ),
        Example(
            """
import torch
from torchvision import models, transforms

model = models.resnet18(weights="IMAGENET1K_V1")
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
tf = transforms.Compose([transforms.Resize(224), transforms.ToTensor()])

def preprocess(img):
    return (tf(img) - MEAN) / torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
""",
            note="the normalisation written out after the pipeline",
        ),
        Example(
            """
import torchvision
from torchvision import transforms

train_dataset = torchvision.datasets.CIFAR10(root="data", train=True, transform=transforms.ToTensor())
resnet = torchvision.models.resnet18(pretrained=True)
outputs = resnet(torch.randn(64, 3, 224, 224))
""",
            note="a bare transform=ToTensor() for a tutorial's other model: only Compose pipelines are judged",
        ),
        Example(
            """
from torchvision import models, transforms

model = models.vgg16(pretrained=True)
norm = transforms.Normalize(args.mean, args.std)
tf = transforms.Compose([transforms.ToTensor(), transforms.Lambda(lambda x: x * 2 - 1)])
""",
            note="values that cannot be read here, a Lambda that rescales: the author chose",
        ),
    ]

    def __init__(self, context) -> None:
        super().__init__(context)
        # Calls read in leave_Module, where the script model resolves the names they use.
        self._models: list[tuple[cst.Call, str, cst.FunctionDef | None, cst.ClassDef | None]] = []
        self._normalizes: list[tuple[cst.Call, str, cst.FunctionDef | None, cst.CSTNode | None]] = []
        self._conversions: list[tuple[cst.Call, cst.CSTNode | None]] = []
        self._subtrahends: list[tuple[cst.BaseExpression, cst.FunctionDef | None]] = []  # `(x - this) / ...`
        self._inverses: set[int] = set()  # Normalize calls assigned to `denorm`, or inside `def unnormalize`
        self._first_layer_replaced = False
        self._script = None  # the script model, in leave_Module

    def visit_Assign(self, node: cst.Assign) -> None:
        # `model.conv1 = nn.Conv2d(...)`, `model.features[0] = ...` (a subscript the index does not bind).
        if isinstance(node.value, cst.Call) and any(
            _FIRST_LAYER.search(dotted_name(target.target) or source_code(target.target)) for target in node.targets
        ):
            self._first_layer_replaced = True

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        # `(x - mean) / std`, `(x - 0.5) / 0.5` written out: a normalisation whose numbers need not be
        # readable (a display rescaling `(x - x.min()) / ...` is not one).
        if isinstance(node.operator, cst.Divide) and isinstance(node.left, cst.BinaryOperation):
            if isinstance(node.left.operator, cst.Subtract):
                self._subtrahends.append((node.left.right, self.context.enclosing_function()))

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.context.call_name(node) or ""
        last = qualified.rsplit(".", 1)[-1]
        function = self.context.enclosing_function()
        if qualified == "torch.hub.load" or qualified.startswith("torchvision.models."):
            self._models.append((node, qualified, function, self.context.enclosing_class()))
        elif last == "Normalize" and qualified.startswith(_IMAGE_LIBRARIES):
            self._normalizes.append((node, qualified, function, self.context.current_statement()))
            if _INVERSE_CONTEXT.search(" ".join(self._names_around())):
                self._inverses.add(id(node))
        elif qualified.startswith("torchvision.transforms.") and converts(node, last) and self._in_pipeline():
            self._conversions.append((node, self.context.current_statement()))

    def leave_Module(self, node: cst.Module) -> None:
        if not self._models or self._first_layer_replaced or _OTHER_PREPROCESSING.search(self.context.source):
            return
        self._script = script = script_model(self.context)
        models = [
            call for call, qualified, function, cls in self._models
            if self._is_pretrained(call, qualified, function) and not (cls and _normalises_inside(cls))
        ]  # fmt: skip
        if not models or any(self._normalises_by_hand(expr, function) for expr, function in self._subtrahends):
            return
        model = models[0]
        where = f"`{_short(model)}` (line {script.line(model)}) was pretrained on ImageNet-normalised images"
        if self._normalizes:
            normalizes = [
                (call, self._statistics(call, qualified, function), statement)
                for call, qualified, function, statement in self._normalizes
            ]  # fmt: skip
            if any(values is None or _is_imagenet(values) for _, values, _ in normalizes):
                return  # the author knows ImageNet's statistics, or uses ones we cannot read
            for call, (mean, std), statement in normalizes:
                if self._is_inverse(call, mean, std, [values for _, values, _ in normalizes]):
                    continue
                self.reports.append(Report(call, (
                    f"{where}, but `Normalize` at line {script.line(call)} uses mean={_show(mean)}, "
                    f"std={_show(std)}; use {_USE} (or the weights' own `weights.transforms()`)"
                ), statement))  # fmt: skip
        else:
            for call, statement in self._conversions:
                self.reports.append(Report(call, (
                    f"{where}, but the transform with `{source_code(call)}` at line {script.line(call)} never "
                    f"normalises; add `Normalize({_USE})` after it (or use `weights.transforms()`)"
                ), statement))  # fmt: skip

    def _normalises_by_hand(self, subtrahend: cst.BaseExpression, function) -> bool:
        """Pixel statistics lie in (0, 1) or are named like a mean; `(epoch - 1) / n` is not a normalisation."""
        numbers = self._numbers(subtrahend, function, subtrahend) or (1.0,)
        return bool(_MEAN.search(source_code(subtrahend))) or all(0 < number < 1 for number in numbers)

    # -- which calls load ImageNet weights

    def _is_pretrained(self, call: cst.Call, qualified: str, function) -> bool:
        keywords = {arg.keyword.value: arg.value for arg in call.args if arg.keyword is not None}
        if qualified == "torch.hub.load":
            repo = call.args[0].value if call.args else None
            if not (isinstance(repo, cst.SimpleString) and repo.evaluated_value.startswith("pytorch/vision")):
                return False
            if len(call.args) > 1 and isinstance(call.args[1].value, cst.SimpleString):
                if _OTHER_MODEL_NAMES.search(call.args[1].value.evaluated_value):
                    return False
        elif qualified.startswith("torchvision.models."):
            path = qualified.split(".")[2:]
            if path[0] in _OTHER_FAMILIES or not path[-1][:1].islower():
                return False
            if path[-1] == "get_model":
                name = call.args[0].value if call.args else None
                if not isinstance(name, cst.SimpleString) or _OTHER_MODEL_NAMES.search(name.evaluated_value):
                    return False
        else:
            return False
        if source_code(keywords.get("transform_input", cst.Name("None"))) == "False":
            return False  # Inception's original weights on [-1, 1] inputs (FID/IS code)
        pretrained = keywords.get("pretrained", keywords.get("pretrained_backbone"))
        if isinstance(pretrained, cst.Name) and pretrained.value == "True":
            return True
        weights = keywords.get("weights", keywords.get("weights_backbone"))
        return weights is not None and self._names_weights(weights, function, call)

    def _names_weights(self, expr: cst.BaseExpression, function, at: cst.CSTNode, depth: int = 0) -> bool:
        """`"IMAGENET1K_V1"`, `"DEFAULT"`, `ResNet50_Weights.DEFAULT`, or a variable bound to one."""
        if isinstance(expr, cst.SimpleString):
            return expr.evaluated_value not in ("", "None")
        name = dotted_name(expr)
        if name is None:
            if isinstance(expr, cst.Call):  # `ResNet50_Weights.verify(...)`, `get_weight("...")`
                return self._names_weights(expr.func, function, at, depth)
            return False
        parts = name.split(".")
        if len(parts) >= 2 and _WEIGHTS_CLASS.search(parts[-2]) or parts[-1] == "get_weight":
            return True
        return depth == 0 and any(
            self._names_weights(value, function, at, 1) for value in assigned_values(self._script, name, function, at)
        )

    # -- what a Normalize does

    def _statistics(self, call: cst.Call, qualified: str, function) -> tuple | None:
        """(mean, std) as numbers, or None where they cannot be read (or are ImageNet's by name)."""
        arguments = {arg.keyword.value: arg.value for arg in call.args if arg.keyword is not None}
        positional = [arg.value for arg in call.args if arg.keyword is None]
        mean = arguments.get("mean", positional[0] if positional else None)
        std = arguments.get("std", positional[1] if len(positional) > 1 else None)
        if mean is None and std is None and qualified.startswith("albumentations"):
            return IMAGENET_MEAN, IMAGENET_STD  # albumentations' default
        if mean is None or std is None:
            return None
        if _IMAGENET_NAME.search(source_code(mean)) and _IMAGENET_NAME.search(source_code(std)):
            return IMAGENET_MEAN, IMAGENET_STD  # `IMAGENET_DEFAULT_MEAN`, `imagenet_stats["std"]`
        values = self._numbers(mean, function, call), self._numbers(std, function, call)
        return None if None in values else values

    def _numbers(self, expr: cst.BaseExpression, function, at: cst.CSTNode, depth: int = 0) -> tuple[float, ...] | None:
        """The numbers an expression spells: `0.5`, `[0.5] * 3`, `(1 / 0.229, ...)`, `torch.tensor([...]).view(...)`,
        or a variable bound once to one of those."""
        if isinstance(expr, (cst.Integer, cst.Float)):
            return (float(expr.evaluated_value),)
        if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
            inner = self._numbers(expr.expression, function, at, depth)
            return None if inner is None else tuple(-value for value in inner)
        if isinstance(expr, (cst.List, cst.Tuple)):
            items = [self._numbers(element.value, function, at, depth) for element in expr.elements]
            if any(item is None or len(item) != 1 for item in items):
                return None
            return tuple(item[0] for item in items)
        if isinstance(expr, cst.BinaryOperation):
            left, right = self._numbers(expr.left, function, at, depth), self._numbers(expr.right, function, at, depth)
            if left is None or right is None:
                return None
            if isinstance(expr.operator, cst.Multiply) and isinstance(expr.left, (cst.List, cst.Tuple)):
                return left * int(right[0]) if len(right) == 1 and right[0].is_integer() else None
            return _arithmetic(expr.operator, left, right)
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
            if expr.func.attr.value in _TENSOR_WRAPPERS and expr.args:
                return self._numbers(expr.args[0].value, function, at, depth)
            if expr.func.attr.value in _RESHAPES:
                return self._numbers(expr.func.value, function, at, depth)
        name = dotted_name(expr)
        if name is not None and depth < 3:
            values = assigned_values(self._script, name, function, at)
            if len(values) == 1:
                return self._numbers(values[0], function, at, depth + 1)
        return None

    def _is_inverse(self, call: cst.Call, mean: tuple, std: tuple, statistics: list[tuple]) -> bool:
        """A Normalize that undoes another (ImageNet's or one in this file), to show or save an image."""
        if id(call) in self._inverses:
            return True
        if not all(s > 1 for s in std) and not (all(s == 1 for s in std) and all(m < 0 for m in mean)):
            return False  # an inverse divides by 1/std > 1 (or only adds the mean back)
        for other_mean, other_std in [(IMAGENET_MEAN, IMAGENET_STD), *statistics]:
            if len(other_mean) != len(mean) or len(other_std) != len(std) or 0 in other_std:
                continue
            if _close(mean, [-m / s for m, s in zip(other_mean, other_std)], 0.02):
                if _close(std, [1 / s for s in other_std], 0.02):
                    return True
            if _close(mean, [0.0] * len(mean)) and _close(std, [1 / s for s in other_std], 0.02):
                return True  # first half of a two-step inverse: Normalize(0, 1/std) then Normalize(-mean, 1)
            if _close(mean, [-m for m in other_mean]) and _close(std, [1.0] * len(std)):
                return True
        return False

    def _names_around(self) -> list[str]:
        """The names a call is assigned to and the function and class it sits in."""
        names = []
        for node in self.context.ancestors:
            if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
                names.append(node.name.value)
            elif isinstance(node, cst.Assign):
                names.extend(source_code(target.target) for target in node.targets)
        return names

    # -- plumbing

    def _in_pipeline(self) -> bool:
        """A ToTensor that is a step of a Compose list. A bare `transform=ToTensor()` is the MNIST/CIFAR
        tutorial idiom, usually for another model than the pretrained one (a tutorial's other section)."""
        return bool(self.context.ancestors) and isinstance(self.context.ancestors[-1], cst.Element)


def _normalises_inside(cls: cst.ClassDef) -> bool:
    """The module holding the pretrained network standardises its own input (perceptual losses do)."""
    for node in descendants(cls):
        if isinstance(node, cst.Call) and re.search(r"normali[sz]e|register_buffer", source_code(node.func), re.I):
            return True
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Divide):
            if isinstance(node.left, cst.BinaryOperation) and isinstance(node.left.operator, cst.Subtract):
                return True
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Subtract):
            if _MEAN.search(source_code(node.right)):  # Caffe-style `x - 103.939`, `x - self.mean`
                return True
    return False


def _arithmetic(operator: cst.BaseBinaryOp, left: tuple, right: tuple) -> tuple | None:
    if len(left) != len(right) and 1 not in (len(left), len(right)):
        return None
    size = max(len(left), len(right))
    pairs = zip(left * size if len(left) == 1 else left, right * size if len(right) == 1 else right)
    functions = {cst.Add: float.__add__, cst.Subtract: float.__sub__, cst.Multiply: float.__mul__}
    if isinstance(operator, cst.Divide):
        return None if 0.0 in right else tuple(a / b for a, b in pairs)
    function = functions.get(type(operator))
    return None if function is None else tuple(function(a, b) for a, b in pairs)


def _close(values, expected, tolerance: float = _TOLERANCE) -> bool:
    return len(values) == len(expected) and all(
        math.isclose(v, e, rel_tol=0.01, abs_tol=tolerance) for v, e in zip(values, expected)
    )


def _is_imagenet(statistics: tuple) -> bool:
    """ImageNet's mean/std, on the [0, 1] scale or the [0, 255] one."""
    mean, std = statistics
    return any(
        _close(mean, [m * scale for m in IMAGENET_MEAN], _TOLERANCE * scale)
        and _close(std, [s * scale for s in IMAGENET_STD], _TOLERANCE * scale)
        for scale in (1, 255)
    )


def _show(values: tuple) -> str:
    return "(" + ", ".join(f"{value:.4g}" for value in values) + ("," if len(values) == 1 else "") + ")"


def _short(call: cst.Call) -> str:
    text = " ".join(source_code(call).split())
    return text if len(text) <= 70 else f"{source_code(call.func)}(...)"
