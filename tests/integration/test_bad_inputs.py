"""Hostile input through the real `facexplain` command: one line, a non-zero exit, no traceback.

Each case runs the installed console script in a subprocess (cwd the repo root, 60 s limit), as
a user would. The contract every error case checks:

- the exit status is non-zero (``FacexplainError.exit_code``: 2, or 3 for "no face found");
- stderr holds exactly one ``error: <message>`` line, and it is the last line. Lines starting
  with ``warning:`` may precede it (a multi-frame photo, a second face), because the CLI prints
  library warnings that way and hiding them would lose information; nothing else may appear;
- no ``Traceback`` in stdout or stderr; nothing that looks like a verdict on stdout;
- with ``--json``, stdout is one JSON object ``{"error": <message>, "code": <exit status>}``.

Argument errors (options, ``--out``, pair files) run against an *empty* ``FACEXPLAIN_HOME``:
they must be reported before any model file is looked at, so they name the argument, not the
missing model, and come back in seconds. Model-file cases run against copies of the real
assets under a temporary home (truncated, emptied, 16 bytes flipped), never the cache itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, SHARED_DATA, lfw_image

CLI = REPO / ".venv" / "bin" / "facexplain"
TIMEOUT_S = 60
FAIL_FAST_S = 15.0  # interpreter start-up and imports included, on a busy 2-core machine
REAL_HOME = Path(
    os.environ.get("FACEXPLAIN_HOME") or Path.home() / ".cache" / "facexplain"
).expanduser()
SFACE_INT8 = "sface/face_recognition_sface_2021dec_int8bq.onnx"
SFACE_FLOAT = "sface/sface_float.onnx"
MTCNN = ("mtcnn/pnet.pt", "mtcnn/rnet.pt", "mtcnn/onet.pt")
# the 68-point net a verdict's photo-quality check reads (pose, hidden parts)
LANDMARKS68 = ("landmarks68/face_landmark_68_model.bin",
               "landmarks68/face_landmark_68_model-weights_manifest.json")
DEFAULT_ASSETS = (SFACE_INT8, SFACE_FLOAT, *MTCNN, *LANDMARKS68)  # what the default backbone reads

GOOD = lfw_image("Aaron_Peirsol", 1)
SAME = lfw_image("Aaron_Peirsol", 2)
REAL_PAIRS = SHARED_DATA / "lfw" / "pairs.txt"
VERDICT_WORDS = re.compile(r"same person|different people|similarity", re.IGNORECASE)

pytestmark = pytest.mark.skipif(not CLI.exists(), reason=f"console script not installed: {CLI}")


@dataclass(frozen=True)
class Run:
    args: tuple[str, ...]
    code: int
    out: str
    err: str
    seconds: float

    def show(self) -> str:
        return (f"facexplain {' '.join(self.args)}\nexit {self.code} in {self.seconds:.1f} s\n"
                f"--- stdout\n{self.out[-2000:]}\n--- stderr\n{self.err[-3000:]}")


def run_cli(args: list[str | Path], home: Path | None = None) -> Run:
    """Run the real command; ``home`` becomes FACEXPLAIN_HOME (default: the real cache)."""
    env = dict(os.environ)
    env["FACEXPLAIN_HOME"] = str(home or REAL_HOME)
    env.pop("PYTHONWARNINGS", None)
    argv = [str(a) for a in args]
    start = time.monotonic()
    try:
        proc = subprocess.run([str(CLI), *argv], cwd=REPO, env=env, capture_output=True,
                              text=True, errors="replace", stdin=subprocess.DEVNULL,
                              timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"facexplain {' '.join(argv)} ran past {TIMEOUT_S} s (blocked?); "
                    f"stderr so far: {exc.stderr!r}")
    return Run(tuple(argv), proc.returncode, proc.stdout, proc.stderr,
               time.monotonic() - start)


def assert_one_line_error(run: Run, *needles: str, code: int | None = None) -> str:
    """The contract above; ``needles`` must appear (case-insensitively) in the error line."""
    assert run.code != 0, run.show()
    if code is not None:
        assert run.code == code, run.show()
    assert "Traceback" not in run.err and "Traceback" not in run.out, run.show()
    lines = [ln for ln in run.err.splitlines() if ln.strip()]
    assert lines, run.show()
    *before, last = lines
    assert last.startswith("error: ") and last[len("error: "):].strip(), run.show()
    assert all(ln.startswith("warning: ") for ln in before), run.show()
    assert not VERDICT_WORDS.search(run.out), run.show()
    for needle in needles:
        assert needle.lower() in last.lower(), f"{needle!r} not in the error line\n{run.show()}"
    return last


def assert_fail_fast(run: Run) -> None:
    """An argument error with an empty home: not the missing-model error, and quick."""
    last = [ln for ln in run.err.splitlines() if ln.strip()][-1]
    assert "setup" not in last.lower() and "model file" not in last.lower(), run.show()
    assert run.seconds < FAIL_FAST_S, run.show()


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture()
def empty_home(tmp_path: Path) -> Path:
    home = tmp_path / "empty-home"
    home.mkdir()
    return home


@pytest.fixture()
def model_home(tmp_path: Path) -> Iterator[Path]:
    """A private copy of the default backbone's model files, free to be damaged."""
    home = tmp_path / "home"
    for name in DEFAULT_ASSETS:
        src = REAL_HOME / name
        if not src.is_file():
            pytest.skip(f"model asset {src} not fetched (run the set-up)")
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, home / name)
    record = REAL_HOME / "derived.json"  # sha256 of files built at set-up (the float SFace)
    if record.is_file():
        shutil.copyfile(record, home / record.name)
    yield home


