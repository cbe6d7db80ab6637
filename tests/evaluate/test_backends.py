"""Inference backends: every route agrees with eager fp32, auto keeps only routes that agree on the probe
and picks the fastest of them, choices are cached, and predict/evaluate run through the same machinery."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnkit.errors import CnnkitError
from cnnkit.evaluate import backends as B
from cnnkit.runs import load_model


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    B.clear_backend_cache()


@pytest.fixture(scope="module")
def exported_run(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny run with ``model.onnx`` written by ``cnnkit export`` (one export per module: the
    exporter takes seconds)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import shutil

    from cnnkit.export import export_onnx

    run = tmp_path_factory.mktemp("exported") / "run"
    shutil.copytree(trained_run, run)
    export_onnx(run)
    return run


def _probe(run: Path, n: int = 32) -> tuple[nn.Module, torch.Tensor]:
    from cnnkit.runs import load_run_data

    loaded = load_model(run)
    data = load_run_data(run, loaded)
    from cnnkit.data import apply_preprocessing

    return loaded.model.eval(), apply_preprocessing(data.bundle.test.images[:n], loaded.preprocessing)


def test_every_torch_route_matches_eager_fp32_and_leaves_the_model_alone(trained_run: Path) -> None:
    model, x = _probe(trained_run)
    with torch.no_grad():
        ref = model(x)
    for name, atol in (("torch", 0.0), ("torch-cl", 1e-5), ("torch-bf16", 0.1)):
        out = B.make_backend(name, model)(x)
        assert out.dtype == torch.float32 and out.shape == ref.shape
        torch.testing.assert_close(out, ref, atol=atol, rtol=0 if atol == 0 else 2e-2)
        out.add_(1)  # a plain tensor, not an inference tensor: callers may update it in place
    assert all(p.is_contiguous() for p in model.parameters())  # the channels-last routes ran a copy


def test_onnxruntime_route_matches_eager_fp32(exported_run: Path) -> None:
    model, x = _probe(exported_run)
    out = B.make_backend("onnxruntime", model, onnx=exported_run / "model.onnx")(x)
    with torch.no_grad():
        torch.testing.assert_close(out, model(x), atol=1e-4, rtol=1e-4)


def _close_call_model() -> nn.Module:
    """Two logits 1 and 1.003 for the input (1, 0): bf16 rounds the weight 1.003 to 1.0 (its spacing near
    1 is 2^-7), so under bf16 the two tie and argmax says class 0 where fp32 says class 1."""
    lin = nn.Linear(2, 2, bias=False)
    conv = nn.Conv2d(2, 2, 1, bias=False)  # identity: a 4-D input, so the channels-last routes take part
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0], [1.003, 0.0]]))
        conv.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
    return nn.Sequential(conv, nn.Flatten(), lin).eval()


def test_auto_never_picks_bf16_when_it_changes_a_top1(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _close_call_model()
    x = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1).repeat(4, 1, 1, 1)
    assert (B.make_backend("torch-bf16", model)(x).argmax(1) != B.make_backend("torch", model)(x).argmax(1)).all()
    # Make bf16 the fastest route on paper: the correctness check must still keep it out.
    monkeypatch.setattr(B, "_time_routes", lambda runs, x: {k: {"torch-bf16": 0.1}.get(k, 1.0 + len(k) / 100) for k in runs})
    chosen = B.select_backend(model, x, routes=("torch", "torch-cl", "torch-bf16"))
    assert chosen.name == "torch"
    assert chosen.probe is not None and "top-1 differs on 4 of 4" in chosen.probe["rejected"]["torch-bf16"]
    assert set(chosen.probe["seconds"]) == {"torch", "torch-cl"}


def test_auto_picks_the_fastest_agreeing_route_and_caches_it(trained_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, x = _probe(trained_run, 8)
    calls: list[set[str]] = []

    def fake(runs: dict[str, B.Backend], x: torch.Tensor) -> dict[str, float]:
        calls.append(set(runs))
        return {"torch": 3.0, "torch-cl": 1.0, "torch-bf16": 2.0}

    monkeypatch.setattr(B, "_time_routes", fake)
    first = B.select_backend(model, x, cache_key="k")
    assert first.name == "torch-cl" and first.probe is not None and not first.probe["cached"]
    assert calls == [{"torch", "torch-cl", "torch-bf16"}]  # onnxruntime skipped: no exported model given
    assert "cnnkit export" in first.probe["skipped"]["onnxruntime"]
    again = B.select_backend(model, x, cache_key="k")
    assert again.name == "torch-cl" and again.probe is not None and again.probe["cached"] and len(calls) == 1
    B.select_backend(model, x[:3], cache_key="k")  # another batch shape: probed again
    assert len(calls) == 2


def test_outputs_that_are_not_class_scores_must_agree_in_value() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.LazyLinear(1)).eval()
    x = torch.randn(6, 1, 8, 8)
    model(x)  # materialise the lazy layer
    chosen = B.select_backend(model, x, routes=("torch", "torch-cl", "torch-bf16"))
    assert chosen.probe is not None
    assert "outputs differ" in chosen.probe["rejected"]["torch-bf16"]  # a regression value, ~3 digits in bf16
    assert "torch-cl" in chosen.probe["seconds"]


def test_unknown_names_are_refused_with_a_suggestion() -> None:
    with pytest.raises(CnnkitError, match="unknown backend 'torch-bf61'.*torch-bf16"):
        B.check_backend("torch-bf61")
    with pytest.raises(CnnkitError, match="unknown route"):
        B.select_backend(nn.Identity(), torch.zeros(1, 1), routes=("torch", "tensorrt"))
    with pytest.raises(CnnkitError, match="cnnkit export RUN"):
        B.make_backend("onnxruntime", nn.Identity())


def test_onnx_source_uses_a_fresh_export_only(exported_run: Path, tmp_path: Path) -> None:
    import shutil

    assert B.run_onnx_source(exported_run) == (exported_run / "model.onnx", None)
    run = tmp_path / "run"
    shutil.copytree(exported_run, run)
    weights = run / "model.safetensors"
    os.utime(run / "model.onnx", ns=(weights.stat().st_mtime_ns - 10**9,) * 2)  # weights newer: stale
    source, why = B.run_onnx_source(run)
    assert source is None and why is not None and "older than the weights" in why and "cnnkit export" in why
    (run / "model.onnx").unlink()
    assert "no " in (B.run_onnx_source(run)[1] or "")


@pytest.mark.slow  # one more ONNX export (~5 s quiet, ~25 s on a loaded 2-core machine)
def test_onnxruntime_by_name_exports_in_memory_and_writes_nothing(trained_run: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    before = sorted(os.listdir(trained_run))
    model, x = _probe(trained_run, 8)
    run = B.run_backend(load_model(trained_run), backend="onnxruntime")
    with torch.no_grad():
        torch.testing.assert_close(run(x), model(x), atol=1e-4, rtol=1e-4)
    assert run.chosen is not None and run.chosen.name == "onnxruntime"
    assert sorted(os.listdir(trained_run)) == before


def test_evaluate_reports_identical_top1_across_backends(exported_run: Path, tmp_path: Path) -> None:
    from cnnkit.evaluate import evaluate_run

    reports = {b: evaluate_run(exported_run, backend=b, out=tmp_path / b) for b in ("torch", "onnxruntime", "auto")}
    ref = reports["torch"]
    assert ref["backend"]["name"] == "torch" and ref["n"] > 300
    for b in ("onnxruntime", "auto"):
        assert reports[b]["accuracy"] == ref["accuracy"], b
        assert reports[b]["confusion_matrix"] == ref["confusion_matrix"], b
    auto = reports["auto"]["backend"]
    # metrics: auto chooses among the fp32 routes only (bf16 is approximate)
    assert auto["name"] in B.EXACT_ROUTES and set(auto["probe"]["seconds"]) == {"torch", "torch-cl", "onnxruntime"}
