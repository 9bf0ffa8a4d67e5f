"""Confidence intervals that respect how the eval's numbers were drawn: a cluster bootstrap.

Tests that share one storyboard share one generated video (and one memory probe scene shares
one noise draw), so they are not independent: a blurry video fails all its tests at once. The
bootstrap here resamples whole clusters (storyboards, scenes) with replacement and recomputes
the statistic from the pooled tests of the drawn clusters, so its interval is as wide as the
number of clusters, not of tests, allows. Percentile intervals; a fixed seed makes them
reproducible.

    means_ci({"colour": (scores, scene_ids), ...})   per-key pooled means and their intervals
    mean_ci(values, clusters)                         one key
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

DRAWS = 2000
LEVEL = 0.95


def cluster_weights(clusters: Sequence, draws: int = DRAWS, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """(unique cluster ids [C], multiplicities [draws, C]): each row is one bootstrap draw of C
    clusters with replacement."""
    ids = np.unique(np.asarray(clusters))
    rng = np.random.default_rng([seed, len(ids), 0xB007])
    w = rng.multinomial(len(ids), np.full(len(ids), 1.0 / len(ids)), size=draws).astype(np.float64)
    return ids, w


def _per_cluster(values: Sequence[float], clusters: Sequence, ids: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Sum and count of `values` per cluster id (ids order)."""
    v = np.asarray(values, np.float64)
    idx = np.searchsorted(ids, np.asarray(clusters))
    return np.bincount(idx, weights=v, minlength=len(ids)), np.bincount(idx, minlength=len(ids)).astype(np.float64)


def means_ci(
    data: Dict[str, Tuple[Sequence[float], Sequence]],
    draws: int = DRAWS,
    seed: int = 0,
    level: float = LEVEL,
    combine: Optional[Dict[str, Sequence[str]]] = None,
) -> Dict[str, dict]:
    """data: {key: (values, cluster id of each value)}. Every key is resampled with the same
    cluster draws (so combined keys see one consistent resample). Returns {key: {"score", "lo",
    "hi", "n", "clusters"}}; with combine={name: [keys]} also the mean of those keys' means per
    draw ("score" of the observed means, interval over draws; keys absent from data are left out).
    A draw in which a key has no tests is dropped from that key's interval."""
    all_clusters = np.concatenate([np.asarray(c) for _, c in data.values()]) if data else np.zeros(0)
    out: Dict[str, dict] = {}
    if len(all_clusters) == 0:
        return out
    ids, w = cluster_weights(all_clusters, draws, seed)
    boot: Dict[str, np.ndarray] = {}
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    for key, (values, clusters) in data.items():
        s, n = _per_cluster(values, clusters, ids)
        with np.errstate(invalid="ignore", divide="ignore"):
            b = (w @ s) / (w @ n)  # [draws]; nan where no tests drawn
        boot[key] = b
        ok = b[np.isfinite(b)]
        lo, hi = np.percentile(ok, q) if len(ok) else (np.nan, np.nan)
        out[key] = {
            "score": float(s.sum() / n.sum()),
            "lo": float(lo),
            "hi": float(hi),
            "n": int(n.sum()),
            "clusters": int((n > 0).sum()),
        }
    for name, keys in (combine or {}).items():
        have = [k for k in keys if k in out]
        if not have:
            continue
        b = np.mean([boot[k] for k in have], 0)
        ok = b[np.isfinite(b)]
        lo, hi = np.percentile(ok, q) if len(ok) else (np.nan, np.nan)
        out[name] = {
            "score": float(np.mean([out[k]["score"] for k in have])),
            "lo": float(lo),
            "hi": float(hi),
            "n": int(sum(out[k]["n"] for k in have)),
            "parts": have,
        }
    return out


def mean_ci(
    values: Sequence[float],
    clusters: Optional[Sequence] = None,
    draws: int = DRAWS,
    seed: int = 0,
    level: float = LEVEL,
) -> dict:
    """The mean of `values` and its cluster-bootstrap interval (clusters=None: every value its own)."""
    clusters = np.arange(len(values)) if clusters is None else clusters
    return means_ci({"x": (values, clusters)}, draws, seed, level)["x"]