def png_claiming(width: int, height: int) -> bytes:
    """A 100-byte, well-formed PNG whose header claims ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def flip_bytes(path: Path, n: int = 16) -> None:
    """Invert ``n`` bytes in the middle of the file (where the weights are)."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid, mid + n):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# --- photos --------------------------------------------------------------------------------


def _bad_photo(kind: str, tmp: Path) -> Path:
    """Make one kind of bad photo under ``tmp``; returns the path to pass."""
    f = tmp / "photo.jpg"
    if kind == "missing":
        return tmp / "nope.jpg"
    if kind == "directory":
        d = tmp / "folder.jpg"
        d.mkdir()
        return d
    if kind == "empty":
        f.touch()
    elif kind == "dev-zero":
        return Path("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(f)
    elif kind == "truncated-jpeg":
        f.write_bytes(GOOD.read_bytes()[:3000])
    elif kind == "text-as-jpg":
        f.write_text("This is my holiday photo, honest.\n" * 30)
    elif kind == "random-bytes":
        f.write_bytes(np.random.default_rng(7).bytes(20_000))
    elif kind == "bomb-header":
        f = tmp / "bomb.png"
        f.write_bytes(png_claiming(100_000, 100_000))
    elif kind == "under-dev-null":
        return Path("/dev/null/photo.jpg")
    elif kind == "tiny-1x1":
        f = tmp / "dot.png"
        Image.new("RGB", (1, 1), (128, 100, 90)).save(f)
    elif kind == "nan-float-tiff":
        f = tmp / "nan.tif"
        Image.fromarray(np.full((64, 64), np.nan, np.float32)).save(f)
    else:
        raise AssertionError(kind)
    return f


PHOTO_CASES = {
    # kind: words the error line must contain
    "missing": ("no such file",),
    "directory": ("directory",),
    "empty": ("empty",),
    "dev-zero": ("not a regular file",),
    "fifo": ("not a regular file",),
    "truncated-jpeg": ("truncated or corrupt",),
    "text-as-jpg": ("not an image",),
    "random-bytes": (),
    "bomb-header": (),
    "under-dev-null": ("no such file",),
    "tiny-1x1": (),
    "nan-float-tiff": ("no finite pixel",),
}


@pytest.mark.parametrize("kind", list(PHOTO_CASES))
def test_bad_photo(kind: str, tmp_path: Path) -> None:
    bad = _bad_photo(kind, tmp_path)
    run = run_cli(["verify", GOOD, bad])
    line = assert_one_line_error(run, *PHOTO_CASES[kind])
    if kind not in ("dev-zero", "under-dev-null"):
        assert bad.name in line, run.show()  # the message says which photo


def test_photo_without_a_face(tmp_path: Path) -> None:
    """The first photo this time: both argument positions are checked."""
    wall = tmp_path / "grey-wall.png"
    Image.fromarray(np.full((240, 240, 3), 128, np.uint8)).save(wall)
    run = run_cli(["verify", wall, GOOD])
    assert_one_line_error(run, "no face", "grey-wall.png", code=3)


def test_a_failed_explain_leaves_no_empty_output_folder(tmp_path: Path) -> None:
    wall = tmp_path / "grey-wall.png"
    Image.fromarray(np.full((240, 240, 3), 128, np.uint8)).save(wall)
    out = tmp_path / "new" / "report"
    run = run_cli(["explain", GOOD, wall, "--out", out, "--method", "saliency"])
    assert_one_line_error(run, "no face", code=3)
    assert not out.exists() and not out.parent.exists()


def test_unreadable_photo(tmp_path: Path) -> None:
    f = tmp_path / "locked.jpg"
    shutil.copyfile(GOOD, f)
    f.chmod(0)
    if os.access(f, os.R_OK):
        pytest.skip("running as root: chmod 000 does not make the file unreadable")
    assert_one_line_error(run_cli(["verify", GOOD, f]), "permission denied")


def test_socket_as_photo(tmp_path: Path) -> None:
    path = tmp_path / "s.jpg"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        assert_one_line_error(run_cli(["verify", GOOD, path]), "not a regular file")


# --- photos that must work ------------------------------------------------------------------


def test_16bit_png_of_a_real_face_verifies(tmp_path: Path) -> None:
    gray8 = np.asarray(Image.open(SAME).convert("L")).astype(np.uint16)
    f = tmp_path / "face16.png"
    Image.fromarray(gray8 * 257).save(f)
    assert Image.open(f).mode == "I;16"
    run = run_cli(["verify", GOOD, f])
    assert run.code == 0, run.show()
    assert "SAME person" in run.out, run.show()


def test_multi_frame_gif_uses_first_frame_with_warning(tmp_path: Path) -> None:
    face = Image.open(SAME).convert("RGB")
    f = tmp_path / "anim.gif"
    face.save(f, save_all=True, append_images=[Image.new("RGB", face.size, (0, 0, 0))])
    run = run_cli(["verify", GOOD, f])
    assert run.code == 0, run.show()
    assert "SAME person" in run.out, run.show()
    assert re.search(r"^warning: .*frames; using the first", run.err, re.MULTILINE), run.show()
    assert "Traceback" not in run.err


# --- options (empty home: reported before any model file is looked at) ----------------------


OPTION_CASES: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "stride-1000": (["--stride", "1000"], ("stride",)),
    "stride-0": (["--stride", "0"], ("stride",)),
    "patch-0": (["--patch", "0"], ("patch",)),
    "patch-500": (["--patch", "500"], ("patch",)),
    "method-bogus": (["--method", "bogus"], ("bogus",)),
    "backbone-bogus": (["--backbone", "bogus"], ("bogus",)),
    "fill-bogus": (["--fill", "bogus"], ("bogus",)),
    "out-proc": (["--out", "/proc/facexplain-test"], ("/proc",)),
    "out-under-dev-null": (["--out", "/dev/null/x"], ("/dev/null",)),
}


