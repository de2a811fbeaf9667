"""`facexplain benchmark ...`: measured numbers, printed as a table and written as JSON.

The group is built from the benchmark registry (``benchmarks.registry``): each command module
registers its tasks with ``register_benchmark``; ``build_group`` adds every registered task,
and ``tables`` rewrites docs/BENCHMARKS.md's generated tables from docs/results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facexplain.backbones.registry import DEFAULT_BACKBONE
from facexplain.benchmarks.registry import register_benchmark, stamp, tasks
from facexplain.cli.options import (
    LFW_IMAGES,
    LFW_PAIRS,
    BackboneOpt,
    ImagesOpt,
    JsonOpt,
    PairsOpt,
    SamplesOpt,
    XfaceStrideOpt,
    check_inputs,
    fold_list,
    write_json,
)

app = typer.Typer(help="Benchmarks on real data.", no_args_is_help=True)

# The modules whose commands register benchmark tasks (this one included).
BENCHMARK_MODULES = ("facexplain.cli.benchmark_maps", "facexplain.cli.codes_bench",
                     "facexplain.cli.parts", "facexplain.cli.quality_bench",
                     "facexplain.cli.component_bench")


def build_group() -> typer.Typer:
    """The `benchmark` group: every registered task's command, then `tables`."""
    import importlib

    for module in BENCHMARK_MODULES:
        importlib.import_module(module)
    known = {c.name for c in app.registered_commands}
    for task in tasks("benchmark"):
        if task.name not in known:
            app.command(task.name)(task.runner)
    if "tables" not in known:
        app.command("tables")(tables_command)
    return app


@register_benchmark("lfw", config="facexplain.benchmarks.lfw:LfwBenchmarkConfig",
                    result="facexplain.benchmarks.lfw:LfwBenchmarkResult")
def lfw_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    json_out: JsonOpt = None,
    flip: Annotated[bool, typer.Option("--flip", help="Add mirrored-face embeddings.")] = False,
    pairs: PairsOpt = LFW_PAIRS,
    images: ImagesOpt = LFW_IMAGES,
    plot: Annotated[Path | None, typer.Option(help="ROC plot PNG path.")] = None,
    write_calibration: Annotated[
        bool, typer.Option(help="Store the mean fold threshold as the backbone's threshold.")
    ] = False,
    folds: Annotated[str | None, typer.Option(
        help="Only these folds, e.g. 1-3 or 1,4 (at least two; quicker, less precise).")] = None,
) -> None:
    """LFW 10-fold verification accuracy from raw photos (detect, align, embed, score)."""
    from facexplain.benchmarks.lfw import LfwBenchmarkConfig, plot_roc, run_lfw_benchmark
    from facexplain.errors import InvalidArgument

    if write_calibration and flip:
        raise InvalidArgument("--write-calibration needs scores without --flip (verify uses none)")
    chosen = None if folds is None else fold_list(folds)
    check_inputs(backbone, pairs, images, max(chosen) if chosen else 10, json_out, plot)
    cfg = LfwBenchmarkConfig(backbone=backbone, pairs=pairs, images=images, flip=flip,
                             folds=chosen)
    result = run_lfw_benchmark(cfg)
    s = stamp(result.to_json())
    plot_path = plot or (json_out.with_suffix(".png") if json_out else
                         Path(f"out/benchmarks/lfw-{backbone}{'-flip' if flip else ''}-roc.png"))
    s["roc_plot"] = str(plot_roc(result, plot_path))
    write_json(s, json_out)
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
    from facexplain.benchmarks.lfw import LfwBenchmarkResult, calibration_from
    from facexplain.scoring import save_calibration

    assert isinstance(result, LfwBenchmarkResult)
    typer.echo(f"calibration stored in {save_calibration(calibration_from(result, command))}")


@register_benchmark("occlusion-stats",
                    config="facexplain.benchmarks.occlusion:OcclusionStatsConfig")
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
    json_out: JsonOpt = None,
    plot: Annotated[Path | None, typer.Option(help="Fig. 3 plot PNG path.")] = None,
    pairs: PairsOpt = LFW_PAIRS,
    images: ImagesOpt = LFW_IMAGES,
    write_theta: Annotated[
        bool, typer.Option(help="Store the mean fold Θ for this backbone and setting.")
    ] = False,
    study_pairs: Annotated[Path | None, typer.Option(
        help="A study pair set (`facexplain study pairs`: look-alike impostors, as the "
        "paper's SLLFW) instead of LFW's folds.")] = None,
) -> None:
    """Pairwise-occlusion Δ statistics on LFW (paper Fig. 3) and the held-out max-Δ AUC."""
    from facexplain.benchmarks.occlusion import (
        OcclusionStatsConfig,
        plot_occlusion_stats,
        run_occlusion_stats,
    )

    check_inputs(backbone, pairs, images, 10, json_out, plot)
    if study_pairs is not None and write_theta:
        from facexplain.errors import InvalidArgument

        raise InvalidArgument("--write-theta stores Θ from LFW's folds; not with --study-pairs")
    if study_pairs is not None and not study_pairs.is_file():
        from facexplain.errors import InputNotFound

        raise InputNotFound(f"study pair set not found: {study_pairs}")
    cfg = OcclusionStatsConfig(backbone=backbone, patch=patch, stride=stride, fill=fill,
                               pairs_per_class=pairs_per_class, pairs=pairs, images=images,
                               batch_size=batch_size, device=device, study_pairs=study_pairs)
    result = run_occlusion_stats(cfg)
    s = stamp(dict(result.summary))
    stem = f"occlusion-{backbone}-k{patch}-s{stride}-{fill}"
    plot_path = plot or (json_out.with_suffix(".png") if json_out else
                         Path(f"out/benchmarks/{stem}.png"))
    s["plot"] = str(plot_occlusion_stats(result, plot_path))
    write_json(s, json_out)
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
            command=str(s["command"]), date=str(s["date"]), weights=str(s["weights"]),
        )
        typer.echo(f"Θ stored in {save_theta(record)}")


