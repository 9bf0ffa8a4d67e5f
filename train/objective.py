"""Training levers that make memory pay (issue 16), each a trainer flag, off by default.

Per-shot timesteps come in three regimes (train.sample_timesteps); in the third, a prefix of
shots is clean (t = 0) and conditions the rest, as when the studio appends a shot. Only there
can an earlier shot tell the network a hidden attribute, and only at high t does it have to.

--prefix-t M,S     the noisy shots of clean-prefix samples draw their shared t again from a
                   logit-normal with mean M and std S (t = sigmoid(M + S z)); the other regimes
                   keep the default (M = 0, S = 1). Draws after all default draws, so with the
                   flag off the generator stream, hence the run, is unchanged.
--x0-weight G      clean-prefix samples weigh each noisy frame's squared velocity error by
                   max(t, T_MIN)^(2G), normalised to mean 1 over those frames. The velocity
                   error is the x̂0 error over t, so the plain loss weighs x̂0 errors by 1/t²
                   (least at high t, where memory matters); G = 1 makes it the x̂0 error itself.
--aux-weight W     a training-only head (AuxHead) predicts each recurring character's hidden
                   attributes (pattern, size class, second colour in world v2) from the final
                   hidden states of its tokens in noisy shots after its first appearance (the
                   renderer's masks say which tokens: aux_targets); W times its cross-entropy is
                   added to the loss. The head is not part of MoCDiT: checkpoints keep it under
                   "aux", exports never see it. The MoC paper has no such loss.
--curriculum N     for the first N steps, scenes are redrawn (Curriculum) until a character
                   recurs and every recurrence is within the stage's gap (the next shot first,
                   then up to all shots), with framing changes (wide <-> close-up) between
                   appearances only from half-way; after N steps the world's own mix.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .vocab import COLOURS, MAX_CAST, PATTERNS, PATTERNS_V2
from .world import Scene, size_class

T_MIN = 0.05
CURRICULUM_STRIDE = 1 << 40  # retry k of scene seed s is s + k * stride
CURRICULUM_TRIES = 64


# ---- timesteps and weights ------------------------------------------------------------------
def parse_pair(text: Optional[str], flag: str) -> Optional[Tuple[float, float]]:
    if text is None:
        return None
    try:
        m, s = (float(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"{flag} {text!r}: use MEAN,STD, e.g. 1.0,1.0") from None
    if s < 0:
        raise ValueError(f"{flag} {text!r}: STD must be >= 0")
    return m, s


def prefix_rows(t_shot: torch.Tensor) -> torch.Tensor:
    """[B] True for samples in the clean-prefix regime (shot 0 at t = 0: the other regimes draw
    t from a logit-normal, never exactly 0)."""
    return t_shot[:, 0] == 0


def prefix_t(t_shot: torch.Tensor, spec: Optional[Tuple[float, float]], gen: torch.Generator) -> torch.Tensor:
    """--prefix-t: the noisy shots of clean-prefix samples get a new shared t ~ sigmoid(M + S z)."""
    if spec is None:
        return t_shot
    B = t_shot.shape[0]
    z = torch.randn(B, 1, generator=gen, device=t_shot.device)
    new = torch.sigmoid(spec[0] + spec[1] * z).expand_as(t_shot)
    swap = prefix_rows(t_shot)[:, None] & (t_shot > 0)
    return torch.where(swap, new, t_shot)


def frame_weights(t: torch.Tensor, t_shot: torch.Tensor, gamma: float) -> torch.Tensor:
    """--x0-weight: [B, T] factors for the squared error of each frame (1 where off). No host
    sync (nothing here waits for the GPU)."""
    r = torch.ones_like(t)
    if gamma <= 0:
        return r
    sel = prefix_rows(t_shot)[:, None] & (t > 0)
    w = t.clamp(min=T_MIN).pow(2 * gamma)
    mean = (w * sel).sum() / sel.sum().clamp(min=1)
    return torch.where(sel, w / mean.clamp(min=1e-12), r)


# ---- curriculum -----------------------------------------------------------------------------
def recurrences(scene: Scene) -> List[Tuple[int, int, int, bool]]:
    """(character, previous shot showing it, this shot, framing changed) for every appearance
    of a character after its first."""
    last: Dict[int, int] = {}
    out = []
    for s, shot in enumerate(scene.shots):
        for a in shot.actors:
            if a.char in last:
                p = last[a.char]
                out.append((a.char, p, s, scene.shots[p].framing != shot.framing))
            last[a.char] = s
    return out


class Curriculum:
    """Stage of step s (frac = s / steps): largest gap 1 + floor(frac * (shots - 1)) shots,
    framing changes allowed from frac >= 0.5; from step `steps` on, no constraint."""

    def __init__(self, steps: int, shots: int, tries: int = CURRICULUM_TRIES):
        self.steps, self.shots, self.tries = int(steps), int(shots), int(tries)

    def limits(self, step: int) -> Optional[Tuple[int, bool]]:
        if self.steps <= 0 or step >= self.steps:
            return None
        frac = step / self.steps
        return 1 + int(frac * (self.shots - 1)), frac >= 0.5

    def fits(self, scene: Scene, step: int) -> bool:
        lim = self.limits(step)
        if lim is None:
            return True
        rec = recurrences(scene)
        return bool(rec) and all(b - a <= lim[0] and (lim[1] or not changed) for _, a, b, changed in rec)

    def scene(self, draw: Callable[[int], Scene], seed: int, step: int) -> Scene:
        """The first of draw(seed), draw(seed + stride), ... that fits the stage (a pure function
        of seed and step); after `tries` misses the last draw."""
        scene = draw(seed)
        k = 1
        while not self.fits(scene, step) and k < self.tries:
            scene = draw(seed + k * CURRICULUM_STRIDE)
            k += 1
        return scene


# ---- auxiliary head -------------------------------------------------------------------------
AUX_CLASSES = (len(PATTERNS), 2, len(COLOURS))  # pattern (v1 and v2 have 4 each), size class, colour2
assert len(PATTERNS) == len(PATTERNS_V2)


def aux_targets(
    scene: Scene, visible: Sequence[Dict[int, np.ndarray]], size: int, patch: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Targets of the auxiliary head for one scene. visible: render_shot(..., masks=True)'s
    per-shot {character: bool [F, size, size]}. Returns
      cover  float32 [MAX_CAST, T, G, G]: share of each patch that character c+1 covers, in
             shots after the first that shows it (0 in that shot and before),
      labels int64 [MAX_CAST, 3]: pattern index (PATTERNS or PATTERNS_V2 by world version),
             size class, colour2 index in COLOURS (-1 in v1); -1 everywhere for absent ids."""
    frames = [s.frames for s in scene.shots]
    T, G = sum(frames), size // patch
    cover = np.zeros((MAX_CAST, T, G, G), np.float32)
    seen = set()
    f0 = 0
    for s, (shot, vis) in enumerate(zip(scene.shots, visible)):
        F_ = frames[s]
        for cid, m in vis.items():
            if cid in seen:
                cover[cid - 1, f0 : f0 + F_] = m.reshape(F_, G, patch, G, patch).mean(axis=(2, 4))
        seen.update(a.char for a in shot.actors)
        f0 += F_
    labels = np.full((MAX_CAST, 3), -1, np.int64)
    names = PATTERNS if scene.version == 1 else PATTERNS_V2
    colours = list(COLOURS)
    for c in scene.cast:
        labels[c.id - 1] = (
            names.index(c.pattern),
            size_class(c, scene.version),
            -1 if c.colour2 is None else colours.index(c.colour2),
        )
    return cover, labels


