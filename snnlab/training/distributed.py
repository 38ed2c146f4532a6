"""torchrun support of ``snnlab train``: the process group (gloo on CPU, nccl on CUDA), the replica check,
and every rank's RNG states for checkpoints (drop_path draws from each rank's own generator).
"""
import os

import torch
import torch.nn as nn

from ..errors import UsageError
from ..utils import pick_device


def init_distributed(device_name: str) -> tuple[int, int, int, torch.device]:
    """(rank, world size, local rank, device) of this process; joins the torchrun process group when
    ``WORLD_SIZE`` > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    try:
        dev = pick_device(device_name)
    except (RuntimeError, ValueError) as exc:  # cuda asked for on a machine without it: the user's choice
        raise UsageError(f"device: {exc}") from None
    if dev.type == "cuda":
        dev = torch.device("cuda", local if world > 1 else (dev.index or 0))
        torch.cuda.set_device(dev)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return rank, world, local, dev


@torch.no_grad()
def replica_max_diff(model: nn.Module) -> float:
    """Largest |w_rank - w_rank0| over all parameters and ranks (0.0 = the replicas are identical)."""
    flat = torch.cat([p.detach().flatten().float() for p in model.parameters()])
    ref = flat.clone()
    torch.distributed.broadcast(ref, 0)
    diff = (flat - ref).abs().max().reshape(1)
    torch.distributed.all_reduce(diff, op=torch.distributed.ReduceOp.MAX)
    return float(diff)


def _gather_bytes(t: torch.Tensor, dev: torch.device, world: int) -> list[torch.Tensor]:
    """Every rank's copy of a byte tensor of one shape (a collective: all ranks call it)."""
    x = t.to(device=dev, dtype=torch.int32)  # RNG states are bytes; int32 travels on gloo and nccl alike
    parts = [torch.empty_like(x) for _ in range(world)]
    torch.distributed.all_gather(parts, x)
    return [part.to("cpu", torch.uint8) for part in parts]


def rng_states(dev: torch.device, world: int) -> dict:
    """Each rank's RNG states, in rank order (a collective under DDP): drop_path draws from the global
    generator of its own rank, so rank 0's state alone cannot resume the others."""
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None
    if world == 1:
        return {"torch": [cpu], "cuda": None if cuda is None else [cuda]}
    return {"torch": _gather_bytes(cpu, dev, world),
            "cuda": None if cuda is None else _gather_bytes(cuda, dev, world)}


def restore_rng(saved: dict, dev: torch.device, rank: int, world: int) -> None:
    """Set this rank's RNG states from a checkpoint's :func:`rng_states`."""
    def mine(states):
        states = [states] if isinstance(states, torch.Tensor) else list(states)
        # another world size cannot reproduce the run anyway (the shards differ): start from rank 0's
        return states[rank] if len(states) == world else states[0]

    torch.set_rng_state(mine(saved["torch"]).to(torch.uint8))
    if dev.type == "cuda" and saved.get("cuda") is not None:
        torch.cuda.set_rng_state(mine(saved["cuda"]).to(torch.uint8), dev)
