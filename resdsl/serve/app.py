"""The HTTP side of `resdsl serve`: a Starlette app (run by uvicorn) in front of the worker.

Any page in any browser tab can send requests to 127.0.0.1, so every request must carry the
random token (`?token=`, an `X-Resdsl-Token` header, or `Authorization: token ...`, as Jupyter
accepts), name this machine in its Host header (no DNS rebinding), and stay under the body size
limit. Checks run one at a time in the worker; a check that a newer edit from the same page has
overtaken while it waited is answered `superseded` without running (the page drops any answer
older than the one it shows, so a late answer never overwrites a newer one).
"""
from __future__ import annotations

import asyncio
import json
import secrets
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .files import Folder, PathRefused, version
from .worker import Worker

MAX_BODY = 1 << 20       # bytes of one request: a spec (source_bytes budget, 256 KiB) and a second one, as JSON
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]"}
STATIC = {"app.js": "text/javascript", "style.css": "text/css", "index.html": "text/html"}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                               "form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


class Guard:
    """ASGI middleware: Host, token and Content-Length checked before any route runs."""

    def __init__(self, app, token: str, max_body: int = MAX_BODY):
        self.app, self.token, self.max_body = app, token, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if hostname not in LOCAL_HOSTS:
            return await _plain(403, "this server answers requests for 127.0.0.1 only", send)
        if not self._token_ok(scope, headers):
            return await _plain(403, "a valid token is required: open the URL `resdsl serve` printed", send)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return await _plain(413, f"request body over {self.max_body:,} bytes", send)
        await self.app(scope, receive, _with_headers(send))

    def _token_ok(self, scope, headers: dict) -> bool:
        from urllib.parse import parse_qs

        given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [None])[0]
        given = given or headers.get("x-resdsl-token")
        auth = headers.get("authorization", "")
        if not given and auth.lower().startswith("token "):
            given = auth[6:].strip()
        return bool(given) and secrets.compare_digest(given.encode("utf-8", "replace"), self.token.encode())


def _with_headers(send):
    async def wrapped(message):
        if message["type"] == "http.response.start":
            names = {k.lower() for k, _ in message.get("headers", [])}
            extra = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items() if k.lower().encode() not in names]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)
    return wrapped


async def _plain(status: int, text: str, send) -> None:
    body = json.dumps({"error": text}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *((k.lower().encode(), v.encode()) for k, v in HEADERS.items())]})
    await send({"type": "http.response.body", "body": body})


