"""``task: gan``: adversarial training of a generator against a discriminator (DCGAN), with FID.

Per batch of real images ``x`` (in [0, 1], mapped to the generator's [-1, 1]), :meth:`GAN.manual_train_step`
runs the alternating updates of Goodfellow et al. (2014), Algorithm 1, with the non-saturating generator
loss of their Sec. 3, as DCGAN trained them (Radford et al. 2016, Sec. 4: Adam, lr 2e-4, beta1 0.5 are the
recipe's ``optim`` settings):

1. discriminator: ``BCE(D(x), 1) + BCE(D(G(z)), 0)``, one step of the ``discriminator`` optimizer;
2. generator: ``BCE(D(G(z)), 1)`` on the same ``z``, one step of the ``generator`` optimizer;
3. the FID feature network (``fid_net``): cross-entropy on the real images' labels, one step of its own
   optimizer. Inception-v3 weights cannot be downloaded here, so FID is computed on the features of this
   classifier, trained by cnnkit on the same (labelled) training images; ``summary.json`` names it.

An EMA of the generator is ``train.ema`` (it averages the whole module after every optimizer step, three
per batch; the saved and evaluated weights are then the average). Each epoch writes a grid of samples from
fixed codes to ``plots/samples-epoch-NNN.png``. Evaluation reports the discriminator and generator losses,
the feature net's accuracy and, on the split's real images: ``fid`` (generated vs real), ``fid_real``
(real training images vs the split: the floor), ``fid_untrained`` (a freshly initialized generator of the
same architecture: the ceiling), and the checkerboard energy of generated, untrained and real images.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..errors import CnnkitError, ConfigError, DataError
from .base import EvalStep, Forward, Optimizers, StepOutput, Task, register_task
from .gan_metrics import checkerboard_energy, fid_from_features

__all__ = ["GAN"]

FID_NETWORK = "fid_net"
"""The feature network's name in ``summary.json`` (the model's ``fid_net`` submodule)."""
FID_FEATURES = (
    "fid_net: cnnkit's 3-stage CNN classifier (global-average-pooled features), trained in this run on the "
    "labelled training images; Inception-v3 ImageNet weights cannot be downloaded here, so values are not "
    "comparable with published FIDs"
)


def _unwrap(forward: Any) -> nn.Module:
    module = getattr(forward, "_orig_mod", forward)  # torch.compile
    module = getattr(module, "module", module) if isinstance(module, DistributedDataParallel) else module
    if not all(hasattr(module, k) for k in ("generator", "discriminator", "fid_net", "sample_z")):
        raise ConfigError("task gan needs a GAN module with a generator, a discriminator and an FID net: model: {name: dcgan}")
    return module


def _bce(logits: Tensor, target: float) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits, target, dtype=torch.float32))


@register_task
class GAN(Task):
    """Alternating GAN training (manual optimization, optimizers ``generator``, ``discriminator``, ``fid_net``).

    Args:
        samples: images in each epoch's sample grid (fixed codes from ``sample_seed``).
        sample_seed: seed of the grid's codes and of the evaluation codes.
        fid_items: at most this many real and as many generated images per FID.
        period: the up-sampling stride whose checkerboard energy is measured (2 for DCGAN).

    Example:
        >>> from cnnkit.models import create_model
        >>> sorted(GAN().optimizer_groups(create_model("dcgan", base_width=4)))
        ['discriminator', 'fid_net', 'generator']
    """

    name: ClassVar[str] = "gan"
    target: ClassVar[str] = "class indices, int64 of shape (N,) (read only by the FID feature network)"
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "d_loss", "g_loss", "fid_net_accuracy", "fid")
    monitor: ClassVar[tuple[str, str]] = ("fid", "min")
    manual_optimization: ClassVar[bool] = True

    def __init__(self, *, samples: int = 64, sample_seed: int = 0, fid_items: int = 10_000, period: int = 2) -> None:
        if samples < 1 or fid_items < 2 or period < 2:
            raise ValueError(
                f"Expected samples >= 1, fid_items >= 2 and period >= 2. Received: samples={samples}, fid_items={fid_items}, period={period}"
            )
        self.samples, self.sample_seed, self.fid_items, self.period = int(samples), int(sample_seed), int(fid_items), int(period)
        self._module: nn.Module | None = None  # the trained module (its architecture builds the untrained one)
        self._eval_module: nn.Module | None = None  # the evaluated weights (EMA copy or the module)
        self._checked = False
        # Real training images for the real-vs-real floor: the first fid_items this process trains on (after
        # a resume, those it sees from there: the floor measures the data, not the run).
        self._train_images: list[Tensor] = []
        self._train_count = 0

    # ------------------------------------------------------------------ training

    def optimizer_groups(self, model: nn.Module) -> dict[str, nn.Module]:
        gan = _unwrap(model)
        return {"discriminator": gan.discriminator, "generator": gan.generator, "fid_net": gan.fid_net}  # type: ignore[dict-item]

    def _check(self, gan: nn.Module, x: Tensor) -> None:
        if self._checked:
            return
        side = gan.generator.image_size  # type: ignore[union-attr]
        if tuple(x.shape[-2:]) != (side, side) or x.shape[1] != gan.input_shape[0]:  # type: ignore[index]
            raise DataError(
                f"task gan: the data are {tuple(x.shape[1:])} but the generator makes {tuple(gan.input_shape)}; "  # type: ignore[arg-type]
                "set model.image_size (and in_channels) to the data's, or data.input_size to the generator's"
            )
        lo, hi = float(x.min()), float(x.max())  # once per process: one host sync
        if lo < -1e-4 or hi > 1 + 1e-4:
            raise DataError(
                f"task gan reads images in [0, 1] (the generator's tanh range, rescaled); received values in "
                f"[{lo:.3f}, {hi:.3f}]: set data.normalize: false"
            )
        self._checked = True

    def manual_train_step(self, forward: Forward, x: Tensor, y: Tensor, optimizers: Optimizers) -> StepOutput:
        gan = _unwrap(forward)
        self._module = gan
        self._check(gan, x)
        if self._train_count < self.fid_items:
            keep = x[: self.fid_items - self._train_count]
            self._train_images.append((keep.detach() * 255).round().to(torch.uint8).cpu())
            self._train_count += keep.shape[0]
        real = x * 2 - 1
        # Each optimizer's module as the step must call it: under torchrun each is its own DDP, so a backward
        # through it averages its gradients over the processes (tested with 2 gloo ranks).
        gen, disc, fid_net = (optimizers.module(k) for k in ("generator", "discriminator", "fid_net"))
        z = gan.sample_z(x.shape[0], device=x.device)  # type: ignore[operator]
        fake = gen(z)
        # The generator's step leaves gradients on the discriminator (its loss runs through D): clear them.
        disc.zero_grad(set_to_none=True)
        d_loss = _bce(disc(real), 1.0) + _bce(disc(fake.detach()), 0.0)
        optimizers.step("discriminator", d_loss)
        # Those discarded discriminator gradients need no averaging across processes: no_sync skips it.
        with disc.no_sync() if isinstance(disc, DistributedDataParallel) else contextlib.nullcontext():
            g_loss = _bce(disc(fake), 1.0)
            optimizers.step("generator", g_loss)
        logits = fid_net(x)
        optimizers.step("fid_net", F.cross_entropy(logits.float(), y))
        correct = (logits.detach().argmax(1) == y).sum().float()
        stats = torch.stack([d_loss.detach().float(), g_loss.detach().float(), correct])
        return StepOutput(d_loss.detach() + g_loss.detach(), stats, y)

    def train_step(self, forward: Forward, x: Tensor, y: Tensor) -> StepOutput:
        raise CnnkitError("task gan steps its own optimizers (manual_train_step)")

    # ------------------------------------------------------------------ metrics

    def metric_state(self, device: torch.device) -> Tensor:
        return torch.zeros(5, dtype=torch.float64, device=device)  # loss, d, g (sums x n), correct, count

    def update_metrics(self, state: Tensor, step: StepOutput) -> None:
        n = step.target.shape[0]
        d, g, correct = step.outputs.double()
        state[0] += step.loss.detach().double() * n
        state[1] += d * n
        state[2] += g * n
        state[3] += correct
        state[4] += n

    def compute_metrics(self, state: Tensor) -> dict[str, float]:
        loss, d, g, correct, count = state.tolist()
        nan = float("nan")
        if count == 0:
            return {"loss": nan, "d_loss": nan, "g_loss": nan, "fid_net_accuracy": nan, "fid": nan, "count": 0}
        return {"loss": loss / count, "d_loss": d / count, "g_loss": g / count, "fid_net_accuracy": correct / count,
                "fid": nan, "count": int(count)}

    def untrained_generator(self, gan: nn.Module, device: torch.device) -> nn.Module:
        """A freshly initialized copy of ``gan``'s generator (seed ``sample_seed``; the global RNG untouched)."""
        from ..models.dcgan import dcgan_init_

        fresh = copy.deepcopy(gan.generator).cpu()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.sample_seed)
            dcgan_init_(fresh)  # type: ignore[arg-type]
        for m in fresh.modules():  # type: ignore[union-attr]
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
        return fresh.to(device).eval()  # type: ignore[union-attr]

    @torch.no_grad()
    def evaluate(self, step: EvalStep, batches: Iterable[tuple[Tensor, Tensor]], device: torch.device) -> dict[str, Any]:
        gan = self._eval_module or self._module
        if gan is None:  # nothing trained in this process (a finished run resumed): no module to measure
            count = sum(int(x.shape[0]) for x, _ in batches)
            out: dict[str, Any] = self.compute_metrics(torch.zeros(5, dtype=torch.float64))
            out["count"] = count
            return out
        was_training = gan.training
        gan.eval()
        untrained = self.untrained_generator(gan, device)
        gen = torch.Generator().manual_seed(self.sample_seed + 1)
        sums = torch.zeros(4, dtype=torch.float64)
        feats: dict[str, list[Tensor]] = {"real": [], "fake": [], "untrained": []}
        boards: dict[str, list[Tensor]] = {"real": [], "fake": [], "untrained": []}
        used = 0
        for x, y in batches:
            x, y = x.to(device), y.to(device)
            z = gan.sample_z(x.shape[0], generator=gen, device=device)  # type: ignore[operator]
            fake = gan.generator(z)  # type: ignore[operator]
            d_fake = gan.discriminator(fake)  # type: ignore[operator]
            d_loss = _bce(gan.discriminator(x * 2 - 1), 1.0) + _bce(d_fake, 0.0)  # type: ignore[operator]
            n = x.shape[0]
            sums += torch.tensor([float(d_loss) * n, float(_bce(d_fake, 1.0)) * n,
                                  float((gan.fid_net(x).argmax(1) == y).sum()), n], dtype=torch.float64)  # type: ignore[operator]
            if used < self.fid_items:
                k = min(n, self.fid_items - used)
                images = {"real": x[:k], "fake": (fake[:k] + 1) / 2, "untrained": (untrained(z[:k]) + 1) / 2}
                for name, im in images.items():
                    feats[name].append(gan.fid_net.features(im).float().cpu())  # type: ignore[operator, union-attr]
                    boards[name].append(checkerboard_energy(im, self.period))
                used += k
        f = {k: torch.cat(v) if v else torch.zeros(0, 1) for k, v in feats.items()}
        train_feats = None
        if self._train_images:
            train = torch.cat(self._train_images).float() / 255
            train_feats = torch.cat([gan.fid_net.features(c.to(device)).float().cpu() for c in train.split(500)])  # type: ignore[operator, union-attr]
        gan.train(was_training)
        d, g, correct, count = sums.tolist()
        nan = float("nan")
        result: dict[str, Any] = {"loss": (d + g) / count if count else nan, "d_loss": d / count if count else nan,
                                  "g_loss": g / count if count else nan,
                                  "fid_net_accuracy": correct / count if count else nan, "count": int(count)}
        ok = f["real"].shape[0] >= 2
        result["fid"] = fid_from_features(f["fake"], f["real"]) if ok else nan
        result["fid_untrained"] = fid_from_features(f["untrained"], f["real"]) if ok else nan
        result["fid_real"] = fid_from_features(train_feats, f["real"]) if ok and train_feats is not None else nan
        for name, key in (("fake", "checkerboard"), ("untrained", "checkerboard_untrained"), ("real", "checkerboard_real")):
            result[key] = float(torch.cat(boards[name]).mean()) if boards[name] else nan
        result["fid_items"] = int(f["real"].shape[0])
        result["fid_features"] = FID_FEATURES
        result["upsample"] = str(getattr(gan, "upsample", ""))
        return result

    # ------------------------------------------------------------------ artifacts

    @torch.no_grad()
    def sample_grid(self, model: nn.Module, device: torch.device) -> Tensor:
        """The epoch grid's images in [0, 1]: fixed codes (``sample_seed``), the generator in eval mode."""
        gan = _unwrap(model)
        was_training = gan.training
        gan.eval()
        z = gan.sample_z(self.samples, generator=torch.Generator().manual_seed(self.sample_seed), device=device)  # type: ignore[operator]
        images = (gan.generator(z).float() + 1) / 2  # type: ignore[operator]
        gan.train(was_training)
        return images

    def on_epoch_end(self, *, epoch: int, model: nn.Module, run_dir: Path | None, device: torch.device) -> None:
        from ..plots import save_image_grid
        from ..runs import write_error

        self._eval_module = _unwrap(model)
        if run_dir is None:
            return
        images = self.sample_grid(model, device)
        for path in (run_dir / "plots" / f"samples-epoch-{epoch:03d}.png", run_dir / "plots" / "samples.png"):
            try:
                save_image_grid(images, path)
            except OSError as exc:
                raise write_error(path, exc) from None

    def summary_fields(self, test: Mapping[str, Any]) -> dict[str, Any]:
        """``fid`` (generated vs test images) as the issue and Heusel et al. name it, with the feature network
        it was computed on, the real-vs-real floor and the untrained generator's ceiling measured in the
        same run (the ``test_fid*`` keys hold the same numbers)."""
        return {"fid": test.get("fid"), "fid_network": FID_NETWORK, "fid_features": test.get("fid_features", FID_FEATURES),
                "fid_floor": test.get("fid_real"), "fid_ceiling": test.get("fid_untrained"),
                "fid_items": test.get("fid_items")}

    def check_target(self, y: Tensor) -> None:
        if y.ndim != 1:
            raise DataError(f"task gan reads {self.target}; received shape {tuple(y.shape)}")

    def headline(self, metrics: Mapping[str, Any]) -> str | None:
        fid = metrics.get("test_fid")
        if not isinstance(fid, (int, float)):
            return None
        floor, ceiling = metrics.get("test_fid_real"), metrics.get("test_fid_untrained")
        extra = ""
        if isinstance(floor, (int, float)) and isinstance(ceiling, (int, float)):
            extra = f" (real vs real {floor:.2f}, untrained generator {ceiling:.2f}; features: fid_net)"
        return f"test FID: {fid:.2f}{extra}"

    def __repr__(self) -> str:
        return f"GAN(samples={self.samples}, fid_items={self.fid_items})"
