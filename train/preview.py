"""Look at the world: contact sheets, storyboards and ground truth for a few scenes.

    /usr/bin/python3 -m train.preview --seeds 0-3 --out /tmp/preview
writes <out>/scene-<seed>.png (a row per shot), storyboard-<seed>.json, truth-<seed>.json.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from .render import contact_sheet, write_png
from .world import export_storyboard, sample_scene


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0-3", help="a range a-b or a comma list")
    p.add_argument("--shots", type=int, default=4)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--scale", type=int, default=2, help="pixel repeat for the PNG")
    p.add_argument("--out", default="train/runs/preview")
    a = p.parse_args(argv)
    lo, _, hi = a.seeds.partition("-")
    seeds = range(int(lo), int(hi) + 1) if hi else [int(s) for s in a.seeds.split(",")]
    os.makedirs(a.out, exist_ok=True)
    for seed in seeds:
        scene = sample_scene(seed, shots=a.shots, frames=a.frames)
        shots = export_storyboard(scene, os.path.join(a.out, f"storyboard-{seed}.json"), a.size,
                                  os.path.join(a.out, f"truth-{seed}.json"))
        sheet = contact_sheet(shots)
        sheet = np.repeat(np.repeat(sheet, a.scale, 0), a.scale, 1)
        write_png(os.path.join(a.out, f"scene-{seed}.png"), sheet)
        print(os.path.join(a.out, f"scene-{seed}.png"))


if __name__ == "__main__":
    main()
