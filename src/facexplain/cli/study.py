"""`facexplain study ...`: pair sets, study folders, simulation, export and analysis."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from facexplain.errors import InvalidArgument

app = typer.Typer(help="The human study: similar-looking pairs, before/after answers, analysis.",
                  no_args_is_help=True)

StudyArg = Annotated[Path, typer.Argument(help="Study folder (from 'study create').")]


@app.command("pairs")
def pairs_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Pair set to write (JSON).")],
    n: Annotated[int, typer.Option("--n", help="Pairs in the set (even).")] = 200,
    target: Annotated[float, typer.Option(
        "--target", help="Accuracy of the explained model on the set (0 = keep the whole "
        "pool).")] = 0.75,
    model: Annotated[str, typer.Option("--backbone", "-b", help="Explained model.")] = "sface",
    mining: Annotated[str, typer.Option(
        "--mining-model", help="Model that finds look-alikes (not the explained one).")
    ] = "dlib-resnet",
    folds: Annotated[int, typer.Option("--folds", help="LFW pairs.txt folds to draw from.")] = 10,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Mine similar-looking pairs (SLLFW-style) and pick a subset near a target accuracy."""
    from facexplain.benchmarks.lookalike import mine_pairs, model_accuracy, write_pairs

    if not 1 <= folds <= 10:
        raise InvalidArgument(f"--folds must be 1..10, got {folds}")
    if not 0.0 <= target <= 1.0:
        raise InvalidArgument(f"--target must be in [0, 1], got {target}")
    chosen, meta = mine_pairs(mining, model, folds, n, target or None, seed, progress=True)
    write_pairs(out, chosen, meta)
    same = sum(p.same for p in chosen)
    typer.echo(f"{len(chosen)} pairs ({same} genuine, {len(chosen) - same} look-alike "
               f"impostors), {model} accuracy {100 * model_accuracy(chosen):.1f}%: {out}")