async def read_json(request: Request, max_body: int) -> dict:
    """The JSON body, counted as it arrives (a chunked body has no Content-Length to check first)."""
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body:
            raise _Refused(413, f"request body over {max_body:,} bytes")
        chunks.append(chunk)
    try:
        doc = json.loads(b"".join(chunks) or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _Refused(400, "the body is not JSON") from None
    if not isinstance(doc, dict):
        raise _Refused(400, "the body is not a JSON object")
    return doc


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def static_text(name: str) -> str:
    return resources.files("resdsl.serve").joinpath("static", name).read_text(encoding="utf-8")


def words() -> dict[str, list[str]]:
    """The language's own word lists (the Pygments lexer's, which tests/test_editors.py keeps in
    step with the grammar), for the page's highlighter."""
    from ..source.highlight import CONSTANTS, LAYERS, OPERATOR_WORDS, STATEMENTS

    return {"keyword": list(STATEMENTS), "operator": list(OPERATOR_WORDS), "constant": list(CONSTANTS),
            "layer": list(LAYERS)}


def zoo_index() -> dict:
    """Every zoo name (`resdsl list --names`) and every zoo spec file, to browse read-only."""
    from ..zoo import SPECS, names

    return {"names": [{"name": z.name, "spec": Path(z.spec).name, "network": z.network}
                      for z in sorted(names.table().values(), key=lambda z: z.name)],
            "files": sorted(p.name for p in SPECS.glob("*.res"))}


def zoo_doc(name: str) -> dict:
    """A zoo name or zoo spec file as a read-only document."""
    from ..zoo import SPECS, names

    z = names.table().get(name)
    if z is not None:
        path = Path(z.spec)
    elif name in {p.name for p in SPECS.glob("*.res")}:
        path = SPECS / name
    else:
        raise PathRefused(f"no zoo name or zoo spec '{name[:100]}'", 404)
    return {"zoo": name, "shown": f"zoo:{path.name}", "text": path.read_text(encoding="utf-8"), "readonly": True,
            "network": z.network if z else None}


class Server:
    """The app's state: the folder, the worker, the document opened first, each page's newest edit."""

    def __init__(self, root: str | Path, token: str, worker: Worker, opened: dict | None = None,
                 allow_imports: tuple = (), max_body: int = MAX_BODY):
        self.folder = Folder(root)
        self.token, self.worker, self.opened = token, worker, opened or {}
        self.allow_imports = [str(Path(p).resolve()) for p in allow_imports]
        self.max_body = max_body
        self.newest: dict[str, int] = {}
        self.lock = asyncio.Lock()

    # -- routes --
    async def index(self, request: Request) -> Response:
        html = static_text("index.html").replace("{{token}}", self.token)
        return Response(html, media_type="text/html")

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return JSONResponse({"error": "no such file"}, 404)
        return Response(static_text(name), media_type=STATIC[name])

    async def info(self, request: Request) -> Response:
        return JSONResponse({"root": str(self.folder.root), "files": self.folder.listing(), "zoo": zoo_index(),
                             "words": words(), "opened": self.opened, "max_body": self.max_body})

    async def open(self, request: Request) -> Response:
        q = request.query_params
        if q.get("zoo"):
            return JSONResponse(zoo_doc(q["zoo"]))
        rel = q.get("path", "")
        text, ver = self.folder.read(rel)
        return JSONResponse({"path": rel, "shown": rel, "text": text, "readonly": False, "version": ver})

    async def check(self, request: Request) -> Response:
        body = await read_json(request, self.max_body)
        seq, page = body.get("seq"), str(body.get("page", ""))[:64]
        if not isinstance(seq, int):
            raise _Refused(400, "a check needs an integer `seq`")
        if len(self.newest) > 1000:                    # pages long closed
            self.newest.clear()
        self.newest[page] = max(seq, self.newest.get(page, -1))
        req = self._request(body)
        if body.get("vs"):
            if not isinstance(body["vs"], dict):
                raise _Refused(400, "`vs` is a second spec: {path or zoo, text}")
            req["vs"] = self._request(body["vs"])
        async with self.lock:                          # one check at a time, in order of arrival
            if seq < self.newest[page]:                # a newer edit from this page is waiting
                return JSONResponse({"seq": seq, "superseded": True})
            out = await run_in_threadpool(self.worker.call, req)
        return JSONResponse(out)

    async def save(self, request: Request) -> Response:
        body = await read_json(request, self.max_body)
        rel, text = body.get("path"), body.get("text")
        if not isinstance(text, str):
            raise _Refused(400, "a save needs `text`")
        from .. import limits

        if len(text.encode("utf-8", "replace")) > limits.SOURCE_BYTES.value:
            raise _Refused(413, "the text is over the source_bytes budget")
        base = body.get("base")
        if base is not None and not isinstance(base, str):
            raise _Refused(400, "`base` is the version /api/open gave")
        out = await run_in_threadpool(self.folder.save, rel, text, bool(body.get("overwrite", True)), base)
        return JSONResponse({"saved": self.folder.shown(out), "bytes": len(text.encode("utf-8")),
                             "version": version(text.encode("utf-8"))})

    # -- helpers --
    def _request(self, body: dict) -> dict[str, Any]:
        """The worker's request: text and where it stands (a served file or a zoo spec), checked here."""
        text = body.get("text")
        if not isinstance(text, str):
            raise _Refused(400, "a check needs `text`")
        sets = body.get("sets") or {}
        if not isinstance(sets, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in sets.items()):
            raise _Refused(400, "`sets` maps parameter names to text")
        req = {"op": "check", "seq": body.get("seq"), "text": text, "sets": sets,
               "network": _opt_str(body.get("network")), "level": _opt_str(body.get("level")),
               "focus": _opt_str(body.get("focus")), "allow_imports": self.allow_imports}
        if body.get("zoo"):
            doc = zoo_doc(str(body["zoo"]))
            from ..zoo import SPECS, names

            z = names.table().get(doc["zoo"])
            req.update(zoo=doc["zoo"], path=str(Path(z.spec) if z else SPECS / doc["zoo"]), shown=doc["shown"])
        elif body.get("path"):
            rel = str(body["path"])
            try:
                real = self.folder.existing(rel)
            except PathRefused as e:
                if e.status != 404:
                    raise
                real = self.folder.target(rel)           # a new file, not saved yet
            req.update(path=str(real), shown=rel)
        else:
            req.update(path=str(self.folder.root / "untitled.res"), shown="untitled.res")
        return req


def _opt_str(v) -> str | None:
    return str(v)[:200] if v not in (None, "") else None


async def _refused(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, getattr(exc, "status", 400))


async def _os_error(request: Request, exc: OSError) -> Response:
    return JSONResponse({"error": f"{exc.strerror or exc}"}, 500)


def create_app(server: Server) -> Guard:
    routes = [Route("/", server.index), Route("/static/{name}", server.static),
              Route("/api/info", server.info), Route("/api/open", server.open),
              Route("/api/check", server.check, methods=["POST"]), Route("/api/save", server.save, methods=["POST"])]
    app = Starlette(routes=routes, exception_handlers={PathRefused: _refused, _Refused: _refused, OSError: _os_error})
    return Guard(app, server.token, server.max_body)


def new_token() -> str:
    return secrets.token_urlsafe(32)
