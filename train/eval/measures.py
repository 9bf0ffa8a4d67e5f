"""The eval's measures: features of a video shot and the forced choice that turns them into scores.

Every score is a forced choice (probes.py builds the candidates): a generated shot is compared with
the ground-truth render (candidate 0) and with renders that change one thing (the alternatives);
    score = mean over alternatives of [d(video, truth) < d(video, alt)]  (a tie counts 1/2)
so 1 is "shows what the caption / the first appearance says", 0.5 is chance, 0 is "always the
alternative". The distances are chosen so that blur, a character drawn somewhere else than in the
ground truth, or a background drawn a little off hurt truth and alternatives alike:

    hist    soft colour histogram (trilinear on a 6-level RGB grid) of all frames, L1 distance.
            Position-free. L1 only counts the bins where truth and alternative differ, so for
            "is character 2 red, not blue" only the red-ish and blue-ish bins decide.
    ncc     masked normalised cross-correlation (each channel zero-mean over the mask) of the
            candidates' pixels around the character (a template per frame, support = the union of the candidates' character
            masks, dilated by one pixel), maximised over every placement in the generated frame;
            d = 1 - mean over frames of the best NCC. Position-free, contrast- and blur-tolerant.
    pix     squared distance of the time-mean frame, 2x2 average pooled (backgrounds of wide
            shots: the camera is fixed, so scenery must be where it was).
    area    how many pixels show a character's body or pattern colour: sum over pixels of
            max over those colours of w = exp(-|rgb - colour|^2 / (2 sigma^2)), averaged over frames;
            d = |area(video) - area(candidate)|. Position-, shape- and pattern-free: a size test
            that does not need the shape or the pattern drawn right.
    motion  colour-change energy of the character's body colour: sum over frames and pixels of
            |w_{t+1} - w_t| with w = exp(-|rgb - body|^2 / (2 sigma^2)), divided by (F-1) and by
            the character's mean visible area in the ground truth (how much of "its colour" moves
            per frame, in units of its own size). Position-free.

Images are uint8 [..., H, W, 3] (numpy) in and float32 in [0, 1] for NCC (torch, any device).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

HIST_LEVELS = 6  # grid points per channel (0, 51, ..., 255): 216 bins
MOTION_SIGMA = 40.0  # colour kernel width of the motion measure, in 0..255 units
FLAT = 1e-4  # ncc: a window whose variance is below FLAT * mean square is flat
TIE = 1e-6  # |d_alt - d_truth| <= TIE * (1 + |d_truth|) counts as a tie


# ---- forced choice --------------------------------------------------------------------------
def forced_choice(d: np.ndarray) -> float:
    """d [1+K] distances, truth first -> fraction of alternatives farther than the truth."""
    d = np.asarray(d, np.float64)
    dt, da = d[0], d[1:]
    tie = np.abs(da - dt) <= TIE * (1.0 + abs(dt))
    return float(np.mean(np.where(tie, 0.5, (da > dt).astype(np.float64))))


# ---- hist -----------------------------------------------------------------------------------
def soft_hist(images: np.ndarray) -> np.ndarray:
    """uint8 [..., 3] -> float64 [HIST_LEVELS**3], sums to 1 (each pixel split over 8 grid points)."""
    L = HIST_LEVELS
    v = images.reshape(-1, 3).astype(np.float32) * np.float32((L - 1) / 255.0)  # [n, 3] in [0, L-1]
    i0 = np.minimum(v.astype(np.int64), L - 2)  # [n, 3] (v >= 0: floor)
    f = v - i0  # [n, 3] in [0, 1]
    w = (1.0 - f, f)  # weight of the lower / upper point
    base = (i0[:, 0] * L + i0[:, 1]) * L + i0[:, 2]  # [n]
    hist = np.zeros(L**3, np.float64)
    for r in (0, 1):
        wr = w[r][:, 0]
        for g in (0, 1):
            wrg = wr * w[g][:, 1]
            for b in (0, 1):
                hist += np.bincount(base + (r * L + g) * L + b, weights=wrg * w[b][:, 2], minlength=L**3)
    return hist / max(1, v.shape[0])


# ---- pix ------------------------------------------------------------------------------------
def still_image(frames: np.ndarray) -> np.ndarray:
    """uint8 [F, H, W, 3] -> float32 [H//2, W//2, 3]: time mean, 2x2 average pooled."""
    m = frames.astype(np.float32).mean(0)  # [H, W, 3]
    H, W = (m.shape[0] // 2) * 2, (m.shape[1] // 2) * 2
    m = m[:H, :W]
    return m.reshape(H // 2, 2, W // 2, 2, 3).mean((1, 3))


# ---- area -----------------------------------------------------------------------------------
def colour_mass(frames: np.ndarray, colours: Sequence[Sequence[float]]) -> float:
    """Pixels near any of `colours` (soft, MOTION_SIGMA wide), per frame, averaged over frames."""
    x = frames.astype(np.float32)
    w = None
    for c in colours:
        wc = np.exp(-((x - np.asarray(c, np.float32)) ** 2).sum(-1) / (2 * MOTION_SIGMA**2))
        w = wc if w is None else np.maximum(w, wc)
    return float(w.sum() / max(1, frames.shape[0]))


# ---- motion ---------------------------------------------------------------------------------
def colour_change(frames: np.ndarray, colour: Sequence[float]) -> float:
    """Sum over pixels of |w_{t+1} - w_t|, averaged over frame pairs (0 for a single frame)."""
    if frames.shape[0] < 2:
        return 0.0
    d2 = ((frames.astype(np.float32) - np.asarray(colour, np.float32)) ** 2).sum(-1)  # [F, H, W]
    w = np.exp(-d2 / (2 * MOTION_SIGMA**2))
    return float(np.abs(np.diff(w, axis=0)).sum() / (frames.shape[0] - 1))


# ---- ncc ------------------------------------------------------------------------------------
def ncc_max(frames: torch.Tensor, templates: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """Best masked NCC of every template anywhere in every frame.

    frames [V, 3, H, W], templates [K, 3, h, w], support [h, w] (0/1), all float32 in [0, 1]
    (h <= H, w <= W) -> [V, K] in [-1, 1]. Each channel is made zero-mean over the support, so
    the score is about structure (shape, pattern, size), not about the colour; a flat window
    (see FLAT) or template scores 0.
    """
    m = support[None, None]  # [1, 1, h, w]
    n = float(support.sum())  # pixels per channel
    tz = (templates - (templates * m).sum((2, 3), keepdim=True) / n) * m  # [K, 3, h, w]
    tnorm = tz.pow(2).sum((1, 2, 3)).sqrt()  # [K]
    num = F.conv2d(frames, tz)  # [V, K, H-h+1, W-w+1]
    m3 = m.expand(3, 1, -1, -1)  # one box per channel
    s1 = F.conv2d(frames, m3, groups=3)  # [V, 3, ., .] window sums
    s2 = F.conv2d(frames * frames, m3, groups=3)  # [V, 3, ., .]
    var = (s2 - s1 * s1 / n).clamp(min=0.0).sum(1, keepdim=True)  # [V, 1, ., .] n * variance
    den = var.sqrt() * tnorm[None, :, None, None]  # [V, K, ., .]
    # flat: contrast under ~1% of the brightness (also absorbs float32 cancellation in var)
    flat = (var <= FLAT * s2.sum(1, keepdim=True)) | (tnorm[None, :, None, None] < 1e-6)
    ncc = torch.where(flat, torch.zeros_like(num), num / den.clamp(min=1e-12))
    return ncc.flatten(2).amax(-1)  # [V, K]


def to_unit(images: np.ndarray, device) -> torch.Tensor:
    """uint8 [..., H, W, 3] -> float32 [..., 3, H, W] in [0, 1] on device."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).float().div(255.0).movedim(-1, -3)