class AuxHead(nn.Module):
    """Training only: linear read-outs of a character's hidden attributes from the mean of its
    tokens' final hidden states (layer-normed). Not part of MoCDiT, never exported."""

    def __init__(self, dim: int):
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(dim, n) for n in AUX_CLASSES)
        self.last: Optional[torch.Tensor] = None  # the last loss() (the trainer logs it)

    def loss(
        self, h: torch.Tensor, cover: torch.Tensor, labels: torch.Tensor, noisy: torch.Tensor, min_cover: float = 0.5
    ) -> torch.Tensor:
        """h [B, Nv, d] hidden states (token order T, G, G); cover [B, C, T, G, G]; labels
        [B, C, 3]; noisy [B, T] 0/1 (frames whose loss counts). Mean cross-entropy over the
        attributes with at least one labelled character covering >= min_cover patches."""
        cov = (cover.float() * noisy.float()[:, None, :, None, None]).flatten(2)  # [B, C, Nv]
        mass = cov.sum(-1)  # [B, C]
        pooled = torch.einsum("bcn,bnd->bcd", cov, h.float()) / mass.clamp(min=1e-6)[..., None]
        pooled = F.layer_norm(pooled, pooled.shape[-1:])
        keep = mass >= min_cover
        total = h.float().sum() * 0.0  # keeps the graph connected when nothing counts
        n = total.detach()
        for k, head in enumerate(self.heads):  # masked, not indexed: no host sync
            y = labels[..., k]
            ok = (keep & (y >= 0)).float()
            ce = F.cross_entropy(head(pooled).flatten(0, 1), y.clamp(min=0).flatten(), reduction="none").view_as(ok)
            total = total + (ce * ok).sum() / ok.sum().clamp(min=1)
            n = n + (ok.sum() > 0).float()
        return total / n.clamp(min=1)


class HiddenCapture:
    """Context manager: the input of model.final (the video stream's last hidden states)."""

    def __init__(self, model: nn.Module):
        self.final = getattr(model, "module", model).final
        self.h: Optional[torch.Tensor] = None

    def __enter__(self):
        def hook(_mod, inputs):
            self.h = inputs[0]

        self.handle = self.final.register_forward_pre_hook(hook)
        return self

    def __exit__(self, *exc):
        self.handle.remove()
