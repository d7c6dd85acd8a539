"""Reading a Python file's text, shared by the static pass (nnlint.static) and the project's other
files (nnlint.project), below both."""

import tokenize
from io import BytesIO


def decode_source(data: bytes) -> str:
    """Text of a Python file, honouring a BOM and a PEP 263 coding line (raises on failure)."""
    encoding, _ = tokenize.detect_encoding(BytesIO(data).readline)
    return data.decode(encoding)
