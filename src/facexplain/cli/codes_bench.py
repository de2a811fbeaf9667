"""`facexplain benchmark codes | search-speed | gallery`: binary codes and 1:N search on LFW.

Registered as benchmark tasks (``benchmarks.registry``); each prints a table row and writes
JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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


def _check(backbone: str, lfw: Path, json_out: Path | None) -> None:
    check_inputs(backbone, lfw / "pairs.txt", None, 10, json_out)


def _write(doc: dict[str, object], json_out: Path | None) -> None:
    stamp(doc)
    if write_json(doc, json_out) is not None:
        typer.echo(f"result: {json_out}")


@register_benchmark("codes", config="facexplain.benchmarks.codes:CodesBenchmarkConfig")
def codes_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    json_out: JsonOpt = None,
    lfw: LfwOpt = LFW,
    max_bits: Annotated[int, typer.Option(help="Largest learned code tried (bits).")] = 2048,
    seed: Annotated[int, typer.Option(help="Seed of the random projections.")] = 0,
) -> None:
    """LFW accuracy with float cosine, sign codes and learned codes (chosen on folds 1-5,
    reported on folds 6-10)."""
    from facexplain.benchmarks.codes import CodesBenchmarkConfig, run_codes_benchmark
    from facexplain.errors import InvalidArgument

    if max_bits < 8:
        raise InvalidArgument(f"--max-bits must be >= 8, got {max_bits}")
    _check(backbone, lfw, json_out)
    doc = run_codes_benchmark(CodesBenchmarkConfig(backbone=backbone, lfw_root=lfw,
                                                   max_bits=max_bits, seed=seed))
    f, s, m, c = (doc[k] for k in ("float", "sign", "median", "chosen"))
    assert isinstance(f, dict) and isinstance(s, dict) and isinstance(m, dict)
    assert isinstance(c, dict)
    typer.echo(
        f"{backbone} (folds 6-10): float {f['test_accuracy']:.4f}, sign {s['test_accuracy']:.4f} "
        f"(-{s['test_drop_points']} pt), median {m['test_accuracy']:.4f} "
        f"(-{m['test_drop_points']} pt), learned {c['code']} {c['test_accuracy']:.4f} "
        f"(-{c['test_drop_points']} pt, {c['bytes_per_face']} B/face)")
    _write(doc, json_out)


@register_benchmark("search-speed",
                    config="facexplain.benchmarks.search:SearchBenchmarkConfig")
def search_speed_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    json_out: JsonOpt = None,
    lfw: LfwOpt = LFW,
    code: Annotated[str, typer.Option(help="Codes: sign, median, rotation-BITS, itq-BITS.")]
    = "rotation-256",
    size: Annotated[int, typer.Option(help="Database size (LFW + synthetic).")] = 1_000_000,
    queries: Annotated[int, typer.Option(help="LFW query faces.")] = 200,
    short_lists: Annotated[str, typer.Option(help="Short-list sizes, comma separated.")]
    = "300,1000,3000",
    pq_bytes: Annotated[str, typer.Option(
        help="PQ fast-scan code sizes (bytes/face) for short lists, comma separated.")]
    = "32,64",
    threads: Annotated[int | None, typer.Option(help="FAISS threads (default: all).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of queries and synthetic faces.")] = 0,
) -> None:
    """Search at 1M faces: exact float vs Hamming vs short list + exact re-rank (FAISS)."""
    from facexplain.benchmarks.search import SearchBenchmarkConfig, run_search_benchmark
    from facexplain.search.codes import parse_recipe

    _check(backbone, lfw, json_out)
    parse_recipe(code)
    cfg = SearchBenchmarkConfig(
        backbone=backbone, code=code, size=size, queries=queries,
        short_lists=_ints(short_lists, "--short-lists"), pq_bytes=_ints(pq_bytes, "--pq-bytes"),
        threads=threads, seed=seed, lfw_root=lfw)
    doc = run_search_benchmark(cfg)
    rows = doc["rows"]
    assert isinstance(rows, list)
    recall = f"recall_at_{doc['k']}"
    typer.echo(f"{backbone}, {doc['code']}, {doc['n_database']:,} faces, {doc['n_queries']} "
               f"queries, {doc['threads']} threads:")
    for r in rows:
        extra = f"short list {r['short_list']}" if "short_list" in r else ""
        typer.echo(f"  {r['search']}{' (' + extra + ')' if extra else ''}: "
                   f"{r['ms_per_query']} ms/query, {r['speedup']}x, "
                   f"recall@{doc['k']} {r[recall]}")
    _write(doc, json_out)


@register_benchmark("gallery", config="facexplain.benchmarks.gallery:GalleryBenchmarkConfig")
def gallery_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    json_out: JsonOpt = None,
    lfw: LfwOpt = LFW,
    probes: Annotated[int, typer.Option(help="Held-out probe photos.")] = 500,
    code: Annotated[str, typer.Option(help="Gallery codes.")] = "rotation-256",
    gallery_out: Annotated[Path | None, typer.Option(
        help="Also write the gallery (all LFW photos but the probes) here.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the probe draw.")] = 0,
) -> None:
    """Rank-1 identification of held-out LFW probes against all other LFW photos."""
    from facexplain.benchmarks.gallery import GalleryBenchmarkConfig, run_gallery_benchmark
    from facexplain.errors import InvalidArgument
    from facexplain.search.codes import parse_recipe

    if probes < 1:
        raise InvalidArgument(f"--probes must be >= 1, got {probes}")
    _check(backbone, lfw, json_out)
    parse_recipe(code)
    doc = run_gallery_benchmark(GalleryBenchmarkConfig(
        backbone=backbone, probes=probes, code=code, seed=seed, gallery_out=gallery_out,
        lfw_root=lfw))
    typer.echo(f"{backbone}: rank-1 {doc['rank_1']} (exact float {doc['rank_1_exact_float']}), "
               f"rank-5 {doc['rank_5']}, top verdict SAME {doc['top_verdict_same']}, "
               f"{doc['n_probes']} probes vs {doc['n_gallery']:,} photos "
               f"({doc['n_identities']:,} people), {doc['ms_per_search']} ms/search")
    _write(doc, json_out)


def _ints(text: str, option: str) -> tuple[int, ...]:
    from facexplain.errors import InvalidArgument

    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InvalidArgument(f"{option} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise InvalidArgument(f"{option} must be positive integers, got {text!r}")
    return values
