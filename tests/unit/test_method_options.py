"""Options owned by their method: declared on ``MethodInfo``, merged by name in the registry,
judged with one-line errors, stored with a web job, and offered as CLI flags."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facexplain.api import resolve_methods
from facexplain.backbones.registry import get_spec
from facexplain.errors import InvalidArgument
from facexplain.method_info import ExplainOptions, MapSpec, MethodInfo, MethodOption
from facexplain.methods import registry

GAIN: MethodOption[float] = MethodOption("gain", float, 1.0, "Gain of the toy.", minimum=0.0,
                                         maximum=10.0, web=True)


def toy(name: str, *options: MethodOption[Any]) -> MethodInfo:
    return MethodInfo(name=name, title=name, family="black-box", description="a toy",
                      maps=(MapSpec("delta", "Δ"),), build=lambda scorer, opts: None,  # type: ignore[arg-type, return-value]
                      options=options)


@pytest.fixture
def cleanup() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        registry.unregister_method(name)


def test_every_builtin_setting_is_declared_by_the_methods_that_read_it() -> None:
    options = registry.all_options()
    for name in ("patch", "stride", "fill", "attention", "approx", "samples", "seed",
                 "threshold", "ig_steps", "xface_patches", "xface_stride"):
        assert name in options, name
    assert registry.options_of("patch") == ("occlusion", "occlusion-per-face",
                                            "substitution-per-face")
    assert set(registry.options_of("fill")) == {"occlusion", "occlusion-per-face", "ig", "lime"}
    assert set(registry.options_of("seed")) == {"corrrise", "rise", "lime"}


def test_options_shared_by_name_are_merged(cleanup: list[str]) -> None:
    cleanup += ["toy-a", "toy-b"]
    registry.register_method(toy("toy-a", GAIN))
    same = MethodOption("gain", float, 1.0, "Other words, same meaning.", minimum=0.0,
                        maximum=10.0, web=True)
    registry.register_method(toy("toy-b", same))
    assert list(registry.all_options()).count("gain") == 1
    assert registry.all_options()["gain"].help == "Gain of the toy."  # the first declaration
    assert registry.options_of("gain") == ("toy-a", "toy-b")


def test_an_option_unlike_another_methods_option_of_that_name_is_refused(
        cleanup: list[str]) -> None:
    cleanup.append("toy-c")
    clash = MethodOption("patch", int, 32, "A bigger patch.")
    with pytest.raises(InvalidArgument, match=r"option 'patch' \(int, default 32\) unlike "
                       r"method 'occlusion' \(int, default 16\)"):
        registry.register_method(toy("toy-c", clash))
    assert "toy-c" not in registry.all_methods()
    with pytest.raises(InvalidArgument, match="Python identifier"):
        registry.register_method(toy("toy-c", MethodOption("my-gain", float, 1.0, "")))
    with pytest.raises(InvalidArgument, match="Python identifier"):
        registry.register_method(toy("toy-c", MethodOption("progress", bool, False, "")))
    with pytest.raises(InvalidArgument, match="options are int, float, str, bool"):
        registry.register_method(toy("toy-c", MethodOption("gains", list, None, "")))


@pytest.mark.parametrize(("options", "methods", "message"), [
    (ExplainOptions(samples=2), "rise", "--samples must be at least 3, got 2"),
    (ExplainOptions(seed=-1), "lime", "--seed must be non-negative, got -1"),
    (ExplainOptions(patch=0), "occlusion", "--patch must be positive, got 0"),
    (ExplainOptions(patch="16"), "occlusion", "--patch must be an integer, got '16'"),
    (ExplainOptions(approx=1), "occlusion", "--approx must be true or false, got 1"),
    (ExplainOptions(fill="pink"), "ig", "unknown fill 'pink'"),
    (ExplainOptions(attention="Q"), "xcos", "unknown xCos attention 'Q'"),
    (ExplainOptions(threshold=float("nan")), "xssab", "must be a finite number"),
    (ExplainOptions(xface_patches=(7, "x")), "xface-occlusion",
     "--xface-patches must be comma-separated integers"),
    (ExplainOptions(pach=16), "occlusion", "unknown method option 'pach'"),
])
def test_bad_values_are_one_line_errors_before_any_model(options: ExplainOptions,
                                                         methods: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        resolve_methods(methods, options, get_spec("sface"))
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_a_method_only_judges_its_own_options() -> None:
    # occlusion does not read --samples: the value is not its business
    assert resolve_methods("occlusion", ExplainOptions(samples=2), get_spec("sface"))


def test_parse_reads_text_as_the_declared_type() -> None:
    assert GAIN.parse(" 2.5 ") == 2.5
    with pytest.raises(InvalidArgument, match="--gain must be a number, got 'loud'"):
        GAIN.parse("loud")
    with pytest.raises(InvalidArgument, match="--gain must be at most 10, got 11"):
        GAIN.parse("11")
    patches: MethodOption[tuple[int, ...] | None] = MethodOption("xface_patches", tuple, None,
                                                                 "")
    assert patches.parse("7,14") == (7, 14) and patches.parse("") is None
    flag: MethodOption[bool] = MethodOption("approx", bool, False, "")
    assert flag.parse("true") is True and flag.parse("off") is False
    kinds: MethodOption[str] = MethodOption("kind", str, "a", "", choices=("a", "b"))
    with pytest.raises(InvalidArgument, match="--kind must be one of a, b, got 'c'"):
        kinds.parse("c")


def test_explain_options_read_defaults_and_survive_pickle() -> None:
    from facexplain.methods._options import PATCH, SAMPLES

    opts = ExplainOptions(patch=32, progress=True)
    assert opts.get(PATCH) == 32 and opts.get(SAMPLES) is None
    assert opts.value("stride", 8) == 8
    assert pickle.loads(pickle.dumps(opts)) == opts
    changed = opts.replace(stride=4, batch_size=8)
    assert changed.values == {"patch": 32, "stride": 4} and changed.batch_size == 8
    assert changed.progress and opts.values == {"patch": 32}
    with pytest.raises(AttributeError):
        opts.progress = False


def test_a_web_job_keeps_its_options_across_a_restart() -> None:
    from facexplain.web.job_model import ExplainRequest

    req = ExplainRequest(Path("a.jpg"), Path("b.jpg"), "sface", ("occlusion",),
                         ExplainOptions(patch=32, stride=16, xface_patches=(7, 14), gain=2.5))
    again = ExplainRequest.from_json(req.to_json())
    assert again.options == req.options
    old = {**req.to_json(), "patch": 24, "stride": 12}  # a job stored by an earlier version
    del old["options"]
    assert ExplainRequest.from_json(old).options.values == {"patch": 24, "stride": 12}


def test_the_cli_offers_every_option_as_a_flag(cleanup: list[str]) -> None:
    import inspect

    from facexplain.cli.method_options import with_method_options

    cleanup.append("toy-d")
    registry.register_method(toy("toy-d", GAIN))
    seen: dict[str, object] = {}

    def toy_command(out: str = "x", method_options: dict[str, object] | None = None) -> None:
        seen.update(method_options or {})

    command = with_method_options(toy_command)
    params = inspect.signature(command).parameters
    assert {"out", "gain", "patch", "xface_patches"} <= set(params)
    assert "method_options" not in params
    command(out="y", gain=3.0, patch=16, xface_patches="7,14")
    assert seen == {"gain": 3.0, "patch": 16, "xface_patches": (7, 14)}
