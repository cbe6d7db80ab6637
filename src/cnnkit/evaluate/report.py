"""The evaluation report of a classifier: accuracy, top-k, per-class precision/recall/F1, confusion
matrix, NLL, ECE with a reliability diagram, optional temperature scaling and split conformal sets, and a
grid of the most confidently wrong images.

:func:`evaluate_model` works on any ``nn.Module`` and any iterable of ``(x, y)`` batches;
:func:`evaluate_run` rebuilds a run folder's model and data splits and calls it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._text import safe_markup, safe_text
from ..errors import CnnkitError
from ..plots import confusion_matrix_text, plot_confusion_matrix, plot_image_grid, plot_reliability
from ..runs import atomic_write_text, load_model, load_run_data, split_batches, split_loader
from ..runtime import resolve_device
from ..tasks import create_task
from . import conformal as _cp
from .backends import EXACT_ROUTES, LazyBackend, check_backend, run_backend, select_backend
from .calibration import choose_temperature, expected_calibration_error, reliability_bins
from .generate import refuse_unsupervised_run
from .metrics import accuracy, confusion_matrix, negative_log_likelihood, per_class_metrics, softmax, top_k_accuracy
from .tta import TTA_MODES, tta_log_probs

__all__ = ["collect_outputs", "evaluate_model", "evaluate_run", "format_report"]

_N_ERRORS = 16  # images in the most-confident-errors grid
HOLDOUT_SEED = 0  # the random half held out for calibration when there is no calibration split


def _hold_out(
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]], seed: int
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[tuple[torch.Tensor, torch.Tensor]], np.ndarray]:
    """Split labelled batches into a seeded random half for calibration (``n // 2`` items) and the rest.

    Returns:
        ``(calibration batches, evaluation batches, the evaluation items' indices in the original order)``.
    """
    xs, ys = [], []
    for x, y in batches:
        xs.append(torch.as_tensor(x))
        ys.append(torch.as_tensor(y).long())
    n = sum(len(y) for y in ys)
    if n < 2:
        raise CnnkitError(f"holding out calibration items needs at least 2 labelled items; the split has {n}")
    x_all, y_all = torch.cat(xs), torch.cat(ys)
    perm = np.random.default_rng(seed).permutation(n)
    cal_idx, eval_idx = np.sort(perm[: n // 2]), np.sort(perm[n // 2 :])
    bs = max(len(ys[0]), 1)

    def chunks(idx: np.ndarray) -> list[tuple[torch.Tensor, torch.Tensor]]:
        t = torch.from_numpy(idx)
        return [(x_all[t[i : i + bs]], y_all[t[i : i + bs]]) for i in range(0, len(t), bs)]

    return chunks(cal_idx), chunks(eval_idx), eval_idx


def _device_of(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def collect_outputs(
    model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *, tta: str = "none", keep_errors: int = _N_ERRORS,
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Run ``model`` (in eval mode) over ``batches``; return log-probabilities, labels and the
    ``keep_errors`` most confidently misclassified inputs. ``forward`` (an inference backend,
    :mod:`cnnkit.evaluate.backends`) runs the batches instead of ``model`` itself when given.

    Returns:
        ``{"logits": (N, K) float64 log-probabilities, "labels": (N,) int64, "errors": [(conf, x, y, pred)]}``
    """
    if tta not in TTA_MODES:
        raise CnnkitError(f"Unknown test-time augmentation {tta!r}; choose one of {', '.join(TTA_MODES)}")
    was_training = model.training
    model.eval()
    device = _device_of(model)
    logits, labels = [], []
    errors: list[tuple[float, torch.Tensor, int, int]] = []
    try:
        for x, y in batches:
            x = x.to(device, non_blocking=True)
            lp = tta_log_probs(forward or model, x, tta).double().cpu()
            y = torch.as_tensor(y).long().cpu()
            if lp.ndim != 2:
                raise CnnkitError(f"Expected the model to output (batch, classes) logits. Received: {tuple(lp.shape)}")
            logits.append(lp)
            labels.append(y)
            conf, pred = lp.exp().max(dim=1)
            wrong = (pred != y).nonzero().flatten()
            if len(wrong) and keep_errors:
                top = wrong[conf[wrong].argsort(descending=True)[:keep_errors]]
                errors += [(float(conf[i]), x[i].detach().cpu(), int(y[i]), int(pred[i])) for i in top]
                errors = sorted(errors, key=lambda e: -e[0])[:keep_errors]
    finally:
        model.train(was_training)
    if not logits:
        raise CnnkitError("nothing to evaluate: the data split is empty")
    return {"logits": torch.cat(logits).numpy(), "labels": torch.cat(labels).numpy(), "errors": errors}


def evaluate_model(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    class_names: list[str] | None = None,
    calibration_loader: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
    split: str = "test",
    tta: str = "none",
    temperature_scaling: bool = False,
    conformal: float | None = None,
    score: str = "lac",
    k_reg: int = 1,
    lam: float = 0.01,
    write_sets: bool = False,
    out: str | Path | None = None,
    top_k: int = 5,
    ece_bins: int = 15,
    calibration_name: str = "calibration data",
    holdout_seed: int = HOLDOUT_SEED,
    context: dict[str, Any] | None = None,
    backend: str | LazyBackend = "torch",
) -> dict[str, Any]:
    """Evaluate a classifier on ``loader`` (batches of ``(x, y)``, ``x`` already model input).

    Args:
        calibration_loader: held-out labelled data (the validation split) for ``temperature_scaling``
            and ``conformal``. When None and either is asked for, a seeded random half of ``loader``
            (``n // 2`` items, ``holdout_seed``) is held out for calibration and every metric of the
            report, coverage included, is measured on the other half only: no item is both fitted on
            and scored. ``report["calibration"]["note"]`` says which was done.
        calibration_name: what ``calibration_loader`` is, for that note (``"validation split"``).
        tta: ``"none"``, ``"flip"`` or ``"shift"`` (see :mod:`cnnkit.evaluate.tta`).
        temperature_scaling: fit ``T`` on the calibration data (Guo et al. 2017) and report NLL / ECE /
            reliability after scaling as well (accuracy is unchanged by ``T``). ``T = 1`` is kept, with
            the reason in ``report["temperature_scaled"]["reason"]``, when the calibration data is too
            small or too clean to fit it or the fit does not lower the held-out NLL
            (:func:`~cnnkit.evaluate.calibration.choose_temperature`).
        conformal: ``alpha`` for split conformal prediction sets (see :mod:`cnnkit.evaluate.conformal`).
            The sets use the unscaled probabilities: the guarantee does not need calibration, and fitting
            ``T`` on the same data would couple the two.
        score, k_reg, lam: the conformity score and RAPS' regularization.
        write_sets: write ``conformal_sets.jsonl`` (one line per test item) to ``out``.
        out: folder for ``report.json``, ``confusion_matrix.png``/``.txt``, ``reliability.png``,
            ``most_confident_errors.png``; nothing is written when None.
        backend: the inference route (:mod:`cnnkit.evaluate.backends`), or a backend built for a run
            (:func:`~cnnkit.evaluate.backends.run_backend`). ``"auto"`` chooses among the fp32 routes
            only, so the reported metrics do not depend on the route; ``report["backend"]`` records it.

    Returns:
        The JSON-able report (see :func:`format_report` for the keys).
    """
    if top_k < 1:
        raise CnnkitError(f"Expected top_k >= 1. Received: top_k={top_k}")
    if conformal is not None:
        _cp._check_score(score)
        # Validate alpha before any work (the calibration size check comes once n is known).
        _cp.check_alpha(conformal, 10**9)
    if write_sets and conformal is None:
        raise CnnkitError("write_sets needs conformal=ALPHA (--conformal ALPHA)")
    needs_cal = temperature_scaling or conformal is not None
    eval_index = None
    if needs_cal and calibration_loader is None:
        calibration_loader, loader, eval_index = _hold_out(loader, holdout_seed)
    if isinstance(backend, str):
        name = check_backend(backend)
        backend = LazyBackend(lambda probe: select_backend(model, probe, backend=name, routes=EXACT_ROUTES))
    res = collect_outputs(model, loader, tta=tta, forward=backend)
    z, y = res["logits"], res["labels"]
    num_classes = z.shape[1]
    names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise CnnkitError(f"the model outputs {num_classes} classes but {len(names)} class names were given")
    if y.min() < 0 or y.max() >= num_classes:
        raise CnnkitError(f"labels outside 0..{num_classes - 1} for a model with {num_classes} outputs")
    probs = softmax(z)
    pred = probs.argmax(axis=1)
    cm = confusion_matrix(y, pred, num_classes)
    bins = reliability_bins(probs, y, ece_bins)
    report: dict[str, Any] = {
        "split": split,
        "n": int(len(y)),
        "tta": tta,
        "accuracy": accuracy(z, y),
        "top_k": int(min(top_k, num_classes)),
        "top_k_accuracy": top_k_accuracy(z, y, top_k),
        "nll": negative_log_likelihood(z, y),
        "ece": expected_calibration_error(probs, y, ece_bins),
        "ece_bins": ece_bins,
        "class_names": names,
        "per_class": per_class_metrics(cm, names),
        "confusion_matrix": cm.tolist(),
        "calibration": None,
        "temperature": None,
        "temperature_scaled": None,
        "conformal": None,
        "backend": backend.chosen.describe() if backend.chosen is not None else None,
        "files": {},
    }
    cal = collect_outputs(model, calibration_loader, tta=tta, keep_errors=0, forward=backend) if needs_cal else None  # type: ignore[arg-type]
    if cal is not None:
        n_cal = int(len(cal["labels"]))
        if eval_index is not None:
            measured = "coverage and every other metric" if conformal is not None else "every metric"
            note = (f"calibrated on {n_cal} held-out {split} items (a seeded random half); "
                    f"{measured} measured on the other {len(y)}")
        else:
            note = f"calibrated on the {n_cal} items of the {calibration_name}"
        report["calibration"] = {
            "source": f"held-out half of the {split} split" if eval_index is not None else calibration_name,
            "n": n_cal,
            "seed": holdout_seed if eval_index is not None else None,
            "note": note,
        }
    scaled_bins = None
    if temperature_scaling and cal is not None:
        choice = choose_temperature(cal["logits"], cal["labels"])
        t = choice.temperature
        p_t = softmax(z / t)
        if choice.reason is None:
            scaled_bins = reliability_bins(p_t, y, ece_bins)
        report["temperature"] = t
        report["temperature_scaled"] = {
            "nll": negative_log_likelihood(z / t, y),
            "ece": expected_calibration_error(p_t, y, ece_bins),
            "n_calibration": choice.n_calibration,
            "fitted": choice.fitted,
            "reason": choice.reason,
        }
    sets = None
    if conformal is not None and cal is not None:
        p_cal = softmax(cal["logits"])
        cal_scores = _cp.conformity_scores(p_cal, cal["labels"], score, k_reg=k_reg, lam=lam)
        qhat = _cp.conformal_quantile(cal_scores, conformal)
        sets = _cp.prediction_sets(probs, qhat, score, k_reg=k_reg, lam=lam)
        summary = _cp.summarize_sets(sets, y, names)
        report["conformal"] = {
            "alpha": float(conformal),
            "score": score,
            "qhat": qhat,
            "n_calibration": int(len(cal_scores)),
            **({"k_reg": k_reg, "lam": lam} if score == "raps" else {}),
            **summary,
        }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        files = report["files"]
        atomic_write_text(out / "confusion_matrix.txt", confusion_matrix_text(cm, names))
        files["confusion_matrix_txt"] = str(out / "confusion_matrix.txt")
        files["confusion_matrix_png"] = str(plot_confusion_matrix(cm, names, out / "confusion_matrix.png",
                                                                   title=f"Confusion matrix ({split})"))
        files["reliability_png"] = str(plot_reliability(bins, out / "reliability.png", ece=report["ece"]))
        if scaled_bins is not None:
            files["reliability_scaled_png"] = str(plot_reliability(
                scaled_bins, out / "reliability_temperature_scaled.png",
                title=f"After temperature scaling (T={report['temperature']:.2f})",
                ece=report["temperature_scaled"]["ece"]))
        errs = res["errors"]
        files["most_confident_errors_png"] = str(plot_image_grid(
            [e[1] for e in errs],
            [f"true {names[e[2]]}\npred {names[e[3]]} ({e[0]:.2f})" for e in errs],
            out / "most_confident_errors.png",
            suptitle="Most confident errors",
        ))
        if write_sets and sets is not None:
            lines = []
            for i in range(len(y)):
                members = np.flatnonzero(sets[i])
                lines.append(json.dumps({
                    # the item's index in the split, also when half of it was held out for calibration
                    "index": int(eval_index[i]) if eval_index is not None else i,
                    "label": int(y[i]),
                    "set": [int(c) for c in members],
                    "names": [names[c] for c in members],
                    "covered": bool(sets[i, y[i]]),
                }))
            atomic_write_text(out / "conformal_sets.jsonl", "\n".join(lines) + "\n")
            files["conformal_sets_jsonl"] = str(out / "conformal_sets.jsonl")
        report.update(context or {})
        atomic_write_text(out / "report.json", json.dumps(report, indent=2))
        files["report_json"] = str(out / "report.json")
    else:
        report.update(context or {})
    return report


def evaluate_run(
    run_dir: str | Path,
    *,
    data: str | None = None,
    split: str = "test",
    tta: str = "none",
    temperature_scaling: bool = False,
    conformal: float | None = None,
    score: str = "lac",
    write_sets: bool = False,
    out: str | Path | None = None,
    top_k: int = 5,
    k_reg: int = 1,
    lam: float = 0.01,
    device: str | None = None,
    backend: str = "auto",
) -> dict[str, Any]:
    """Evaluate a run folder's model on one split of its data (``config.yaml``), writing the pictures to
    ``out`` (default ``RUN_DIR/eval-<split>/``, or ``RUN_DIR/eval-<split>-<data>/`` with ``data``).

    The calibration data for ``temperature_scaling`` and ``conformal`` is the run's validation split (held
    out from training by ``data.val_fraction``). A run trained without one (the default ``cnnkit train``)
    holds out a seeded random half of the evaluated split instead, and reports every metric on the other
    half (see :func:`evaluate_model`).
    With ``data=NAME`` the model is evaluated on another data set with the same number of classes,
    converted with the model's recorded preprocessing.
    ``backend`` is the inference route (:mod:`cnnkit.evaluate.backends`; ``auto``: the fastest fp32 route
    on the first test batch, ``RUN/model.onnx`` included when ``cnnkit export`` wrote it).
    """

    check_backend(backend)
    if tta not in TTA_MODES:
        raise CnnkitError(f"Unknown test-time augmentation {tta!r}; choose one of {', '.join(TTA_MODES)}")
    if conformal is not None:
        _cp._check_score(score)
        _cp.check_alpha(conformal, 10**9)
    loaded = load_model(run_dir, device=resolve_device(device))
    refuse_unsupervised_run(loaded.info, run_dir, "evaluate")
    if (loaded.info.get("task") or {}).get("name") == "segmentation":
        from .segmentation import evaluate_segmentation_run

        if tta != "none" or temperature_scaling or conformal is not None:
            raise CnnkitError("--tta, --temperature-scaling and --conformal are for classification runs; this run segments")
        return evaluate_segmentation_run(loaded, run_dir, data=data, split=split, out=out)
    from .tasks import classifier_report_kind, evaluate_task_run, run_kind, run_task, uses_task_path

    if uses_task_path(loaded.info) and not classifier_report_kind(loaded.info):
        # multi-label, regression, text, ...: the task's own metrics
        task = run_task(loaded.info) or create_task("classification")
        return evaluate_task_run(run_dir, loaded, task, split=split, data=data, out=out)
    run = load_run_data(run_dir, loaded, data=data)
    loader = split_loader(run, split)
    cal_loader = None
    if temperature_scaling or conformal is not None:
        if split == "val":
            raise CnnkitError("the validation split is the calibration data; evaluate --split test for calibration")
        if getattr(run.bundle, "val", None) is not None:
            cal_loader = split_loader(run, "val")
    batch = int(run.cfg.data.eval_batch_size)
    # Image loaders hold raw pixels, converted with the recorded preprocessing; clip loaders yield model input.
    pre = loaded.preprocessing if run_kind(loaded.info) == "image" else {}
    # Another data set gets its own folder, so it does not overwrite the run's own evaluation.
    out = Path(out) if out is not None else Path(run_dir) / (f"eval-{split}" + (f"-{data}" if data else ""))
    report = evaluate_model(
        loaded.model,
        split_batches(loader, pre, batch_size=batch),
        class_names=run.class_names or None,
        calibration_loader=list(split_batches(cal_loader, pre, batch_size=batch)) if cal_loader is not None else None,
        split=split,
        tta=tta,
        temperature_scaling=temperature_scaling,
        conformal=conformal,
        score=score,
        k_reg=k_reg,
        lam=lam,
        write_sets=write_sets,
        out=out,
        top_k=top_k,
        ece_bins=int(run.cfg.eval.ece_bins),
        calibration_name="validation split",
        context={"run_dir": str(run_dir), "data": run.cfg.data.name},  # written into report.json once
        backend=run_backend(loaded, backend=backend, exact=True),
    )
    return report


def format_report(report: dict[str, Any]) -> str:
    """The report as text for a terminal: headline numbers, then per-class metrics and conformal sets."""
    if report.get("report") == "task":
        from .tasks import format_task_report

        return format_task_report(report)
    if report.get("task") == "segmentation":
        from .segmentation import format_segmentation_report

        return format_segmentation_report(report)
    # rich loads only when a table is printed (keeps `import cnnkit.train` fast).
    from rich.console import Console
    from rich.table import Table

    # Class names and paths come from a run folder that may be someone else's: every string from the
    # report goes through safe_markup (no escape sequences, and "[red]" is text, not rich markup).
    buf = StringIO()
    con = Console(file=buf, width=120, force_terminal=False, color_system=None)
    head = Table(title=f"Evaluation ({safe_markup(report.get('split', 'test'), 40)}, n={report['n']}, "
                       f"tta={safe_markup(report.get('tta', 'none'), 40)})", min_width=50)
    head.add_column("metric")
    head.add_column("value", justify="right")
    head.add_row("accuracy", f"{report['accuracy']:.4f}")
    head.add_row(f"top-{report['top_k']} accuracy", f"{report['top_k_accuracy']:.4f}")
    head.add_row("NLL", f"{report['nll']:.4f}")
    head.add_row(f"ECE ({report.get('ece_bins', 15)} bins)", f"{report['ece']:.4f}")
    if report.get("temperature") is not None:
        ts = report["temperature_scaled"]
        head.add_row("temperature T", f"{report['temperature']:.4f}")
        head.add_row("NLL after scaling", f"{ts['nll']:.4f}")
        head.add_row("ECE after scaling", f"{ts['ece']:.4f}")
    con.print(head)
    if report.get("calibration"):
        con.print(report["calibration"]["note"], markup=False, highlight=False, soft_wrap=True)
    if (report.get("temperature_scaled") or {}).get("reason"):
        reason = report["temperature_scaled"]["reason"]
        con.print(f"temperature scaling kept T=1: {reason}", markup=False, highlight=False, soft_wrap=True)
    pc = Table(title="Per class")
    for col in ("class", "precision", "recall", "F1", "support"):
        pc.add_column(col, justify="left" if col == "class" else "right")
    for name, m in report["per_class"].items():
        pc.add_row(safe_markup(name, 80), f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"]))
    con.print(pc)
    cp = report.get("conformal")
    if cp:
        t = Table(title=f"Conformal prediction ({safe_markup(cp['score'], 20)}, alpha={cp['alpha']}, n_cal={cp['n_calibration']})",
                  min_width=50)
        t.add_column("metric")
        t.add_column("value", justify="right")
        t.add_row("qhat", f"{cp['qhat']:.4f}")
        t.add_row("coverage (target >= {:.3f})".format(1 - cp["alpha"]), f"{cp['coverage']:.4f}")
        t.add_row("mean set size", f"{cp['mean_size']:.3f}")
        t.add_row("median set size", f"{cp['median_size']:.1f}")
        con.print(t)
        by = Table(title="Set size by true class")
        by.add_column("class")
        by.add_column("mean size", justify="right")
        by.add_column("coverage", justify="right")
        for name, s in cp["size_by_class"].items():
            c = cp.get("coverage_by_class", {}).get(name)
            by.add_row(safe_markup(name, 80), "-" if s is None else f"{s:.2f}", "-" if c is None else f"{c:.3f}")
        con.print(by)
    files = report.get("files") or {}
    if files:
        con.print("wrote " + ", ".join(safe_text(f, None) for f in sorted(files.values())), markup=False, highlight=False)
    return buf.getvalue().rstrip("\n")