@register_benchmark("mean-face")
def mean_face_command(
    template: Annotated[
        list[str] | None, typer.Option(help="Alignment template(s); default: all.")
    ] = None,
    max_images: Annotated[
        int | None, typer.Option(help="Average at most this many images (evenly spaced).")
    ] = None,
    pairs: Annotated[Path, typer.Option(help="Pairs whose images are left out.")] = LFW_PAIRS,
    images: ImagesOpt = LFW_IMAGES,
) -> None:
    """Build the occlusion fill: mean aligned face of LFW images outside every pair/fold."""
    from facexplain.align.templates import TEMPLATES
    from facexplain.benchmarks.occlusion import build_mean_faces
    from facexplain.explain.fills import save_mean_face

    names = template or list(TEMPLATES)
    faces = build_mean_faces(names, pairs, images, max_images)
    for name, (face, n) in faces.items():
        record: dict[str, object] = stamp({
            "n_images": n, "reference": f"LFW images in {images.name} not listed in {pairs}",
            "detections": "MTCNN, face nearest the centre (LFW benchmark cache)",
        })
        typer.echo(f"{name}: mean of {n} faces -> {save_mean_face(face, name, record)}")


@register_benchmark("sanity", config="facexplain.benchmarks.sanity:SanityConfig",
                    result="facexplain.benchmarks.sanity_report:SanityResult",
                    tables=("sanity",))
def sanity_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    n_pairs: Annotated[int, typer.Option(
        "--pairs", help="Held-out LFW pairs (half genuine); fewer than 30: no verdicts.")] = 30,
    offset: Annotated[int, typer.Option(
        min=0, help="Skip the pairs a run of this size takes (a disjoint pair set).")] = 0,
    cascade: Annotated[bool, typer.Option(
        "--cascade/--no-cascade", help="Also randomise from the top down (3 more states).")]
    = True,
    methods: Annotated[str, typer.Option(help="Comma-separated method names, or all.")] = "all",
    samples: SamplesOpt = None,
    xface_stride: XfaceStrideOpt = None,
    margin: Annotated[float, typer.Option(help="Pass: randomised similarity <= chance + this.")]
    = 0.2,
    write_record: Annotated[bool, typer.Option(
        help="Store the verdicts; the report shows them beside each map.")] = False,
    json_out: JsonOpt = None,
) -> None:
    """Model-randomisation sanity check of every method (cascade from the top, and full)."""
    from facexplain.benchmarks.sanity import CASCADE, SanityConfig, run_sanity
    from facexplain.benchmarks.sanity_report import SanityResult
    from facexplain.explain.trust import save_sanity_records
    from facexplain.methods.registry import parse_methods

    check_inputs(backbone, LFW_PAIRS, LFW_IMAGES, 10, json_out)
    chosen = (SanityConfig().methods if methods.strip() == "all"  # the slow ones when named
              else tuple(info.name for info in parse_methods(methods)))
    result = SanityResult.from_json(stamp(run_sanity(SanityConfig(
        backbone=backbone, n_pairs=n_pairs, offset=offset, methods=chosen, margin=margin,
        cascade=CASCADE if cascade else (), samples=samples, xface_stride=xface_stride))))
    doc = {**result.to_json(), "table": result.table()}
    typer.echo(result.text())
    plot_path = json_out.with_suffix(".png") if json_out else Path(
        f"out/benchmarks/sanity-{backbone}.png")
    typer.echo(f"plot: {result.figure(plot_path)}")
    if write_record:
        typer.echo(f"sanity verdicts stored in {save_sanity_records(doc)}")
    write_json(doc, json_out)


@register_benchmark("calibration", config="facexplain.benchmarks.calibration:CalibrationConfig",
                    result="facexplain.benchmarks.calibration_report:CalibrationResult",
                    tables=("calibration", "calibration-selective", "calibration-scope"))
