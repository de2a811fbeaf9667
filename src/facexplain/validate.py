"""Checks that front ends run on user arguments *before* any model loads.

Bad input should cost a second, not a minute of model loading and occlusion work followed by a
traceback. Each helper raises a ``FacexplainError`` with a one-line message, or returns the
checked path. ``open_regular`` is shared with ``io.load_image`` and the pairs-file reader so the
photo, pair-list and argument checks say the same thing about the same file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO

from facexplain.errors import (
    FacexplainError,
    ImageDecodeError,
    InputNotFound,
    InvalidArgument,
)

# Pseudo-filesystems where results can never be written (writes there fail or do harm).
_SYSTEM_ROOTS = (Path("/proc"), Path("/sys"))

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def open_regular(
    path: str | Path, what: str = "photo", error: type[FacexplainError] = ImageDecodeError
) -> BinaryIO:
    """Open ``path`` for binary reading, refusing anything but a non-empty regular file.

    The type is checked with ``stat`` before opening, so a FIFO or device is never opened (a
    FIFO open or read would block, /dev/zero would never end); the open itself is non-blocking
    and re-checked with ``fstat`` in case the path changed in between. Missing paths raise
    ``InputNotFound``; every other problem raises ``error``.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except (FileNotFoundError, NotADirectoryError):
        raise InputNotFound(f"{what} {p}: no such file") from None
    except PermissionError:
        raise error(f"{what} {p}: permission denied") from None
    except OSError as exc:
        raise error(f"{what} {p}: cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} {p} is {_kind(st.st_mode)}, not a regular file")
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputNotFound(f"{what} {p}: no such file") from None
    except PermissionError:
        raise error(f"{what} {p}: permission denied (not readable)") from None
    except OSError as exc:
        raise error(f"{what} {p}: cannot be read ({exc.strerror or exc})") from None
    fh = os.fdopen(fd, "rb")
    try:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{what} {p} is {_kind(st.st_mode)}, not a regular file")
        if st.st_size == 0:
            raise error(f"{what} {p} is an empty file (0 bytes)")
    except BaseException:
        fh.close()
        raise
    return fh


def readable_file(
    path: str | Path, what: str = "photo", error: type[FacexplainError] = ImageDecodeError
) -> Path:
    """Check that ``path`` exists and is a readable, non-empty regular file; return it.

    Raises ``InputNotFound`` when missing, else ``error`` (``ImageDecodeError`` for photos, as
    ``io.load_image`` does), naming ``what`` the file is for in the message.
    """
    with open_regular(path, what, error):
        pass
    return Path(path)


def output_dir(path: str | Path, what: str = "output directory") -> Path:
    """Make sure results can be written under ``path``: create it and prove it writable.

    Refuses an existing non-directory, a path under a file (``/dev/null/x``), anything under
    /proc or /sys, and a directory where a probe file cannot be created (the probe is removed).
    Directories created here are removed again when the check fails. Raises ``InvalidArgument``.
    """
    p = Path(path)
    absolute = Path(os.path.abspath(p))
    for root in _SYSTEM_ROOTS:
        if absolute == root or root in absolute.parents:
            raise InvalidArgument(f"{what} {p} is under {root}, where results cannot be written")
    if p.exists() and not p.is_dir():
        raise InvalidArgument(f"{what} {p} is an existing file, not a directory")
    missing: list[Path] = []
    for parent in (absolute, *absolute.parents):
        if parent.is_dir():
            break
        if parent.exists() or parent.is_symlink():
            raise InvalidArgument(f"{what} {p} is under {parent}, which is not a directory")
        missing.append(parent)
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".facexplain-probe-", dir=p)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        for created in missing:  # deepest first
            try:
                created.rmdir()
            except FileNotFoundError:
                continue
            except OSError:
                break
        reason = exc.strerror or str(exc)
        raise InvalidArgument(f"{what} {p} is not writable ({reason})") from None
    return p
