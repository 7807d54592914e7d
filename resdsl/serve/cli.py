"""`resdsl serve DIR|FILE|ZOO_NAME`: the live page, on 127.0.0.1 with a random token."""
from __future__ import annotations

import socket
import threading
from pathlib import Path

import click

from ..cli_common import allow_imports_option, reports_errors
from ..errors import SpecError


def target_of(target: str) -> tuple[Path, dict]:
    """(served folder, document opened first) for a folder, a .res file or a zoo name."""
    path = Path(target)
    if path.is_dir():
        return path, {}
    if path.is_file():
        return path.resolve().parent, {"path": path.name}
    from ..zoo import names

    if target in names.table() or (target.endswith(".res") and (names.SPECS / target).is_file()):
        return Path.cwd(), {"zoo": target}
    from ..zoo.names import resolve

    resolve(target, None, {})          # raises: neither a file nor a zoo name (with a "did you mean")
    raise SpecError(f"cannot serve '{target}'")


@click.command()
@click.argument("target", default=".", metavar="DIR|FILE|ZOO_NAME")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
@click.option("--time-limit", type=click.FloatRange(0.01, 3600), default=10.0, show_default=True,
              help="Seconds one check may take before its worker process is stopped and replaced.")
@allow_imports_option()
@reports_errors
def serve(target, port, time_limit, allow_imports):
    """Edit a spec in the browser and watch its diagram, costs and errors update as you type.

    Serves DIR (or FILE's folder; a zoo name read-only, with the working folder for "save as")
    on http://127.0.0.1:PORT/?token=...; prints that URL and opens nothing. Only files under the
    served folder are read or written."""
    try:
        import uvicorn

        from .app import Server, create_app, new_token
    except ImportError as e:
        raise click.ClickException(f"resdsl serve needs Starlette and uvicorn ({e.name} is missing): "
                                   "pip install 'resdsl[serve]'") from None
    from .worker import Worker

    root, opened = target_of(target)
    token = new_token()
    worker = Worker(time_limit=time_limit)
    threading.Thread(target=worker._restart, daemon=True).start()    # imports while the page loads
    server = Server(root, token, worker, opened, allow_imports)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(create_app(server), log_level="warning", lifespan="off",
                            h11_max_incomplete_event_size=64 << 10, timeout_graceful_shutdown=2)
    sock.listen(config.backlog)         # connections queue from here on: the URL printed next works at once
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/?token={token}"
    click.echo(f"serving {server.folder.root} at\n    {url}\n(Ctrl-C stops)", err=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        worker.close()
