import re

import libcst as cst

from nnlint.names import dotted_name
from nnlint.rule import Example, Report, Rule
from nnlint.script import script_model
from nnlint.script.transforms import NORMALISED, NORMALIZE, UNKNOWN, judge
from nnlint.tree import source_code

# Datasets whose samples are not single images (video clips, optical-flow pairs) or are random.
_NOT_IMAGES = {
    "DatasetFolder", "VisionDataset", "FakeData", "Kinetics", "Kinetics400", "HMDB51", "UCF101", "MovingMNIST",
    "FlyingChairs", "FlyingThings3D", "Sintel", "KittiFlow", "HD1K",
}  # fmt: skip
_FOLDERS = {"ImageFolder"}  # transform is their second positional parameter
# Per-channel statistics of the training splits, to say what to write.
_KNOWN_STATISTICS = {
    "MNIST": "(0.1307,), (0.3081,)",
    "FashionMNIST": "(0.2860,), (0.3530,)",
    "CIFAR10": "(0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)",
    "CIFAR100": "(0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)",
}
# Images that are also targets (autoencoders, VAEs, GANs, diffusion, super-resolution) must stay in the
# range of the decoder's output, often [0, 1] for a sigmoid and a BCE/MSE reconstruction loss.
_IMAGES_AS_TARGETS = re.compile(
    r"binary_cross_entropy|BCELoss|mse_loss|MSELoss|l1_loss|L1Loss|save_image|Generator|Discriminator"
    r"|[Aa]uto[Ee]ncoder|VAE|reparameteri|Decoder|[Dd]iffusion|[Dd]enois"
)
# Rescaling written out elsewhere: `x * 2 - 1`, `2 * x - 1`, `(x - 0.5) / 0.5`, `x.sub_(0.5)`.
_RESCALED = re.compile(r"\*\s*2\s*-\s*1\b|\b2\s*\*\s*\w+\s*-\s*1\b|-\s*0?\.5\s*\)\s*/|\.sub_?\(")
_FROZEN = re.compile(r"requires_grad\s*=\s*False|requires_grad_\(False\)")
_NOT_IMAGE_NORMALIZE = {"torch.nn.functional.normalize"}  # L2-normalising embeddings
# Pretrained weights dictate their own preprocessing (NN604 checks torchvision's).
_PRETRAINED = re.compile(r"pretrained\s*=\s*True|_Weights\b|\bweights\s*=\s*[\"']|from_pretrained\(|hub\.load\(")


