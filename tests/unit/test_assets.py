"""Model-file integrity at load, on copies of the real asset files under a temporary home.

A damaged model file once answered "same person: 1.0000" silently; these check that every way
of damaging one (missing, truncated, empty, 16 bytes flipped, changed after a good load, a
derived file altered or never recorded) is refused before anything is computed with it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from facexplain import asset_catalog, assets
from facexplain.backbones import registry
from facexplain.backbones.builtin import mobileface, sface
from facexplain.errors import AssetCorrupt, AssetMissing

REAL_HOME = Path(os.environ.get("FACEXPLAIN_HOME", Path.home() / ".cache" / "facexplain"))
SMALL = "mobileface"  # the smallest backbone: two files, 2 MB
BIN = mobileface.WEIGHTS.name


def _copy(names: tuple[str, ...], home: Path) -> None:
    for name in names:
        src = REAL_HOME / name
        if not src.is_file():
            pytest.skip(f"asset {name} missing; run {assets.SETUP_COMMAND}")
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, home / name)


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary FACEXPLAIN_HOME holding copies of mobileface's files."""
    monkeypatch.setenv("FACEXPLAIN_HOME", str(tmp_path))
    _copy(registry.get_spec(SMALL).asset_names, tmp_path)
    return tmp_path


@pytest.fixture()
def no_compute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to build a model from the files fails the test."""
    def refuse(spec: object) -> object:
        raise AssertionError("a model was built from an unverified file")
    monkeypatch.setattr(registry, "_loader", refuse)


def _flip16(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 16] = bytes(b ^ 0xFF for b in data[mid:mid + 16])
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _one_line_naming_setup(err: pytest.ExceptionInfo[Exception]) -> None:
    message = str(err.value)
    assert "\n" not in message and "make setup" in message


@pytest.mark.parametrize("damage", [_flip16, _truncate, _empty], ids=["flip16", "trunc", "zero"])
def test_damaged_file_is_refused_before_use(home: Path, no_compute: None,
                                            damage: Callable[[Path], None]) -> None:
    damage(home / BIN)
    with pytest.raises(AssetCorrupt) as err:
        registry.load_backbone(SMALL)
    _one_line_naming_setup(err)
    assert BIN in str(err.value)


def test_cache_does_not_let_a_file_changed_after_a_good_load_through(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry.load_backbone(SMALL)  # good load: the check is cached
    calls: list[Path] = []
    real = assets.sha256_of
    monkeypatch.setattr(assets, "sha256_of", lambda p: calls.append(p) or real(p))
    assets.asset_path(mobileface.WEIGHTS)
    assert calls == []  # the second check costs a stat, not a hash
    path = home / BIN
    before = path.stat()
    _flip16(path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # even with the mtime restored
    with pytest.raises(AssetCorrupt):
        assets.asset_path(mobileface.WEIGHTS)
    assert calls == [path]


def test_missing_file_and_unrecorded_derived_file(home: Path, no_compute: None) -> None:
    (home / BIN).unlink()
    with pytest.raises(AssetMissing) as missing:
        registry.load_backbone(SMALL)
    _one_line_naming_setup(missing)
    # A derived file present but never recorded (built by hand, or by an old set-up): refused.
    (home / "sface").mkdir()
    (home / sface.FLOAT_NAME).write_bytes(b"not a verified model")
    with pytest.raises(AssetCorrupt) as unrecorded:
        registry.load_backbone("sface")
    _one_line_naming_setup(unrecorded)


@pytest.fixture()
def sface_home(home: Path) -> Path:
    _copy((sface.INT8_NAME,), home)
    sface.build_float_model(home)
    return home


@pytest.mark.parametrize("damage", [_flip16, _truncate], ids=["flip16", "trunc"])
def test_derived_file_is_recorded_by_its_builder_and_checked(
        sface_home: Path, damage: Callable[[Path], None]) -> None:
    path = assets.asset_path(sface.FLOAT_NAME)  # the builder recorded its sha256
    assert assets.sha256_of(path) in (sface_home / assets.DERIVED_RECORD).read_text()
    damage(path)
    with pytest.raises(AssetCorrupt) as err:
        registry.load_backbone("sface")
    _one_line_naming_setup(err)


def test_setup_rebuilds_a_damaged_derived_file_and_refetches_a_damaged_one(
        sface_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every fetched asset present (copies of the real ones), archives shared: no network.
    _copy(tuple(f.name for f in asset_catalog.fetched_files()
                if not (sface_home / f.name).is_file()), sface_home)
    (sface_home / "_downloads").symlink_to(REAL_HOME / "_downloads")
    _flip16(sface_home / sface.FLOAT_NAME)
    _truncate(sface_home / BIN)
    logged: list[str] = []
    asset_catalog.fetch_all(sface_home, log=logged.append)
    assert any(BIN in line for line in logged)
    assert any(sface.FLOAT_NAME in line for line in logged)
    for file in asset_catalog.fetched_files():
        assets.asset_path(file)
    for derived in asset_catalog.derived_files():
        assets.asset_path(derived.name)
    logged.clear()
    asset_catalog.fetch_all(sface_home, log=logged.append)  # idempotent: nothing to do now
    assert logged == []
