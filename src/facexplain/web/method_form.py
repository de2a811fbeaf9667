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

from fastapi import Form, HTTPException

from facexplain.backbones.registry import get_spec
from facexplain.errors import FacexplainError
from facexplain.method_info import MethodOption
from facexplain.methods.registry import all_methods, all_options, options_of, parse_methods


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


def not_ready(backbone: str) -> dict[str, str]:
    """Methods that need an asset a web job must not make (a head not trained here), each with
    the one line naming the command that makes it. Cheap: it looks for files."""
    try:
        spec = get_spec(backbone)
    except FacexplainError:
        return {}
    out = {}
    for info in all_methods().values():
        if info.missing is not None and (info.supports is None or info.supports(spec)):
            why = info.missing(spec.name)
            if why is not None:
                out[info.name] = why
    return out


def runnable_methods(methods: str, backbone: str) -> str:
    """``methods`` as a web job may run them, checked before anything is written: a named
    method whose head is not trained is refused (409, with the command that trains it);
    ``all`` means every method that is ready here. Unknown names and backbones are left to
    ``submission.accept`` (its own one-line errors)."""
    text = methods.strip()
    if not text:
        return methods
    missing = not_ready(backbone)
    if not missing:
        return methods
    if text == "all":
        spec = get_spec(backbone)
        return ",".join(i.name for i in all_methods().values() if i.in_all
                        and (i.supports is None or i.supports(spec)) and i.name not in missing)
    for info in parse_methods(text):
        if info.name in missing:
            raise HTTPException(409, f"{info.name} cannot run on this server yet: "
                                f"{missing[info.name]}")
    return methods
