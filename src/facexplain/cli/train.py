"""`facexplain train ...`: fit the small interpretable heads on a frozen backbone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facexplain import settings
from facexplain.backbones.registry import DEFAULT_BACKBONE
from facexplain.cli.options import BackboneOpt

app = typer.Typer(help="Train interpretable heads on frozen backbones.", no_args_is_help=True)

LFW = settings.current().lfw  # a CLI run is one process: its environment decides


@app.command("xcos")
def xcos_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    fold: Annotated[
        int | None,
        typer.Option(help="Train the head for LFW test fold K (1-10) on identities not in it."),
    ] = None,
    all_folds: Annotated[
        bool, typer.Option("--all-folds", help="Train the ten fold heads (for the benchmark).")
    ] = False,
    teacher: Annotated[
        str | None, typer.Option(help="Backbone whose cosine xCos learns (default: itself).")
    ] = None,
    node: Annotated[
        str | None, typer.Option(help="Spatial map to use (default: the last one).")
    ] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 12,
    pairs_per_epoch: Annotated[int, typer.Option(min=1)] = 16384,
    batch_pairs: Annotated[int, typer.Option(min=2, help="Pairs per training step.")] = 256,
    lr: Annotated[float, typer.Option(min=0.0)] = 1e-3,
    identity_loss: Annotated[str, typer.Option(help="cosface or arcface.")] = "cosface",
    identity_weight: Annotated[float, typer.Option(min=0.0)] = 0.1,
    kl_weight: Annotated[
        float, typer.Option(min=0.0, help="Weight of KL(L || uniform) on the learned attention.")
    ] = 0.05,
    occlusion_prob: Annotated[
        float,
        typer.Option(min=0.0, max=1.0,
                     help="Share of pairs with one face brush-occluded (10-40%) in training."),
    ] = 0.0,
    hard_fraction: Annotated[
        float,
        typer.Option(min=0.0, max=1.0,
                     help="Share of impostor pairs mined as the most teacher-similar in a step."),
    ] = 0.0,
    cell_specific_grid: Annotated[
        bool,
        typer.Option("--cell-specific-grid/--shared-grid",
                     help="One 1x1 projection per cell (fits a frozen backbone's FC better) "
                     "or one shared by all cells (the paper's 1x1 conv)."),
    ] = True,
    attention_padding: Annotated[
        str,
        typer.Option(help="How the learned attention's 3x3 convs pad the grid: zeros (the "
                     "paper's; lets W find border cells by position) or replicate."),
    ] = "zeros",
    attention_shared: Annotated[
        bool,
        typer.Option("--attention-shared/--attention-from-grid",
                     help="W from its own shared 1x1 projection of the map (content only) or "
                     "from the grid features (with a cell-specific grid they carry position)."),
    ] = False,
    seed: int = 0,
    threads: Annotated[
        int | None, typer.Option(min=1, help="torch threads (default: torch's choice).")
    ] = None,
    images: Annotated[Path, typer.Option(help="LFW image root.")] = LFW / "lfw-deepfunneled",
    pairs: Annotated[Path, typer.Option(help="LFW pairs.txt (defines the folds).")] = LFW
    / "pairs.txt",
    out_root: Annotated[
        Path | None, typer.Option(help="Checkpoint root (default: the asset home).")
    ] = None,
) -> None:
    """Train the xCos head; without --fold/--all-folds, on all of LFW (the default head).

    Checkpoints: <home>/xcos/<backbone>/{all,fold<K>}.safetensors plus a JSON twin.
    """
    import torch

    from facexplain.backbones.registry import get_spec
    from facexplain.datasets.lfw import N_FOLDS, check_pairs_file
    from facexplain.errors import InvalidArgument
    from facexplain.heads.xcos import PADDINGS
    from facexplain.losses.margins import MARGIN_KINDS
    from facexplain.train.xcos import run_xcos_training
    from facexplain.train.xcos_data import XCosTrainConfig

    if fold is not None and all_folds:
        raise InvalidArgument("give either --fold K or --all-folds, not both")
    get_spec(backbone)
    check_pairs_file(pairs, folds=N_FOLDS)
    if not images.is_dir():
        raise InvalidArgument(f"image folder {images}: no such directory")
    if identity_loss not in MARGIN_KINDS:
        raise InvalidArgument(f"--identity-loss must be one of {', '.join(MARGIN_KINDS)}")
    if attention_padding not in PADDINGS:
        raise InvalidArgument(f"--attention-padding must be one of {', '.join(PADDINGS)}")
    if threads:
        torch.set_num_threads(threads)
    cfg = XCosTrainConfig(
        backbone=backbone, teacher=teacher, node=node, epochs=epochs,
        pairs_per_epoch=pairs_per_epoch, batch_pairs=batch_pairs, lr=lr,
        identity_loss=identity_loss, identity_weight=identity_weight, kl_weight=kl_weight,
        occlusion_prob=occlusion_prob, hard_fraction=hard_fraction, seed=seed,
        cell_specific_grid=cell_specific_grid, attention_padding=attention_padding,
        attention_shared=attention_shared,
        images=images, pairs=pairs, out_root=out_root,
    )
    folds: list[int | None] = (
        list(range(1, N_FOLDS + 1)) if all_folds else [fold]
    )
    saved = run_xcos_training(cfg, folds, log=typer.echo)
    typer.echo(f"{len(saved)} checkpoint(s) written under {saved[0].parent}")
