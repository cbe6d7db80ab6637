"""``cnnkit serve``: load the run folders, check the address and token, run uvicorn until Ctrl-C."""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path

import torch

from .._text import safe_text
from ..errors import CnnkitError
from .app import ServeSettings, create_app
from .models import load_served_models

__all__ = ["LOCAL_HOSTS", "TOKEN_ENV", "check_binding", "serve"]

TOKEN_ENV = "CNNKIT_SERVE_TOKEN"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
_MIN_TOKEN = 16


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> str | None:
    """The token to require (``token``, else ``$CNNKIT_SERVE_TOKEN``), after checking that an address other
    than the loopback one has one.

    Raises:
        CnnkitError: a non-loopback ``host`` without a token, or a token shorter than 16 characters.
    """
    token = token if token is not None else os.environ.get(TOKEN_ENV) or None
    if token is not None and len(token) < _MIN_TOKEN:
        raise CnnkitError(
            f"Expected a token of at least {_MIN_TOKEN} characters. Received: {len(token)}; make one with "
            "python3 -c \"import secrets; print(secrets.token_urlsafe())\""
        )
    if not _is_loopback(host) and token is None:
        raise CnnkitError(
            f"--host {safe_text(host, 80)} makes the models reachable from other machines: pass --token TOKEN or set "
            f"{TOKEN_ENV} (every API call must then send Authorization: Bearer TOKEN), or keep the default 127.0.0.1"
        )
    return token


def serve(
    run_dirs: list[str | Path],
    *,
    runs_dir: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    max_batch: int = 32,
    batch_wait_ms: float = 2.0,
    max_upload_bytes: int = 8 << 20,
    threads: int | None = None,
    device: str | None = None,
) -> None:
    """Serve the models of ``run_dirs`` (and a dashboard of ``runs_dir``) over HTTP until interrupted.

    Raises:
        CnnkitError: nothing to serve, an unsafe binding, a bad run folder, or the serve extra missing.
    """
    try:
        import uvicorn
    except ImportError:
        raise CnnkitError("cnnkit serve needs the serve extra: pip install -e '.[serve]'") from None
    from ..runtime import resolve_device

    if not run_dirs and runs_dir is None:
        raise CnnkitError("nothing to serve: name run folders (cnnkit serve RUN_DIR ...) and/or --runs DIR")
    if not 0 < port < 65536:
        raise CnnkitError(f"Expected 0 < port < 65536. Received: port={port}")
    if threads is not None:
        if threads < 1:
            raise CnnkitError(f"Expected threads >= 1. Received: threads={threads}")
        torch.set_num_threads(threads)  # the server process is ours: its thread count is the user's choice
    token = check_binding(host, token)
    models = load_served_models(list(run_dirs), device=resolve_device(device))
    settings = ServeSettings(
        token=token, max_upload_bytes=max_upload_bytes, max_batch=max_batch, batch_wait_ms=batch_wait_ms,
        # Bound to the loopback address, only local Host names are accepted: a page on another site that
        # rebinds its DNS name to 127.0.0.1 still sends its own name.
        allowed_hosts=list(LOCAL_HOSTS) if _is_loopback(host) else None,
    )
    app = create_app(models, runs_dir=runs_dir, settings=settings)
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    url = f"http://{shown}:{port}/"
    names = ", ".join(models) or "none"
    print(f"cnnkit serve: models {safe_text(names, 400)}; open {url}" + ("#token=TOKEN" if token else ""), file=sys.stderr)
    if runs_dir is not None:
        print(f"cnnkit serve: dashboard of {safe_text(runs_dir, 200)} at {url}dashboard", file=sys.stderr)
    uvicorn.run(app, host=host.strip("[]"), port=port, log_level="warning", server_header=False)
