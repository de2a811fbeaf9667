"""`facexplain backbones [list|add|remove]`: the registered face models, and the user's own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facexplain.cli.options import command_line

app = typer.Typer(help="List the face models; add or remove your own ONNX model.",
                  invoke_without_command=True)


@app.callback()
def backbones_callback(ctx: typer.Context) -> None:
    """List the registered face models (built-in and user) when no subcommand is given."""
    if ctx.invoked_subcommand is None:
        list_command()


@app.command("list")
def list_command() -> None:
    """List the registered face models and their calibrated thresholds."""
    from facexplain.backbones.registry import DEFAULT_BACKBONE, all_specs
    from facexplain.scoring import load_calibrations

    cals = load_calibrations()
    for name, spec in all_specs().items():
        cal = cals.get(name)
        th = f"threshold {cal.threshold:.4f}" if cal else "not calibrated"
        tag = " (default)" if name == DEFAULT_BACKBONE else " (user)" if spec.user else ""
        typer.echo(f"{name}{tag}: {spec.description}; {spec.input_size}px; {th}")


def _floats(text: str, what: str) -> list[float]:
    from facexplain.errors import InvalidArgument

    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InvalidArgument(f"{what} '{text}': give comma-separated numbers") from None


def _points(text: str | None) -> list[tuple[float, float]] | None:
    if not text:
        return None
    vals = _floats(text.replace(";", ","), "--points")
    return [(vals[i], vals[i + 1]) for i in range(0, len(vals) - 1, 2)]


@app.command("add")
def add_command(
    name: Annotated[str, typer.Argument(help="Name to use with --backbone.")],
    onnx_file: Annotated[Path, typer.Option("--onnx", help="The ONNX model file.")],
    template: Annotated[str, typer.Option(
        help="Alignment template: arcface-112, arcface-224, dlib-150 (or give --points).")
    ] = "arcface-112",
    input_size: Annotated[int | None, typer.Option(
        "--input-size", help="Crop size in px (default: the template's; the template scales).")
    ] = None,
    points: Annotated[str | None, typer.Option(
        help="Five custom points 'x,y;x,y;...' (eyes, nose, mouth corners) in the crop.")
    ] = None,
    mean: Annotated[str | None, typer.Option(
        help="Subtracted from [0, 255] pixels: one value or R,G,B (default: found on real "
        "faces, with --std and --bgr).")] = None,
    std: Annotated[str | None, typer.Option(help="Then divided by: one value or R,G,B.")
                   ] = None,
    bgr: Annotated[bool | None, typer.Option(
        "--bgr/--rgb", help="The model takes BGR (or RGB) channel order.")] = None,
    output: Annotated[str | None, typer.Option(
        help="The graph output (or node) that is the embedding (default: the first output).")
    ] = None,
    feature_nodes: Annotated[str, typer.Option(
        "--feature-nodes", help="Comma list of node names of spatial maps (Grad-CAM, xCos); "
        "last = the map methods use.")] = "",
    description: Annotated[str, typer.Option(help="One line shown in the list.")] = "",
    check_images: Annotated[Path | None, typer.Option(
        "--check-images", help="Folder of face photos for the runtime check (default: LFW).")
    ] = None,
    skip_check: Annotated[bool, typer.Option(
        "--skip-check", help="Register without comparing with onnxruntime/OpenCV.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Register even a model that fails the model check (it does not tell "
        "LFW people apart); every verdict of it then carries a warning.")] = False,
    calibrate: Annotated[bool, typer.Option(
        "--calibrate/--no-calibrate", help="Fit a provisional threshold and confidence on "
        "LFW folds 1-2 now (about a minute or two), so verify works at once.")] = True,
) -> None:
    """Register your ONNX face model: runs it in torch, checks it against onnxruntime on real
    faces, stores a copy (with its sha256) under the model home."""
    from facexplain.backbones.user_add import add_onnx
    from facexplain.errors import InputNotFound

    images = None
    if check_images is not None:
        if not check_images.is_dir():
            raise InputNotFound(f"--check-images {check_images}: no such directory")
        images = sorted(p for p in check_images.iterdir()
                        if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:6]
    row, check = add_onnx(
        name, onnx_file, template=template, size=input_size, points=_points(points),
        mean=None if mean is None else _floats(mean, "--mean"),
        std=None if std is None else _floats(std, "--std"), bgr=bgr, output=output,
        feature_nodes=[n.strip() for n in feature_nodes.split(",") if n.strip()],
        description=description, check_images=images, skip_check=skip_check, force=force,
        command=command_line(),
        log=lambda m: typer.echo(m, err=True))
    if check is not None:
        typer.echo(f"check: torch vs {check.runtime} on {check.faces} LFW faces: max abs diff "
                   f"{check.max_abs_diff:.3g}, min cosine {check.min_cosine:.7f}")
    else:
        typer.echo("check: skipped (--skip-check)")
    typer.echo(f"registered '{name}': {row['embedding_dim']}-d embedding '{row['output']}', "
               f"{row['size']}px {row['template']}, sha256 {row['sha256'][:12]}...")
    if calibrate:
        from facexplain.backbones.user_add import discard

        try:
            _provisional_calibration(name)
        except BaseException:  # all or nothing: no registered model without its calibration
            discard(name)
            raise
    typer.echo(f"next: facexplain benchmark calibration --backbone {name} --write-calibration "
               "(a measured calibration)")


def _provisional_calibration(name: str) -> None:
    """Threshold, Platt fit and a logistic LR fit (ELUB-bounded) on LFW folds 1-2, stored for
    these weights and named provisional in every verdict, so a new model verifies at once and
    states a strength of evidence (logistic: two parameters, the calibrator that needs least
    data)."""
    from facexplain.benchmarks.lfw import LfwBenchmarkConfig, calibration_from, run_lfw_benchmark
    from facexplain.scoring import save_calibration

    typer.echo("calibrating a provisional threshold on LFW folds 1-2 ...", err=True)
    result = run_lfw_benchmark(LfwBenchmarkConfig(backbone=name, folds=(1, 2)))
    cal = calibration_from(result, command_line(), population=(
        f"provisional: LFW folds 1-2 ({result.summary['n_pairs']:,} pairs), fitted when the "
        "model was registered"))
    from dataclasses import replace

    from facexplain.confidence.likelihood import PROVISIONAL_LR, fit_lr

    fit = fit_lr("logistic", result.scores, result.same, PROVISIONAL_LR)
    cal = replace(cal, lr={PROVISIONAL_LR: fit.to_json(), "command": command_line(),
                           "date": cal.date})
    save_calibration(cal)
    typer.echo(f"provisional threshold {cal.threshold:.4f} (accuracy on folds 1-2, held out "
               f"fold by fold: {cal.lfw_accuracy:.4f}); provisional likelihood ratios "
               f"(logistic, bounded to log10 LR {fit.lower:+.2f}..{fit.upper:+.2f})")


@app.command("remove")
def remove_command(name: Annotated[str, typer.Argument(help="A user backbone.")]) -> None:
    """Forget a user model (its record and stored copy)."""
    from facexplain.backbones.user_records import remove_backbone

    removed = remove_backbone(name)
    typer.echo(f"removed '{name}' ({len(removed)} files)")
