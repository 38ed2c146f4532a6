"""Benchmark: MSTDPET on an n x n synapse matrix, batch B, T steps (default 1000 x 1000, 16, 1000).

Three implementations of the same update, timed side by side in one run and printed as ratios:

1. snnlab (``snnlab.plasticity.florian.mstdpet_step``): batch-summed eligibility, one GEMM per step.
2. a straightforward per-synapse Python loop (the way the rule is written on paper). It is far too
   slow for the full problem, so it is timed on a small slice (a few synapses, a few steps) and the
   time is extrapolated linearly to n_post x n_pre synapses x T steps; the output says so.
3. spikingjelly 2.0.0's MSTDPET (``activation_based.learning.MSTDPETLearner``). Its learner takes
   unbatched ``[I]``/``[O]`` spikes only (single-step ``nn.Linear``), so a batch of B is B learners:
   we call the functions its ``step()`` calls (``functional.learning.mstdpet_linear_step`` and
   ``mstdpet_reward_step``) once per sample per step, on a slice of the steps, extrapolated to T.
   spikingjelly's learner pairs r(t) with zeta(t-1), i.e. snnlab's ``ordering="delayed"``; the script
   checks that both give the same weight change on the timed slice.

Usage: ``python benchmarks/florian.py [--quick] [--n 1000] [--batch 16] [--steps 1000] [--seed 0] [--threads 1]``.
The machine may be shared: compare the ratios, not the absolute times.
"""
from __future__ import annotations

import argparse
import math
import time

import torch


def _spikes(gen, shape, p):
    return (torch.rand(shape, generator=gen) < p).float()


def run_snnlab(pre, post, reward, w, params, *, n_steps):
    """snnlab's vectorised MSTDPET over ``n_steps`` steps; returns (seconds, final weights)."""
    from snnlab.plasticity.florian import init_state, mstdpet_step

    state = init_state(pre.shape[1], pre.shape[2], post.shape[2], rule="mstdpet")
    w = w.clone()
    start = time.perf_counter()
    for t in range(n_steps):
        dw, state = mstdpet_step(pre[t], post[t], state, w, reward=float(reward[t]), params=params, dt=1.0)
        w += dw
    return time.perf_counter() - start, w


def run_reference_slice(pre, post, reward, params, *, n_post, n_pre, n_steps):
    """Per-synapse Python loop for the first ``n_post x n_pre`` synapses and ``n_steps`` steps.

    Written from the definitions (same-step ordering): P+ and P- per neuron and sample, then for
    every synapse and sample zeta, z and w. Returns (seconds, weights [n_post][n_pre] as lists).
    """
    batch = pre.shape[1]
    pre_l = pre[:n_steps, :, :n_pre].tolist()
    post_l = post[:n_steps, :, :n_post].tolist()
    e_plus = math.exp(-1.0 / params.tau_plus_ms)
    e_minus = math.exp(-1.0 / params.tau_minus_ms)
    e_z = math.exp(-1.0 / params.tau_z_ms)
    p_plus = [[0.0] * n_pre for _ in range(batch)]
    p_minus = [[0.0] * n_post for _ in range(batch)]
    z = [[0.0] * n_pre for _ in range(n_post)]
    w = [[0.0] * n_pre for _ in range(n_post)]
    start = time.perf_counter()
    for t in range(n_steps):
        r = float(reward[t])
        for b in range(batch):
            for j in range(n_pre):
                p_plus[b][j] = p_plus[b][j] * e_plus + params.a_plus * pre_l[t][b][j]
            for i in range(n_post):
                p_minus[b][i] = p_minus[b][i] * e_minus + params.a_minus * post_l[t][b][i]
        for i in range(n_post):
            for j in range(n_pre):
                zeta = 0.0
                for b in range(batch):
                    zeta += p_plus[b][j] * post_l[t][b][i] + p_minus[b][i] * pre_l[t][b][j]
                z[i][j] = z[i][j] * e_z + zeta / params.tau_z_ms
                w[i][j] += params.gamma * r * z[i][j]
    return time.perf_counter() - start, w


