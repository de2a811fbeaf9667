"""Incremental re-evaluation of a backbone for occlusion: recompute only what a patch reaches.

Hiding a k x k patch changes the first layers' maps only near the patch. The backbone is split
into stages (``FaceModel.stages``); the geometry of each spatially local stage (output row j
reads input rows j·S + lo .. j·S + hi) is measured once by perturbing input rows and columns.
For a batch of occluded faces each local stage then runs on crops around the changed region
only (the crop wide enough that its own border cannot reach the kept outputs), the new values
are pasted into the clean map, and once the changed region covers most of a map the rest of
the network runs on whole maps as usual. The embeddings are those of a full forward up to
floating-point summation order (Captum's full re-evaluation agrees to ~1e-7 in the tests).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from facexplain.backbones.base import FaceModel, Stage
from facexplain.progress import check_in
from facexplain.scoring import cosine

# Past this fraction of a map's area the crop saves too little: run whole maps from there on.
FULL_MAP_FRACTION = 0.8
Window = tuple[int, int, int, int]  # y0, y1, x0, x1 (end-exclusive) in input pixels
# A probe's change counts above this fraction of the stage output's magnitude.
NOISE = 1e-6


@dataclass(frozen=True)
class Axis:
    """One spatial axis of a local stage: output index j reads inputs j·stride + lo .. + hi."""

    stride: int
    lo: int
    hi: int

    def then(self, nxt: Axis) -> Axis:
        """Geometry of this stage followed by ``nxt`` (both relative to their own inputs)."""
        return Axis(self.stride * nxt.stride, self.lo + nxt.lo * self.stride,
                    self.hi + nxt.hi * self.stride)

    @property
    def pointwise(self) -> bool:
        return self.stride == 1 and self.lo == 0 and self.hi == 0


# Stage geometry per input shape (C, H, W): a property of the architecture, measured once per
# model; the owner (``PairScorer.geometry``) keeps it, so no module state is involved.
Geometry = dict[tuple[int, ...], list[tuple[Axis, Axis] | None]]
# Which crop sizes a level computes like the whole map (``IncrementalEmbedder._crop_agrees``),
# per input shape: also a property of the architecture, kept by the same owner.
CropChecks = dict[tuple[int | bool, ...], bool]


def _changed_span(changed: torch.Tensor) -> tuple[int, int] | None:
    idx = torch.nonzero(changed).flatten()
    if idx.numel() == 0 or int(idx[-1] - idx[0]) + 1 != idx.numel():
        return None  # nothing or a non-contiguous set changed: not a local stage
    return int(idx[0]), int(idx[-1])


def _probe_positions(n_in: int, n_out: int) -> tuple[int, list[int]]:
    stride = 2 ** max(round(math.log2(n_in / n_out)), 0)
    middle = n_in // 2
    return stride, [p for p in range(middle - stride, middle + stride + 1) if 0 <= p < n_in]


def probe_stage(stage: Stage, x: torch.Tensor, y: torch.Tensor) -> tuple[Axis, Axis] | None:
    """Measure a stage's geometry (rows, columns) by perturbing whole input rows and columns.

    Large values of both signs are added so that ReLUs and max-pools cannot hide the change.
    The unperturbed input rides in the same batch as the reference, and only changes above
    float noise count (kernels may round differently for another batch size). The geometry is
    checked against every probed position; None if the stage is not local (or not 4-D).
    """
    if y.dim() != 4:
        return None
    probes = [(dim, sign, p) for dim in (2, 3)
              for sign in (1.0, -1.0) for p in _probe_positions(x.shape[dim], y.shape[dim])[1]]
    big = 10.0 * (float(x.abs().max()) + 1.0)
    batch = x.repeat(len(probes) + 1, 1, 1, 1)
    for b, (dim, sign, p) in enumerate(probes):
        batch.narrow(0, b + 1, 1).narrow(dim, p, 1).add_(sign * big)
    out = stage(batch)
    if out.shape[1:] != y.shape[1:]:
        return None
    noise = NOISE * (float(out[0].abs().max()) + 1.0)
    changed = (out[1:] - out[:1]).abs() > noise
    axes = []
    for dim in (2, 3):
        across = 1 if dim == 2 else 0  # of the (H, W) change mask: the axis not probed
        spans: dict[int, tuple[int, int]] = {}
        for b, (d, _, p) in enumerate(probes):
            if d != dim:
                continue
            span = _changed_span(changed[b].any(dim=0).any(dim=across))
            if span is None:
                return None
            prev = spans.get(p, span)
            spans[p] = (min(span[0], prev[0]), max(span[1], prev[1]))
        axis = _fit_axis(spans, x.shape[dim], y.shape[dim])
        if axis is None:
            return None
        axes.append(axis)
    return axes[0], axes[1]


def _fit_axis(spans: dict[int, tuple[int, int]], n_in: int, n_out: int) -> Axis | None:
    """The geometry that explains which outputs each probed input position changed."""
    stride, _ = _probe_positions(n_in, n_out)
    lo = min(p - last * stride for p, (_, last) in spans.items())
    hi = max(p - first * stride for p, (first, _) in spans.items())
    axis = Axis(stride, lo, hi)
    if any(_affected(axis, p, p, n_out) != span for p, span in spans.items()):
        return None
    return axis


def _affected(axis: Axis, first: int, last: int, n_out: int) -> tuple[int, int]:
    """Output indices whose input span meets inputs first..last (inclusive), clipped."""
    a = -((axis.hi - first) // axis.stride)  # ceil((first - hi) / stride)
    b = (last - axis.lo) // axis.stride
    return max(a, 0), min(b, n_out - 1)


@dataclass(frozen=True)
class _Group:
    """Consecutive local stages run as one, with their composed geometry."""

    stages: tuple[Stage, ...]
    y: Axis
    x: Axis

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            t = stage(t)
        return t


def _gather(t: torch.Tensor, b: Sequence[int], ys: Sequence[int], xs: Sequence[int], h: int,
            w: int) -> torch.Tensor:
    """(M, C, h, w) windows of ``t`` (channels-last): window i is sample b[i] from row ys[i],
    col xs[i]. One slice copy per window: 2-3x faster than one advanced-indexing gather."""
    out = torch.empty((len(b), t.shape[1], h, w), dtype=t.dtype, device=t.device,
                      memory_format=torch.channels_last)
    for i, (src, y, x) in enumerate(zip(b, ys, xs, strict=True)):
        out[i] = t[src, :, y : y + h, x : x + w]
    return out


def _paste(t: torch.Tensor, values: torch.Tensor, ys: Sequence[int], xs: Sequence[int]) -> None:
    """Write (M, C, h, w) ``values`` into (M, C, H, W) ``t`` at per-window rows/cols."""
    h, w = values.shape[2:]
    for i, (y, x) in enumerate(zip(ys, xs, strict=True)):
        t[i, :, y : y + h, x : x + w] = values[i]


def _crop_axis(axis: Axis, starts: np.ndarray, size: int, n_in: int, n_out: int,
               cap: float | None = None) -> tuple[np.ndarray, int, np.ndarray, int] | None:
    """Per-window output region and input crop along one axis, all windows the same size.

    Returns (out starts, out size, crop starts, crop size), or None when the crop would be
    the whole input. Crop starts are multiples of the stride and the crop size is congruent
    to the input size modulo it, so every layer inside sees the same grid (and 'SAME' pads)
    as on the whole map; a crop side inside the map lies beyond every kept output's inputs.
    ``cap`` (approximate mode, Krypton's projective-field threshold τ) keeps at most τ of the
    output side around the middle of each changed span; outputs beyond it keep their clean
    values although the patch reaches them.
    """
    s = axis.stride
    spans = [_affected(axis, int(a), int(a) + size - 1, n_out) for a in starts]
    out_size = max(b - a + 1 for a, b in spans)
    if cap is not None and out_size > max(1, math.ceil(cap * n_out)):
        out_size = max(1, math.ceil(cap * n_out))
        spans = [(a + max(b - a + 1 - out_size, 0) // 2, b) for a, b in spans]
    out_starts = np.array([min(a, n_out - out_size) for a, _ in spans])
    need_lo = np.maximum(np.minimum(out_starts * s + axis.lo, starts), 0)
    need_hi = np.minimum(np.maximum((out_starts + out_size - 1) * s + axis.hi,
                                    starts + size - 1), n_in - 1)
    crop_starts = (need_lo // s) * s
    crop = int((need_hi - crop_starts + 1).max())
    crop += (n_in - crop) % s
    if crop >= n_in:
        return None
    crop_starts = np.minimum(crop_starts, n_in - crop)
    return out_starts, out_size, crop_starts, crop


def _border_classes(py: np.ndarray, crop_y: int, h: int, px: np.ndarray, crop_x: int, w: int
                    ) -> list[int]:
    """One window per kind of crop: which sides of the map (top, bottom, left, right) it
    touches. Only there can a crop's padding differ from the map's."""
    kinds = np.stack([py == 0, py + crop_y == h, px == 0, px + crop_x == w], axis=1)
    _, first = np.unique(kinds, axis=0, return_index=True)
    return [int(i) for i in first]


class IncrementalEmbedder:
    """Embeddings of K faces under many local changes, recomputing only what they reach.

    The K faces (one face, or both faces of a pair) run through every stage as one batch, so
    the crops, the bookkeeping and each stage call are shared: the same windows are changed
    in each face, and the stage geometry does not depend on the face.
    """

    def __init__(self, model: FaceModel, faces: torch.Tensor, known: Geometry | None = None,
                 cap: float | None = None, checked: CropChecks | None = None) -> None:
        """``faces``: (K, 3, H, W) clean inputs. ``known`` holds stage geometry measured before
        for this model (filled in here when missing), so it is measured once per owner.
        ``cap``: approximate mode (see ``_crop_axis``); None is exact. ``checked``: crop checks
        made before for this model (filled in here), so each is made once per owner."""
        self.cap = cap
        stages = model.stages()
        known = {} if known is None else known
        geometry = known.get(tuple(faces.shape[1:]))
        measured: list[tuple[Axis, Axis] | None] = []
        with torch.inference_mode():
            groups: list[_Group] = []
            maps = [faces]
            t = faces
            self._rest = stages[-1:]
            for i, stage in enumerate(stages[:-1]):
                if geometry is None:  # first use: seconds of probing, a point to stop at each
                    check_in("measuring which pixels each layer sees (once per model)")
                out = stage(t)
                axes = geometry[i] if geometry is not None else probe_stage(stage, t[:1],
                                                                              out[:1])
                measured.append(axes)
                if axes is None:
                    self._rest = stages[i:]
                    break
                y, x = axes
                last = groups[-1] if groups else None
                if last is not None and (y.pointwise and x.pointwise
                                         or last.y.pointwise and last.x.pointwise):
                    # A pointwise stage adds no context: run it with its neighbour.
                    groups[-1] = _Group((*last.stages, stage), last.y.then(y), last.x.then(x))
                    maps[-1] = out
                else:
                    groups.append(_Group((stage,), y, x))
                    maps.append(out)
                t = out
        known.setdefault(tuple(faces.shape[1:]), measured)
        self.groups = groups
        self.maps = maps  # maps[i] is the input of groups[i]; maps[-1] the last local output
        self._checked = {} if checked is None else checked  # see _crop_agrees
        self._shape = tuple(faces.shape[1:])

    def _finish(self, t: torch.Tensor, level: int) -> torch.Tensor:
        for group in self.groups[level:]:
            t = group(t)
        for stage in self._rest:
            t = stage(t)
        return t

    def embed(self, fill: torch.Tensor, windows: Sequence[Window]) -> torch.Tensor:
        """(K·N, D) embeddings, face-major: face k with window n replaced by ``fill[k]``'s
        pixels there (``fill``: (K, 3, H, W)). Only the windows' pixels of ``fill`` are read,
        so the occluded faces are never built whole."""
        k_faces = self.maps[0].shape[0]
        h, w = self.maps[0].shape[2:]
        size_y = max(y1 - y0 for y0, y1, _, _ in windows)
        size_x = max(x1 - x0 for _, _, x0, x1 in windows)
        ys = np.array([min(y0, h - size_y) for y0, _, _, _ in windows])
        xs = np.array([min(x0, w - size_x) for _, _, x0, _ in windows])
        face_of = np.repeat(np.arange(k_faces), len(windows)).tolist()
        every = list(range(len(face_of)))

        def tiled(v: np.ndarray) -> list[int]:  # per window -> per (face, window)
            return np.tile(v, k_faces).tolist()

        inside = torch.zeros(len(windows), 1, size_y, size_x, dtype=torch.bool,
                             device=fill.device)
        for i, (y0, y1, x0, x1) in enumerate(windows):
            inside[i, :, y0 - ys[i] : y1 - ys[i], x0 - xs[i] : x1 - xs[i]] = True
        region = torch.where(inside.repeat(k_faces, 1, 1, 1),
                             _gather(fill, face_of, tiled(ys), tiled(xs), size_y, size_x),
                             _gather(self.maps[0], face_of, tiled(ys), tiled(xs), size_y,
                                     size_x))
        for level, group in enumerate(self.groups):
            clean_in, clean_out = self.maps[level], self.maps[level + 1]
            cy = _crop_axis(group.y, ys, size_y, clean_in.shape[2], clean_out.shape[2], self.cap)
            cx = _crop_axis(group.x, xs, size_x, clean_in.shape[3], clean_out.shape[3], self.cap)
            if (cy is None or cx is None or cy[3] * cx[3]
                    > FULL_MAP_FRACTION * clean_in.shape[2] * clean_in.shape[3]):
                return self._finish(self._whole(level, region, face_of, tiled(ys), tiled(xs)),
                                    level)
            oy, size_y, py, crop_y = cy
            ox, size_x, px, crop_x = cx
            if not all(self._crop_agrees(level, (int(py[i]), crop_y, int(oy[i]), size_y),
                                         (int(px[i]), crop_x, int(ox[i]), size_x))
                       for i in _border_classes(py, crop_y, clean_in.shape[2], px, crop_x,
                                                clean_in.shape[3])):
                return self._finish(self._whole(level, region, face_of, tiled(ys), tiled(xs)),
                                    level)
            crops = _gather(clean_in, face_of, tiled(py), tiled(px), crop_y, crop_x)
            _paste(crops, region, tiled(ys - py), tiled(xs - px))
            out = group(crops)
            s_y, s_x = group.y.stride, group.x.stride
            region = _gather(out, every, tiled(oy - py // s_y), tiled(ox - px // s_x), size_y,
                             size_x)
            ys, xs = oy, ox
        return self._finish(self._whole(len(self.groups), region, face_of, tiled(ys),
                                        tiled(xs)), len(self.groups))

    def _crop_agrees(self, level: int, along_y: tuple[int, int, int, int],
                     along_x: tuple[int, int, int, int]) -> bool:
        """Does the group compute on a crop of this size what it computes on the whole map, in
        the region kept? Checked once per level, crop size and side of the map the crop
        touches, on the clean map. A stage whose
        padding depends on its input's size (a 'SAME' pad exported as shape arithmetic) shifts
        its grid on a crop; from such a level on, whole maps are used."""
        (py, crop_y, oy, n_y), (px, crop_x, ox, n_x) = along_y, along_x
        h, w = self.maps[level].shape[2:]
        key = (*self._shape, level, crop_y, crop_x, py == 0, py + crop_y == h, px == 0,
               px + crop_x == w)
        if key not in self._checked:
            group, clean_in, clean_out = self.groups[level], self.maps[level], self.maps[level + 1]
            out = group(clean_in[:1, :, py : py + crop_y, px : px + crop_x])
            ry, rx = oy - py // group.y.stride, ox - px // group.x.stride
            got = out[:, :, ry : ry + n_y, rx : rx + n_x]
            want = clean_out[:1, :, oy : oy + n_y, ox : ox + n_x]
            self._checked[key] = got.shape == want.shape and bool(
                (got - want).abs().max() <= 1e-4 * (float(want.abs().max()) + 1.0))
        return self._checked[key]

    def _whole(self, level: int, region: torch.Tensor, face_of: list[int], ys: list[int],
               xs: list[int]) -> torch.Tensor:
        """The map at ``level`` for every (face, window): its clean map with the changed
        region pasted in."""
        clean = self.maps[level]
        full = torch.empty((len(face_of), *clean.shape[1:]), dtype=clean.dtype,
                           device=clean.device, memory_format=torch.channels_last)
        n = len(face_of) // clean.shape[0]
        for k in range(clean.shape[0]):  # face-major: one broadcast copy per face
            full[k * n : (k + 1) * n] = clean[k : k + 1]
        _paste(full, region, ys, xs)
        return full


class IncrementalPairScore:
    """The cosine of a pair under the same local change in both faces, computed incrementally.

    Call with the (2, 3, H, W) fill and the windows to fill in both faces: (N,) scores. Both
    faces run through each stage as one batch.
    """

    def __init__(self, model: FaceModel, pair: torch.Tensor, geometry: Geometry | None = None,
                 cap: float | None = None, checked: CropChecks | None = None) -> None:
        self.faces = IncrementalEmbedder(model, pair, geometry, cap, checked)

    def __call__(self, fill: torch.Tensor, windows: Sequence[Window]) -> torch.Tensor:
        emb = self.faces.embed(fill, windows)
        return cosine(emb[: len(windows)], emb[len(windows) :])
