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


def encode_source(text: str) -> bytes:
    """The bytes an editor would save `text` as: in the encoding its PEP 263 coding line names (UTF-8
    without one, or when the text does not fit that encoding), so that decode_source gives it back."""
    data = text.encode("utf-8")
    try:
        encoding = source_encoding(data)
        return data if encoding in ("utf-8", "utf-8-sig") else text.encode(encoding)
    except (SyntaxError, UnicodeEncodeError):  # decode_source then says what is wrong (NN901)
        return data
