import re

import libcst as cst

from nnlint.names import dotted_name
from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.timeline import BACKWARD, STEP

# A call whose name says it seeds or makes the run deterministic: torch's own, Lightning's, transformers',
# accelerate's, and the helpers every project writes (`set_seed`, `init_seeds`, `fix_random_seed`, ...).
_SEEDS = re.compile(r"seed|determinis|reproducib", re.I)
# Seeding Python's, numpy's or TensorFlow's generator leaves torch's (weight init, dropout, shuffling) unseeded.
_NOT_TORCH = ("random.", "numpy.", "np.", "tensorflow.", "tf.")
# `# torch.manual_seed(1)  # reproducible`: the author weighed seeding and turned it off.
_COMMENTED_SEED = re.compile(r"#.*(manual_seed|seed_everything|set_seed)")


class UnseededTraining(Rule):
    """
    ## What it does
    Flags a training script (a file that runs a loop calling `backward()` and
    an optimizer's `step()`) that never seeds torch: no `torch.manual_seed`,
    `torch.cuda.manual_seed_all`, `seed_everything` (Lightning, Fabric),
    `set_seed` (transformers, accelerate), and no call of a project helper
    whose name says it seeds (`set_seed`, `init_seeds`, `setup_seed`, ...),
    nor passes `deterministic=True` (Lightning's `Trainer`). Reported once per
    file, at the first training step.

    ## Why is this bad?
    Weight initialisation, dropout masks and data shuffling then differ on
    every run, so two runs of the same code give different curves and a
    change cannot be told apart from noise. The recipe's first step ("fix the
    random seed") makes a result reproducible; an unseeded run is a fine
    choice when run-to-run variance is what you want to see, but it should be
    a choice.

    ## Example
    ```python
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for x, y in loader:
        ...
        loss.backward()
        optimizer.step()
    ```

    ## Use instead
    ```python
    torch.manual_seed(0)  # or lightning.seed_everything(0) / transformers.set_seed(0)
    model = Net()
    ...
    ```

    ## Known problems
    Only a file that runs its training when executed is judged (module-level
    code, a `__main__` guard, or a function it hands to `mp.spawn`/`fire`):
    a library module's `train_one_epoch` is seeded by the script that calls
    it. A seed set in another module at import time is not seen. Seeding
    `random` or `numpy` alone does not count: torch's generator is separate.
    A seeding call left commented out (`# torch.manual_seed(1)`) is taken as
    a decision. A run that uses no torch randomness at all (zero-initialised,
    full-batch, no dropout) is still reported.

    ## From the recipe
    "Fix the random seed" (end-to-end skeleton).
    """

    code = "NN701"
    name = "unseeded-training"
    severity = "info"
    summary = "A training script that never seeds torch: runs cannot be reproduced"
    triggers = ("backward",)
    default_enabled = False

    bad = [
        Example(
            """
import torch

model = torch.nn.Linear(10, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    optimizer.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    optimizer.step()  # <--
""",
            message="torch.manual_seed",
        ),
        Example(
            """
import random
import numpy as np
import torch

def train(model, loader, optimizer):
    for images, labels in loader:
        optimizer.zero_grad()
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()  # <--

def main():
    random.seed(0)
    np.random.seed(0)
    model = Net().cuda()
    optimizer = torch.optim.Adam(model.parameters())
    for epoch in range(10):
        train(model, loader, optimizer)

if __name__ == "__main__":
    main()
""",
            note="seeding random and numpy leaves torch's generator unseeded; the loop runs from main()",
        ),
        Example(
            """
import torch
import torch.multiprocessing as mp

def main_worker(gpu, args):
    model = resnet50().cuda(gpu)
    optimizer = torch.optim.SGD(model.parameters(), 0.1)
    for epoch in range(args.epochs):
        for images, target in train_loader:
            loss = criterion(model(images), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()  # <--

if __name__ == "__main__":
    mp.spawn(main_worker, nprocs=8, args=(args,))
""",
            note="a worker function handed to mp.spawn under the __main__ guard",
        ),
        Example(
            """
import torch

if torch.cuda.is_available():
    torch.backends.cudnn.deterministic = True
random_seed = 1
model = VGG16(num_classes=10).to(DEVICE)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
for epoch in range(num_epochs):
    for features, targets in train_loader:
        cost = F.cross_entropy(model(features), targets)
        optimizer.zero_grad()
        cost.backward()
        optimizer.step()  # <--
""",
            message="`random_seed` is defined but never passed",
            note="rasbt/deeplearning-models: deterministic cuDNN and a seed variable, the seeding call forgotten",
        ),
        Example(
            """
import argparse
import torch.nn.functional as F

class Trainer:
    def _run_batch(self, source, targets):
        self.optimizer.zero_grad()
        loss = F.cross_entropy(self.model(source), targets)
        loss.backward()
        self.optimizer.step()  # <--

    def train(self, max_epochs):
        for epoch in range(max_epochs):
            for source, targets in self.train_data:
                self._run_batch(source, targets)

def main(args):
    trainer = Trainer(model, train_data, optimizer)
    trainer.train(args.epochs)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    main(parser.parse_args())
""",
            message="`--seed` is defined but never passed",
            note="pytorch/examples: a Trainer class run from main(); `--seed` parsed and never used",
        ),
    ]
    good = [
        Example(
            """
import torch

torch.manual_seed(42)
model = torch.nn.Linear(10, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    optimizer.zero_grad()
    ((model(x) - y) ** 2).mean().backward()
    optimizer.step()
""",
        ),
        Example(
            """
import torch

def train_one_epoch(model, loader, optimizer):
    for x, y in loader:
        optimizer.zero_grad()
        loss = model(x, y)
        loss.backward()
        optimizer.step()
""",
            note="trap: a library module's training function, seeded by the script that calls it",
        ),
        Example(
            """
import torch
from utils import init_seeds

def main(opt):
    init_seeds(opt.seed + 1, deterministic=True)
    model = Model(opt.cfg).cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for epoch in range(opt.epochs):
        for imgs, targets in loader:
            loss = compute_loss(model(imgs), targets)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            optimizer.zero_grad()

if __name__ == "__main__":
    main(parse_opt())
""",
            note="trap: seeding through an imported project helper (yolov5's init_seeds)",
        ),
        Example(
            """
import lightning as L
import torch

L.seed_everything(1234)
fabric = L.Fabric(accelerator="cuda")
model, optimizer = fabric.setup(model, torch.optim.Adam(model.parameters()))
for batch in loader:
    loss = model(batch)
    fabric.backward(loss)
    optimizer.step()
    optimizer.zero_grad()
""",
            note="trap: Lightning's seed_everything",
        ),
        Example(
            """
import pytorch_lightning as pl
import torch

trainer = pl.Trainer(deterministic=True, max_epochs=10)
opt = torch.optim.Adam(model.parameters())
for batch in loader:
    model.manual_backward(model(batch))
    opt.step()
""",
            note="trap: Lightning Trainer(deterministic=True): reproducibility was chosen",
        ),
        Example(
            """
import torch
from transformers import set_seed

def set_random_seed(seed):
    random.seed(seed)

def main():
    set_seed(args.seed)
    for step, batch in enumerate(loader):
        loss = model(**batch).loss
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()

if __name__ == "__main__":
    main()
""",
            note="transformers.set_seed",
        ),
        Example(
            """
import torch
import torch.nn as nn

# torch.manual_seed(1)    # reproducible
net = nn.Sequential(nn.Linear(1, 10), nn.ReLU(), nn.Linear(10, 1))
optimizer = torch.optim.SGD(net.parameters(), lr=0.2)
for t in range(200):
    loss = loss_func(net(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
""",
            note="MorvanZhou/PyTorch-Tutorial: the seeding call commented out, a decision already made",
        ),
        Example(
            """
import torch

class Trainer:
    def train(self):
        while self.step < self.train_num_steps:
            loss = self.model(next(self.dl))
            self.accelerator.backward(loss)
            self.opt.step()
            self.opt.zero_grad()

if __name__ == "__main__":
    diffusion = GaussianDiffusion(Unet(dim=64), image_size=128)
    sampled_images = diffusion.sample(batch_size=4)
""",
            note="trap: a library module whose `__main__` demo never runs its Trainer (denoising-diffusion-pytorch)",
        ),
        Example(
            """
import torch
import utils

def train_dino(args):
    utils.fix_random_seeds(args.seed)
    for epoch in range(args.epochs):
        for images, _ in data_loader:
            loss = dino_loss(student(images), teacher(images))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

if __name__ == "__main__":
    train_dino(args)
""",
            note="trap: a project helper that seeds (facebookresearch/dino)",
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        script = script_model(self.context)
        iterations = script.executed_iterations
        if not iterations or self._seeds(script) or _COMMENTED_SEED.search(self.context.source):
            return
        first = iterations[0]  # the first the run reaches
        where = next((e for e in first.events if e.kind == STEP), None) or next(
            e for e in first.events if e.kind == BACKWARD
        )
        unused = _seed_setting(script)
        self.report(
            where.node,
            "this training script never seeds torch"
            + (f" (`{unused}` is defined but never passed to a seeding call)" if unused else "")
            + ", so weight init, dropout and shuffling differ on every run and results cannot be reproduced; "
            "call `torch.manual_seed(seed)` (or `seed_everything(seed)`) before building the model, "
            "unless run-to-run variance is what you want",
        )

    def _seeds(self, script) -> bool:
        """A call anywhere in the file whose name says it seeds torch, or a `deterministic=True` choice."""
        for call, _ in script.index.calls:
            name = self.context.call_name(call) or dotted_name(call.func) or ""
            last = name.rsplit(".", 1)[-1]
            if _SEEDS.search(last) and not name.startswith(_NOT_TORCH):
                # `torch.use_deterministic_algorithms(True)` fixes the kernels, not the initial weights.
                if "seed" in last.lower() or not name.startswith("torch."):
                    return True
            if any(arg.keyword is not None and arg.keyword.value == "deterministic" for arg in call.args):
                return True
        return False


def _seed_setting(script) -> str | None:
    """A seed the script means to use: `--seed` parsed, `random_seed = 1` (a forgotten seeding call)."""
    for call, _ in script.index.calls:
        if isinstance(call.func, cst.Attribute) and call.func.attr.value == "add_argument" and call.args:
            flag = call.args[0].value
            if isinstance(flag, cst.SimpleString) and "seed" in flag.evaluated_value:
                return flag.evaluated_value
    module = script.context.module
    return next((name for scope, name in script.index.bindings if scope is module and "seed" in name.lower()), None)
