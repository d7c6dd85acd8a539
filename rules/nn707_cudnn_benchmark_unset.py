import re

import libcst as cst

from nnlint.names import dotted_name
from nnlint.rule import Example, Rule
from nnlint.script import script_model

_CONV_LAYERS = re.compile(
    r"^torch\.nn\.(Lazy)?Conv(Transpose)?[123]d$|^torch\.nn\.functional\.conv(_transpose)?[123]d$"
)
# Pretrained vision models are convolutional (a ViT's patch embedding is a Conv2d too); detection models
# take images of varying sizes, where benchmark mode re-tunes on every new shape, so leaving it off is right.
_CONV_MODELS = ("torchvision.models.", "timm.")
_VARIABLE_SIZES = ("torchvision.models.detection", "torchvision.models.optical_flow")
_ON_CUDA = re.compile(r"""\.cuda\(|["']cuda(:\d+)?["']""")
# Either way is a choice: benchmark on or off, deterministic kernels, cuDNN disabled, Lightning's flags.
_CHOSEN = re.compile(
    r"cudnn\.(benchmark|deterministic|enabled)|use_deterministic_algorithms|\b(benchmark|deterministic)\s*="
)
# A project's seeding helper (yolov5's `init_seeds(seed, deterministic=True)`) often sets the cuDNN flags.
_SEEDING_HELPER = re.compile(r"seed|determinis|reproducib", re.I)
_LIBRARY_SEEDS = ("torch.", "random.", "numpy.", "lightning.", "pytorch_lightning.", "transformers.", "accelerate.")


