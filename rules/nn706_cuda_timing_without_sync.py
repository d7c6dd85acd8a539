import re
from dataclasses import dataclass, field

import libcst as cst

from nnlint.names import dotted_name
from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.statements import ScopeStatements
from nnlint.tree import child_nodes, descendants, source_code

_CLOCKS = {
    "time.time", "time.perf_counter", "time.monotonic", "time.time_ns", "time.perf_counter_ns",
    "time.monotonic_ns", "timeit.default_timer",
}  # fmt: skip
_IMPORTS_TORCH = re.compile(r"^\s*(import|from) torch\b", re.M)
_SCOPES = (cst.FunctionDef, cst.ClassDef, cst.Lambda)
_LOOPS = (cst.For, cst.While)

# What queues CUDA kernels: a forward (a variable named like a network and fed an input; not a verb
# like `load_model`, not a constructor like `resnet50(weights=None)`), backward, an optimizer step,
# a torch op, `@`.
_NETWORK_WORDS = {
    "model", "models", "net", "network", "encoder", "decoder", "generator", "discriminator", "backbone",
    "classifier", "critic", "transformer", "vae",
}  # fmt: skip
_VERBS = {
    "prepare", "load", "build", "create", "get", "make", "init", "initialize", "wrap", "unwrap", "save", "export",
    "convert", "setup", "set", "train", "eval", "evaluate", "test", "validate", "run", "update", "apply", "register",
    "copy", "freeze", "print", "log", "show", "plot", "count", "check", "is", "has", "to", "from", "fit", "predict",
    "summary", "profile", "benchmark", "measure", "compute", "import", "parse", "select", "define", "reset",
}  # fmt: skip
_INPUT_KEYWORDS = {"x", "input", "inputs", "input_ids", "pixel_values", "images", "inputs_embeds", "attention_mask"}
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
_OPTIMIZER = re.compile(r"optim|^opt(_|$)|_opt$|scaler", re.I)
_TENSOR_KERNELS = {"matmul", "mm", "bmm", "mv", "addmm", "baddbmm"}
_TORCH_NAMESPACES = ("torch.nn.functional.", "torch.linalg.", "torch.fft.", "torch.special.")
_NOT_KERNELS = {
    "no_grad", "enable_grad", "inference_mode", "set_grad_enabled", "autocast", "manual_seed", "seed",
    "initial_seed", "device", "dtype", "compile", "load", "save", "numel", "typename", "use_deterministic_algorithms",
}  # fmt: skip
# Factories make CPU tensors unless given a device.
_FACTORIES = {
    "randn", "rand", "randint", "randperm", "zeros", "ones", "empty", "full", "arange", "linspace", "logspace",
    "eye", "tensor", "as_tensor", "from_numpy",
}  # fmt: skip

# What makes the host wait for the GPU: an explicit sync, a copy to the host, a result whose size or
# value is read back (`nonzero`, `generate`'s stopping test), a barrier, freeing the cache.
_SYNC_METHODS = {
    "synchronize", "item", "cpu", "numpy", "tolist", "elapsed_time", "block_until_ready", "barrier",
    "wait_for_everyone", "empty_cache", "nonzero", "unique", "masked_select", "generate",
}  # fmt: skip
# Printing, formatting or logging a tensor reads its value.
_READS_VALUE = {"print", "float", "int", "bool", "str", "repr", "format"}
_LOGS = re.compile(
    r"^(info|debug|warning|warn|log|log_dict|log_metrics|add_scalars?|set_postfix|set_description|write)$"
)
# Calls that take a tensor without reading its value; any other function given one might (`accuracy(out, y)`).
_HARMLESS_FUNCTIONS = {
    "len", "isinstance", "range", "enumerate", "zip", "list", "tuple", "dict", "getattr", "hasattr", "type", "id",
    "iter", "next", "setattr", "super",
}  # fmt: skip
_HARMLESS_METHODS = {
    "append", "extend", "insert", "scale", "unscale_", "step", "backward", "zero_grad", "add_", "copy_",
    "record_stream",
}  # fmt: skip
_LOSS = re.compile(r"loss|crit", re.I)
_DATA_LENGTH = re.compile(r"len\(|batch|epoch", re.I)  # `range(len(loader))`, `range(num_batches)`
# Roots of expressions that hold configuration, not tensors (`args.batch_size`).
_CONFIG_ROOTS = {"args", "opt", "opts", "cfg", "config", "conf", "hparams", "hp", "flags", "FLAGS", "options", "params"}


@dataclass
class _File:
    on_cuda: bool = False
    functions: dict[str, list[cst.FunctionDef]] = field(default_factory=dict)  # `script.index.functions`
    waiting_helpers: dict[str, bool] = field(default_factory=dict)  # function name -> it waits for the GPU
    pipelines: set[str] = field(default_factory=set)  # variables holding a `pipeline(...)`
    cpu_devices: set[str] = field(default_factory=set)  # variables only ever bound to "cpu"


