"""DA-SSDP overhead: one training step with the rule against without, same model and batch, side by side.

Steps of the two set-ups are interleaved (A, B, A, B, ...) so machine load hits both alike; the figure
that matters is the ratio of the median step times (aim: <= 1.05). Also printed: the nano step time in
the public code's configuration (16x16, T 4, batch 64; the public SpikingResformer code took about 1 s
per step on these machines) and, when CUDA is present, the CIFAR variant's training images/s with AMP.

    python benchmarks/dassdp.py            # nano, 16x16, T 4, batch 64
    python benchmarks/dassdp.py --quick    # tiny sizes, a smoke test (< 20 s)
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

import snnlab  # noqa: F401
from snnlab.models.spikingresformer import spikingresformer
from snnlab.plasticity.dassdp import DASSDP, variant_params


def make(variant, img, seed, dev, **kw):
    torch.manual_seed(seed)
    model = spikingresformer(variant, img_size=img, **kw).to(dev)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-3)


def step(model, opt, x, y, plast=None, scaler=None, amp=False):
    with torch.autocast(x.device.type, dtype=torch.float16, enabled=amp):
        logits = model(x)
    loss_b = F.cross_entropy(logits.float(), y, reduction="none")
    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss_b.mean()).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss_b.mean().backward()
        opt.step()
    if plast is not None:
        plast.step(loss_b)
    if x.device.type == "cuda":
        torch.cuda.synchronize()


def overhead(variant, img, batch, steps, dev, in_ch, classes, variant_rule):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, in_ch, img, img, generator=g).to(dev)
    y = torch.randint(0, classes, (batch,), generator=g).to(dev)
    base, opt_b = make(variant, img, 0, dev, in_channels=in_ch, num_classes=classes)
    rule, opt_r = make(variant, img, 0, dev, in_channels=in_ch, num_classes=classes)
    plast = DASSDP(rule, variant_params(variant_rule, warmup_epochs=0))
    plast.set_epoch(0)
    for _ in range(2):  # warm-up: allocator, first-call costs
        step(base, opt_b, x, y)
        step(rule, opt_r, x, y, plast)
    tb, tr, tp = [], [], []
    for _ in range(steps):
        t = time.perf_counter(); step(base, opt_b, x, y); tb.append(time.perf_counter() - t)
        t = time.perf_counter(); step(rule, opt_r, x, y, plast); tr.append(time.perf_counter() - t)
    # the rule alone, on the last recorded batch
    for _ in range(steps):
        rule.train(); rule(x)
        t = time.perf_counter(); plast.step(torch.zeros(batch, device=dev)); tp.append(time.perf_counter() - t)
    mb, mr = statistics.median(tb), statistics.median(tr)
    return {"variant": variant, "img": img, "batch": batch, "steps": steps, "rule": variant_rule,
            "step_s_baseline": mb, "step_s_dassdp": mr, "overhead_ratio": mr / mb,
            "rule_only_s": statistics.median(tp), "rule_share": statistics.median(tp) / mb}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    img, batch, steps = (8, 8, a.steps or 3) if a.quick else (16, 64, a.steps or 10)
    rows = [overhead("nano", img, batch, steps, dev, 1, 10, rule) for rule in ("paper", "released")]
    if dev.type == "cuda" and not a.quick:
        model, opt = make("cifar", 32, 0, dev)
        scaler = torch.amp.GradScaler("cuda")
        x, y = torch.rand(128, 3, 32, 32, device=dev), torch.randint(0, 10, (128,), device=dev)
        for _ in range(3):
            step(model, opt, x, y, scaler=scaler, amp=True)
        t = time.perf_counter()
        for _ in range(20):
            step(model, opt, x, y, scaler=scaler, amp=True)
        rows.append({"variant": "cifar", "device": torch.cuda.get_device_name(), "amp": True,
                     "images_per_s": 20 * 128 / (time.perf_counter() - t)})
    if a.json:
        print(json.dumps(rows))
        return 0
    print(f"device {dev}, torch threads {torch.get_num_threads()}")
    for r in rows:
        if "overhead_ratio" in r:
            print(f"{r['variant']} {r['img']}x{r['img']} T 4 batch {r['batch']} ({r['rule']}): baseline "
                  f"{r['step_s_baseline']:.3f} s/step, with DA-SSDP {r['step_s_dassdp']:.3f} s/step, "
                  f"overhead ratio {r['overhead_ratio']:.3f}; rule alone {r['rule_only_s'] * 1e3:.1f} ms "
                  f"({100 * r['rule_share']:.1f}% of a step)")
        else:
            print(f"{r['variant']} on {r['device']} with AMP: {r['images_per_s']:.0f} training images/s (batch 128)")
    print("reference: the public SpikingResformer code took about 1 s per nano step (16x16, T 4, batch 64) here")
    return 0


if __name__ == "__main__":
    sys.exit(main())
