"""One report section per method, read from the method registry: raw maps (.npy) and pictures.

Nothing here names a method: titles, texts, which maps are drawn and how (signed or not, value
range, colormap) come from each method's ``MethodInfo``; a method adds its own pictures and
notes through its ``figures`` / ``note`` hooks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from facexplain.explain.base import ExplanationMaps
from facexplain.method_info import MapSpec, MethodInfo
from facexplain.report.overlay import save_pair_overlay
from facexplain.results import Figure, Section


def save_raw_maps(result: ExplanationMaps, out_dir: Path) -> list[Path]:
    """Every map as ``<method>_<name>.npy`` (float32, (2, H, W): face A, face B)."""
    paths = []
    for name, tensor in result.maps.items():
        path = out_dir / f"{result.method}_{name}.npy"
        np.save(path, tensor.detach().float().cpu().numpy())
        paths.append(path)
    return paths


def draw_map(spec: MapSpec, method: str, values: torch.Tensor, faces: torch.Tensor,
             out_dir: Path) -> Figure:
    """An overlay of one map on both faces, scaled as its spec says."""
    lo, hi = spec.vrange if spec.vrange is not None else (None, None)
    if spec.signed and spec.vrange is None:
        bound = float(values.abs().max()) or 1e-12
        lo, hi = -bound, bound
    p = save_pair_overlay(faces, values, out_dir / f"{method}_{spec.name}.png",
                          f"{method}: {spec.name}", vmin=lo, vmax=hi, cmap=spec.cmap)
    return Figure(p.name, spec.caption, spec.reading)


def render_method(info: MethodInfo, result: ExplanationMaps, faces: torch.Tensor,
                  out_dir: Path, backbone: str | None = None,
                  weights: str | None = None) -> Section:
    """Save the raw maps and the pictures of one method; return its report section (with the
    method's stored sanity verdict on ``backbone`` when given)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    trust: tuple[tuple[str, str, str], ...] = ()
    save_raw_maps(result, out_dir)
    figures = list(info.figures(result, faces, out_dir)) if info.figures else []
    for name, values in result.maps.items():
        spec = info.map_spec(name) or MapSpec(name, name)
        if spec.show:
            figures.append(draw_map(spec, info.name, values, faces, out_dir))
    seconds = result.meta.seconds
    text = info.description
    if info.note and info.names_face and backbone is not None:
        from facexplain.explain.trust_game import which_face_verified

        verified, sentence = which_face_verified(backbone, info.name, weights)
        text += (info.note(result) if verified else "") + sentence
    elif info.note:
        text += info.note(result)
    if result.meta.note:
        text += f" Note: {result.meta.note}."
    if backbone is not None:
        from facexplain.explain.trust import faithfulness_note, sanity_note
        from facexplain.explain.trust_game import trust_rows

        rows = [r.row(info.name) for r in info.rankings]
        trust = tuple((t.measure, t.value, t.population)
                      for t in trust_rows(backbone, info.name, rows, weights))
        text += sanity_note(backbone, info.name, weights)
        text += faithfulness_note(backbone, info.name, rows, weights)
    if seconds is not None:
        text += f" Computed in {seconds} s."
    return Section(info.title, text, tuple(figures), trust)

