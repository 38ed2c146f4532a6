"""Notebook 02's experiment with the Mozafari et al. 2019 network: the layer-wise trainer with
checkpoints, and the figures.

:class:`MozafariTrainer` trains conv1 and conv2 with STDP and conv3 with R-STDP, one layer after the
other, with atomic checkpoints after every epoch (an interrupted run resumes to the same weights) and
the R-STDP epoch chosen on validation; :func:`epoch_order` fixes each epoch's sample order by the seed,
:func:`accuracy` scores decisions, :func:`read_trainer_checkpoint` reads a checkpoint as data.
``feature_images`` and the ``plot_*`` functions draw notebook 02's figures.

The network, its training kernels (``stdp_train_step``, ``rstdp_epoch``, ...) and its file format
(``save_network`` / ``load_network``) are in :mod:`snnlab.models.mozafari`; the rules in
:mod:`snnlab.plasticity.mozafari`. Used by ``notebooks/02_mozafari_rstdp.ipynb``,
``scripts/mozafari_study.py`` and ``benchmarks/mozafari.py``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checkpoints import load_checkpoint, load_module_state, save_checkpoint
from ..errors import CheckpointError
from ..models.mozafari import FIRST_STEPS, MozafariNet, rstdp_epoch, stdp_train_step
from ..plasticity.mozafari import RewardRates, adapted_rates, scheduled_rates
from ..utils import check_int, derived_generator, limit_threads


# --------------------------------------------------------------------------- training loop
@dataclass
class TrainHistory:
    """What training records: per R-STDP epoch, train (online) and validation accuracies, and the
    accuracy on the ``monitor`` images when the trainer has some (recorded, never used to choose)."""

    rstdp_train_acc: list = field(default_factory=list)
    rstdp_train_silent: list = field(default_factory=list)
    rstdp_val_acc: list = field(default_factory=list)
    rstdp_val_silent: list = field(default_factory=list)
    rstdp_monitor_acc: list = field(default_factory=list)
    stdp_winners: dict = field(default_factory=lambda: {1: [], 2: []})
    best_epoch: int = -1
    best_val_acc: float = -1.0
    seconds: dict = field(default_factory=dict)


def epoch_order(n: int, seed: int, layer: int, epoch: int, shuffle: bool) -> torch.Tensor:
    """Sample order of one epoch: a permutation fixed by (seed, layer, epoch), so a resumed run
    sees exactly the order an uninterrupted one would."""
    if not shuffle:
        return torch.arange(n)
    return torch.randperm(n, generator=derived_generator(seed, "mozafari-order", layer, epoch))


TRAINER_CHECKPOINT_KEYS = ("config", "weights", "done", "samples_seen", "rates", "best_w3", "history", "seed")


def read_trainer_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict:
    """A :class:`MozafariTrainer` checkpoint as data (see :mod:`snnlab.checkpoints`).

    Notebook 02 calls it on its ``checkpoint`` parameter before any work, so a damaged or unsafe
    file fails at once with a :class:`~snnlab.errors.CheckpointError` naming the parameter and file."""
    return load_checkpoint(path, what="checkpoint parameter", kind="Mozafari trainer checkpoint",
                           map_location=map_location, required=TRAINER_CHECKPOINT_KEYS)


def accuracy(decisions: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(accuracy, silent fraction); a silent (-1) decision counts as wrong."""
    n = max(1, int(labels.numel()))
    return float((decisions == labels).sum()) / n, float((decisions < 0).sum()) / n


