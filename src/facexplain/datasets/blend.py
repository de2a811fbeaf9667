"""Seamless region transplant between two aligned faces: align the donor's region to the
target's landmarks, then Poisson-blend it in (Pérez et al., 2003).

Why Poisson: pasting pixels leaves a seam and the donor photo's lighting, which a map could
find without any face knowledge; solving for the region so that its gradients are the donor's
and its border the target's carries the donor's shape and texture in the target's light.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import splu
from skimage.transform import SimilarityTransform, warp

from facexplain.errors import InvalidArgument


def align_donor(donor: np.ndarray, donor_points: np.ndarray, target_points: np.ndarray
                ) -> np.ndarray:
    """The (3, S, S) donor crop moved so that ``donor_points`` land on ``target_points``
    (a least-squares similarity transform, e.g. of one region's landmarks)."""
    tform = SimilarityTransform.from_estimate(np.asarray(target_points, float),
                                              np.asarray(donor_points, float))
    if not tform:
        raise InvalidArgument("cannot fit a similarity transform between the two regions")
    chans = [warp(c.astype(np.float64) / 255.0, tform, order=1, mode="edge", preserve_range=True)
             for c in np.asarray(donor, dtype=np.float32)]
    return (np.stack(chans) * 255.0).astype(np.float32)


def poisson_blend(target: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``target`` (3, S, S) with the pixels of ``mask`` solved so their Laplacian is the
    ``source``'s and they meet the target at the mask's border; values clipped to [0, 255]."""
    t = np.asarray(target, dtype=np.float64)
    s = np.asarray(source, dtype=np.float64)
    m = np.asarray(mask, dtype=bool).copy()
    m[0, :] = m[-1, :] = m[:, 0] = m[:, -1] = False  # the border stays the target's
    ys, xs = np.nonzero(m)
    if ys.size == 0:
        return t.astype(np.float32)
    index = -np.ones(m.shape, dtype=np.int64)
    index[ys, xs] = np.arange(ys.size)
    rows, cols = [np.arange(ys.size)], [np.arange(ys.size)]
    vals = [np.full(ys.size, 4.0)]
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        j = index[ys + dy, xs + dx]
        inside = j >= 0
        rows.append(np.flatnonzero(inside))
        cols.append(j[inside])
        vals.append(np.full(int(inside.sum()), -1.0))
    a = sparse.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(ys.size, ys.size))
    solver = splu(a)
    out = t.copy()
    for c in range(t.shape[0]):
        b = 4 * s[c, ys, xs]
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            ny, nx = ys + dy, xs + dx
            b -= s[c, ny, nx]
            outside = index[ny, nx] < 0
            b += np.where(outside, t[c, ny, nx], 0.0)
        out[c, ys, xs] = solver.solve(b)
    return np.clip(out, 0.0, 255.0).astype(np.float32)
