import re

import libcst as cst

from nnlint.names import dotted_name
from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.tree import descendants

# DataLoader(dataset, batch_size, shuffle, sampler, batch_sampler, ...): positions in torch and torch_geometric.
_SHUFFLE, _SAMPLER, _BATCH_SAMPLER = 2, 3, 4
_LOADERS = re.compile(r"^(torch\.utils\.data(\.dataloader)?|torch_geometric(\.\w+)*)\.DataLoader$")
# A name that says training data; `trainval` is the train+val split, trained on too.
_TRAIN = re.compile(r"train|trn")
# A loader named for evaluation or feature extraction reads the training set in order on purpose.
_EVALUATION_WORDS = {
    "val", "valid", "validation", "test", "testing", "eval", "evaluation", "dev", "query", "gallery", "memory",
    "bank", "calib", "calibration", "infer", "inference", "predict", "extract", "feature", "features", "feat",
    "feats", "knn", "embed", "embedding", "vis", "viz", "plot", "stats", "noshuffle", "ordered", "sequential",
    "fixed",
}  # fmt: skip
# Datasets that yield in their own order (a DataLoader refuses shuffle=True for them) or shuffle themselves.
_SELF_ORDERED = re.compile(r"Iterable|IterDataPipe|Stream|WebDataset|webdataset|wds\.|Shard|Chain|Pipe|Generator")
_SELF_ORDERED_METHODS = {"shuffle", "to_iterable_dataset", "shuffled", "repeat", "batched"}
_NAME_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
# A dataset named as an iterator or stream is one (`train_iterator = Multi30k(split="train")`).
_ITERATOR_WORDS = {"iter", "iterator", "iterable", "stream", "pipe", "datapipe", "generator", "gen"}
# A dataset class that shuffles or draws at random itself; random data has no order to keep
# (Lightning's `RandomDataset`).
_SHUFFLES = re.compile(r"(^|\.)(shuffle|randperm|permutation)$")
_RANDOM_CALL = re.compile(r"(^|\.)(randint|randrange|randperm|choice|random|rand)$")
_RANDOM_DATA = re.compile(r"^(Random|Fake|Dummy|Synthetic|randn?$)")