def run_spikingjelly_slice(pre, post, reward, params, *, n_steps):
    """spikingjelly 2.0.0's MSTDPET math, one unbatched learner state per sample; (seconds, dw sum)."""
    from spikingjelly.activation_based.functional import learning as sjl

    batch, n_pre, n_post = pre.shape[1], pre.shape[2], post.shape[2]
    weight = torch.zeros(n_post, n_pre)
    traces = [(torch.zeros(n_pre), torch.zeros(n_post)) for _ in range(batch)]
    elig = [torch.zeros(n_post, n_pre) for _ in range(batch)]
    trace_e = [torch.zeros(n_post, n_pre) for _ in range(batch)]
    f_pre, f_post = (lambda _w: -params.a_minus), (lambda _w: params.a_plus)
    total = torch.zeros(n_post, n_pre)
    start = time.perf_counter()
    for t in range(n_steps):
        for b in range(batch):
            new_elig, traces[b] = sjl.mstdpet_linear_step(pre[t, b], post[t, b], traces[b], weight,
                                                          tau_pre=params.tau_plus_ms, tau_post=params.tau_minus_ms,
                                                          f_pre=f_pre, f_post=f_post)
            dw, trace_e[b] = sjl.mstdpet_reward_step(float(reward[t]), elig[b], trace_e[b], tau_trace=params.tau_z_ms)
            elig[b] = new_elig
            total += params.gamma * dw
    return time.perf_counter() - start, total


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test, a few seconds)")
    parser.add_argument("--n", type=int, default=None, help="neurons per side (n_pre = n_post), default 1000")
    parser.add_argument("--batch", type=int, default=None, help="batch size B, default 16")
    parser.add_argument("--steps", type=int, default=None, help="time steps T, default 1000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: on a shared machine a 2-thread pool stalls for "
                             "whole scheduler slices, and the Python references are single-threaded anyway)")
    args = parser.parse_args(argv)
    n = args.n if args.n is not None else (64 if args.quick else 1000)
    batch = args.batch if args.batch is not None else (4 if args.quick else 16)
    n_steps = args.steps if args.steps is not None else (40 if args.quick else 1000)
    for name, value in (("--n", n), ("--batch", batch), ("--steps", n_steps), ("--threads", args.threads)):
        if value < 1:
            parser.error(f"{name} must be >= 1, got {value}")

    import snnlab  # noqa: F401  (quiets the Triton log line)
    from snnlab.plasticity.florian import FlorianParams, init_state, mstdpet_step

    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    pre = _spikes(gen, (n_steps, batch, n), 0.02)  # ~20 Hz at dt = 1 ms
    post = _spikes(gen, (n_steps, batch, n), 0.02)
    reward = torch.where(torch.rand(n_steps, generator=gen) < 0.5, 1.0, -1.0)
    params = FlorianParams(a_plus=1.0, a_minus=-1.0, gamma=0.01)
    w0 = torch.zeros(n, n)
    print(f"MSTDPET, {n} x {n} synapses, batch {batch}, {n_steps} steps, torch threads {torch.get_num_threads()}")

    # warm-up (lazy initialisation of torch kernels and thread pools is not part of the rule's cost)
    run_snnlab(pre, post, reward, w0, params, n_steps=min(n_steps, 10))
    run_spikingjelly_slice(pre, post, reward, params, n_steps=min(n_steps, 3))
    t_ours, _ = run_snnlab(pre, post, reward, w0, params, n_steps=n_steps)
    print(f"  snnlab mstdpet_step (full run, measured):           {t_ours:9.3f} s")

    ref_post, ref_pre = min(n, 4), min(n, 50)
    ref_steps = min(n_steps, 5 if args.quick else 20)
    t_ref_slice, w_ref = run_reference_slice(pre, post, reward, params, n_post=ref_post, n_pre=ref_pre, n_steps=ref_steps)
    t_ref = t_ref_slice * (n * n) / (ref_post * ref_pre) * n_steps / ref_steps
    print(f"  per-synapse Python loop (EXTRAPOLATED from {ref_post}x{ref_pre} synapses x {ref_steps} steps "
          f"= {t_ref_slice:.4f} s): {t_ref:9.4g} s")
    # correctness of the comparison: snnlab on the same slice gives the same weights
    state, w_chk = init_state(batch, ref_pre, ref_post, rule="mstdpet"), torch.zeros(ref_post, ref_pre)
    for t in range(ref_steps):
        dw, state = mstdpet_step(pre[t, :, :ref_pre], post[t, :, :ref_post], state, w_chk, reward=float(reward[t]),
                                 params=params)
        w_chk += dw
    err_ref = (w_chk - torch.tensor(w_ref)).abs().max().item()

    sj_steps = min(n_steps, 5 if args.quick else 20)
    t_sj_slice, dw_sj = run_spikingjelly_slice(pre, post, reward, params, n_steps=sj_steps)
    t_sj = t_sj_slice * n_steps / sj_steps
    print(f"  spikingjelly 2.0.0 MSTDPET, B unbatched learners (EXTRAPOLATED from {sj_steps} steps "
          f"= {t_sj_slice:.4f} s): {t_sj:9.4g} s")
    delayed = FlorianParams(a_plus=1.0, a_minus=-1.0, gamma=0.01, ordering="delayed")
    t_ours_slice, w_del = run_snnlab(pre, post, reward, w0, delayed, n_steps=sj_steps)
    err_sj = (w_del - dw_sj).abs().max().item()

    ratios = {"reference_loop_over_snnlab": t_ref / t_ours, "spikingjelly_over_snnlab": t_sj / t_ours,
              "spikingjelly_slice_over_snnlab_slice": t_sj_slice / t_ours_slice}
    print("ratios (time of X / time of snnlab; > 1 means snnlab is faster):")
    print(f"  per-synapse loop / snnlab: {ratios['reference_loop_over_snnlab']:12.4g}x   (extrapolated)")
    print(f"  spikingjelly / snnlab:     {ratios['spikingjelly_over_snnlab']:12.4g}x   (extrapolated from {sj_steps} steps)")
    print(f"  spikingjelly / snnlab on the same {sj_steps} steps (both measured): "
          f"{ratios['spikingjelly_slice_over_snnlab_slice']:.4g}x")
    print(f"agreement: max |w_snnlab - w_loop| = {err_ref:.2e} (same-step, slice); "
          f"max |w_snnlab(delayed) - w_spikingjelly| = {err_sj:.2e} ({sj_steps} steps)")
    if err_ref > 1e-4 or err_sj > 1e-4:
        raise SystemExit("benchmark: implementations disagree; the timings compare different computations")
    return ratios


if __name__ == "__main__":
    main()