class CudnnBenchmarkUnset(Rule):
    """
    ## What it does
    Flags a training script for convolutional networks on CUDA (it builds
    `nn.Conv1d/2d/3d` layers or a torchvision/timm model, moves work to
    `"cuda"`, and runs a loop calling `backward()` and `step()`) that never
    sets `torch.backends.cudnn.benchmark`, nor `cudnn.deterministic`, nor
    `torch.use_deterministic_algorithms`. Reported once per file, at the first
    training loop.

    ## Why is this bad?
    With `benchmark = True` cuDNN times several convolution algorithms for
    each new input shape and keeps the fastest, often a sizeable speed-up
    when the input size is fixed; with it unset the choice is a heuristic
    one and may also differ between runs. Setting it (to `True` for speed,
    or `False` with `cudnn.deterministic = True` for bit-exact reruns) makes
    the trade-off a decision instead of an accident.

    ## Example
    ```python
    model = torchvision.models.resnet18(num_classes=10).cuda()
    for images, labels in loader:
        ...
        loss.backward()
        optimizer.step()
    ```

    ## Use instead
    ```python
    torch.backends.cudnn.benchmark = True  # fixed-size inputs: fastest kernels
    # or, for reproducible runs:
    # torch.backends.cudnn.benchmark = False; torch.backends.cudnn.deterministic = True
    ```

    ## Known problems
    Only a file that runs its training when executed is judged, and a model
    is seen as convolutional only when the file itself builds conv layers or
    a torchvision/timm model. Detection models (varying image sizes, where
    benchmark mode re-tunes at each new shape) are not flagged. A call of a
    project's seeding helper (`init_seeds(...)`) is taken to set the flags.

    ## From the recipe
    "Fix the random seed" (end-to-end skeleton): a reproducible run needs
    deterministic kernels as well as a seed; a fast one needs benchmark mode.
    """

    code = "NN707"
    name = "cudnn-benchmark-unset"
    severity = "info"
    summary = "A CUDA training script for a conv net never sets torch.backends.cudnn.benchmark"
    triggers = ("backward",)  # no training iteration without it; rarer than "Conv"
    default_enabled = False

    bad = [
        Example(
            """
import torch
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)

device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
net = Net().to(device)
optimizer = torch.optim.SGD(net.parameters(), lr=0.001)
for epoch in range(2):
    for inputs, labels in trainloader:  # <--
        optimizer.zero_grad()
        loss = criterion(net(inputs.to(device)), labels.to(device))
        loss.backward()
        optimizer.step()
""",
            message="cudnn.benchmark",
        ),
        Example(
            """
import torch
import torchvision

def train(model, loader, optimizer):
    model.train()
    for images, target in loader:  # <--
        images, target = images.cuda(non_blocking=True), target.cuda(non_blocking=True)
        loss = torch.nn.functional.cross_entropy(model(images), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

def main():
    model = torchvision.models.resnet50(weights=None).cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(90):
        train(model, train_loader, optimizer)

if __name__ == "__main__":
    main()
""",
            note="a torchvision model, `.cuda()`, the loop in a function main() runs",
        ),
        Example(
            """
import torch
import torch.nn as nn

cuda = True if torch.cuda.is_available() else False

class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_blocks = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(128, 128, 3, stride=1, padding=1))

generator = Generator()
if cuda:
    generator.cuda()
optimizer_G = torch.optim.Adam(generator.parameters(), lr=2e-4)
for epoch in range(200):
    for i, (imgs, _) in enumerate(dataloader):  # <--
        optimizer_G.zero_grad()
        g_loss = adversarial_loss(discriminator(generator(z)), valid)
        g_loss.backward()
        optimizer_G.step()
""",
            note="eriklindernoren/PyTorch-GAN dcgan.py: the loop is reported on its header line",
        ),
    ]
    good = [
        Example(
            """
import torch
import torch.nn as nn

net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.Flatten(), nn.LazyLinear(10))
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
for x, y in loader:
    optimizer.zero_grad()
    criterion(net(x), y).backward()
    optimizer.step()
""",
            note="trap: CPU-only code",
        ),
        Example(
            """
import torch
import torchvision

model = torchvision.models.resnet18(weights="DEFAULT").cuda().eval()
with torch.no_grad():
    for images, _ in loader:
        print(model(images.cuda()).argmax(1))
""",
            note="trap: no training iteration (inference only)",
        ),
        Example(
            """
import torch
import torch.backends.cudnn as cudnn
from torch import nn

def main():
    cudnn.benchmark = args.benchmark
    model = nn.Conv2d(3, 8, 3).cuda()
    for x in loader:
        model(x.cuda()).mean().backward()
        optimizer.step()

if __name__ == "__main__":
    main()
""",
            note="trap: benchmark set from a flag, through `import torch.backends.cudnn as cudnn`",
        ),
        Example(
            """
from torch.backends import cudnn
import timm, torch

cudnn.deterministic = True
model = timm.create_model("resnet50").to("cuda")
for x, y in loader:
    loss_fn(model(x), y).backward()
    optimizer.step()
""",
            note="trap: deterministic mode chosen instead",
        ),
        Example(
            """
import torch
import torchvision

model = torchvision.models.detection.fasterrcnn_resnet50_fpn(num_classes=2).to("cuda")
for images, targets in loader:
    loss = sum(model(images, targets).values())
    loss.backward()
    optimizer.step()
""",
            note="detection: images of varying sizes, where benchmark mode would re-tune at every shape",
        ),
        Example(
            """
import torch
from torch import nn
from utils.general import init_seeds

def main(opt):
    init_seeds(opt.seed + 1, deterministic=True)
    model = nn.Sequential(nn.Conv2d(3, 16, 3)).cuda()
    for imgs, targets in loader:
        compute_loss(model(imgs.cuda()), targets).backward()
        optimizer.step()

if __name__ == "__main__":
    main(opt)
""",
            note="a project seeding helper that sets the cuDNN flags (yolov5)",
        ),
        Example(
            """
import torch
from torch import nn

class Trainer:
    def __init__(self):
        self.model = nn.Conv2d(3, 8, 3).cuda()

    def train_epoch(self, loader):
        for x, y in loader:
            self.criterion(self.model(x), y).backward()
            self.optimizer.step()
""",
            note="a library module: the script that runs it makes the choice",
        ),
        Example(
            """
import torch
import torch.backends.cudnn as cudnn
import torchvision

device = "cuda" if torch.cuda.is_available() else "cpu"
net = torchvision.models.resnet18(num_classes=10).to(device)
if device == "cuda":
    net = torch.nn.DataParallel(net)
    cudnn.benchmark = True
for inputs, targets in trainloader:
    optimizer.zero_grad()
    criterion(net(inputs.to(device)), targets.to(device)).backward()
    optimizer.step()
""",
            note="trap: benchmark set (kuangliu/pytorch-cifar)",
        ),
        Example(
            """
import lightning as L
import torch
from torch import nn

fabric = L.Fabric(accelerator="cuda")
trainer = L.Trainer(accelerator="cuda", benchmark=True)
model = nn.Sequential(nn.Conv2d(3, 8, 3)).cuda()
for x in loader:
    fabric.backward(model(x).mean())
    optimizer.step()
""",
            note="Lightning's `benchmark=True` flag sets it",
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        source = self.context.source
        if not _ON_CUDA.search(source) or _CHOSEN.search(source):
            return
        script = script_model(self.context)
        if not self._builds_convnet(script) or self._calls_imported_seeding_helper(script):
            return
        iterations = script.executed_iterations
        if not iterations:
            return
        first = iterations[0]  # the first the run reaches
        self.report(
            _header(first.node),
            "this CUDA training loop runs convolutions but `torch.backends.cudnn.benchmark` is never set: "
            "set it to True for the fastest kernels on fixed-size inputs, or to False with "
            "`torch.backends.cudnn.deterministic = True` for reproducible runs",
        )

    def _builds_convnet(self, script) -> bool:
        """The file builds conv layers or a vision model, and no detection model."""
        conv = False
        for name in self._call_names(script):
            if name.startswith(_VARIABLE_SIZES):
                return False
            conv = conv or bool(_CONV_LAYERS.match(name)) or name.startswith(_CONV_MODELS)
        return conv

    def _calls_imported_seeding_helper(self, script) -> bool:
        """A helper defined in this file shows its flags in the source; an imported one may set them unseen."""
        for name in self._call_names(script):
            last = name.rsplit(".", 1)[-1]
            imported = last not in script.index.functions and not name.startswith(_LIBRARY_SEEDS)
            if imported and _SEEDING_HELPER.search(last):
                return True
        return False

    def _call_names(self, script):
        for call, _ in script.index.calls:
            func = call.func.value if isinstance(call.func, cst.Subscript) else call.func  # models.__dict__[arch]()
            yield self.context.qualified_name(func) or dotted_name(func) or ""


def _header(node: cst.CSTNode) -> cst.CSTNode:
    """Where a loop (or a step function) is named, so that the finding spans one line, not the whole loop."""
    if isinstance(node, cst.For):
        return node.iter
    return node.test if isinstance(node, cst.While) else node.name
