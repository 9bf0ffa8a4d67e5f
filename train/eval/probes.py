"""What the eval knows about a held-out scene: its ground truth and the counterfactual renders.

A probe holds the ground-truth frames of every shot and a list of tests. A test is one forced
choice (measures.py): candidate 0 is the ground-truth render of a shot, the others are the same
shot rendered with one thing changed. Features of the candidates are computed here, once per
scene; scoring a video (score_videos) only computes the video's side.

    metric      run    alternatives (everything else as in the ground truth)      measure
    palette     free   the shot's location renamed to each other location          hist
    colour      free   the character recoloured with each colour the cast lacks    hist
    shape       free   the character given each other shape                        ncc
    motion      free   moving in the caption -> "stays"; "stays" -> moving (median) motion
    subject     cond   the character's pattern and size re-drawn at random (K)     ncc
    background  cond   the location's horizon and scenery re-drawn at random (K)   pix

"free" tests read the video generated from noise for every shot; "cond" tests read the video
generated with shot 0 given as ground truth (the sampler's kept shots), so they ask whether a
later shot keeps the hidden attributes that shot 0 showed: pattern and size of a character
first seen in shot 0, horizon and scenery of shot 0's location (wide later shots only: a
close-up's camera follows its character, whose place the caption does not fix). Nothing in any
caption tells them, so only attention to shot 0 can beat chance. Alternatives whose features
equal the truth's (nothing visible changed) are dropped; a test with no alternative left, a
character with fewer than `min_px` visible pixels, and a motion whose still and moving
renders differ by less than MOTION_MIN are not scored.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..render import render_shot
from ..vocab import ACTIONS, COLOURS, LOCATIONS, PATTERNS, SHAPES
from ..world import MOVE_DISTANCE, SIZE_RANGE, Scene, _sample_location
from . import measures

MOTION_MIN = 0.05          # |M_truth - M_ref| below this: the caption's motion is not visible
_START = {"moves left": 0.5 * MOVE_DISTANCE, "moves right": -0.5 * MOVE_DISTANCE}  # world.py's start offsets
_MOVING = tuple(a for a in ACTIONS if a != "stays")


@dataclass
class Test:
    metric: str                 # palette | colour | shape | motion | subject | background
    run: str                    # "free" | "cond": which generated video it reads
    shot: int
    measure: str                # hist | ncc | pix | motion (measures.py)
    what: str                   # "character 2", "location meadow"
    data: dict = field(default_factory=dict)  # the candidates' features, truth first
    cls: str = ""               # motion: "moving" | "still"


@dataclass
class Probe:
    scene: Scene
    truth: List[np.ndarray]     # per shot uint8 [F, H, W, 3]
    tests: List[Test]
    no_memory: np.ndarray       # uint8 [T, H, W, 3]: shot 0 true, later shots' hidden attributes re-drawn

    def video(self) -> np.ndarray:
        return np.concatenate(self.truth, 0)                            # [T, H, W, 3]

    def shot_slices(self) -> List[slice]:
        ends = np.cumsum([s.frames for s in self.scene.shots])
        return [slice(int(e - s.frames), int(e)) for e, s in zip(ends, self.scene.shots)]


# ---- counterfactual scenes ------------------------------------------------------------------
def with_character(scene: Scene, cid: int, **changes) -> Scene:
    """Character `cid` changed (colour, shape, pattern, size); a new size keeps feet on the ground."""
    shots = scene.shots
    if "size" in changes:
        dy = scene.character(cid).size - changes["size"]
        shots = [replace(s, actors=[replace(a, y=a.y + dy) if a.char == cid else a for a in s.actors])
                 for s in scene.shots]
    cast = [replace(c, **changes) if c.id == cid else c for c in scene.cast]
    return replace(scene, cast=cast, shots=shots)


def with_location(scene: Scene, index: int, location) -> Scene:
    locs = list(scene.locations)
    locs[index] = location
    return replace(scene, locations=locs)


def redraw_character(scene: Scene, cid: int, rng: np.random.Generator) -> Scene:
    """Character `cid` with pattern and size drawn anew, as the world draws them."""
    return with_character(scene, cid, pattern=str(rng.choice(PATTERNS)), size=float(rng.uniform(*SIZE_RANGE)))


def redraw_location(scene: Scene, index: int, rng: np.random.Generator) -> Scene:
    """Location `index` with horizon and scenery drawn anew (same name, so the same palette)."""
    return with_location(scene, index, _sample_location(rng, scene.locations[index].name))


def redraw_hidden(scene: Scene, rng: np.random.Generator) -> Scene:
    """Every hidden attribute drawn anew: characters' pattern and size, locations' layout."""
    for c in scene.cast:
        scene = redraw_character(scene, c.id, rng)
    for i in range(len(scene.locations)):
        scene = redraw_location(scene, i, rng)
    return scene


def with_action(scene: Scene, shot: int, cid: int, action: str) -> Scene:
    """Character `cid` does `action` in shot `shot`, its path centred where the old one was."""
    s = scene.shots[shot]
    actors = [replace(a, action=action, x=a.x - _START.get(a.action, 0.0) + _START.get(action, 0.0))
              if a.char == cid else a for a in s.actors]
    shots = list(scene.shots)
    shots[shot] = replace(s, actors=actors)
    return replace(scene, shots=shots)


# ---- tests ------------------------------------------------------------------------------------
Render = Tuple[np.ndarray, Dict[int, np.ndarray]]                      # frames, {cid: mask [F, H, W]}


def _keep_distinct(feats: Sequence[np.ndarray]) -> List[int]:
    """Indices of the truth and of the alternatives whose features differ from the truth's."""
    return [0] + [i for i in range(1, len(feats)) if not np.array_equal(feats[i], feats[0])]


