"""Euler sampler for the rectified-flow MoC DiT, with classifier-free guidance and per-shot
timesteps (shots given in `keep` stay clean at t = 0 and act as conditions; the others are
integrated from noise at t = 1 down to t = 0).

    v = v_null + guidance * (v_text - v_null),   x <- x - (t_now - t_next) * v
The null condition is every caption all `<pad>` (what caption dropout trains).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch


@torch.no_grad()
def sample(model, text: torch.Tensor, frames: Sequence[int], steps: int = 20, guidance: float = 3.0,
           mode: str = "moc", chunk_frames: Optional[int] = None, top_k: Optional[int] = None,
           causal: Optional[bool] = None, seeds: Optional[Sequence[int]] = None,
           keep: Optional[torch.Tensor] = None, keep_shots: Optional[Sequence[bool]] = None,
           stats: Optional[list] = None, backend: str = "auto") -> torch.Tensor:
    """Frames [B, T, 3, H, W] in [-1, 1] for captions text [B, S+1, L].

    seeds: one noise seed per shot (the storyboard's), drawn on the CPU generator.
    keep / keep_shots: clean frames [B, T, 3, H, W] and which shots to hold fixed.
    stats: a list that receives the sparsity of every layer of every model call.
    """
    cfg = model.cfg
    device = text.device
    B, S = text.shape[0], len(frames)
    T = sum(frames)
    size = cfg.image_size
    seeds = list(seeds) if seeds is not None else list(range(S))
    noise = []
    for s, f in enumerate(frames):
        g = torch.Generator().manual_seed(int(seeds[s]))
        noise.append(torch.randn(B, f, cfg.channels, size, size, generator=g))
    x = torch.cat(noise, 1).to(device)                                  # [B, T, 3, H, W]
    fixed = torch.zeros(S, dtype=torch.bool, device=device)
    if keep_shots is not None:
        fixed = torch.as_tensor(list(keep_shots), dtype=torch.bool, device=device)
    frame_shot = torch.repeat_interleave(torch.arange(S, device=device), torch.tensor(list(frames), device=device))
    fixed_frames = fixed[frame_shot][None, :, None, None, None]         # [1, T, 1, 1, 1]
    if keep is not None:
        x = torch.where(fixed_frames, keep.to(device), x)
    null = torch.zeros_like(text)
    kw = dict(frames=frames, mode=mode, chunk_frames=chunk_frames, top_k=top_k, causal=causal,
              backend=backend, stats=stats)
    ts = torch.linspace(1.0, 0.0, steps + 1).tolist()
    for t_now, t_next in zip(ts[:-1], ts[1:]):
        t_shot = torch.where(fixed, torch.zeros(S, device=device), torch.full((S,), t_now, device=device))
        t_shot = t_shot[None].expand(B, S)                              # [B, S]
        v = model(x, t_shot, text, **kw)
        if guidance != 1.0:
            v_null = model(x, t_shot, null, **kw)
            v = v_null + guidance * (v - v_null)
        x = torch.where(fixed_frames, x, x - (t_now - t_next) * v)
    return x
