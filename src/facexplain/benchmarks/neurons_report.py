"""The neuron study as files: plots, JSON, report sections (reusable in other pages), a standalone
page, and the row docs/BENCHMARKS.md records."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from jinja2 import Environment, PackageLoader, select_autoescape

from facexplain.results import Figure, Section
from facexplain.version import __version__

if TYPE_CHECKING:
    from facexplain.benchmarks.neurons import NeuronAnalysis


def _pct(x: object) -> str:
    return f"{100 * float(cast(float, x)):.1f}%"  # a share from the study's JSON


def neuron_sections(doc: dict[str, object]) -> tuple[Section, ...]:
    """Four sections (sparsity, selectivity, binary codes, robustness) with one-line findings."""
    figures = doc["figures"]
    assert isinstance(figures, list)
    figs = {str(f["src"]).removesuffix(".png"): Figure(str(f["src"]), str(f["caption"]))
            for f in figures}
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


def write_neuron_report(analysis: NeuronAnalysis, out_dir: Path,
                        command: str = "") -> dict[str, object]:
    """Plots, ``neurons.json`` (numbers + figure list) and ``neurons.html`` in ``out_dir``."""
    from facexplain.analysis import plots

    out_dir.mkdir(parents=True, exist_ok=True)
    s = analysis.summary
    sel = s["selectivity"]
    binary = s["binary"]
    assert isinstance(sel, dict) and isinstance(binary, dict)
    node = analysis.node_name
    figures = [
        Figure(plots.plot_sparsity([("top layer (embedding)", analysis.top),
                                    (f"node {node}", analysis.node)],
                                   out_dir / "sparsity.png").name,
               "Sparsity (paper Fig. 1): share of neurons activated (> 0) per image, and share "
               "of images activating each neuron; the intermediate node on the occlusion "
               "subset's clean faces."),
        Figure(plots.plot_selective_neurons(
            analysis.embeddings, [(n.neuron, n.label) for n in analysis.selective],
            analysis.people.identity == analysis.group_of_interest,
            analysis.group_of_interest.replace("_", " "), analysis.people.female,
            out_dir / "selective_neurons.png").name,
               "Selective neurons: response histograms over all LFW images (grey) and over one "
               "identity, male and female images."),
        Figure(plots.plot_selectivity(
            [*sel["identities"][:5], sel["gender"]], out_dir / "selectivity.png").name,
               "Held-out balanced accuracy of the best single neuron vs linear classifiers on "
               "all neurons and on high-dimensional LBP: five largest identities and gender."),
        Figure(plots.plot_binary(
            analysis.genuine_hamming, analysis.impostor_hamming,
            int(cast(int, s["embedding_dim"])),  # an int in the study's JSON
            {"float cosine": float(binary["real_cosine"]),
             "binary (0)": float(binary["binary_zero"]),
             "binary (median)": float(binary["binary_median"])},
            out_dir / "binary.png").name,
               "Binary codes: Hamming distances of LFW pairs and 10-fold accuracy, float cosine "
               "vs sign codes (threshold 0, and per-neuron medians)."),
        Figure(plots.plot_robustness(analysis.robustness, node, out_dir / "robustness.png").name,
               "Robustness to random brush-stroke occlusion: bits flipped against the clean "
               "face, and accuracy with one face of each pair occluded."),
    ]
    doc: dict[str, object] = {
        **s, "command": command,
        "figures": [{"src": f.src, "caption": f.caption} for f in figures],
    }
    (out_dir / "neurons.json").write_text(json.dumps(doc, indent=2) + "\n")
    write_neuron_page(out_dir / "neurons.html", doc, neuron_sections(doc))
    return doc


@dataclass(frozen=True)
class TableRow:
    """The numbers docs/BENCHMARKS.md records per backbone (what the issue asks for)."""

    backbone: str
    node: str
    active_per_image_top: float
    images_per_neuron_top: float
    active_per_image_node: float
    images_per_neuron_node: float
    real: float
    binary_zero: float
    binary_median: float
    speedup: float
    recall: float
    k: int
    n_database: int
    identities: list[tuple[str, float, float | None]]
    gender: tuple[float, float | None]


def table_row(doc: dict[str, object]) -> TableRow:
    sp, bi, se, sel = (doc["sparsity"], doc["binary"], doc["search"], doc["selectivity"])
    assert isinstance(sp, dict) and isinstance(bi, dict) and isinstance(se, dict)
    assert isinstance(sel, dict)
    k = int(se["k"])
    return TableRow(
        backbone=str(doc["backbone"]), node=str(doc["node"]),
        active_per_image_top=float(sp["top"]["mean_active_per_image"]),
        images_per_neuron_top=float(sp["top"]["mean_images_per_neuron"]),
        active_per_image_node=float(sp["node"]["mean_active_per_image"]),
        images_per_neuron_node=float(sp["node"]["mean_images_per_neuron"]),
        real=float(bi["real_cosine"]), binary_zero=float(bi["binary_zero"]),
        binary_median=float(bi["binary_median"]), speedup=float(se["speedup"]),
        recall=float(se[f"recall_at_{k}"]), k=k, n_database=int(se["n_database"]),
        identities=[(str(r["name"]), float(r["single_neuron"]), r["lbp_linear"])
                    for r in sel["identities"][:5]],
        gender=(float(sel["gender"]["single_neuron"]), sel["gender"]["lbp_linear"]),
    )
