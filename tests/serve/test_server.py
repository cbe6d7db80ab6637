"""``cnnkit serve`` itself: the address/token rule, one-line CLI errors, and a real uvicorn server over HTTP
with batching on and off."""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from cnnkit.cli import main
from cnnkit.errors import CnnkitError

from .serve_helpers import png_bytes

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("python_multipart")

from cnnkit.serve import ServeSettings, check_binding, create_app, load_served_models  # noqa: E402

from .live_server import live_server  # noqa: E402

TOKEN = "a-long-enough-token-123"


def test_other_addresses_need_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CNNKIT_SERVE_TOKEN", raising=False)
    assert check_binding("127.0.0.1", None) is None
    assert check_binding("::1", None) is None and check_binding("localhost", None) is None
    for host in ("0.0.0.0", "192.168.1.5", "::", "example.org"):
        with pytest.raises(CnnkitError, match="--token"):
            check_binding(host, None)
    assert check_binding("0.0.0.0", TOKEN) == TOKEN
    monkeypatch.setenv("CNNKIT_SERVE_TOKEN", TOKEN)
    assert check_binding("0.0.0.0", None) == TOKEN
    assert check_binding("127.0.0.1", None) == TOKEN  # set, it is required on the loopback address too
    with pytest.raises(CnnkitError, match="at least 16 characters"):
        check_binding("0.0.0.0", "short")


def test_cli_refuses_in_one_line_before_loading(run_a: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CNNKIT_SERVE_TOKEN", raising=False)
    assert main(["serve", str(run_a), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pass --token TOKEN or set CNNKIT_SERVE_TOKEN" in err
    assert main(["serve"]) == 2 and "nothing to serve" in capsys.readouterr().err
    assert main(["serve", str(run_a.parent / "missing")]) == 2 and "run folder not found" in capsys.readouterr().err
    assert main(["serve", str(run_a), "--max-batch", "0"]) == 2 and "max_batch >= 1" in capsys.readouterr().err


def _post(url: str, body: bytes, token: str | None = None) -> dict:
    boundary = "cnnkitboundary"
    data = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + body + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url + "/api/predict?k=3", data=data, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


@pytest.mark.parametrize("max_batch", [1, 16])
def test_a_real_server_batches_concurrent_clients(run_a: Path, max_batch: int) -> None:
    models = load_served_models([run_a])
    app = create_app(models, settings=ServeSettings(max_batch=max_batch, batch_wait_ms=20, token=TOKEN))
    img = png_bytes((np.arange(64).reshape(8, 8) * 4).astype(np.uint8))
    with live_server(app) as url:
        with urllib.request.urlopen(url + "/healthz", timeout=30) as r:
            assert json.loads(r.read())["models"] == 1
        with pytest.raises(urllib.error.HTTPError) as info:
            _post(url, img)
        assert info.value.code == 401
        info.value.close()  # the error holds the response's socket
        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(lambda _: _post(url, img, TOKEN), range(36)))
    # Batches of different sizes may round differently in the last bits; the answers are the same.
    for r in results:
        assert [p["index"] for p in r["predictions"]] == [p["index"] for p in results[0]["predictions"]]
        np.testing.assert_allclose([p["probability"] for p in r["predictions"]],
                                   [p["probability"] for p in results[0]["predictions"]], rtol=1e-5, atol=1e-7)
    sizes = app.state.batchers["tiny-a"].batch_sizes
    assert sum(sizes) == 36
    if max_batch == 1:
        assert set(sizes) == {1}
    else:
        assert max(sizes) > 1 and max(sizes) <= 16
