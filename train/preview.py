"""Look at the world: contact sheets, storyboards and ground truth for a few scenes; and the
studio's sample storyboards.

    /usr/bin/python3 -m train.preview --seeds 0-3 --out /tmp/preview
writes <out>/scene-<seed>.png (a row per shot), storyboard-<seed>.json, truth-<seed>.json.

    /usr/bin/python3 -m train.preview --samples public/storyboards
writes the sample storyboards (SAMPLES below, captions made by world.py's grammar) and their
index.json ({"version": 1, "storyboards": [{"title", "file", "description", "shots", "frames"}]}).
"""
from __future__ import annotations

import argparse
import os

import numpy as np

import json
from typing import Dict, List

from .render import contact_sheet, write_png
from .world import (
    Actor,
    Character,
    Location,
    Scene,
    Shot,
    export_storyboard,
    sample_scene,
    storyboard,
    validate_storyboard,
)


def _scene(cast, locations, shots, seed: int) -> Scene:
    """A hand-written scene: cast [(colour, shape)], location names, shots [(location index,
    [(character id, action)], framing, frames)]. Only the captioned attributes matter here;
    the studio's model invents the rest and must keep it across shots."""
    chars = [Character(i + 1, c, s, "solid", 0.1) for i, (c, s) in enumerate(cast)]
    return Scene(
        seed,
        chars,
        [Location(n, 0.45) for n in locations],
        [
            Shot(
                loc,
                [Actor(cid, act, 0.5, 0.7) for cid, act in actors],
                framing,
                frames,
                seed + 101 * j,
                (0.5, 0.5, 1.0),
            )
            for j, (loc, actors, framing, frames) in enumerate(shots)
        ],
    )


SAMPLES = [  # (file stem, title, one-line description, scene)
    (
        "return-of-the-star",
        "The star comes back",
        "Memory: character 1 leaves after shot 1 and returns in shot 3; its pattern and size are never captioned.",
        _scene(
            [("red", "star"), ("blue", "circle")],
            ["meadow", "beach"],
            [
                (0, [(1, "bounces")], "wide", 8),
                (1, [(2, "moves right")], "wide", 8),
                (0, [(1, "spins")], "wide", 8),
                (0, [(1, "stays"), (2, "bounces")], "wide", 8),
            ],
            1001,
        ),
    ),
    (
        "two-friends",
        "Two friends in the forest",
        "Memory: both friends meet, one goes to the snow alone, then the other returns to the same forest.",
        _scene(
            [("yellow", "triangle"), ("purple", "square")],
            ["forest", "snow"],
            [
                (0, [(1, "stays"), (2, "moves left")], "wide", 8),
                (1, [(2, "bounces")], "close-up", 8),
                (0, [(1, "grows")], "wide", 8),
                (0, [(1, "moves right"), (2, "stays")], "wide", 8),
            ],
            2002,
        ),
    ),
    (
        "empty-city",
        "Back to the empty city",
        "Memory of a place: the city's houses must look the same when the street is empty and when the diamond returns.",
        _scene(
            [("green", "diamond"), ("orange", "cross"), ("white", "circle")],
            ["city", "desert"],
            [
                (0, [(1, "moves left")], "wide", 8),
                (1, [(2, "spins"), (3, "stays")], "wide", 8),
                (0, [], "wide", 8),
                (0, [(1, "bounces"), (3, "moves right")], "wide", 8),
            ],
            3003,
        ),
    ),
    (
        "long-journey",
        "A long journey (8 shots)",
        "Benchmark: 8 shots, 3 characters and 2 places that come and go; the long context MoC routing is for.",
        _scene(
            [("pink", "star"), ("blue", "square"), ("orange", "triangle")],
            ["meadow", "snow"],
            [
                (0, [(1, "moves right")], "wide", 8),
                (0, [(2, "bounces")], "close-up", 8),
                (1, [(3, "spins")], "wide", 8),
                (1, [(1, "stays"), (3, "moves left")], "wide", 8),
                (0, [(2, "grows")], "wide", 8),
                (1, [], "wide", 8),
                (0, [(1, "bounces"), (2, "stays"), (3, "moves right")], "wide", 8),
                (0, [(1, "spins")], "close-up", 8),
            ],
            4004,
        ),
    ),
    (
        "valley-day",
        "A day in the valley (32 shots)",
        "Benchmark: 32 shots, 48 s of video, 25k tokens: the length where MoC's sparse attention pays off end to end. "
        "moc-base saw at most 4 shots of 4–16 frames in training, so this many shots is a speed test first.",
        _scene(
            [("red", "circle"), ("yellow", "star"), ("blue", "triangle")],
            ["meadow", "forest", "beach"],
            [
                (loc, actors, "close-up" if j % 5 == 4 else "wide", 12)
                for j in range(32)
                for loc in [(j // 3) % 3]
                for actors in [
                    [
                        (
                            1 + (j + c) % 3,
                            ["bounces", "moves right", "spins", "stays", "moves left", "grows"][(j + 2 * c) % 6],
                        )
                        for c in range(1 + j % 3)
                    ]
                    if j % 7 != 6
                    else []
                ]
            ],
            5005,
        ),
    ),
]


def sample_files() -> Dict[str, dict]:
    """{file name: JSON content} of the sample storyboards and their index."""
    files: Dict[str, dict] = {}
    entries: List[dict] = []
    for stem, title, description, scene in SAMPLES:
        board = storyboard(scene)
        validate_storyboard(board)
        files[f"{stem}.json"] = board
        entries.append(
            {
                "title": title,
                "file": f"{stem}.json",
                "description": description,
                "shots": len(board["shots"]),
                "frames": sum(s["frames"] for s in board["shots"]),
            }
        )
    files["index.json"] = {"version": 1, "storyboards": entries}
    return files


def write_samples(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    for name, content in sample_files().items():
        with open(os.path.join(out_dir, name), "w") as f:
            json.dump(content, f, indent=2)
            f.write("\n")
        print(os.path.join(out_dir, name))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0-3", help="a range a-b or a comma list")
    p.add_argument("--shots", type=int, default=4)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--scale", type=int, default=2, help="pixel repeat for the PNG")
    p.add_argument("--out", default="train/runs/preview")
    p.add_argument("--samples", metavar="DIR", help="write the sample storyboards to DIR instead")
    a = p.parse_args(argv)
    if a.samples:
        write_samples(a.samples)
        return
    lo, _, hi = a.seeds.partition("-")
    seeds = range(int(lo), int(hi) + 1) if hi else [int(s) for s in a.seeds.split(",")]
    os.makedirs(a.out, exist_ok=True)
    for seed in seeds:
        scene = sample_scene(seed, shots=a.shots, frames=a.frames)
        shots = export_storyboard(
            scene, os.path.join(a.out, f"storyboard-{seed}.json"), a.size, os.path.join(a.out, f"truth-{seed}.json")
        )
        sheet = contact_sheet(shots)
        sheet = np.repeat(np.repeat(sheet, a.scale, 0), a.scale, 1)
        write_png(os.path.join(a.out, f"scene-{seed}.png"), sheet)
        print(os.path.join(a.out, f"scene-{seed}.png"))


if __name__ == "__main__":
    main()
