"""Reading a Python file's text, shared by the static pass (nnlint.static), the project's other
files (nnlint.project) and the fixer (nnlint.fixer), below all three."""

import tokenize
from io import BytesIO


def source_encoding(data: bytes) -> str:
    """The encoding a Python file declares: `utf-8-sig` with a BOM, its PEP 263 coding line, else UTF-8
    (raises SyntaxError for an unknown one). Encoding text back with it restores the BOM."""
    encoding, _ = tokenize.detect_encoding(BytesIO(data).readline)
    return encoding


def decode_source(data: bytes) -> str:
    """Text of a Python file, honouring a BOM and a PEP 263 coding line (raises on failure)."""
    return data.decode(source_encoding(data))
