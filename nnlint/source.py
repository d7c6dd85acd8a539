"""Reading a Python file's text, shared by the static pass (nnlint.static) and the project's other
files (nnlint.project), below both."""

import tokenize
from io import BytesIO


def decode_source(data: bytes) -> str:
    """Text of a Python file, honouring a BOM and a PEP 263 coding line (raises on failure)."""
    encoding, _ = tokenize.detect_encoding(BytesIO(data).readline)
    return data.decode(encoding)


def encode_source(text: str) -> bytes:
    """The bytes an editor would save `text` as: in the encoding its PEP 263 coding line names (UTF-8
    without one, or when the text does not fit that encoding), so that decode_source gives it back."""
    data = text.encode("utf-8")
    try:
        encoding, _ = tokenize.detect_encoding(BytesIO(data).readline)
        return data if encoding in ("utf-8", "utf-8-sig") else text.encode(encoding)
    except (SyntaxError, UnicodeEncodeError):  # decode_source then says what is wrong (NN901)
        return data
