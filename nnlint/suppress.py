"""Inline suppressions: `# noqa: NN101` and `# noqa: NN101, NN301`.

A bare `# noqa` (no codes) does not silence nnlint: it is usually meant for
another linter, and a blanket suppression would hide the bugs nnlint exists
to find. Codes of other tools in the same comment are ignored.
"""

from __future__ import annotations

import io
import re
import tokenize

_NOQA = re.compile(r"#\s*noqa\s*:\s*(?P<codes>[A-Z]+\d+(?:\s*,?\s*[A-Z]+\d+)*)", re.IGNORECASE)
_CODE = re.compile(r"[A-Z]+\d+", re.IGNORECASE)


def noqa_codes_by_line(text: str) -> dict[int, set[str]]:
    """{line: codes} for every `# noqa: ...` comment (real comments only, not strings)."""
    codes: dict[int, set[str]] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT and "noqa" in token.string.lower():
                match = _NOQA.search(token.string)
                if match:
                    codes.setdefault(token.start[0], set()).update(
                        code.upper() for code in _CODE.findall(match.group("codes"))
                    )
    except (tokenize.TokenError, SyntaxError):
        pass  # the file parsed, so this is a tokenizer corner case: keep what was read
    return codes
