"""How an explanation method describes itself: its maps, options, and how to build it.

Why a leaf module: the registry and the method modules (``facexplain.methods``), the report and
the benchmarks all read these rows; keeping them below every one of those layers means none of
them has to import another to learn what a method returns or how to draw it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, cast

from facexplain.errors import InvalidArgument

if TYPE_CHECKING:
    import torch

    from facexplain.backbones.spec import BackboneSpec
    from facexplain.explain.base import Explainer
    from facexplain.explain.scorer import PairScorer
    from facexplain.types import ExplanationMaps, Figure

Family = Literal["black-box", "layer"]


@dataclass(frozen=True)
class MapSpec:
    """How one returned map reads and is drawn.

    ``signed``: values of both signs mean something (drawn with a diverging colormap around
    0); ``vrange``: fixed (min, max) for drawing, or None for the map's own range; ``frame``:
    'pixels' (aligned-crop pixels) or 'grid' (cells upsampled to pixels); ``show``: drawn in
    the report (every map is saved as .npy either way); ``reading``: how to read it, in plain
    words, printed under the picture.
    """

    name: str
    caption: str
    signed: bool = False
    vrange: tuple[float | None, float | None] | None = (0.0, None)
    cmap: str = "jet"
    frame: Literal["pixels", "grid"] = "pixels"
    show: bool = True
    reading: str = ""


def delta_map(caption: str) -> MapSpec:
    """The signed Δ map most methods return (not drawn; saved for the benchmarks)."""
    return MapSpec("delta", caption, signed=True, vrange=None, cmap="RdBu_r", show=False)


T = TypeVar("T")
OPTION_TYPES: tuple[type, ...] = (int, float, str, bool, tuple)
# ``ExplainOptions``'s own fields and the front ends' own parameters: no method option may
# take these names (the CLI, the web form and the job record use them).
RESERVED_OPTION_NAMES = frozenset({
    "values", "gradient_fill", "incremental", "batch_size", "progress", "photo_a", "photo_b",
    "out", "backbone", "method", "methods", "lfw_pair", "keep_uploads", "help", "json",
    "max_error", "population", "photo", "gallery", "top", "explain", "as_json", "pairs",
    "workers", "threads", "address", "images", "limit", "retry_failed"})


@dataclass(frozen=True)
class MethodOption(Generic[T]):
    """One setting a method reads, declared beside the method (``MethodInfo.options``).

    The CLI's ``explain`` flags, the web form, the API schema and the job record are generated
    from these rows. ``name`` is a Python identifier (the flag is ``--name`` with dashes);
    ``type`` is int, float, str, bool or tuple (comma-separated integers); ``default`` None
    means the method picks (its help says what); ``choices``/``minimum``/``maximum`` and
    ``check`` (raises ``InvalidArgument``) judge a value before any model loads. ``typed``
    False lets a value of another type reach the method as is (a fill given as a tensor).
    ``web``: shown on the web form and in ``/api/v1`` (only settings a shared server can
    afford); ``label``: its words on the form. Methods sharing an option declare the same row
    (``methods._options``); the registry merges them by name.
    """

    name: str
    type: type
    default: T
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    check: Callable[[T], None] | None = None
    typed: bool = True
    web: bool = False
    label: str = ""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def same_meaning(self, other: MethodOption[Any]) -> bool:
        """Two declarations of one name must agree on everything but their help and check."""
        return (self.type, self.default, self.choices, self.minimum, self.maximum,
                self.typed, self.web) == (other.type, other.default, other.choices,
                                          other.minimum, other.maximum, other.typed, other.web)

    def parse(self, text: str) -> T:
        """A value from text (a form field, a job record): a one-line error when it is not."""
        text = text.strip()
        if text == "" and self.default is None:
            return cast(T, None)
        try:
            if self.type is bool:
                if text.lower() not in ("true", "false", "1", "0", "on", "off", "yes", "no"):
                    raise ValueError(text)
                value: object = text.lower() in ("true", "1", "on", "yes")
            elif self.type is tuple:
                value = tuple(int(v) for v in text.split(",") if v.strip())
            else:
                value = self.type(text)
        except ValueError:
            raise InvalidArgument(f"{self.flag} must be {self.kind()}, got '{text}'") from None
        self.validate(value)
        return cast(T, value)

    def kind(self) -> str:
        return {int: "an integer", float: "a number", bool: "true or false",
                tuple: "comma-separated integers"}.get(self.type, "text")

    def validate(self, value: object) -> None:
        """Raise ``InvalidArgument`` (one line, naming the flag) unless ``value`` is valid."""
        if value is None and self.default is None:
            return
        ok_type = (isinstance(value, self.type) and (self.type is bool
                                                      or not isinstance(value, bool))) or (
            self.type is float and isinstance(value, int) and not isinstance(value, bool))
        if self.type is tuple and ok_type:
            ok_type = all(isinstance(v, int) and not isinstance(v, bool)
                          for v in cast(tuple[object, ...], value))
        if not ok_type:
            if self.typed:
                raise InvalidArgument(f"{self.flag} must be {self.kind()}, got {value!r}")
        elif self.choices and value not in self.choices:
            raise InvalidArgument(f"{self.flag} must be one of {', '.join(self.choices)}, "
                                  f"got {value!r}")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                words = {0: "non-negative", 1: "positive"}
                bound = (words[int(self.minimum)] if self.type is int and self.minimum in words
                         else f"at least {self.minimum:g}")
                raise InvalidArgument(f"{self.flag} must be {bound}, got {value}")
            if self.maximum is not None and value > self.maximum:
                raise InvalidArgument(f"{self.flag} must be at most {self.maximum:g}, got "
                                      f"{value}")
        if self.check is not None:
            self.check(cast(T, value))


class ExplainOptions:
    """What one explanation run is asked for: each method's own settings by name (declared
    by the methods, ``MethodOption``; a method reads ``options.get(PATCH)``), plus the few
    settings of the run itself, which no method owns.

    ``ExplainOptions(patch=16, stride=8)`` sets method options by keyword; a name no
    registered method declares is refused when the methods are resolved.
    ``gradient_fill``: the reference of saliency/deconv/guided/Grad-CAM and the fill of the
    black-filling methods (None: black; integrated gradients follows ``fill``); the
    faithfulness benchmark passes its shared fill here so every method removes pixels alike.
    """

    __slots__ = ("values", "gradient_fill", "incremental", "batch_size", "progress")

    values: Mapping[str, object]
    gradient_fill: str | torch.Tensor | None
    incremental: bool
    batch_size: int
    progress: bool

    def __init__(self, *, values: Mapping[str, object] | None = None,
                 gradient_fill: str | torch.Tensor | None = None, incremental: bool = True,
                 batch_size: int = 32, progress: bool = False, **settings: object) -> None:
        for name, value in (("values", {**(values or {}), **settings}),
                            ("gradient_fill", gradient_fill), ("incremental", incremental),
                            ("batch_size", batch_size), ("progress", progress)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("ExplainOptions is immutable: use replace()")

    def __reduce__(self) -> tuple[object, ...]:  # picklable (batch workers get a copy)
        return (_rebuild, (self._fields(),))

    def _fields(self) -> dict[str, object]:
        return {"values": dict(self.values), "gradient_fill": self.gradient_fill,
                "incremental": self.incremental, "batch_size": self.batch_size,
                "progress": self.progress}

    def replace(self, **changes: object) -> ExplainOptions:
        """A copy with run settings or method options changed."""
        fields = self._fields()
        values = dict(cast(dict[str, object], fields.pop("values")))
        for name, value in changes.items():
            if name in fields:
                fields[name] = value
            else:
                values[name] = value
        return _rebuild({**fields, "values": values})

    def get(self, option: MethodOption[T]) -> T:
        """The value of a method's option: given, or the option's default."""
        return cast(T, self.values.get(option.name, option.default))

    def value(self, name: str, default: object = None) -> object:
        """A method option's value by name (``default`` when it was not given)."""
        return self.values.get(name, default)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExplainOptions) and self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        given = ", ".join(f"{k}={v!r}" for k, v in self.values.items())
        return (f"ExplainOptions({given}{', ' if given else ''}progress={self.progress}, "
                f"batch_size={self.batch_size}, incremental={self.incremental})")


