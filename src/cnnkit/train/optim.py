"""Optimizers by registry name, with parameter groups.

By default biases and normalization parameters get no weight decay (decaying a BatchNorm scale or a bias
only fights the normalization; timm and the airbench recipes do the same), and normalization-layer biases
may get a larger learning rate (``optim.bias_lr_scale``; airbench uses 64x on its BatchNorm biases).

Each parameter group carries ``name`` and ``base_lr``; the schedule sets ``lr = base_lr * factor(step)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..config.schema import OptimConfig
from ..errors import ConfigError
from ..registry import Registry
from .muon import Muon

__all__ = ["OPTIMIZERS", "param_groups", "build_optimizer", "is_norm_module"]

OPTIMIZERS: Registry[Callable[[list[dict[str, Any]], OptimConfig], torch.optim.Optimizer]] = Registry("optimizer")

_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,
)


def is_norm_module(module: nn.Module) -> bool:
    """BatchNorm/InstanceNorm/GroupNorm/LayerNorm, or any custom layer whose class name ends in 'Norm...'."""
    if isinstance(module, _NORM_TYPES):
        return True
    name = type(module).__name__
    return "Norm" in name and not isinstance(module, (nn.Conv2d, nn.Linear))


def param_groups(model: nn.Module, cfg: OptimConfig) -> list[dict[str, Any]]:
    """Split trainable parameters into ``decay`` / ``no_decay`` / ``norm_bias`` groups.

    - ``decay``: weights with ``ndim >= 2`` outside norm layers (all parameters when
      ``decay_bias_and_norm``), weight decay ``cfg.weight_decay``.
    - ``no_decay``: biases and norm-layer scales, no decay.
    - ``norm_bias``: norm-layer biases, no decay, lr scaled by ``cfg.bias_lr_scale``.

    Frozen parameters (``requires_grad=False``) are left out. Empty groups are dropped.
    """
    norm_param_ids: set[int] = set()
    norm_bias_ids: set[int] = set()
    for module in model.modules():
        if is_norm_module(module):
            for pname, p in module.named_parameters(recurse=False):
                norm_param_ids.add(id(p))
                if pname == "bias":
                    norm_bias_ids.add(id(p))
    groups: dict[str, dict[str, Any]] = {
        "decay": {"params": [], "weight_decay": cfg.weight_decay, "base_lr": cfg.lr},
        "no_decay": {"params": [], "weight_decay": 0.0, "base_lr": cfg.lr},
        "norm_bias": {"params": [], "weight_decay": 0.0, "base_lr": cfg.lr * cfg.bias_lr_scale},
    }
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        if id(p) in norm_bias_ids:
            key = "norm_bias"
        elif cfg.decay_bias_and_norm or (p.ndim >= 2 and id(p) not in norm_param_ids and not name.endswith("bias")):
            key = "decay"
        else:
            key = "no_decay"
        groups[key]["params"].append(p)
    if cfg.decay_bias_and_norm:
        groups["norm_bias"]["weight_decay"] = cfg.weight_decay
    out = []
    for key, group in groups.items():
        if group["params"]:
            group["name"] = key
            group["lr"] = group["base_lr"]
            out.append(group)
    return out


@OPTIMIZERS.register("sgd")
def _sgd(groups: list[dict[str, Any]], cfg: OptimConfig) -> torch.optim.Optimizer:
    # nesterov requires momentum > 0 in torch; a config with nesterov and momentum 0 means plain SGD.
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)


@OPTIMIZERS.register("adam")
def _adam(groups: list[dict[str, Any]], cfg: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]), eps=cfg.eps)


@OPTIMIZERS.register("adamw")
def _adamw(groups: list[dict[str, Any]], cfg: OptimConfig) -> torch.optim.Optimizer:
    # Decoupled weight decay (Loshchilov & Hutter 2019): w <- w - lr * wd * w, separate from the Adam step.
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]), eps=cfg.eps)


@OPTIMIZERS.register("rmsprop")
def _rmsprop(groups: list[dict[str, Any]], cfg: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(groups, lr=cfg.lr, alpha=cfg.alpha, eps=cfg.eps, momentum=cfg.momentum)


@OPTIMIZERS.register("adadelta")
def _adadelta(groups: list[dict[str, Any]], cfg: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.Adadelta(groups, lr=cfg.lr, rho=cfg.rho, eps=cfg.eps)


@OPTIMIZERS.register("muon")
def _muon(groups: list[dict[str, Any]], cfg: OptimConfig) -> torch.optim.Optimizer:
    # Conv filters (ndim >= 3) take Muon's orthogonalized step at optim.muon_lr; everything else, the linear
    # head included, takes SGD with optim.lr / momentum / weight decay (airbench94_muon's split).
    # The SGD groups come first: the epoch line and metrics.jsonl report the first group's lr (optim.lr's).
    rest_groups: list[dict[str, Any]] = []
    filter_groups: list[dict[str, Any]] = []
    for group in groups:
        filters = [p for p in group["params"] if p.ndim >= 3]
        rest = [p for p in group["params"] if p.ndim < 3]
        if rest:
            rest_groups.append({**group, "params": rest, "muon": False})
        if filters:
            filter_groups.append({
                "params": filters, "name": "filters", "muon": True, "lr": cfg.muon_lr, "base_lr": cfg.muon_lr,
                "momentum": cfg.muon_momentum, "weight_decay": 0.0,
            })
    return Muon(rest_groups + filter_groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """The optimizer named by ``cfg.name`` over :func:`param_groups` of ``model``."""
    groups = param_groups(model, cfg)
    if not groups:

        raise ConfigError("no trainable parameters: every parameter is frozen (check train.freeze)")
    return OPTIMIZERS.get(cfg.name)(groups, cfg)
