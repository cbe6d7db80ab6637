"""Load test of ``cnnkit serve`` on 127.0.0.1: requests/s, latency, errors and server memory, with request
batching on and off in the same run.

For each mode (``--max-batch`` for batching on, 1 for off), a fresh ``cnnkit serve RUN`` process is started
on a free loopback port; ``--clients`` client threads, each on its own keep-alive connection, POST the same
PNG (multipart, as the page sends it) to ``/api/predict`` as fast as they can for ``--seconds`` seconds,
after a short warm-up; then the server is stopped (SIGTERM to the process this script started). Modes
alternate for ``--repeats`` rounds, so a change in the machine's load hits both alike; the table shows mean ±
std over rounds and the throughput ratio to batching off.

Reported per mode: requests/s, p50 and p99 latency (over every request of every round), errors (any status
but 200 or a failed connection; must be 0), the server's CPU time per request (user + system time of the
server process over the measured seconds, divided by the requests served: on a shared machine this is the
steadier number, and 1000 / it is what one fully used core would serve), and the server's resident memory
(VmRSS) after warm-up and at the end of each round (it must not grow without bound: compare the two).

``--payload png`` (default) sends the PNG as a multipart file, as the page does; ``--payload json`` sends
the same pixels as ``{"array": [[...]]}``.

Everything is bounded: each round stops by itself after ``--seconds``, every request has a timeout, and the
whole script refuses to run longer than ``--max-total`` seconds. Only 127.0.0.1 is ever contacted.

Without ``RUN``, a run folder with an untrained model (``--model``, random weights: the serving cost is
real, the predictions are not) is written to a temporary folder and removed afterwards.

Usage:
    python benchmarks/serve.py runs/lenet5-digits-<timestamp>
    python benchmarks/serve.py --model resnet20 --clients 16 --seconds 10 --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from PIL import Image

HOST = "127.0.0.1"  # never anything else


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid``, all its threads."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _untrained_run(folder: Path, model: str) -> Path:
    import torch

    from cnnkit.models import build_model, model_info
    from cnnkit.runs import save_model

    info = model_info(model)
    c, h, w = info.get("input_size", (1, 32, 32))
    build = {"name": model, "num_classes": 10}
    if "in_channels" in str(info.get("signature", "")) or model.startswith("resnet"):
        build["in_channels"] = c
    net = build_model(dict(build))
    pre = {"input_shape": [c, h, w], "source_shape": [c, h, w], "fit": "none", "fit_mode": "auto", "channels_from": c,
           "scale": 255.0, "mean": [0.5] * c, "std": [0.25] * c}
    torch.manual_seed(0)
    save_model(folder, net, build=build, preprocessing=pre, class_names=[str(i) for i in range(10)])
    return folder


def _input_pixels(run: Path) -> np.ndarray:
    pre = json.loads((run / "model.json").read_text())["preprocessing"]
    c, h, w = pre.get("source_shape") or pre["input_shape"]
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(h, w) if c == 1 else (h, w, 3), dtype=np.uint8)


def _input_png(run: Path) -> bytes:
    arr = _input_pixels(run)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _multipart(png: bytes) -> tuple[bytes, str]:
    boundary = "cnnkit-bench-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@contextlib.contextmanager
def _server(run: Path, port: int, max_batch: int, wait_ms: float, threads: int):
    cmd = [sys.executable, "-m", "cnnkit", "serve", str(run), "--host", HOST, "--port", str(port),
           "--max-batch", str(max_batch), "--batch-wait-ms", str(wait_ms), "--threads", str(threads)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("CNNKIT_SERVE_TOKEN", None)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited: {proc.stderr.read().decode(errors='replace')[-500:]}")
            try:
                conn = http.client.HTTPConnection(HOST, port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not answer /healthz within 120 s")
            time.sleep(0.1)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)  # only the process this script started
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _load(port: int, body: bytes, ctype: str, clients: int, seconds: float) -> tuple[list[float], int, float]:
    """``clients`` threads POSTing for ``seconds``: (latencies in s, errors, elapsed s)."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        start.wait()
        while time.perf_counter() < stop_at[0]:
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/api/predict?k=1", body=body, headers={"Content-Type": ctype})
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=30)
            if ok:
                latencies[i].append(time.perf_counter() - t0)
            else:
                errors[i] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    stop_at[0] = t0 + seconds
    start.wait()
    for t in threads:
        t.join(timeout=seconds + 60)
    return [x for lat in latencies for x in lat], sum(errors), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", nargs="?", type=Path, default=None, help="run folder to serve (default: an untrained --model)")
    ap.add_argument("--model", default="lenet5", help="registry model for the untrained run when RUN is not given")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=8.0, help="load time per mode and round")
    ap.add_argument("--warmup", type=float, default=1.5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--max-batch", type=int, default=32, help="batch size limit with batching on")
    ap.add_argument("--batch-wait-ms", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads in the server")
    ap.add_argument("--payload", choices=("png", "json"), default="png", help="multipart PNG (as the page) or a JSON array")
    ap.add_argument("--max-total", type=float, default=900.0, help="refuse settings that would run longer (s)")
    args = ap.parse_args()
    planned = args.repeats * 2 * (args.seconds + args.warmup + 15)
    if planned > args.max_total:
        raise SystemExit(f"about {planned:.0f} s planned, more than --max-total {args.max_total:.0f} s")

    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-serve-") as tmp:
        run = args.run if args.run is not None else _untrained_run(Path(tmp) / "run", args.model)
        if args.payload == "png":
            body, ctype = _multipart(_input_png(run))
        else:
            body, ctype = json.dumps({"array": _input_pixels(run).tolist()}).encode(), "application/json"
        modes = {f"batching on (max {args.max_batch}, wait {args.batch_wait_ms:g} ms)": args.max_batch, "batching off": 1}
        res: dict[str, dict[str, list]] = {m: {"rps": [], "lat": [], "err": [], "cpu": [], "rss0": [], "rss1": []} for m in modes}
        for rnd in range(args.repeats):
            for mode, max_batch in modes.items():
                port = _free_port()
                with _server(run, port, max_batch, args.batch_wait_ms, args.threads) as proc:
                    _load(port, body, ctype, args.clients, args.warmup)
                    rss0, cpu0 = _rss_mb(proc.pid), _cpu_s(proc.pid)
                    lat, err, elapsed = _load(port, body, ctype, args.clients, args.seconds)
                    rss1, cpu1 = _rss_mb(proc.pid), _cpu_s(proc.pid)
                r = res[mode]
                r["rps"].append(len(lat) / elapsed)
                r["lat"] += lat
                r["err"].append(err)
                r["cpu"].append(1000 * (cpu1 - cpu0) / max(len(lat), 1))
                r["rss0"].append(rss0)
                r["rss1"].append(rss1)
                print(f"round {rnd + 1}/{args.repeats} {mode}: {len(lat) / elapsed:.0f} req/s, {err} errors", file=sys.stderr)

    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    print(f"\ncnnkit serve load test: {run.name if args.run else args.model + ' (untrained)'}, {args.clients} clients x "
          f"{args.seconds:g} s x {args.repeats} rounds, server torch threads {args.threads}, "
          f"{os.cpu_count()} CPUs, load average {load:.1f}, payload {args.payload}\n")
    head = f"{'mode':<36} {'req/s':>14} {'ratio':>6} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'CPU ms/req':>10} {'RSS start -> end MB':>21}"
    print(head)
    print("-" * len(head))
    base = statistics.mean(res["batching off"]["rps"])
    for mode, r in res.items():
        rps = statistics.mean(r["rps"])
        sd = statistics.stdev(r["rps"]) if len(r["rps"]) > 1 else 0.0
        lat = np.array(r["lat"]) * 1000 if r["lat"] else np.array([float("nan")])
        print(f"{mode:<36} {rps:>8.0f} ± {sd:<4.0f} {rps / base:>6.2f} {np.percentile(lat, 50):>8.1f} {np.percentile(lat, 99):>8.1f} "
              f"{sum(r['err']):>7d} {statistics.mean(r['cpu']):>10.2f} {statistics.mean(r['rss0']):>10.0f} -> {max(r['rss1']):<8.0f}")
    if any(sum(r["err"]) for r in res.values()):
        raise SystemExit("errors under load: see the table")


if __name__ == "__main__":
    main()
