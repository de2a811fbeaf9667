"""`facexplain train parts` and `facexplain benchmark interpretable`: the part-filter head.

`benchmark interpretable` is a registered benchmark task (``benchmarks.registry``); `train
parts` is added to the `train` group by ``cli.app``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facexplain import settings
from facexplain.backbones.registry import DEFAULT_BACKBONE
from facexplain.benchmarks.registry import register_benchmark, stamp
from facexplain.cli.options import (
    LFW,
    BackboneOpt,
    JsonOpt,
    LfwOpt,
    check_inputs,
    write_json,
)

YALE = settings.current().yale

EpochsOpt = Annotated[int, typer.Option(min=1, help="Passes over the training photos.")]
FiltersOpt = Annotated[int, typer.Option(min=2, help="Part filters N_f (the paper: 320).")]
KeepOpt = Annotated[float, typer.Option(
    min=0.01, max=1.0, help="FAD's τ: share of the N_f dimensions kept (the paper: 260/320).")]
ThreadsOpt = Annotated[int | None, typer.Option(min=1, help="torch threads.")]
MeshOpt = Annotated[int, typer.Option(
    help="Landmarks the occluding rectangle is warped through: 5 (the detector's, an 18-point "
    "mesh) or 68 (face-api's, the paper's mesh).")]
UnfreezeOpt = Annotated[bool, typer.Option(
    "--unfreeze", help="The unfrozen trial: the backbone's layers from the head's middle map to "
    "its late map train with the head (graph backbones only; stored apart).")]
TailLrOpt = Annotated[float, typer.Option(
    min=1e-7, max=1.0, help="Learning rate of the unfrozen backbone layers (--unfreeze).")]


def _config(backbone: str, variant: str, epochs: int, filters: int, keep: float,
            lfw: Path, threads: int | None, mesh: int = 5, unfreeze: bool = False,
            tail_lr: float = 1e-4) -> object:
    import torch

    from facexplain.backbones.registry import get_spec
    from facexplain.datasets.lfw import check_pairs_file
    from facexplain.heads.parts import nodes_for
    from facexplain.train.parts import PartsTrainConfig

    get_spec(backbone)
    nodes = nodes_for(backbone)
    check_pairs_file(lfw / "pairs.txt", folds=10)
    if unfreeze:  # fail now, not after an hour of feature extraction
        from facexplain.heads.parts_tail import BackboneTail

        BackboneTail(backbone, nodes[1], nodes[2])
    if threads:
        torch.set_num_threads(threads)
    return PartsTrainConfig(backbone=backbone, variant=variant, epochs=epochs,
                            n_filters=filters, fad_keep=keep, mesh=mesh, unfreeze=unfreeze,
                            tail_lr=tail_lr, images=lfw / "lfw-deepfunneled",
                            pairs=lfw / "pairs.txt")


def train_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    variant: Annotated[str, typer.Option(
        help="base, base-aug (trained on occluded faces too), sad, fad or sad+fad.")] = "sad+fad",
    split: Annotated[str, typer.Option(
        help="all (every LFW identity: the head `explain --method parts` uses), half1 "
        "(not folds 1-5) or half2 (not folds 6-10).")] = "all",
    epochs: EpochsOpt = 6,
    filters: FiltersOpt = 128,
    fad_keep: KeepOpt = 260 / 320,
    mesh: MeshOpt = 5,
    unfreeze: UnfreezeOpt = False,
    tail_lr: TailLrOpt = 1e-4,
    lfw: LfwOpt = LFW,
    threads: ThreadsOpt = None,
) -> None:
    """Train the part-filter head (SAD + LMF + FAD) on a frozen backbone's maps."""
    from facexplain.errors import InvalidArgument
    from facexplain.train.parts import HALVES, PartsTrainConfig, run_parts_training

    if split not in HALVES:
        raise InvalidArgument(f"--split must be one of {', '.join(HALVES)}, got '{split}'")
    cfg = _config(backbone, variant, epochs, filters, fad_keep, lfw, threads, mesh, unfreeze,
                  tail_lr)
    assert isinstance(cfg, PartsTrainConfig)
    saved = run_parts_training(cfg, [split])
    typer.echo(f"head written: {saved[0]}")


@register_benchmark("interpretable", config="facexplain.train.parts:PartsTrainConfig",
                    tables=("interpretable",))
def benchmark_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    variants: Annotated[str, typer.Option(help="Comma-separated variants to compare.")]
    = "base,sad,fad,sad+fad",
    fad_keeps: Annotated[str, typer.Option(
        help="Extra τ shares for sad+fad (Table 2 of the paper, scaled to N_f), comma-separated; "
        "empty for none.")] = "",
    epochs: EpochsOpt = 6,
    filters: FiltersOpt = 128,
    fad_keep: KeepOpt = 260 / 320,
    mesh: MeshOpt = 5,
    unfreeze: UnfreezeOpt = False,
    tail_lr: TailLrOpt = 1e-4,
    yale: Annotated[Path | None, typer.Option(help="Yale faces folder ('' to skip).")] = YALE,
    retrain: Annotated[bool, typer.Option(help="Retrain heads even if trained alike.")] = False,
    json_out: JsonOpt = None,
    lfw: LfwOpt = LFW,
    threads: ThreadsOpt = None,
) -> None:
    """The paper's ablation on LFW (clean and occluded, fold-honest halves), Yale EER and peak
    statistics, for every variant (base-aug: the paper's augmented baseline) and the backbone's
    own cosine. Heads of another --filters, --mesh or --unfreeze are stored apart from the
    default ones."""
    from facexplain.benchmarks.parts import run_interpretable_benchmark
    from facexplain.errors import InvalidArgument
    from facexplain.heads.parts import VARIANTS
    from facexplain.train.parts import PartsTrainConfig

    chosen = [v.strip() for v in variants.split(",") if v.strip()]
    bad = [v for v in chosen if v not in VARIANTS]
    if bad or not chosen:
        raise InvalidArgument(f"--variants: unknown {', '.join(bad) or '(none)'}; valid: "
                              f"{', '.join(VARIANTS)}")
    try:
        keeps = [float(k) for k in fad_keeps.split(",") if k.strip()]
    except ValueError:
        raise InvalidArgument(f"--fad-keeps must be numbers, got '{fad_keeps}'") from None
    if any(not 0 < k <= 1 for k in keeps):
        raise InvalidArgument("--fad-keeps values must be in (0, 1]")
    if json_out is not None:
        check_inputs(backbone, lfw / "pairs.txt", None, 10, json_out)
    yale_dir = yale if yale is not None and str(yale) not in ("", ".") else None
    cfg = _config(backbone, chosen[0], epochs, filters, fad_keep, lfw, threads, mesh, unfreeze,
                  tail_lr)
    assert isinstance(cfg, PartsTrainConfig)
    doc = run_interpretable_benchmark(cfg, chosen, keeps, yale_dir, retrain, log=typer.echo)
    stamp(doc)
    typer.echo(str(doc["table"]))
    if write_json(doc, json_out) is not None:
        typer.echo(f"result: {json_out}")