def hist_test(metric, shot, what, renders: Sequence[Render]) -> Optional[Test]:
    hists = [measures.soft_hist(r[0]) for r in renders]
    keep = _keep_distinct(hists)
    return Test(metric, "free", shot, "hist", what, {"hists": np.stack([hists[i] for i in keep])}) \
        if len(keep) > 1 else None


def pix_test(metric, run, shot, what, renders: Sequence[Render]) -> Optional[Test]:
    stills = [measures.still_image(r[0]) for r in renders]
    keep = _keep_distinct(stills)
    return Test(metric, run, shot, "pix", what, {"stills": np.stack([stills[i] for i in keep])}) \
        if len(keep) > 1 else None


def _dilate(mask: np.ndarray) -> np.ndarray:
    p = np.pad(mask, 1)
    H, W = mask.shape
    return np.any([p[dy:dy + H, dx:dx + W] for dy in range(3) for dx in range(3)], axis=0)


def ncc_test(metric, run, shot, what, cid: int, renders: Sequence[Render], n_frames: int,
             min_px: int) -> Optional[Test]:
    """Templates around character `cid` on up to n_frames evenly spaced frames."""
    F = renders[0][0].shape[0]
    templates, supports, frames = [], [], []
    for f in np.unique(np.linspace(0, F - 1, n_frames).round().astype(int)):
        union = np.any([r[1][cid][f] for r in renders], axis=0)          # [H, W]
        if union.sum() < min_px:
            continue
        sup = _dilate(union)
        ys, xs = np.nonzero(sup)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        frames.append(int(f))
        templates.append(np.stack([r[0][f, y0:y1, x0:x1] for r in renders]))  # [1+K, h, w, 3]
        supports.append(sup[y0:y1, x0:x1])
    if not frames:
        return None
    flat = [np.concatenate([t[i].ravel() for t in templates]) for i in range(len(renders))]
    keep = _keep_distinct(flat)
    if len(keep) < 2:
        return None
    return Test(metric, run, shot, "ncc", what, {"frames": frames, "supports": supports,
                                                 "templates": [t[keep] for t in templates]})


def motion_test(shot, what, colour, area: float, truth: Render, refs: Sequence[Render],
                moving: bool) -> Optional[Test]:
    m_truth = measures.colour_change(truth[0], colour) / area
    m_ref = float(np.median([measures.colour_change(r[0], colour) for r in refs])) / area
    if abs(m_truth - m_ref) < MOTION_MIN:
        return None
    return Test("motion", "free", shot, "motion", what,
                {"colour": colour, "area": area, "values": np.array([m_truth, m_ref])},
                "moving" if moving else "still")