def calibration_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    mining: Annotated[str, typer.Option(
        help="Model that mines the look-alike impostors (default: another built-in).")] = "",
    json_out: JsonOpt = None,
    plot: Annotated[Path | None, typer.Option(help="Reliability-diagram PNG path.")] = None,
    write_calibration: Annotated[bool, typer.Option(
        help="Store the kept calibrator, threshold, selective rules and scope profile.")] = False,
) -> None:
    """Held-out calibration of the verdict's confidence on LFW folds, look-alike pairs and Yale
    (logistic, isotonic, beta), and "not sure" rules per error target."""
    from facexplain.benchmarks.calibration import CalibrationConfig, run_calibration
    from facexplain.benchmarks.calibration_report import CalibrationResult
    from facexplain.scoring import save_calibration

    check_inputs(backbone, LFW_PAIRS, LFW_IMAGES, 10, json_out, plot)
    if mining:
        check_inputs(mining, LFW_PAIRS, LFW_IMAGES, 10)
    doc, record = run_calibration(CalibrationConfig(backbone=backbone, mining=mining))
    result = CalibrationResult.from_json(stamp(doc))
    plot_path = plot or (json_out.with_suffix(".png") if json_out else
                         Path(f"out/benchmarks/reliability-{backbone}.png"))
    doc["plot"] = str(result.figure(plot_path))
    doc["table"] = result.table()
    doc["selective_table"] = result.selective_table()
    write_json(doc, json_out)
    typer.echo(doc["table"])
    typer.echo(doc["selective_table"])
    typer.echo(f"kept: {result.chosen}; plot: {doc['plot']}")
    if write_calibration:
        from dataclasses import replace

        typer.echo(f"calibration stored in "
                   f"{save_calibration(replace(record, command=str(doc['command'])))}")


@register_benchmark("lr", config="facexplain.benchmarks.lr:LrConfig",
                    result="facexplain.benchmarks.lr_report:LrResult", tables=("lr",))
def lr_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    mining: Annotated[str, typer.Option(
        help="Model that mines the look-alike impostors (default: another built-in).")] = "",
    json_out: JsonOpt = None,
    plot: Annotated[Path | None, typer.Option(help="Tippett and ECE plots (PNG path).")] = None,
    n_boot: Annotated[int, typer.Option(min=10, max=5000, help="Bootstrap resamples.")] = 200,
    write_calibration: Annotated[bool, typer.Option(
        help="Store the kept LR calibrators (fitted on all folds) in the backbone's "
        "calibration record.")] = False,
) -> None:
    """Strength of evidence held out: Cllr, Cllr_min, Cllr_cal and EER of likelihood ratios
    (lir's logistic, KDE and isotonic calibrators) on LFW folds and look-alike pairs."""
    from facexplain.benchmarks.lr import LrConfig, load_populations, run_lr
    from facexplain.benchmarks.lr_report import LrResult, plot_lr

    check_inputs(backbone, LFW_PAIRS, LFW_IMAGES, 10, json_out, plot)
    if mining:
        check_inputs(mining, LFW_PAIRS, LFW_IMAGES, 10)
    cfg = LrConfig(backbone=backbone, mining=mining, n_boot=n_boot)
    pops = load_populations(cfg)
    doc, fits, kept = run_lr(cfg, pops)
    result = LrResult.from_json(stamp(doc))
    plot_path = plot or (json_out.with_suffix(".png") if json_out else
                         Path(f"out/benchmarks/lr-{backbone}.png"))
    doc["plot"] = str(plot_lr(doc, kept, {n: p.same for n, p in pops.items()}, plot_path))
    doc["table"] = result.table()
    write_json(doc, json_out)
    typer.echo(doc["table"])
    typer.echo(f"kept: {doc['chosen']}; plot: {doc['plot']}")
    if write_calibration:
        from facexplain.scoring import store_lr_fits

        typer.echo(f"LR calibration stored in {store_lr_fits(backbone, fits, str(doc['command']))}")


def tables_command(
    check: Annotated[bool, typer.Option(
        "--check", help="Write nothing; exit 1 listing the tables that differ from their "
        "result files.")] = False,
    doc: Annotated[Path, typer.Option(help="Markdown file with table markers.")]
    = Path("docs/BENCHMARKS.md"),
    results: Annotated[Path, typer.Option(help="Folder of the result files the markers name.")]
    = Path("docs/results"),
) -> None:
    """Rewrite docs/BENCHMARKS.md's generated tables (<!-- table: KIND FILE... --> blocks)
    from the result files; the prose around them is left as it is."""
    from facexplain.benchmarks.tables import blocks, update_file
    from facexplain.errors import InputNotFound

    if not doc.is_file():
        raise InputNotFound(f"{doc}: no such file")
    changed = update_file(doc, results, check=check)
    total = len(blocks(doc.read_text()))
    for block in changed:
        typer.echo(f"{doc}:{block.line}: table '{block.spec}' "
                   f"{'differs from' if check else 'rewritten from'} its result files")
    typer.echo(f"{total - len(changed)} of {total} tables match their result files"
               + ("" if check or not changed else f"; {len(changed)} rewritten"))
    if check and changed:
        raise SystemExit(1)  # as `diff`: 1 = differences found (typer.Exit's code is dropped
        # by the entry point's standalone_mode=False)
