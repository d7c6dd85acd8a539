"""NN101 beyond its examples: real bugs from published code, what resets the knowledge of a
tensor's dims, and the message and facts handed to --confirm."""

from __future__ import annotations

import textwrap

import pytest

from nnlint.rule import rule_by_code
from nnlint.static import lint_source

RULE = rule_by_code("NN101")


def _findings(code: str):
    result = lint_source(textwrap.dedent(code).encode(), "model.py", [RULE], max_file_size=10**7)
    assert not result.diagnostics
    return result.findings


FLAGGED = {
    # Informer2020 models/attn.py before its fix (issue #59): queries are (B, L, H, D).
    "informer_prob_attention": """
        def forward(self, queries, keys, values):
            B, L_Q, H, D = queries.shape
            _, L_K, _, _ = keys.shape
            queries = queries.view(B, H, L_Q, -1)
        """,
    # knowing-when-to-look-adaptive-attention models.py before its fix (issue #6): a (b, 2048, 7, 7) feature map.
    "pixel_count_bound_to_a_name": """
        def forward(self, images):
            encoded_image = self.resnet(images)
            batch_size = encoded_image.shape[0]
            features = encoded_image.shape[1]
            num_pixels = encoded_image.shape[2] * encoded_image.shape[3]
            return encoded_image.view(batch_size, num_pixels, features)
        """,
    "numpy_style_images_to_channels_first": """
        n, h, w, c = tuple(images.shape)
        batch = images.reshape(n, c, h, w)
        """,
    "sizes_read_as_a_tuple": """
        def f(x):
            b, c = x.size(0), x.size(1)
            return x.view(c, b, -1)
        """,
    "sizes_from_the_end": """
        def f(x):
            h, w = x.shape[-2:]
            return x.view(-1, w, h)
        """,
    "last_dim_read_first": """
        def f(x):
            return x.view(x.size(-1), x.size(0), -1)
        """,
    "annotated_size": """
        def f(x):
            b: int = x.size(0)
            n: int = x.size(1)
            return x.reshape(n, b)
        """,
    "attribute_read_inline": """
        def f(self):
            return self.pos_embed.view(self.pos_embed.size(2), self.pos_embed.size(1))
        """,
    "inline_reads_in_a_lambda": """
        to_time_major = lambda t: t.view(t.size(1), t.size(0), -1)
        """,
    "sizes_read_and_used_in_a_branch": """
        def f(x):
            if x.dim() == 3:
                B, C, N = x.shape
                x = x.view(B, N, C)
            return x
        """,
    "view_in_a_loop_that_does_not_touch_the_tensor": """
        def f(x, heads):
            b, n, c = x.shape
            for head in heads:
                y = head(x.view(b, c, n))
        """,
    # Layouts carried past assignments (nnlint.script.layout): the sizes still name the dims.
    "heads_split_after_a_transpose": """
        def f(x, heads):
            B, C, T = x.shape
            x = x.transpose(1, 2)
            return x.view(B, heads, T, C // heads)
        """,
    "heads_split_through_einops_then_merged_without_moving_them": """
        from einops import rearrange
        def f(x, h):
            b, t, c = x.shape
            q = rearrange(x, "b t (h d) -> b h t d", h=h)
            return q.reshape(b, t, c)
        """,
    "heads_unflattened_then_viewed_before_time": """
        def f(x, heads):
            B, T, C = x.shape
            q = x.unflatten(-1, (heads, C // heads))
            return q.reshape(B, heads, T, -1)
        """,
    "flattened_then_viewed_in_a_new_order": """
        def f(x):
            b, c, h, w = x.shape
            t = x.flatten(2)
            return t.view(b, h * w, c)
        """,
}

