"""`facexplain benchmark codes | search-speed | gallery`: binary codes and 1:N search on LFW.

Registered on the `benchmark` group by ``cli.app``; each prints a table row and writes JSON.
"""

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

LFW = settings.current().lfw  # a CLI run is one process: its environment decides

JsonOpt = Annotated[Path | None, typer.Option("--json", help="Write the result as JSON here.")]
LfwOpt = Annotated[Path, typer.Option(help="LFW root (lfw-deepfunneled/, pairs.txt).")]


def _command() -> str:
    return "facexplain " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _check(backbone: str, lfw: Path, json_out: Path | None) -> None:
    from facexplain import validate
    from facexplain.backbones.registry import get_spec

    get_spec(backbone)
    validate.pairs_file(lfw / "pairs.txt", folds=10)
    if json_out is not None:
        validate.output_dir(json_out.parent, what=f"folder of {json_out.name}")


def _write(doc: dict[str, object], json_out: Path | None) -> None:
    doc["command"] = _command()
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(doc, indent=2) + "\n")
        typer.echo(f"result: {json_out}")


def codes_command(
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    json_out: JsonOpt = None,
    lfw: LfwOpt = LFW,
    max_bits: Annotated[int, typer.Option(help="Largest learned code tried (bits).")] = 1024,
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
