"""The method registry: every explanation method declares itself once, everything else reads it.

Why: a method used to be listed in six places (CLI help, ``--method all``, the faithfulness
benchmark, the report's titles...). Now a method is one module that calls ``register_method``
with a ``MethodInfo``: its name, title, family, the maps it returns with how to show each, how
to build it from a backbone scorer, and which map ranks pixels for the faithfulness benchmark.

Where methods come from, in this order: the modules of the package ``facexplain.methods``
(built-ins: drop a file there), the ``facexplain.methods`` entry-point group (installed plugins),
and the modules named in ``$FACEXPLAIN_PLUGINS`` (comma-separated; handy for a notebook or a
test). They are imported on first use of the registry, never at ``import facexplain``.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from facexplain.errors import FacexplainError, InvalidArgument, UnknownMethod
from facexplain.method_info import (
    OPTION_TYPES,
    RESERVED_OPTION_NAMES,
    ExplainOptions,
    MethodInfo,
    MethodOption,
)

if TYPE_CHECKING:
    from facexplain.backbones.spec import BackboneSpec

PLUGINS_ENV = "FACEXPLAIN_PLUGINS"
ENTRY_POINT_GROUP = "facexplain.methods"
BUILTIN_PACKAGE = "facexplain.methods"


@dataclass
class _Registry:
    methods: dict[str, MethodInfo] = field(default_factory=dict)
    loaded: bool = False


_REGISTRY = _Registry()  # filled once per process by discovery; registration is idempotent


def register_method(info: MethodInfo) -> MethodInfo:
    """Add (or replace, by name) a method; returns it so a module can keep a reference."""
    if not info.name or not info.name.replace("-", "").replace("_", "").isalnum():
        raise InvalidArgument(f"method name must be alphanumeric (with - or _): {info.name!r}")
    others = [m for m in _REGISTRY.methods.values() if m.name != info.name]
    for option in info.options:
        _check_option(info.name, option, others)
    _REGISTRY.methods[info.name] = info
    return info


def _check_option(method: str, option: MethodOption[Any], others: Iterable[MethodInfo]) -> None:
    """A usable name, a known type, and the same meaning as any other method's option of
    that name (the CLI, the web form and the job record hold one value per name)."""
    if not option.name.isidentifier() or option.name.startswith("_") or (
            option.name in RESERVED_OPTION_NAMES):
        raise InvalidArgument(f"method '{method}' declares option {option.name!r}: an option "
                              "name must be a Python identifier and not one of "
                              f"{', '.join(sorted(RESERVED_OPTION_NAMES))}")
    if option.type not in OPTION_TYPES:
        raise InvalidArgument(f"method '{method}' declares option '{option.name}' of type "
                              f"{option.type.__name__}; options are int, float, str, bool or "
                              "tuple (of ints)")
    for other in others:
        for theirs in other.options:
            if theirs.name == option.name and not theirs.same_meaning(option):
                raise InvalidArgument(
                    f"method '{method}' declares option '{option.name}' "
                    f"({option.type.__name__}, default {option.default!r}) unlike method "
                    f"'{other.name}' ({theirs.type.__name__}, default {theirs.default!r}): "
                    "methods sharing an option must declare the same one (or rename yours)")


def unregister_method(name: str) -> None:
    """Remove a method (a plugin being unloaded, a test cleaning up); unknown names are ignored."""
    _REGISTRY.methods.pop(name, None)


def _discover() -> None:
    if _REGISTRY.loaded:
        return
    _REGISTRY.loaded = True
    package = importlib.import_module(BUILTIN_PACKAGE)
    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not module.name.startswith("_") and module.name != "registry":
            importlib.import_module(f"{package.__name__}.{module.name}")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()
    for name in filter(None, (n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise FacexplainError(f"cannot import method plugin '{name}' named in "
                                  f"${PLUGINS_ENV}: {exc}") from None


def all_methods() -> dict[str, MethodInfo]:
    """Every registered method by name, built-ins in their declared order first."""
    _discover()
    return dict(sorted(_REGISTRY.methods.items(), key=lambda kv: (_order(kv[0]), kv[0])))


BUILTIN_ORDER = ("occlusion", "occlusion-per-face", "substitution-per-face", "saliency",
                 "deconv", "guided", "ig", "gradcam", "xcos", "parts", "xssab", "fggb",
                 "corrrise", "xface-occlusion", "rise", "lime")


def _order(name: str) -> int:
    return BUILTIN_ORDER.index(name) if name in BUILTIN_ORDER else len(BUILTIN_ORDER)


def all_options() -> dict[str, MethodOption[Any]]:
    """Every registered method's options, merged by name (first declaration's help), in the
    methods' order: what the CLI, the web form and the API schema offer."""
    merged: dict[str, MethodOption[Any]] = {}
    for info in all_methods().values():
        for option in info.options:
            merged.setdefault(option.name, option)
    return merged


def options_of(name: str) -> tuple[str, ...]:
    """The methods that read option ``name`` (for help texts)."""
    return tuple(m.name for m in all_methods().values() if any(o.name == name
                                                                for o in m.options))


def check_options(infos: Iterable[MethodInfo], options: ExplainOptions,
                  spec: BackboneSpec) -> None:
    """Every given option is some method's, and each method's options are valid for it and
    this backbone: one-line errors before any model loads."""
    known = all_options()
    for name in options.values:
        if name not in known:
            raise InvalidArgument(f"unknown method option '{name}'; the methods read: "
                                  f"{', '.join(known)}")
    for info in infos:
        info.validate(options, spec)


def method_names() -> tuple[str, ...]:
    return tuple(all_methods())


def get_method(name: str) -> MethodInfo:
    methods = all_methods()
    if name not in methods:
        raise UnknownMethod(f"unknown method '{name}'; valid: {', '.join(methods)} or all")
    return methods[name]


def parse_methods(spec: str) -> tuple[MethodInfo, ...]:
    """'all', one name, or a comma-separated list -> the registered methods, validated."""
    if spec.strip() == "all":
        return tuple(all_methods().values())
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise UnknownMethod(f"no method given; valid: {', '.join(method_names())} or all")
    return tuple(get_method(n) for n in dict.fromkeys(names))
