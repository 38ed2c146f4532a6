"""DA-SSDP under torch.distributed: two gloo ranks on CPU, same initial weights, different batches.

With ``ddp_sync=False`` (what the released code does) each rank adds the dW of its own shard, so the
replicas drift apart; with ``ddp_sync=True`` the per-site sums are all-reduced, so both ranks add the
same dW and end bit-identical, equal to one process that sees the concatenation of both shards.
The references are computed here from the rule's definition (gate="constant", so G_b = 1)::

    dW = clip(mean_b exp(-(t_post_bo - t_pre_bi)^2 / (2 sigma^2)) (A+ l_boi - A- (1 - l_boi)), -1, 1)
"""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from snnlab.plasticity.dassdp import variant_params

pytestmark = pytest.mark.slow  # two torch.distributed processes

T, B, C_IN, C_OUT, STEPS, WORLD = 4, 8, 6, 5, 5, 2
JOIN_TIMEOUT_S = 90

# Each rank: the same seeded Linear (site "fc", fed [T, B, C] spikes), its own rank-seeded batches,
# STEPS calls of plast.step; once with ddp_sync=False, once with ddp_sync=True. It saves the initial
# weight, its batches and both final weights for the test to check.
WORKER = textwrap.dedent(f"""
    import sys
    import torch
    import torch.distributed as dist
    import torch.nn as nn
    from snnlab.plasticity.dassdp import DASSDP, variant_params

    store, out, rank = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method="file://" + store, rank=rank, world_size={WORLD})

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear({C_IN}, {C_OUT})

        def forward(self, x):               # x [T, B, C_in] spikes -> [T, B, C_out]
            return self.fc(x)

    gen = torch.Generator().manual_seed(1000 + rank)      # different batches on each rank
    xs = [(torch.rand({T}, {B}, {C_IN}, generator=gen) < 0.35).float() for _ in range({STEPS})]
    result = {{"xs": xs}}
    for sync in (False, True):
        torch.manual_seed(0)                               # identical initial weights on both ranks
        model = Tiny().train()
        result["w0"] = model.fc.weight.detach().clone()
        result["b"] = model.fc.bias.detach().clone()
        plast = DASSDP(model, variant_params("paper", sites=("fc",), warmup_epochs=0, gate="constant",
                                             latency="first", ddp_sync=sync))
        for x in xs:
            y = model(x)
            plast.step(y.mean(dim=(0, 2)).detach())       # per-sample losses [B] (the gate is constant)
        plast.remove()
        result["sync" if sync else "nosync"] = model.fc.weight.detach().clone()
    torch.save(result, out)
    dist.barrier()
    dist.destroy_process_group()
""")


def reference_run(w0, bias, batches, a_plus, a_minus, sigma):
    """Single process, float64: forward each batch, dW from the rule's definition (G = 1), W += dW."""
    w = w0.double().clone()
    margin = float("inf")                                 # smallest |output|: how far from a spike flip
    for x in batches:
        x = x.double()
        out = x @ w.T + bias.double()                     # [T, B, C_out]
        margin = min(margin, float(out.abs().min()))
        pre_seq, post_seq = x > 0, out > 0
        steps = torch.arange(x.shape[0], dtype=torch.float64).view(-1, 1, 1)
        t_pre = torch.where(pre_seq, steps, float(x.shape[0])).amin(0)     # first spike, T if silent
        t_post = torch.where(post_seq, steps, float(x.shape[0])).amin(0)
        pre, post = pre_seq.any(0).double(), post_seq.any(0).double()     # [B, C_in], [B, C_out]
        l = post[:, :, None] * pre[:, None, :]
        g = torch.exp(-(t_post[:, :, None] - t_pre[:, None, :]) ** 2 / (2 * sigma**2))
        w += (g * (a_plus * l - a_minus * (1 - l))).mean(0).clamp(-1, 1)
    return w, margin


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
        pytest.skip("torch.distributed with the gloo backend is not available in this torch build")
    tmp = tmp_path_factory.mktemp("dassdp_ddp")
    script = tmp / "worker.py"
    script.write_text(WORKER)
    store = tmp / "store"                                 # FileStore rendezvous: no port to pick or race for
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(script), str(store), str(tmp / f"rank{r}.pt"), str(r)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for r in range(WORLD)]
    logs = []
    try:
        for p in procs:
            try:
                _, err = p.communicate(timeout=JOIN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pytest.fail(f"a DA-SSDP rank did not finish within {JOIN_TIMEOUT_S} s (deadlocked collective?)")
            logs.append(err)
    finally:
        for p in procs:                                   # only the two workers started here
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    for r, (p, err) in enumerate(zip(procs, logs)):
        assert p.returncode == 0, f"rank {r} exited with {p.returncode}:\n{err[-3000:]}"
    return [torch.load(tmp / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


def rule_params():
    p = variant_params("paper", gate="constant", latency="first")
    return p.a_plus, p.a_minus, p.sigma


def test_ranks_start_identical_and_see_different_spiking_batches(ranks):
    r0, r1 = ranks
    assert torch.equal(r0["w0"], r1["w0"]) and torch.equal(r0["b"], r1["b"])
    assert not any(torch.equal(a, b) for a, b in zip(r0["xs"], r1["xs"]))
    rates = [float(x.mean()) for r in ranks for x in r["xs"]]
    assert min(rates) > 0.1, rates                        # a positive spike rate, so dW is non-zero


def test_without_ddp_sync_the_replicas_drift_apart(ranks):
    r0, r1 = ranks
    diff = float((r0["nosync"] - r1["nosync"]).abs().max())
    moved = float((r0["nosync"] - r0["w0"]).abs().max())
    assert diff > 1e-5, (f"ddp_sync=False: replicas should differ after {STEPS} steps on different batches, "
                         f"max |W_rank0 - W_rank1| = {diff:.3g} (each rank moved by up to {moved:.3g})")
    # each rank applied the dW of its own shard only (the released behaviour)
    for r, res in enumerate(ranks):
        ref, margin = reference_run(res["w0"], res["b"], res["xs"], *rule_params())
        assert margin > 1e-4, f"rank {r}: an output is {margin:.2g} from 0, a spike could flip on rounding"
        torch.testing.assert_close(res["nosync"].double(), ref, rtol=0, atol=1e-6)
    print(f"\nddp_sync=False: max |W_rank0 - W_rank1| = {diff:.4g} after {STEPS} steps "
          f"(max |W - W0| on rank 0 = {moved:.4g})")


def test_with_ddp_sync_the_replicas_stay_identical_and_match_the_full_batch(ranks):
    r0, r1 = ranks
    diff = float((r0["sync"] - r1["sync"]).abs().max())
    assert torch.equal(r0["sync"], r1["sync"]), f"ddp_sync=True: replicas differ by up to {diff:.3g}"
    # one process on the concatenation of both ranks' batches (2B samples per step), same constant gate
    full = [torch.cat([a, b], dim=1) for a, b in zip(r0["xs"], r1["xs"])]
    ref, margin = reference_run(r0["w0"], r0["b"], full, *rule_params())
    assert margin > 1e-4, f"an output is {margin:.2g} from 0, a spike could flip on rounding"
    assert float((ref - r0["w0"].double()).abs().max()) > 1e-5   # the reference did move
    torch.testing.assert_close(r0["sync"].double(), ref, rtol=0, atol=1e-6)
    # and the synced result is not simply either rank's local run
    assert not torch.equal(r0["sync"], r0["nosync"]) and not torch.equal(r0["sync"], r1["nosync"])
