"""`facexplain benchmark faithfulness | xcos`: how well maps predict score changes, and xCos vs
cosine on LFW.

Registered as benchmark tasks (``benchmarks.registry``); each prints its table and writes JSON.
"""

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
    ImagesOpt,
    JsonOpt,
    PairsOpt,
    SamplesOpt,
    XfaceStrideOpt,
    check_inputs,
    int_list,
    write_json,
)


def _record_methods(record_methods: str | None, write_record: bool,
                    chosen: tuple[str, ...]) -> tuple[str, ...] | None:
    """The methods whose records ``--record-methods`` stores (None: all of the run); refused in
    one line without ``--write-record``, empty, or naming a method the run does not have."""
    from facexplain.errors import InvalidArgument

    if record_methods is None:
        return None
    only = tuple(m.strip() for m in record_methods.split(",") if m.strip())
    if not write_record:
        raise InvalidArgument("--record-methods needs --write-record")
    if not only or set(only) - set(chosen):
        raise InvalidArgument(f"--record-methods must name methods of this run "
                              f"({', '.join(chosen)}), got '{record_methods}'")
    return only


@register_benchmark(
    "faithfulness", config="facexplain.benchmarks.faithfulness:FaithfulnessConfig",
    result="facexplain.benchmarks.faithfulness:FaithfulnessResult",
    tables=("faithfulness-ranking", "method-table"))
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
    samples: SamplesOpt = None,
    xface_stride: XfaceStrideOpt = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Ignore finished pairs of an earlier run.")
    ] = False,
    write_record: Annotated[
        bool, typer.Option("--write-record", help="Store each map's rank for the report.")
    ] = False,
    record_methods: Annotated[str | None, typer.Option(
        help="With --write-record: store only these methods' ranks (their place among every "
        "map of this run), keeping the other methods' stored ranks.")] = None,
    json_out: JsonOpt = None,
    plot: Annotated[Path | None, typer.Option(help="Mean-curves PNG path.")] = None,
    pairs_file: PairsOpt = LFW_PAIRS,
    images: ImagesOpt = LFW_IMAGES,
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
    check_inputs(backbone, pairs_file, images, 10, json_out, plot)
    if study_pairs is not None and write_record:
        from facexplain.errors import InvalidArgument

        raise InvalidArgument("--write-record stores the LFW ranks the report shows; "
                              "run it without --study-pairs")
    only = _record_methods(record_methods, write_record, chosen)
    cfg = FaithfulnessConfig(
        backbone=backbone, n_pairs=n_pairs, methods=chosen, fill=fill,
        patch=patch, stride=stride, ig_steps=ig_steps or None,
        modes=tuple(m.strip() for m in modes.split(",") if m.strip()),
        samples=samples, xface_stride=xface_stride,
        blocks=int_list(blocks, "--blocks"), seed=seed, device=device,
        pairs=pairs_file, images=images, resume=not fresh, pairs_file=study_pairs,
    )
    result = run(cfg)
    s = stamp(result.to_json())
    s["ranking"] = {row: r.to_dict() for row, r in ranks(result).items()}
    s["ranking_markdown"] = ranking_markdown(result)
    plot_path = plot or (json_out.with_suffix(".png") if json_out else
                         Path(f"out/benchmarks/faithfulness-{backbone}-{fill}.png"))
    s["plot"] = str(plot_curves(result, plot_path))
    write_json(s, json_out)
    typer.echo(f"{backbone}, fill {fill}: {s['n_genuine']} genuine + {s['n_impostor']} impostor "
               f"pairs ({s['pair_selection']}), {s['seconds']} s ({s['resumed_pairs']} resumed), "
               f"{s['device']}")
    typer.echo(format_table(result))
    typer.echo(f"plot: {s['plot']}")
    if write_record:
        from facexplain.explain.trust import save_faithfulness_records
        from facexplain.methods.registry import get_method

        rows = None if only is None else {r.row(m) for m in only for r in get_method(m).rankings}
        typer.echo(f"ranks stored: {save_faithfulness_records(s, rows=rows)}")


@register_benchmark("xcos", config="facexplain.benchmarks.xcos:XCosBenchmarkConfig",
                    tables=("xcos-occlusion",))
def xcos_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    json_out: JsonOpt = None,
    areas: Annotated[
        str, typer.Option(help="Brush-stroke occlusion fractions of the face, comma-separated.")
    ] = "0.1,0.2,0.3,0.4",
    templates: Annotated[
        bool, typer.Option("--templates/--no-templates", help="Also occlude with mask pictures.")
    ] = True,
    timing_pairs: Annotated[int, typer.Option(min=0, help="Pairs timed for cost (0: skip).")] = 30,
    seed: int = 0,
    pairs: PairsOpt = LFW_PAIRS,
    images: ImagesOpt = LFW_IMAGES,
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
    from facexplain.benchmarks.xcos_report import xcos_tables
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
    check_inputs(backbone, pairs, images, 10, json_out)
    cfg = XCosBenchmarkConfig(backbone=backbone, images=images, pairs=pairs, areas=fractions,
                              templates=templates, timing_pairs=timing_pairs, seed=seed,
                              checkpoint_root=checkpoint_root, development_folds=dev)
    s = stamp(run_xcos_benchmark(cfg, log=typer.echo))
    out = json_out or Path(f"out/benchmarks/xcos-{backbone}.json")
    write_json(s, out)
    for line in xcos_tables(s):
        typer.echo(line)
    typer.echo(f"JSON: {out}")


