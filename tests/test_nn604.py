"""NN604 beyond its examples: other ways to ask for weights, and what does or does not count as normalising."""

from __future__ import annotations

import textwrap

from nnlint.rule import rule_by_code
from nnlint.static import lint_source


def flagged_lines(source: str) -> list[int]:
    rule = rule_by_code("NN604")
    result = lint_source(textwrap.dedent(source).encode(), "train.py", [rule], max_file_size=10**7)
    assert not result.diagnostics
    return sorted(finding.line for finding in result.findings)


PIPELINE = "tf = T.Compose([T.Resize(224), T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])"


def with_model(model: str, extra: str = "") -> str:
    return f"""
    import torch
    import torchvision
    from torchvision import transforms as T
    from torchvision.models import get_model
    from torchvision.models.segmentation import deeplabv3_resnet50
    model = {model}
    {PIPELINE}
    {extra}
    """


def test_weights_asked_in_other_ways():
    assert flagged_lines(with_model('get_model("resnet50", weights="DEFAULT")')) == [8]
    assert flagged_lines(with_model('deeplabv3_resnet50(weights_backbone="IMAGENET1K_V1", num_classes=3)')) == [8]
    assert flagged_lines(with_model('torchvision.models.quantization.resnet18(pretrained=True, quantize=True)')) == [8]


def test_models_that_do_not_want_imagenet_statistics():
    assert flagged_lines(with_model('get_model("fasterrcnn_resnet50_fpn", weights="DEFAULT")')) == []
    assert flagged_lines(with_model("torchvision.models.video.r3d_18(weights='DEFAULT')")) == []
    assert flagged_lines(with_model("torchvision.models.resnet18(weights=None)")) == []
    assert flagged_lines(with_model("torchvision.models.resnet18(weights=args.weights)")) == []


def test_arithmetic_that_is_not_a_normalisation_does_not_hide_the_finding():
    model = "torchvision.models.resnet18(pretrained=True)"
    assert flagged_lines(with_model(model, "lr = (epoch - 1) / epochs")) == [8]
    assert flagged_lines(with_model(model, "shown = (x - x.min()) / (x.max() - x.min())")) == [8]
    assert flagged_lines(with_model(model, "x = (x - mean) / std")) == []


def test_statistics_computed_from_the_data_are_not_judged():
    source = with_model(
        "torchvision.models.resnet34(pretrained=True)",
        "DATA_MEANS = (train_set.data / 255.0).mean(axis=(0, 1, 2))\n    norm = T.Normalize(DATA_MEANS, DATA_STD)",
    )
    assert flagged_lines(source) == []
