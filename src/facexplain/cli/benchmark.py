"""`facexplain benchmark ...`: measured numbers, printed as a table and written as JSON."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from facexplain import settings
from facexplain.backbones.registry import DEFAULT_BACKBONE
from facexplain.cli.verify import BackboneOpt

app = typer.Typer(help="Benchmarks on real data.", no_args_is_help=True)

LFW = settings.current().lfw  # a CLI run is one process: its environment decides


def _check_inputs(backbone: str, pairs: Path, images: Path, folds: int | None,
                  *outputs: Path | None) -> None:
    """What a benchmark reads and writes, checked before any model loads (fail fast)."""
    from facexplain import validate
    from facexplain.backbones.registry import get_spec
    from facexplain.datasets.lfw import check_pairs_file
    from facexplain.errors import InputNotFound

    get_spec(backbone)
    check_pairs_file(pairs, folds=folds)
    if not images.is_dir():
        raise InputNotFound(f"image folder {images}: no such directory")
    for out in outputs:
        if out is not None:
            validate.output_dir(out.parent, what=f"folder of {out.name}")


@app.command("lfw")
def lfw_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the result as JSON here.")
    ] = None,
    flip: Annotated[bool, typer.Option("--flip", help="Add mirrored-face embeddings.")] = False,
    pairs: Annotated[Path, typer.Option(help="Pair list in pairs.txt format.")] = LFW
    / "pairs.txt",
    images: Annotated[Path, typer.Option(help="Image root (Name/Name_0001.jpg).")] = LFW
    / "lfw-deepfunneled",
    plot: Annotated[Path | None, typer.Option(help="ROC plot PNG path.")] = None,
    write_calibration: Annotated[
        bool, typer.Option(help="Store the mean fold threshold as the backbone's threshold.")
    ] = False,
) -> None:
    """LFW 10-fold verification accuracy from raw photos (detect, align, embed, score)."""
    from facexplain.benchmarks.lfw import LfwBenchmarkConfig, plot_roc, run_lfw_benchmark
    from facexplain.errors import InvalidArgument

    if write_calibration and flip:
        raise InvalidArgument("--write-calibration needs scores without --flip (verify uses none)")
    _check_inputs(backbone, pairs, images, 10, json_out, plot)
    cfg = LfwBenchmarkConfig(backbone=backbone, pairs=pairs, images=images, flip=flip)
    result = run_lfw_benchmark(cfg)
    s = dict(result.summary)
    s["command"] = "facexplain " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    plot_path = plot or (json_out.with_suffix(".png") if json_out else
                         Path(f"out/benchmarks/lfw-{backbone}{'-flip' if flip else ''}-roc.png"))
    s["roc_plot"] = str(plot_roc(result, plot_path))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(s, indent=2) + "\n")
    typer.echo(
        f"{backbone}{' +flip' if flip else ''}: accuracy {s['accuracy_mean']:.4f} "
        f"± {s['accuracy_std']:.4f}, AUC {s['auc']:.5f}, TAR@FAR=1e-3 {s['tar_at_far_1e-3']:.4f}, "
        f"threshold {s['threshold_mean']:.4f}, no face {s['n_no_face']}, "
        f"{s['n_pairs']} pairs, {s['seconds']} s"
    )
    typer.echo(f"ROC plot: {s['roc_plot']}")
    if write_calibration:
        _write_calibration(backbone, result, str(s["command"]))


def _write_calibration(backbone: str, result: object, command: str) -> None:
    from facexplain.benchmarks.lfw import LfwBenchmarkResult
    from facexplain.scoring import Calibration, fit_platt, save_calibration

    assert isinstance(result, LfwBenchmarkResult)
    slope, intercept = fit_platt(result.scores, result.same)
    cal = Calibration(
        backbone=backbone,
        threshold=round(float(result.summary["threshold_mean"]), 6),  # type: ignore[arg-type]
        platt_slope=round(slope, 4),
        platt_intercept=round(intercept, 4),
        command=command,
        date=str(result.summary["date"]),
        lfw_accuracy=round(float(result.summary["accuracy_mean"]), 6),  # type: ignore[arg-type]
    )
    typer.echo(f"calibration stored in {save_calibration(cal)}")


@app.command("occlusion-stats")
def occlusion_stats_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    patch: Annotated[int, typer.Option("--patch", "-k", help="Occluded patch size k.")] = 16,
    stride: Annotated[int, typer.Option("--stride", "-s", help="Patch stride s.")] = 8,
    fill: Annotated[
        str, typer.Option(help="mean-face, channel-mean, zero or blur.")
    ] = "mean-face",
    pairs_per_class: Annotated[
        int, typer.Option(help="Genuine and impostor pairs each, spread over the folds.")
    ] = 150,
    batch_size: Annotated[int, typer.Option(help="Occluded pairs per forward pass.")] = 32,
    device: Annotated[str, typer.Option(help="torch device for the backbone.")] = "cpu",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the result as JSON here.")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Fig. 3 plot PNG path.")] = None,
    pairs: Annotated[Path, typer.Option(help="Pair list in pairs.txt format.")] = LFW
    / "pairs.txt",
    images: Annotated[Path, typer.Option(help="Image root (Name/Name_0001.jpg).")] = LFW
    / "lfw-deepfunneled",
    write_theta: Annotated[
        bool, typer.Option(help="Store the mean fold Θ for this backbone and setting.")
    ] = False,
) -> None:
    """Pairwise-occlusion Δ statistics on LFW (paper Fig. 3) and the held-out max-Δ AUC."""
    from facexplain.benchmarks.occlusion import (
        OcclusionStatsConfig,
        plot_occlusion_stats,
        run_occlusion_stats,
    )

    _check_inputs(backbone, pairs, images, 10, json_out, plot)
    cfg = OcclusionStatsConfig(backbone=backbone, patch=patch, stride=stride, fill=fill,
                               pairs_per_class=pairs_per_class, pairs=pairs, images=images,
                               batch_size=batch_size, device=device)
    result = run_occlusion_stats(cfg)
    s = dict(result.summary)
    s["command"] = "facexplain " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    stem = f"occlusion-{backbone}-k{patch}-s{stride}-{fill}"
    plot_path = plot or (json_out.with_suffix(".png") if json_out else
                         Path(f"out/benchmarks/{stem}.png"))
    s["plot"] = str(plot_occlusion_stats(result, plot_path))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(s, indent=2) + "\n")
    sep = result.separation
    typer.echo(
        f"{backbone} k={patch} s={stride} {fill}: {s['n_pairs']} pairs; max-Δ AUC held-out "
        f"{sep.heldout_auc_mean:.4f} ± {sep.heldout_auc_std:.4f} (pooled {sep.pooled_auc:.4f};"
        f" similarity AUC {s['similarity_auc']:.4f}); Θ-rule accuracy "
        f"{sep.heldout_accuracy_mean:.4f}; Θ {sep.theta_mean:.5f}; genuine dark "
        f"{100 * sep.genuine_dark_fraction:.1f}%, impostor lit "
        f"{100 * sep.impostor_lit_fraction:.1f}%; {s['seconds']} s"
    )
    typer.echo(f"plot: {s['plot']}")
    if write_theta:
        from facexplain.explain.theta import ThetaRecord, calibrate_theta, save_theta

        calibrate_theta(result.max_delta, result.same)  # refuses a non-positive Θ
        record = ThetaRecord(
            backbone=backbone, patch=patch, stride=stride, fill=fill,
            theta=round(sep.theta_mean, 6), fold_thetas=sep.fold_thetas,
            heldout_auc=round(sep.heldout_auc_mean, 6), n_pairs=len(result.same),
            command=str(s["command"]), date=str(s["date"]),
        )
        typer.echo(f"Θ stored in {save_theta(record)}")


@app.command("mean-face")
def mean_face_command(
    template: Annotated[
        list[str] | None, typer.Option(help="Alignment template(s); default: all.")
    ] = None,
    max_images: Annotated[
        int | None, typer.Option(help="Average at most this many images (evenly spaced).")
    ] = None,
    pairs: Annotated[Path, typer.Option(help="Pairs whose images are left out.")] = LFW
    / "pairs.txt",
    images: Annotated[Path, typer.Option(help="Image root (Name/Name_0001.jpg).")] = LFW
    / "lfw-deepfunneled",
) -> None:
    """Build the occlusion fill: mean aligned face of LFW images outside every pair/fold."""
    import datetime as dt

    from facexplain.align.templates import TEMPLATES
    from facexplain.benchmarks.occlusion import build_mean_faces
    from facexplain.explain.fills import save_mean_face

    names = template or list(TEMPLATES)
    faces = build_mean_faces(names, pairs, images, max_images)
    command = "facexplain " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    for name, (face, n) in faces.items():
        record: dict[str, object] = {
            "n_images": n, "reference": f"LFW images in {images.name} not listed in {pairs}",
            "detections": "MTCNN, face nearest the centre (LFW benchmark cache)",
            "command": command, "date": dt.date.today().isoformat(),
        }
        typer.echo(f"{name}: mean of {n} faces -> {save_mean_face(face, name, record)}")


@app.command("faithfulness")
def faithfulness_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    n_pairs: Annotated[
        int, typer.Option("--pairs", help="Held-out pairs (half genuine), folds 6-10.")
    ] = 300,
    methods: Annotated[
        str, typer.Option(help="Comma-separated method names, or all (every registered method "
                          "with a ranking map).")
    ] = "all",
    fill: Annotated[
        str, typer.Option(help="What removed pixels become: mean-face, channel-mean, zero, blur.")
    ] = "mean-face",
    patch: Annotated[int, typer.Option("--patch", "-k", help="Occlusion patch size k.")] = 16,
    stride: Annotated[int, typer.Option("--stride", "-s", help="Occlusion stride s.")] = 8,
    ig_steps: Annotated[
        int, typer.Option(min=0, help="Integrated-gradients steps (0: adaptive, as explain).")
    ] = 0,
    modes: Annotated[
        str, typer.Option(help="Curves: deletion, insertion or both (comma-separated).")
    ] = "deletion,insertion",
    blocks: Annotated[
        str, typer.Option(help="Units, comma-separated: 1 = single pixels, B = BxB blocks.")
    ] = "1,8",
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    seed: Annotated[int, typer.Option(help="Seed of the random order and tie-breaks.")] = 0,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Ignore finished pairs of an earlier run.")
    ] = False,
    write_record: Annotated[
        bool, typer.Option("--write-record", help="Store each map's rank for the report.")
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the result as JSON here.")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Mean-curves PNG path.")] = None,
    pairs_file: Annotated[Path, typer.Option(help="Pair list in pairs.txt format.")] = LFW
    / "pairs.txt",
    images: Annotated[Path, typer.Option(help="Image root (Name/Name_0001.jpg).")] = LFW
    / "lfw-deepfunneled",
    study_pairs: Annotated[Path | None, typer.Option(
        help="A study pair set (`facexplain study pairs`: look-alike impostors) instead of "
        "LFW's folds 6-10.")] = None,
) -> None:
    """Deletion and insertion faithfulness of every explanation map against random order
    (resumes an interrupted run)."""
    from facexplain.benchmarks.faithfulness import FaithfulnessConfig, ranked_methods
    from facexplain.benchmarks.faithfulness import run_faithfulness as run
    from facexplain.benchmarks.faithfulness_report import (
        format_table,
        plot_curves,
        ranking_markdown,
        ranks,
    )

    chosen = ranked_methods() if methods.strip() == "all" else tuple(
        m.strip() for m in methods.split(",") if m.strip())
    _check_inputs(backbone, pairs_file, images, 10, json_out, plot)
    if study_pairs is not None and write_record:
        from facexplain.errors import InvalidArgument

        raise InvalidArgument("--write-record stores the LFW ranks the report shows; "
                              "run it without --study-pairs")
    cfg = FaithfulnessConfig(
        backbone=backbone, n_pairs=n_pairs, methods=chosen, fill=fill,
        patch=patch, stride=stride, ig_steps=ig_steps or None,
        modes=tuple(m.strip() for m in modes.split(",") if m.strip()),
        blocks=_int_list(blocks, "--blocks"), seed=seed, device=device,
        pairs=pairs_file, images=images, resume=not fresh, pairs_file=study_pairs,
    )
    result = run(cfg)
    s = dict(result.summary)
    s["command"] = "facexplain " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    s["ranking"] = {row: r.to_dict() for row, r in ranks(result).items()}
    s["ranking_markdown"] = ranking_markdown(result)
    plot_path = plot or (json_out.with_suffix(".png") if json_out else
                         Path(f"out/benchmarks/faithfulness-{backbone}-{fill}.png"))
    s["plot"] = str(plot_curves(result, plot_path))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(s, indent=2) + "\n")
    typer.echo(f"{backbone}, fill {fill}: {s['n_genuine']} genuine + {s['n_impostor']} impostor "
               f"pairs ({s['pair_selection']}), {s['seconds']} s ({s['resumed_pairs']} resumed), "
               f"{s['device']}")
    typer.echo(format_table(result))
    typer.echo(f"plot: {s['plot']}")
    if write_record:
        from facexplain.explain.trust import save_faithfulness_records

        typer.echo(f"ranks stored: {save_faithfulness_records(s)}")


def _int_list(text: str, flag: str) -> tuple[int, ...]:
    from facexplain.errors import InvalidArgument

    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InvalidArgument(f"{flag} must be comma-separated integers, got '{text}'") from None
    if not values:
        raise InvalidArgument(f"{flag} is empty")
    return values


@app.command("xcos")
def xcos_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the result as JSON here.")
    ] = None,
    areas: Annotated[
        str, typer.Option(help="Brush-stroke occlusion fractions of the face, comma-separated.")
    ] = "0.1,0.2,0.3,0.4",
    templates: Annotated[
        bool, typer.Option("--templates/--no-templates", help="Also occlude with mask pictures.")
    ] = True,
    timing_pairs: Annotated[int, typer.Option(min=0, help="Pairs timed for cost (0: skip).")] = 30,
    seed: int = 0,
    pairs: Annotated[Path, typer.Option(help="Pair list in pairs.txt format.")] = LFW
    / "pairs.txt",
    images: Annotated[Path, typer.Option(help="Image root (Name/Name_0001.jpg).")] = LFW
    / "lfw-deepfunneled",
    checkpoint_root: Annotated[
        Path | None, typer.Option(help="Root of the xcos/<backbone>/fold<K> heads.")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, help="torch threads (default: torch's choice).")
    ] = None,
    development_folds: Annotated[
        str, typer.Option(help="Folds used to choose training settings (reported apart).")
    ] = "1,2",
) -> None:
    """xCos vs cosine on LFW: 10-fold accuracy (U/P/L), Pearson r, occlusion, cost per pair.

    Needs the ten fold heads: `facexplain train xcos --backbone NAME --all-folds`.
    """
    from facexplain.benchmarks.xcos import XCosBenchmarkConfig, run_xcos_benchmark
    from facexplain.errors import InvalidArgument

    try:
        fractions = tuple(float(a) for a in areas.split(",") if a.strip())
    except ValueError:
        raise InvalidArgument(f"--areas must be comma-separated fractions, got {areas!r}") from None
    if any(not 0 < a < 1 for a in fractions):
        raise InvalidArgument("--areas fractions must lie strictly between 0 and 1")
    try:
        dev = tuple(int(f) for f in development_folds.split(",") if f.strip())
    except ValueError:
        raise InvalidArgument("--development-folds must be comma-separated fold numbers") from None
    if any(not 1 <= f <= 10 for f in dev) or len(set(dev)) >= 10:
        raise InvalidArgument("--development-folds must name some (not all) of folds 1-10")
    if threads:
        import torch

        torch.set_num_threads(threads)
    _check_inputs(backbone, pairs, images, 10, json_out)
    cfg = XCosBenchmarkConfig(backbone=backbone, images=images, pairs=pairs, areas=fractions,
                              templates=templates, timing_pairs=timing_pairs, seed=seed,
                              checkpoint_root=checkpoint_root, development_folds=dev)
    s = run_xcos_benchmark(cfg, log=typer.echo)
    s["command"] = "facexplain " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    out = json_out or Path(f"out/benchmarks/xcos-{backbone}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(s, indent=2) + "\n")
    for line in _xcos_table(s):
        typer.echo(line)
    typer.echo(f"JSON: {out}")


def _fold_list(s: dict[str, object]) -> str:
    dev = s["development_folds"]
    assert isinstance(dev, list)
    return ",".join(str(f) for f in range(1, 11) if f not in dev)


def _xcos_table(s: dict[str, object]) -> list[str]:
    """Markdown tables of a `benchmark xcos` result (the ones docs/BENCHMARKS.md records)."""
    acc, r = s["accuracy"], s["pearson_r_vs_teacher"]
    occ, timing = s["occlusion_accuracy"], s["timing"]
    untouched = s["accuracy_untouched_folds"]
    assert isinstance(acc, dict) and isinstance(r, dict) and isinstance(untouched, dict)
    assert isinstance(occ, dict) and isinstance(timing, dict)
    cols = ["cosine", "xcos_U", "xcos_P", "xcos_L"]
    lines = [
        f"| {s['backbone']} (teacher {s['teacher']}) | teacher | " + " | ".join(cols[1:]) + " |",
        "|---|---|---|---|---|",
        "| LFW 10-fold accuracy (%) | " + f"{100 * acc['teacher']:.2f} | "
        + " | ".join(f"{100 * acc[c]:.2f}" for c in cols[1:]) + " |",
        f"| folds {_fold_list(s)} only (%) | "
        + " | ".join(f"{100 * untouched[c]:.2f}" for c in ["teacher", *cols[1:]]) + " |",
        "| Pearson r vs teacher | 1 | "
        + " | ".join(f"{r[c.removeprefix('xcos_')]:.4f}" for c in cols[1:]) + " |",
        "",
        "| occlusion of face B | " + " | ".join(cols) + " |",
        "|---|---|---|---|---|",
        "| none | " + " | ".join(f"{100 * acc[c]:.2f}" for c in cols) + " |",
    ]
    for cond, row in occ.items():
        name = "mask templates" if cond == "templates" else f"strokes {100 * float(cond):.0f}%"
        lines.append(f"| {name} | " + " | ".join(
            f"{100 * row[c]:.2f} ({100 * (row[c] - acc[c]):+.2f})" for c in cols) + " |")
    if timing:
        lines += [
            "",
            f"cost per pair (ms, one pair per call, torch threads {timing['threads']:.0f}): cosine "
            f"{timing['cosine_ms']:.1f}, xCos-L {timing['xcos_ms']:.1f}, xCos-L + cosine "
            f"{timing['xcos_and_cosine_ms']:.1f}, head alone {timing['head_only_ms']:.2f}",
        ]
    return lines


@app.command("sanity")
def sanity_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    n_pairs: Annotated[int, typer.Option("--pairs", help="Held-out LFW pairs (half genuine).")]
    = 6,
    methods: Annotated[str, typer.Option(help="Comma-separated method names, or all.")] = "all",
    margin: Annotated[float, typer.Option(help="Pass: randomised similarity <= chance + this.")]
    = 0.2,
    write_record: Annotated[bool, typer.Option(
        help="Store the verdicts; the report shows them beside each map.")] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the result as JSON here.")
    ] = None,
) -> None:
    """Model-randomisation sanity check of every method (cascade from the top, and full)."""
    from facexplain.benchmarks.sanity import (
        SanityConfig,
        format_sanity_table,
        plot_sanity,
        run_sanity,
    )
    from facexplain.explain.trust import save_sanity_records
    from facexplain.methods.registry import parse_methods

    _check_inputs(backbone, LFW / "pairs.txt", LFW / "lfw-deepfunneled", 10, json_out)
    chosen = tuple(info.name for info in parse_methods(methods))
    result = run_sanity(SanityConfig(backbone=backbone, n_pairs=n_pairs, methods=chosen,
                                     margin=margin))
    result["command"] = "facexplain " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    typer.echo(format_sanity_table(result))
    plot_path = json_out.with_suffix(".png") if json_out else Path(
        f"out/benchmarks/sanity-{backbone}.png")
    typer.echo(f"plot: {plot_sanity(result, plot_path)}")
    if write_record:
        typer.echo(f"sanity verdicts stored in {save_sanity_records(result)}")
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2) + "\n")