@pytest.mark.parametrize("case", list(OPTION_CASES))
def test_bad_explain_option(case: str, empty_home: Path, tmp_path: Path) -> None:
    extra, needles = OPTION_CASES[case]
    if "--out" not in extra:
        extra = [*extra, "--out", str(tmp_path / "out")]
    run = run_cli(["explain", GOOD, SAME, *extra], home=empty_home)
    assert_one_line_error(run, *needles)
    assert_fail_fast(run)
    assert not Path("/proc/facexplain-test").exists()


def test_out_is_an_existing_file(empty_home: Path, tmp_path: Path) -> None:
    f = tmp_path / "report.html"
    f.write_text("<p>keep me</p>")
    run = run_cli(["explain", GOOD, SAME, "--out", f], home=empty_home)
    assert_one_line_error(run, str(f))
    assert_fail_fast(run)
    assert f.read_text() == "<p>keep me</p>"


def test_explain_missing_photo_before_models(empty_home: Path, tmp_path: Path) -> None:
    run = run_cli(["explain", tmp_path / "nope.jpg", SAME, "--out", tmp_path / "out"],
                  home=empty_home)
    assert_one_line_error(run, "no such file", "nope.jpg")
    assert_fail_fast(run)


@pytest.mark.parametrize("args", [
    ["explain", str(GOOD), str(SAME), "--patch", "abc"],
    ["verify", str(GOOD)],
    ["verify", str(GOOD), str(SAME), "--no-such-flag"],
], ids=["patch-not-int", "missing-argument", "unknown-flag"])
def test_usage_errors_are_one_line(args: list[str], empty_home: Path) -> None:
    run = run_cli(list(args), home=empty_home)
    assert_one_line_error(run)
    assert_fail_fast(run)


def test_unfreeze_on_a_backbone_that_cannot_be_cut_fails_before_training() -> None:
    """dlib-resnet is a hand-written module, not a graph: refused in one line, at once."""
    run = run_cli(["train", "parts", "--backbone", "dlib-resnet", "--unfreeze", "--split",
                   "half1"])
    assert_one_line_error(run, "dlib-resnet", "not a graph model")
    assert_fail_fast(run)


# --- pair files for `benchmark lfw --pairs` (empty home: checked before models) ------------


def _pairs(kind: str, tmp: Path) -> Path:
    f = tmp / "pairs.txt"
    if kind == "missing":
        return tmp / "no-pairs.txt"
    if kind == "directory":
        return tmp
    if kind == "empty":
        f.touch()
    elif kind == "bad-header":
        f.write_text("ten folds\nAaron_Peirsol\t1\t2\n")
    elif kind == "not-utf8":
        f.write_bytes(GOOD.read_bytes())
    elif kind == "one-fold":
        f.write_text("1\t1\nAaron_Peirsol\t1\t2\nAaron_Peirsol\t1\tDean_Barker\t1\n")
    elif kind == "bad-index":
        lines = REAL_PAIRS.read_text().splitlines()
        lines[5] = "Aaron_Peirsol\t0\t2"
        f.write_text("\n".join(lines) + "\n")
    elif kind == "fifo":
        os.mkfifo(f)
    else:
        raise AssertionError(kind)
    return f


