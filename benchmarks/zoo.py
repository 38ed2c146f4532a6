"""Benchmark: the paradigm zoo's plasticity rules on an n x n projection (default 1000 x 1000).

Four rules, each timed two ways in one run and printed as ratios (snnlab's vectorised tensor step
against a straightforward per-synapse Python loop written from the definitions):

1. R-STDP with eligibility traces (``snnlab.learning.reward.rstdp_step``: Florian MSTDPET x dopamine),
2. homeostatic synaptic scaling (``snnlab.learning.homeostasis.synaptic_scaling_step``),
3. Tsodyks-Markram short-term plasticity with one (x, u) state per synapse
   (``snnlab.learning.stp.tm_step`` on an ``[n, n]`` state, then the postsynaptic currents),
4. structural plasticity: one prune-and-regrow event at 10 % density (``prune_and_regrow``).

The per-synapse loop is far too slow for 10^6 synapses, so it runs on a SLICE: every per-neuron
loop (traces, rates) in full, the per-synapse loop for the first few postsynaptic rows only, for a few
steps; its time per row is EXTRAPOLATED linearly to all n rows, and the output says so. The same loop
code runs twice: over Python lists (the fastest per-synapse loop one can write in Python) and over
torch tensors indexed element by element (how per-synapse code over tensors is usually written).
snnlab's STP keeps one (x, u) per presynaptic neuron (exact when an axon's synapses share U, tau_d
and tau_f, as here) and gets the currents by one matrix-vector product; the loop keeps one (x, u)
per synapse, as per-synapse implementations do. Both give the same currents (checked). On the slice
the loop and snnlab start from the same state and inputs, and the script prints the largest
difference between them (structural: whether the same synapses were pruned and the counts kept;
regrowth sites come from different random generators, so they are not compared).

Usage: ``python benchmarks/zoo.py [--quick] [--n 1000] [--steps 20] [--rows 10] [--seed 0] [--threads N]``.
The machine may be shared: compare the ratios, not the absolute times.
"""
from __future__ import annotations

import argparse
import math
import random
import statistics
import time

import torch


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _time_loop(loop, make_containers, rows, n_rows_total, ref_steps, element_rows):
    """Seconds per step of the per-synapse loop, EXTRAPOLATED from ``rows`` rows to all rows.

    ``loop(containers, rows, step) -> (t_neurons, t_synapses)`` runs one step and times its per-neuron
    part (run in full) and its per-synapse part (``rows`` rows) separately. It runs on Python lists
    (the fastest loop one can write) and, for ``element_rows`` rows and one step, on torch tensors
    indexed element by element (how per-synapse code over tensors is usually written).
    Returns ``(list_seconds_per_step, tensor_seconds_per_step, list_containers)``.
    """
    c = make_containers("list")
    tn = ts = 0.0
    for t in range(ref_steps):
        a, b = loop(c, rows, t)
        tn, ts = tn + a, ts + b
    per_step_list = (tn + ts * n_rows_total / rows) / ref_steps
    ct = make_containers("tensor")
    a, b = loop(ct, element_rows, 0)
    per_step_tensor = a + b * n_rows_total / element_rows
    return per_step_list, per_step_tensor, c


def _containers(kind, **arrays):
    """Nested Python lists, or the tensors themselves (indexed element by element in the loop)."""
    if kind == "list":
        return {k: (v.tolist() if torch.is_tensor(v) else v) for k, v in arrays.items()}
    return {k: (v.clone() if torch.is_tensor(v) else v) for k, v in arrays.items()}


