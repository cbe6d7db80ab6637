"""Which tokens drove a text model's output: integrated gradients over the token embeddings, or occlusion
of one token at a time, shown as highlighted text and as a figure.

Both read the model through two methods the text models share (:class:`~cnnkit.models.textcnn.TextCNN`,
:class:`~cnnkit.models.charcnn.CharCNN`): ``embed(ids)`` (token vectors, channels first) and
``features_from_embedding(e)``, followed by ``forward_head``.

- ``integrated-gradients`` (Sundararajan, Taly & Yan 2017, Eq. 1, the Riemann midpoint sum): the path from
  the all-padding input (zero vectors) to the input's vectors; a token's score is the sum over its vector's
  dimensions, so the scores add up to ``f(x) - f(baseline)`` (completeness, Prop. 1).
- ``occlusion`` (Zeiler & Fergus 2014, for tokens): ``f(x) - f(x with token t replaced by <pad>)``.

``f`` is the explained output's raw score: the class logit (classification), the label logit
(multi-label) or the value (regression).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._text import safe_text
from ..errors import CnnkitError

__all__ = ["TEXT_METHODS", "explain_text", "format_highlighted", "token_attributions"]

TEXT_METHODS = ("integrated-gradients", "occlusion")


def _check_text_model(model: nn.Module) -> None:
    if not all(hasattr(model, a) for a in ("embed", "features_from_embedding", "forward_head")):
        raise CnnkitError(f"{type(model).__name__} does not expose embed / features_from_embedding; token attributions need a text model (textcnn, charcnn)")


def _scores(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    out = out.reshape(out.shape[0], -1)
    return out.gather(1, target.view(-1, 1)).squeeze(1)


def token_attributions(
    model: nn.Module, ids: torch.Tensor, *, method: str = "integrated-gradients", target: torch.Tensor | int | None = None,
    steps: int = 64, batch_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token scores ``(N, L)`` and the explained output index per item ``(N,)``.

    Args:
        ids: ``(N, L)`` token ids.
        target: output index to explain; default the largest output per item.
        steps: integrated gradients' path steps.
    """
    if method not in TEXT_METHODS:
        raise CnnkitError(f"Unknown text explain method {method!r}; choose one of {', '.join(TEXT_METHODS)}")
    _check_text_model(model)
    model.eval()
    dev = next(iter(model.parameters())).device
    ids = ids.to(dev)
    with torch.no_grad():
        out = model(ids).reshape(len(ids), -1)
    if target is None:
        tgt = out.argmax(1)
    else:
        tgt = torch.as_tensor(target, device=dev).long().expand(len(ids)).clone()
        if int(tgt.max()) >= out.shape[1] or int(tgt.min()) < 0:
            raise CnnkitError(f"--target {int(tgt.max())} is not an output of the model (0..{out.shape[1] - 1})")

    def f(e: Any) -> torch.Tensor:
        return model.forward_head(model.features_from_embedding(e))  # type: ignore[operator]

    if method == "occlusion":
        scores = torch.zeros(ids.shape, dtype=torch.float64)
        with torch.no_grad():
            base = _scores(out, tgt)
            for i in range(len(ids)):
                L = ids.shape[1]
                copies = ids[i].repeat(L, 1)
                copies[torch.arange(L), torch.arange(L)] = 0  # <pad>
                vals = torch.cat([_scores(model(copies[j : j + batch_size]), tgt[i].expand(min(batch_size, L - j)))
                                  for j in range(0, L, batch_size)])
                scores[i] = (base[i] - vals).double().cpu()
        scores[ids.cpu() == 0] = 0.0
        return scores, tgt.cpu()
    with torch.no_grad():
        e = model.embed(ids)  # type: ignore[operator]
    parts = e if isinstance(e, tuple) else (e,)
    total = [torch.zeros_like(p) for p in parts]
    n = len(ids)
    per = max(1, batch_size // n)  # path points per forward pass, all items at once
    for k0 in range(0, steps, per):
        alphas = (torch.arange(k0, min(k0 + per, steps), device=dev, dtype=parts[0].dtype) + 0.5) / steps  # midpoint rule
        a = alphas.view(-1, 1, 1, 1)
        scaled = tuple((a * p.unsqueeze(0)).flatten(0, 1).detach().requires_grad_(True) for p in parts)
        s = _scores(f(scaled if isinstance(e, tuple) else scaled[0]), tgt.repeat(len(alphas))).sum()
        grads = torch.autograd.grad(s, scaled)
        for t, g in zip(total, grads):
            t += g.view(len(alphas), *t.shape).sum(0) / steps
    # Embeddings are (N, dims, L): a token's attribution sums over its vector's dimensions.
    scores = sum((p * t).sum(1) for p, t in zip(parts, total))
    return scores.detach().double().cpu(), tgt.cpu()


def format_highlighted(tokens: list[str], scores: list[float], *, top: int = 5, joiner: str = " ") -> str:
    """The tokens in reading order, the ``top`` ones by |score| marked ``[[token +0.42]]``."""
    order = sorted(range(len(tokens)), key=lambda i: -abs(scores[i]))[:top]
    marked = set(order)
    return joiner.join(f"[[{tokens[i]} {scores[i]:+.3f}]]" if i in marked else tokens[i] for i in range(len(tokens)))


def _plot_tokens(tokens: list[str], scores: list[float], path: Path, title: str) -> Path:
    from ..plots import new_figure, save_figure

    m = max((abs(s) for s in scores), default=1.0) or 1.0
    per_line = 12
    lines = max(1, (len(tokens) + per_line - 1) // per_line)
    fig = new_figure(figsize=(10, 0.5 + 0.45 * lines))
    ax = fig.subplots()
    ax.axis("off")
    import matplotlib

    cmap = matplotlib.colormaps["bwr"]
    for i, (tok, s) in enumerate(zip(tokens, scores)):
        r, c = divmod(i, per_line)
        ax.text(c / per_line, 1 - (r + 0.5) / lines, tok, fontsize=9, ha="left", va="center", transform=ax.transAxes,
                bbox={"facecolor": cmap(0.5 + 0.5 * s / m), "edgecolor": "none", "pad": 1.5})
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def explain_text(
    loaded: Any, items: list[tuple[str, str]], *, method: str, target: int | None = None, out: str | Path,
    report: Callable[[str], None] | None = None, class_names: list[str] | None = None,
) -> list[Path]:
    """Explain a text run on ``(name, text)`` items: ``OUT/<i>-tokens.png`` per item and
    ``OUT/token_attributions.json``; ``report`` gets one highlighted line per item."""
    from ..data.tokenize import encode, tokenize
    from ..evaluate.text import run_vocab

    vocab = run_vocab(loaded)
    ids = encode([t for _, t in items], vocab)
    scores, tgt = token_attributions(loaded.model, ids, method=method, target=target)
    names = class_names or loaded.class_names
    outdir = Path(out)
    paths: list[Path] = []
    records = []
    for i, (name, text) in enumerate(items):
        toks = tokenize(text, level=vocab.level, lowercase=vocab.lowercase)
        toks = (toks[::-1] if vocab.reverse else toks)[: vocab.max_length]
        s = scores[i, : len(toks)].tolist()
        if vocab.reverse:  # back to reading order
            toks, s = toks[::-1], s[::-1]
        shown = [safe_text(t, 40) if t != "\n" else "\\n" for t in toks]
        label = names[int(tgt[i])] if names and int(tgt[i]) < len(names) else str(int(tgt[i]))
        joiner = "" if vocab.level == "char" else " "
        line = f"{safe_text(name, 200)} -> {safe_text(label, 80)}: {format_highlighted(shown, s, joiner=joiner)}"
        if report is not None:
            report(line)
        records.append({"input": name, "target": int(tgt[i]), "target_name": label, "tokens": toks, "scores": s})
        paths.append(_plot_tokens(shown, s, outdir / f"{i:03d}-tokens.png", f"{name}: {method}, output {label}"))
    path = outdir / "token_attributions.json"
    path.write_text(json.dumps({"method": method, "items": records}, indent=2))
    paths.append(path)
    return paths
