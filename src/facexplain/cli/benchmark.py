"""`facexplain benchmark ...`: measured numbers, printed as a table and written as JSON."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from facexplain.backbones.registry import DEFAULT_BACKBONE
from facexplain.cli.verify import BackboneOpt

app = typer.Typer(help="Benchmarks on real data.", no_args_is_help=True)

LFW = Path("../shared/data/lfw")


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


@app.command("faithfulness")
def faithfulness_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    n_pairs: Annotated[
        int, typer.Option("--pairs", help="Held-out pairs (half genuine), folds 6-10.")
    ] = 300,
    methods: Annotated[
        str, typer.Option(help="Comma-separated: occlusion,saliency,deconv,guided,ig,gradcam.")
    ] = "occlusion,saliency,deconv,guided,ig,gradcam",
    fill: Annotated[
        str, typer.Option(help="What removed pixels become: mean-face, channel-mean, zero, blur.")
    ] = "mean-face",
    patch: Annotated[int, typer.Option("--patch", "-k", help="Occlusion patch size k.")] = 16,
    stride: Annotated[int, typer.Option("--stride", "-s", help="Occlusion stride s.")] = 8,
    ig_steps: Annotated[int, typer.Option(help="Integrated-gradients steps.")] = 32,
    block: Annotated[
        int, typer.Option(help="Deletion unit: 1 = single pixels, B = BxB blocks.")
    ] = 1,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    seed: Annotated[int, typer.Option(help="Seed of the random order and tie-breaks.")] = 0,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the result as JSON here.")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Mean-curves PNG path.")] = None,
    pairs_file: Annotated[Path, typer.Option(help="Pair list in pairs.txt format.")] = LFW
    / "pairs.txt",
    images: Annotated[Path, typer.Option(help="Image root (Name/Name_0001.jpg).")] = LFW
    / "lfw-deepfunneled",
) -> None:
    """Deletion-curve faithfulness of every explanation method against random order."""
    from facexplain.benchmarks.faithfulness import (
        FaithfulnessConfig,
        format_table,
        plot_curves,
        run_faithfulness,
    )

    cfg = FaithfulnessConfig(
        backbone=backbone, n_pairs=n_pairs,
        methods=tuple(m.strip() for m in methods.split(",") if m.strip()), fill=fill,
        patch=patch, stride=stride, ig_steps=ig_steps, block=block, seed=seed, device=device,
        pairs=pairs_file, images=images,
    )
    result = run_faithfulness(cfg)
    s = dict(result.summary)
    s["command"] = "facexplain " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    plot_path = plot or (json_out.with_suffix(".png") if json_out else
                         Path(f"out/benchmarks/faithfulness-{backbone}-{fill}"
                              f"{f'-b{block}' if block > 1 else ''}.png"))
    s["plot"] = str(plot_curves(result, plot_path))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(s, indent=2) + "\n")
    typer.echo(f"{backbone}, fill {fill}: {s['n_genuine']} genuine + {s['n_impostor']} impostor "
               f"pairs (folds 6-10), {s['seconds']} s, {s['device']}")
    typer.echo(format_table(result))
    typer.echo(f"plot: {s['plot']}")
