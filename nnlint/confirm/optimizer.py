"""NN407 at runtime (child side, imports torch): which parameters an optimizer built before a layer was
replaced does not hold. The replacement is re-enacted on a copy of the built model with the names of the
user's file, so a new layer whose arguments only the running script knows cannot be judged.
"""

from __future__ import annotations

import copy

import torch

from nnlint.confirm.session import ModelRecord, ProbeSession

_MODEL, _LAYER = "__nnlint_model", "__nnlint_layer"


def parameters_left_out(
    session: ProbeSession, record: ModelRecord, model: str, target: str, new_layer: str
) -> tuple[list[str], int] | str:
    """(names of the parameters in no param group, number of parameter tensors) after `target = new_layer`
    on a copy of the model that an optimizer was built from; a string saying why when it cannot be done."""
    if not (target.startswith(model + ".") or target.startswith(model + "[")):
        return f"`{target}` is not a part of `{model}`"
    module = copy.deepcopy(record.probe.module)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    namespace = {**vars(session.module), _MODEL: module}
    torch.manual_seed(session.seed)
    try:
        namespace[_LAYER] = eval(new_layer, namespace)  # noqa: S307 - the user's own code, in the sandbox
        exec(f"{_MODEL}{target[len(model):]} = {_LAYER}", namespace)  # noqa: S102
    except NameError as error:
        return f"the new layer `{new_layer}` needs `{error.name}`, which only the running script knows"
    except Exception as error:  # the replacement does not apply to the model as built here
        return f"`{target} = {new_layer}` fails on {record.name}: {type(error).__name__}: {error}"
    held = {id(parameter) for group in optimizer.param_groups for parameter in group["params"]}
    parameters = list(module.named_parameters())
    return [name for name, parameter in parameters if id(parameter) not in held], len(parameters)