# --------------------------------------------------------------------------- R-STDP with eligibility
def bench_rstdp(n, steps, rows, gen, dtype):
    from snnlab.learning.reward import DEFAULT_RULE, DopamineParams, rstdp_init, rstdp_step

    p, da = DEFAULT_RULE, DopamineParams()
    pre = (torch.rand(steps, 1, n, generator=gen) < 0.05).to(dtype)
    post = (torch.rand(steps, 1, n, generator=gen) < 0.05).to(dtype)
    reward = [1.0 if t % 7 == 0 else 0.0 for t in range(steps)]
    w0 = (0.1 * torch.rand(n, n, generator=gen, dtype=torch.float64)).to(dtype)

    def ours(n_steps=steps):
        state = rstdp_init(1, n, n, dtype=dtype)
        w = w0.clone()
        for t in range(n_steps):
            dw, state = rstdp_step(pre[t], post[t], state, w, reward_pulse=reward[t], params=p, dopamine=da)
            w += dw
        return w

    e_p, e_m = math.exp(-1 / p.tau_plus_ms), math.exp(-1 / p.tau_minus_ms)
    e_z, e_d = math.exp(-1 / p.tau_z_ms), math.exp(-1 / da.tau_da_ms)

    def make(kind):
        c = _containers(kind, pre=pre[:, 0].double(), post=post[:, 0].double(), w=w0[:rows].double(),
                        z=torch.zeros(rows, n, dtype=torch.float64), pp=torch.zeros(n, dtype=torch.float64),
                        pm=torch.zeros(n, dtype=torch.float64))
        c["d"] = 0.0
        return c

    def loop(c, n_rows, t):
        s0 = time.perf_counter()
        c["d"] = d = c["d"] * e_d + reward[t]
        pp, pm, pre_t, post_t = c["pp"], c["pm"], c["pre"][t], c["post"][t]
        for j in range(n):
            pp[j] = pp[j] * e_p + p.a_plus * pre_t[j]
        for i in range(n):
            pm[i] = pm[i] * e_m + p.a_minus * post_t[i]
        s1 = time.perf_counter()
        for i in range(n_rows):
            zi, wi, si, mi = c["z"][i], c["w"][i], post_t[i], pm[i]
            for j in range(n):
                zeta = pp[j] * si + mi * pre_t[j]
                zi[j] = zi[j] * e_z + zeta / p.tau_z_ms
                wi[j] = min(max(wi[j] + p.gamma * (d - da.baseline) * zi[j], p.w_min), p.w_max)
        return s1 - s0, time.perf_counter() - s1

    ref_steps = min(steps, 3)
    t_list, t_tensor, c = _time_loop(loop, make, rows, n, ref_steps, element_rows=1)
    diff = float((ours(ref_steps)[:rows].double() - torch.tensor(c["w"], dtype=torch.float64)).abs().max())
    return ours, t_list, t_tensor, diff


# --------------------------------------------------------------------------- homeostatic scaling
def bench_scaling(n, steps, rows, gen, dtype):
    from snnlab.learning.homeostasis import ScalingParams, ScalingState, synaptic_scaling_step

    p = ScalingParams()
    post = (torch.rand(steps, 1, n, generator=gen) < 0.02).to(dtype)
    w0 = torch.rand(n, n, generator=gen, dtype=torch.float64).to(dtype)
    rate0 = (20.0 * torch.rand(1, n, generator=gen, dtype=torch.float64)).to(dtype)

    def ours(n_steps=steps):
        state, w = ScalingState(rate0.clone()), w0.clone()
        for t in range(n_steps):
            dw, state = synaptic_scaling_step(post[t], state, w, params=p, dt=1.0)
            w += dw
        return w

    a = math.exp(-1 / p.tau_rate_ms)

    def make(kind):
        return _containers(kind, post=post[:, 0].double(), w=w0[:rows].double(), rate=rate0[0].double())

    def loop(c, n_rows, t):
        s0 = time.perf_counter()
        rate, post_t = c["rate"], c["post"][t]
        for i in range(n):
            rate[i] = rate[i] * a + (1 - a) * post_t[i] * 1000.0
        s1 = time.perf_counter()
        for i in range(n_rows):
            err = (p.target_rate_hz - rate[i]) / p.target_rate_hz
            wi = c["w"][i]
            for j in range(n):
                wi[j] = wi[j] + (1.0 / p.tau_scale_ms) * err * wi[j]
        return s1 - s0, time.perf_counter() - s1

    ref_steps = min(steps, 3)
    t_list, t_tensor, c = _time_loop(loop, make, rows, n, ref_steps, element_rows=1)
    diff = float((ours(ref_steps)[:rows].double() - torch.tensor(c["w"], dtype=torch.float64)).abs().max())
    return ours, t_list, t_tensor, diff