class TrainLoaderNotShuffled(Rule):
    """
    ## What it does
    Flags a training `DataLoader` built without shuffling: no `shuffle=`
    (it defaults to `False`) or `shuffle=False`, and no `sampler` or
    `batch_sampler`. A loader is a training loader when the training loop
    (the loop that calls `backward()` and `optimizer.step()`) iterates it,
    `trainer.fit` trains on it or Lightning's `train_dataloader()` returns
    it; or, when the file does not read it at all, when its name (or, for a
    neutrally named loader, its dataset's) says `train`.

    ## Why is this bad?
    Every epoch then sees the same batches in the same order. With data
    stored by class or by time (ImageFolder, CSV files sorted by label)
    each batch holds one class and the model chases the last classes of
    the epoch; even with mixed data the fixed order correlates successive
    gradients and hurts generalisation. Nothing raises, the loss just
    plateaus higher.

    ## Example
    ```python
    train_loader = DataLoader(train_dataset, batch_size=64)
    ```

    ## Use instead
    ```python
    train_loader = DataLoader(train_dataset, batch_size=64, shuffle=True)
    ```
    or a sampler (`sampler=DistributedSampler(train_dataset)`,
    `WeightedRandomSampler`), which shuffles in its own way.

    ## Known problems
    Iterable datasets (`IterableDataset`, webdataset, `datasets` streaming)
    cannot be shuffled by the loader and are not flagged; neither are
    datasets that shuffle or sample at random themselves, nor a loader
    whose `shuffle` is a variable. A "train" loader the file reads only
    outside training (features for a kNN monitor, one batch to plot) is
    left alone. Sequence models trained statefully on ordered chunks
    (truncated BPTT) and data shuffled offline keep the order on purpose:
    suppress the finding there with `# noqa: NN601`.
    """

    code = "NN601"
    name = "train-loader-not-shuffled"
    severity = "warning"
    summary = "A training DataLoader with no shuffle=True and no sampler: every epoch sees the same batch order"
    triggers = ("DataLoader",)

    bad = [
        Example(
            """
import torch
from torchvision import datasets, transforms

train_dataset = datasets.MNIST('data', train=True, transform=transforms.ToTensor(), download=True)
test_dataset = datasets.MNIST('data', train=False, transform=transforms.ToTensor())
train_loader = torch.utils.data.DataLoader(dataset=train_dataset, batch_size=100)  # <--
test_loader = torch.utils.data.DataLoader(dataset=test_dataset, batch_size=100, shuffle=False)
""",
            message="shuffle=True",
        ),
        Example(
            """
import torch.utils.data as Data

loader = Data.DataLoader(dataset=torch_dataset, batch_size=5, shuffle=False)  # <--
for epoch in range(3):
    for step, (batch_x, batch_y) in enumerate(loader):
        optimizer.zero_grad()
        loss_func(net(batch_x), batch_y).backward()
        optimizer.step()
""",
            note="the loop that trains iterates it: its neutral name does not matter",
        ),
        Example(
            """
import pytorch_lightning as pl
from torch.utils.data import DataLoader

class MNISTModel(pl.LightningModule):
    def train_dataloader(self):
        return DataLoader(self.mnist_train, batch_size=32, num_workers=4)  # <--

    def val_dataloader(self):
        return DataLoader(self.mnist_val, batch_size=32)
""",
            note="a Lightning hook returning the training loader",
        ),
        Example(
            """
from torch.utils.data import DataLoader

def make_loader(dataset, batch_size):
    return DataLoader(dataset, batch_size, num_workers=2)  # <--

def main():
    loader = make_loader(CsvDataset('train.csv'), 32)
    for epoch in range(10):
        for x, y in loader:
            optimizer.zero_grad()
            criterion(model(x), y).backward()
            optimizer.step()
""",
            note="built in a helper without a shuffle parameter, trained on by the loop",
        ),
        Example(
            """
from torch.utils.data import DataLoader

train_dataset = SequenceDataset('train.h5')
train_dataloader = DataLoader(train_dataset, batchsize, False, num_workers=4)  # <--
""",
            note="shuffle=False passed positionally (third argument)",
        ),
        Example(
            """
import pytorch_lightning as pl
from torch.utils.data import DataLoader, random_split

class MNISTDataModule(pl.LightningDataModule):
    def setup(self, stage=None):
        self.mnist_train, self.mnist_val = random_split(mnist_full, [55000, 5000], generator=torch.Generator())

    def train_dataloader(self):
        loader = DataLoader(self.mnist_train, batch_size=128)  # <--
        return loader

    def show_batch(self):
        imgs, labels = next(iter(self.train_dataloader()))
""",
            note="random_split permutes once: every epoch still sees that one order",
        ),
        Example(
            """
import pytorch_lightning as pl
from torch.utils.data import DataLoader, TensorDataset

loader = DataLoader(TensorDataset(features, labels), batch_size=64)  # <--
trainer = pl.Trainer(max_epochs=5)
trainer.fit(model, loader)
""",
            note="neutral names, but trainer.fit trains on it",
        ),
    ]
    good = [
        Example(
            """
import torch

train_loader = torch.utils.data.DataLoader(train_set, batch_size=128, shuffle=True, num_workers=2)
test_loader = torch.utils.data.DataLoader(test_set, batch_size=100, shuffle=False, num_workers=2)
"""
        ),
        Example(
            """
import torch
from torch.utils.data import DataLoader, IterableDataset

class TokenStream(IterableDataset):
    def __iter__(self):
        yield from read_shards()

train_loader = DataLoader(TokenStream(), batch_size=8)
stream = load_dataset("c4", "en", split="train", streaming=True)
train_loader2 = DataLoader(stream, batch_size=8)
""",
            note="trap: iterable datasets (IterableDataset subclasses, datasets streaming) cannot be shuffled by the loader",
        ),
        Example(
            """
import webdataset as wds
from torch.utils.data import DataLoader

train_ds = wds.WebDataset(urls).shuffle(1000).decode("pil")
train_loader = DataLoader(train_ds, batch_size=64, num_workers=8)
""",
            note="trap: webdataset pipelines shuffle in their own buffer",
        ),
        Example(
            """
import torch
from torch.utils.data.distributed import DistributedSampler

train_sampler = DistributedSampler(train_dataset) if args.distributed else None
train_loader = torch.utils.data.DataLoader(
    train_dataset, batch_size=args.batch_size, shuffle=(train_sampler is None),
    num_workers=args.workers, pin_memory=True, sampler=train_sampler, drop_last=True)
train_loader2 = torch.utils.data.DataLoader(train_dataset, batch_sampler=GroupedBatchSampler(train_dataset))
""",
            note="trap: explicit samplers (sampler=, batch_sampler=, DistributedSampler) shuffle themselves",
        ),
        Example(
            """
from torch.utils.data import DataLoader

def get_dataloader_workers():
    return 4

def load_array(data_arrays, batch_size, is_train=True):
    dataset = TensorDataset(*data_arrays)
    return DataLoader(dataset, batch_size, shuffle=is_train)

def get_loader(dataset, batch_size, shuffle=False):
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)

train_iter = get_loader(train_set, 256, shuffle=True)
test_iter = get_loader(test_set, 256)
""",
            note="trap: shuffle a variable or a helper's parameter, set to True for training",
        ),
        Example(
            """
import torch

val_loader = torch.utils.data.DataLoader(val_dataset, batch_size=256, shuffle=False)
train_eval_loader = torch.utils.data.DataLoader(train_dataset, batch_size=256, shuffle=False)
memory_loader = torch.utils.data.DataLoader(CIFAR10Pair(root='data', train=True), batch_size=512)
""",
            note="trap: val/test loaders, and the training set read in order for evaluation or a kNN memory bank",
        ),
        Example(
            """
import torch

train_loader = torch.utils.data.DataLoader(train_dataset, batch_size=256, shuffle=False)

@torch.no_grad()
def extract_features(model, loader):
    feats = []
    for images, _ in loader:
        feats.append(model(images))
    return torch.cat(feats)

train_features = extract_features(backbone, train_loader)
""",
            note="the file reads the 'train' loader only to extract features, never trains on it",
        ),
        Example(
            """
import torch
from torch.utils.data import DataLoader, Dataset

class TextSamplerDataset(Dataset):
    def __getitem__(self, index):
        start = torch.randint(0, self.data.size(0) - self.seq_len - 1, (1,))
        return self.data[start: start + self.seq_len + 1].long()

class TrainDataset(Dataset):
    def __getitem__(self, index):
        if self.cur_idx >= len(self.samples):
            np.random.shuffle(self.samples)
        return self.samples[self.cur_idx]

train_loader = DataLoader(TextSamplerDataset(data_train, 1024), batch_size=4, drop_last=True)
loader_train = DataLoader(TrainDataset(odgt), batch_size=2, shuffle=False, drop_last=True)
""",
            note="datasets that order themselves: a random offset per item, or their own shuffle",
        ),
        Example(
            """
import torch

train_loader = torch.utils.data.DataLoader(dataset=train_dataset, batch_size=256, shuffle=False)
train_mean = []
for images, _ in train_loader:
    train_mean.append(images.mean(dim=(0, 2, 3)))

train_loader = torch.utils.data.DataLoader(dataset=train_dataset, batch_size=256, shuffle=True)
for epoch in range(10):
    for images, labels in train_loader:
        optimizer.zero_grad()
        criterion(model(images), labels).backward()
        optimizer.step()
""",
            note="a notebook's first, ordered loader computes statistics; the loop trains on the shuffled one",
        ),
        Example(
            """
import torch

def visualize_activations(net):
    small_loader = torch.utils.data.DataLoader(train_set, batch_size=1024, shuffle=False)
    imgs, labels = next(iter(small_loader))
    return net(imgs)

train_loader = torch.utils.data.DataLoader(train_set, batch_size=256, shuffle=False)
example_images, _ = next(iter(train_loader))
""",
            note="the training set read in order for one batch to show",
        ),
        Example(
            """
import torch_geometric.loader as geom_loader

node_data_loader = geom_loader.DataLoader(cora_dataset, batch_size=1)
trainer.fit(model, node_data_loader, node_data_loader)
""",
            note="full-graph training: the dataset is one graph, there is no order to shuffle",
        ),
        Example(
            """
from torch.utils.data import DataLoader

train_loader = DataLoader(train_dataset, batch_size=None)
train_loader2 = DataLoader(train_dataset, **loader_kwargs)
""",
            note="batch_size=None (the dataset yields ready batches) and **kwargs that may hold shuffle",
        ),
        Example(
            """
import torch
from opacus import PrivacyEngine

train_loader = torch.utils.data.DataLoader(train_dataset, batch_size=256)
privacy_engine = PrivacyEngine()
model, optimizer, train_loader = privacy_engine.make_private(
    module=model, optimizer=optimizer, data_loader=train_loader, noise_multiplier=1.1, max_grad_norm=1.0
)
for epoch in range(10):
    for images, labels in train_loader:
        optimizer.zero_grad()
        criterion(model(images), labels).backward()
        optimizer.step()
""",
            note="trap: Opacus replaces the loader with one that samples each batch at random (Poisson)",
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        script = script_model(self.context)
        loaders = [(call, function) for call, function in script.index.calls
                   if _LOADERS.match(self.context.call_name(call) or "")]
        if not loaders:
            return
        trained, read = _uses(script)
        mentions_iterable = bool(re.search(r"IterableDataset|webdataset|streaming\s*=\s*True", self.context.source))
        found = []
        for call, function in loaders:
            if not _never_shuffles(call) or _ordered_dataset(script, call, function, mentions_iterable):
                continue
            why = trained.get(id(call)) or _lightning_hook(script, call, function)
            if why is None and id(call) not in read:
                why = _named_for_training(script, call, function)
            if why is not None:
                found.append((call, why))
        for call, why in script.reports(found):
            shuffle = _argument(call, "shuffle", _SHUFFLE)
            how = "`shuffle=False`" if shuffle is not None else "no `shuffle=` (it defaults to False)"
            self.report(
                call,
                f"`{_short(script, call)}` has {how} and no sampler, and {why}: every epoch sees the same "
                "batches in the same order; pass shuffle=True (or a sampler such as DistributedSampler)",
            )


# Calls that return the loader they are given with its order kept (or only wrap its iteration).
_KEEP_ORDER = frozenset({"prepare", "setup_dataloaders", "prepare_data_loader", "tqdm", "enumerate", "iter", "cycle",
                         "DataLoader"})  # fmt: skip


def _uses(script) -> tuple[dict[int, str], set[int]]:
    """The calls a training loop iterates (or `trainer.fit` trains on), and those the file only reads
    outside training (an evaluation or feature-extraction loop, `next(iter(loader))` for a picture) or
    hands to a call that replaces them."""
    trained: dict[int, str] = {}
    read: set[int] = set()
    training_loops = set()
    for loop, _ in script.timeline.loops():
        if not isinstance(loop.node, cst.For):
            continue
        training = any(iteration.loop is loop for iteration in script.training.iterations)
        if training:
            training_loops.add(loop.node)
        for source in script.objects.sources(_iterated(loop.node.iter), loop.function, loop.node):
            if training:
                trained.setdefault(id(source), f"the training loop at line {script.line(loop.node)} iterates it")
            else:
                read.add(id(source))
    inside_training = {id(n) for loop in training_loops for n in descendants(loop)}
    for call, function in script.index.calls:
        name = dotted_name(call.func) or ""
        if name == "next" and call.args and id(call) not in inside_training:
            inner = call.args[0].value
            if isinstance(inner, cst.Call) and dotted_name(inner.func) == "iter" and inner.args:
                read.update(id(s) for s in script.objects.sources(inner.args[0].value, function, call))
        fitted = _argument(call, "train_dataloaders", 1) if name.endswith(".fit") else None
        fitted = fitted or next((arg.value for arg in call.args if arg.keyword is not None
                                 and arg.keyword.value in ("train_dataloaders", "train_dataloader")), None)
        if fitted is not None:
            for source in script.objects.sources(fitted, function, call):
                trained.setdefault(id(source), f"`{script.code(call.func)}` at line {script.line(call)} trains on it")
    return trained, read | _replaced(script)


def _replaced(script) -> set[int]:
    """Loaders handed to a call that returns their replacement (`model, optimizer, train_loader =
    privacy_engine.make_private(..., data_loader=train_loader)` resamples with Poisson sampling): what the
    training then iterates is not this loader, so its name says nothing. `accelerator.prepare` and
    `fabric.setup_dataloaders` keep the loader's order and do not count."""
    found = set()
    for (scope, _), bindings in script.index.bindings.items():
        function = scope if isinstance(scope, cst.FunctionDef) else None
        for binding in bindings:
            call = binding.value
            if not isinstance(call, cst.Call) or (dotted_name(call.func) or "").rsplit(".", 1)[-1] in _KEEP_ORDER:
                continue
            for arg in call.args:  # what the argument held before this statement re-bound it
                name = dotted_name(arg.value)
                earlier = [b for b in script.index.lookup(name, function) if b.value is not call] if name else []
                for held in script.objects.reaching(earlier, call):
                    if held.value is not None:
                        found.update(id(source) for source in script.objects.sources(held.value, function, held.node))
    return found


def _lightning_hook(script, call: cst.Call, function) -> str | None:
    """Lightning trains on what a `train_dataloader()` hook returns, whatever else the file does with it."""
    if function is None or function.name.value != "train_dataloader":
        return None
    names = [name for (scope, name), bindings in script.index.bindings.items()
             if scope is function and any(binding.value is call for binding in bindings)]
    returned = any(isinstance(n, cst.Return) and n.value is not None and (n.value is call or dotted_name(n.value) in names)
                   for n in descendants(function))
    return "Lightning trains on what `train_dataloader()` returns" if returned else None


def _argument(call: cst.Call, keyword: str, position: int) -> cst.BaseExpression | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == keyword:
            return arg.value
    positional = [arg for arg in call.args if arg.keyword is None]
    return positional[position].value if len(positional) > position and not positional[position].star else None


def _is_literal(node: cst.BaseExpression | None, *values: str) -> bool:
    return isinstance(node, cst.Name) and node.value in values


def _never_shuffles(call: cst.Call) -> bool:
    """No shuffle (or a literal False), no sampler, batches built by the loader, nothing hidden in */**."""
    if any(arg.star for arg in call.args):
        return False
    shuffle = _argument(call, "shuffle", _SHUFFLE)
    if shuffle is not None and not _is_literal(shuffle, "False", "None"):
        return False
    for keyword, position in (("sampler", _SAMPLER), ("batch_sampler", _BATCH_SAMPLER)):
        sampler = _argument(call, keyword, position)
        if sampler is not None and not _is_literal(sampler, "None"):
            return False
    return not _is_literal(_argument(call, "batch_size", 1), "None")


def _ordered_dataset(script, call: cst.Call, function, mentions_iterable: bool) -> bool:
    """The dataset yields its own order (iterable, streaming, self-shuffling) or has none worth keeping
    (random data); or, in a file that uses iterable datasets, it cannot be resolved to something built here."""
    dataset = _argument(call, "dataset", 0)
    if dataset is None:
        return True
    name = dotted_name(dataset) or ""
    words = set(_name_words(name.rsplit(".", 1)[-1]))
    if words & _ITERATOR_WORDS or words & {"random", "fake", "dummy", "synthetic"}:
        return True
    if (script.context.call_name(call) or "").startswith("torch_geometric") and _is_one(_argument(call, "batch_size", 1)):
        return True  # full-graph training: the dataset is often one graph (Cora), there is no order
    values = _values(script, dataset, function, 0)
    for value in values:
        if any(_self_ordered_call(script, node) for node in _call_chain(value)):
            return True
    return mentions_iterable and not any(isinstance(value, cst.Call) for value in values)


def _call_chain(value: cst.BaseExpression) -> list[cst.Call]:
    """`wds.WebDataset(urls).shuffle(1000).decode("pil")` -> the three calls (not their arguments: a
    `generator=torch.Generator()` handed to random_split says nothing of the dataset)."""
    calls = []
    while isinstance(value, (cst.Call, cst.Attribute, cst.Subscript)):
        if isinstance(value, cst.Call):
            calls.append(value)
            value = value.func
        else:
            value = value.value
    return calls


def _self_ordered_call(script, call: cst.Call) -> bool:
    name = script.context.call_name(call) or dotted_name(call.func) or ""
    last = name.rsplit(".", 1)[-1]
    if _SELF_ORDERED.search(name) or last in _SELF_ORDERED_METHODS or name.startswith("torchtext.datasets."):
        return True
    if _RANDOM_DATA.search(last):
        return True
    if any(arg.keyword is not None and arg.keyword.value == "streaming" and not _is_literal(arg.value, "False")
           for arg in call.args):
        return True
    cls = script.index.classes.get(last)
    return cls is not None and (
        any(_SELF_ORDERED.search(dotted_name(base.value) or "") for base in cls.bases) or _samples_randomly(cls)
    )


def _samples_randomly(cls: cst.ClassDef) -> bool:
    """The dataset orders itself: `__getitem__` draws a random offset and ignores its index (karpathy's and
    lucidrains' `TextSamplerDataset`), or the class shuffles its own sample list (CSAIL's `TrainDataset`)."""
    for node in descendants(cls):
        if isinstance(node, cst.Call) and _SHUFFLES.search(dotted_name(node.func) or ""):
            return True
    for method in cls.body.body:
        if isinstance(method, cst.FunctionDef) and method.name.value == "__getitem__":
            return any(isinstance(n, cst.Call) and _RANDOM_CALL.search(dotted_name(n.func) or "")
                       for n in descendants(method))
    return False


def _is_one(node: cst.BaseExpression | None) -> bool:
    return isinstance(node, cst.Integer) and node.value == "1"


def _values(script, expr: cst.BaseExpression, function, depth: int) -> list[cst.BaseExpression]:
    """The expressions a name may hold (through assignments, one level of names), or the expression itself."""
    name = dotted_name(expr)
    if name is None or depth > 2:
        return [expr]
    bindings = script.index.lookup(name, function)
    found = []
    for binding in bindings:
        if binding.value is not None:
            found.extend(_values(script, binding.value, function, depth + 1))
    return found or [expr]


def _iterated(iterable: cst.BaseExpression) -> cst.BaseExpression:
    """`enumerate(tqdm(loader, desc=...))` -> `loader`."""
    while isinstance(iterable, cst.Call) and dotted_name(iterable.func) in (
        "enumerate", "tqdm", "tqdm.tqdm", "iter", "zip", "progress_bar", "track",
    ) and iterable.args:
        iterable = iterable.args[0].value
    return iterable


def _named_for_training(script, call: cst.Call, function) -> str | None:
    """Why a loader the file never iterates is a training one: its name (or the function returning it,
    `train_dataloader`) says train and nothing of evaluation; a neutrally named one goes by its dataset."""
    for name in _loader_names(script, call, function):
        split = _split_named(name)
        if split is not None:
            return f"it is named `{name}`" if split == "train" else None
    dataset = _argument(call, "dataset", 0)
    if dataset is not None and _dataset_says_train(script, dataset, function):
        return f"its dataset `{_short(script, dataset)}` is the training set"
    return None


def _loader_names(script, call: cst.Call, function) -> list[str]:
    """What the loader is called: the name assigned, the keyword or dict key it is passed as, and the
    function that returns it (directly or by that name)."""
    names = [name for (_, name), bindings in script.index.bindings.items()
             if any(binding.value is call for binding in bindings)]
    for node in descendants(function if function is not None else script.context.module):
        if isinstance(node, cst.Arg) and node.value is call and node.keyword is not None:
            names.append(node.keyword.value)
        elif isinstance(node, cst.DictElement) and node.value is call and isinstance(node.key, cst.SimpleString):
            names.append(str(node.key.evaluated_value))
        elif isinstance(node, cst.Return) and function is not None and (
            node.value is call or dotted_name(node.value) in names
        ):
            names.append(function.name.value)
    return names


def _name_words(name: str) -> list[str]:
    """`trainLoader_v2` -> ["train", "loader", "v", "2"]; `trainloader` stays one word."""
    return [word.lower() for part in re.split(r"[_.\W]+", name) for word in _NAME_WORDS.findall(part)]


def _split_named(name: str) -> str | None:
    """"eval" when a name says evaluation (it wins: `train_eval_loader`), "train" when it says train, else None."""
    words = _name_words(name)
    if _EVALUATION_WORDS & set(words):
        return "eval"
    return "train" if _TRAIN.search(name.lower()) else None


def _says_train(name: str) -> bool:
    return _split_named(name) == "train"


def _dataset_says_train(script, dataset: cst.BaseExpression, function) -> bool:
    """`train_dataset`, `datasets['train']`, `MNIST(root, train=True)`, `load_dataset(..., split='train')`."""
    name = dotted_name(dataset)
    if name is not None and _says_train(name.rsplit(".", 1)[-1]):
        return True
    for value in _values(script, dataset, function, 0):
        if isinstance(value, cst.Subscript) and any(
            isinstance(e.slice, cst.Index) and isinstance(e.slice.value, cst.SimpleString)
            and _says_train(e.slice.value.evaluated_value) for e in value.slice
        ):
            return True
        if isinstance(value, cst.Call):
            for arg in value.args:
                keyword = arg.keyword.value if arg.keyword is not None else ""
                if keyword in ("train", "is_train") and _is_literal(arg.value, "True"):
                    return True
                if keyword == "split" and isinstance(arg.value, cst.SimpleString) and _says_train(arg.value.evaluated_value):
                    return True
    return False


def _short(script, call: cst.Call) -> str:
    code = script.code(call)
    return code if len(code) <= 80 else code[:77] + "..."
