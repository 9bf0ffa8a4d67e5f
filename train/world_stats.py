"""How visible the world's hidden attributes are at the model's patch scale (CPU, seconds).

    /usr/bin/python3 -m train.world_stats --scenes 300 [--size 64 --patch 8]

For scene i of each world version, the first character of the first shot that shows one is
re-rendered (frame 0, the same pose, feet on the same ground line) with one hidden attribute
replaced by another draw from that version's distribution: its pattern (a different one), its
size (a new radius: v1 uniform 0.08-0.14, v2 either class), its second colour (v2; invisible on
a solid body). Per pair it measures what an 8x8-patch network gets to see of the change:
  changed_px        pixels that differ (of size*size),
  patches_moved     patches whose mean colour moves by more than 16 levels (Euclidean, 0-255),
  patch_mean_share  the share of the difference's energy (sum of squares) that the patch means
                    carry (1: the change is flat inside every patch; near 0: it averages out).
Prints one JSON line per (version, attribute) with means and the share of pairs that move at
least one patch.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Dict, List, Optional

import numpy as np

from .render import render_shot
from .vocab import COLOURS, PATTERNS, PATTERNS_V2
from .world import SIZE_CLASSES_V2, SIZE_RANGE, Scene, sample_scene

STATS_SEED = 0x5EED


def patch_stats(a: np.ndarray, b: np.ndarray, patch: int) -> Dict[str, float]:
    """a, b uint8 [H, W, 3] -> changed_px, patches_moved, patch_mean_share."""
    d = a.astype(np.float64) - b.astype(np.float64)
    h, w = d.shape[:2]
    means = d.reshape(h // patch, patch, w // patch, patch, 3).mean(axis=(1, 3))  # [h/p, w/p, 3]
    energy = float((d**2).sum())
    share = float((means**2).sum() * patch * patch / energy) if energy > 0 else 0.0
    return {
        "changed_px": float((np.abs(d).sum(-1) > 0).sum()),
        "patches_moved": float((np.sqrt((means**2).sum(-1)) > 16).sum()),
        "patch_mean_share": share,
    }


def altered(scene: Scene, cid: int, attribute: str, rng: np.random.Generator) -> Optional[Scene]:
    """A copy of the scene with character cid's `attribute` redrawn; None if not applicable."""
    char = scene.character(cid)
    if attribute == "pattern":
        options = [p for p in (PATTERNS if scene.version == 1 else PATTERNS_V2) if p != char.pattern]
        new = dataclasses.replace(char, pattern=options[int(rng.integers(len(options)))])
    elif attribute == "size":
        if scene.version == 1:
            size = float(rng.uniform(*SIZE_RANGE))
        else:
            size = float(rng.uniform(*SIZE_CLASSES_V2[int(rng.integers(len(SIZE_CLASSES_V2)))]))
        new = dataclasses.replace(char, size=size)
    elif attribute == "colour2":
        if char.colour2 is None:
            return None
        options = [c for c in COLOURS if c not in (char.colour, char.colour2)]
        new = dataclasses.replace(char, colour2=options[int(rng.integers(len(options)))])
    else:
        raise ValueError(f"unknown attribute {attribute!r}")
    cast = [new if c.id == cid else c for c in scene.cast]
    shots = [
        dataclasses.replace(
            s, actors=[dataclasses.replace(a, y=a.y + char.size - new.size) if a.char == cid else a for a in s.actors]
        )
        for s in scene.shots
    ]
    return dataclasses.replace(scene, cast=cast, shots=shots)


def measure(version: int, attribute: str, scenes: int, size: int, patch: int) -> Optional[dict]:
    rng = np.random.default_rng([STATS_SEED, version])
    rows: List[Dict[str, float]] = []
    for i in range(scenes):
        scene = sample_scene(i, shots=4, frames=1, version=version)
        shot = next((k for k, s in enumerate(scene.shots) if s.actors), None)
        if shot is None:
            continue
        cid = scene.shots[shot].actors[0].char
        other = altered(scene, cid, attribute, rng)
        if other is None:
            return None
        rows.append(patch_stats(render_shot(scene, shot, size)[0], render_shot(other, shot, size)[0], patch))
    out = {"version": version, "attribute": attribute, "pairs": len(rows)}
    for k in rows[0]:
        out[k] = round(float(np.mean([r[k] for r in rows])), 3)
    out["pairs_moving_a_patch"] = round(float(np.mean([r["patches_moved"] > 0 for r in rows])), 3)
    return out


def main(argv=None) -> List[dict]:
    p = argparse.ArgumentParser(prog="python3 -m train.world_stats", description=__doc__.split("\n")[0])
    p.add_argument("--scenes", type=int, default=300)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--patch", type=int, default=8)
    a = p.parse_args(argv)
    results = []
    for version in (1, 2):
        for attribute in ("pattern", "size", "colour2"):
            r = measure(version, attribute, a.scenes, a.size, a.patch)
            if r is not None:
                print(json.dumps(r), flush=True)
                results.append(r)
    return results


if __name__ == "__main__":
    main()