PAIRS_CASES = {
    "missing": ("no such file",),
    "directory": ("directory",),
    "empty": ("empty",),
    "bad-header": ("header",),
    "not-utf8": ("utf-8",),
    "one-fold": ("1 fold", "10"),
    "bad-index": (":6:",),
    "fifo": ("not a regular file",),
}


@pytest.mark.parametrize("kind", list(PAIRS_CASES))
def test_bad_pairs_file(kind: str, empty_home: Path, tmp_path: Path) -> None:
    pairs = _pairs(kind, tmp_path)
    run = run_cli(["benchmark", "lfw", "--pairs", pairs, "--json", tmp_path / "r.json"],
                  home=empty_home)
    assert_one_line_error(run, *PAIRS_CASES[kind])
    assert_fail_fast(run)


# --- model files --------------------------------------------------------------------------


def test_empty_home_names_the_setup_command(empty_home: Path) -> None:
    run = run_cli(["verify", GOOD, SAME], home=empty_home)
    assert_one_line_error(run, "setup")


def _damage(home: Path, kind: str) -> None:
    if kind == "float-truncated":
        truncate(home / SFACE_FLOAT)
    elif kind == "float-zero-bytes":
        (home / SFACE_FLOAT).write_bytes(b"")
    elif kind == "float-16-bytes-flipped":
        flip_bytes(home / SFACE_FLOAT)
    elif kind == "float-deleted-int8-flipped":
        (home / SFACE_FLOAT).unlink()  # never rebuilt silently from a tampered source
        flip_bytes(home / SFACE_INT8)
    elif kind == "float-is-a-directory":
        (home / SFACE_FLOAT).unlink()
        (home / SFACE_FLOAT).mkdir()
    elif kind == "mtcnn-truncated":
        truncate(home / "mtcnn/pnet.pt")
    elif kind == "mtcnn-16-bytes-flipped":
        flip_bytes(home / "mtcnn/onet.pt")
    else:
        raise AssertionError(kind)


MODEL_CASES = {  # kind: a file the error line must name
    "float-truncated": "sface_float.onnx",
    "float-zero-bytes": "sface_float.onnx",
    "float-16-bytes-flipped": "sface_float.onnx",
    "float-deleted-int8-flipped": "sface",
    "float-is-a-directory": "sface_float.onnx",
    "mtcnn-truncated": "pnet.pt",
    "mtcnn-16-bytes-flipped": "onet.pt",
}


@pytest.mark.parametrize("kind", list(MODEL_CASES))
def test_damaged_model_file_is_refused(kind: str, model_home: Path) -> None:
    _damage(model_home, kind)
    run = run_cli(["verify", GOOD, SAME], home=model_home)
    line = assert_one_line_error(run, MODEL_CASES[kind])
    assert "setup" in line.lower(), run.show()  # says how to repair it


def test_intact_copy_still_verifies(model_home: Path) -> None:
    """The model-file cases above fail for the damage, not for the copying."""
    run = run_cli(["verify", GOOD, SAME], home=model_home)
    assert run.code == 0 and "SAME person" in run.out, run.show()


# --- --json --------------------------------------------------------------------------------


def _json_error(run: Run) -> dict[str, object]:
    assert run.code != 0, run.show()
    assert "Traceback" not in run.err + run.out, run.show()
    try:
        obj = json.loads(run.out)
    except json.JSONDecodeError:
        pytest.fail(f"stdout is not one JSON object\n{run.show()}")
    assert isinstance(obj, dict) and set(obj) == {"error", "code"}, run.show()
    assert isinstance(obj["error"], str) and obj["error"].strip(), run.show()
    assert "\n" not in obj["error"], run.show()
    assert obj["code"] == run.code, run.show()
    return obj


def test_json_missing_photo(tmp_path: Path) -> None:
    obj = _json_error(run_cli(["verify", "--json", GOOD, tmp_path / "nope.jpg"]))
    assert "no such file" in str(obj["error"]) and obj["code"] == 2


def test_json_no_face(tmp_path: Path) -> None:
    wall = tmp_path / "wall.png"
    Image.fromarray(np.full((200, 200, 3), 90, np.uint8)).save(wall)
    obj = _json_error(run_cli(["verify", "--json", GOOD, wall]))
    assert obj["code"] == 3


def test_json_missing_models(empty_home: Path) -> None:
    obj = _json_error(run_cli(["verify", "--json", GOOD, SAME], home=empty_home))
    assert "setup" in str(obj["error"]).lower()
