"""Why truncated BPTT with windows shorter than the cue-to-recall span still beats chance on notebook
04's delayed-recall task, measured over seeds.

Per seed (the notebook's task and network: ALIF, 32 hidden, memoryless readout, delay 20, 12 epochs):

* truncated BPTT, k = 10 (the windows [0,10), [10,20), [20,30): only the last holds a loss step and
  none holds both a cue step and a loss step), the state carried across windows in value;
* the same network evaluated with its state set to zero at step 20 (the last window's boundary);
* the control that also forgets the value at each boundary (``carry_state=False``);
* a linear probe of the cue from the *untrained* network's state at step 20 (v, a, z);
* k = 25 (last window [25,30)), k = 26 (window [0,26) holds the cue and loss step 25) and k = 30 = T.

Writes results/04_tbptt_carried_state.json and .md (rewritten after each seed).

    python scripts/tbptt_carried_state.py --seeds 0 1 2 3 4
"""
from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

import snnlab  # noqa: F401
from snnlab import utils
from snnlab.learning import bptt
from snnlab.learning import recurrent as rnn
from snnlab.models.recurrent import RecurrentSNN, RSNNParams
from snnlab.utils import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
BOUNDARY = 20


def one_seed(seed: int, epochs: int, delay_steps: int) -> dict:
    train = rnn.delayed_recall_task(256, delay_steps=delay_steps, generator=torch.Generator().manual_seed(seed))
    val = rnn.delayed_recall_task(256, delay_steps=delay_steps, generator=torch.Generator().manual_seed(seed + 1))
    params = RSNNParams(n_in=train.n_in, n_hidden=32, n_out=2, neuron="alif", tau_out_ms=0.0)

    def net():
        return RecurrentSNN(params, generator=torch.Generator().manual_seed(seed), in_gain=2.0)

    row = {"seed": seed, "probe_untrained": bptt.probe_carried_state(net(), train, val, step=BOUNDARY)}
    for name, k, carry in (("k10", 10, True), ("k10_reset_windows", 10, False), ("k25", 25, True),
                           ("k26", 26, True), ("k30", 30, True)):
        model = net()
        history = bptt.train(model, train, val, method="tbptt", k=k, epochs=epochs, lr=0.01, carry_state=carry,
                             generator=torch.Generator().manual_seed(seed + 1), progress=False)
        row[name] = {"val_accuracy": history["val_accuracy"]}
        if name == "k10":
            row[name]["reset_all_at_20"] = bptt.accuracy_with_reset(model, val, step=BOUNDARY)
            row[name]["reset_a_at_20"] = bptt.accuracy_with_reset(model, val, step=BOUNDARY, reset=("a",))
            row[name]["reset_vz_at_20"] = bptt.accuracy_with_reset(model, val, step=BOUNDARY, reset=("v", "z"))
            row[name]["probe_trained"] = bptt.probe_carried_state(model, train, val, step=BOUNDARY)
    return row


def summary(rows: list[dict]) -> dict:
    def stats(values):
        values = list(values)
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return {"mean": statistics.mean(values), "sd": sd, "min": min(values), "max": max(values)}

    out = {}
    for name in ("k10", "k10_reset_windows", "k25", "k26", "k30"):
        out[f"{name} final"] = stats(r[name]["val_accuracy"][-1] for r in rows)
        out[f"{name} best epoch"] = stats(max(r[name]["val_accuracy"]) for r in rows)
        out[f"{name} mean of epochs"] = stats(statistics.mean(r[name]["val_accuracy"]) for r in rows)
    for key in ("reset_all_at_20", "reset_a_at_20", "reset_vz_at_20"):
        out[f"k10 evaluated, {key}"] = stats(r["k10"][key] for r in rows)
    for part in rows[0]["probe_untrained"]:
        out[f"probe untrained, {part}"] = stats(r["probe_untrained"][part] for r in rows)
        out[f"probe k10-trained, {part}"] = stats(r["k10"]["probe_trained"][part] for r in rows)
    return out


def markdown(result: dict) -> str:
    lines = ["# Truncated BPTT on delayed recall: what crosses the window boundary", "",
             f"`{result['command']}` ({result['seconds']:.0f} s, seeds {result['seeds']}). "
             "Validation accuracy (256 trials, chance 0.5); 'best epoch' is the maximum over the "
             f"{result['epochs']} epochs. Probes: logistic regression reading the cue from the state at "
             "step 20 (fitted on the training trials, tested on the validation trials).", "",
             "| quantity | mean | sd | min | max |", "|---|---|---|---|---|"]
    for key, s in result["summary"].items():
        lines.append(f"| {key} | {s['mean']:.3f} | {s['sd']:.3f} | {s['min']:.3f} | {s['max']:.3f} |")
    lines += ["", "Per seed, final validation accuracy:", "",
              "| seed | k10 | k10 reset windows | k25 | k26 | k30 | k10 eval. reset at 20 |",
              "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['seed']} | " + " | ".join(f"{r[n]['val_accuracy'][-1]:.3f}" for n in
                     ("k10", "k10_reset_windows", "k25", "k26", "k30")) + f" | {r['k10']['reset_all_at_20']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--delay-steps", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "results" / "04_tbptt_carried_state"))
    args = parser.parse_args(argv)
    utils.limit_threads(1).apply()
    start, rows = time.time(), []
    command = "python scripts/tbptt_carried_state.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    for seed in args.seeds:
        rows.append(one_seed(seed, args.epochs, args.delay_steps))
        result = {"command": command.strip(), "seeds": [r["seed"] for r in rows], "epochs": args.epochs,
                  "seconds": time.time() - start, "summary": summary(rows), "rows": rows}
        atomic_write_text(Path(args.out + ".json"), json.dumps(result, indent=1) + "\n")
        atomic_write_text(Path(args.out + ".md"), markdown(result))
        print(f"seed {seed} done ({time.time() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
