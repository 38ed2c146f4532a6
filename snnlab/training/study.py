"""The paired-seed DA-SSDP study of notebook 03 and ``scripts/dassdp_study.py``: every condition trained
from every seed (one seed = one split, initialisation and data order for all conditions), summarised by
paired differences against the baseline (:func:`snnlab.stats.summarise_paired`).
"""
from typing import Any

import numpy as np

from ..stats import summarise_paired
from ..utils import check_int, exit_with_parent
from .config import load_config
from .trainer import run

CONDITIONS: dict[str, dict[str, Any]] = {
    "baseline": {"dassdp.enabled": False},
    "released": {"dassdp.enabled": True, "dassdp.variant": "released", "dassdp.gate": "fitted"},
    "paper": {"dassdp.enabled": True, "dassdp.variant": "paper", "dassdp.gate": "fitted"},
    # the dopamine signal removed (G = 1), and the update's structure removed (noise of dW's norm)
    "k0": {"dassdp.enabled": True, "dassdp.variant": "paper", "dassdp.gate": "constant"},
    "random": {"dassdp.enabled": True, "dassdp.variant": "paper", "dassdp.gate": "fitted",
               "dassdp.control": "random"},
}


def _study_run(condition: str, cfg: dict) -> dict:
    """One run of :func:`paired_study` (a top-level function, so a process pool can call it)."""
    res = run(cfg, return_model=True)
    plast = res.pop("dassdp")
    model = res.pop("model")
    last = res["history"][-1]
    return {"condition": condition, "seed": cfg["seed"], "reported_test_acc": res["reported_test_acc"],
            "selected_epoch": res["selected_epoch"], "selected_val_acc": res["selected_val_acc"],
            "last_test_acc": res["last_test_acc"],
            "val_curve": [h["val_acc"] for h in res["history"]],
            "step_seconds": float(np.mean([h["step_seconds"] for h in res["history"]])),
            "diagnostics": {k[len("dassdp/"):]: v for k, v in last.items() if k.startswith("dassdp/")},
            "diag_curves": {k[len("dassdp/"):]: [h.get(k) for h in res["history"]]
                            for k in last if k.startswith("dassdp/")},
            "gate": {s.name: s.gate for s in plast.sites} if plast is not None else None,
            "classifier_norm": float(model.classifier.weight.detach().norm())}


def paired_study(base_overrides: dict[str, Any], *, seeds, conditions=tuple(CONDITIONS), config=None,
                 progress: bool = True, on_result=None, done: list[dict] | None = None, jobs: int = 1) -> dict:
    """Train every condition for every seed (paired: one seed = one initialisation, data order and split
    for all conditions) and summarise the test accuracy chosen on validation.

    Returns ``{"runs": [{condition, seed, reported_test_acc, selected_epoch, last diagnostics}],
    "summary": {condition: {mean, sd, n, diff_mean, diff_lo, diff_hi}}}`` (differences against
    ``baseline``, 95 % bootstrap CI and paired-t CI). ``on_result(study_so_far)`` is called after each
    run. ``done``: runs of an earlier, interrupted or shorter study with the same settings; their
    (seed, condition) pairs are kept and not trained again. ``jobs`` > 1 trains that many runs at once
    in worker processes (give each ``threads: 1``); the results do not depend on it.
    """
    from ..utils import progress as progress_bar

    check_int("jobs", jobs, minimum=1)
    unknown = set(conditions) - set(CONDITIONS)
    if unknown:
        raise ValueError(f"conditions: unknown {sorted(unknown)}; choose from {list(CONDITIONS)}")
    runs = list(done or [])
    have = {(r["seed"], r["condition"]) for r in runs}
    todo = [(s, c) for s in seeds for c in conditions if (s, c) not in have]
    cfgs = []
    for seed, cond in todo:
        cfgs.append((cond, load_config(config, {**base_overrides, **CONDITIONS[cond], "seed": seed,
                                                "progress": False})))

    def record(row):
        runs.append(row)
        runs.sort(key=lambda r: (r["seed"], list(CONDITIONS).index(r["condition"])))
        if on_result is not None:
            on_result({"runs": runs, "summary": summarise_study(runs)})

    bar = progress_bar(total=len(cfgs), desc="paired runs", disable=not progress)
    if jobs == 1:
        for cond, cfg in cfgs:
            record(_study_run(cond, cfg))
            bar.update(1)
    else:
        import concurrent.futures as cf
        import multiprocessing

        with cf.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                    initializer=exit_with_parent) as pool:
            for fut in cf.as_completed([pool.submit(_study_run, cond, cfg) for cond, cfg in cfgs]):
                record(fut.result())
                bar.update(1)
    bar.close()
    return {"runs": runs, "summary": summarise_study(runs)}



def summarise_study(runs: list[dict]) -> dict:
    """Per condition: mean and sd of the reported test accuracy; paired differences against ``baseline``
    with the 95 % bootstrap and paired-t CIs (see :func:`snnlab.stats.summarise_paired`)."""
    return summarise_paired(runs, value="reported_test_acc", group="condition", baseline="baseline")
