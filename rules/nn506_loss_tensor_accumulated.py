import re

import libcst as cst

from nnlint.names import dotted_name
from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.dataflow import LIVE
from nnlint.script.timeline import BACKWARD, MODEL_CALL, events, loss_expression, no_grad_nodes
from nnlint.tree import descendants

# What an accumulator of losses is called: `running_loss`, `epoch_loss`, `total_cost`, `losses`.
_LOSS_WORDS = re.compile(r"loss|cost|(^|_)(err|error|nll|mse|kl|elbo)($|_)", re.IGNORECASE)


class LossTensorAccumulated(Rule):
    """
    ## What it does
    Flags `running_loss += loss` (and `total = total + loss`,
    `losses.append(loss)`) in a training loop when `loss` is still the
    tensor computed from the model, not `loss.item()`, `loss.detach()` or
    `float(loss)`, and the accumulator lives across iterations.

    ## Why is this bad?
    The sum is a tensor that references each iteration's loss and, through
    it, that iteration's autograd graph. Nothing is freed until the
    accumulator is: memory grows batch after batch (the PyTorch FAQ's "my
    model uses more memory every iteration"), and printing or logging the
    sum synchronises with the GPU.

    ## Example
    ```python
    running_loss = 0.0
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        running_loss += loss
    ```

    ## Use instead
    ```python
        running_loss += loss.item()
    ```
    Summing losses *within* an iteration and back-propagating the sum
    (gradient accumulation, a loss per time step) is what the graph is for,
    and is not flagged; neither is accumulation under `torch.no_grad()`.

    ## Known problems
    Only accumulations written in the training loop itself are judged; an
    accumulator updated inside a helper the loop calls
    (`self.meter.add(loss)`) is not followed. Metrics objects
    (`torchmetrics`, `AverageMeter.update`) are never flagged.
    """

    code = "NN506"
    name = "loss-tensor-accumulated"
    severity = "warning"
    summary = "`running_loss += loss` adds the loss tensor, not loss.item(): every iteration's graph stays alive"
    triggers = ("backward",)

    bad = [
        Example(
            """
import torch

running_loss = 0.0
for epoch in range(10):
    for inputs, labels in train_loader:
        optimizer.zero_grad()
        outputs = net(inputs)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        running_loss += loss  # <--
""",
            message="loss.item()",
        ),
        Example(
            """
import torch

def train_epoch(model, loader, optimizer):
    model.train()
    epoch_loss, losses = 0, []
    for batch in loader:
        out = model(batch.x, batch.edge_index)
        loss = torch.nn.functional.nll_loss(out[batch.train_mask], batch.y[batch.train_mask])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        epoch_loss = epoch_loss + loss * batch.num_graphs  # <--
        losses.append(loss)  # <--
    return epoch_loss / len(loader.dataset), losses
""",
            note="`x = x + loss` and appending to a list outside the loop keep the graphs the same way",
        ),
        Example(
            """
import torch
from collections import defaultdict

total_loss = defaultdict(lambda: torch.tensor(0.0, device=device))
for images, targets in dataloader:
    predicts = model(images)
    loss, loss_items = loss_fn(predicts, targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    total_loss["all"] += loss * images.size(0)  # <--
""",
            note="a dict of running totals (MultimediaTechLab/YOLO's leak fix)",
        ),
        Example(
            """
import torch

loss_sum = torch.zeros(1, device=device)
for step, batch in enumerate(train_dataloader):
    outputs = model(**batch)
    loss = outputs.loss
    loss_sum += loss  # <--
    accelerator.backward(loss)
    optimizer.step()
    lr_scheduler.step()
    optimizer.zero_grad()
""",
            note="ray's LLM fine-tuning template leaked this way (ray-project/ray#40940)",
        ),
        Example(
            """
import torch

def train_step(model, x, y, optimizer):
    optimizer.zero_grad()
    out = model(x)
    loss = criterion(out, y)
    loss.backward()
    optimizer.step()
    return out, loss

epoch_loss = 0.0
for x, y in loader:
    out, loss = train_step(net, x, y, opt)
    epoch_loss += loss  # <--
""",
            note="a step function returns the loss tensor itself",
        ),
    ]
    good = [
        Example(
            """
import torch

running_loss, total = 0.0, 0
for inputs, labels in train_loader:
    optimizer.zero_grad()
    loss = criterion(model(inputs), labels)
    loss.backward()
    optimizer.step()
    running_loss += loss.item()
    detached_sum += loss.detach()
    total += loss.item() * inputs.size(0)
    total_loss += float(loss)
    old_style_loss += loss.data[0]
""",
            note="trap: `+= loss.item()`, `+= loss.detach()`, `loss.item() * x.size(0)`, `float(loss)`, `.data[0]`",
        ),
        Example(
            """
import torch

train_loss = 0
for data, target in train_loader:
    optimizer.zero_grad()
    output = model(data)
    loss = F.nll_loss(output, target)
    loss.backward()
    optimizer.step()
    loss = loss.item()
    train_loss += loss * data.size(0)
""",
            note="trap: the loss was `.item()`'d into the same name before it is accumulated",
        ),
        Example(
            """
import torch

def compute_epoch_loss(model, data_loader):
    model.eval()
    curr_loss, num_examples = 0., 0
    with torch.no_grad():
        for features, targets in data_loader:
            logits, probas = model(features)
            loss = F.cross_entropy(logits, targets, reduction='sum')
            num_examples += targets.size(0)
            curr_loss += loss
    return curr_loss / num_examples

for epoch in range(num_epochs):
    for features, targets in train_loader:
        cost = F.cross_entropy(model(features)[0], targets)
        optimizer.zero_grad()
        cost.backward()
        optimizer.step()
        with torch.no_grad():
            probe_out = model(probe_x)
        probe_loss_total += criterion(probe_out, probe_y)
    with torch.no_grad():
        val_loss = 0.0
        for x, y in valid_loader:
            val_loss += criterion(model(x), y)
""",
            note="trap: accumulation under torch.no_grad() (evaluation): there is no graph",
        ),
        Example(
            """
import torch

for input_tensor, target_tensor in pairs:
    encoder_optimizer.zero_grad()
    loss = 0
    hidden = encoder.init_hidden()
    for di in range(target_length):
        output, hidden = decoder(input_tensor[di], hidden)
        loss += criterion(output, target_tensor[di])
    loss.backward()
    encoder_optimizer.step()

for i, (x, y) in enumerate(loader):
    loss = 0
    for head in heads:
        l = criterion(head(model(x)), y)
        loss = loss + l
    (loss / accumulation_steps).backward()
    optimizer.step()
""",
            note="trap: gradient accumulation: `loss = loss + l` summed within the iteration, then backward()'d",
        ),
        Example(
            """
import torch

total_loss = 0
for step, (x, y) in enumerate(loader):
    total_loss += criterion(model(x), y)
    if (step + 1) % accumulation_steps == 0:
        total_loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        total_loss = 0
""",
            note="trap: `total_loss += loss` where total_loss is later `.backward()`ed",
        ),
        Example(
            """
import torch
import torchmetrics

train_loss = torchmetrics.MeanMetric()
losses = AverageMeter()
for x, y in loader:
    loss = criterion(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    train_loss.update(loss)
    losses.update(loss.item(), x.size(0))
""",
            note="trap: metrics objects detach what they are given",
        ),
        Example(
            """
import torch

def train(category_tensor, line_tensor):
    optimizer.zero_grad()
    output = model(line_tensor)
    loss = criterion(output, category_tensor)
    loss.backward()
    optimizer.step()
    return output, loss.item()

current_loss = 0
for it in range(1, n_iters + 1):
    output, loss = train(*random_training_example())
    current_loss += loss
    correct += (output.argmax(1) == target).sum()
""",
            note="a helper returns the loss as a number; counts of correct predictions are not losses",
        ),
    ]

    def leave_Module(self, node: cst.Module) -> None:
        script = script_model(self.context)
        found = []
        for iteration in script.training.iterations:
            if iteration.loop is None:
                continue
            function = iteration.loop.function
            losses = _losses(script, function)
            backpropagated = _assigned_from(script, function, losses)
            no_grad = no_grad_nodes(script.context, iteration.loop.node, by_name=True)
            for statement, target, added in _accumulations(iteration.loop.node):
                if id(statement) in no_grad or target in backpropagated or _reset_in(iteration.loop.node, target):
                    continue
                if not (_LOSS_WORDS.search(target) or _names(added) & losses):
                    continue
                source = script.objects.live_source(added, function, statement)
                if source is not None and not _only_without_grad(script, source, function, no_grad):
                    found.append((statement, target, added, source, function))
        for statement, target, added, source, function in script.reports(found):
            built = (f" (built at line {script.line(source)}: `{_short(script, source)}`)"
                     if script.line(source) != script.line(statement) else "")
            self.report(
                statement,
                f"`{_short(script, statement)}` accumulates `{script.code(added)}`, a tensor still attached to the "
                f"model's graph{built}: `{target}` outlives the iteration and keeps every batch's graph alive, so "
                f"memory grows through the epoch; accumulate `{_fix(script, added, function, statement)}` instead",
            )


