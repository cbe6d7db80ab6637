"""download_dataset against a local HTTP server on 127.0.0.1 (a thread, random port) that serves small
fixture files, honours Range requests, and can be told to serve corrupted bytes."""

import dataclasses
import hashlib
import http.server
import threading
import time
from pathlib import Path

import pytest

from cnnkit.data import DATASETS, dataset_status, download_dataset, load_dataset
from cnnkit.data import download as dl
from cnnkit.data.download import RemoteFile, Resources, fetch_file
from cnnkit.errors import DataError

from .data_fixtures import write_mnist_dir


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    log: list[tuple[str, str | None]] = []
    flood: dict[str, tuple[int, bool]] = {}  # name -> (bytes to stream, announce them in Content-Length)
    sent: list[int] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        name = self.path.rsplit("/", 1)[-1]
        rng = self.headers.get("Range")
        type(self).log.append((name, rng))
        if name in self.flood:
            self._flood(*self.flood[name])
            return
        if name not in self.files:
            self.send_error(404)
            return
        data = self.files[name]
        start = 0
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def _flood(self, total: int, announce: bool) -> None:
        # A mirror gone wrong: far more bytes than the file has, until the client hangs up.
        self.send_response(200)
        if announce:
            self.send_header("Content-Length", str(total))
        self.end_headers()
        sent, block = 0, b"\0" * (1 << 16)
        try:
            while sent < total:
                self.wfile.write(block)
                sent += len(block)
        except (BrokenPipeError, ConnectionResetError):
            pass
        type(self).sent.append(sent)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.files, _Handler.log, _Handler.flood, _Handler.sent = {}, [], {}, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/mirror/", _Handler
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """Tiny MNIST files, and the mnist spec's resources replaced by theirs (with their real SHA-256s)."""
    src = tmp_path / "src"
    write_mnist_dir(src)
    files = {p.name: p.read_bytes() for p in src.iterdir()}
    specs = tuple(RemoteFile(n, hashlib.sha256(b).hexdigest(), size=len(b)) for n, b in sorted(files.items()))
    resources = Resources(("http://127.0.0.1:9/unused/",), specs)
    # Specs are frozen (the registry is shared); the test swaps the whole entry for the test's duration.
    monkeypatch.setitem(DATASETS._entries, "mnist", dataclasses.replace(DATASETS.get("mnist"), resources=resources))
    return files


def test_download_verify_and_load(server, fake_mnist, tmp_path):
    base, handler = server
    handler.files = fake_mnist
    folder = download_dataset("mnist", tmp_path / "data", mirrors=[base])
    assert folder == tmp_path / "data" / "mnist"
    assert {p.name for p in folder.iterdir()} == set(fake_mnist)  # no .part files left
    assert len(load_dataset("mnist", tmp_path / "data")) == 60
    handler.log.clear()
    download_dataset("mnist", tmp_path / "data", mirrors=[base])  # already there and verified
    assert handler.log == []


def test_resume_partial_download(server, fake_mnist, tmp_path):
    base, handler = server
    handler.files = fake_mnist
    name = "train-images-idx3-ubyte.gz"
    dest = tmp_path / "data" / "mnist"
    dest.mkdir(parents=True)
    half = len(fake_mnist[name]) // 2
    (dest / f".{name}.part").write_bytes(fake_mnist[name][:half])
    download_dataset("mnist", tmp_path / "data", mirrors=[base])
    assert (name, f"bytes={half}-") in handler.log
    assert (dest / name).read_bytes() == fake_mnist[name]


def test_corrupted_file_is_rejected_and_not_kept(server, fake_mnist, tmp_path):
    base, handler = server
    bad = dict(fake_mnist)
    bad["t10k-labels-idx1-ubyte.gz"] = bytes(len(bad["t10k-labels-idx1-ubyte.gz"]))  # right size, wrong bytes
    handler.files = bad
    with pytest.raises(DataError) as e:
        download_dataset("mnist", tmp_path / "data", mirrors=[base])
    msg = str(e.value)
    assert "t10k-labels-idx1-ubyte.gz" in msg and "checksum mismatch" in msg and "expected sha256" in msg
    assert "Put " in msg and str(tmp_path / "data" / "mnist") in msg and "\n" not in msg
    dest = tmp_path / "data" / "mnist"
    assert not (dest / "t10k-labels-idx1-ubyte.gz").exists() and not list(dest.glob(".*.part"))


def test_corrupted_resume_restarts_from_scratch(server, tmp_path):
    base, handler = server
    data = bytes(range(256)) * 40
    handler.files = {"blob.bin": data}
    spec = RemoteFile("blob.bin", hashlib.sha256(data).hexdigest())
    (tmp_path / ".blob.bin.part").write_bytes(b"\xff" * 100)  # a partial file that is wrong
    assert fetch_file(spec, tmp_path, [base]).read_bytes() == data
    assert [r for _, r in handler.log] == ["bytes=100-", None]


def test_second_mirror_used_and_md5(server, tmp_path):
    base, handler = server
    data = b"kmnist-ish" * 100
    handler.files = {"f.gz": data}
    spec = RemoteFile("f.gz", md5=hashlib.md5(data).hexdigest())
    dead = "http://127.0.0.1:9/"  # discard port: refused
    assert fetch_file(spec, tmp_path, [dead, base]).read_bytes() == data