@dataclass
class _Body:
    """What one function body (or a module's top level) holds for timing; its order is `script.statements`'."""

    order: ScopeStatements
    readings: list[cst.Call] = field(default_factory=list)
    bindings: list[tuple[str, cst.Call]] = field(default_factory=list)  # `t0 = time.time()`
    subtractions: list[cst.BinaryOperation] = field(default_factory=list)
    matmuls: list[cst.BinaryOperation] = field(default_factory=list)
    # f-strings, `"%f" % x`, mask subscripts, if/while/assert tests: each may read a tensor's value
    reads: list[cst.CSTNode] = field(default_factory=list)
    assignments: list[tuple[cst.CSTNode, list[str], cst.CSTNode]] = field(default_factory=list)
    loops: list[cst.For | cst.While] = field(default_factory=list)
    on_cpu: dict[str, list[tuple[int, bool]]] = field(default_factory=dict)  # name -> (index, placed on the CPU)
    plain: set[str] = field(default_factory=set)  # names that hold numbers or strings, never tensors
    uses_events: bool = False

    @property
    def calls(self) -> list[cst.Call]:
        return self.order.calls

    def start(self, node: cst.CSTNode) -> int:
        return self.order.span(node)[0]

    def end(self, node: cst.CSTNode) -> int:
        return self.order.span(node)[1]

    def holds_reading(self, node: cst.CSTNode) -> bool:
        return any(self.order.encloses(node, reading) for reading in self.readings)

    def placed_on_cpu(self, name: str | None, before: int) -> bool:
        """`name` was last bound to (or moved onto) a CPU tensor or model before `before`."""
        placements = [cpu for index, cpu in self.on_cpu.get(name, ()) if index < before]
        return bool(placements) and placements[-1]


