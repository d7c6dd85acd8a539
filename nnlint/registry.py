"""The rules' metadata that selecting rules needs, without importing the rules (nor libcst).

Selection (nnlint.config) needs each rule's code and whether it is on by default; importing the rules
to learn that costs libcst's import, most of a fully cached run. The rules stay the single source:
their metadata is written to the cache, keyed by nnlint's fingerprint (nnlint.fingerprint, which
hashes the rules' sources), the first time they are imported, and read from there afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields

from nnlint.cache import Cache


@dataclass(frozen=True)
class RuleInfo:
    code: str
    name: str
    severity: str
    default_enabled: bool


_stored: tuple[RuleInfo, ...] | None = None  # read from the cache by `read_from`, for its duration


def rule_infos() -> tuple[RuleInfo, ...]:
    """Every rule's metadata, sorted by code: from the cache inside `read_from`, else from the rules."""
    return _stored if _stored is not None else _from_rules()


def _from_rules() -> tuple[RuleInfo, ...]:
    from nnlint.rule import all_rules

    return tuple(RuleInfo(**{f.name: getattr(rule, f.name) for f in fields(RuleInfo)}) for rule in all_rules())


def _parse(data: bytes) -> tuple[RuleInfo, ...] | None:
    try:
        return tuple(RuleInfo(**record) for record in json.loads(data))
    except (ValueError, TypeError):  # a corrupt file: rebuilt from the rules
        return None


@contextmanager
def read_from(cache: Cache, fingerprint: str) -> Iterator[None]:
    """Within the block, `rule_infos()` comes from the cache (written there from the rules if absent)."""
    global _stored
    name = f"rules/{fingerprint}"
    data = cache.read(name)
    stored = _parse(data) if data is not None else None
    if stored is None:
        stored = _from_rules()
        cache.write(name, json.dumps([asdict(info) for info in stored]).encode())
    _stored = stored
    try:
        yield
    finally:
        _stored = None