@app.command("create")
def create_command(
    pairs: Annotated[Path, typer.Argument(help="Pair set from 'study pairs'.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="New study folder.")],
    conditions: Annotated[str, typer.Option(
        "--conditions", help="Help per group: none and/or method names, comma list.")
    ] = "occlusion,deconv,saliency",
    participants: Annotated[int, typer.Option(
        "--participants", help="Participants per condition (the study has this many times "
        "the number of conditions).")] = 30,
    backbone: Annotated[str, typer.Option("--backbone", "-b", help="Explained model.")] = "sface",
    scale: Annotated[int, typer.Option("--scale", help="5 (the paper's) or 7 (NIST).")] = 5,
    patch: Annotated[int, typer.Option("--patch", help="Occlusion patch (px).")] = 16,
    stride: Annotated[int, typer.Option("--stride", help="Occlusion stride (px).")] = 8,
    no_maps: Annotated[bool, typer.Option(
        "--no-maps", help="Draw no help pictures (simulation / dry run).")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the pair orders.")] = 0,
    name: Annotated[str, typer.Option("--name", help="Title shown to the admin.")] = "",
    catch: Annotated[int, typer.Option(
        "--catch", help="Catch trials mixed in (half the same photo twice, half obviously "
        "different people), shown like the real pairs; the analysis keeps participants who "
        "get all of them but one right. 0: none.")] = 4,
) -> None:
    """Make a study folder: images, precomputed help maps, participants; prints the admin
    token once and writes participants.csv (one link path per participant)."""
    from tqdm import tqdm

    from facexplain.method_info import ExplainOptions
    from facexplain.study.create import create_study, parse_conditions

    conds = parse_conditions(conditions)
    made = create_study(pairs, out, conds, participants, backbone, scale, seed,
                        ExplainOptions(patch=patch, stride=stride), name=name,
                        log=lambda m: tqdm.write(m, file=sys.stderr), draw_maps=not no_maps,
                        catch=catch, progress=True)
    with (out / "participants.csv").open("w", encoding="utf-8") as fh:
        fh.write("participant,condition,link\n")
        for p in made.participants:
            fh.write(f"{p.id},{p.condition},/p/{p.token}\n")
    typer.echo(f"study in {out}: {participants} participants per condition x {len(conds)} "
               f"conditions ({', '.join(conds)}) = {len(made.participants)} participants; "
               f"{made.real_pairs} pairs + {made.catch_pairs} catch trials; links in "
               f"{out / 'participants.csv'}")
    typer.echo(f"admin token (shown once, keep it): {made.admin_token}")
    typer.echo(f"serve it: facexplain serve --study {out}  then open /admin?token=<token>")


@app.command("simulate")
def simulate_command(
    study: StudyArg,
    gains: Annotated[str, typer.Option(
        "--gains", help="Planted accuracy gain per condition, e.g. occlusion=0.08,saliency=0.")
    ] = "",
    base: Annotated[float, typer.Option("--base", help="Mean accuracy alone.")] = 0.76,
    sd: Annotated[float, typer.Option("--sd", help="Spread of accuracy alone.")] = 0.05,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    careless: Annotated[int, typer.Option(
        "--careless", help="Participants (in all) who answer at random, catch trials "
        "included: the analysis's screening should remove them.")] = 0,
) -> None:
    """Answer the study with simulated participants (noisy observers with planted gains)."""
    from facexplain.study.simulate import parse_gains, simulate_study

    planted = simulate_study(study, parse_gains(gains), base, sd, seed, careless=careless)
    typer.echo(f"{len(planted)} simulated participants answered every pair twice")
    if careless:
        typer.echo("answering at random: " + ", ".join(p.id for p in planted if p.careless))
    for cond in dict.fromkeys(p.condition for p in planted):
        group = [p for p in planted if p.condition == cond and not p.careless]
        if not group:
            continue
        before = sum(p.accuracy_before for p in group) / len(group)
        gain = sum(p.accuracy_after - p.accuracy_before for p in group) / len(group)
        typer.echo(f"{cond}: planted (expected) accuracy alone {100 * before:.2f}%, "
                   f"gain {100 * gain:+.2f}%")


@app.command("export")
def export_command(
    study: StudyArg,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="CSV file (default: stdout).")
                   ] = None,
) -> None:
    """Every answer as CSV, with the pair's truth and the participant's condition."""
    from facexplain.study.store import open_study

    with open_study(study) as store:
        if out is None:
            store.export_csv(sys.stdout)
            return
        with out.open("w", encoding="utf-8", newline="") as fh:
            n = store.export_csv(fh)
    typer.echo(f"{n} answers: {out}", err=True)


@app.command("analyze")
def analyze_command(
    study: StudyArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path(
        "out/study-analysis"),
) -> None:
    """Table I, Figs. 8-10 and paired tests as HTML and JSON."""
    from facexplain.study.analyze import analyze_study

    path = analyze_study(study, out)
    import json

    summary = json.loads((out / "analysis.json").read_text())
    typer.echo(f"model accuracy {100 * summary['model_accuracy']:.2f}% on "
               f"{summary['pairs']} pairs")
    scr = summary["screening"]
    typer.echo(f"screening: kept {scr['kept']} of {scr['finished']} participants who finished; "
               f"rule: {scr['rule']}" + (f"; screened out: {', '.join(scr['screened'])}"
                                         if scr["screened"] else ""))
    typer.echo(f"the accuracies below are of the kept participants, on the real pairs only "
               f"({scr['catch_pairs']} catch trials left out)")
    for c in summary["conditions"]:
        def pct(x: float | None) -> str:
            return "n/a" if x is None else f"{100 * x:.2f}%"

        typer.echo(f"{c['condition']}: n={c['n']} (of {c['finished']}) before "
                   f"{pct(c['before_mean'])} ± "
                   f"{pct(c['before_std'])}, after {pct(c['after_mean'])} ± "
                   f"{pct(c['after_std'])}, gain {pct(c['gain_mean'])} "
                   f"(paired t p={c['t_p'] if c['t_p'] is None else format(c['t_p'], '.2g')})")
    typer.echo(f"report: {path.resolve()}")