class CudaTimingWithoutSync(Rule):
    """
    ## What it does
    Flags a wall-clock reading (`time.time()`, `time.perf_counter()`,
    `time.monotonic()`, `timeit.default_timer()`, under any import alias)
    that ends a timed region holding CUDA work (a model's forward,
    `backward()`, `optimizer.step()`, torch ops, `@`) when nothing waits for
    the GPU before the reading, in a file that runs on CUDA.

    ## Why is this bad?
    CUDA kernels are asynchronous: `model(x)` returns as soon as its kernels
    are queued. A clock read right after measures how long Python took to
    launch them, not how long the GPU took to run them, so benchmarks,
    per-step timings and CPU-vs-GPU comparisons come out too small (a matmul
    benchmark can report impossible TFLOP/s), and the missing time turns up
    in whatever synchronises next.

    ## Example
    ```python
    start = time.time()
    out = model(x)
    elapsed = time.time() - start
    ```

    ## Use instead
    ```python
    start = time.time()
    out = model(x)
    torch.cuda.synchronize()
    elapsed = time.time() - start
    ```
    or a pair of `torch.cuda.Event(enable_timing=True)` and `start.elapsed_time(end)`.

    ## Known problems
    Anything that reads a tensor's value makes the host wait: `.item()`,
    `.cpu()`, `.tolist()`, `print(loss)`, an f-string, `float(loss)`,
    `if loss < best:`, `x[x > 0]`, a blocking `.to(device)` copy,
    `torch.save`, `model.generate(...)`, `dist.barrier()`; so may a function
    given the result (`accuracy(output, target)`, `non_max_suppression(pred)`)
    or a helper of the file that synchronises. A region with any of these
    after its work is not flagged. Neither is a region that spans whole
    passes of a loop over data (an epoch timer, a per-batch `end =
    time.time()` timer): over many batches the bounded launch queue keeps
    the host within a few steps of the GPU, so the average is right, and a
    sync in the loop (a logged `loss.item()`) makes each figure right too.
    A forward is recognised by its callee's name (`model(x)`, `self.net(x)`,
    `encoder(...)`, `model.forward(x)`); a region whose only work is a call
    into another function (`train_one_epoch(...)`), a function that also
    times with CUDA events, and work on tensors or models put on the CPU in
    the same function are left alone. A forward that synchronises inside
    (a detector whose NMS reads back box counts) is still flagged: its figure
    misses only the work after its last internal sync. Only readings paired
    in one function (`t0 = time.time()` ... `time.time() - t0`) are checked,
    and only in files that import torch and mention CUDA (`.cuda()`,
    `"cuda"`, `torch.cuda.*`).
    """

    code = "NN706"
    name = "cuda-timing-without-sync"
    severity = "warning"
    summary = "Wall-clock timing of CUDA work with nothing synchronising measures the kernel launches, not the run"
    triggers = ("time.time", "perf_counter", "monotonic", "default_timer", "import time")

    bad = [
        Example(
            """
import time
import torch

model = torch.hub.load("pytorch/vision", "resnet50").cuda().eval()
x = torch.randn(64, 3, 224, 224, device="cuda")
with torch.no_grad():
    start = time.time()
    out = model(x)
    elapsed = time.time() - start  # <--
print(f"inference: {elapsed * 1000:.1f} ms")
""",
            message="`time.time()` at line 10 ends a timing started by `time.time()` at line 8 around CUDA work "
            "(`model(x)` at line 9)",
        ),
        Example(
            """
from time import perf_counter
import torch

def train_step(model, optimizer, x, y):
    x, y = x.cuda(non_blocking=True), y.cuda(non_blocking=True)
    t0 = perf_counter()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    t1 = perf_counter()  # <--
    return loss, t1 - t0
""",
            note="`from time import perf_counter`; the second reading bound to a name",
        ),
        Example(
            """
import time
import torch

def train_step(model, input_, label, optimizer, detection_loss, verbose):
    input_ = input_.to(torch.device("cuda"))
    optimizer.zero_grad()
    time_before_inference = time.time()
    output = model(input_)
    time_after_inference = time.time()  # <--
    inference_duration = time_after_inference - time_before_inference
    if verbose:
        print("Forward propagation time: {}".format(inference_duration))
    l_loss, c_loss = detection_loss.ssd_loss(output, label)
    loss = l_loss + c_loss
    loss.backward()
    optimizer.step()
""",
            note="an SSD training step that reports its forward time",
        ),
        Example(
            """
import time
import torch

def train(model, loader, optimizer, criterion):
    model.cuda()
    backward_time = 0.0
    for x, y in loader:
        x, y = x.cuda(), y.cuda()
        loss = criterion(model(x), y)
        t0 = time.time()
        loss.backward()
        optimizer.step()
        backward_time += time.time() - t0  # <--
    return backward_time
""",
            note="part of each batch timed: the next batch's blocking copy waits for it, outside the timer",
        ),
        Example(
            """
import time
import torch

a = torch.randn(8192, 8192, device="cuda")
start = time.perf_counter()
for i in range(100):
    c = a @ a
    if i % 10 == 0:
        print(f"iteration {i}")
print("TFLOP/s:", 100 * 2 * 8192**3 / (time.perf_counter() - start) / 1e12)  # <--
""",
            note="a matmul benchmark: the launches fit in the queue and the figure is impossibly high; "
            "printing a loop counter reads no tensor",
        ),
        Example(
            """
import time
import torch

X = torch.rand((10000, 10000))
Y = X.cuda(0)
time_start = time.time()
Z = torch.mm(X, X)
time_end = time.time()
print(f'cpu time cost: {round((time_end - time_start) * 1000, 2)}ms')
time_start = time.time()
Z = torch.mm(Y, Y)
time_end = time.time()  # <--
print(f'gpu time cost: {round((time_end - time_start) * 1000, 2)}ms')
""",
            note="a CPU-vs-GPU comparison: the CPU half is right, the GPU half measures a launch",
        ),
        Example(
            """
import time
import torch
from torch import nn, optim

model = nn.Sequential(nn.Linear(1024, 256), nn.ReLU(), nn.Linear(256, 10))
optimizer = optim.Adam(model.parameters(), lr=0.003)
criterion = nn.NLLLoss()
for device in ["cpu", "cuda"]:
    model.to(device)
    for ii, (inputs, labels) in enumerate(trainloader):
        inputs, labels = inputs.to(device), labels.to(device)
        start = time.time()
        outputs = model.forward(inputs)
        loss = criterion(outputs, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if ii == 3:
            break
    print(f"Device = {device}; Time per batch: {(time.time() - start)/3:.3f} seconds")  # <--
""",
            note="Udacity's transfer-learning notebook: the last batch is timed, and the GPU looks fast",
        ),
        Example(
            """
import time
import torch

def main(args):
    device = torch.device("cuda" if args.device == "cuda" and torch.cuda.is_available() else "cpu")
    x = load_image(args.image_path).to(device)
    model = get_model(args.model, device)
    with torch.no_grad():
        _ = model(x)
    n_runs = 5
    start = time.time()
    with torch.no_grad():
        for _ in range(n_runs):
            out = model(x)
    end = time.time()  # <--
    print(f"Avg inference time: {(end - start) * 1000 / n_runs:.3f} ms")
""",
            note="a benchmark loop over range(): a few forwards fit in the launch queue",
        ),
        Example(
            """
import time
import torch

def get_cpu_inference_time(net, input_res, batch_size):
    x = torch.cuda.FloatTensor(batch_size, 3, input_res, input_res).normal_()
    start_time = time.time()
    out = net(x)
    end_time = time.time()  # <--
    return end_time - start_time
""",
        ),
        Example(
            """
import time
import torch
from transformers import AutoModel, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased")
model = AutoModel.from_pretrained("bert-base-uncased").to("cuda")
inputs = tokenizer("hello", return_tensors="pt").to("cuda")
start = time.time()
with torch.no_grad():
    outputs = model(**inputs)
latency = time.time() - start  # <--
""",
        ),
        Example(
            """
import timeit
import torch

model = model.cuda().eval()
x = torch.randn(1, 3, 224, 224).cuda()
latencies = []
end = timeit.default_timer()
for _ in range(50):
    model(x)
    latencies.append(timeit.default_timer() - end)  # <--
    end = timeit.default_timer()
""",
            message="started by `timeit.default_timer()` at line 12 (on the previous pass)",
            note="a per-iteration timer restarted at the bottom of a benchmark loop",
        ),
    ]
    good = [
        Example(
            """
import time
import torch

model = model.cuda()
torch.cuda.synchronize()
start = time.time()
out = model(x)
torch.cuda.synchronize()
elapsed = time.time() - start
""",
            note="trap: torch.cuda.synchronize() before the second reading",
        ),
        Example(
            """
import time
import torch

def benchmark(model, x, device):
    start = time.perf_counter()
    for _ in range(100):
        model(x)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start

def wait_for_gpu():
    if torch.cuda.is_available():
        torch.cuda.synchronize()

def latency(model, x):
    t0 = time.perf_counter()
    model(x)
    wait_for_gpu()
    return time.perf_counter() - t0
""",
            note="a synchronisation under a device check, or in a helper of the file",
        ),
        Example(
            """
import torch

model = model.cuda()
start = torch.cuda.Event(enable_timing=True)
end = torch.cuda.Event(enable_timing=True)
start.record()
out = model(x)
end.record()
torch.cuda.synchronize()
print(start.elapsed_time(end))
""",
            note="trap: timing with torch.cuda.Event",
        ),
        Example(
            """
import time
import torch

model = torch.nn.Linear(10, 2)
x = torch.randn(32, 10)
start = time.time()
out = model(x)
elapsed = time.time() - start
""",
            note="trap: CPU-only code runs synchronously",
        ),
        Example(
            """
import time
import torch

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
x = torch.randn(5000, 5000)
start_time = time.time()
_ = torch.matmul(x, x)
end_time = time.time()
print(f"CPU time: {(end_time - start_time):6.5f}s")

cpu = torch.device("cpu")
def bench_cpu(model, x):
    model.to(cpu)
    start = time.time()
    model(x.to(cpu))
    return time.time() - start
""",
            note="trap: the CPU half of a CPU-vs-GPU comparison, on a tensor or model put on the CPU",
        ),
        Example(
            """
import time
import torch

def train(model, loader, optimizer, criterion):
    model.cuda()
    end = time.time()
    for i, (images, target) in enumerate(loader):
        data_time.update(time.time() - end)
        images = images.cuda(non_blocking=True)
        target = target.cuda(non_blocking=True)
        output = model(images)
        loss = criterion(output, target)
        losses.update(loss.item(), images.size(0))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        batch_time.update(time.time() - end)
        end = time.time()
""",
            note="trap: a loop that calls .item() every batch; and timing only the data loader",
        ),
        Example(
            """
import time
import torch

device = "cuda"
start = time.time()
for epoch in range(epochs):
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch}: {time.time() - start:.0f}s")
""",
            note="an epoch timer over a loader: the launch queue is bounded, so the host stays a few batches "
            "behind the GPU at most",
        ),
        Example(
            """
import time
import torch

model.to("cuda")
t0 = time.perf_counter()
with torch.no_grad():
    y = model(x.to("cuda"))
    output = y.sum().to("cpu")
t1 = time.perf_counter()
print(f"output {output}, elapsed {t1 - t0}")

start = time.time()
out = model.generate(**inputs, max_new_tokens=20)
generation_time = time.time() - start
""",
            note="the result copied back to the host; generate() reads its stopping test every token",
        ),
        Example(
            """
import time
import torch

model = model.cuda()
t1 = time.time()
pred = model(img)[0]
pred = non_max_suppression(pred, conf_thres, iou_thres)
t2 = time.time()
""",
            note="post-processing given the output may synchronise (NMS indexes with a mask)",
        ),
        Example(
            """
import time
import torch

device = "cuda"
start = time.time()
batch = next(loader_iter)
images = batch["image"].to(device, non_blocking=True)
data_time = time.time() - start
""",
            note="trap: timing only the data loader",
        ),
        Example(
            """
import time
import torch
import torchvision
from transformers import pipeline

start = time.time()
model = torchvision.models.resnet50(weights=None).to("cuda")
net = resnet18(num_classes=10)
print("built in", time.time() - start)

classifier = pipeline("sentiment-analysis", device="cuda:0")
start = time.time()
result = classifier(text)
print(f"inference took {time.time() - start:.2f}s")
""",
            note="building a model is not running it; a pipeline hands back Python objects",
        ),
        Example(
            """
import time
import torch

def measure(model, loader):
    times = []
    for images, _ in loader:
        start = time.time()
        out = model(images.cuda())
        times.append(time.time() - start)
    return sum(times) / len(times)
""",
            note="timed afresh each batch: the blocking copy waits for the previous batch's kernels inside the timer",
        ),
    ]

    def __init__(self, context) -> None:
        super().__init__(context)
        self._scopes: dict[int, cst.FunctionDef | None] = {}  # the functions (None: module) holding readings
        self._file = _File()
        self._imported: dict[str, bool] = {}

    def visit_Call(self, node: cst.Call) -> None:
        if self.context.call_name(node) in _CLOCKS:
            # A reading in a class body or a lambda is in no numbered body and pairs with nothing.
            scope = self.context.enclosing_function()
            self._scopes[id(scope)] = scope

    def leave_Module(self, node: cst.Module) -> None:
        if not self._scopes or "cuda" not in self.context.source or not _IMPORTS_TORCH.search(self.context.source):
            return
        self._file = _read_file(node)
        if not self._file.on_cuda:
            return
        script = script_model(self.context)
        self._file.functions = script.index.functions
        for scope in self._scopes.values():
            body = _Body(script.statements.of(scope))
            for part in body.order.nodes():
                self._classify(part, body)
            self._check(body)

    # -- reading one body -------------------------------------------------------------------------

    def _classify(self, node: cst.CSTNode, body: _Body) -> None:
        if isinstance(node, cst.Call):
            name = self.context.call_name(node)
            if name in _CLOCKS:
                body.readings.append(node)
            elif name and (name.startswith("torch.cuda.Event") or name.endswith(".elapsed_time")):
                body.uses_events = True
        elif isinstance(node, cst.Expr) and isinstance(node.value, cst.Call):
            # `model.cpu()`, `model.to(device)` as a statement move a module in place.
            func = node.value.func
            if isinstance(func, cst.Attribute) and func.attr.value in ("cpu", "cuda", "to") and dotted_name(func.value):
                placed = _makes_cpu(node.value, self._file.cpu_devices)
                body.on_cpu.setdefault(dotted_name(func.value), []).append((body.start(node), placed))
        elif isinstance(node, cst.BinaryOperation):
            if isinstance(node.operator, cst.Subtract):
                body.subtractions.append(node)
            elif isinstance(node.operator, cst.MatrixMultiply):
                body.matmuls.append(node)
            elif isinstance(node.operator, cst.Modulo) and isinstance(node.left, cst.SimpleString):
                body.reads.append(node)
        elif isinstance(node, cst.FormattedString):
            body.reads.append(node)
        elif isinstance(node, cst.Subscript) and any(
            isinstance(part, cst.Comparison) for element in node.slice for part in descendants(element)
        ):
            body.reads.append(node)  # `x[x > 0]`: a mask's size is read back from the GPU
        elif isinstance(node, (cst.If, cst.IfExp, cst.Assert)):
            body.reads.append(node.test)
        elif isinstance(node, _LOOPS):
            body.loops.append(node)
            if isinstance(node, cst.While):
                body.reads.append(node.test)
            else:
                body.plain.update(_counters(node))
        elif isinstance(node, (cst.Assign, cst.AnnAssign, cst.AugAssign)) and node.value is not None:
            targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
            names = [name for target in targets for name in _target_names(target)]
            body.assignments.append((node, names, node.value))
            value = node.value
            if isinstance(value, cst.Call) and self.context.call_name(value) in _CLOCKS:
                body.bindings.extend((dotted_name(t), value) for t in targets if dotted_name(t))
            if self._is_plain(value, body.plain):
                body.plain.update(names)
            on_cpu = self._makes_cpu_tensor(value)
            for name in names:
                body.on_cpu.setdefault(name, []).append((body.start(node), on_cpu))

    def _is_plain(self, value: cst.CSTNode, plain: set[str]) -> bool:
        """A number or string: a literal, a clock reading, `len(...)`, arithmetic on such values."""
        for node in descendants(value):
            if isinstance(node, cst.Call) and self.context.call_name(node) not in _CLOCKS:
                if not (isinstance(node.func, cst.Name) and node.func.value in ("len", "int", "round", "str", "range")):
                    return False
        return self._reads(value) <= plain

    def _reads(self, expression: cst.CSTNode) -> set[str]:
        """The variables an expression reads, leaving out imported modules (`time`, `torch`)."""
        names = _names_read(expression)
        for name in names - self._imported.keys():
            self._imported[name] = self.context.qualified_name(cst.Name(name)) is not None
        return {name for name in names if not self._imported[name]}

    def _makes_cpu_tensor(self, value: cst.CSTNode) -> bool:
        """`torch.randn(...)` without a device, `x.cpu()`, `x.to("cpu")`, a NumPy array, a checkpoint loaded
        with `map_location="cpu"`, `from_pretrained(...)` without a `device_map`."""
        if not isinstance(value, cst.Call):
            return False
        keywords = {arg.keyword.value: arg.value for arg in value.args if arg.keyword is not None}
        if "map_location" in keywords:
            return _is_cpu(keywords["map_location"], self._file.cpu_devices)
        if isinstance(value.func, cst.Attribute):
            if value.func.attr.value in ("cpu", "to", "cuda"):
                return _makes_cpu(value, self._file.cpu_devices)
            if value.func.attr.value == "from_pretrained":
                return "device_map" not in keywords and "device" not in keywords
        name = self.context.call_name(value) or ""
        if name.startswith("numpy.") or (isinstance(value.func, cst.Attribute) and value.func.attr.value == "numpy"):
            return True
        return name.startswith("torch.") and name[6:] in _FACTORIES and not _has_device(value)

    # -- one timed region ---------------------------------------------------------------------------

    def _check(self, body: _Body) -> None:
        if body.uses_events:
            return
        pairs: dict[cst.Call, cst.Call] = {}  # second reading -> first reading
        for subtraction in body.subtractions:
            first = _bound_reading(body, subtraction.right, body.start(subtraction))
            left = subtraction.left
            second = left if left in body.readings else _bound_reading(body, left, body.start(subtraction))
            if first is not None and second is not None and body.start(second) > body.start(first):
                pairs.setdefault(second, _rebound_in_loop(body, subtraction.right, second) or first)
        for second, first in pairs.items():
            work = self._unsynchronised_work(body, first, second)
            if work is not None:
                self._report(first, second, work)

    def _unsynchronised_work(self, body: _Body, first: cst.Call, second: cst.Call) -> cst.CSTNode | None:
        """The first CUDA work between the readings, if nothing after it may wait for the GPU."""
        # `end = time.time()` at the bottom of a loop times the next iteration up to the second reading.
        cycle = max(
            (loop for loop in body.loops if body.order.encloses(loop, first) and body.order.encloses(loop, second)),
            key=body.start, default=None,
        ) if body.start(first) > body.start(second) else None  # fmt: skip
        after, before = body.end(first), body.start(second)

        def timed(node: cst.CSTNode) -> bool:
            if cycle is None:
                return body.order.between(node, first, second)
            return body.order.encloses(cycle, node) and (body.start(node) > after or body.end(node) < before)

        work = [node for node in body.calls + body.matmuls if timed(node) and self._queues_kernels(node, body)]
        if not work:
            return None
        # A call happens once its receiver and arguments are evaluated: order by where each ends.
        queued = min(body.end(node) for node in work)
        gpu = self._gpu_values(body, work, timed)
        # A loop that repeats the second reading but not the first puts its whole body between them;
        # a loop around the work puts every iteration's syncs after an earlier iteration's work.
        around = [
            loop for loop in body.loops
            if (body.order.encloses(loop, second) and not body.order.encloses(loop, first)) or loop is cycle
            or (timed(loop) and any(body.order.encloses(loop, node) for node in work))
        ]  # fmt: skip
        # Timed afresh every pass of a loop, a wait before the work still takes in the previous pass's kernels.
        repeats = any(body.order.encloses(loop, first) and body.order.encloses(loop, second) for loop in body.loops)
        if any(_iterates_data(loop) for loop in around):
            # Over many batches the bounded launch queue keeps the host within a few steps of the GPU.
            return None
        for node in body.calls + body.reads:
            waits_after_work = timed(node) and (repeats or body.end(node) > queued)
            if not waits_after_work and not any(body.order.encloses(loop, node) for loop in around):
                continue
            if not body.holds_reading(node) and self._may_synchronise(node, body, gpu):
                return None
        return min(work, key=body.start)

    def _queues_kernels(self, node: cst.CSTNode, body: _Body) -> bool:
        operands = [node.left, node.right] if isinstance(node, cst.BinaryOperation) else [a.value for a in node.args]
        if any(body.placed_on_cpu(dotted_name(operand), body.start(node)) for operand in operands):
            return False
        if isinstance(node, cst.BinaryOperation):
            return True
        func, name = node.func, self.context.call_name(node) or ""
        last = func.attr.value if isinstance(func, cst.Attribute) else dotted_name(func) or ""
        receiver = dotted_name(func.value) or "" if isinstance(func, cst.Attribute) else ""
        if last == "backward" or (last == "step" and _OPTIMIZER.search(receiver.rsplit(".", 1)[-1])):
            return True
        if last in _TENSOR_KERNELS and isinstance(func, cst.Attribute):
            return not body.placed_on_cpu(receiver, body.start(node))
        if name.startswith(_TORCH_NAMESPACES) or (name.startswith("torch.") and name.count(".") == 1):
            op = name.rsplit(".", 1)[1]
            if op in _FACTORIES:
                return _has_device(node) and not _makes_cpu(node, self._file.cpu_devices)
            return op[:1].islower() and op not in _NOT_KERNELS and not op.startswith(("set_", "get_", "is_"))
        network = receiver if last == "forward" else dotted_name(func) or ""
        if network in self._file.pipelines or body.placed_on_cpu(network, body.start(node)):
            return False
        # A model object is a variable of the file fed a tensor; `resnet50(weights=None)` builds one.
        fed = any(arg.keyword is None or arg.keyword.value in _INPUT_KEYWORDS for arg in node.args)
        return fed and name == "" and _names_network(network)

    def _may_synchronise(self, node: cst.CSTNode, body: _Body, gpu: set[str]) -> bool:
        """Whether `node` may make the host wait for the GPU (when unsure: yes)."""
        if isinstance(node, cst.Subscript):
            return True
        if isinstance(node, (cst.FormattedString, cst.BinaryOperation)):
            return not self._reads(node) <= body.plain
        if not isinstance(node, cst.Call):  # the test of an `if`, `while` or `assert`: bool(tensor) waits
            return bool(self._reads(node) & gpu)
        func = node.func
        written = dotted_name(func) or ""
        last = func.attr.value if isinstance(func, cst.Attribute) else written
        if last in _SYNC_METHODS or "sync" in written.lower() or "save" in last.lower():
            return True
        if last in self._file.functions and self._helper_waits(last):
            return True
        if last in ("cuda", "to"):
            # A blocking copy to the GPU waits for what was queued before it; a copy to the host too.
            non_blocking = any(arg.keyword is not None and arg.keyword.value == "non_blocking" for arg in node.args)
            return _makes_cpu(node, self._file.cpu_devices) or not non_blocking
        if (isinstance(func, cst.Name) and last in _READS_VALUE) or _LOGS.match(last) or last == "format":
            return not self._reads(node) <= body.plain
        given = self._reads(node) & gpu
        if not given or _LOSS.search(last) or _names_network(written):
            return False
        if isinstance(func, cst.Attribute):
            receiver = dotted_name(func.value)
            torch_call = (self.context.call_name(node) or "").startswith("torch.")
            if receiver in gpu or last in _HARMLESS_METHODS or torch_call:
                return False  # a tensor's own method, or torch's: queued like the work
        return last not in _HARMLESS_FUNCTIONS

    def _helper_waits(self, name: str) -> bool:
        """A function of the file by that name synchronises or copies to the host (`def sync(): ...`)."""
        if name not in self._file.waiting_helpers:
            bodies = self._file.functions[name]
            self._file.waiting_helpers[name] = any(_synchronises(node) for f in bodies for node in descendants(f.body))
        return self._file.waiting_helpers[name]

    def _gpu_values(self, body: _Body, work: list[cst.CSTNode], timed) -> set[str]:
        """Variables assigned, between the readings, from the work or from what it produced."""
        gpu: set[str] = set()
        for statement, names, value in body.assignments:
            if timed(statement):
                if any(body.order.encloses(value, node) for node in work) or self._reads(value) & gpu:
                    gpu.update(names)
        return gpu

    def _report(self, first: cst.Call, second: cst.Call, work: cst.CSTNode) -> None:
        line = self.context.position
        started = line(first).start.line
        if started > line(second).start.line:
            started = f"{started} (on the previous pass)"
        self.report(
            second,
            f"`{source_code(second)}` at line {line(second).start.line} ends a timing started by "
            f"`{source_code(first)}` at line {started} around CUDA work (`{_short(work)}` at line "
            f"{line(work).start.line}) with nothing synchronising: kernels run asynchronously, so this measures "
            "their launch; call torch.cuda.synchronize() before reading the clock, or time with torch.cuda.Event",
        )


