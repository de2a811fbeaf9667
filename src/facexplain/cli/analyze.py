"""`facexplain analyze ...`: model-level analyses on LFW, written as JSON, plots and HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facexplain import settings
from facexplain.backbones.registry import DEFAULT_BACKBONE
from facexplain.cli.options import BackboneOpt, command_line

app = typer.Typer(help="Analyses of a face model on LFW.", no_args_is_help=True)

LFW = settings.current().lfw  # a CLI run is one process: its environment decides


@app.command("neurons")
def neurons_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    layer: Annotated[
        str | None, typer.Option(help="Intermediate node (default: the last spatial map).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("out/neurons"),
    lfw: Annotated[Path, typer.Option(help="LFW root (images, pairs.txt, female_names.txt).")]
    = LFW,
    search_size: Annotated[int, typer.Option(help="Codes in the search benchmark.")]
    = 1_000_000,
    search_queries: Annotated[int, typer.Option(help="Queries in the search benchmark.")] = 200,
    robust_pairs: Annotated[
        int, typer.Option(help="Genuine and impostor pairs per fold in the occlusion test.")
    ] = 50,
    areas: Annotated[str, typer.Option(help="Occluded face shares, comma separated.")]
    = "0,0.1,0.2,0.3,0.4,0.5",
    lbp_identities: Annotated[
        int, typer.Option(help="LBP baseline for the N largest identities (0: all).")
    ] = 5,
    codes: Annotated[
        str, typer.Option(help="Top-layer bits for search and robustness: 'zero' (> 0, the "
                          "paper's rule) or 'median' (> each neuron's median; for models whose "
                          "embedding is never negative).")
    ] = "zero",
    seed: Annotated[int, typer.Option(help="Seed of splits, masks and synthetic codes.")] = 0,
) -> None:
    """Sparsity, selectivity, binary codes and occlusion robustness of a model's neurons."""
    from facexplain.benchmarks.neurons import NeuronAnalysisConfig, run_neuron_analysis
    from facexplain.benchmarks.neurons_report import table_row, write_neuron_report
    from facexplain.errors import InvalidArgument

    try:
        area_list = tuple(float(a) for a in areas.split(",") if a.strip())
    except ValueError:
        raise InvalidArgument(f"--areas must be comma-separated numbers, got {areas!r}") from None
    if not area_list or any(not 0.0 <= a <= 1.0 for a in area_list):
        raise InvalidArgument("--areas must be fractions in [0, 1]")
    if codes not in ("zero", "median"):
        raise InvalidArgument(f"--codes must be 'zero' or 'median', got {codes!r}")
    if search_size < 1 or search_queries < 1 or robust_pairs < 0:
        raise InvalidArgument("--search-size and --search-queries must be positive")
    cfg = NeuronAnalysisConfig(
        backbone=backbone, layer=layer, lfw_root=lfw, search_size=search_size,
        search_queries=search_queries, robust_pairs=robust_pairs,
        areas=tuple(sorted(set(area_list) | {0.0})), lbp_identities=lbp_identities, seed=seed,
        codes=codes,
    )
    command = command_line()
    doc = write_neuron_report(run_neuron_analysis(cfg), out, command)
    row = table_row(doc)
    typer.echo(
        f"{backbone}: active per image {row.active_per_image_top:.3f} (top), "
        f"{row.active_per_image_node:.3f} ({row.node}); per neuron "
        f"{row.images_per_neuron_top:.3f}; LFW real {row.real:.4f} vs binary "
        f"{row.binary_zero:.4f} (median {row.binary_median:.4f}); search over "
        f"{row.n_database:,}: {row.speedup}x faster, recall@{row.k} {row.recall:.3f}"
    )
    for name, one, lbp_acc in [*row.identities, ("gender", *row.gender)]:
        lbp_txt = f"{lbp_acc:.3f}" if lbp_acc is not None else "-"
        typer.echo(f"  {name}: best neuron {one:.3f}, LBP linear {lbp_txt}")
    typer.echo(f"report: {out / 'neurons.html'}")


@app.command("filters")
def filters_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    variants: Annotated[str, typer.Option(help="Trained head variants, comma separated "
                                          "(base, sad, fad, sad+fad).")] = "base,sad+fad",
    fold: Annotated[str, typer.Option(help="Heads of this fold ('half1', 'half2' or 'all'); "
                                      "the photos are those the heads did not see.")] = "half1",
    images: Annotated[int, typer.Option(help="Held-out LFW photos to analyse.")] = 1000,
    occlusions: Annotated[str, typer.Option(
        help="Places hidden for Figs. 6-7 (left eye, right eye, nose, mouth, forehead, left "
        "cheek, right cheek), comma separated.")]
    = "left eye,right eye,nose,mouth,forehead,left cheek",
    filters: Annotated[int, typer.Option(min=2, help="N_f of the heads (as trained).")] = 128,
    mesh: Annotated[int, typer.Option(help="Mesh the heads trained with: 5 or 68.")] = 5,
    unfreeze: Annotated[bool, typer.Option(
        "--unfreeze", help="Heads of the unfrozen trial (trained with --unfreeze).")] = False,
    tail_lr: Annotated[float, typer.Option(
        help="The unfrozen heads' --tail-lr, as trained.")] = 1e-4,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("out/filters"),
    lfw: Annotated[Path, typer.Option(help="LFW root (images, pairs.txt).")] = LFW,
    seed: Annotated[int, typer.Option(help="Seed of the photo sample.")] = 0,
) -> None:
    """Where the part filters of trained heads respond (the paper's Figs. 5-9)."""
    from facexplain.benchmarks.filter_study import FilterStudyConfig, run_filter_study
    from facexplain.train.parts import PartsTrainConfig

    suffix = PartsTrainConfig(backbone=backbone, n_filters=filters, mesh=mesh,
                              unfreeze=unfreeze, tail_lr=tail_lr).checkpoint_suffix
    cfg = FilterStudyConfig(
        backbone=backbone, fold=fold, n_images=images, seed=seed, heads_suffix=suffix,
        variants=tuple(v.strip() for v in variants.split(",") if v.strip()),
        occlusions=tuple(o.strip() for o in occlusions.split(",") if o.strip()),
        lfw_images=lfw / "lfw-deepfunneled", lfw_pairs=lfw / "pairs.txt",
        cache_dir=settings.current().cache,
        command=command_line(),
    )
    doc = run_filter_study(cfg, out)
    typer.echo(f"{backbone}, fold {fold}, {doc['n_images']} held-out photos "
               "(peak spread / median per-filter std, in cells):")
    by_variant = doc["variants"]
    assert isinstance(by_variant, dict)
    for variant, v in by_variant.items():
        occ = ", ".join(f"{p} {o['mean_abs_change']:.4f}" for p, o in v["occlusion"].items())
        typer.echo(f"  {variant}: positive {v['positive']['spread']:.2f} / "
                   f"{v['positive']['median_std']:.2f}, negative {v['negative']['spread']:.2f} / "
                   f"{v['negative']['median_std']:.2f}; mean |Δf| {occ}")
    typer.echo(f"figures and filters.json in {out}")
