"""Training-time augmentation of ``snnlab train``, as tensor operations (torchvision does not import on
CPU torch here): random crop after zero padding, horizontal flip, label-smoothed targets, mixup. Every
draw comes from the generator passed in, so a run's augmentation is fixed by its seed and epoch.
"""
import numpy as np
import torch
import torch.nn.functional as F


def random_crop(x: torch.Tensor, padding: int, gen: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``padding`` and crop back to the original size at a random offset per sample."""
    if padding == 0:
        return x
    B, H, W = x.shape[0], x.shape[-2], x.shape[-1]
    lead = x.shape[1:-2]
    flat = x.reshape(B, -1, H, W)
    padded = F.pad(flat, (padding,) * 4)
    oy = torch.randint(0, 2 * padding + 1, (B,), generator=gen).to(x.device)
    ox = torch.randint(0, 2 * padding + 1, (B,), generator=gen).to(x.device)
    rows = (oy[:, None] + torch.arange(H, device=x.device))[:, :, None]   # [B, H, 1]
    cols = (ox[:, None] + torch.arange(W, device=x.device))[:, None, :]   # [B, 1, W]
    b = torch.arange(B, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[b, rows, cols]                          # [B, H, W, C']
    return out.permute(0, 3, 1, 2).reshape(B, *lead, H, W)


def random_hflip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Mirror each sample left-right with probability 1/2."""
    mask = (torch.rand(x.shape[0], generator=gen) < 0.5).to(x.device)
    return torch.where(mask.view(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)


def soft_targets(y: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """One-hot targets ``[B, num_classes]`` with ``smoothing`` of the weight spread uniformly over the classes."""
    return F.one_hot(y, num_classes).float() * (1.0 - smoothing) + smoothing / num_classes


def mixup(x, targets, alpha: float, prob: float, gen: torch.Generator):
    """Mix each batch with its reversed copy: ``x' = lam x + (1 - lam) x_rev`` (same for the targets)."""
    if alpha <= 0 or float(torch.rand((), generator=gen)) >= prob:
        return x, targets
    lam = float(np.random.default_rng(int(torch.randint(0, 2**31 - 1, (), generator=gen))).beta(alpha, alpha))
    return lam * x + (1 - lam) * x.flip(0), lam * targets + (1 - lam) * targets.flip(0)