def _iterates_data(loop: cst.For | cst.While) -> bool:
    """A training or evaluation loop (over a loader, `while True`, `range(len(loader))`), not a
    benchmark's `for _ in range(100)`."""
    if isinstance(loop, cst.While):
        return True
    iterable = loop.iter
    while isinstance(iterable, cst.Call) and dotted_name(iterable.func) in ("tqdm", "tqdm.tqdm", "enumerate"):
        if not iterable.args:
            break
        iterable = iterable.args[0].value
    if isinstance(iterable, cst.Call) and dotted_name(iterable.func) in ("range", "trange"):
        bound = source_code(iterable.args[-1].value) if iterable.args else ""
        return bool(_DATA_LENGTH.search(bound))
    return not isinstance(iterable, (cst.List, cst.Tuple))


def _rebound_in_loop(body: _Body, variable: cst.BaseExpression, second: cst.Call) -> cst.Call | None:
    """`end = time.time()` after the second reading, in a loop around both: the next pass starts there."""
    name = dotted_name(variable)
    for bound, reading in body.bindings:
        if bound == name and body.start(reading) > body.start(second):
            if any(body.order.encloses(loop, second) and body.order.encloses(loop, reading) for loop in body.loops):
                return reading
    return None


def _bound_reading(body: _Body, expression: cst.BaseExpression, before: int) -> cst.Call | None:
    """The clock reading last bound, before index `before`, to the variable `expression` names."""
    name = dotted_name(expression)
    found = [reading for bound, reading in body.bindings if bound == name and body.start(reading) < before]
    return max(found, key=body.start, default=None)


