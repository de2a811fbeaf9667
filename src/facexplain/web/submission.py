"""Accepting one explanation request, shared by the form (``/api/explain``) and the JSON API.

Why one place: every refusal must happen in the same order and leave nothing behind. The
queue's capacity is checked first (429 before a byte is kept; ``admission.Admission`` checks it
once more before the body is read), then the cheap checks (backbone, methods, the occlusion's
patch and stride bounds, each method's options), then the photos are decoded with their limits
and under the app's decode gate; the job's folder exists only from that point and is removed
again on any refusal.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import UploadFile

from facexplain import settings
from facexplain.backbones.registry import get_spec
from facexplain.datasets.lfw import LfwPair
from facexplain.errors import InvalidArgument
from facexplain.method_info import ExplainOptions, MethodInfo
from facexplain.methods.registry import all_options
from facexplain.types import VerdictOptions
from facexplain.web.job_model import ExplainRequest, Job, new_job_id
from facexplain.web.jobs import ExplainQueue
from facexplain.web.uploads import PhotoLimits, store_upload

NAMES = ("the first photo", "the second photo")


@dataclass(frozen=True)
class Submission:
    """What a client sent: two uploads or an LFW pair index, and what to run."""

    backbone: str
    methods: str  # '' : verify only
    # the methods' web options by name (``web.method_form``); absent ones take their default
    options: Mapping[str, object] = field(default_factory=dict)
    lfw_pair: int | None = None
    photos: tuple[UploadFile, UploadFile] | None = None
    keep_uploads: bool = False
    verdict: VerdictOptions = VerdictOptions()  # as ``verify`` takes them (max_error, ...)
    owner: str | None = None  # the caller's API key hash: the job is theirs (``web.access``)


def check_windows(patch: int, stride: int, size: int, max_windows: int) -> None:
    """Occlusion sizes a web worker can afford: each within the face crop, and at most
    ``max_windows`` occluder positions (``patch=1, stride=1`` on 112 px would be 12,544)."""
    for name, value in (("patch", patch), ("stride", stride)):
        if not 1 <= value <= size:
            raise InvalidArgument(f"{name} must be between 1 and {size} pixels, got {value}")
    per_side = max(0, (size - patch) // stride + 1)
    if per_side * per_side > max_windows:
        raise InvalidArgument(
            f"patch {patch} with stride {stride} means {per_side * per_side} occluder "
            f"positions, over this server's limit of {max_windows}; use a larger stride "
            "(or the command line for a fine map)")


async def accept(sub: Submission, jobs: ExplainQueue, pairs: list[LfwPair],
                 limits: PhotoLimits, max_windows: int) -> Job:
    """Queue ``sub`` as a job, or refuse it with nothing of it left on disk."""
    from facexplain.api import resolve_methods

    jobs.check_capacity()
    spec = get_spec(sub.backbone)
    sub.verdict.check()
    options = ExplainOptions(values=sub.options)
    infos: tuple[MethodInfo, ...] = ()
    if sub.methods.strip():
        defaults = all_options()
        patch, stride = (options.value(n, defaults[n].default) for n in ("patch", "stride"))
        check_windows(int(str(patch)), int(str(stride)), spec.input_size, max_windows)
        infos = resolve_methods(sub.methods, options, spec)
    if sub.photos is None and sub.lfw_pair is None:
        raise InvalidArgument("give two photos or pick an LFW pair")
    job_id = new_job_id()
    out_dir = jobs.work_dir / job_id
    out_dir.mkdir()
    try:
        started = time.perf_counter()
        request = await _request(sub, out_dir, pairs, limits, options,
                                 tuple(i.name for i in infos))
        decode = time.perf_counter() - started
        return jobs.submit(Job(job_id, request, out_dir, timings={"decode": decode},
                               owner=sub.owner))
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise


async def _request(sub: Submission, out_dir: Path, pairs: list[LfwPair], limits: PhotoLimits,
                   options: ExplainOptions, methods: tuple[str, ...]) -> ExplainRequest:
    if sub.photos is not None:
        paths = []
        for upload, which, slot in zip(sub.photos, NAMES, "ab", strict=True):
            paths.append(await store_upload(upload, limits, out_dir / f"upload_{slot}", which))
        names = tuple(Path(u.filename or w).name for u, w in zip(sub.photos, NAMES, strict=True))
        return ExplainRequest(paths[0], paths[1], sub.backbone, methods, options,
                              f"{names[0]} vs {names[1]}", (names[0], names[1]),
                              uploaded=not sub.keep_uploads, verdict=sub.verdict)
    assert sub.lfw_pair is not None
    if not 0 <= sub.lfw_pair < len(pairs):
        raise InvalidArgument(f"the LFW pair must be a number from 0 to {len(pairs) - 1}"
                              if pairs else "LFW is not installed on this server")
    images = settings.current().lfw_images
    a, b = pairs[sub.lfw_pair].path_a(images), pairs[sub.lfw_pair].path_b(images)
    return ExplainRequest(a, b, sub.backbone, methods, options, f"LFW {a.stem} vs {b.stem}",
                          (f"LFW {a.parent.name}/{a.name}", f"LFW {b.parent.name}/{b.name}"),
                          verdict=sub.verdict)