# --------------------------------------------------------------------------- Tsodyks-Markram
def bench_stp(n, steps, rows, gen, dtype):
    from snnlab.learning.stp import TMParams, tm_init, tm_step

    p = TMParams(U=0.2, tau_d_ms=200.0, tau_f_ms=500.0)
    pre = (torch.rand(steps, 1, n, generator=gen) < 0.05).to(dtype)
    w = torch.rand(n, n, generator=gen, dtype=torch.float64).to(dtype)

    def ours(n_steps=steps):
        # all synapses of one axon share U, tau_d, tau_f, so they share (x, u): one state per
        # presynaptic neuron is exact, and the currents are one matrix-vector product
        state = tm_init((1, n), params=p, dtype=dtype)
        current = None
        for t in range(n_steps):
            r, state = tm_step(pre[t], state, params=p, dt=1.0)
            current = r @ w.T
        return current[0]

    e_d, e_f = math.exp(-1 / p.tau_d_ms), math.exp(-1 / p.tau_f_ms)

    def make(kind):
        c = _containers(kind, pre=pre[:, 0].double(), w=w[:rows].double(), x=torch.ones(rows, n, dtype=torch.float64),
                        u=torch.zeros(rows, n, dtype=torch.float64))
        c["current"] = [0.0] * rows
        return c

    def loop(c, n_rows, t):
        s0 = time.perf_counter()
        pre_t = c["pre"][t]
        for i in range(n_rows):      # one (x, u) per synapse, as per-synapse implementations keep it
            xi, ui, wi, total = c["x"][i], c["u"][i], c["w"][i], 0.0
            for j in range(n):
                if pre_t[j]:
                    ui[j] = ui[j] + p.U * (1 - ui[j])
                    r = ui[j] * xi[j]
                    xi[j] = xi[j] - r
                    total += wi[j] * r
                xi[j] = 1 - (1 - xi[j]) * e_d
                ui[j] = ui[j] * e_f
            c["current"][i] = float(total)
        return 0.0, time.perf_counter() - s0

    ref_steps = min(steps, 3)
    t_list, t_tensor, c = _time_loop(loop, make, rows, n, ref_steps, element_rows=1)
    diff = float((ours(ref_steps)[:rows].double() - torch.tensor(c["current"], dtype=torch.float64)).abs().max())
    return ours, t_list, t_tensor, diff