class MozafariTrainer:
    """Layer-wise training with atomic checkpoints after every epoch and every layer.

    ``run()`` trains conv1 (STDP), conv2 (STDP) then conv3 (R-STDP) for the given epochs; with a
    ``checkpoint`` path it saves after every epoch and, when the file exists, resumes from it, so
    an interrupted run ends with the same weights as an uninterrupted one. After R-STDP the conv3
    weights of the epoch with the best validation accuracy are kept (``keep_best``).

    Args:
        net: the network (trained in place).
        train_x, train_y: training images ``[N, 1, 28, 28]`` in [0, 1] and labels.
        val_x, val_y: validation images/labels (chooses the R-STDP epoch).
        epochs: (conv1 STDP, conv2 STDP, conv3 R-STDP) epochs.
        seed: fixes the sample order of every epoch.
        checkpoint: file to save to / resume from (``None``: no checkpoints).
        progress: show tqdm bars.
        shuffle: a new seeded sample order every epoch (else the data set order).
        keep_best: end with the conv3 weights of the best validation epoch.
        num_threads: torch threads for the per-sample loops (see :class:`snnlab.utils.limit_threads`).
        horizon: steps of the frozen lower layers cached for conv2 training (``None``: all T); a
            sample whose winners fire later is recomputed whole, so only speed depends on it.
        monitor: ``(images, labels)`` evaluated after every R-STDP epoch for the record
            (``history.rstdp_monitor_acc``, e.g. the test curve of notebook 02); never used to choose.
    """

    def __init__(self, net: MozafariNet, train_x, train_y, val_x, val_y, *, epochs=(4, 8, 40),
                 seed: int = 0, checkpoint: str | Path | None = None, progress: bool = True,
                 shuffle: bool = True, keep_best: bool = True, num_threads: int | None = 1,
                 horizon: int | None = 6, monitor: tuple[torch.Tensor, torch.Tensor] | None = None):
        if len(epochs) != 3:
            raise ValueError(f"epochs must be (conv1, conv2, conv3) epochs, got {epochs!r}")
        self.epochs = tuple(check_int(f"epochs[{i}]", e, minimum=0) for i, e in enumerate(epochs))
        if train_x.shape[0] != train_y.shape[0] or train_x.shape[0] == 0:
            raise ValueError("train_x and train_y must be non-empty with one length")
        if val_x.shape[0] != val_y.shape[0]:
            raise ValueError("val_x and val_y must have one length")
        self.net = net
        self.seed = check_int("seed", seed, minimum=0)
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.progress = progress
        self.shuffle = shuffle
        self.keep_best = keep_best
        self.num_threads = num_threads
        self.horizon = None if horizon is None else check_int("horizon", horizon, minimum=1)
        self.train_y = train_y.to(torch.int64).cpu()
        self.val_y = val_y.to(torch.int64).cpu()
        device = net.w1.device
        self.times_train = net.encode(train_x.to(device))
        self.times_val = net.encode(val_x.to(device))
        if monitor is not None:
            if len(monitor) != 2 or monitor[0].shape[0] != monitor[1].shape[0]:
                raise ValueError("monitor must be (images, labels) of one length")
            self.monitor_y = monitor[1].to(torch.int64).cpu()
            self.times_monitor = net.encode(monitor[0].to(device))
        else:
            self.monitor_y = self.times_monitor = None
        # progress state (what a checkpoint stores besides the weights)
        self.done = {1: 0, 2: 0, 3: 0}
        self.samples_seen = {1: 0, 2: 0}
        p = net.config.rstdp
        hit0 = p.initial_hit if p.initial_hit is not None else 1.0 / net.config.n_classes
        self.rates = adapted_rates(p, hit0, 1.0 - hit0)
        self.best_w3 = net.w3.clone()
        self.history = TrainHistory()

    # ----------------------------------------------------------------- checkpoints
    def state(self) -> dict:
        return {
            "config": self.net.config.to_dict(),
            "weights": {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()},
            "done": dict(self.done),
            "samples_seen": dict(self.samples_seen),
            "rates": tuple(self.rates),
            "best_w3": self.best_w3.cpu().clone(),
            "history": dataclasses.asdict(self.history),
            "seed": self.seed,
            "epochs": self.epochs,
        }

    def save(self) -> None:
        if self.checkpoint is not None:
            save_checkpoint(self.state(), self.checkpoint)

    def load(self, path: str | Path) -> None:
        """Resume from a file written by :meth:`save` (read as data only: see :mod:`snnlab.checkpoints`).

        A missing, damaged, unsafe or mismatched file raises :class:`~snnlab.errors.CheckpointError`
        naming the ``checkpoint`` parameter and the file."""
        what = "checkpoint parameter"
        state = read_trainer_checkpoint(path, map_location=self.net.w1.device)
        if state["config"] != self.net.config.to_dict():
            raise CheckpointError(f"{what} {path}: written for another network configuration; use a new file "
                                  "or the configuration it was trained with")
        if state["seed"] != self.seed:
            raise CheckpointError(f"{what} {path}: has seed {state['seed']}, this run seed {self.seed}")
        load_module_state(self.net, state["weights"], what=what, path=path)
        try:
            self.done = {int(k): int(v) for k, v in state["done"].items()}
            self.samples_seen = {int(k): int(v) for k, v in state["samples_seen"].items()}
            self.rates = RewardRates(*state["rates"])
            self.best_w3 = state["best_w3"].clone()
            h = dict(state["history"])
            h["stdp_winners"] = {int(k): v for k, v in h["stdp_winners"].items()}
            self.history = TrainHistory(**h)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise CheckpointError(f"{what} {path}: its training state is damaged ({exc})") from exc

    # ----------------------------------------------------------------- training
    def _bar(self, total, desc):
        from ..utils import progress as progress_bar

        # a slow refresh: every bar update is a message to the notebook front end, and a flood of
        # them can outlast a test runner's output timeout
        return progress_bar(total=total, desc=desc, disable=not self.progress, leave=True, mininterval=2.0)

    def train_stdp_layer(self, layer: int, *, max_samples: int | None = None) -> None:
        """STDP epochs of conv1 or conv2 (per-sample updates, frozen layers below cached)."""
        import time

        c, t = self.net.config, self.net.config.n_steps
        remaining = self.epochs[layer - 1] - self.done[layer]
        if remaining <= 0:
            return
        start = time.perf_counter()
        # the winners nearly always fire within the first few steps, so the frozen layers below are
        # cached only up to a horizon; the rare sample that needs more is recomputed whole
        horizon = None if layer == 1 else self.horizon
        pre_all = self.net.layer_input_times(layer, self.times_train, horizon=horizon).to(torch.int64)
        n = pre_all.shape[0] if max_samples is None else min(max_samples, pre_all.shape[0])
        bar = self._bar(remaining * n, f"conv{layer} STDP")
        w = self.net.weight(layer).clone()
        for epoch in range(self.done[layer], self.epochs[layer - 1]):
            order = epoch_order(pre_all.shape[0], self.seed, layer, epoch, self.shuffle)[:n]
            n_winners = pending = 0
            for i in order.tolist():
                self.samples_seen[layer] += 1
                a_plus, a_minus = scheduled_rates(self.samples_seen[layer], c.schedule)
                step = dict(threshold=c.thresholds[layer - 1], n_steps=t, k=c.k_wta[layer - 1],
                            radius=c.radii[layer - 1], a_plus=a_plus, a_minus=a_minus,
                            bounds=c.stdp_bounds, pointwise=c.pointwise_inhibition,
                            first_steps=FIRST_STEPS[layer - 1])
                new_w, winners, _ = stdp_train_step(w, pre_all[i], max_steps=horizon, **step)
                if winners is None:
                    whole = self.net.layer_input_times(layer, self.times_train[i:i + 1])[0]
                    new_w, winners, _ = stdp_train_step(w, whole.to(torch.int64), **step)
                w = new_w
                n_winners += len(winners)
                pending += 1
                if pending == 100:
                    bar.update(pending)
                    pending = 0
            bar.update(pending)
            getattr(self.net, f"w{layer}").copy_(w)
            self.history.stdp_winners[layer].append(n_winners / max(1, n))
            self.done[layer] = epoch + 1
            self.save()
        bar.close()
        self.history.seconds[f"conv{layer}"] = self.history.seconds.get(f"conv{layer}", 0.0) + time.perf_counter() - start

    def train_rstdp(self, *, max_samples: int | None = None) -> None:
        """R-STDP epochs of conv3 with adaptive rates; validation after every epoch."""
        import time

        c, t = self.net.config, self.net.config.n_steps
        remaining = self.epochs[2] - self.done[3]
        if remaining <= 0:
            return
        start = time.perf_counter()
        s_train = self.net.final_spikes(3, self.times_train)
        s_val = self.net.final_spikes(3, self.times_val)
        s_mon = self.net.final_spikes(3, self.times_monitor) if self.times_monitor is not None else None
        n = s_train.shape[0] if max_samples is None else min(max_samples, s_train.shape[0])
        per_class = c.features[2] // c.n_classes
        bar = self._bar(remaining, "conv3 R-STDP epochs")
        w3 = self.net.w3.clone()
        for epoch in range(self.done[3], self.epochs[2]):
            order = epoch_order(s_train.shape[0], self.seed, 3, epoch, self.shuffle)[:n]
            dec, self.rates = rstdp_epoch(w3, s_train, self.train_y, order, self.rates, c.rstdp,
                                          n_steps=t, per_class=per_class)
            hits = int((dec == self.train_y[order]).sum())
            silent = int((dec < 0).sum())
            self.net.w3.copy_(w3)
            val_dec = self.net.decide(self.net.output_potentials(s_val)).cpu()
            val_acc, val_silent = accuracy(val_dec, self.val_y)
            hist = self.history
            hist.rstdp_train_acc.append(hits / n)
            hist.rstdp_train_silent.append(silent / n)
            hist.rstdp_val_acc.append(val_acc)
            hist.rstdp_val_silent.append(val_silent)
            if s_mon is not None:
                mon_dec = self.net.decide(self.net.output_potentials(s_mon)).cpu()
                hist.rstdp_monitor_acc.append(accuracy(mon_dec, self.monitor_y)[0])
            if val_acc > hist.best_val_acc:
                hist.best_val_acc, hist.best_epoch = val_acc, epoch + 1
                self.best_w3 = w3.clone()
            self.done[3] = epoch + 1
            self.save()
            bar.update(1)
            bar.set_postfix(train=f"{hits / n:.3f}", val=f"{val_acc:.3f}", best=f"{hist.best_val_acc:.3f}")
        bar.close()
        self.history.seconds["conv3"] = self.history.seconds.get("conv3", 0.0) + time.perf_counter() - start

    def run(self, *, resume: bool = True, max_samples: int | None = None) -> TrainHistory:
        """Train all three layers (resuming from ``checkpoint`` if it exists and ``resume``)."""
        if resume and self.checkpoint is not None and self.checkpoint.is_file():
            self.load(self.checkpoint)
        with limit_threads(self.num_threads):
            self.train_stdp_layer(1, max_samples=max_samples)
            self.train_stdp_layer(2, max_samples=max_samples)
            self.train_rstdp(max_samples=max_samples)
        if self.keep_best and self.history.best_epoch > 0:
            self.net.w3.copy_(self.best_w3)
        return self.history


