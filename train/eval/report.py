"""Summaries of the eval's test scores, the markdown table, the model card, contact sheets.

Headline numbers (each 0..1, chance 0.5, with a standard error over the tests they pool):
    adherence    mean of the palette, colour and shape sub-scores (each the mean of its tests)
    consistency  mean of the subject and background sub-scores
    motion       balanced accuracy: mean of the moving and still sub-scores, so a video that always
                 moves (noise) or never moves (a still image) scores 0.5
"""
from __future__ import annotations

import math
import os
import re
from collections import defaultdict
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from ..render import contact_sheet, write_png

GROUPS = {"adherence": ("palette", "colour", "shape"), "consistency": ("subject", "background"),
          "motion": ("moving", "still")}
CARD_BEGIN, CARD_END = "<!-- eval:begin -->", "<!-- eval:end -->"


def _key(test: dict) -> str:
    return test["cls"] if test["metric"] == "motion" else test["metric"]


def summarise(tests: Iterable[dict]) -> dict:
    """Per-test records ({"metric", "cls", "score", ...}) -> sub-scores and headline numbers."""
    by: Dict[str, List[float]] = defaultdict(list)
    for t in tests:
        by[_key(t)].append(float(t["score"]))
    out: dict = {}
    for name, scores in by.items():
        a = np.asarray(scores)
        se = float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else float("nan")
        out[name] = {"score": float(a.mean()), "se": se, "n": int(len(a))}
    for head, parts in GROUPS.items():
        have = [out[p] for p in parts if p in out]
        if have:
            out[head] = float(np.mean([h["score"] for h in have]))
            out[head + "_se"] = float(math.sqrt(sum(h["se"] ** 2 for h in have if h["se"] == h["se"])) / len(have))
        else:
            out[head], out[head + "_se"] = None, None
    return out


def _num(x: Optional[float], se: Optional[float] = None) -> str:
    if x is None:
        return "—"
    return f"{x:.3f}" if se is None or se != se else f"{x:.3f} ± {se:.3f}"


def markdown_table(rows: Dict[str, dict], n_scenes: int) -> str:
    """The card's table: one row per mode / reference / baseline."""
    lines = [f"| {n_scenes} held-out storyboards | adherence | consistency | motion | sparsity | "
             "attention TFLOPs / video | seconds (all storyboards) |",
             "|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        gen = r.get("generation")
        cells = [_num(r["adherence"], r["adherence_se"]), _num(r["consistency"], r["consistency_se"]),
                 _num(r["motion"], r["motion_se"]),
                 f"{gen['sparsity']:.1%}" if gen else "—",
                 f"{gen['attention_flops'] / 1e12:.3g}" if gen else "—",
                 f"{gen['seconds']:.1f}" if gen else "—"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def detail_table(rows: Dict[str, dict]) -> str:
    """Every sub-score with its number of tests."""
    parts = [p for ps in GROUPS.values() for p in ps]
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
    block = f"{CARD_BEGIN}\n{note.strip()}\n\n{table_md.strip()}\n{CARD_END}" if note else \
        f"{CARD_BEGIN}\n{table_md.strip()}\n{CARD_END}"
    if CARD_BEGIN in text and CARD_END in text:
        i, j = text.index(CARD_BEGIN), text.index(CARD_END) + len(CARD_END)
        text = text[:i] + block + text[j:]
    else:
        m = re.search(r"^## Evaluation[^\n]*\n", text, flags=re.M)
        if m is None:
            text = text.rstrip("\n") + "\n\n## Evaluation\n\n" + block + "\n"
        else:
            nxt = re.search(r"^## ", text[m.end():], flags=re.M)
            at = m.end() + (nxt.start() if nxt else len(text) - m.end())
            text = text[:at].rstrip("\n") + "\n\n" + block + "\n\n" + text[at:].lstrip("\n")
    with open(card_path, "w") as f:
        f.write(text.rstrip("\n") + "\n")


def write_sheet(path: str, videos: Sequence[np.ndarray], frames: Sequence[int], scale: int = 2) -> None:
    """One PNG: a block per video (a row per shot), blocks separated by a white band."""
    blocks = []
    for v in videos:
        ends = np.cumsum(frames)
        blocks.append(contact_sheet([v[e - f:e] for e, f in zip(ends, frames)]))
    gap = np.full((6, blocks[0].shape[1], 3), 255, np.uint8)
    sheet = np.concatenate([x for b in blocks for x in (b, gap)][:-1], 0)
    write_png(path, np.repeat(np.repeat(sheet, scale, 0), scale, 1))