def _accumulations(loop: cst.CSTNode):
    """`t += v`, `t = t + v` (v: the other operand), `t.append(v)`, with t a name, a `self.` attribute
    or (for `+=`) an item of one (`total_loss[name] += v`)."""
    for node in descendants(loop):
        if isinstance(node, cst.AugAssign) and isinstance(node.operator, cst.AddAssign):
            target = _accumulator(node.target)
            if target is not None:
                yield node, target, node.value
        elif isinstance(node, cst.Assign) and len(node.targets) == 1 and isinstance(node.value, cst.BinaryOperation):
            target = dotted_name(node.targets[0].target)
            value = node.value
            if target is not None and isinstance(value.operator, cst.Add):
                if dotted_name(value.left) == target:
                    yield node, target, value.right
                elif dotted_name(value.right) == target:
                    yield node, target, value.left
        elif isinstance(node, cst.Expr) and isinstance(node.value, cst.Call):
            call = node.value
            if isinstance(call.func, cst.Attribute) and call.func.attr.value == "append" and len(call.args) == 1:
                target = dotted_name(call.func.value)
                if target is not None:
                    yield node, target, call.args[0].value


def _accumulator(target: cst.BaseExpression) -> str | None:
    """`running_loss`, `self.total_loss`, or the dict of `total_loss[name] += ...`."""
    if isinstance(target, cst.Subscript):
        target = target.value
    return dotted_name(target)