def rerun_rstdp(net: MozafariNet, train_x, train_y, val_x, val_y, *, rstdp, epochs: int, seed: int = 0,
                monitor: tuple[torch.Tensor, torch.Tensor] | None = None,
                num_threads: int | None = None) -> TrainHistory:
    """R-STDP of conv3 again, with other R-STDP parameters, on top of ``net``'s trained conv1/conv2.

    A new network with ``net``'s config (``rstdp`` replaced) and seed starts from the seed's initial
    conv3 weights, takes ``net``'s conv1/conv2 weights and trains conv3 for ``epochs`` epochs with the
    seed's sample order; ``net`` is not changed. With ``rstdp`` equal to ``net.config.rstdp`` this is
    the first ``epochs`` R-STDP epochs of the run that trained ``net`` with the same data and seed
    (the same computation), so a changed rule can be compared epoch by epoch with the original run.

    Args:
        net: a network whose conv1/conv2 are trained (on ``net.w1.device``).
        train_x, train_y, val_x, val_y: as for :class:`MozafariTrainer`.
        rstdp: the :class:`~snnlab.plasticity.mozafari.RSTDPParams` of the rerun.
        epochs: R-STDP epochs.
        seed: the seed ``net`` was built and trained with.
        monitor, num_threads: as for :class:`MozafariTrainer`.
    Returns:
        the rerun's :class:`TrainHistory` (per-epoch train, validation and monitor accuracy).
    """
    config = dataclasses.replace(net.config, rstdp=rstdp)
    fresh = MozafariNet(config, seed=seed).to(net.w1.device)
    fresh.w1.copy_(net.w1)
    fresh.w2.copy_(net.w2)
    trainer = MozafariTrainer(fresh, train_x, train_y, val_x, val_y, epochs=(0, 0, check_int("epochs", epochs, minimum=1)),
                              seed=seed, progress=False, keep_best=False, num_threads=num_threads, monitor=monitor)
    return trainer.run(resume=False)


