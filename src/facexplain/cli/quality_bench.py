"""`facexplain benchmark quality`: error-versus-discard curves of photo quality on LFW."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facexplain.backbones.registry import DEFAULT_BACKBONE
from facexplain.benchmarks.registry import register_benchmark, stamp
from facexplain.cli.options import (
    LFW_IMAGES,
    LFW_PAIRS,
    BackboneOpt,
    JsonOpt,
    check_inputs,
    write_json,
)


@register_benchmark("quality", config="facexplain.benchmarks.quality:QualityConfig",
                    result="facexplain.benchmarks.quality_report:QualityResult",
                    tables=("quality",))
def quality_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    mining: Annotated[str, typer.Option(
        help="Model that mines the look-alike impostors (default: another built-in).")] = "",
    json_out: JsonOpt = None,
    plot: Annotated[Path | None, typer.Option(help="EDC curves (PNG path).")] = None,
    n_boot: Annotated[int, typer.Option(min=10, max=5000, help="Bootstrap resamples.")] = 200,
    write_calibration: Annotated[bool, typer.Option(
        help="Store the quality profile (folds 1-5) and the LR for pairs with a degraded "
        "photo in the backbone's calibration record.")]
    = False,
) -> None:
    """Photo quality judged by the errors it predicts: EDC pAUC against random discard for the
    unified score and each component, on LFW, look-alike pairs and seeded degraded copies."""
    from facexplain.benchmarks.quality import QualityConfig, run_quality
    from facexplain.benchmarks.quality_report import QualityResult, plot_edc

    check_inputs(backbone, LFW_PAIRS, LFW_IMAGES, 10, json_out, plot)
    if mining:
        check_inputs(mining, LFW_PAIRS, LFW_IMAGES, 10)
    doc, profile, extra = run_quality(QualityConfig(backbone=backbone, mining=mining,
                                                    n_boot=n_boot))
    stamp(doc)
    plot_path = plot or (json_out.with_suffix(".png") if json_out else
                         Path(f"out/benchmarks/quality-{backbone}.png"))
    doc["plot"] = str(plot_edc(doc, plot_path))
    doc["table"] = QualityResult.from_json(doc).table()
    write_json(doc, json_out)
    typer.echo(doc["table"])
    typer.echo(f"unified score: {doc['unified']}; plot: {doc['plot']}")
    if write_calibration:
        from facexplain.scoring import store_lr_fits, store_quality_profile

        typer.echo(f"quality profile stored in "
                   f"{store_quality_profile(backbone, profile.to_json(), str(doc['command']))}")
        where = store_lr_fits(backbone, {"degraded": extra["lr_fit"]}, str(doc["command"]),
                              keep_others=True)
        typer.echo(f"LR for pairs with a degraded photo stored in {where}")
