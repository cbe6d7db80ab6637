"""The ``cnnkit`` command: parses arguments and dispatches to library functions, nothing more.

Every command is a library function first (``cnnkit.train.fit``, ``cnnkit.evaluate.evaluate_run``, ...).
User errors (:class:`~cnnkit.errors.CnnkitError`) print one line and exit with status 2; heavy modules are
imported inside the handlers so ``cnnkit --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from ._text import safe_markup, safe_text
from .errors import CnnkitError

__all__ = ["main", "build_parser"]


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in text.replace("x", ",").split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 3,224,224. Received: {text!r}") from None
    if not shape or any(s <= 0 for s in shape):
        raise argparse.ArgumentTypeError(f"expected positive integers like 3,224,224. Received: {text!r}")
    return shape


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1). Received: {text!r}") from None
    return value


# ----------------------------------------------------------------------------------------------- handlers


def _cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .train import fit
    from .train.fit import resolve_run_dir

    cfg = None
    if args.resume is None:
        cfg = load_config(args.config, args.overrides)
    elif args.config is not None or args.overrides:
        # --resume RUN --set train.epochs=30: the run's own config, changed; fit refuses keys that cannot change.
        cfg = load_config(args.config or resolve_run_dir(args.resume) / "config.yaml", args.overrides)
    try:
        fit(cfg, out=args.out, overwrite=args.overwrite, resume=args.resume, init_from=args.init_from, quiet=args.quiet)
    except CnnkitError as exc:
        # Under torchrun every rank raises the errors the ranks agree on (a stop, a non-finite loss, a failed
        # write on rank 0): rank 0 alone prints the message.
        if getattr(exc, "rank", 0) != 0:
            return exc.exit_code
        raise
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from .config import config_to_yaml, load_config

    cfg = load_config(args.config, args.overrides)
    if args.json:
        _print_json(cfg.model_dump(mode="json"))
    else:
        sys.stdout.write(config_to_yaml(cfg))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_run, format_report
    from .evaluate.detection import evaluate_detection_run, format_detection_report, is_detection_run

    if is_detection_run(args.run_dir):  # task: detection (COCO mAP)
        report = evaluate_detection_run(args.run_dir, split=args.split, out=args.out)
        _print_json(report) if args.json else print(format_detection_report(report))
        return 0
    report = evaluate_run(
        args.run_dir,
        data=args.data,
        split=args.split,
        tta=args.tta,
        temperature_scaling=args.temperature_scaling,
        conformal=args.conformal,
        score=args.score,
        write_sets=args.write_sets,
        out=args.out,
        top_k=args.top_k,
        backend=args.backend or "auto",
    )
    if args.backend is not None and report.get("backend"):
        _print_backend(report["backend"])
    if args.json:
        _print_json(report)
    else:
        print(format_report(report))
    return 0


def _cmd_cv(args: argparse.Namespace) -> int:
    from .config import load_config
    from .train import cross_validate, format_cv

    cfg = load_config(args.config, args.overrides)
    # With --json, stdout carries the JSON document alone: each fold's closing lines go to stderr.
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        result = cross_validate(
            cfg, folds=args.folds, stratified=args.stratified, out=args.out, overwrite=args.overwrite, quiet=args.json
        )
    if args.json:
        _print_json(result)
    else:
        print(format_cv(result))
        print(f"summary: {Path(result['out']) / 'cv_summary.json'}")
    return 0


def _print_backend(described: dict[str, Any]) -> None:
    """One stderr line: the inference route, and for auto what the probe measured."""
    probe = described.get("probe") or {}
    seconds = probe.get("seconds") or {}
    timed = ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in sorted(seconds.items(), key=lambda kv: kv[1]) if v == v)
    dropped = "; ".join(f"{k}: {safe_text(v, 120)}" for k, v in {**probe.get("rejected", {}), **probe.get("skipped", {})}.items())
    how = " (cached choice)" if probe.get("cached") else (f" (probe: {timed})" if timed else "")
    print(f"cnnkit: backend {described['name']}{how}" + (f"; not used: {dropped}" if dropped else ""), file=sys.stderr)


def _cmd_predict(args: argparse.Namespace) -> int:
    from .evaluate import predict
    from .evaluate.detection import is_detection_run, predict_detections

    if is_detection_run(args.run_dir):  # task: detection: boxes drawn on the images, COCO JSON results
        found = predict_detections(
            args.run_dir, args.inputs, output=args.output, draw=args.draw, score_threshold=args.score_threshold,
            on_skip=lambda name, error: print(f"cnnkit: skipped: {error}", file=sys.stderr),
        )
        if args.json:
            _print_json(found)
            return 0
        for item in found:
            if "error" not in item:
                boxes = ", ".join(f"{safe_text(d['name'], 40)} {d['score']:.2f} [{', '.join(f'{v:.0f}' for v in d['box'])}]"
                                  for d in item["detections"][:5])
                print(f"{safe_text(item['input'], None)}: {len(item['detections'])} objects{': ' if boxes else ''}{boxes} -> {item['image']}")
        return 0
    # Unreadable inputs are skipped, one stderr line each; predict raises (exit 2) only if none was read.
    results = predict(
        args.run_dir, args.inputs, top_k=args.top_k, output=args.output, texts=args.text,
        batch_size=args.batch_size, backend=args.backend or "auto",
        on_skip=lambda name, error: print(f"cnnkit: skipped: {error}", file=sys.stderr),
        # The route is named on stderr only when --backend was given: the default output stays as it was.
        on_backend=(lambda b: _print_backend(b.describe())) if args.backend is not None else None,
    )
    if args.json:
        _print_json(results)
        return 0
    for item in results:
        if "error" in item:
            continue
        if "label" in item and ("labels" in item or "values" in item):  # multi-label, regression
            print(f"{safe_text(item['input'], None)}: {safe_text(item['label'], 400) or '(no label)'}")
            continue
        if "top" not in item and "text" in item:  # other tasks describe their result in one line (segmentation: the mask file)
            print(f"{safe_text(item['input'], None)}: {safe_text(item.get('text', ''), None)}")
            continue
        if "top" not in item:  # a forecast or anomaly score (series tasks): the row as JSON
            print(f"{safe_text(item['input'], None)}: {safe_text(json.dumps({k: v for k, v in item.items() if k != 'input'}), 2000)}")
            continue
        # Class names come from the run's model.json: sanitised, so they cannot drive the terminal.
        tops = ", ".join(f"{safe_text(t['name'], 80)} {t['probability']:.3f}" for t in item["top"])
        print(f"{safe_text(item['input'], None)}: {tops}")
    return 0


def _cmd_runs(args: argparse.Namespace) -> int:
    from .runs import list_runs
    from .runs.listing import runs_table

    runs = list_runs(args.dir, sort=args.sort)
    if args.json:
        _print_json([r.as_dict() for r in runs])
        return 0
    from rich.console import Console

    Console().print(runs_table(runs))  # rich fits the table to the terminal (or $COLUMNS)
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from .serve import serve

    serve(args.run_dirs, runs_dir=args.runs, host=args.host, port=args.port, token=args.token,
          max_batch=args.max_batch, batch_wait_ms=args.batch_wait_ms, max_upload_bytes=args.max_upload_bytes,
          threads=args.threads)
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from .explain import explain

    paths = explain(args.run_dir, args.inputs, method=args.method, target=args.target, layer=args.layer, out=args.out,
                    texts=args.text, report=print)
    for p in paths:
        print(p)
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from .evaluate import generate_run

    print(safe_text(generate_run(args.run_dir, n=args.n, seed=args.seed, out=args.out), None))
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    from .explain import audit, format_audit

    result = audit(args.run_dir, shifts=args.shifts, max_shift=args.max_shift, data=args.data, limit=args.limit)
    if args.json:
        _print_json(result)
    else:
        print(format_audit(result))
    return 0


def _cmd_play(args: argparse.Namespace) -> int:
    from .rl.play import play_run

    result = play_run(args.run_dir, episodes=args.episodes, gif=args.gif, epsilon=args.epsilon, against=args.against, seed=args.seed)
    if args.json:
        _print_json(result)
    elif "env" in result:
        print(f"{result['episodes']} episodes of {result['env']}: mean return {result['mean']:.2f} (median {result['median']:.2f})")
        if "gif" in result:
            print(f"gif: {result['gif']}")
    else:
        print(f"{result['games']} games against {result['against']}: {result['wins']} won, {result['draws']} drawn, {result['losses']} lost")
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    from .analysis import summary_for

    summary = summary_for(args.model, args.input, allow_floor=args.allow_floor)
    if args.json:
        _print_json(summary.to_dict())
    else:
        from rich.console import Console

        Console().print(summary.to_table())  # rich fits the table to the terminal (or $COLUMNS)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export_onnx

    result = export_onnx(args.run_dir, out=args.out, opset=args.opset, check=not args.no_check)
    diff = result["max_abs_diff"]
    checked = f"; onnxruntime matches PyTorch: max |diff| {diff:.2e}" if diff is not None else ""
    head = f" and {safe_text(result['head_path'], None)}" if result.get("head_path") else ""  # a detector's box head
    print(f"wrote {safe_text(result['path'], None)}{head} (opset {result['opset']}{checked})")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from .models import list_models, model_info

    infos = [model_info(n) for n in list_models(args.pattern)]
    if args.json:
        _print_json(infos)
        return 0
    from rich import box
    from rich.console import Console
    from rich.table import Table

    # Names, years, shapes and counts never wrap (a name is what the user types); task and paper fold.
    table = Table(title=f"cnnkit models ({len(infos)})", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in ("name", "year", "task", "input", "params", "paper"):
        table.add_column(col, justify="right" if col == "params" else "left", no_wrap=col not in ("task", "paper"),
                         overflow="fold")
    for i in infos:
        params = f"{i['num_params']:,}" if i.get("num_params") else "-"
        cells = (i["name"], str(i.get("year", "")), str(i.get("task", "")), "x".join(map(str, i.get("input_size", ()))), params, str(i.get("paper", "")))
        table.add_row(*(safe_markup(c, None) for c in cells))
    Console().print(table)  # rich fits the table to the terminal (or $COLUMNS)
    return 0


def _cmd_layers(args: argparse.Namespace) -> int:
    from .layers import LAYERS

    names = LAYERS.names(args.pattern)
    if args.json:
        _print_json(names)
    else:
        for n in names:
            cls = LAYERS.get(n)
            doc = (cls.__doc__ or "").strip().splitlines()
            print(f"{n:32s} {cls.__module__}.{cls.__qualname__}  {doc[0] if doc else ''}")
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from .data import DATASETS, dataset_status, download_dataset

    if args.action == "download":
        if not args.name:
            raise CnnkitError("cnnkit datasets download NAME: name the dataset (see `cnnkit datasets`)")
        per_problem = DATASETS.get(args.name).extra.get("download_problems")
        if args.problem or args.sha256:
            if per_problem is None:
                raise CnnkitError(f"{args.name} has no problems to choose: drop --problem/--sha256")
        if per_problem is not None:  # an archive of many problems (ucr): fetch the ones named
            for problem, folder, how in per_problem(args.problem or [], root=args.root, sha256=args.sha256):  # type: ignore[operator]
                print(f"{problem}: ready in {folder} ({how})")
            return 0
        path = download_dataset(args.name, root=args.root)
        print(f"{args.name}: ready in {path}")
        return 0
    if args.action is not None:
        raise CnnkitError(f"unknown datasets action {args.action!r}; did you mean 'download'?")
    rows = dataset_status()
    if args.json:
        _print_json(rows)
        return 0
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(title="cnnkit datasets", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in ("name", "present", "where", "description"):
        table.add_column(col, no_wrap=col in ("name", "present"), overflow="fold")
    for r in rows:
        cells = (r["name"], "yes" if r["present"] else "no", str(r.get("path") or "-"), str(r.get("description", "")))
        table.add_row(*(safe_markup(c, None) for c in cells))  # a path like runs/[v2] is not markup
    Console().print(table)  # rich fits the table to the terminal (or $COLUMNS)
    return 0


# ------------------------------------------------------------------------------------------------- parser


# The names of cnnkit.evaluate.backends.BACKENDS, spelled out so `cnnkit --help` does not import torch.
_BACKENDS = ("auto", "torch", "torch-cl", "torch-bf16", "torch-compile", "onnxruntime")


def _add_backend_arg(p: argparse.ArgumentParser, auto: str) -> None:
    p.add_argument("--backend", default=None, choices=_BACKENDS,
                   help=f"inference route (default auto; {auto}); torch-cl: fp32 channels-last, torch-bf16: bf16 "
                        "autocast + channels-last, onnxruntime: RUN/model.onnx from cnnkit export. "
                        "Given explicitly, the route chosen is printed on stderr")


def _add_config_args(p: argparse.ArgumentParser, *, config_required: bool = False) -> None:
    if config_required:
        p.add_argument("config", metavar="CONFIG", help="YAML config path")
    else:
        p.add_argument("config", metavar="CONFIG", nargs="?", default=None, help="YAML config path (default: built-in defaults)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a config value (repeatable; YAML scalars: 3, 1e-3, true, [1, 2])",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnkit",
        description="cnnkit: convolutional neural networks, correct to the paper. Run `cnnkit train` to train LeNet-5 on digits.",
    )
    parser.add_argument("--version", action="version", version=f"cnnkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    p = add("train", _cmd_train, "train a model (no CONFIG: LeNet-5 on the embedded 8x8 digits)")
    _add_config_args(p)
    p.add_argument(
        "--out", type=Path, default=None,
        help="run folder (default: runs/<name>-<timestamp>, named after the config file, or <model>-<dataset> without one)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder (only one cnnkit created)")
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="continue a run exactly (--set train.epochs=N extends it; a run stopped before its first checkpoint starts over)",
    )
    p.add_argument("--init-from", type=Path, default=None, metavar="RUN_DIR", help="start from a trained run's weights")
    p.add_argument("--quiet", action="store_true", help="print only the final result")

    p = add("config", _cmd_config, "print the resolved config (defaults filled in, overrides applied)")
    _add_config_args(p)
    p.add_argument("--json", action="store_true")

    p = add("evaluate", _cmd_evaluate, "evaluate a trained run on its test set (reports, plots, calibration, conformal)")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--data", default=None, help="evaluate on another registered dataset")
    p.add_argument("--split", default="test", choices=["test", "val", "train"])
    p.add_argument("--tta", default="none", choices=["none", "flip", "shift"])
    p.add_argument("--temperature-scaling", action="store_true", help="fit a temperature on the validation split (none: a held-out half of the test split)")
    p.add_argument("--conformal", type=_probability, default=None, metavar="ALPHA", help="split conformal prediction at miscoverage ALPHA")
    p.add_argument("--score", default="lac", choices=["lac", "aps", "raps"], help="conformal score")
    p.add_argument("--write-sets", action="store_true", help="write each test item's prediction set")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--json", action="store_true")
    _add_backend_arg(p, "auto: the fastest fp32 route on the first test batch, so metrics do not depend on it")

    p = add("cv", _cmd_cv, "k-fold cross-validation: K runs, each fold once as validation")
    _add_config_args(p, config_required=True)
    p.add_argument("--folds", type=int, required=True, metavar="K")
    p.add_argument("--stratified", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--json", action="store_true")

    p = add("predict", _cmd_predict, "classify images (.png/.jpg/.bmp/.webp), arrays (.npy) or folders of them (recursively)")
    p.epilog = (
        "An input that cannot be read is skipped with one line on stderr (and a row with an error in --output); "
        "the exit status is 0 when at least one input was predicted, 2 when none could be read."
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="files or folders (text runs: text files, one input per line)")
    p.add_argument("--text", action="append", default=None, metavar="TEXT", help="a raw string to predict (text runs; repeatable)")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--output", type=Path, default=None, metavar="FILE",
                   help="also write one row per input (input, label, probability, top-k) to FILE.csv or FILE.json")
    p.add_argument("--json", action="store_true")
    p.add_argument("--draw", type=Path, default=None, metavar="DIR",
                   help="detection runs: write each image with its boxes drawn into DIR (default RUN_DIR/predict)")
    p.add_argument("--score-threshold", type=float, default=0.3, help="detection runs: drop detections scoring lower")
    p.add_argument("--batch-size", type=int, default=64, help="inputs decoded and run at a time (default 64)")
    _add_backend_arg(p, "auto: the fastest fp32 route whose top-1 matches eager fp32 on the first batch")

    p = add("explain", _cmd_explain, "attribution maps (saliency, Grad-CAM, ...), filters and feature maps as PNGs")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("inputs", nargs="*", metavar="INPUT")
    p.add_argument(
        "--method",
        required=True,
        choices=["saliency", "smoothgrad", "gradcam", "occlusion", "integrated-gradients", "filters", "feature-maps"],
    )
    p.add_argument("--text", action="append", default=None, metavar="TEXT", help="a raw string to explain (text runs; repeatable)")
    p.add_argument("--target", type=int, default=None, help="class to explain (default: the predicted class)")
    p.add_argument("--layer", default=None, help="module name (Grad-CAM, feature maps)")
    p.add_argument("--out", type=Path, required=True)

    p = add("generate", _cmd_generate, "images from a trained generator (task gan): a PNG grid or a .npy array")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--n", type=int, default=64, help="how many images")
    p.add_argument("--seed", type=int, default=0, help="seed of the codes z (same seed, same images)")
    p.add_argument("--out", type=Path, required=True, help="grid.png or samples.npy")

    p = add("audit", _cmd_audit, "translation audit: shift consistency and feature-map equivariance error")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--shifts", type=int, default=8)
    p.add_argument("--max-shift", type=int, default=4)
    p.add_argument("--data", default=None)
    p.add_argument("--limit", type=int, default=1000, help="test images to use")
    p.add_argument("--json", action="store_true")

    p = add("play", _cmd_play, "a trained agent plays: a DQN run its environment (--gif), a game run against random, mcts:N or human")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--episodes", type=int, default=1, metavar="N", help="episodes (DQN) or games to play")
    p.add_argument("--gif", type=Path, default=None, metavar="OUT.gif", help="DQN: write the first episode as a GIF")
    p.add_argument("--epsilon", type=float, default=None, help="DQN: exploration while playing (default: the run's evaluation epsilon)")
    p.add_argument("--against", default="random", metavar="random|mcts:N|human", help="games: the opponent")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")

    p = add("runs", _cmd_runs, "list run folders: model, data, epochs, test accuracy, time, status (running/finished/interrupted)")
    p.add_argument("dir", nargs="?", type=Path, default=Path("runs"), metavar="DIR", help="folder of run folders (default: runs)")
    p.add_argument("--sort", default="started", choices=["started", "name", "model", "data", "epochs", "accuracy", "time", "status"])
    p.add_argument("--json", action="store_true")

    p = add("serve", _cmd_serve, "a web page and an HTTP API for trained runs (needs the serve extra: pip install -e '.[serve]')")
    p.add_argument("run_dirs", nargs="*", type=Path, metavar="RUN_DIR", help="run folders whose models to serve")
    p.add_argument("--runs", type=Path, default=None, metavar="DIR", help="also serve a dashboard of the run folders under DIR")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; any other needs a token)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--token", default=None, help="API token, required off 127.0.0.1 (default: $CNNKIT_SERVE_TOKEN, which, unlike this flag, ps does not show)")
    p.add_argument("--max-batch", type=int, default=32, help="largest batch of requests run together (1: no batching)")
    p.add_argument("--batch-wait-ms", type=float, default=2.0, help="how long a batch waits for more requests")
    p.add_argument("--max-upload-bytes", type=int, default=8 << 20, help="largest request body (default 8 MiB)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")

    p = add("summary", _cmd_summary, "per-layer shapes, parameters, FLOPs and receptive fields of a model or spec")
    p.add_argument("model", metavar="NAME_SPEC_OR_RUN", help="a registered model name, a model-spec YAML path, or a run folder")
    p.add_argument("--input", type=_parse_shape, default=None, metavar="C,H,W", help="input shape (default: the model's)")
    p.add_argument("--allow-floor", action="store_true", help="warn instead of failing when a stride does not fit")
    p.add_argument("--json", action="store_true")

    p = add("export", _cmd_export, "export a trained run to ONNX (checked against PyTorch with onnxruntime)")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--format", default="onnx", choices=["onnx"])
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--opset", type=int, default=None)
    p.add_argument("--no-check", action="store_true")

    p = add("models", _cmd_models, "list registered models with paper, year and parameter count")
    p.add_argument("pattern", nargs="?", default="*")
    p.add_argument("--json", action="store_true")

    p = add("layers", _cmd_layers, "list registered layers (names usable in model specs)")
    p.add_argument("pattern", nargs="?", default="*")
    p.add_argument("--json", action="store_true")

    p = add("datasets", _cmd_datasets, "list datasets and whether their files are present; `datasets download NAME`")
    p.add_argument("action", nargs="?", default=None, metavar="download", help="download NAME: fetch a dataset")
    p.add_argument("name", nargs="?", default=None)
    p.add_argument("--root", type=Path, default=None, help="where to download (default: ~/.cache/cnnkit/<name>)")
    p.add_argument("--problem", action="append", default=None, metavar="NAME", help="ucr: a problem to download (repeatable)")
    p.add_argument("--sha256", default=None, metavar="HEX", help="ucr: the SHA-256 the problem's zip must have")
    p.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        # `cnnkit` alone: the main job is `cnnkit train`; show what there is.
        parser.print_help()
        return 0
    try:
        return int(args.handler(args) or 0)
    except CnnkitError as exc:
        # Messages may quote a received file (a class name, a line of a spec): sanitised, one line.
        print(f"cnnkit: error: {safe_text(exc, 2000)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("cnnkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `cnnkit models | head`
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