# --------------------------------------------------------------------------- figures
def feature_images(w1: torch.Tensor, specs=None) -> torch.Tensor:
    """What each conv1 feature 'looks for' in pixel space: ``sum_c w[f, c] (*) DoG_c``.

    Each weight is replaced by its DoG kernel (a transposed convolution), so a ``[F, 6, 5, 5]``
    kernel becomes a ``[F, 17, 17]`` image (the usual way to show such features)."""
    from ..encoding import MOZAFARI_DOG, dog_bank

    bank = dog_bank(specs or MOZAFARI_DOG).to(w1.device)
    return F.conv_transpose2d(w1, bank)[:, 0]


def plot_spike_waves(times: torch.Tensor, t: int, n_steps: int, *, titles=None):
    """The cumulative spike waves of one sample at step ``t``: one panel per channel.

    Args:
        times: ``[C, H, W]`` first-spike times.
        t: the step to show (0-based).
    Returns:
        the ``Figure``.
    """
    import matplotlib.pyplot as plt

    c = times.shape[0]
    # at most three panels a row: six in one row printed at page width had 5 pt labels
    cols = min(c, 3)
    rows = -(-c // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols + 0.8, 1.8 * rows + 0.2), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, ax in enumerate(axes.flat[:c]):
        shown = torch.where(times[i] <= t, times[i].float(), torch.tensor(float("nan")))
        image = ax.imshow(shown.cpu().numpy(), cmap="viridis_r", vmin=0, vmax=n_steps - 1)
        ax.set_title(titles[i] if titles else f"channel {i}", fontsize=8)
    bar = fig.colorbar(image, ax=list(axes.flat), fraction=0.03, pad=0.03)
    bar.set_label("spike step", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    fig.suptitle(f"spike waves up to step t = {t} (empty: not spiked yet)", fontsize=9)
    return fig


def plot_dog_responses(image: torch.Tensor, maps: torch.Tensor, *, label=None, titles=None):
    """One grey image and its DoG maps side by side, each with a colour bar.

    Args:
        image: ``[H, W]`` in [0, 1].
        maps: ``[C, H, W]`` filter responses (e.g. after local normalisation).
        label: the digit's class (shown in the title).
        titles: one title per map.
    Returns:
        the ``Figure``.
    """
    import matplotlib.pyplot as plt

    c = maps.shape[0]
    # at most four panels a row: seven in one row printed at page width had 4 pt colour-bar ticks
    cols = min(c + 1, 4)
    rows = -(-(c + 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.75 * cols, 2.1 * rows), squeeze=False)
    panels = [(image, "gray", f"digit {label}" if label is not None else "image", "intensity")]
    panels += [(maps[i], "magma", titles[i] if titles else f"map {i}", "response / local mean") for i in range(c)]
    for ax in axes.flat:
        ax.axis("off")
    for ax, (data, cmap, title, unit) in zip(axes.flat, panels):
        shown = ax.imshow(torch.as_tensor(data).cpu().numpy(), cmap=cmap)
        ax.set_title(title, fontsize=8)
        bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
        bar.ax.tick_params(labelsize=7)
    axes.flat[0].set_title(panels[0][2] + "\n(pixel intensity)", fontsize=8)
    axes.flat[1].set_title((titles[0] if titles else "map 0") + "\n(response / local mean)", fontsize=8)
    return fig


def plot_latency_raster(times: torch.Tensor, n_steps: int, *, ax=None, max_units: int = 400):
    """Raster of a latency code: the ``max_units`` earliest units, one row each, ordered by time."""
    import matplotlib.pyplot as plt

    flat = times.reshape(-1)
    fired = torch.nonzero(flat < n_steps).squeeze(1)
    order = fired[torch.argsort(flat[fired], stable=True)][:max_units]
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 2.5))
    ax.plot(flat[order].cpu().numpy(), range(order.numel()), "|", color="k", markersize=3)
    ax.set_xlim(-0.5, n_steps - 0.5)
    ax.set_xlabel("time step")
    ax.set_ylabel("unit (sorted by spike time)")
    return ax