def _rebuild(fields: Mapping[str, object]) -> ExplainOptions:
    return ExplainOptions(**cast(dict[str, Any], fields))


Orientation = Literal["difference", "similarity", "magnitude"]


@dataclass(frozen=True)
class RankedMap:
    """A map the faithfulness benchmark orders pixels by, and how to read it.

    ``orientation`` 'difference': high where the faces differ (a Δ map); 'similarity': high
    where they are alike (reversed for difference curves); 'magnitude': unsigned, the same
    order for both curves (the classic |gradient| picture). ``suffix`` names the row
    (``method-suffix``; empty: the method's own name).
    """

    map: str
    orientation: Orientation = "difference"
    suffix: str = ""

    def row(self, method: str) -> str:
        return f"{method}-{self.suffix}" if self.suffix else method

    def ranking(self, maps: Mapping[str, torch.Tensor], kind: str) -> torch.Tensor:
        """The (2, H, W) order for a 'difference' or 'similarity' curve, highest first."""
        m = maps[self.map]
        if self.orientation == "magnitude":
            return m
        return m if (self.orientation == "difference") == (kind == "difference") else -m


Builder = Callable[["PairScorer", ExplainOptions], "Explainer"]
Checker = Callable[[ExplainOptions, "BackboneSpec"], None]
FigureHook = Callable[["ExplanationMaps", "torch.Tensor", Path], list["Figure"]]
NoteHook = Callable[["ExplanationMaps"], str]


