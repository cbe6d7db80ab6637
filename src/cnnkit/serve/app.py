"""The ASGI application (Starlette) behind ``cnnkit serve``: the page, the prediction API and the runs dashboard.

Routes:

- ``GET /healthz``: ``{"status": "ok", "version", "models": <count>, "dashboard": bool}`` (no token needed;
  it names nothing);
- ``GET /api/models``: each served model's name, classes, input shape, source shape, Grad-CAM support;
- ``POST /api/predict?model=NAME&k=5&explain=gradcam``: one input (see :mod:`cnnkit.serve.inputs`; a text
  model takes ``{"text": "..."}``, tokenized with the run's vocabulary as ``cnnkit predict --text`` does) ->
  ``{"model", "predictions": [{"label", "index", "probability"}, ...], "gradcam"?: "data:image/png;..."}``;
- ``GET /api/runs``, ``GET /api/run?id=ID``, ``GET /api/run/plot?id=ID&name=NAME``,
  ``GET /api/run/errors?id=ID&limit=24``: the dashboard (``--runs DIR``), see :mod:`cnnkit.serve.dashboard`;
- ``GET /`` and ``GET /dashboard``: the pages; ``GET /static/NAME``: their scripts and styles, read from
  the package once at start and served from memory.

Safety: with a token, every ``/api/`` call must carry ``Authorization: Bearer TOKEN`` (compared in constant
time); request bodies are read in chunks and refused (413) as soon as they pass ``max_upload_bytes``; every
refusal is a 4xx JSON ``{"error": ...}`` and the server keeps serving; pages get a Content-Security-Policy
that allows only the package's own scripts, so a string from a run folder cannot run as code even if it
reached the page as markup.

Starlette is an optional dependency (the ``serve`` extra): it is imported inside :func:`create_app`, so the
rest of cnnkit, and this module's documentation, import without it.
"""

import asyncio
import concurrent.futures
import contextlib
import functools
import hmac
import json
import logging
from importlib import resources
from typing import Any

from .. import __version__
from .._text import safe_text
from ..errors import CnnkitError, UnknownNameError
from .batching import Batcher
from .dashboard import Dashboard
from .inputs import PayloadError, decode_file, decode_json, decode_text, is_small, multipart_file
from .models import ServedModel, gradcam_png, pick_model, predict_raw, top_k

__all__ = ["ServeSettings", "create_app"]

_log = logging.getLogger("cnnkit.serve")

_STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "common.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
_PAGES = {"/": "index.html", "/dashboard": "dashboard.html"}
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class ServeSettings:
    """The server's limits and batching (the CLI's flags).

    Args:
        token: required on every ``/api/`` call when set.
        max_upload_bytes: the largest request body; larger ones get 413 while being read.
        max_pixels: the largest image (width x height), checked on its header before decoding.
        max_batch: the largest batch of requests run together (1: one request at a time).
        batch_wait_ms: how long a batch waits for more requests after its first.
        allowed_hosts: Host header values accepted (None: any); bound to 127.0.0.1, only local names are,
            so a web page elsewhere cannot reach the server through DNS rebinding.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        max_upload_bytes: int = 8 << 20,
        max_pixels: int = 4096 * 4096,
        max_batch: int = 32,
        batch_wait_ms: float = 2.0,
        allowed_hosts: list[str] | None = None,
    ) -> None:
        if max_upload_bytes < 1:
            raise CnnkitError(f"Expected max_upload_bytes >= 1. Received: {max_upload_bytes}")
        if max_pixels < 1:
            raise CnnkitError(f"Expected max_pixels >= 1. Received: {max_pixels}")
        if max_batch < 1:
            raise CnnkitError(f"Expected max_batch >= 1 (1: no batching). Received: {max_batch}")
        if not 0 <= batch_wait_ms <= 1000:
            raise CnnkitError(f"Expected 0 <= batch_wait_ms <= 1000. Received: {batch_wait_ms}")
        self.token = token or None
        self.max_upload_bytes = int(max_upload_bytes)
        self.max_pixels = int(max_pixels)
        self.max_batch = int(max_batch)
        self.batch_wait_ms = float(batch_wait_ms)
        self.allowed_hosts = allowed_hosts


def _asset(name: str) -> bytes:
    return resources.files("cnnkit.serve").joinpath("static", name).read_bytes()


async def _read_limited(request: Any, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is longer than ``limit`` bytes (a declared
    Content-Length is checked before reading anything)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise PayloadError(f"request body of {int(declared)} bytes is larger than the limit of {limit} bytes", 413)
        except ValueError:
            raise PayloadError("invalid Content-Length header", 400) from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadError(f"request body is larger than the limit of {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def _query_int(request: Any, key: str, default: int, lo: int, hi: int) -> int:
    text = request.query_params.get(key)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise PayloadError(f"Expected {key} to be an integer. Received: {safe_text(text, 40)!r}", 422) from None
    if not lo <= value <= hi:
        raise PayloadError(f"Expected {lo} <= {key} <= {hi}. Received: {key}={value}", 422)
    return value


class _Guard:
    """ASGI middleware: the Host and token checks before anything else runs, and the safety headers on
    every response. Plain ASGI (not Starlette's BaseHTTPMiddleware, which costs a task and a copy of the
    response stream per request)."""

    def __init__(self, app: Any, settings: ServeSettings) -> None:
        self.app = app
        self.settings = settings
        self.extra = [(k.lower().encode(), v.encode()) for k, v in _HEADERS.items()]

    async def _refuse(self, send: Any, status: int, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *self.extra]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.settings.allowed_hosts is not None:
            host = headers.get("host", "")
            name = host.split("]")[0] + "]" if host.startswith("[") else host.rsplit(":", 1)[0]
            if name not in self.settings.allowed_hosts:
                return await self._refuse(send, 400, "unexpected Host header; open the page at http://127.0.0.1:PORT/")
        if scope["path"].startswith("/api/") and self.settings.token is not None:
            auth = headers.get("authorization", "")
            given = auth[7:] if auth.lower().startswith("bearer ") else ""
            if not hmac.compare_digest(given.encode(), self.settings.token.encode()):
                return await self._refuse(send, 401, "missing or wrong token: send Authorization: Bearer TOKEN")

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in self.extra if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(models: dict[str, ServedModel], *, runs_dir: Any = None, settings: ServeSettings | None = None) -> Any:
    """The Starlette application serving ``models`` (:func:`~cnnkit.serve.models.load_served_models`) and,
    with ``runs_dir``, the dashboard of the run folders under it.

    Plain Starlette rather than FastAPI on top of it: nothing here uses FastAPI's validation or schema, and
    its per-request machinery (dependency solving, its middleware layers) cost ~70 us of CPU a request,
    more than LeNet-5's share of a batched forward pass (``benchmarks/README.md``, Serving)."""
    try:
        from starlette.applications import Starlette
        from starlette.exceptions import HTTPException
        from starlette.requests import Request
        from starlette.responses import Response
        from starlette.routing import Route
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise CnnkitError("cnnkit serve needs the serve extra: pip install -e '.[serve]'") from exc

    settings = settings or ServeSettings()
    dashboard = Dashboard(runs_dir) if runs_dir is not None else None
    pages = {route: _asset(name) for route, name in _PAGES.items()}
    assets = {name: _asset(name) for name in _STATIC}
    # One thread runs everything that touches a model (batches, Grad-CAM hooks, dashboard evaluation), so
    # no two computations share a model at once; torch's own threads parallelize inside each.
    model_thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="cnnkit-model")
    batchers = {
        name: Batcher(functools.partial(predict_raw, m), executor=model_thread,
                      max_batch=settings.max_batch, max_wait_s=settings.batch_wait_ms / 1000)
        for name, m in models.items()
    }

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        yield
        for b in batchers.values():
            await b.aclose()
        model_thread.shutdown(wait=False, cancel_futures=True)

    def as_json(doc: Any, status: int = 200) -> Any:
        return Response(json.dumps(doc).encode(), status_code=status, media_type="application/json", headers=_HEADERS)

    def error(status: int, message: str) -> Any:
        return as_json({"error": message}, status)

    async def _bug(request: Request, exc: Exception) -> Any:  # not the client's fault: logged, the server goes on
        _log.error("internal error serving %s", request.url.path, exc_info=exc)
        return error(500, "internal error (see the server's log)")

    async def _payload(request: Request, exc: Exception) -> Any:
        return error(exc.status if isinstance(exc, PayloadError) else 422, safe_text(exc, 500))

    async def _unknown(request: Request, exc: Exception) -> Any:
        return error(404, safe_text(exc, 500))

    async def _cnnkit(request: Request, exc: Exception) -> Any:
        return error(422, safe_text(exc, 500))

    async def _http(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, safe_text(exc.detail, 200))

    def page(route: str) -> Any:
        return Response(pages[route], media_type="text/html; charset=utf-8",
                        headers={**_HEADERS, "Content-Security-Policy": _CSP})

    async def index(request: Request) -> Any:
        return page("/")

    async def dashboard_page(request: Request) -> Any:
        if dashboard is None:
            return error(404, "no dashboard: start the server with --runs DIR")
        return page("/dashboard")

    async def static(request: Request) -> Any:
        name = request.path_params["name"]
        if name not in assets:  # a key into the assets read at start, never a path
            return error(404, "not found")
        return Response(assets[name], media_type=_STATIC[name], headers=_HEADERS)

    async def healthz(request: Request) -> Any:
        return as_json({"status": "ok", "version": __version__, "models": len(models), "dashboard": dashboard is not None})

    async def list_models(request: Request) -> Any:
        return as_json({"models": [m.describe() for m in models.values()], "dashboard": dashboard is not None,
                        "max_upload_bytes": settings.max_upload_bytes})

    async def predict(request: Request) -> Any:
        model = pick_model(models, request.query_params.get("model"))
        k = _query_int(request, "k", 5, 1, 1_000_000)
        explain = request.query_params.get("explain")
        if explain not in (None, "", "gradcam"):
            raise PayloadError(f"Expected explain=gradcam. Received: explain={safe_text(explain, 40)!r}", 422)
        body = await _read_limited(request, settings.max_upload_bytes)
        ctype = request.headers.get("content-type", "")
        kind = ctype.split(";")[0].strip().lower()
        if model.kind == "text":
            if explain:
                raise PayloadError(f"model {model.name} reads text; Grad-CAM is for image models", 422)
            if kind != "application/json":
                raise PayloadError('this model reads text: send application/json {"text": "..."}', 415)
            decode: Any = functools.partial(decode_text, body)
            small = True  # parsing a string is cheap; tokenizing happens per batch on the model thread
        elif kind == "multipart/form-data":
            data = multipart_file(body, ctype)
            decode = functools.partial(decode_file, data, max_pixels=settings.max_pixels)
            small = is_small(data)
        elif kind == "application/json":
            decode = functools.partial(decode_json, body, max_pixels=settings.max_pixels)
            small = is_small(body, json_body=True)
        else:
            raise PayloadError("send multipart/form-data with a file field \"file\", or application/json "
                               "with \"array\" or \"npy\"", 415)
        # A small input is decoded here (cheaper than the hand-off); a large one on a worker thread, so the
        # event loop goes on serving while it decodes. Preprocessing happens per batch, on the model thread.
        raw = decode() if small else await asyncio.to_thread(decode)
        try:
            probs = await batchers[model.name].submit(raw)
        except CnnkitError as exc:
            raise PayloadError(safe_text(exc, 300), 422) from None
        result: dict[str, Any] = {"model": model.name, "predictions": top_k(model, probs, k)}
        if explain == "gradcam":
            loop = asyncio.get_running_loop()
            result["gradcam"] = await loop.run_in_executor(model_thread, lambda: gradcam_png(model, model.to_input(raw)))
        return as_json(result)

    def need_dashboard() -> Dashboard:
        if dashboard is None:
            raise UnknownNameError("no dashboard: start the server with --runs DIR")
        return dashboard

    def run_id(request: Request) -> str:
        rid = request.query_params.get("id")
        if not rid:
            raise PayloadError("name the run: ?id=RUN_ID (GET /api/runs lists them)", 422)
        return rid

    async def runs(request: Request) -> Any:
        d = need_dashboard()
        return as_json({"runs": await asyncio.to_thread(d.listing)})

    async def run(request: Request) -> Any:
        d = need_dashboard()
        return as_json(await asyncio.to_thread(d.detail, run_id(request)))

    async def run_plot(request: Request) -> Any:
        d = need_dashboard()
        data = await asyncio.to_thread(d.plot, run_id(request), request.query_params.get("name", ""))
        return Response(data, media_type="image/png", headers=_HEADERS)

    async def run_errors(request: Request) -> Any:
        d = need_dashboard()
        limit = _query_int(request, "limit", 24, 1, 256)
        rid = run_id(request)
        loop = asyncio.get_running_loop()
        return as_json(await loop.run_in_executor(model_thread, lambda: d.errors(rid, limit=limit)))

    get = ["GET"]
    routes = [
        Route("/", index, methods=get), Route("/dashboard", dashboard_page, methods=get),
        Route("/static/{name}", static, methods=get), Route("/healthz", healthz, methods=get),
        Route("/api/models", list_models, methods=get), Route("/api/predict", predict, methods=["POST"]),
        Route("/api/runs", runs, methods=get), Route("/api/run", run, methods=get),
        Route("/api/run/plot", run_plot, methods=get), Route("/api/run/errors", run_errors, methods=get),
    ]
    handlers: dict[Any, Any] = {Exception: _bug, PayloadError: _payload, UnknownNameError: _unknown,
                                CnnkitError: _cnnkit, HTTPException: _http}
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    app.add_middleware(_Guard, settings=settings)
    app.state.batchers = batchers
    app.state.settings = settings
    return app