def plot_confusion(labels, decisions, n_classes: int = 10, *, ax=None):
    """Confusion matrix (rows: true class, columns: decision; last column: no decision)."""
    import matplotlib.pyplot as plt

    labels = torch.as_tensor(labels).cpu()
    decisions = torch.as_tensor(decisions).cpu()
    m = torch.zeros(n_classes, n_classes + 1, dtype=torch.int64)
    col = torch.where(decisions < 0, torch.full_like(decisions, n_classes), decisions)
    m.index_put_((labels, col), torch.ones_like(labels), accumulate=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 4))
    shown = ax.imshow(m.numpy(), cmap="Blues")
    bar = ax.figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("test images", fontsize=8)
    from matplotlib.ticker import MaxNLocator

    bar.locator = MaxNLocator(integer=True)
    bar.update_ticks()
    for i in range(n_classes):
        for j in range(n_classes + 1):
            if m[i, j]:
                ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if m[i, j] > m.max() / 2 else "black")
    ax.set_xticks(range(n_classes + 1), [str(i) for i in range(n_classes)] + ["none"], fontsize=7)
    ax.set_yticks(range(n_classes), [str(i) for i in range(n_classes)], fontsize=7)
    ax.set_xlabel("decision")
    ax.set_ylabel("true class")
    return ax


