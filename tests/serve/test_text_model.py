"""``cnnkit serve`` with a text classifier: ``{"text": ...}`` in, the numbers of ``cnnkit predict --text`` out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cnnkit.cli import main

pytest.importorskip("starlette")
pytest.importorskip("python_multipart")

from starlette.testclient import TestClient  # noqa: E402

from cnnkit.serve import create_app, load_served_models  # noqa: E402

from .serve_helpers import png_bytes  # noqa: E402


def test_text_requests_get_the_numbers_of_predict(text_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = load_served_models([text_run])
    (model,) = models.values()
    assert model.kind == "text" and model.gradcam_layer is None
    sentences = ["a good and superb film", "dull awful the bad", "zzz unknown words"]
    capsys.readouterr()
    assert main(["predict", str(text_run), "--json", "--top-k", "2", *[a for t in sentences for a in ("--text", t)]]) == 0
    expected = json.loads(capsys.readouterr().out)
    with TestClient(create_app(models)) as client:
        described = client.get("/api/models").json()["models"][0]
        assert described["kind"] == "text" and described["gradcam"] is False
        for sentence, want in zip(sentences, expected):
            r = client.post("/api/predict?k=2", json={"text": sentence})
            assert r.status_code == 200, r.text
            got = r.json()["predictions"]
            assert [p["label"] for p in got] == [p["name"] for p in want["top"]]
            assert [p["probability"] for p in got] == pytest.approx([p["probability"] for p in want["top"]], abs=1e-6)
        # The wrong kind of input, an empty or missing text, Grad-CAM: 4xx with one line, and it keeps serving.
        assert client.post("/api/predict", files={"file": ("x.png", png_bytes(np.zeros((8, 8), dtype=np.uint8)), "image/png")}).status_code == 415
        for body, status in (({"array": [[1, 2]]}, 422), ({"text": "  "}, 422), ({"text": 3}, 422)):
            r = client.post("/api/predict", json=body)
            assert r.status_code == status and "text" in r.json()["error"]
        r = client.post("/api/predict?explain=gradcam", json={"text": "good"})
        assert r.status_code == 422 and "Grad-CAM is for image models" in r.json()["error"]
        assert client.post("/api/predict", json={"text": "good film"}).status_code == 200
