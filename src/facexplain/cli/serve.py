"""`facexplain serve`: the web app on uvicorn (loopback by default)."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from facexplain.errors import InvalidArgument


def serve_command(
    host: Annotated[str, typer.Option("--host", help="Address to bind; the default is "
                                      "reachable from this machine only.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    work_dir: Annotated[Path | None, typer.Option(
        "--work-dir", help="Where jobs and results go; give one to keep results across "
        "restarts (default: a new temporary folder).")] = None,
    max_upload_mb: Annotated[float, typer.Option(
        "--max-upload-mb", help="Largest accepted photo, MiB (larger: HTTP 413).")] = 10.0,
    max_megapixels: Annotated[float, typer.Option(
        "--max-megapixels", help="Most pixels a photo may have (more: HTTP 413).")] = 40.0,
    max_windows: Annotated[int, typer.Option(
        "--max-windows", help="Most occluder positions per map (patch/stride bounds).")] = 1024,
    job_time_limit: Annotated[float, typer.Option(
        "--job-time-limit", help="Seconds one job may run before it is stopped.")] = 300.0,
    retention_hours: Annotated[float, typer.Option(
        "--retention-hours", help="How long results stay reachable, then are deleted.")] = 24.0,
    keep_uploads: Annotated[bool, typer.Option(
        "--keep-uploads", help="Keep uploaded photos beside results (default: deleted as "
        "soon as the faces are aligned).")] = False,
    allow_host: Annotated[list[str] | None, typer.Option(
        "--allow-host", help="A Host name the server answers besides the loopback names "
        "(repeatable; '*' for any).")] = None,
    api_key_file: Annotated[Path | None, typer.Option(
        "--api-key-file", help="File of SHA-256 hashes of API keys: every route that starts "
        "work or shows a job then needs X-API-Key or a session the key opened on the form "
        "page; each job is its key's own.")] = None,
    new_api_key: Annotated[Path | None, typer.Option(
        "--new-api-key", help="Add a new key's hash to this file, print the key, and exit.")
    ] = None,
    study_dir: Annotated[Path | None, typer.Option(
        "--study", help="A study folder made by 'facexplain study create': serve its "
        "participant and admin pages too.")] = None,
    preload: Annotated[str, typer.Option(
        "--preload", help="Comma list of backbones to load and warm up before the first "
        "request ('' for none).")] = "sface",
) -> None:
    """Serve the web app: upload two photos or pick an LFW pair, see verdict and maps."""
    from facexplain.web.api_keys import new_api_key as make_key
    from facexplain.web.api_keys import read_key_hashes

    if new_api_key is not None:
        typer.echo(make_key(new_api_key))
        typer.echo(f"(its hash was added to {new_api_key}; the key is not stored: keep it)",
                   err=True)
        return
    check_limits(port, max_upload_mb, max_megapixels, max_windows, job_time_limit,
                 retention_hours)
    hashes = read_key_hashes(api_key_file) if api_key_file is not None else None
    run_server(host, port, work_dir, preload, study_dir, dict(
        max_upload_bytes=int(max_upload_mb * 2**20), max_pixels=int(max_megapixels * 1e6),
        max_windows=max_windows, job_time_limit_s=job_time_limit,
        retention_hours=retention_hours, keep_uploads=keep_uploads,
        api_key_hashes=hashes), tuple(allow_host or ()))


def check_limits(port: int, max_upload_mb: float, max_megapixels: float, max_windows: int,
                 job_time_limit: float, retention_hours: float) -> None:
    if not 0 < port < 65536:
        raise InvalidArgument(f"--port must be between 1 and 65535, got {port}")
    for name, value in (("--max-upload-mb", max_upload_mb), ("--max-megapixels", max_megapixels),
                        ("--max-windows", max_windows), ("--job-time-limit", job_time_limit),
                        ("--retention-hours", retention_hours)):
        if value <= 0:
            raise InvalidArgument(f"{name} must be positive, got {value}")


def own_names(host: str) -> tuple[str, ...]:
    """The names a client on the network uses for this server when it binds ``host``: the
    address itself, or for 0.0.0.0 / :: this machine's name and addresses (a page elsewhere
    that points its own name here is still refused)."""
    import socket

    if host in ("127.0.0.1", "localhost", "::1"):
        return ()
    if host not in ("0.0.0.0", "::"):
        return (host,)
    names = {socket.gethostname(), socket.getfqdn()}
    with contextlib.suppress(OSError):
        names |= {str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None)}
    return tuple(sorted(n if ":" not in n else f"[{n}]" for n in names if n))


def run_server(host: str, port: int, work_dir: Path | None, preload: str,
               study_dir: Path | None, limits: dict[str, Any],
               extra_hosts: tuple[str, ...]) -> None:
    import uvicorn

    from facexplain.backbones.registry import get_spec
    from facexplain.web.app import WebConfig, create_app, lfw_choices
    from facexplain.web.connection import GuardedH11Protocol
    from facexplain.web.guards import LOOPBACK_HOSTS
    from facexplain.web.jobs import Pipelines

    names = [n.strip() for n in preload.split(",") if n.strip()]
    for name in names:
        get_spec(name)
    if study_dir is not None:
        from facexplain.study.store import open_study

        open_study(study_dir).close()  # a wrong folder fails now, in one line
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    work = work_dir or Path(tempfile.mkdtemp(prefix="facexplain-web-"))
    hosts = (*LOOPBACK_HOSTS, *extra_hosts, *own_names(host))
    pipelines = Pipelines()
    pairs = lfw_choices()
    settings_pair = None
    if pairs:
        from facexplain import settings

        images = settings.current().lfw_images
        settings_pair = (pairs[0].path_a(images), pairs[0].path_b(images))
    for name in names:
        typer.echo(f"loading and warming up {name} ...", err=True)
        pipelines.warm(name, settings_pair)
    app = create_app(WebConfig(work, study_dir=study_dir, allowed_hosts=hosts,
                               **limits),
                     pipelines)
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"warning: binding {host}: anyone who can reach it can use the app; it "
                   f"answers the Host names {', '.join(hosts)} (more: --allow-host NAME)",
                   err=True)
    typer.echo(f"facexplain on http://{host}:{port}/ (results in {work})", err=True)
    # GuardedH11Protocol: a deadline for request heads, no draining of unwanted bodies, and
    # the security headers on uvicorn's own 400s (``web.connection``).
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=15,
                http=GuardedH11Protocol)
