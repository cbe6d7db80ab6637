"""The HTTP API: the same numbers as ``cnnkit predict``, Grad-CAM, model choice, and every bad input a
4xx JSON error after which the server still answers."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.errors import CnnkitError
from cnnkit.evaluate import predict
from cnnkit.explain import attribute

from .serve_helpers import png_bytes, png_header_only

pytest.importorskip("starlette")
pytest.importorskip("python_multipart")
from starlette.testclient import TestClient  # noqa: E402

from cnnkit.serve import ServeSettings, create_app, load_served_models  # noqa: E402


@pytest.fixture(scope="module")
def models(run_a: Path, run_b: Path):  # type: ignore[no-untyped-def]
    return load_served_models([run_a, run_b])


@pytest.fixture(scope="module")
def client(models):  # type: ignore[no-untyped-def]
    app = create_app(models, settings=ServeSettings(max_upload_bytes=64 << 10, max_pixels=512 * 512))
    with TestClient(app) as c:
        yield c


def _digits(n: int = 4) -> np.ndarray:
    from sklearn.datasets import load_digits

    return (load_digits().images[:n] * (255 / 16)).round().astype(np.uint8)


def _npy(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, arr)
    return base64.b64encode(buf.getvalue()).decode()


def test_healthz_and_models(client, models) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/healthz").json() == {"status": "ok", "version": "0.1.0", "models": 2, "dashboard": False}
    listed = client.get("/api/models").json()["models"]
    assert [m["name"] for m in listed] == ["tiny-a", "tiny-b"]
    assert listed[0]["input_shape"] == [1, 8, 8] and listed[0]["classes"] == [str(i) for i in range(10)]


def test_png_upload_gives_the_numbers_of_cnnkit_predict(client, run_a: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for i, img in enumerate(_digits(3)):
        (tmp_path / f"d{i}.png").write_bytes(png_bytes(img))
        want = predict(run_a, [tmp_path / f"d{i}.png"], top_k=10)[0]["top"]
        got = client.post("/api/predict?k=10&model=tiny-a", files={"file": ("ignored.txt", png_bytes(img), "image/png")})
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["model"] == "tiny-a"
        assert [p["index"] for p in body["predictions"]] == [t["class"] for t in want]
        assert [p["label"] for p in body["predictions"]] == [t["name"] for t in want]
        np.testing.assert_allclose([p["probability"] for p in body["predictions"]], [t["probability"] for t in want], atol=1e-6)


def test_json_nested_list_and_base64_npy_match_predict_on_the_npy_file(client, run_a: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    arr = _digits(1)[0].astype(np.float32) / 255  # floats in [0, 1], as .npy inputs may be
    np.save(tmp_path / "x.npy", arr)
    want = predict(run_a, [tmp_path / "x.npy"], top_k=3)[0]["top"]
    for payload in ({"array": arr.tolist()}, {"npy": _npy(arr)}):
        body = client.post("/api/predict?k=3", json=payload).json()
        assert [p["index"] for p in body["predictions"]] == [t["class"] for t in want]
        np.testing.assert_allclose([p["probability"] for p in body["predictions"]], [t["probability"] for t in want], atol=1e-6)


def test_model_choice_and_k(client, models) -> None:  # type: ignore[no-untyped-def]
    img = png_bytes(_digits(1)[0])
    a = client.post("/api/predict?model=tiny-a&k=2", files={"file": ("x", img)}).json()
    b = client.post("/api/predict?model=tiny-b&k=2", files={"file": ("x", img)}).json()
    assert a["model"] == "tiny-a" and b["model"] == "tiny-b" and len(a["predictions"]) == 2
    assert a["predictions"][0]["probability"] != b["predictions"][0]["probability"]  # two different networks
    default = client.post("/api/predict", files={"file": ("x", img)}).json()
    assert default["model"] == "tiny-a" and len(default["predictions"]) == 5
    assert len(client.post("/api/predict?k=50", files={"file": ("x", img)}).json()["predictions"]) == 10


def test_gradcam_is_the_explain_map_as_a_png_data_url(client, models) -> None:  # type: ignore[no-untyped-def]
    img = _digits(1)[0]
    body = client.post("/api/predict?explain=gradcam", files={"file": ("x", png_bytes(img))}).json()
    url = body["gradcam"]
    assert url.startswith("data:image/png;base64,")
    png = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert png.format == "PNG" and png.size == (192, 192)  # 8x8 input, drawn 24x larger
    # Each pixel is half the gray input, half matplotlib's "jet" of cnnkit.explain's Grad-CAM map (max 1).
    from matplotlib import colormaps

    m = models["tiny-a"]
    x = m.to_input(torch.from_numpy(img)[None])
    cam = attribute(m.loaded.model, x[None], "gradcam", layer=m.gradcam_layer)[0][0].numpy()
    cam = cam / cam.max() if cam.max() > 0 else cam
    gray = (x[0] - x.min()) / (x.max() - x.min())
    want = 0.5 * gray.numpy()[..., None] * 255 + 0.5 * colormaps["jet"](cam)[..., :3] * 255
    got = np.asarray(png.convert("RGB"), dtype=np.float64)[::24, ::24]
    np.testing.assert_allclose(got, want, atol=3)


@pytest.mark.parametrize(
    ("kwargs", "status", "match"),
    [
        ({"files": {"file": ("x.png", b"not an image at all")}}, 415, "not a valid PNG"),
        ({"files": {"file": ("x.png", b"")}}, 400, "empty"),
        ({"files": {"other": ("x.png", b"abc")}}, 400, 'named "file"'),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "malformed JSON"),
        ({"content": b"[" * 30_000, "headers": {"content-type": "application/json"}}, 400, "malformed JSON"),
        ({"json": [1, 2]}, 400, "JSON object"),
        ({"json": {"array": [[1, 2], [3]]}}, 422, "ragged"),
        ({"json": {"array": [[True, False]]}}, 422, "numbers only"),
        ({"json": {"array": [["a", "b"]]}}, 422, "numbers only"),
        ({"json": {"array": [[300, 2]]}}, 422, "0..255"),
        ({"json": {"array": [[0.5, 2.5]]}}, 422, r"\[0, 1\]"),
        ({"json": {"array": np.zeros((2, 2, 2, 2, 2)).tolist()}}, 422, "dimensions"),
        ({"json": {"array": np.zeros((2, 1, 8, 8)).tolist()}}, 422, "one input per request"),
        ({"json": {"array": np.zeros((5, 8, 8)).tolist()}}, 422, "shape"),
        ({"json": {"npy": "%%%"}}, 400, "base64"),
        ({"json": {"npy": base64.b64encode(b"plain bytes").decode()}}, 422, ".npy"),
        ({"json": {"array": [[0]], "npy": "x"}}, 400, "one of"),
        ({"content": b"abc", "headers": {"content-type": "text/plain"}}, 415, "multipart/form-data"),
        ({"content": b"--x\r\nabc", "headers": {"content-type": "multipart/form-data"}}, 400, "no boundary"),
        ({"content": b"--x\r\nnot a part at all", "headers": {"content-type": "multipart/form-data; boundary=x"}}, 400,
         "malformed multipart|named \"file\""),
        ({"files": {"file": (None, b"abc")}}, 400, 'named "file"'),  # a plain field, not a file
        ({"files": [("f", ("x", b"a"))] * 9}, 400, "more than 8 parts"),
    ],
)
def test_bad_inputs_are_4xx_json_and_the_server_keeps_serving(client, kwargs, status, match) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/api/predict", **kwargs)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    import re

    assert re.search(match, r.json()["error"]), r.json()
    assert client.post("/api/predict", files={"file": ("x", png_bytes(_digits(1)[0]))}).status_code == 200


def test_npy_with_python_objects_is_refused_without_unpickling(client) -> None:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    r = client.post("/api/predict", json={"npy": base64.b64encode(buf.getvalue()).decode()})
    assert r.status_code == 422 and "Python objects" in r.json()["error"]


def test_unknown_model_k_and_explain_are_refused(client) -> None:  # type: ignore[no-untyped-def]
    img = {"files": {"file": ("x", png_bytes(_digits(1)[0]))}}
    r = client.post("/api/predict?model=tiny-c", **img)
    assert r.status_code == 404 and "tiny-a" in r.json()["error"] and "did you mean" in r.json()["error"]
    assert client.post("/api/predict?model=../../etc/passwd", **img).status_code == 404
    assert client.post("/api/predict?k=0", **img).status_code == 422
    assert client.post("/api/predict?k=two", **img).status_code == 422
    assert client.post("/api/predict?explain=occlusion", **img).status_code == 422
    assert client.get("/api/nothing").json() == {"error": "Not Found"}


def test_oversized_bodies_are_refused_while_reading(client) -> None:  # type: ignore[no-untyped-def]
    declared = client.post("/api/predict", content=b"x" * (65 << 10), headers={"content-type": "application/json"})
    assert declared.status_code == 413 and "limit of 65536 bytes" in declared.json()["error"]
    # Chunked (no Content-Length), straight through ASGI so nothing buffers the body first: the server
    # must stop asking for more once it is past the limit.
    import asyncio

    asked = 0
    messages: list[dict] = []

    async def receive() -> dict:
        nonlocal asked
        asked += 1
        return {"type": "http.request", "body": b"x" * 4096, "more_body": asked < 1000}

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/predict", "raw_path": b"/api/predict", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), (b"host", b"testserver")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    asyncio.run(client.app(scope, receive, send))
    assert messages[0]["status"] == 413
    assert asked <= 17  # 64 KiB / 4 KiB = 16 chunks, then one over the limit: 4 MB were never read
    assert client.post("/api/predict", files={"file": ("x", png_bytes(_digits(1)[0]))}).status_code == 200


def test_decompression_bombs_are_refused_from_the_header(client) -> None:  # type: ignore[no-untyped-def]
    bomb = png_header_only(20_000, 20_000)  # 400 megapixels in ~100 bytes
    assert len(bomb) < 200
    r = client.post("/api/predict", files={"file": ("x.png", bomb)})
    assert r.status_code == 413 and "pixels" in r.json()["error"]
    r = client.post("/api/predict", files={"file": ("x.png", png_header_only(600, 600))})  # over max_pixels=512*512
    assert r.status_code == 413 and "limit of 262144 pixels" in r.json()["error"]


def test_token_is_required_on_every_api_call(models) -> None:  # type: ignore[no-untyped-def]
    token = "s3cret-token-0123456789"
    with TestClient(create_app(models, settings=ServeSettings(token=token))) as c:
        img = {"files": {"file": ("x", png_bytes(_digits(1)[0]))}}
        assert c.post("/api/predict", **img).status_code == 401
        assert c.post("/api/predict", headers={"Authorization": "Bearer wrong"}, **img).status_code == 401
        assert c.get("/api/models").status_code == 401
        assert c.post("/api/predict", headers={"Authorization": f"Bearer {token}"}, **img).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/").status_code == 200  # they hold nothing


def test_host_header_must_be_local_when_bound_locally(models) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(models, settings=ServeSettings(allowed_hosts=["127.0.0.1", "localhost"])),
                    base_url="http://127.0.0.1:8000") as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/healthz", headers={"host": "evil.example:8000"}).status_code == 400


def test_pages_and_assets_carry_a_strict_policy(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text and "http" not in page.text.replace('http-equiv', '')  # no inline code, no URLs
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    for bad in ("/static/..%2Fapp.py", "/static/index.html", "/static/%2e%2e/__init__.py", "/dashboard"):
        assert client.get(bad).status_code == 404, bad


def test_batching_runs_concurrent_requests_together(models) -> None:  # type: ignore[no-untyped-def]
    from concurrent.futures import ThreadPoolExecutor

    settings = ServeSettings(max_batch=8, batch_wait_ms=200)
    app = create_app(models, settings=settings)
    img = png_bytes(_digits(1)[0])
    with TestClient(app) as c:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: c.post("/api/predict", files={"file": ("x", img)}).json(), range(8)))
    sizes = app.state.batchers["tiny-a"].batch_sizes
    assert sum(sizes) == 8 and max(sizes) > 1, sizes
    # Batches of different sizes may round differently in the last bits; the answers are the same.
    for r in results:
        assert [p["index"] for p in r["predictions"]] == [p["index"] for p in results[0]["predictions"]]
        np.testing.assert_allclose([p["probability"] for p in r["predictions"]],
                                   [p["probability"] for p in results[0]["predictions"]], rtol=1e-5, atol=1e-7)


def test_non_classification_runs_are_refused(tmp_path: Path, run_a: Path) -> None:
    import shutil

    other = tmp_path / "seg"
    shutil.copytree(run_a, other)
    info = json.loads((other / "model.json").read_text())
    info["task"] = {"name": "segmentation"}
    (other / "model.json").write_text(json.dumps(info))
    with pytest.raises(CnnkitError, match="serves image and text classifiers"):
        load_served_models([other])
