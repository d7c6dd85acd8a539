from nnlint.rule import Example, Rule


class CausalLeak(Rule):
    """
    ## What it does
    For a model declared causal (autoregressive) in the configuration, checks
    at run time that its output at each step depends only on the inputs it
    may see. It is reported at the model's `forward()`. Two settings:

    * `causal = true`: output t may see inputs up to and including t. For a
      next-token language model, whose input is shifted by the data (output
      t predicts token t + 1).
    * `causal = "strict"`: output t may see inputs before t only. For a
      model whose output at t predicts input t itself: MADE or PixelCNN-style
      density models, WaveNet on an unshifted signal, a decoder fed the
      unshifted targets.

    ```toml
    [tool.nnlint.models.GPT]
    causal = true
    input = "long[B,T] < 50257"   # optional: T names the time dim

    [tool.nnlint.models.WaveNet]
    causal = "strict"
    ```

    ## Why is this bad?
    A language model or any next-step predictor that sees the future during
    training learns to copy the answer: the training loss falls fast and
    looks excellent, and generation, where the future is not there, is
    garbage. A missing or wrong attention mask, a convolution padded on both
    sides, a normalisation over the time dim or a bidirectional RNN all do it
    silently; so does a causal convolution without the extra one-step shift
    in a model whose output at t is the density of input t itself. The
    recipe: "use backprop to chart dependencies ... in an autoregressive
    model, the output at t must not depend on inputs after t".

    ## Example
    ```python
    def forward(self, tokens):
        q, k, v = self.qkv(self.embed(tokens)).chunk(3, dim=-1)
        weights = (q @ k.transpose(-2, -1)).softmax(dim=-1)  # every step sees every other
        return self.head(weights @ v)
    ```

    ## Use instead
    ```python
    def forward(self, tokens):
        q, k, v = self.qkv(self.embed(tokens)).chunk(3, dim=-1)
        steps = tokens.size(1)
        future = torch.triu(torch.ones(steps, steps, dtype=torch.bool), diagonal=1)
        weights = (q @ k.transpose(-2, -1)).masked_fill(future, float("-inf")).softmax(dim=-1)
        return self.head(weights @ v)
    ```
    or `F.scaled_dot_product_attention(q, k, v, is_causal=True)`.

    ## Known problems
    Only models declared causal are checked, and only after the
    batch check (NN102) has shown that samples stay apart: the probe uses one
    batch row per step. The time dim is the input dim named `T` in `input =
    "..."`, or the only free dim besides the batch; outputs without a dim of
    that length (a pooled summary) are not checked. Dependence through
    integer paths (a padding mask computed from future tokens) carries no
    gradient and is not seen. When the check cannot run, nothing is reported.

    ## Runtime confirmation
    R-only: no static pattern. `--confirm` runs one eval forward on copies
    of a probe sequence (T-1 of them; T+1 when strict); copy m
    back-propagates its outputs at steps up to m (with random weights), and
    any gradient on its inputs after step m (at step m or after, when strict)
    is a leak (for token inputs, at the embedding output). One forward and
    one backward test every step; the evidence names the setting applied,
    the earliest output that depends on an input it must not see ("output at
    step 3 sees step 3 itself" for a strict model that sees its own step),
    and the size of that gradient.
    """

    code = "NN103"
    name = "causal-leak"
    severity = "error"
    summary = "A model declared causal whose output at a step depends on later inputs (runtime only)"
    triggers = ()
    static = False

    bad = [
        Example(
            """
from torch import nn

class TinyDecoder(nn.Module):
    def __init__(self, vocab=50, width=16):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.qkv = nn.Linear(width, 3 * width)
        self.head = nn.Linear(width, vocab)

    def forward(self, tokens):  # <--
        q, k, v = self.qkv(self.embed(tokens)).chunk(3, dim=-1)
        weights = (q @ k.transpose(-2, -1) / q.size(-1) ** 0.5).softmax(dim=-1)
        return self.head(weights @ v)
""",
            note="attention without a causal mask",
        ),
        Example(
            """
from torch import nn

class WaveNetBlock(nn.Module):
    def __init__(self, channels=8):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x):  # <--
        return x + self.conv(x).tanh()
""",
            note="a convolution padded on both sides sees one step ahead",
        ),
    ]
    good = [
        Example(
            """
import torch
from torch import nn

class MaskedDecoder(nn.Module):
    def __init__(self, vocab=50, width=16):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.qkv = nn.Linear(width, 3 * width)
        self.head = nn.Linear(width, vocab)

    def forward(self, tokens):
        q, k, v = self.qkv(self.embed(tokens)).chunk(3, dim=-1)
        steps = tokens.size(1)
        future = torch.triu(torch.ones(steps, steps, dtype=torch.bool), diagonal=1)
        scores = (q @ k.transpose(-2, -1)).masked_fill(future, float("-inf"))
        return self.head(scores.softmax(dim=-1) @ v)
""",
            note="the mask hides every later step",
        ),
        Example(
            """
import torch.nn.functional as F
from torch import nn

class CausalConv(nn.Module):
    def __init__(self, channels=8):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel_size=3)

    def forward(self, x):
        return x + self.conv(F.pad(x, (2, 0))).tanh()
""",
            note="padding on the left only: each step sees itself and the two before",
        ),
    ]
