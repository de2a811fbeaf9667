"""One report section per explanation: raw maps (.npy) and pictures, in aligned-crop coordinates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from facexplain.explain.base import ExplanationMaps
from facexplain.report.html import Figure, Section
from facexplain.report.overlay import save_pair_overlay

TITLES = {
    "occlusion": "Pairwise occlusion (deep difference analysis)",
    "saliency": "Gradient saliency",
    "deconv": "Deconvolution",
    "guided": "Guided back-propagation",
    "ig": "Integrated gradients",
    "gradcam": "Grad-CAM",
    "xcos": "xCos: patch similarity and attention",
}

TEXTS = {
    "occlusion": "The same patch is hidden in both faces and the similarity recomputed. "
    "Difference map: where hiding a region makes the faces look more alike, i.e. where they "
    "differ. Similarity map: where hiding it makes them look less alike, i.e. where they match.",
    "xcos": "S: cosine of the two faces' local features per cell (red: alike, blue: unlike). "
    "W: how much each cell counts. xCos = sum of S x W.",
}


def save_raw_maps(result: ExplanationMaps, out_dir: Path) -> list[Path]:
    """Every map as ``<method>_<name>.npy`` (float32, (2, H, W): face A, face B)."""
    paths = []
    for name, tensor in result.maps.items():
        path = out_dir / f"{result.method}_{name}.npy"
        np.save(path, tensor.detach().float().cpu().numpy())
        paths.append(path)
    return paths


def _occlusion_figures(result: ExplanationMaps, faces: torch.Tensor, out: Path) -> list[Figure]:
    figs = []
    k, s, theta = result.meta.get("k"), result.meta.get("s"), result.meta.get("theta")
    if "difference_normalized" in result.maps:
        p = save_pair_overlay(faces, result.maps["difference_normalized"],
                              out / "occlusion_difference_normalized.png",
                              f"difference, Θ-normalised (Θ={theta}; k={k}, s={s})",
                              vmin=0.0, vmax=1.0)
        figs.append(Figure(p.name, "Θ-normalised difference map: bright where the faces differ "
                           "more than genuine pairs ever do; a genuine pair stays dark."))
    for name, caption in (("difference", "raw difference map Δ>0 (where the faces differ)"),
                          ("similarity", "raw similarity map −Δ>0 (where the faces match)")):
        p = save_pair_overlay(faces, result.maps[name], out / f"occlusion_{name}.png",
                              f"{name} (k={k}, s={s})", vmin=0.0)
        figs.append(Figure(p.name, caption))
    return figs


def _xcos_figures(result: ExplanationMaps, faces: torch.Tensor, out: Path) -> list[Figure]:
    from facexplain.report.xcos_figures import save_xcos_figure

    s, w = result.meta["S"], result.meta["W"]
    assert isinstance(s, torch.Tensor) and isinstance(w, torch.Tensor)
    p = save_xcos_figure(out / "xcos.png", faces[0], faces[1], s, w, result.score,
                         title=f"xCos-{result.meta.get('attention_kind')}")
    cos = result.meta.get("cosine")
    return [Figure(p.name, f"xCos {result.score:.4f} (the backbone's cosine: {cos:.4f})")]


def _gradient_figures(result: ExplanationMaps, faces: torch.Tensor, out: Path) -> list[Figure]:
    figs = []
    for name, caption in (("difference", "pixels whose change would raise the similarity"),
                          ("similarity", "pixels whose change would lower the similarity")):
        p = save_pair_overlay(faces, result.maps[name], out / f"{result.method}_{name}.png",
                              f"{result.method}: {name}", vmin=0.0)
        figs.append(Figure(p.name, caption))
    return figs


def _theta_note(result: ExplanationMaps) -> str:
    """Max Δ against Θ in words: how far a lit (or dark) map is from the genuine-pair rule."""
    theta = result.meta.get("theta")
    if result.method != "occlusion" or "delta" not in result.maps:
        return ""
    if theta is None:
        return (f" No Θ is stored for this backbone at k={result.meta.get('k')}, "
                f"s={result.meta.get('s')}, so only raw maps are shown (calibrate one with "
                "`facexplain benchmark occlusion-stats --write-theta`).")
    peak = float(result.maps["delta"].max())
    state = "lit: above" if peak >= float(theta) else "dark: below"  # type: ignore[arg-type]
    return (f" Max Δ = {peak:.4f}, Θ = {theta} ({state} the level most genuine LFW pairs stay "
            f"under).")


def render_section(result: ExplanationMaps, faces: torch.Tensor, out_dir: Path) -> Section:
    """Save the raw maps and the pictures of one method; return its report section."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_raw_maps(result, out_dir)
    if result.method == "occlusion":
        figures = _occlusion_figures(result, faces, out_dir)
    elif result.method == "xcos":
        figures = _xcos_figures(result, faces, out_dir)
    else:
        figures = _gradient_figures(result, faces, out_dir)
    seconds = result.meta.get("seconds")
    timing = f" Computed in {seconds} s." if seconds is not None else ""
    if result.meta.get("incremental"):
        timing += (f" {result.meta.get('n_windows')} patches, each evaluated incrementally (only "
                   "the part of the network the patch reaches is recomputed; same map as a "
                   "full re-evaluation up to float rounding).")
    text = TEXTS.get(result.method, "Gradient of the pair's cosine similarity with respect to "
                     "each face's pixels (Captum).") + _theta_note(result) + timing
    return Section(TITLES.get(result.method, result.method), text, tuple(figures))
