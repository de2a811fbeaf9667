"""`facexplain benchmark component-theta`: each facial component's Θ_c on LFW folds 1-5.

Registered as a benchmark task (``benchmarks.registry``); prints the table, writes JSON, and
with ``--write`` stores Θ_c for these weights where `explain --method components` reads it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from facexplain.backbones.registry import DEFAULT_BACKBONE
from facexplain.benchmarks.registry import register_benchmark, stamp
from facexplain.cli.options import LFW, BackboneOpt, JsonOpt, LfwOpt, check_inputs, write_json


@register_benchmark("component-theta",
                    config="facexplain.benchmarks.component_theta:ComponentThetaConfig",
                    result="facexplain.benchmarks.component_theta:ComponentThetaResult")
def component_theta_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    variant: Annotated[str, typer.Option(help="hide, swap or hide+swap.")] = "hide+swap",
    pairs_per_fold: Annotated[int, typer.Option(
        min=5, help="Genuine pairs per calibration fold (folds 1-5).")] = 60,
    quantile: Annotated[float, typer.Option(
        min=0.5, max=1.0, help="Θ_c is this quantile of the genuine pairs' scores.")] = 0.99,
    write: Annotated[bool, typer.Option(
        help="Store Θ_c for these weights (records; a developer copies it into the package)."
    )] = False,
    json_out: JsonOpt = None,
    lfw: LfwOpt = LFW,
) -> None:
    """Θ_c per facial component: a high quantile of its score over genuine LFW pairs."""
    from facexplain.benchmarks.component_theta import ComponentThetaConfig, run_component_theta
    from facexplain.errors import InvalidArgument
    from facexplain.explain.component_theta import save_component_theta
    from facexplain.explain.components import VARIANTS

    if variant not in VARIANTS:
        raise InvalidArgument(f"--variant must be one of {', '.join(VARIANTS)}, got {variant}")
    check_inputs(backbone, lfw / "pairs.txt", None, 10, json_out)
    cfg = ComponentThetaConfig(backbone=backbone, variant=variant, quantile=quantile,
                               pairs_per_fold=pairs_per_fold, lfw=lfw)
    result = run_component_theta(cfg)
    doc = stamp(result.to_json())
    write_json(doc, json_out)
    typer.echo(result.table())
    typer.echo(f"{result.n_pairs} genuine pairs, {doc['seconds_per_pair']} s per pair")
    if write:
        theta = result.theta(str(doc["command"]), str(doc["date"]))
        typer.echo(f"Θ_c stored in {save_component_theta(theta)}")
