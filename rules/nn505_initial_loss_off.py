from nnlint.rule import Example, Rule


class InitialLossOff(Rule):
    """
    ## What it does
    For a model declared in the configuration with its loss (and class
    count, else read from its final layer: the last dim of its output),
    checks at run time that its loss at initialisation is what a uniform
    prediction gives: `-log(1/C) = log(C)` for cross-entropy over C
    classes (2.30 for 10 classes). It is reported at the model's
    `forward()`.

    ```toml
    [tool.nnlint.models.Net]
    loss = "cross_entropy"   # the only loss known so far
    classes = 10             # optional
    ```

    ## Why is this bad?
    At initialisation a classifier knows nothing, so its prediction should
    be close to uniform and its loss close to log(C). A loss far above it
    means the initial logits are large and confidently wrong: a head
    initialised with too large a scale, a logit multiplier, a bias set to a
    constant, or a head for another number of classes (a pretrained 1000-way
    head kept for 10 classes). The first hundreds of steps are spent
    undoing it (the "hockey stick" loss curve), and it can push units into
    saturation for good. The recipe: "verify loss @ init ... you should
    measure -log(1/n_classes) on a softmax at initialization".

    ## Example
    ```python
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(32, 256), nn.ReLU())
            self.head = nn.Linear(256, 10)
            nn.init.normal_(self.head.weight, std=1.0)  # logits of std ~10

        def forward(self, x):
            return self.head(self.body(x))
    ```

    ## Use instead
    ```python
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(32, 256), nn.ReLU())
            self.head = nn.Linear(256, 10)  # torch's default init, or a smaller one
            nn.init.zeros_(self.head.bias)

        def forward(self, x):
            return self.head(self.body(x))
    ```

    ## Known problems
    The probe input is standard normal (as normalised data) or random token
    ids: on unnormalised inputs (raw pixels in 0..255) the real initial
    loss is higher still, which this check does not see. A model whose
    training recipe scales the logits on purpose (a cosine classifier with a
    large scale) is confirmed too: its initial loss is far from log(C) all
    the same.

    ## Runtime confirmation
    R-only: no static pattern. `--confirm` builds the model as every probe
    does and runs one `eval()` forward on its probe input (a batch of 5).
    The class dim is the output's last dim when it has C entries, else dim
    1 (as `F.cross_entropy` reads `(B, C, ...)`), every other dim being a
    sample. The loss measured is the expected cross-entropy against
    uniformly random targets, computed exactly (`-log_softmax(logits)`
    averaged over every class and sample: what random targets estimate,
    without their noise), which is at least log(C). **Confirmed** when it is
    more than 0.5 nats above log(C), or when the output has no dim of C
    classes, with the measured and expected values; **refuted** within 0.5
    nats (shown with `--show-refuted`); **unverifiable** when the model
    cannot be built or run, or its output is not floating-point.
    """

    code = "NN505"
    name = "initial-loss-off"
    severity = "warning"
    summary = "A model declared with cross-entropy over C classes starts far from loss log(C) (runtime only)"
    triggers = ()
    static = False

    bad = [
        Example(
            """
from torch import nn

class WideHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(32, 256), nn.ReLU())
        self.head = nn.Linear(256, 10)
        nn.init.normal_(self.head.weight, std=1.0)

    def forward(self, x):  # <--
        return self.head(self.body(x))
""",
            note="a head initialised with std 1 on 256 features: logits of std ~10",
        ),
        Example(
            """
from torch import nn

class ScaledLogits(nn.Module):
    def __init__(self, temperature=0.05):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))
        self.temperature = temperature

    def forward(self, x):  # <--
        return self.net(x) / self.temperature
""",
            note="a temperature divides the logits by 0.05: twenty times too confident",
        ),
        Example(
            """
from torch import nn

class KeptImageNetHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(16, 1000)

    def forward(self, x):  # <--
        return self.fc(self.features(x))
""",
            note="a 1000-way head kept for a 10-class dataset: no dim of 10 classes",
        ),
    ]
    good = [
        Example(
            """
from torch import nn

class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.net(x)
""",
            note="torch's default init: the initial loss is within 0.2 of log(10)",
        ),
        Example(
            """
from torch import nn

class ZeroHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(32, 64), nn.ReLU())
        self.head = nn.Linear(64, 10)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x):
        return self.head(self.body(x))
""",
            note="a zero-initialised head predicts uniformly: exactly log(10)",
        ),
        Example(
            """
from torch import nn

class Segmenter(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 10, 1))

    def forward(self, x):
        return self.net(x)
""",
            note="per-pixel classes on dim 1, (B, C, H, W), as F.cross_entropy reads them",
        ),
        Example(
            """
from torch import nn

class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(100, 32)
        self.out = nn.Linear(32, 10)

    def forward(self, tokens):
        return self.out(self.embed(tokens))
""",
            note="per-token classes on the last dim, (B, T, C)",
        ),
    ]
