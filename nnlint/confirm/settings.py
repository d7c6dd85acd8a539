"""`[tool.nnlint.confirm]` and `[tool.nnlint.models]`, checked when the configuration is read
(torch-free): a typo there is an error for `nnlint check` too, not only once `--confirm` runs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from nnlint.errors import ConfigError


@dataclass(frozen=True)
class ConfirmSettings:
    """`[tool.nnlint.confirm]`, with the defaults documented in docs/confirm.md."""

    timeout: float = 60.0  # seconds per file: loading, building and every probe
    memory: int = 4096  # MiB of address space per probe process; torch alone takes about 0.5 GiB
    seed: int = 0
    full_import: bool = False  # import modules whole instead of their definitions only
    training_step: str | None = None  # "pkg.module:function" returning (model, loss) of one batch (NN508)

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> ConfirmSettings:
        keys = {
            "timeout": (int, float), "memory": (int,), "seed": (int,), "full-import": (bool,), "training-step": (str,),
        }  # fmt: skip
        unknown = sorted(set(table) - set(keys))
        if unknown:
            raise ConfigError(f"[tool.nnlint.confirm]: unknown key(s) {', '.join(unknown)}; known: {', '.join(keys)}")
        for key, types in keys.items():
            value = table.get(key)
            if value is not None and (not isinstance(value, types) or (bool not in types and isinstance(value, bool))):
                raise ConfigError(f"[tool.nnlint.confirm]: `{key}` must be a {types[0].__name__}")
            if key in ("timeout", "memory") and value is not None and value <= 0:
                raise ConfigError(f"[tool.nnlint.confirm]: `{key}` must be positive")
        step = table.get("training-step")
        if step is not None and not _FACTORY.fullmatch(step):
            raise ConfigError(f'[tool.nnlint.confirm]: training-step = "{step}" is not of the form "pkg.module:function"')
        return cls(
            timeout=table.get("timeout", cls.timeout),
            memory=table.get("memory", cls.memory),
            seed=table.get("seed", cls.seed),
            full_import=table.get("full-import", cls.full_import),
            training_step=step,
        )


# `[tool.nnlint.models.<Name>]` keys and their TOML types (docs/confirm.md, "Configuration").
_MODEL_KEYS = {
    "args": list, "kwargs": dict, "input": str, "factory": str, "causal": (bool, str), "loss": str, "classes": int,
}  # fmt: skip
LOSSES = ("cross_entropy",)  # `loss = ...` values NN505 knows the initial value of
_FACTORY = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


def model_entries(table: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`[tool.nnlint.models]`, checked: a misspelt key must not silently build the model another way."""
    for name, entry in table.items():
        where = f"[tool.nnlint.models.{name}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table with some of: {', '.join(_MODEL_KEYS)}")
        unknown = sorted(set(entry) - set(_MODEL_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(_MODEL_KEYS)}")
        causal = entry.get("causal", False)
        if not (isinstance(causal, bool) or causal == "strict"):  # NN103's settings (coupling.causal_leak)
            raise ConfigError(f'{where}: `causal` must be true, false or "strict", not {causal!r}')
        for key, kind in _MODEL_KEYS.items():
            if key in entry and not isinstance(entry[key], kind):
                raise ConfigError(f"{where}: `{key}` must be a {'table' if kind is dict else kind.__name__}")
        _check_declared_loss(where, entry)
        if "factory" in entry and not _FACTORY.fullmatch(entry["factory"]):
            raise ConfigError(f'{where}: factory = "{entry["factory"]}" is not of the form "pkg.module:make_model"')
    return table


def _check_declared_loss(where: str, entry: dict[str, Any]) -> None:
    """NN505's keys: `loss`, and optionally `classes` (else read from the model's output): the loss at
    initialisation is judged against log(classes); `classes` is a whole number of at least 2, not a bool."""
    if "classes" in entry and "loss" not in entry:
        raise ConfigError(f'{where}: `classes` is read only with `loss` (NN505), e.g. loss = "cross_entropy", classes = 10')
    if "loss" in entry and entry["loss"] not in LOSSES:
        raise ConfigError(f"{where}: loss = {entry['loss']!r} is not one of: {', '.join(LOSSES)}")
    classes = entry.get("classes", 2)
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 2:
        raise ConfigError(f"{where}: `classes` must be a whole number of at least 2, not {classes!r}")