# --------------------------------------------------------------------------- structural plasticity
def bench_structural(n, rows, gen, seed, dtype):
    from snnlab.learning.structural import RewiringParams, prune_and_regrow, random_mask

    p = RewiringParams(fraction=0.1, w_init=0.05)
    mask = random_mask(n, n, max(1, n // 10), generator=gen)
    w = (torch.rand(n, n, generator=gen, dtype=torch.float64) * mask).to(dtype)
    result = {}

    def ours():
        result["out"] = prune_and_regrow(w, mask, params=p, generator=torch.Generator().manual_seed(seed))

    def make(kind):
        return _containers(kind, w=w[:rows].double(), m=mask[:rows])

    def loop(c, n_rows, _t):
        rng = random.Random(seed)
        c["pruned"] = []
        start = time.perf_counter()
        for i in range(n_rows):
            wi, mi = c["w"][i], c["m"][i]
            live = [j for j in range(n) if mi[j]]
            vacant = [j for j in range(n) if not mi[j]]
            k = int(p.fraction * len(live))
            weakest = sorted(live, key=lambda j: (abs(float(wi[j])), j))[:k]
            for j in weakest:
                mi[j] = False
                wi[j] = 0.0
            for j in rng.sample(vacant, k):
                mi[j] = True
                wi[j] = p.w_init
            c["pruned"].append(sorted(weakest))
        return 0.0, time.perf_counter() - start

    t_list, t_tensor, c = _time_loop(loop, make, rows, n, 1, element_rows=max(1, rows // 4))
    ours()
    new_w, new_mask, pruned, _ = result["out"]
    same_pruned = all(torch.nonzero(pruned[i]).flatten().tolist() == c["pruned"][i] for i in range(rows))
    counts_kept = bool(torch.equal(new_mask.sum(1), mask.sum(1))) and all(
        sum(c["m"][i]) == int(mask[i].sum()) for i in range(rows))
    return ours, t_list, t_tensor, same_pruned and counts_kept


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--n", type=int, default=None, help="projection size n (n x n synapses); default 1000")
    parser.add_argument("--steps", type=int, default=None, help="time steps timed for snnlab; default 20")
    parser.add_argument("--rows", type=int, default=None, help="postsynaptic rows the Python loop runs; default 10")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    n = args.n if args.n is not None else (100 if args.quick else 1000)
    steps = args.steps if args.steps is not None else (5 if args.quick else 20)
    rows = args.rows if args.rows is not None else (5 if args.quick else 10)
    if n < 1:
        parser.error(f"--n must be >= 1, got {n}")
    if steps < 1:
        parser.error(f"--steps must be >= 1, got {steps}")
    if not 1 <= rows <= n:
        parser.error(f"--rows must be in [1, n={n}], got {rows}")
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    import snnlab  # noqa: F401  (quiets the Triton log line)

    gen = torch.Generator().manual_seed(args.seed)
    repeats = 3 if args.quick else 5
    dtype = torch.float32
    print(f"paradigm zoo benchmark: {n} x {n} projection, snnlab in float32, torch threads {torch.get_num_threads()}")
    print(f"snnlab: median of {repeats} runs of {steps} steps. Per-synapse Python loop: {rows} of {n} rows "
          f"(python lists) and 1 row (torch tensors indexed element-wise), <= 3 steps, EXTRAPOLATED linearly "
          f"to {n} rows; per-neuron loops run in full\n")
    header = (f"{'rule':<36}{'snnlab/step':>12}{'loop(lists)':>13}{'ratio':>8}{'loop(tensor)':>14}{'ratio':>9}"
              f"   agreement on the slice")
    print(header)
    print("-" * len(header))
    ratios = []
    for name, bench in (("R-STDP + eligibility (MSTDPET x DA)", bench_rstdp),
                        ("homeostatic synaptic scaling", bench_scaling),
                        ("Tsodyks-Markram STP", bench_stp)):
        ours, t_list, t_tensor, diff = bench(n, steps, rows, gen, dtype)
        ours()  # warm-up
        t_ours = _median_time(ours, repeats) / steps
        ratios.append((name, t_list / t_ours, t_tensor / t_ours))
        print(f"{name:<36}{t_ours * 1e3:>9.3f} ms{t_list * 1e3:>10.1f} ms{t_list / t_ours:>7.0f}x"
              f"{t_tensor * 1e3:>11.0f} ms{t_tensor / t_ours:>8.0f}x   max |diff| = {diff:.1e}")
    ours, t_list, t_tensor, agree = bench_structural(n, min(rows * 2, n), gen, args.seed, dtype)
    ours()
    t_ours = _median_time(ours, repeats)
    name = "structural prune+regrow (per event)"
    ratios.append((name, t_list / t_ours, t_tensor / t_ours))
    print(f"{name:<36}{t_ours * 1e3:>9.3f} ms{t_list * 1e3:>10.1f} ms{t_list / t_ours:>7.0f}x"
          f"{t_tensor * 1e3:>11.0f} ms{t_tensor / t_ours:>8.0f}x   same pruned set, counts kept: "
          f"{'yes' if agree else 'NO'}")
    print("\nratios, loop over lists / snnlab (loop over tensor elements / snnlab): "
          + "; ".join(f"{nm} {a:.0f}x ({b:.0f}x)" for nm, a, b in ratios))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
