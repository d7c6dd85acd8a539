import re

import libcst as cst

from nnlint.names import dotted_name
from nnlint.rule import Example, Rule
from nnlint.script import script_model
from nnlint.script.dataflow import LIVE
from nnlint.script.timeline import BACKWARD, MODEL_CALL, events, loss_expression
from nnlint.tree import descendants

# What an accumulator of losses is called: `running_loss`, `epoch_loss`, `total_cost`, `losses`.
_LOSS_WORDS = re.compile(r"loss|cost|(^|_)(err|error|nll|mse|kl|elbo)($|_)", re.IGNORECASE)
# Values that leave the graph: the accumulator gets a number, not the tensor.
_CUT_METHODS = {
    "item", "detach", "numpy", "tolist", "detach_",
    # no gradient flows through these: what they return is off the graph (counts, indices, masks)
    "argmax", "argmin", "eq", "ne", "gt", "lt", "ge", "le", "long", "int", "bool", "sign", "round", "floor",
}  # fmt: skip
_CUT_FUNCTIONS = {"float", "int", "round"}
_MAX_DEPTH = 12  # assignments and helper returns followed back from the accumulation


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
            no_grad = _no_grad_blocks(script, iteration.loop.node)
            for statement, target, added in _accumulations(iteration.loop.node):
                if id(statement) in no_grad or target in backpropagated or _reset_in(iteration.loop.node, target):
                    continue
                if not (_LOSS_WORDS.search(target) or _names(added) & losses):
                    continue
                source = _live_source(script, added, function, statement)
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


def _no_grad_blocks(script, loop: cst.CSTNode) -> set[int]:
    """Nodes under `with torch.no_grad()` / `inference_mode()` inside the loop: evaluation, no graph."""
    inside: set[int] = set()
    for node in descendants(loop):
        if isinstance(node, cst.With) and any(_disables_grad(script, item.item) for item in node.items):
            inside |= {id(n) for n in descendants(node)}
    return inside


def _disables_grad(script, expr: cst.BaseExpression) -> bool:
    target = expr.func if isinstance(expr, cst.Call) else expr
    qualified = script.context.qualified_name(target) or dotted_name(target) or ""
    if qualified.endswith(("no_grad", "inference_mode")):
        return True
    return qualified.endswith("set_grad_enabled") and isinstance(expr, cst.Call) and bool(expr.args) \
        and isinstance(expr.args[0].value, cst.Name) and expr.args[0].value.value == "False"


def _live_source(script, expr: cst.BaseExpression, function, statement: cst.CSTNode,
                 position: int | None = None, depth: int = 0) -> cst.CSTNode | None:
    """Where the added value is built, if it is still on the model's graph when added: names are read
    from the assignment that reaches the statement (`loss = loss.item()` just above wins over
    `loss = criterion(...)`), each arm of `a if c else b` and of arithmetic counts."""
    if depth > _MAX_DEPTH:
        return None

    def follow(part: cst.BaseExpression) -> cst.CSTNode | None:
        return _live_source(script, part, function, statement, None, depth + 1)

    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value in _CUT_METHODS:
        return None
    if isinstance(expr, cst.Call) and dotted_name(expr.func) in _CUT_FUNCTIONS:
        return None
    if isinstance(expr, cst.Attribute) and expr.attr.value == "data":
        return None
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and not script.context.call_name(expr):
        return follow(expr.func.value)  # `loss.mean()`, `loss.sum()`
    if isinstance(expr, cst.BinaryOperation):
        return follow(expr.left) or follow(expr.right)
    if isinstance(expr, cst.IfExp):
        return follow(expr.body) or follow(expr.orelse)
    if isinstance(expr, cst.UnaryOperation):
        return follow(expr.expression)
    if isinstance(expr, (cst.Tuple, cst.List)):  # `return output, loss.item()`
        return next((found for element in expr.elements if (found := follow(element.value))), None)
    name = dotted_name(expr)
    binding = _reaching(script, name, function, statement) if name is not None else None
    if name is not None and (binding is not None or isinstance(expr, cst.Name)):
        if binding is None or binding.value is None:
            return None
        if isinstance(binding.node, (cst.Assign, cst.AnnAssign)):
            position = _position_in_target(binding.node, name)
            live = _live_source(script, _part(binding.value, position), function, binding.node, position, depth + 1)
            return binding.node if live is not None else None
        return None
    callee = script.index.callee(expr, function) if isinstance(expr, cst.Call) else None
    if callee is not None:  # `output, loss = train(x, y)`: what the helper returns in that position
        returns = [n for n in descendants(callee) if isinstance(n, cst.Return) and n.value is not None]
        live = (_live_source(script, _part(r.value, position), callee, r, None, depth + 1) for r in returns)
        return expr if any(found is not None for found in live) else None
    origins = script.flow.origins(expr, function)
    live = [origin for origin in origins if origin.kind == LIVE]
    return expr if live else None


def _position_in_target(assign: cst.CSTNode, name: str) -> int | None:
    """1 for `loss` in `output, loss = ...`; None for a plain `loss = ...`."""
    target = assign.targets[0].target if isinstance(assign, cst.Assign) and len(assign.targets) == 1 else None
    if isinstance(target, (cst.Tuple, cst.List)):
        names = [dotted_name(element.value) for element in target.elements]
        return names.index(name) if name in names else None
    return None


def _part(value: cst.BaseExpression, position: int | None) -> cst.BaseExpression:
    """The element a tuple target's name takes from a tuple value (`return output, loss.item()`)."""
    if position is not None and isinstance(value, (cst.Tuple, cst.List)) and position < len(value.elements):
        return value.elements[position].value
    return value


def _reaching(script, name: str, function, statement: cst.CSTNode):
    """The last assignment of `name` above the statement in the function (or the module, for scripts)."""
    line = script.line(statement)
    bindings = [b for b in script.index.lookup(name, function)
                if not isinstance(b.node, (cst.AugAssign, cst.Param)) and script.line(b.node) < line]
    return max(bindings, key=lambda b: script.line(b.node)) if bindings else None


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
        elif _live_source(script, operand, function, statement) is not None:
            operand_code = script.code(operand)
            return code.replace(operand_code, f"{operand_code}.item()", 1) if isinstance(
                operand, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)) else code
    return f"{code}.item()" if isinstance(added, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)) else f"({code}).item()"


def _short(script, node: cst.CSTNode) -> str:
    code = script.code(node)
    return code if len(code) <= 80 else code[:77] + "..."