def build_probe(scene: Scene, size: int, seed: int, alternatives: int = 4, ncc_frames: int = 3,
                min_px: int = 4) -> Probe:
    """Ground truth and every test of one scene (rendered at size x size)."""
    rng = np.random.default_rng(seed)
    draw = lambda sc, s: render_shot(sc, s, size, masks=True)
    truth = [draw(scene, s) for s in range(len(scene.shots))]
    tests: List[Optional[Test]] = []
    spare = [c for c in COLOURS if c not in {ch.colour for ch in scene.cast}]
    area = lambda r, cid: float(r[1][cid].sum((1, 2)).mean())           # mean visible pixels
    for s, shot in enumerate(scene.shots):
        loc = scene.locations[shot.location]
        tests.append(hist_test("palette", s, f"location {loc.name}", [truth[s]] + [
            draw(with_location(scene, shot.location, replace(loc, name=n)), s) for n in LOCATIONS if n != loc.name]))
        for a in shot.actors:
            char, what = scene.character(a.char), f"character {a.char}"
            if area(truth[s], a.char) < min_px:
                continue
            tests.append(hist_test("colour", s, what, [truth[s]] + [
                draw(with_character(scene, a.char, colour=c), s) for c in spare]))
            tests.append(ncc_test("shape", "free", s, what, a.char, [truth[s]] + [
                draw(with_character(scene, a.char, shape=sh), s) for sh in SHAPES if sh != char.shape],
                ncc_frames, min_px))
            refs = _MOVING if a.action == "stays" else ("stays",)
            tests.append(motion_test(s, what, COLOURS[char.colour], area(truth[s], a.char), truth[s],
                                     [draw(with_action(scene, s, a.char, r), s) for r in refs],
                                     a.action != "stays"))
    first = scene.shots[0]
    seen = {a.char for a in first.actors if area(truth[0], a.char) >= min_px}
    for s in range(1, len(scene.shots)):
        shot = scene.shots[s]
        for a in shot.actors:
            if a.char in seen and area(truth[s], a.char) >= min_px:
                alts = [draw(redraw_character(scene, a.char, rng), s) for _ in range(alternatives)]
                tests.append(ncc_test("subject", "cond", s, f"character {a.char}", a.char, [truth[s]] + alts,
                                      ncc_frames, min_px))
        if shot.location == first.location and shot.framing == "wide":
            alts = [draw(redraw_location(scene, shot.location, rng), s) for _ in range(alternatives)]
            tests.append(pix_test("background", "cond", s, f"location {scene.locations[shot.location].name}",
                                  [truth[s]] + alts))
    no_memory = [truth[0][0]] + [render_shot(redraw_hidden(scene, rng), s, size) for s in range(1, len(scene.shots))]
    return Probe(scene, [t[0] for t in truth], [t for t in tests if t is not None], np.concatenate(no_memory, 0))


# ---- scoring ----------------------------------------------------------------------------------
def score_videos(probe: Probe, videos: Dict[str, Dict[str, np.ndarray]], device="cpu") -> Dict[str, List[dict]]:
    """Scores of every test for every video.

    videos: {"free": {name: uint8 [T, H, W, 3]}, "cond": {name: ...}}, the same names in both.
    Returns {name: [{"metric", "score", "shot", "what", "cls"}, ...]}.
    """
    names = list(videos["free"])
    out: Dict[str, List[dict]] = {n: [] for n in names}
    slices = probe.shot_slices()
    stacked = {run: np.stack([videos[run][n] for n in names]) for run in videos}  # [V, T, H, W, 3]
    cache: Dict[tuple, object] = {}                                     # video-side features per (run, shot)

    def feature(t: Test, kind: str, make):
        key = (t.run, t.shot, kind)
        if key not in cache:
            cache[key] = make(stacked[t.run][:, slices[t.shot]])        # from [V, F, H, W, 3]
        return cache[key]

    for t in probe.tests:
        if t.measure == "hist":
            h = feature(t, "hist", lambda v: np.stack([measures.soft_hist(x) for x in v]))  # [V, bins]
            d = np.abs(h[:, None] - t.data["hists"][None]).sum(-1)     # [V, 1+K]
        elif t.measure == "pix":
            im = feature(t, "pix", lambda v: np.stack([measures.still_image(x) for x in v]))  # [V, h, w, 3]
            d = ((im[:, None] - t.data["stills"][None]) ** 2).mean((2, 3, 4))  # [V, 1+K]
        elif t.measure == "motion":
            shots = stacked[t.run][:, slices[t.shot]]
            m = np.array([measures.colour_change(v, t.data["colour"]) / t.data["area"] for v in shots])
            d = np.abs(m[:, None] - t.data["values"][None])            # [V, 2]
        else:
            u = feature(t, "unit", lambda v: measures.to_unit(v, device))  # [V, F, 3, H, W]
            best = [measures.ncc_max(u[:, f], measures.to_unit(tpl, device),
                                     torch.from_numpy(sup).to(device).float())
                    for f, tpl, sup in zip(t.data["frames"], t.data["templates"], t.data["supports"])]
            d = (1.0 - torch.stack(best).mean(0)).double().cpu().numpy()  # [V, 1+K]
        for n, dv in zip(names, d):
            out[n].append({"metric": t.metric, "score": measures.forced_choice(dv), "shot": t.shot,
                           "what": t.what, "cls": t.cls})
    return out
