"""`cnnkit datasets download ucr --problem NAME` against a local HTTP server on 127.0.0.1 serving zips."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from cnnkit.cli import main
from cnnkit.config import load_config
from cnnkit.data import DATASETS, build_data
from cnnkit.data.sources.ucr_download import download_problem, download_problems
from cnnkit.errors import DataError

from ..test_download import server  # noqa: F401 (the 127.0.0.1 mirror fixture)
from .test_ucr import write_problem


def _zip(tmp_path: Path, name: str = "Toy", *, nested: bool = True, lie: bool = False) -> bytes:
    """The archive's layout: NAME_TRAIN.ts / NAME_TEST.ts (and other formats) inside NAME.zip."""
    folder = write_problem(tmp_path / "src" / name, name)
    if lie:  # a header that says 30 steps over cases of 31
        p = folder / f"{name}_TEST.ts"
        p.write_text(p.read_text().replace("@seriesLength 30", "@seriesLength 29"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for split in ("TRAIN", "TEST"):
            z.write(folder / f"{name}_{split}.ts", f"{name}/{name}_{split}.ts" if nested else f"{name}_{split}.ts")
        z.writestr(f"{name}/{name}_TRAIN.txt", "not read")
    return buf.getvalue()


def test_download_extracts_records_and_trains(tmp_path: Path, server) -> None:  # noqa: F811
    url, handler = server
    data = _zip(tmp_path)
    handler.files["Toy.zip"] = data
    root = tmp_path / "data"
    folder, how = download_problem("Toy", root, mirrors=[url])
    assert folder == root / "ucr" / "Toy"
    assert sorted(p.name for p in folder.iterdir()) == ["SHA256SUMS", "Toy_TEST.ts", "Toy_TRAIN.ts"]  # the zip is gone
    digest = hashlib.sha256(data).hexdigest()
    assert digest in how and "recorded now" in how
    assert (folder / "SHA256SUMS").read_text() == f"{digest}  Toy.zip\n"
    cfg = load_config(None, ["data.name=ucr", "data.dataset=Toy", f"data.root={folder}"])
    assert build_data(cfg.data, input_shape=(1, 30), device="cpu", seed=0).num_classes == 2
    # again: checked against the recorded sum
    assert "as recorded" in download_problem("Toy", root, mirrors=[url])[1]
    # the mirror now serves other bytes: refused, the old files untouched, no zip left behind
    before = (folder / "Toy_TRAIN.ts").read_bytes()
    handler.files["Toy.zip"] = _zip(tmp_path / "other", nested=False)
    with pytest.raises(DataError, match="checksum mismatch"):
        download_problem("Toy", root, mirrors=[url])
    assert (folder / "Toy_TRAIN.ts").read_bytes() == before and not (folder / "Toy.zip").exists()


def test_given_sha256_is_checked(tmp_path: Path, server) -> None:  # noqa: F811
    url, handler = server
    data = _zip(tmp_path)
    handler.files["Toy.zip"] = data
    with pytest.raises(DataError, match="checksum mismatch"):
        download_problem("Toy", tmp_path / "a", mirrors=[url], sha256="0" * 64)
    assert not (tmp_path / "a" / "ucr" / "Toy" / "Toy_TRAIN.ts").exists()
    _, how = download_problem("Toy", tmp_path / "b", mirrors=[url], sha256=hashlib.sha256(data).hexdigest())
    assert "as given" in how
    with pytest.raises(DataError, match="64 hexadecimal digits"):
        download_problem("Toy", tmp_path / "c", mirrors=[url], sha256="abc")
    with pytest.raises(DataError, match="single --problem"):
        download_problems(["Toy", "Other"], tmp_path / "c", mirrors=[url], sha256="0" * 64)


@pytest.mark.parametrize(("payload", "message"), [
    (b"not a zip", "is not a zip file"),
    ("lie", r"@seriesLength 29 but the cases have length 30"),
    ("empty", "has no Toy_TRAIN.ts, Toy_TEST.ts"),
])
def test_bad_archives_are_one_line_and_leave_nothing(tmp_path: Path, server, payload, message) -> None:  # noqa: F811
    url, handler = server
    if payload == "lie":
        payload = _zip(tmp_path, lie=True)
    elif payload == "empty":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("README", "x")
        payload = buf.getvalue()
    handler.files["Toy.zip"] = payload
    with pytest.raises(DataError, match=message):
        download_problem("Toy", tmp_path, mirrors=[url])
    assert [p.name for p in (tmp_path / "ucr" / "Toy").iterdir()] == []  # no zip, no .part, no half .ts


def test_names_and_cli(tmp_path: Path, server, monkeypatch, capsys) -> None:  # noqa: F811
    url, handler = server
    handler.files["Toy.zip"] = _zip(tmp_path)
    with pytest.raises(DataError, match="a problem name is letters"):
        download_problem("../etc", tmp_path, mirrors=[url])
    monkeypatch.setattr("cnnkit.data.sources.ucr_download.UCR_MIRRORS", (url,))
    assert main(["datasets", "download", "ucr", "--problem", "Toy", "--root", str(tmp_path / "r")]) == 0
    assert "Toy: ready in" in capsys.readouterr().out
    assert main(["datasets", "download", "ucr", "--root", str(tmp_path / "r")]) == 2  # no problem named
    assert "--problem" in capsys.readouterr().err
    assert main(["datasets", "download", "digits", "--problem", "X"]) == 2
    assert "drop --problem" in capsys.readouterr().err
    assert main(["datasets", "download", "ucr", "--problem", "Missing", "--root", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "Missing.zip" in err and len(err.strip().splitlines()) == 1
    assert DATASETS.get("ucr").extra["download_problems"] is download_problems