def plot_study(summary: dict, *, target: float | None = 90.0, highlight: str | None = None, ax=None):
    """Held-out test accuracy per variant of ``scripts/mozafari_study.py`` (mean and sd over seeds,
    each seed a dot), validation means as open circles, and the target as a dashed line.

    Args:
        summary: the ``summary`` of the study's JSON file (variant -> row).
        target: accuracy (%) drawn as a reference line (``None``: none).
        highlight: the variant drawn in another colour (e.g. the notebook's default).
    """
    import matplotlib.pyplot as plt

    names = list(summary)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.2))
    for i, name in enumerate(names):
        row = summary[name]
        ax.barh(i, row["test_mean"], xerr=row["test_sd"], color="tab:orange" if name == highlight else "tab:blue",
                alpha=0.6, capsize=3)
        ax.plot(list(row["tests"].values()), [i] * len(row["tests"]), "k.", markersize=4)
        ax.plot(row["val_mean"], i, "o", mfc="none", mec="k", markersize=6)
    if target is not None:
        ax.axvline(target, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    lo = min(min(r["tests"].values()) for r in summary.values())
    ax.set_xlim(max(0.0, lo - 5.0), 100.0)
    ax.set_xlabel("held-out test accuracy (%): bars mean +- sd over seeds, dots seeds, circles validation")
    ax.set_ylabel("setting")
    return ax


def plot_learning_curve(curve: dict, *, paper: tuple[int, float] | None = (60_000, 97.2), ax=None):
    """Held-out test accuracy against the number of training images (log axis), mean +- sd over
    seeds with each seed as a dot, validation means as open circles, and the paper's result as a star.

    Args:
        curve: ``{n_train: {"test_mean", "test_sd", "val_mean", "tests": {seed: acc}}}`` in percent
            (the ``curve`` of ``scripts/mozafari_study.py``'s JSON file).
        paper: (training images, accuracy %) of the published result, or ``None``.
    """
    import matplotlib.pyplot as plt

    sizes = sorted(curve, key=int)
    n = [int(k) for k in sizes]
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.4))
    mean = [curve[k]["test_mean"] for k in sizes]
    ax.errorbar(n, mean, yerr=[curve[k]["test_sd"] for k in sizes], fmt="o-", capsize=3,
                label="test: mean +- sd over seeds")
    for k in sizes:
        ax.plot([int(k)] * len(curve[k]["tests"]), list(curve[k]["tests"].values()), "k.", markersize=4)
    ax.plot(n, [curve[k]["val_mean"] for k in sizes], "o", mfc="none", mec="grey", label="validation mean")
    if paper is not None:
        ax.plot([paper[0]], [paper[1]], "*", color="tab:red", markersize=12,
                label=f"paper: {paper[1]}% with {paper[0]:,} images")
    ax.set_xscale("log")
    ax.set_xlabel("training images (log scale)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right", fontsize="small")
    return ax
