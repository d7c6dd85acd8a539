"""The torch-free parts of the confirm pass: safe loading and reshape decoding."""

from __future__ import annotations

import textwrap

import pytest

from nnlint.confirm.reshape import AMBIGUOUS, FINE, REORDER, decode
from nnlint.confirm.safe_load import definitions_only


def _run_definitions(source: str) -> dict:
    namespace: dict = {"__name__": "probed"}
    exec(definitions_only(textwrap.dedent(source), "probed.py"), namespace)
    return namespace


def test_safe_loading_keeps_definitions_and_constants_and_skips_what_runs():
    namespace = _run_definitions(
        """
        import math
        EPOCHS = 20
        MEAN = (0.5, 0.5)
        HIDDEN = EPOCHS * 4
        DEVICE = args.device
        model = build()
        for epoch in range(EPOCHS):
            raise SystemExit("trained")
        while True:
            pass
        with open("/nonexistent") as handle:
            pass
        try:
            import not_installed_anywhere
        except ImportError:
            not_installed_anywhere = None
        if __name__ == "__main__":
            raise SystemExit("main ran")
        if use_gpu:  # names a skipped statement, and keeps nothing: never evaluated
            model = model.cuda()
        if args.small:  # keeps a definition, but its test fails: dropped
            WIDTH = 8
        if MEAN:
            SCALE = 2
        Pipe = collections.namedtuple("Pipe", ["queue"])

        class SlavePipe(Pipe):  # its base was skipped: the class is dropped, the module still loads
            pass

        def build():
            return math.pi

        class Net:
            width = HIDDEN
        """
    )
    assert namespace["EPOCHS"] == 20 and namespace["MEAN"] == (0.5, 0.5) and namespace["Net"].width == 80
    assert namespace["not_installed_anywhere"] is None
    assert "model" not in namespace and "DEVICE" not in namespace  # a call; a name that was never bound
    assert "WIDTH" not in namespace and namespace["SCALE"] == 2
    assert "SlavePipe" not in namespace


def test_safe_loading_keeps_line_numbers():
    code = definitions_only("x = 1\nprint('hi')\n\ndef f():\n    return 1 / 0\n", "probed.py")
    namespace: dict = {}
    exec(code, namespace)
    with pytest.raises(ZeroDivisionError) as error:
        namespace["f"]()
    assert error.traceback[-1].lineno + 1 == 5


@pytest.mark.parametrize(
    ("before", "after", "kind"),
    [
        ((5, 192, 37, 29), (5, 192, 1073), FINE),  # flatten(2)
        ((5, 11, 72), (5, 11, 3, 4, 6), FINE),  # qkv split into heads
        ((5, 1, 192), (5, 192), FINE),  # squeeze
        ((5, 192, 37, 29), (5, 1073, 192), REORDER),  # (b, c, h, w) read as (b, h*w, c)
        ((5, 37, 29), (29, 5, 37), REORDER),
        ((5, 64, 8, 8), (5, 64, 64), AMBIGUOUS),  # c == h*w: both readings fit
        ((5, 6, 4), (5, 2, 12), AMBIGUOUS),  # a regrouping that is neither
    ],
)
def test_reshape_decoding(before, after, kind):
    assert decode(before, after).kind == kind


def test_a_reorder_names_the_dims_and_the_permute_that_fixes_it():
    decoding = decode((5, 192, 37, 29), (5, 1073, 192))
    assert decoding.permutation(4) == (0, 2, 3, 1)
    assert "output dim 2 (192) is input dim 1 (192)" in decoding.explain((5, 192, 37, 29), (5, 1073, 192))


def test_evidence_lists_at_most_four_names_then_counts_the_rest():
    from nnlint.confirm.protocol import listed

    assert listed(["bn1"]) == "bn1"
    assert listed(["a", "b", "c", "d"]) == "a, b, c, d"
    assert listed(["a", "b", "c", "d", "e", "f"]) == "a, b, c, d and 2 more"


@pytest.mark.parametrize(
    ("before", "after", "kind"),
    [
        ((5, 37, 32), (5, 4, 37, 8), REORDER),  # heads split off the channels, put before the tokens
        ((5, 37, 96), (5, 3, 4, 37, 8), REORDER),  # qkv and heads, before the tokens
        ((5, 37, 32), (5, 37, 4, 8), FINE),  # the split in order: transpose after
        ((5, 37, 96), (5, 37, 3, 4, 8), FINE),
        ((5, 6, 4), (5, 8, 3), AMBIGUOUS),  # a factor merged with a whole dim: no reading
    ],
)
def test_reshapes_that_split_a_dim_and_move_its_parts(before, after, kind):
    assert decode(before, after).kind == kind


def test_a_split_reorder_names_the_view_and_transpose_that_were_meant():
    decoding = decode((5, 37, 32), (5, 4, 37, 8))
    assert decoding.split == (5, 37, 4, 8) and decoding.permutation(3) == (0, 2, 1, 3)
    assert decoding.fix("view", 3) == "write view(5, 37, 4, 8).transpose(1, 2) instead"
    assert "output dim 1 (4) is part 1 of 2 of input dim 2 (32 = 4x8)" in decoding.explain((5, 37, 32), (5, 4, 37, 8))
    assert decode((5, 192, 37, 29), (5, 1073, 192)).fix("view", 4) == "permute(0, 2, 3, 1) first"


def test_a_merge_and_split_in_memory_order_is_not_a_reorder_where_small_sizes_coincide():
    # timm mobilevit's unfold: (B, C, H, W) -> (B*C*n_h, p_h, n_w, p_w) with H = 4, W = 2, patches 2x2.
    assert decode((5, 80, 4, 2), (800, 2, 1, 2)).kind == AMBIGUOUS


def test_a_skipped_assignment_runs_when_a_kept_statement_needs_it_and_only_then():
    namespace = _run_definitions(
        """
        _registry = make_registry()  # a call: skipped, until the decorator below needs it

        def make_registry():
            return []

        def register(fn):
            _registry.append(fn)
            return fn

        @register
        def op():
            pass

        IMAGENET_STD = tuple([0.225] * 3)  # builtins that only build a value are kept
        opt = Config()  # nothing needs it while loading: skipped
        model = train()  # never needed: never runs

        class Config:
            pass

        def train():
            raise SystemExit("trained")
        """
    )
    assert namespace["_registry"] == [namespace["op"]]
    assert namespace["IMAGENET_STD"] == (0.225, 0.225, 0.225)
    assert "opt" not in namespace and "model" not in namespace