@register_benchmark("planted", config="facexplain.benchmarks.planted:PlantedConfig",
                    result="facexplain.benchmarks.planted_report:PlantedResult",
                    tables=("planted", "planted-components", "method-table"))
def planted_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    methods: Annotated[str, typer.Option(
        help="Comma-separated method names, or all (every method with a ranking map).")] = "all",
    altered: Annotated[int, typer.Option(min=10, help="Altered pairs to keep.")] = 300,
    controls: Annotated[int, typer.Option(
        min=0, help="Same-person transplants and untouched pairs, each.")] = 100,
    impostors: Annotated[int, typer.Option(
        min=0, help="Held-out impostor pairs, scored for component findings only.")] = 100,
    shape: Annotated[str, typer.Option(
        help="Planted set: landmark (regions follow the 68-point outlines, in the aligned "
        "crop) or box (a jittered rectangle or ellipse around a landmark group, pasted into "
        "the photo before alignment).")] = "landmark",
    mining: Annotated[str, typer.Option(
        help="Model that picks the look-alike donors (default: another built-in).")] = "",
    fresh: Annotated[bool, typer.Option("--fresh", help="Ignore finished pairs.")] = False,
    write_record: Annotated[bool, typer.Option(
        "--write-record", help="Store each map's scores; the report shows them (a record "
        "measured on more altered pairs is kept).")] = False,
    record_methods: Annotated[str | None, typer.Option(
        help="With --write-record: store only these methods' rows, comma separated.")] = None,
    workers: Annotated[int, typer.Option(
        min=0, help="Ray actors playing pairs (0: in this process).")] = 0,
    max_altered: Annotated[int | None, typer.Option(
        min=10, help="Play only the first K altered pairs and their controls.")] = None,
    samples: SamplesOpt = None,
    xface_stride: XfaceStrideOpt = None,
    address: Annotated[str | None, typer.Option(
        help="Ray cluster address (with --workers; default: local Ray).")] = None,
    json_out: JsonOpt = None,
    figure: Annotated[Path | None, typer.Option(help="Example-pairs PNG path.")] = None,
    figure_pairs: Annotated[int, typer.Option(
        min=0, max=4, help="Altered pairs in the figure, one per region (0: no figure; the "
        "slow methods take minutes per pair).")] = 4,
) -> None:
    """The planted-difference game: one region of one face replaced by a look-alike's; which
    maps find it, and which photo they blame (resumes an interrupted run)."""
    from facexplain.benchmarks.planted import (
        PlantedConfig,
        example_maps,
        game_methods,
        run_planted,
    )
    from facexplain.benchmarks.planted_report import PlantedResult, plot_examples
    from facexplain.methods.registry import parse_methods

    chosen = game_methods() if methods.strip() == "all" else tuple(
        i.name for i in parse_methods(methods))
    only = _record_methods(record_methods, write_record, chosen)
    from facexplain.benchmarks.planted import SHAPES
    from facexplain.errors import InvalidArgument

    if shape not in SHAPES:
        raise InvalidArgument(f"--shape must be one of {', '.join(SHAPES)}, got {shape!r}")
    check_inputs(backbone, LFW_PAIRS, LFW_IMAGES, 10, json_out, figure)
    if mining:
        check_inputs(mining, LFW_PAIRS, LFW_IMAGES, 10)
    cfg = PlantedConfig(backbone=backbone, mining=mining, methods=chosen, n_altered=altered,
                        n_controls=controls, n_impostor=impostors, shape=shape,
                        resume=not fresh, max_altered=max_altered,
                        samples=samples, xface_stride=xface_stride)
    if workers:
        from facexplain.batch.game import ray_player

        doc = run_planted(cfg, ray_player(workers, address))
    else:
        doc = run_planted(cfg)
    result = PlantedResult.from_json(stamp(doc))
    doc["table"] = result.table()
    fig_path = figure or (json_out.with_suffix(".png") if json_out else
                          Path(f"out/benchmarks/planted-{backbone}"
                               f"{'' if shape == 'landmark' else '-' + shape}.png"))
    if figure_pairs:
        game, picked, maps = example_maps(cfg, figure_pairs)
        doc["figure"] = str(plot_examples(game, maps, picked, fig_path))
    write_json(doc, json_out)
    typer.echo(f"{backbone}: {result.pairs} pairs, mean drop {result.mean_drop}, "
               f"{result.seconds} s")
    typer.echo(doc["table"])
    if figure_pairs:
        typer.echo(f"figure: {doc['figure']}")
    if write_record:
        from facexplain.explain.trust_game import save_planted_records

        written, kept = save_planted_records(doc, methods=only)
        typer.echo(f"game scores stored in {written}")
        if kept:
            typer.echo(f"kept the stored records of {', '.join(kept)}: measured on more "
                       "altered pairs than this run")