NOT_FLAGGED = {
    "heads_split_after_time_then_transposed": """
        def f(x, heads):
            B, T, C = x.shape
            return x.view(B, T, heads, C // heads).transpose(1, 2), x.view(B, 1, T, C), x.reshape(B, T, 2, -1)
        """,
    "tokens_to_a_map_after_a_transpose": """
        def f(x, H, W):
            B, N, C = x.shape
            return x.transpose(1, 2).reshape(B, C, H, W), x.reshape(B, H, W, C)
        """,
    "layout_differs_between_branches": """
        def f(x, heads, time_major):
            B, T, C = x.shape
            if time_major:
                x = x.transpose(0, 1)
            return x.view(B, heads, T, -1)
        """,
    # transformers videomae: the `else` arm views the tensor the `if` arm had already reshaped.
    "each_arm_reshapes_the_original": """
        def f(frames, ts, ps, norm):
            batch_size, time, num_channels, height, width = frames.shape
            if norm:
                frames = frames.view(batch_size, time // ts * height // ps, ts * ps, num_channels)
            else:
                frames = frames.view(batch_size, time // ts, ts, num_channels, height // ps, ps, width // ps, ps)
            return frames
        """,
    "transformer_xl_rel_shift": """
        import torch
        def _rel_shift(x):
            zero_pad = torch.zeros((x.size(0), 1, *x.size()[2:]), device=x.device, dtype=x.dtype)
            x_padded = torch.cat([zero_pad, x], dim=1)
            x_padded = x_padded.view(x.size(1) + 1, x.size(0), *x.size()[2:])
            return x_padded[1:].view_as(x)
        """,
    # transformers longformer/led `_pad_and_transpose_last_two_dims`: pads, then swaps the sizes on purpose.
    "padded_then_viewed_with_swapped_sizes": """
        from torch import nn
        def pad_and_transpose(hidden_states_padded, padding):
            hidden_states_padded = nn.functional.pad(hidden_states_padded, padding)
            return hidden_states_padded.view(
                *hidden_states_padded.size()[:-2], hidden_states_padded.size(-1), hidden_states_padded.size(-2)
            )
        """,
    "tensor_reassigned_later_in_the_loop": """
        def f(x, blocks):
            b, c, n = x.shape
            for block in blocks:
                y = x.view(b, n, c)
                x = block(y)
        """,
    "transposed_in_place": """
        def f(x):
            b, c, n = x.shape
            x.transpose_(1, 2)
            return x.view(b, n, c)
        """,
    "data_replaced": """
        def f(x, y):
            b, c, n = x.shape
            x.data = y
            return x.view(b, n, c)
        """,
    "annotated_reassignment": """
        def f(x):
            b, c, h, w = x.shape
            x: Tensor = x.permute(0, 2, 3, 1)
            return x.reshape(b, h * w, c)
        """,
    "size_variable_reassigned": """
        def f(x):
            b, c, h, w = x.shape
            c = c * 4
            h, w = h // 2, w // 2
            return x.view(b, h, w, c)
        """,
    "comprehension_rebinds_the_tensor": """
        def f(x, parts):
            b, c, h, w = x.shape
            return [x.reshape(b, h * w, c) for x in parts]
        """,
    "nested_function_has_its_own_tensors": """
        def f(x):
            b, c, h, w = x.shape
            def g(x):
                return x.view(b, h, w, c)
            return g
        """,
    "attribute_tensor_unpacked": """
        def f(self):
            b, c, n = self.x.shape
            self.update()
            return self.x.view(b, n, c)
        """,
    # torchvision raft.py: a (b, h, w, 1, h, w) correlation volume; h and w name two dims each.
    "a_name_for_two_dims": """
        def f(corr_volume):
            batch_size, h, w, num_channels, _, _ = corr_volume.shape
            return corr_volume.reshape(batch_size * h * w, num_channels, h, w)
        """,
    "sizes_read_in_either_branch": """
        def f(x, channels_last):
            if channels_last:
                B, H, W, C = x.shape
            else:
                B, C, H, W = x.shape
            return x.reshape(B, -1, C)
        """,
    "from_the_start_and_the_end_unordered": """
        def f(x):
            c = x.size(1)
            h = x.size(-2)
            return x.view(h, c, -1)
        """,
    "no_sizes_to_compare": """
        def f(x, shape, dtype):
            return x.view(dtype), x.view(*shape), x.view(-1), x.reshape(shape)
        """,
    "sizes_of_another_tensor_in_the_function_form": """
        import torch
        def f(x, y):
            b, c, h, w = y.shape
            return torch.reshape(x, (b, h, w, c))
        """,
}


@pytest.mark.parametrize("code", FLAGGED.values(), ids=FLAGGED.keys())
def test_reordering_view_is_flagged(code):
    assert len(_findings(code)) == 1


@pytest.mark.parametrize("code", NOT_FLAGGED.values(), ids=NOT_FLAGGED.keys())
def test_unknown_or_in_order_view_is_not_flagged(code):
    assert _findings(code) == []


def test_facts_carry_the_permutation_for_the_probe():
    (finding,) = _findings(
        """
        def f(x):
            b, c, h, w = x.shape
            return x.reshape(b, h * w, c)
        """
    )
    assert finding.facts == {
        "tensor": "x",
        "input_dims": ["b", "c", "h", "w"],
        "target": ["b", "h * w", "c"],
        "permutation": [0, 2, 3, 1],
    }


@pytest.mark.parametrize(
    ("code", "fix"),
    [
        ("b, c, n = x.shape\ny = x.view(b, n, c)", "use x.transpose(1, 2)"),
        ("b, c, h, w = x.shape\ny = x.view(b, h, w, c)", "use x.permute(0, 2, 3, 1)"),
        ("y = x.view(x.size(1), x.size(0), -1)", "use x.transpose(0, 1).reshape(x.size(1), x.size(0), -1)"),
        ("y = x.view(x.size(2), x.size(0), x.size(1), -1)", "use x.movedim((2, 0, 1), (0, 1, 2)).reshape("),
        ("y = x.view(x.size(2), x.size(1), *rest)", "use x.transpose(1, 2).reshape(x.size(2), x.size(1), *rest)"),
        ("b, t, c = x.shape\ny = x.view(\n    b, c,\n    t)", "x.view( b, c, t) reorders the dims of x (b, t, c)"),
    ],
)
def test_message_names_the_call_the_dims_and_the_permute_meant(code, fix):
    (finding,) = _findings(code)
    assert fix in finding.message
