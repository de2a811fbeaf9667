"""The methods' web settings: form fields and API parameters made from the registry.

Why generated: each method declares its options (``MethodInfo.options``); those marked ``web``
(settings a shared server can afford, e.g. the occlusion patch and stride) become fields of
the page's form and parameters of ``POST /api/explain`` and ``POST /api/v1/explain``, listed in
``/api/v1/openapi.json``. A method with a new web setting, plugins included, needs no edit here.
FastAPI reads a dependency's parameters from its signature, so ``method_form`` builds one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Form

from facexplain.method_info import MethodOption
from facexplain.methods.registry import all_options, options_of


def web_options() -> dict[str, MethodOption[Any]]:
    """The registered method options a web client may set, by name."""
    return {name: o for name, o in all_options().items() if o.web}


def _annotation(option: MethodOption[Any]) -> Any:
    described = Form(description=f"{option.help} Read by: {', '.join(options_of(option.name))}.")
    kind: Any = str if option.type is tuple else option.type
    if option.default is None:
        kind = kind | None
    return Annotated[kind, described]


def method_form() -> Callable[..., dict[str, object]]:
    """A FastAPI dependency: the web options as form fields, returned as {name: value}."""
    options = web_options()

    def form(**values: object) -> dict[str, object]:
        return {name: options[name].parse(v) if isinstance(v, str) and options[name].type
                is tuple else v for name, v in values.items() if name in options}

    params = [inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY,
                                default=",".join(map(str, o.default)) if o.type is tuple
                                and o.default is not None else o.default,
                                annotation=_annotation(o))
              for o in options.values()]
    form.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return form


def form_fields() -> list[dict[str, object]]:
    """What the page's template draws for each web option: name, label, input type, value,
    bounds, help."""
    fields = []
    for o in web_options().values():
        kind = {int: "number", float: "number", bool: "checkbox"}.get(o.type, "text")
        fields.append({"name": o.name, "label": o.label or o.name.replace("_", " "),
                       "input": kind, "choices": o.choices, "help": o.help,
                       "value": "" if o.default is None else o.default,
                       "min": o.minimum, "max": o.maximum,
                       "step": "any" if o.type is float else None})
    return fields