def _no_check(options: ExplainOptions, spec: BackboneSpec) -> None:
    del options, spec


@dataclass(frozen=True)
class MethodInfo:
    """One explanation method, as the CLI, report, benchmarks and web app see it.

    ``build`` makes the explainer from the backbone's scorer (black-box methods use only its
    pair score, layer methods its model and nodes); ``check`` validates options against the
    backbone *before* any model loads (fail fast); ``rankings`` are the maps the
    faithfulness benchmark orders pixels by, one row each (empty: not ranked);
    ``figures``/``note`` add method-specific pictures and text to its report section;
    ``prepare`` makes a missing asset (a trained head); ``missing`` says, without making
    anything, what is still missing on a backbone (one line naming the command that makes it;
    None: ready), so a server can refuse up front; ``supports`` says whether the method
    can run on a backbone at all (``--method all`` skips it where not; None: everywhere);
    ``in_all`` False leaves a slow method out of ``--method all`` (it runs when named, and the
    benchmarks still rank it; ``facexplain methods`` and ``explain`` say so). ``options``:
    the settings it reads (``MethodOption``), from which the CLI flags, the web form and the
    API schema are made; ``check`` sees them after each was judged on its own.
    """

    name: str
    title: str
    family: Family
    description: str
    maps: tuple[MapSpec, ...]
    build: Builder
    check: Checker = _no_check
    rankings: tuple[RankedMap, ...] = (RankedMap("delta"),)
    pairwise: bool = False
    figures: FigureHook | None = None
    note: NoteHook | None = None
    prepare: Callable[[str, bool], None] | None = None
    missing: Callable[[str], str | None] | None = None
    supports: Callable[[BackboneSpec], bool] | None = None
    # the note says which photo carries the difference: the report prints it only where the
    # planted-difference game measured that the method names the altered photo (>= 0.8)
    names_face: bool = False
    in_all: bool = True
    options: tuple[MethodOption[Any], ...] = ()

    def map_spec(self, name: str) -> MapSpec | None:
        return next((m for m in self.maps if m.name == name), None)

    def validate(self, options: ExplainOptions, spec: BackboneSpec) -> None:
        """Each declared option's value on its own, then ``check`` (options against the
        backbone): one-line ``InvalidArgument`` errors, before any model loads."""
        for option in self.options:
            option.validate(options.get(option))
        self.check(options, spec)
