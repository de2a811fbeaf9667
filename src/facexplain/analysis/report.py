"""The neuron study as HTML: report sections (reusable in other pages) and a standalone page."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from facexplain import __version__
from facexplain.report.html import Figure, Section


def _pct(x: object) -> str:
    return f"{100 * float(x):.1f}%"  # type: ignore[arg-type]


def neuron_sections(doc: dict[str, object]) -> tuple[Section, ...]:
    """Four sections (sparsity, selectivity, binary codes, robustness) with one-line findings."""
    figs = {str(f["src"]).removesuffix(".png"): Figure(str(f["src"]), str(f["caption"]))
            for f in doc["figures"]}  # type: ignore[attr-defined]
    sp, sel, bi, se, rb = (doc["sparsity"], doc["selectivity"], doc["binary"], doc["search"],
                           doc["robustness"])
    assert isinstance(sp, dict) and isinstance(sel, dict) and isinstance(bi, dict)
    assert isinstance(se, dict) and isinstance(rb, dict)
    top, node = sp["top"], sp["node"]
    g = sel["gender"]
    last = rb["points"][-1]
    rel = rb["flipped_relative_to_impostor"][-1]
    k = se["k"]
    return (
        Section("Sparsity", (
            f"An image activates {_pct(top['mean_active_per_image'])} of the "
            f"{top['n_neurons']} top-layer neurons on average, and a neuron fires on "
            f"{_pct(top['mean_images_per_neuron'])} of the images (DeepID2+: about half for "
            f"both). Node {doc['node']}: {_pct(node['mean_active_per_image'])} per image, "
            f"{_pct(node['mean_images_per_neuron'])} per neuron."),
            (figs["sparsity"],)),
        Section("Selectivity", (
            f"Over {sel['n_identities']} identities with enough images, the best single neuron "
            f"tells the identity from everyone else at {_pct(sel['mean_single_neuron_accuracy'])}"
            f" balanced accuracy on held-out images (mean); gender: {_pct(g['single_neuron'])} "
            f"(one neuron) vs {_pct(g['lbp_linear'])} (linear SVM on high-dimensional LBP)."),
            (figs["selective_neurons"], figs["selectivity"])),
        Section("Binary codes", (
            f"LFW 10-fold accuracy {_pct(bi['real_cosine'])} with float cosine, "
            f"{_pct(bi['binary_zero'])} with sign codes and Hamming distance (drop "
            f"{bi['drop_points_zero']} points; {_pct(bi['binary_median'])} thresholding each "
            f"neuron at its median), at {bi['bytes_per_face_binary']} instead of "
            f"{bi['bytes_per_face_float32']} bytes per face. Search over {se['n_database']:,} "
            f"codes: Hamming {se['speedup']}x faster than exact float cosine, recall@{k} "
            f"{_pct(se[f'recall_at_{k}'])} of the float result."),
            (figs["binary"],)),
        Section("Robustness to occlusion", (
            f"With {_pct(last['area'])} of face B hidden, the top layer flips "
            f"{_pct(last['flipped_bits']['top'])} of its bits ({_pct(rel['top'])} of the bit "
            f"distance between two people), node {doc['node']} "
            f"{_pct(last['flipped_bits']['node'])} ({_pct(rel['node'])}), LBP "
            f"{_pct(last['flipped_bits']['lbp'])} ({_pct(rel['lbp'])}); accuracy (cosine) "
            f"{_pct(last['accuracy']['top_cosine'])} vs LBP "
            f"{_pct(last['accuracy']['lbp_cosine'])} ({rb['n_pairs']} pairs)."),
            (figs["robustness"],)),
    )


def write_neuron_page(path: Path, doc: dict[str, object],
                      sections: tuple[Section, ...]) -> Path:
    """A standalone HTML page: the key numbers table, then the sections with their plots."""
    env = Environment(loader=PackageLoader("facexplain.report", "templates"),
                      autoescape=select_autoescape(["html"]))
    sel = doc["selectivity"]
    assert isinstance(sel, dict)
    html = env.get_template("neurons.html").render(
        doc=doc, sections=sections, tasks=[*sel["identities"][:5], sel["gender"]],
        version=__version__, generated=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