def _names_network(written: str) -> bool:
    """`model`, `self.net`, `netG`, `resnet50`, `teacher_model`; not `load_model` or `Net` (a class)."""
    last = written.rsplit(".", 1)[-1]
    words = [word.lower() for word in _WORD.findall(last)]
    if not words or last[:1].isupper() or words[0] in _VERBS:
        return False
    return any(word in _NETWORK_WORDS or word.endswith("net") for word in words)


def _names_read(expression: cst.CSTNode) -> set[str]:
    """The variables an expression reads (roots of `a.b.c`), leaving out called functions and keywords."""
    names, stack = set(), [expression]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Name):
            names.add(node.value)
        elif isinstance(node, cst.Attribute):
            stack.append(node.value)
        elif isinstance(node, cst.Call):
            stack.extend(arg.value for arg in node.args)
            if not isinstance(node.func, cst.Name):
                stack.append(node.func)
        elif isinstance(node, cst.Arg):
            stack.append(node.value)
        elif not isinstance(node, _SCOPES):
            stack.extend(child_nodes(node))
    return names - _CONFIG_ROOTS


def _target_names(target: cst.BaseExpression) -> list[str]:
    if isinstance(target, (cst.Tuple, cst.List)):
        return [name for element in target.elements for name in _target_names(element.value)]
    name = dotted_name(target)
    return [name] if name else []


