"""NN201 beyond its examples: the init idioms of tutorials and libraries, and the facts handed to --confirm."""

from __future__ import annotations

import textwrap

import pytest

from nnlint.rule import rule_by_code
from nnlint.static import lint_source

RULE = rule_by_code("NN201")


def _findings(code: str, path: str = "model.py"):
    result = lint_source(textwrap.dedent(code).encode(), path, [RULE], max_file_size=10**7)
    assert not result.diagnostics
    return result.findings


FLAGGED = {
    "dcgan_classname": """
        def weights_init(m):
            classname = m.__class__.__name__
            if classname.find("Linear") != -1:
                m.weight.data.fill_(0)
        """,
    "type_equals": """
        import torch.nn as nn
        for m in model.modules():
            if type(m) == nn.Linear:
                nn.init.constant_(m.weight, 0.5)
        """,
    "script_named_layers": """
        import torch.nn as nn
        model.fc1.weight.data.zero_()
        model.fc2.weight.data.normal_(0, 0.01)
        """,
    "layers_built_in_another_file": """
        from torch import nn
        from .parts import DoubleConv, OutConv
        class UNet(nn.Module):
            def init_weights(self):
                def weight_init(m):
                    if isinstance(m, nn.Conv2d):
                        nn.init.constant_(m.weight, 0)
                self.apply(weight_init)
        """,
    "parameter_replaced_on_hidden_layer": """
        import torch
        import torch.nn as nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.linear1 = nn.Linear(4, 8)
                self.linear2 = nn.Linear(8, 3)
                self.linear1.weight = nn.Parameter(torch.zeros(8, 4, **factory_kwargs))
        """,
}

SILENT = {
    "single_linear_is_the_classifier": """
        from torch import nn
        class ResNet9(nn.Module):
            def __init__(self):
                super().__init__()
                self.linear = nn.Linear(512, 10)
                for m in self.modules():
                    if isinstance(m, nn.Linear):
                        nn.init.constant_(m.weight, 0)
        """,
    "heads_of_a_tuple": """
        from torch import nn
        class Policy:
            def __init__(self):
                self.hidden = nn.Sequential(nn.Linear(16, 32), nn.Tanh())
                self.actor = nn.Linear(32, 3)
                self.critic = nn.Linear(32, 1)
                for m in (self.actor, self.critic):
                    nn.init.zeros_(m.weight)
        """,
    "fixed_blur_kernel": """
        import torch.nn as nn
        class Blur(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(3, 3, 3, groups=3, bias=False)
                self.conv2 = nn.Conv2d(3, 3, 3)
                self.conv1.weight.data.fill_(1 / 9)
                self.conv1.weight.requires_grad = False
        """,
    "dit_final_and_adaln": """
        import torch.nn as nn
        class DiT(nn.Module):
            def initialize_weights(self):
                for block in self.blocks:
                    nn.init.constant_(block.adaLN_modulation[-1].weight, 0)
                nn.init.constant_(self.final_layer.linear.weight, 0)
        """,
    "diffusion_zero_module": """
        import torch.nn as nn
        def zero_module(module):
            for p in module.parameters():
                p.detach().zero_()
            return module
        out = zero_module(nn.Conv2d(64, 64, 3))
        """,
    "frozen_parameter": """
        import torch
        import torch.nn as nn
        class Mix(nn.Module):
            def __init__(self):
                super().__init__()
                self.W1 = nn.Parameter(torch.ones(4, 4), requires_grad=False)
                self.W2 = nn.Parameter(torch.randn(4, 4))
        """,
    "zero_init_option": """
        import torch.nn as nn
        class Net(nn.Module):
            def __init__(self, zero_init=False):
                super().__init__()
                if zero_init:
                    nn.init.zeros_(self.fc1.weight)
                self.fc2 = nn.Linear(4, 4)
        """,
    "rnn_biases_by_name": """
        import torch.nn as nn
        for name, param in rnn.named_parameters():
            if "weight" in name:
                nn.init.orthogonal_(param)
            elif "bias" in name:
                nn.init.zeros_(param)
        """,
    "shape_from_a_variable": """
        import torch
        import torch.nn as nn
        W1 = nn.Parameter(torch.zeros(shape))
        W2 = None
        """,
}


@pytest.mark.parametrize("code", FLAGGED.values(), ids=FLAGGED.keys())
def test_flagged(code):
    assert len(_findings(code)) == 1


@pytest.mark.parametrize("code", SILENT.values(), ids=SILENT.keys())
def test_silent(code):
    assert _findings(code) == []


def test_constant_weights_in_tests_are_deliberate():
    code = FLAGGED["script_named_layers"]
    assert _findings(code, "tests/test_model.py") == []
    assert _findings(code, "src/test_utils_helpers/model.py") != []


def test_facts_locate_the_tensor_for_the_runtime_check():
    code = """
        from torch import nn
        class MLP(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(8, 8)
                self.fc2 = nn.Linear(8, 2)
                nn.init.constant_(self.fc1.weight, 0.1)
        """
    [finding] = lint_source(textwrap.dedent(code).encode(), "m.py", [RULE], max_file_size=10**7).findings
    assert finding.message.startswith("`self.fc1.weight` is initialised to a constant (0.1)")
    facts = finding.facts
    assert facts == {
        "tensor": "self.fc1.weight",
        "constant": "0.1",
        "init": "torch.nn.init.constant_",
        "evidence": "numbered-layer",
        "class": "MLP",
        "attribute": "fc1.weight",
    }


def test_every_layer_facts_name_the_layer_types():
    code = """
        import torch.nn as nn
        def init(m):
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.zeros_(m.weight)
        """
    [finding] = _findings(code)
    assert finding.facts["layer_types"] == ["torch.nn.Linear", "torch.nn.Conv2d"]
    assert "of every nn.Linear / nn.Conv2d" in finding.message
