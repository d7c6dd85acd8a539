"""NN305 beyond its examples: which networks hold BatchNorm, and what keeps a frozen one in eval."""

from __future__ import annotations

import textwrap

import pytest

from nnlint.rule import rule_by_code
from nnlint.static import lint_source

LOOP = """
for epoch in range(10):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
"""


def lines(source: str) -> list[int]:
    code = textwrap.dedent(source) + ("" if "for epoch" in source else LOOP)
    result = lint_source(code.encode(), "train.py", [rule_by_code("NN305")], max_file_size=10**7)
    assert not result.diagnostics
    return [finding.line for finding in result.findings]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (  # timm CNN by name: BatchNorm; a ViT: LayerNorm only
            """
            import timm, torch
            model = timm.create_model("resnet50", pretrained=True, num_classes=10)
            model.requires_grad_(False)
            model.fc.requires_grad_(True)
            optimizer = torch.optim.SGD(model.fc.parameters(), lr=0.1)
            """,
            [4],
        ),
        (
            """
            import timm, torch
            model = timm.create_model("vit_small_patch16_224", pretrained=True, num_classes=10)
            model.requires_grad_(False)
            model.head.requires_grad_(True)
            optimizer = torch.optim.SGD(model.head.parameters(), lr=0.1)
            """,
            [],
        ),
        (  # a class of the file: its `features` hold BatchNorm, its `encoder` does not
            """
            import torch, torch.nn as nn
            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.features = nn.Sequential(nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.ReLU())
                    self.encoder = nn.Sequential(nn.Linear(16, 16), nn.LayerNorm(16))
                    self.fc = nn.Linear(16, 10)
            model = Net()
            for p in model.features.parameters():
                p.requires_grad = False
            for p in model.encoder.parameters():
                p.requires_grad = False
            optimizer = torch.optim.SGD(model.fc.parameters(), lr=0.1)
            """,
            [11],
        ),
        (  # the BatchNorm layers put back in eval one by one
            """
            import torch, torch.nn as nn, torchvision
            model = torchvision.models.resnet50(pretrained=True)
            for p in model.layer1.parameters():
                p.requires_grad = False
            def batchnorm_stats_fixed(net):
                for m in net.modules():
                    if isinstance(m, nn.BatchNorm2d):
                        m.eval()
            batchnorm_stats_fixed(model)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            """,
            [],
        ),
        (  # `apply` of an initialiser keeps nothing in eval; a lambda that evals the BatchNorm layers does
            """
            import torch, torch.nn as nn, torchvision
            model = torchvision.models.resnet50(pretrained=True)
            model.layer1.requires_grad_(False)
            model.fc.apply(init_weights)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            """,
            [4],
        ),
        (
            """
            import torch, torch.nn as nn, torchvision
            model = torchvision.models.resnet50(pretrained=True)
            model.layer1.requires_grad_(False)
            model.apply(lambda m: m.eval() if isinstance(m, nn.BatchNorm2d) else None)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            """,
            [],
        ),
        (  # frozen after training (before export) does not matter
            """
            import torch, torchvision
            model = torchvision.models.resnet50(pretrained=True)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for epoch in range(10):
                model.train()
                for x, y in loader:
                    optimizer.zero_grad()
                    criterion(model(x), y).backward()
                    optimizer.step()
            for p in model.parameters():
                p.requires_grad = False
            torch.jit.script(model).save("model.pt")
            """,
            [],
        ),
        (  # frozen under a condition that is not about the parameter's name: not judged
            """
            import torch, torchvision
            model = torchvision.models.resnet50(pretrained=True)
            for i, p in enumerate(model.parameters()):
                if i < 100:
                    p.requires_grad = False
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            """,
            [],
        ),
        (  # a GAN discriminator frozen and unfrozen around the generator step
            """
            import torch, torchvision
            model = torchvision.models.resnet18(num_classes=1)
            def set_requires_grad(net, flag):
                for p in net.parameters():
                    p.requires_grad = flag
            for p in model.parameters():
                p.requires_grad = False
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for p in model.parameters():
                p.requires_grad = True
            """,
            [],
        ),
    ],
)
def test_batchnorm_and_eval(source, expected):
    assert lines(source) == expected
