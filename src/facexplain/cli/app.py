"""The `facexplain` command: thin Typer commands over the library; errors become one line."""

from __future__ import annotations

import json
import sys
import warnings

import typer

import facexplain.cli.parts as parts_cli
import facexplain.cli.search as search
from facexplain.cli import analyze, backbones, benchmark, explain, serve, study, train, verify
from facexplain.cli import batch as batch_cli
from facexplain.errors import FacexplainError

try:  # typer >= 0.20 vendors click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # pragma: no cover - older typer with click installed
    # justified: the same two classes from click instead of typer's vendored copy; mypy
    # sees two definitions of each name and cannot know only one import runs
    from click.exceptions import (  # type: ignore[assignment]  # other module, same classes
        ClickException,
        NoArgsIsHelpError,
    )

app = typer.Typer(
    name="facexplain",
    help="Explainable face verification: is it the same person, and why?",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("verify")(verify.verify_command)
app.command("explain")(explain.explain_command)
app.add_typer(backbones.app, name="backbones")
app.command("methods")(explain.methods_command)
app.command("setup")(verify.setup_command)
app.command("serve")(serve.serve_command)
app.add_typer(benchmark.build_group(), name="benchmark")  # from the benchmark registry
app.add_typer(analyze.app, name="analyze")
app.add_typer(train.app, name="train")
app.add_typer(study.app, name="study")
app.add_typer(batch_cli.app, name="batch")
train.app.command("parts")(parts_cli.train_command)
app.add_typer(search.gallery_app, name="gallery")
app.command("search")(search.search_command)


def _one_line_warning(message: Warning | str, *_: object, **__: object) -> None:
    typer.echo(f"warning: {message}", err=True)


def _fail(message: str, code: int) -> None:
    """One line on stderr (and a JSON object on stdout with --json), then exit ``code``."""
    line = " ".join(message.split())
    if "--json" in sys.argv[1:]:
        typer.echo(json.dumps({"error": line, "code": code}))
    typer.echo(f"error: {line}", err=True)
    sys.exit(code)


def main() -> None:
    """Entry point: run the app; bad input prints one line and exits non-zero, never a trace."""
    warnings.showwarning = _one_line_warning
    try:
        if app(standalone_mode=False) == 130:  # typer returns Ctrl-C as Exit(130) here
            raise KeyboardInterrupt
    except NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(0)
    except ClickException as exc:  # bad option values, unknown options, missing arguments
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        _fail(exc.format_message() + hint, exc.exit_code)
    except FacexplainError as exc:
        _fail(str(exc), exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(141)