def _reset_in(loop: cst.CSTNode, target: str) -> bool:
    """The accumulator is re-created inside the iteration (`loss = 0` then `loss += l`): it lives one iteration."""
    for node in descendants(loop):
        if isinstance(node, cst.Assign) and any(dotted_name(t.target) == target for t in node.targets):
            value = node.value
            if not (isinstance(value, cst.BinaryOperation) and target in (dotted_name(value.left), dotted_name(value.right))):
                return True
    return False


def _losses(script, function) -> set[str]:
    """The names a `backward()` of this function back-propagates (`loss` in `scaler.scale(loss).backward()`)."""
    found: set[str] = set()
    for root in script.timeline.roots:
        for event in events(root.body):
            if event.kind == BACKWARD and event.function is function:
                loss = loss_expression(event.node)
                if loss is not None:
                    found |= _names(loss)
    return found


def _assigned_from(script, function, losses: set[str]) -> set[str]:
    """The losses and the names they are assigned from, two steps back (`loss = sum(losses);
    loss.backward()` back-propagates `losses` too): an accumulator among them is summed for backward()."""
    found = set(losses)
    for _ in range(2):
        for (scope, name), bindings in script.index.bindings.items():
            if name in found and scope in (function, script.context.module):
                for binding in bindings:
                    if binding.value is not None:
                        found |= _names(binding.value)
    return found


def _names(expr: cst.CSTNode) -> set[str]:
    """The dotted names an expression reads (`self.loss`, `loss`), not the functions it calls."""
    found = set()
    for node in descendants(expr):
        name = dotted_name(node) if isinstance(node, (cst.Name, cst.Attribute)) else None
        if name is not None:
            found.add(name)
    return found


def _only_without_grad(script, source: cst.CSTNode, function, no_grad: set[int]) -> bool:
    """The model outputs the loss comes from were computed under no_grad (in the loop, or in a function
    called under it): there is no graph to keep."""
    if id(source) in no_grad:
        return True
    value = source.value if isinstance(source, (cst.Assign, cst.AnnAssign)) else source
    live = [origin.node for origin in script.flow.origins(value, function) if origin.kind == LIVE]
    no_grad_calls = {id(event.node) for root in script.timeline.roots for event in events(root.body)
                     if event.kind == MODEL_CALL and event.no_grad}
    return bool(live) and all(id(node) in no_grad or id(node) in no_grad_calls for node in live)


def _fix(script, added: cst.BaseExpression, function, statement: cst.CSTNode) -> str:
    """`loss / len(loader)` -> `loss.item() / len(loader)`: `.item()` on the operand that is still live."""
    code = script.code(added)
    operands = [added]
    while operands:
        operand = operands.pop(0)
        if isinstance(operand, cst.BinaryOperation):
            operands += [operand.left, operand.right]
        elif operand is added:
            break
        elif script.objects.live_source(operand, function, statement) is not None:
            operand_code = script.code(operand)
            return code.replace(operand_code, f"{operand_code}.item()", 1) if isinstance(
                operand, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)) else code
    return f"{code}.item()" if isinstance(added, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)) else f"({code}).item()"


def _short(script, node: cst.CSTNode) -> str:
    code = script.code(node)
    return code if len(code) <= 80 else code[:77] + "..."