def _counters(loop: cst.For) -> set[str]:
    """Loop variables that hold numbers or strings: `for i in range(n)`, the `i` of `enumerate`,
    `for device in ["cpu", "cuda"]`."""
    iterable, target = loop.iter, loop.target
    if isinstance(iterable, (cst.List, cst.Tuple)) and all(
        isinstance(element.value, (cst.SimpleString, cst.Integer, cst.Float)) for element in iterable.elements
    ):
        return set(_target_names(target))
    if isinstance(iterable, cst.Call) and isinstance(iterable.func, cst.Name):
        if iterable.func.value == "range":
            return set(_target_names(target))
        if iterable.func.value == "enumerate" and isinstance(target, cst.Tuple) and target.elements:
            return set(_target_names(target.elements[0].value))
    return set()


def _has_device(call: cst.Call) -> bool:
    return any(arg.keyword is not None and arg.keyword.value == "device" for arg in call.args)


def _makes_cpu(call: cst.Call, cpu_devices: set[str]) -> bool:
    """`.cpu()`, `.to("cpu")`, `.to(device=cpu)`, `torch.zeros(3, device="cpu")`."""
    if isinstance(call.func, cst.Attribute) and call.func.attr.value == "cpu":
        return True
    devices = [arg.value for arg in call.args if arg.keyword is None or arg.keyword.value == "device"]
    return any(_is_cpu(device, cpu_devices) for device in devices)


