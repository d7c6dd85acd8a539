"""Watch torch calls made from the user's code, with the user's file:line (child side, imports torch).

A `TorchFunctionMode` sees every torch function and tensor method, including
those inside data-dependent control flow that `torch.fx` cannot trace. Calls
not in `watched` return at once, which keeps a shape trace within a few
percent of a plain forward.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

_TORCH_DIR = os.path.dirname(torch.__file__)
LAYOUT_CALLS = frozenset({"view", "reshape", "flatten", "unflatten", "permute", "transpose", "t", "swapaxes", "movedim"})


@dataclass(frozen=True)
class Site:
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


def call_name(func: Callable) -> str:
    return getattr(func, "__name__", None) or repr(func)


class CallWatcher(TorchFunctionMode):
    """Calls `on_call(name, args, kwargs, result, site)` for each watched call made from `user_files`.

    `watched=None` watches every call. The site is the innermost frame in a
    user file, so a call inside `nn.Linear` is placed at the user's
    `self.fc(x)` line; with `written_by_user`, only calls the user's code
    makes itself count (a reshape inside `nn.MultiheadAttention` is torch's,
    not the user's).
    """

    def __init__(
        self,
        user_files: Collection[str],
        on_call: Callable,
        watched: Collection[str] | None = None,
        written_by_user: bool = False,
    ):
        super().__init__()
        self.user_files = frozenset(user_files)
        self.on_call = on_call
        self.watched = watched
        self.written_by_user = written_by_user

    def __torch_function__(self, func, types, args=(), kwargs=None):
        # Every torch call of the forward comes through here: the unwatched ones must cost next to nothing.
        result = func(*args, **kwargs) if kwargs else func(*args)
        if self.watched is not None and getattr(func, "__name__", None) not in self.watched:
            return result
        site = self._user_site()
        if site is not None:
            self.on_call(call_name(func), args, kwargs or {}, result, site)
        return result

    def _user_site(self) -> Site | None:
        frame = sys._getframe(2)
        while frame is not None:
            filename = frame.f_code.co_filename
            if filename in self.user_files:
                return Site(filename, frame.f_lineno)
            if self.written_by_user and not filename.startswith(_TORCH_DIR):
                return None
            frame = frame.f_back
        return None


def tensors_in(value: Any) -> list[torch.Tensor]:
    """The tensors of a model output: a tensor, or tuples/lists/dicts of them."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [tensor for item in value for tensor in tensors_in(item)]
    return []
