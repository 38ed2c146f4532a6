"""Speed of the Mozafari et al. 2019 network: snnlab's fast path vs a straightforward reference.

The reference is what a direct port does: one sample at a time, one time step at a time (one
convolution of the cumulative wave per step and layer), every layer recomputed from the image for
every sample. The fast path (``snnlab.models.mozafari``) computes several steps of a layer in one
convolution and, while training, only the steps up to the k-th winner's spike; it batches
encoding, inference and the frozen lower layers (cached once) and keeps the per-sample update
order of the layer being trained. Both run here side by side, on the same machine and data, and
the script prints samples/s and the ratio for every phase in the order training runs them:
encoding (``net.encode``), conv1 STDP, conv2 STDP (conv1 as left by the conv1 phase), conv3 R-STDP
and inference (image -> decision). A training phase is one epoch over the training images, the
one-time cache of the frozen layers included. It also checks that both give the same spike
times, weights, winners and decisions, and ends with where conv2's time goes (cache of the frozen
conv1, steps computed per sample, samples recomputed whole, input spikes per step) and the speed of
its first try with 3 steps (the old default) vs :data:`~snnlab.models.mozafari.FIRST_STEPS`.

    .venv/bin/python benchmarks/mozafari.py                       # mnist5k: 3000 images, minutes
    .venv/bin/python benchmarks/mozafari.py --dataset digits      # the 1259 upsampled 8x8 digits
    .venv/bin/python benchmarks/mozafari.py --samples 500         # the first 500 training images
    .venv/bin/python benchmarks/mozafari.py --quick               # a few seconds (smoke test)

Absolute samples/s depend on the machine and on what else runs on it; the ratios, measured in one
run, are the figures to compare. ``--samples`` also changes what is measured: the STDP rates grow
with the samples seen, so conv1 trained on fewer images stays denser and conv2's winners fire
earlier (cheaper) than after an epoch over the whole set. The reference functions are also used by
``tests/models/test_mozafari.py``.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

import snnlab  # noqa: F401  (quiets a logger)
from snnlab.data import load_digits_split, load_mnist5k_split
from snnlab.experiments.mozafari import MozafariTrainer, epoch_order
from snnlab.utils import limit_threads
from snnlab.models.mozafari import FIRST_STEPS, MozafariNet, rstdp_epoch, stdp_train_step
from snnlab.plasticity.mozafari import (
    RewardRates,
    adapted_rates,
    apply_update,
    conv_stdp_update,
    k_winners,
    pointwise_inhibition,
    rstdp_rates,
    scheduled_rates,
    stdp_delta,
)

DATASETS = ("mnist5k", "digits")


# --------------------------------------------------------------------------- reference
def reference_conv_layer(waves_in: list[torch.Tensor], w: torch.Tensor, threshold: float | None):
    """Step a conv layer of one-shot IF neurons through time, one wave at a time.

    At step t the potential is the convolution of the cumulative input wave (non-leaky neurons
    integrate every input that has spiked so far); a neuron fires the first time it exceeds the
    threshold and never again (no reset). The potential is recomputed from the wave rather than
    accumulated from increments so that exactly equal sums (saturated receptive fields are common)
    stay exactly equal, as in the fast path: the competition breaks such ties by index.

    Args:
        waves_in: T padded cumulative input waves ``[C, H, W]`` (0/1).
        w: weights ``[F, C, k, k]``.
        threshold: theta, or ``None`` for the infinite threshold (potentials only).
    Returns:
        ``(times, values, waves_out, v_last)``: first-spike times ``[F, H', W']`` (T = never), the
        potential at the spike, the output waves (list of T ``[F, H', W']``) and the last potential.
    """
    n_steps = len(waves_in)
    times = values = fired = v = None
    waves_out = []
    for t, s in enumerate(waves_in):
        v = F.conv2d(s[None], w)[0]
        if threshold is None:
            continue
        if fired is None:
            fired = torch.zeros(v.shape, dtype=torch.bool)
            times = torch.full(v.shape, n_steps, dtype=torch.int64)
            values = torch.zeros(v.shape)
        spike = (v > threshold) & ~fired
        fired = fired | spike
        times = torch.where(spike, torch.full_like(times, t), times)
        values = torch.where(spike, v, values)
        waves_out.append(fired.to(torch.float32))
    return times, values, waves_out, v


def reference_layer_input_waves(net: MozafariNet, times0: torch.Tensor, layer: int) -> list[torch.Tensor]:
    """Padded input waves of ``layer`` for one encoded sample, stepping every lower layer in time."""
    c, n_steps = net.config, net.config.n_steps
    waves = [(times0 <= t).to(torch.float32) for t in range(n_steps)]
    for lower in range(1, layer):
        waves = [F.pad(s, [c.pads[lower - 1]] * 4) for s in waves]
        _, _, waves, _ = reference_conv_layer(waves, net.weight(lower), c.thresholds[lower - 1])
        waves = [F.max_pool2d(s[None], c.pools[lower - 1])[0] for s in waves]
    return [F.pad(s, [c.pads[layer - 1]] * 4) for s in waves]


def reference_predict_one(net: MozafariNet, times0: torch.Tensor) -> int:
    """Decision for one encoded sample, every layer stepped in time (infinite threshold in conv3)."""
    c = net.config
    waves = reference_layer_input_waves(net, times0, 3)
    _, _, _, v_last = reference_conv_layer(waves, net.w3, None)
    best = v_last.reshape(-1).argmax()
    if v_last.reshape(-1)[best] <= 0:
        return -1
    return int(best // (v_last.shape[-1] * v_last.shape[-2])) // (c.features[2] // c.n_classes)


def reference_stdp_step(net: MozafariNet, layer: int, w: torch.Tensor, times0: torch.Tensor, a_plus: float,
                        a_minus: float):
    """One STDP sample of conv1/conv2 computed the straightforward way; returns (new_w, winners)."""
    c, n_steps = net.config, net.config.n_steps
    waves = reference_layer_input_waves(net, times0, layer)
    times, values, _, _ = reference_conv_layer(waves, w, c.thresholds[layer - 1])
    if c.pointwise_inhibition:
        times, values = pointwise_inhibition(times, values, n_steps)
    winners = k_winners(times, values, k=c.k_wta[layer - 1], radius=c.radii[layer - 1], n_steps=n_steps)
    if not winners:
        return w, winners
    # first-spike times of the input, read back from its waves
    pre = n_steps - torch.stack(waves).sum(0).to(torch.int64)
    post = [int(times[f, y, x]) for f, y, x in winners]
    dw = conv_stdp_update(w, pre, winners, post, a_plus=a_plus, a_minus=a_minus, bounds=c.stdp_bounds)
    return apply_update(w, dw, c.stdp_bounds), winners


def reference_rstdp_epoch(net: MozafariNet, w3: torch.Tensor, times0_all: torch.Tensor, labels: torch.Tensor,
                          order, rates: RewardRates):
    """One R-STDP epoch, sample by sample and step by step from the encoded input (w3 in place)."""
    c, n_steps = net.config, net.config.n_steps
    p = c.rstdp
    per_class = c.features[2] // c.n_classes
    decisions = []
    block_n = block_hit = block_miss = 0
    for i in [int(i) for i in order]:
        waves = reference_layer_input_waves(net, times0_all[i].to(torch.int64), 3)
        _, _, _, v_last = reference_conv_layer(waves, w3, None)
        flat = v_last.reshape(-1)
        best = int(flat.argmax())
        if flat[best] <= 0:
            decisions.append(-1)
        else:
            f, rem = divmod(best, v_last.shape[-1] * v_last.shape[-2])
            y, x = divmod(rem, v_last.shape[-1])
            decision = f // per_class
            decisions.append(decision)
            correct = decision == int(labels[i])
            block_hit += int(correct)
            block_miss += int(not correct)
            a_plus, a_minus = rstdp_rates(correct, rates)
            pre = n_steps - torch.stack(waves).sum(0).to(torch.int64)
            k = w3.shape[-1]
            dw = stdp_delta(w3[f], pre[:, y:y + k, x:x + k], n_steps - 1, a_plus=a_plus, a_minus=a_minus,
                            bounds=p.bounds)
            w3[f] = apply_update(w3[f], dw, p.bounds)
        block_n += 1
        if block_n == p.block:
            rates = adapted_rates(p, block_hit / block_n, block_miss / block_n)
            block_n = block_hit = block_miss = 0
    if block_n:
        rates = adapted_rates(p, block_hit / block_n, block_miss / block_n)
    return torch.tensor(decisions), rates


# --------------------------------------------------------------------------- benchmark
def _rate(n: int, seconds: float) -> float:
    return n / max(seconds, 1e-9)


def load_train(dataset: str, seed: int):
    """Training images ``[N, 1, 28, 28]`` and labels of ``dataset`` (``mnist5k`` or ``digits``)."""
    if dataset == "mnist5k":
        data = load_mnist5k_split(seed)
    elif dataset == "digits":
        data = load_digits_split(seed, size=28)
    else:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    return data.train.x, data.train.y


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run(*, n_ref: int, n_fast: int | None = None, seed: int = 0, threads: int | None = 1,
        dataset: str = "mnist5k") -> list[dict]:
    """Measure every phase; returns rows {stage, fast, reference, ratio, agree} in training order.

    ``n_fast`` training images (``None``: all) go through the fast path, the first ``n_ref`` of
    them (in each phase's order) through the reference."""
    x, y = load_train(dataset, seed)
    n_fast = x.shape[0] if n_fast is None else min(n_fast, x.shape[0])
    n_ref = min(n_ref, n_fast)
    x, y = x[:n_fast], y[:n_fast]
    net = MozafariNet(seed=seed)
    c, n_steps = net.config, net.config.n_steps
    rows = []
    with limit_threads(threads):
        # ------------------------------------------------------------- encoding
        times0, fast_s = _timed(lambda: net.encode(x))
        ref_times, ref_s = _timed(lambda: [net.encode(x[i:i + 1])[0] for i in range(n_ref)])
        agree = bool(torch.equal(times0[:n_ref], torch.stack(ref_times)))
        rows.append(dict(stage="encoding (DoG + latency)", fast=_rate(n_fast, fast_s),
                         reference=_rate(n_ref, ref_s), agree=agree))
        # ------------------------------------------------------------- STDP conv1, conv2
        for layer in (1, 2):
            trainer = MozafariTrainer(net, x, y, x[:2], y[:2], epochs=(1, 1, 0), seed=seed,
                                      progress=False, num_threads=None)
            if layer == 2:
                trainer.done[1] = 1  # conv1 stays as the conv1 phase left it: only conv2 is timed
            w_before = net.weight(layer).clone()
            _, fast_s = _timed(lambda: trainer.train_stdp_layer(layer))
            w_fast = net.weight(layer).clone()
            # reference: the same first n_ref samples in the same order, from the same start
            order = epoch_order(n_fast, seed, layer, 0, True)[:n_ref]
            w = w_before.clone()
            t0 = time.perf_counter()
            for count, i in enumerate(order.tolist(), start=1):
                a_plus, a_minus = scheduled_rates(count, c.schedule)
                getattr(net, f"w{layer}").copy_(w)
                w, _ = reference_stdp_step(net, layer, w, times0[i].to(torch.int64), a_plus, a_minus)
            ref_s = time.perf_counter() - t0
            # agreement: replay the fast step on the same n_ref samples from the same start
            getattr(net, f"w{layer}").copy_(w_before)
            check = MozafariTrainer(net, x, y, x[:2], y[:2], epochs=(1, 1, 0), seed=seed, progress=False,
                                    num_threads=None)
            if layer == 2:
                check.done[1] = 1
            check.train_stdp_layer(layer, max_samples=n_ref)
            agree = bool(torch.allclose(net.weight(layer), w, atol=1e-5))
            getattr(net, f"w{layer}").copy_(w_fast)
            rows.append(dict(stage=f"STDP training conv{layer}", fast=_rate(n_fast, fast_s),
                             reference=_rate(n_ref, ref_s), agree=agree))
        # ------------------------------------------------------------- R-STDP conv3
        rates = adapted_rates(c.rstdp, 0.1, 0.9)
        per_class = c.features[2] // c.n_classes
        w3_start = net.w3.clone()
        t0 = time.perf_counter()
        s3 = net.final_spikes(3, times0)
        w3 = w3_start.clone()
        dec_fast, _ = rstdp_epoch(w3, s3, y, torch.arange(n_fast), rates, c.rstdp,
                                  n_steps=n_steps, per_class=per_class)
        fast_s = time.perf_counter() - t0
        w3_ref = w3_start.clone()
        (dec_ref, _), ref_s = _timed(lambda: reference_rstdp_epoch(net, w3_ref, times0, y, torch.arange(n_ref), rates))
        w3_check = w3_start.clone()
        dec_check, _ = rstdp_epoch(w3_check, s3, y, torch.arange(n_ref), rates, c.rstdp,
                                   n_steps=n_steps, per_class=per_class)
        agree = bool((dec_check == dec_ref).all() and torch.allclose(w3_check, w3_ref, atol=1e-5)
                     and (dec_fast[:n_ref] == dec_ref).all())
        rows.append(dict(stage="R-STDP training conv3", fast=_rate(n_fast, fast_s),
                         reference=_rate(n_ref, ref_s), agree=agree))
        # ------------------------------------------------------------- inference (trained network)
        fast_dec, fast_s = _timed(lambda: net.predict(x))
        ref_dec, ref_s = _timed(lambda: [reference_predict_one(net, net.encode(x[i:i + 1])[0].to(torch.int64))
                                         for i in range(n_ref)])
        agree = bool((fast_dec[:n_ref] == torch.tensor(ref_dec)).all())
        rows.append(dict(stage="inference (image -> decision)", fast=_rate(n_fast, fast_s),
                         reference=_rate(n_ref, ref_s), agree=agree))
    for row in rows:
        row["ratio"] = row["fast"] / row["reference"]
    return rows


def conv2_breakdown(*, n: int, n_train: int | None = None, seed: int = 0, threads: int | None = 1,
                    dataset: str = "mnist5k", conv1_epochs: int = 1) -> dict:
    """Where conv2 STDP spends its time, on the first ``n`` samples of its first epoch.

    conv1 is first trained for ``conv1_epochs`` epochs on the first ``n_train`` training images
    (``None``: all; as before conv2 in real training). The per-sample loop of :meth:`MozafariTrainer.train_stdp_layer` is then run
    twice side by side in blocks of 25 samples, with the first try of :func:`stdp_train_step`
    computing 3 steps (the old default) and ``FIRST_STEPS[1]`` steps; both must end with
    bit-identical weights and winners. Returns a dict of the measurements (ms per sample, counts).
    """
    x, y = load_train(dataset, seed)
    x, y = x[:n_train], y[:n_train]
    n = min(n, x.shape[0])
    net = MozafariNet(seed=seed)
    c, n_steps, horizon = net.config, net.config.n_steps, 6
    with limit_threads(threads):
        trainer = MozafariTrainer(net, x, y, x[:2], y[:2], epochs=(conv1_epochs, 0, 0), seed=seed,
                                  progress=False, num_threads=None)
        trainer.train_stdp_layer(1)
        order = epoch_order(x.shape[0], seed, 2, 0, True)[:n]
        times0 = trainer.times_train[order]
        pre, cache_s = _timed(lambda: net.layer_input_times(2, times0, horizon=horizon).to(torch.int64))
        whole_all = net.layer_input_times(2, times0).to(torch.int64)
        tries = sorted({FIRST_STEPS[1], 3})
        w = {f: net.w2.clone() for f in tries}
        seconds = {f: 0.0 for f in tries}
        winners = {f: [] for f in tries}
        steps_needed, recomputed = [], 0
        for b0 in range(0, n, 25):
            for f in tries:
                t0 = time.perf_counter()
                for i in range(b0, min(n, b0 + 25)):
                    a_plus, a_minus = scheduled_rates(i + 1, c.schedule)
                    step = dict(threshold=c.thresholds[1], n_steps=n_steps, k=c.k_wta[1], radius=c.radii[1],
                                a_plus=a_plus, a_minus=a_minus, bounds=c.stdp_bounds,
                                pointwise=c.pointwise_inhibition, first_steps=f)
                    new_w, won, post = stdp_train_step(w[f], pre[i], max_steps=horizon, **step)
                    if won is None:
                        whole = net.layer_input_times(2, times0[i:i + 1])[0].to(torch.int64)
                        new_w, won, post = stdp_train_step(w[f], whole, **step)
                        recomputed += f == tries[0]
                    w[f] = new_w
                    winners[f].append(won)
                    if f == tries[0]:
                        steps_needed.append(max(post) + 1 if len(won) == c.k_wta[1] else n_steps)
                seconds[f] += time.perf_counter() - t0
    needed = torch.tensor(steps_needed)
    spikes = [float((whole_all <= t).sum((1, 2, 3)).float().mean()) for t in range(n_steps)]
    return dict(n=n, dataset=dataset, conv1_epochs=conv1_epochs, cache_ms=1e3 * cache_s / n,
                loop_ms={f: 1e3 * s / n for f, s in seconds.items()},
                identical=all(torch.equal(w[tries[0]], w[f]) and winners[f] == winners[tries[0]] for f in tries),
                steps_needed={int(k): int((needed == k).sum()) for k in needed.unique()},
                recomputed=int(recomputed), input_units=int(whole_all[0].numel()), input_spikes=spikes)


def format_breakdown(b: dict) -> str:
    f_old, f_new = 3, FIRST_STEPS[1]
    old, new = b["loop_ms"][f_old], b["loop_ms"][f_new]
    spikes = ", ".join(f"{s:.0f}" for s in b["input_spikes"][:7])
    return "\n".join([
        f"where conv2's time goes ({b['dataset']}, first {b['n']} samples, conv1 trained {b['conv1_epochs']} epoch(s)):",
        f"  cache of the frozen conv1 (first 6 steps, batched): {b['cache_ms']:.2f} ms/sample",
        f"  per-sample loop: {new:.2f} ms/sample with a first try of {f_new} steps, {old:.2f} with {f_old} "
        f"({old / new:.2f}x); same weights and winners: {'yes' if b['identical'] else 'NO'}",
        f"  steps needed (last winner's step + 1) -> samples: {b['steps_needed']}; recomputed whole "
        f"(winners after the 6-step cache): {b['recomputed']}",
        f"  conv2 input spikes by step (cumulative, mean per sample, of {b['input_units']} units): {spikes} ... "
        f"{b['input_spikes'][-1]:.0f}",
    ])


def format_rows(rows: list[dict]) -> str:
    lines = [f"{'stage':32s} {'fast (samples/s)':>17s} {'reference':>10s} {'ratio':>8s}  same result",
             "-" * 84]
    for r in rows:
        lines.append(f"{r['stage']:32s} {r['fast']:17.1f} {r['reference']:10.1f} {r['ratio']:7.1f}x  "
                     f"{'yes' if r['agree'] else 'NO'}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=DATASETS, default="mnist5k",
                        help="mnist5k: 3000 real MNIST training digits (default); digits: 1259 upsampled 8x8 digits")
    parser.add_argument("--samples", type=int, default=None,
                        help="training images through the fast path (default: all)")
    parser.add_argument("--ref-samples", type=int, default=20, help="images through the reference")
    parser.add_argument("--breakdown", type=int, default=300,
                        help="samples of the conv2 time breakdown (0: skip it)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test, a few seconds)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest for per-sample loops on a shared 2-core machine)")
    args = parser.parse_args(argv)
    for name in ("threads", "ref_samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.samples is not None and args.samples < 2:
        parser.error(f"--samples must be >= 2, got {args.samples}")
    if args.breakdown < 0:
        parser.error(f"--breakdown must be >= 0, got {args.breakdown}")
    n_ref, n_fast, n_break = args.ref_samples, args.samples, args.breakdown
    if args.quick:
        n_ref, n_fast, n_break = 3, 24, min(n_break, 10)
    n_ref = min(n_ref, n_fast) if n_fast is not None else n_ref
    print(f"torch {torch.__version__}, threads {args.threads}, dataset {args.dataset} (28x28, T=15); "
          f"fast path on {n_fast or 'all'} training samples, reference on the first {n_ref}")
    rows = run(n_ref=n_ref, n_fast=n_fast, seed=args.seed, threads=args.threads, dataset=args.dataset)
    print(format_rows(rows))
    ok = all(r["agree"] for r in rows)
    if n_break:
        b = conv2_breakdown(n=n_break, n_train=n_fast, seed=args.seed, threads=args.threads, dataset=args.dataset)
        print(format_breakdown(b))
        ok = ok and b["identical"]
    if not ok:
        print("MISMATCH: the fast path and the reference disagree")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