def _is_cpu(device: cst.BaseExpression, cpu_devices: set[str]) -> bool:
    """`"cpu"`, `torch.device("cpu")`, or a variable only ever bound to one of these."""
    if isinstance(device, cst.Call) and dotted_name(device.func) in ("torch.device", "device") and device.args:
        device = device.args[0].value
    if isinstance(device, cst.SimpleString):
        return device.raw_value.startswith("cpu")
    return isinstance(device, cst.Name) and device.value in cpu_devices


def _short(node: cst.CSTNode) -> str:
    text = " ".join(source_code(node).split())
    return text if len(text) <= 40 else text[:37] + "..."


def _read_file(module: cst.Module) -> _File:
    """One walk of the file for what every timed region needs to know."""
    file = _File()
    cpu, other = set(), set()
    for node in descendants(module):
        kind = type(node)
        if kind is cst.Attribute:
            file.on_cuda = file.on_cuda or node.attr.value == "cuda"  # `x.cuda()`, `torch.cuda.*`
        elif kind is cst.SimpleString:
            file.on_cuda = file.on_cuda or node.raw_value.startswith("cuda")
        elif kind is cst.Assign:
            # A transformers/diffusers pipeline returns Python objects: calling it waits for the GPU.
            if isinstance(node.value, cst.Call) and "pipeline" in (dotted_name(node.value.func) or "").lower():
                file.pipelines.update(dotted_name(t.target) for t in node.targets)
            for target in node.targets:
                if isinstance(target.target, cst.Name):
                    devices = cpu if _is_cpu(node.value, set()) else other
                    devices.add(target.target.value)
    file.cpu_devices = cpu - other
    return file


def _synchronises(node: cst.CSTNode) -> bool:
    """An explicit synchronisation or a copy to the host, inside a helper function of the file."""
    if not isinstance(node, cst.Call):
        return False
    written = dotted_name(node.func) or ""
    last = node.func.attr.value if isinstance(node.func, cst.Attribute) else written
    return "sync" in written.lower() or last in ("item", "cpu", "numpy", "tolist", "elapsed_time")