def test_offline_message_says_where_to_put_files(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNKIT_DATA", str(tmp_path / "cd"))
    with pytest.raises(DataError) as e:
        download_dataset("fashion-mnist", mirrors=["http://127.0.0.1:9/"], timeout=5)
    msg = str(e.value)
    assert "no mirror reachable (offline?" in msg and "Put train-images-idx3-ubyte.gz" in msg and str(tmp_path / "cd" / "fashion-mnist") in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "\n" not in msg
    with pytest.raises(DataError, match="ships with scikit-learn"):
        download_dataset("digits")


def test_dataset_status(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CNNKIT_DATA", raising=False)
    write_mnist_dir(tmp_path / "mnist")
    rows = {r["name"]: r for r in dataset_status(tmp_path)}
    # Every registered dataset has a row (other sources register more: scenes, segmentation-folder, ...).
    assert {"digits", "mnist", "fashion-mnist", "kmnist", "cifar10", "cifar100", "image-folder", "npz"} <= set(rows)
    assert set(rows) == set(DATASETS.names())
    assert rows["mnist"]["present"] and rows["mnist"]["path"] == str(tmp_path / "mnist")
    assert rows["digits"]["present"] and not rows["cifar10"]["present"] and rows["cifar10"]["path"] is None
    assert all(r["description"] for r in rows.values())
    # An explicit root is the only place searched: a system-wide copy does not count.
    assert not rows["fashion-mnist"]["present"]
    assert rows["fashion-mnist"]["searched"] == [str(tmp_path), str(tmp_path / "fashion-mnist")]
    expected_fashion = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists()
    assert {r["name"]: r for r in dataset_status()}["fashion-mnist"]["present"] == expected_fashion


_FLOOD = 200 * 1024 * 1024  # what a broken mirror sends for a 1,000-byte file


@pytest.mark.parametrize("announce", [False, True])
def test_oversized_download_stops_at_the_expected_size(server, tmp_path, announce):
    base, handler = server
    handler.flood = {"blob.bin": (_FLOOD, announce)}
    spec = RemoteFile("blob.bin", "0" * 64, size=1000)
    with pytest.raises(DataError) as e:
        fetch_file(spec, tmp_path, [base], timeout=10)
    msg = str(e.value)
    assert "blob.bin" in msg and "more than the expected 1000 bytes" in msg and "\n" not in msg
    assert not (tmp_path / ".blob.bin.part").exists() and not (tmp_path / "blob.bin").exists()
    # The client hung up early: the server got nowhere near the whole stream out.
    for _ in range(200):  # the server thread notices the hang-up on its next write
        if handler.sent:
            break
        time.sleep(0.05)
    assert handler.sent and handler.sent[0] < _FLOOD // 4


def test_oversized_download_of_unknown_size_is_capped(server, tmp_path, monkeypatch):
    base, handler = server
    monkeypatch.setattr(dl, "_MAX_UNKNOWN_SIZE", 5000)
    handler.flood = {"blob.bin": (_FLOOD, False)}
    with pytest.raises(DataError, match="more than the limit of 5000 bytes"):
        fetch_file(RemoteFile("blob.bin", md5="0" * 32), tmp_path, [base], timeout=10)
    assert not (tmp_path / ".blob.bin.part").exists()


@pytest.mark.parametrize("target_exists", [True, False])
def test_symlink_at_the_partial_path_is_never_followed(server, tmp_path, target_exists):
    base, handler = server
    data = b"payload" * 100
    handler.files = {"blob.bin": data}
    victim = tmp_path / "victim.txt"
    if target_exists:
        victim.write_bytes(b"precious")
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / ".blob.bin.part").symlink_to(victim)
    with pytest.raises(DataError, match=r"\.blob\.bin\.part is a symlink; refusing to write through it") as e:
        fetch_file(RemoteFile("blob.bin", hashlib.sha256(data).hexdigest()), dest, [base])
    assert "\n" not in str(e.value)
    assert (victim.read_bytes() == b"precious") if target_exists else not victim.exists()
    assert handler.log == []  # refused before any request


def test_partial_file_is_opened_without_following_links(tmp_path):
    # The race the lstat check cannot close: a link planted between the check and the open.
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    part = tmp_path / ".x.part"
    part.symlink_to(victim)
    with pytest.raises(DataError, match="refusing to write through it"):
        dl._open_part(part, append=True)
    with dl._open_part(part, append=False) as f:  # a fresh start replaces the link, not its target
        f.write(b"new")
    assert victim.read_bytes() == b"precious" and not part.is_symlink() and part.read_bytes() == b"new"


def test_every_downloadable_dataset_downloads_a_complete_layout():
    # What `datasets download` fetches must be what `locate` then finds, for every dataset with resources.
    downloadable = [DATASETS.get(n) for n in DATASETS.names() if DATASETS.get(n).downloadable]
    assert {s.name for s in downloadable} == {"mnist", "fashion-mnist", "kmnist", "cifar10", "cifar100"}
    for spec in downloadable:
        names = {f.name for f in spec.resources.files}
        assert any(all(set(entry.split("|")) & names for entry in layout) for layout in spec.files), spec.name
        assert all(f.sha256 or f.md5 for f in spec.resources.files) and spec.resources.mirrors
