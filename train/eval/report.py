"""Summaries of the eval's test scores, the markdown tables, the model card, contact sheets.

Numbers (each 0..1, chance 0.5) with 95 % cluster-bootstrap intervals over storyboards (stats.py:
the tests of one storyboard share one video, so storyboards, not tests, are resampled):
    adherence    mean of the palette, colour and shape sub-scores (each the mean of its tests)
    pattern, size, area, background
                 consistency with shot 0, each on its own (no averaged "consistency": subject and
                 background memory differ by far, and averaging hid it); "cond" runs, and the
                 same tests of the joint ("generate all") run as "joint pattern" etc.
    motion       balanced accuracy: mean of the moving and still sub-scores, so a video that always
                 moves (noise) or never moves (a still image) scores 0.5
"""
from __future__ import annotations

import os
import re
from collections import defaultdict
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..render import contact_sheet, write_png
from .stats import means_ci

GROUPS = {"adherence": ("palette", "colour", "shape"), "motion": ("moving", "still")}
MEMORY = ("pattern", "size", "area", "background")  # consistency tests, each apart
HEADLINE = ("adherence",) + MEMORY + ("motion",)
LABEL = {"area": "size (area)"}
CARD_BEGIN, CARD_END = "<!-- eval:begin -->", "<!-- eval:end -->"


def _key(test: dict) -> str:
    if test["metric"] == "motion":
        return test["cls"]
    return ("joint " if test.get("run") == "joint" else "") + test["metric"]


def summarise(tests: Iterable[dict], seed: int = 0) -> dict:
    """Per-test records ({"metric", "run", "cls", "score", "scene"}) -> {key: {"score", "lo", "hi",
    "n", ...}} for every sub-score and for the GROUPS; intervals resample scenes (storyboards)."""
    by: Dict[str, Tuple[List[float], List[int]]] = defaultdict(lambda: ([], []))
    for t in tests:
        by[_key(t)][0].append(float(t["score"]))
        by[_key(t)][1].append(int(t.get("scene", 0)))
    return means_ci(dict(by), seed=seed, combine=GROUPS)


def _num(r: Optional[dict]) -> str:
    if r is None:
        return "—"
    if r["lo"] != r["lo"] or r["lo"] == r["hi"]:
        return f"{r['score']:.3f}"
    return f"{r['score']:.3f} [{r['lo']:.2f}, {r['hi']:.2f}]"


def markdown_table(rows: Dict[str, dict], n_scenes: int) -> str:
    """The card's headline table (one row per mode / reference / baseline) and the joint table."""
    heads = [LABEL.get(h, h) for h in HEADLINE]
    lines = [
        f"| {n_scenes} held-out storyboards, shot 0 given (*cond*) | "
        + " | ".join(heads)
        + " | sparsity | attention TFLOPs / video | seconds (all storyboards) |",
        "|---|" + "---|" * (len(heads) + 3),
    ]
    for name, r in rows.items():
        gen = r.get("generation")
        cells = [_num(r.get(h)) for h in HEADLINE] + [
            f"{gen['sparsity']:.1%}" if gen else "—",
            f"{gen['attention_flops'] / 1e12:.3g}" if gen else "—",
            f"{gen['seconds']:.1f}" if gen else "—",
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| the same storyboards, every shot generated (*joint*) | "
        + " | ".join(LABEL.get(m, m) for m in MEMORY)
        + " |",
        "|---|" + "---|" * len(MEMORY),
    ]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(_num(r.get("joint " + m)) for m in MEMORY) + " |")
    return "\n".join(lines) + "\n"


def detail_table(rows: Dict[str, dict]) -> str:
    """Every sub-score with its number of tests."""
    parts = [p for ps in GROUPS.values() for p in ps] + list(MEMORY) + ["joint " + m for m in MEMORY]
    parts = [p for p in parts if any(p in r for r in rows.values())]
    lines = ["| | " + " | ".join(parts) + " |", "|---|" + "---|" * len(parts)]
    for name, r in rows.items():
        cells = [f"{r[p]['score']:.3f} (n={r[p]['n']})" if p in r else "—" for p in parts]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def insert_into_card(card_path: str, table_md: str, note: str = "") -> None:
    """Put the results table into the card's Evaluation section, between CARD_BEGIN and CARD_END
    (replacing what was there). Without markers, they are added at the end of the Evaluation
    section; without that section, one is appended."""
    text = open(card_path).read() if os.path.exists(card_path) else "# Model card\n"
    block = (
        f"{CARD_BEGIN}\n{note.strip()}\n\n{table_md.strip()}\n{CARD_END}"
        if note
        else f"{CARD_BEGIN}\n{table_md.strip()}\n{CARD_END}"
    )
    if CARD_BEGIN in text and CARD_END in text:
        i, j = text.index(CARD_BEGIN), text.index(CARD_END) + len(CARD_END)
        text = text[:i] + block + text[j:]
    else:
        m = re.search(r"^## Evaluation[^\n]*\n", text, flags=re.M)
        if m is None:
            text = text.rstrip("\n") + "\n\n## Evaluation\n\n" + block + "\n"
        else:
            nxt = re.search(r"^## ", text[m.end() :], flags=re.M)
            at = m.end() + (nxt.start() if nxt else len(text) - m.end())
            text = text[:at].rstrip("\n") + "\n\n" + block + "\n\n" + text[at:].lstrip("\n")
    with open(card_path, "w") as f:
        f.write(text.rstrip("\n") + "\n")


def write_sheet(path: str, videos: Sequence[np.ndarray], frames: Sequence[int], scale: int = 2) -> None:
    """One PNG: a block per video (a row per shot), blocks separated by a white band."""
    blocks = []
    for v in videos:
        ends = np.cumsum(frames)
        blocks.append(contact_sheet([v[e - f : e] for e, f in zip(ends, frames)]))
    gap = np.full((6, blocks[0].shape[1], 3), 255, np.uint8)
    sheet = np.concatenate([x for b in blocks for x in (b, gap)][:-1], 0)
    write_png(path, np.repeat(np.repeat(sheet, scale, 0), scale, 1))
