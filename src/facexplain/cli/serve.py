"""`facexplain serve`: the web app on uvicorn (loopback by default)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from facexplain.errors import InvalidArgument


def serve_command(
    host: Annotated[str, typer.Option("--host", help="Address to bind; the default is "
                                      "reachable from this machine only.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    work_dir: Annotated[Path | None, typer.Option(
        "--work-dir", help="Where uploads and results go (default: a new temporary folder).")
    ] = None,
    max_upload_mb: Annotated[float, typer.Option(
        "--max-upload-mb", help="Largest accepted photo, MiB (larger: HTTP 413).")] = 10.0,
    study_dir: Annotated[Path | None, typer.Option(
        "--study", help="A study folder made by 'facexplain study create': serve its "
        "participant and admin pages too.")] = None,
    preload: Annotated[str, typer.Option(
        "--preload", help="Comma list of backbones to load before the first request "
        "('' for none).")] = "sface",
) -> None:
    """Serve the web app: upload two photos or pick an LFW pair, see verdict and maps."""
    import uvicorn

    from facexplain.backbones.registry import get_spec
    from facexplain.web.app import WebConfig, create_app
    from facexplain.web.jobs import Pipelines

    if not 0 < port < 65536:
        raise InvalidArgument(f"--port must be between 1 and 65535, got {port}")
    if max_upload_mb <= 0:
        raise InvalidArgument(f"--max-upload-mb must be positive, got {max_upload_mb}")
    names = [n.strip() for n in preload.split(",") if n.strip()]
    for name in names:
        get_spec(name)
    if study_dir is not None:
        from facexplain.study.store import open_study

        open_study(study_dir).close()  # a wrong folder fails now, in one line
    work = work_dir or Path(tempfile.mkdtemp(prefix="facexplain-web-"))
    pipelines = Pipelines()
    for name in names:
        typer.echo(f"loading {name} ...", err=True)
        pipelines.get(name)
    app = create_app(WebConfig(work, int(max_upload_mb * 2**20),
                               study_dir=study_dir),
                     pipelines)
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"warning: binding {host}: anyone who can reach it can use the app", err=True)
    typer.echo(f"facexplain on http://{host}:{port}/ (results in {work})", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
