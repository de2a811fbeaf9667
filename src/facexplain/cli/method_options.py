"""The methods' own settings as command-line flags, made from the registry.

Why generated: each method declares its options (``MethodInfo.options``); a command that runs
methods (``explain``) offers one flag per registered option, so a method with a new setting,
built in or a plugin named in ``$FACEXPLAIN_PLUGINS``, needs no edit here. Typer reads a
command's parameters from its signature, so the decorated command gets a built signature: its
own parameters, then one ``--name`` option per method option.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from facexplain.errors import FacexplainError
from facexplain.method_info import MethodOption
from facexplain.methods.registry import all_options

RECEIVER = "method_options"  # the decorated command's keyword that receives the values


def flag_annotation(option: MethodOption[Any]) -> Any:
    """The Typer annotation of one method option (values are judged by the option itself,
    so a bad one is a one-line error naming the flag, like every other argument)."""
    info = typer.Option(option.flag, help=option.help)
    if option.type is bool:
        return Annotated[bool, info]
    if option.type is tuple:  # comma-separated integers, parsed by the option
        return Annotated[str | None, info]
    if option.default is None:
        return Annotated[option.type | None, info]
    return Annotated[option.type, info]


def flag_default(option: MethodOption[Any]) -> object:
    if option.type is tuple and option.default is not None:
        return ",".join(str(v) for v in option.default)
    return option.default


def from_flag(option: MethodOption[Any], value: object) -> object:
    """A flag's value as the method reads it (a comma list becomes a tuple)."""
    if option.type is tuple and isinstance(value, str):
        return option.parse(value)
    return value


def with_method_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a Typer command one flag per registered method option; the command receives
    their values as a dict in its keyword ``method_options``."""
    own = inspect.signature(command, eval_str=True)
    params = [p for name, p in own.parameters.items() if name != RECEIVER]
    options = all_options()
    clash = sorted(set(options) & {p.name for p in params})
    if clash:
        raise FacexplainError(f"method option(s) {', '.join(clash)} clash with a parameter of "
                              f"`facexplain {command.__name__.removesuffix('_command')}`: "
                              "rename the option")
    params += [inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY,
                                 default=flag_default(o), annotation=flag_annotation(o))
               for o in options.values()]

    @functools.wraps(command)
    def run(**kwargs: object) -> None:
        values = {name: from_flag(o, kwargs.pop(name)) for name, o in options.items()
                  if name in kwargs}
        command(**kwargs, **{RECEIVER: values})

    # Typer reads this signature (inspect honours __signature__), not the wrapped one
    run.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]  # set on a function
    run.__annotations__ = {p.name: p.annotation for p in params}
    del run.__wrapped__
    return run
