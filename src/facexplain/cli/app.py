"""The `facexplain` command: thin Typer commands over the library; errors become one line."""

from __future__ import annotations

import sys
import warnings

import typer

from facexplain.cli import analyze, benchmark, explain, train, verify
from facexplain.errors import FacexplainError

app = typer.Typer(
    name="facexplain",
    help="Explainable face verification: is it the same person, and why?",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("verify")(verify.verify_command)
app.command("explain")(explain.explain_command)
app.command("backbones")(verify.backbones_command)
app.command("setup")(verify.setup_command)
app.add_typer(benchmark.app, name="benchmark")
app.add_typer(analyze.app, name="analyze")
app.add_typer(train.app, name="train")


def _one_line_warning(message: Warning | str, *_: object, **__: object) -> None:
    typer.echo(f"warning: {message}", err=True)


def main() -> None:
    """Entry point: run the app; a FacexplainError prints one line and exits non-zero."""
    warnings.showwarning = _one_line_warning
    try:
        app()
    except FacexplainError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