class ImagesNotNormalized(Rule):
    """
    ## What it does
    Flags an image dataset (`torchvision.datasets.MNIST`, `CIFAR10`, ...,
    `ImageFolder`) whose transform converts images to tensors (`ToTensor()`,
    or `ToImage()` with `ToDtype(..., scale=True)`) and never normalises them.
    Only a pipeline written in the same file (inline, through a variable or a
    dict of pipelines) is judged.

    ## Why is this bad?
    `ToTensor` only scales pixels to `[0, 1]`: every input is positive with a
    mean near 0.5 (0.13 for MNIST). Inputs far from zero mean and unit scale
    slow down and destabilise training (the first layer's gradients all share
    a sign, weight decay and initialisation assume standardised inputs).
    Subtracting the training set's per-channel mean and dividing by its std is
    the recipe's first step of data preprocessing. (Recipe: "normalise your
    inputs"; info, off by default.)

    ## Example
    ```python
    train_set = datasets.CIFAR10("data", train=True, transform=transforms.ToTensor())
    ```

    ## Use instead
    ```python
    transform = transforms.Compose([
        transforms.ToTensor(),
        transforms.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    ])
    train_set = datasets.CIFAR10("data", train=True, transform=transform)
    ```

    ## Known problems
    Reported once per file. Not flagged: a file that normalises anywhere (a
    `Normalize` in another pipeline or in the model, `(x - mean) / std` in
    `forward`, `x * 2 - 1` on the batches: a raw pipeline beside them computes
    statistics or shows pictures); generative models (autoencoders, VAEs,
    GANs, diffusion), whose images are also targets that must stay in the
    decoder's range; pretrained or loaded-and-frozen weights, whose
    preprocessing is dictated by how they were trained (NN604 checks
    torchvision's). A pipeline with a `Lambda`, a step from another library,
    or a transform passed in by the caller is not judged.
    """

    code = "NN605"
    name = "images-not-normalized"
    severity = "info"
    default_enabled = False
    summary = "An image dataset converted to tensors with ToTensor and never normalised"
    triggers = ("ToTensor", "ToDtype", "ConvertImageDtype")

    bad = [
        Example(
            """
import torchvision
import torchvision.transforms as transforms

train_dataset = torchvision.datasets.MNIST(root='../../data/', train=True, transform=transforms.ToTensor(), download=True)  # <--
""",
            message="(0.1307,), (0.3081,)",
        ),
        Example(
            """
from torchvision import datasets, transforms

data_transforms = {
    'train': transforms.Compose([
        transforms.RandomResizedCrop(224),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),  # <--
    ]),
    'val': transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor()]),
}
image_datasets = {x: datasets.ImageFolder(os.path.join(data_dir, x), data_transforms[x]) for x in ['train', 'val']}
""",
            message="also the pipeline at line 10",
            note="a dict of pipelines indexed by split, passed positionally to ImageFolder: one finding per file",
        ),
        Example(
            """
import torch
from torchvision import datasets
from torchvision.transforms import v2

class CIFARData:
    def __init__(self):
        self.transform = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])  # <--

    def setup(self):
        self.train = datasets.CIFAR10("data", train=True, transform=self.transform)
""",
            note="transforms v2, held on self",
        ),
    ]
    good = [
        Example(
            """
import torch
from torch import nn
from torchvision import datasets, transforms

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1))

    def forward(self, x):
        x = (x - self.mean) / self.std
        return self.body(x)

train_set = datasets.CIFAR10("data", train=True, transform=transforms.ToTensor())
""",
            note="trap: the model normalises inside forward",
        ),
        Example(
            """
import torchvision
from torch import nn
from torchvision import datasets, transforms

class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.normalize = transforms.Normalize((0.1307,), (0.3081,))

    def forward(self, x):
        return self.fc(self.normalize(x).flatten(1))

mnist = datasets.MNIST("data", transform=transforms.Compose([transforms.ToTensor()]))
""",
            note="trap: the model holds a Normalize module",
        ),
        Example(
            """
from torchvision import datasets, transforms

normalize = transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
train_dataset = datasets.ImageFolder(traindir, transforms.Compose([transforms.ToTensor(), normalize]))
test = datasets.CIFAR10("data", train=False, transform=build_transform(args))
other = datasets.CIFAR10("data", transform=transforms.Compose([transforms.ToTensor(), transforms.Lambda(scale)]))
""",
            note="Normalize through a variable; pipelines built elsewhere or with a Lambda are not judged",
        ),
        Example(
            """
import torch.nn.functional as F
from torchvision import datasets, transforms

dataset = datasets.MNIST(root="data", train=True, transform=transforms.ToTensor(), download=True)

def loss_function(recon_x, x, mu, log_var):
    return F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
""",
            note="a VAE: the images are BCE targets and must stay in [0, 1]",
        ),
        Example(
            """
from torchvision import datasets, transforms

dataset = datasets.MNIST(root="data", train=True, transform=transforms.ToTensor())
for images, labels in loader:
    images = images * 2 - 1
""",
            note="the batches are rescaled in the training loop",
        ),
        Example(
            """
from torchvision import datasets, transforms

cifar_train_set = datasets.CIFAR100(root="data", train=True, download=True, transform=transforms.ToTensor())
DATA_MEANS = (cifar_train_set.data / 255.0).mean(axis=(0, 1, 2))
DATA_STD = (cifar_train_set.data / 255.0).std(axis=(0, 1, 2))
test_transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(DATA_MEANS, DATA_STD)])
""",
            note="a raw pass that computes the statistics the file then normalises with",
        ),
        Example(
            """
import torch
from torchvision import datasets, transforms

def get_dataloaders_mnist(batch_size, train_transforms=None):
    if train_transforms is None:
        train_transforms = transforms.ToTensor()
    return datasets.MNIST(root="data", train=True, transform=train_transforms)

train_dataset = datasets.STL10("./data", split="train", download=True, transform=transforms.ToTensor())
model.load_state_dict(torch.load("checkpoint_0040.pth.tar")["state_dict"], strict=False)
for name, param in model.named_parameters():
    if name not in ["fc.weight", "fc.bias"]:
        param.requires_grad = False
""",
            note="a helper whose caller chooses the transform; a frozen encoder fed the inputs it was trained on",
        ),
    ]

    def __init__(self, context) -> None:
        super().__init__(context)
        # (dataset call, its transform argument, enclosing function, statement), judged in leave_Module.
        self._datasets: list[tuple[cst.Call, cst.BaseExpression, cst.FunctionDef | None, cst.CSTNode | None]] = []
        # A Normalize anywhere (another pipeline, a model's module, an inverse for display), or the model
        # normalising in forward: the author normalises, and a raw pipeline is for statistics or pictures.
        self._normalises_somewhere = False

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, cst.Divide) and isinstance(node.left, cst.BinaryOperation):
            if isinstance(node.left.operator, cst.Subtract) and self._in_forward():
                self._normalises_somewhere = True  # `(x - self.mean) / self.std` in the model

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.context.call_name(node) or ""
        if NORMALIZE.search(qualified or dotted_name(node.func) or "") and qualified not in _NOT_IMAGE_NORMALIZE:
            self._normalises_somewhere = True
            return
        dataset = qualified.rsplit(".", 1)[-1]
        if not qualified.startswith("torchvision.datasets.") or dataset in _NOT_IMAGES:
            return
        transform = next((arg.value for arg in node.args if arg.keyword and arg.keyword.value == "transform"), None)
        positional = [arg.value for arg in node.args if arg.keyword is None]
        if transform is None and dataset in _FOLDERS and len(positional) > 1:
            transform = positional[1]
        if transform is not None:
            self._datasets.append((node, transform, self.context.enclosing_function(), self.context.current_statement()))

    def leave_Module(self, node: cst.Module) -> None:
        source = self.context.source
        if not self._datasets or self._normalises_somewhere or _RESCALED.search(source):
            return
        if _IMAGES_AS_TARGETS.search(source) or _PRETRAINED.search(source) or _frozen_checkpoint(source):
            return
        script = script_model(self.context)
        raw = []  # (conversion call, dataset call, statement) for each dataset fed a raw pipeline
        for dataset, transform, function, statement in self._datasets:
            conversions = judge(script, transform, function, dataset)
            if conversions not in (NORMALISED, UNKNOWN):
                raw += [(conversion, dataset, statement) for conversion in conversions]
        if not raw:
            return
        # One finding per file: its pipelines are one decision (train and test must match anyway).
        conversion, dataset, statement = raw[0]
        name = (self.context.call_name(dataset) or "").rsplit(".", 1)[-1]
        known = _KNOWN_STATISTICS.get(name)
        values = f"`Normalize({known})`" if known else "`Normalize(mean, std)` with the training set's statistics"
        others = sorted({script.line(call) for call, _, _ in raw} - {script.line(conversion)})
        plural = "s" * (len(others) > 1)
        also = f" (also the pipeline{plural} at line{plural} {', '.join(map(str, others))})" if others else ""
        self.reports.append(Report(conversion, (
            f"`{name}` (line {script.line(dataset)}) gets images through `{source_code(conversion)}` at line "
            f"{script.line(conversion)} and nothing in this file normalises them: inputs stay in [0, 1], off-centre; "
            f"add {values} after it{also}"
        ), statement))  # fmt: skip

    def _in_forward(self) -> bool:
        function = self.context.enclosing_function()
        return function is not None and function.name.value.startswith("forward")


def _frozen_checkpoint(source: str) -> bool:
    """Weights loaded and frozen (a linear probe of a self-supervised encoder): the pipeline must match the
    one they were trained with, normalised or not."""
    return "load_state_dict(" in source and bool(_FROZEN.search(source))
