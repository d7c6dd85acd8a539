"""Watch torch calls made from the user's code, with the user's file:line (child side, imports torch).

Two ways, by what they watch. A `TorchFunctionMode` (`CallWatcher`) sees
every torch function and tensor method, including those inside
data-dependent control flow that `torch.fx` cannot trace; it is for probes
that need every call (fingerprints, reductions, init calls). Its price is
torch's mode dispatch on every call, a few microseconds each: 1.2-1.7x the
forward of a small model. The layout trace needs only nine functions, so it
wraps those instead (`install_layout_hooks`, before the user's modules are
imported, so that `from torch import reshape` binds the wrapper too): the
other calls of the forward cost nothing more.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

_TORCH_DIR = os.path.dirname(torch.__file__)
# An init the user's code calls runs in these before the mode sees it: `nn.init.zeros_` -> torch's dispatch.
INIT_FUNCTIONS = tuple(os.path.join(_TORCH_DIR, name) for name in ("nn/init.py", "overrides.py"))
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
    `self.fc(x)` line. With `through`, only calls the user's code makes
    itself count: the frames between the call and the user's may only be in
    files starting with one of those paths. `written_by_user` is
    `through=(torch's directory,)`: a reshape inside `nn.MultiheadAttention`
    is torch's, not the user's.
    """

    def __init__(
        self,
        user_files: Collection[str],
        on_call: Callable,
        watched: Collection[str] | None = None,
        written_by_user: bool = False,
        through: tuple[str, ...] | None = None,
    ):
        super().__init__()
        self.user_files = frozenset(user_files)
        self.on_call = on_call
        self.watched = watched
        self.through = (_TORCH_DIR,) if written_by_user else through

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
        return user_site(sys._getframe(2), self.user_files, self.through)


def user_site(frame, user_files: Collection[str], through: tuple[str, ...] | None = None) -> Site | None:
    """The innermost frame from `frame` outwards that is in a user file; with `through`, None when a
    frame in a file outside those paths comes first (einops, timm's helpers, torch's own modules)."""
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename in user_files:
            return Site(filename, frame.f_lineno)
        if through is not None and not filename.startswith(through) and filename != __file__:  # (the layout wrappers)
            return None
        frame = frame.f_back
    return None


@dataclass
class LayoutCall:
    """One view/reshape/flatten/... the user's code made, with its shapes."""

    call: str
    site: Site
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]


class _LayoutHooks:
    """The state the wrapped layout functions share: the trace being recorded, if any."""

    installed = False
    user_files: frozenset[str] = frozenset()
    # (name, path, line, input shape, output shape) per call; None: not recording. Plain tuples:
    # the wrappers run inside the forward being traced, so they do as little as they can.
    raw: list[tuple] | None = None
    depth = 0  # a wrapped call inside another (a mode re-dispatching it) is the same call


def install_layout_hooks() -> None:
    """Wrap the layout functions (tensor methods and `torch.*`) for this process; idempotent.

    A wrapper costs one Python call when no trace is recorded. The `torch.*`
    functions keep their TorchScript builtin entries, so user code that
    scripts a function calling `torch.reshape` still compiles.
    """
    if _LayoutHooks.installed:
        return
    from torch.jit import _builtins

    for name in sorted(LAYOUT_CALLS):
        original = getattr(torch.Tensor, name)
        setattr(torch.Tensor, name, _layout_wrapper(original, name))
        function = getattr(torch, name, None)
        if function is not None:
            wrapper = _layout_wrapper(function, name)
            builtin = _builtins._find_builtin(function)
            if builtin is not None:
                _builtins._register_builtin(wrapper, builtin)
            setattr(torch, name, wrapper)
    _LayoutHooks.installed = True


def _layout_wrapper(original: Callable, name: str) -> Callable:
    hooks, tensor, get_frame = _LayoutHooks, torch.Tensor, sys._getframe

    @functools.wraps(original)
    def layout_call(*args, **kwargs):
        raw = hooks.raw
        if raw is None or hooks.depth:
            return original(*args, **kwargs)
        hooks.depth = 1
        try:
            result = original(*args, **kwargs)
        finally:
            hooks.depth = 0
        frame, user_files = get_frame(1), hooks.user_files
        while frame is not None:  # `user_site(through=(_TORCH_DIR,))`, inlined: this runs on every call
            filename = frame.f_code.co_filename
            if filename in user_files:
                if args and isinstance(args[0], tensor) and isinstance(result, tensor):
                    raw.append((name, filename, frame.f_lineno, args[0].shape, result.shape))
                break
            if not filename.startswith(_TORCH_DIR):
                break
            frame = frame.f_back
        return result

    return layout_call


@contextmanager
def recording_layout(user_files: Collection[str]) -> Iterator[list[LayoutCall]]:
    """Within, every layout call the user's own code makes is recorded; the list yielded is filled on exit."""
    if not _LayoutHooks.installed:
        raise RuntimeError("install_layout_hooks() must run before the user's code is imported")
    calls: list[LayoutCall] = []
    previous = (_LayoutHooks.raw, _LayoutHooks.user_files)
    _LayoutHooks.raw, _LayoutHooks.user_files = raw, _ = [], frozenset(user_files)
    try:
        yield calls
    finally:
        _LayoutHooks.raw, _LayoutHooks.user_files = previous
        calls.extend(LayoutCall(name, Site(path, line), tuple(a), tuple(b)) for name, path, line, a, b in raw)


def tensors_in(value: Any) -> list[torch.Tensor]:
    """The tensors of a model output: a tensor, or tuples/lists/dicts of them."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [tensor for item in value for tensor in tensors_in(item)]
    return []
