"""NN407 beyond its examples: the order of the optimizer and the new layer, and what counts as a new layer."""

from __future__ import annotations

import textwrap

import pytest

from nnlint.rule import rule_by_code
from nnlint.static import lint_source


def lines(source: str) -> list[int]:
    result = lint_source(textwrap.dedent(source).encode(), "train.py", [rule_by_code("NN407")], max_file_size=10**7)
    assert not result.diagnostics
    return [finding.line for finding in result.findings]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (  # the loop trains with the optimizer before the head is replaced for the next task
            """
            import torch, torch.nn as nn
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for task in tasks:
                train(model, optimizer, task)
                model.fc = nn.Linear(512, task.n)
            """,
            [6],
        ),
        (  # rebuilt at the top of each task: fine
            """
            import torch, torch.nn as nn
            for task in tasks:
                optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
                train(model, optimizer, task)
                model.fc = nn.Linear(512, task.n)
            """,
            [],
        ),
        (  # never used again: nothing trains with the stale optimizer
            """
            import torch, torch.nn as nn
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            train(model, optimizer)
            model.fc = nn.Identity()
            model.head = nn.Linear(512, 10)
            export(model)
            """,
            [],
        ),
        (  # another model under the same name
            """
            import torch, torch.nn as nn, torchvision
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            model = torchvision.models.resnet18()
            model.fc = nn.Linear(512, 10)
            train(model, optimizer)
            """,
            [],
        ),
        (  # a new nn.Parameter after the optimizer, and one with its own optimizer (SAC's temperature)
            """
            import torch, torch.nn as nn
            class Actor(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.net = nn.Linear(8, 2)
                    self.optimizer = torch.optim.Adam(self.parameters())
                    self.log_std = nn.Parameter(torch.zeros(2))
                    self.log_alpha = nn.Parameter(torch.zeros(1))
                    self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=3e-4)
                    self.scale = nn.Parameter(torch.ones(1), requires_grad=False)
            """,
            [8],
        ),
        (  # moved to the device, built through a name, registered by name
            """
            import torch, torch.nn as nn
            opt = torch.optim.AdamW(net.parameters())
            net.fc = nn.Linear(512, 10).to(device)
            head = nn.Sequential(nn.Linear(512, 256), nn.ReLU())
            net.proj = head
            net.register_parameter("bias2", nn.Parameter(torch.zeros(10)))
            fit(net, opt)
            """,
            [4, 6, 7],
        ),
        (  # wrapping or re-arranging existing layers adds no parameters
            """
            import torch, torch.nn as nn
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            model.features = nn.DataParallel(model.features)
            model.fc = nn.Sequential(nn.Dropout(0.5), model.fc)
            model.layer4 = model.layer4.to(device)
            train(model, optimizer)
            """,
            [],
        ),
        (  # only the optimizer that holds the whole model misses the new head
            """
            import torch, torch.nn as nn
            backbone_opt = torch.optim.SGD(model.backbone.parameters(), lr=0.01)
            full_opt = torch.optim.SGD(model.parameters(), lr=0.01)
            model.head = nn.Linear(768, 10)
            train(model, backbone_opt, full_opt)
            """,
            [5],
        ),
        (  # a replacement in a method other than the one that built the optimizer is not compared
            """
            import torch, torch.nn as nn
            class Trainer:
                def __init__(self, model):
                    self.model = model
                    self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
                def reset_head(self, n):
                    self.model.fc = nn.Linear(512, n)
            """,
            [],
        ),
        (  # built in __init__ of a trainer, then the model's head replaced there
            """
            import torch, torch.nn as nn
            class Trainer:
                def __init__(self, model, n):
                    self.model = model
                    self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
                    self.model.fc = nn.Linear(512, n)
            """,
            [7],
        ),
        (  # `trainer.optimizer` and the keyword `optimizer=` are not reads of the stale `optimizer`
            """
            import torch, torch.nn as nn
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            model.fc = nn.Linear(512, 10)
            trainer.optimizer.step()
            Trainer(model, optimizer=other_optimizer)
            """,
            [],
        ),
    ],
)
def test_order_and_new_layers(source, expected):
    assert lines(source) == expected


def test_statement_facts():
    """The order facts NN407 asks of `script.statements` (nnlint/script/statements.py)."""
    import libcst as cst

    from nnlint.context import FileContext
    from nnlint.script import script_model

    source = textwrap.dedent(
        """
        def f(model):
            a = build(model)
            if flag:
                model.fc = make()
            else:
                use(a)
            model = other
            use(a)
            g = lambda: use(model)
        """
    )
    module = cst.parse_module(source)
    script = script_model(FileContext("train.py", source, module))
    function = script.index.functions["f"][0]
    facts = script.statements.of(function)
    assert facts is script.statements.of(function)  # built once
    build = facts.calls[0]
    replaced = next(node for target, node in facts.assigned if isinstance(target, cst.Attribute))
    first_use, last_use = [call for call in facts.calls if cst.ensure_type(call.func, cst.Name).value == "use"]
    assert facts.runs_after(replaced, build) and not facts.runs_after(build, replaced)
    assert facts.exclusive(replaced, first_use) and not facts.runs_after(first_use, replaced)
    assert facts.runs_after(last_use, replaced)
    assert facts.written_between(build, last_use) == {"model.fc", "model"}
    assert facts.written_between(replaced, last_use) == {"model"}
    assert facts.statement_of(build) is function.body.body[0]
    assert len(facts.calls) == 4  # build, make, use, use: not the call inside the lambda
    # `build(model)` and the object of `model.fc = ...`; not the lambda's, nor the target `model.fc` itself
    assert [name for name, _ in facts.reads].count("model") == 2 and "model.fc" not in dict(facts.reads)
