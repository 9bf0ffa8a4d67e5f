"""What the eval knows about a held-out scene: its ground truth and the counterfactual renders.

A probe holds the ground-truth frames of every shot and a list of tests. A test is one forced
choice (measures.py): candidate 0 is the ground-truth render of a shot, the others are the same
shot rendered with one thing changed. Features of the candidates are computed here, once per
scene; scoring a video (score_videos) only computes the video's side.

    metric      run         alternatives (everything else as in the ground truth)      measure
    palette     free        the shot's location renamed to each other location          hist
    colour      free        the character recoloured with each colour the cast lacks    hist
    shape       free        the character given each other shape                        ncc
    motion      free        moving in the caption -> "stays"; "stays" -> moving (median) motion
    pattern     cond, joint the character's pattern: each other pattern, same size     ncc
    size        cond, joint the character's size re-drawn at random (K), same pattern  ncc
    area        cond, joint the same re-drawn sizes                                     area (shape-free)
    background  cond, joint the location's horizon and scenery re-drawn at random (K)  pix

"free" tests read the video generated from noise for every shot. "cond" tests read the video
generated with shot 0 given as ground truth (the sampler's kept shots), so they ask whether a
later shot keeps the hidden attributes that shot 0 showed: pattern and size of a character
first seen in shot 0, horizon and scenery of shot 0's location (wide later shots only: a
close-up's camera follows its character, whose place the caption does not fix). Nothing in any
caption tells them, so only attention to shot 0 can beat chance. "joint" tests read the free
video ("generate all", as the studio's default run): the model invents shot 0 too, so there is
no truth to hold shot s to; instead the same candidates are rendered in shot 0 as well, the
candidate that the generated shot 0 is nearest to is taken as what shot 0 showed, and shot s
scores the forced choice with that candidate in the truth's place (1: shot s looks like the
hypothesis shot 0 picked, 0.5: unrelated). That is consistency, not memory alone: a fixed drawing
habit (always solid, always small, noise whose time-mean is the same grey in every shot) picks
the same candidate in every shot and scores high too, so read joint scores against the "shot"
mode's (independent shots: the habit without memory), not against 0.5. Pattern and size are tested apart (the v1 "subject"
test re-drew both at once and was mostly a size test); `DOCTORED` truths (shot 0 true, later
shots changed in one known way) calibrate what each test responds to. Alternatives whose features
equal the truth's (nothing visible changed; for joint tests: in shot s or in shot 0) are dropped;
a test with no alternative left, a character with fewer than `min_px` visible pixels, and a
motion whose still and moving renders differ by less than MOTION_MIN are not scored.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..render import pattern_colour, render_shot
from ..vocab import ACTIONS, COLOURS, LOCATIONS, PATTERNS, SHAPES
from ..world import MOVE_DISTANCE, SIZE_RANGE, Scene, _sample_location
from . import measures

MOTION_MIN = 0.05  # |M_truth - M_ref| below this: the caption's motion is not visible
_START = {"moves left": 0.5 * MOVE_DISTANCE, "moves right": -0.5 * MOVE_DISTANCE}  # world.py's start offsets
_MOVING = tuple(a for a in ACTIONS if a != "stays")


@dataclass
class Test:
    metric: str  # palette | colour | shape | motion | pattern | size | area | background
    run: str  # "free" | "cond" | "joint": which video it reads and how (module docstring)
    shot: int
    measure: str  # hist | ncc | pix | area | motion (measures.py)
    what: str  # "character 2", "location meadow"
    data: dict = field(default_factory=dict)  # the candidates' features, truth first
    cls: str = ""  # motion: "moving" | "still"
    first: Optional[dict] = None  # joint: the same candidates' features in shot 0


@dataclass
class Probe:
    scene: Scene
    truth: List[np.ndarray]  # per shot uint8 [F, H, W, 3]
    tests: List[Test]
    doctored: Dict[str, np.ndarray]  # DOCTORED name -> uint8 [T, H, W, 3]: shot 0 true, later shots changed

    def video(self) -> np.ndarray:
        return np.concatenate(self.truth, 0)  # [T, H, W, 3]

    def shot_slices(self) -> List[slice]:
        ends = np.cumsum([s.frames for s in self.scene.shots])
        return [slice(int(e - s.frames), int(e)) for e, s in zip(ends, self.scene.shots)]


# ---- counterfactual scenes ------------------------------------------------------------------
def with_character(scene: Scene, cid: int, **changes) -> Scene:
    """Character `cid` changed (colour, shape, pattern, size); a new size keeps feet on the ground."""
    shots = scene.shots
    if "size" in changes:
        dy = scene.character(cid).size - changes["size"]
        shots = [
            replace(s, actors=[replace(a, y=a.y + dy) if a.char == cid else a for a in s.actors]) for s in scene.shots
        ]
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
    actors = [
        replace(a, action=action, x=a.x - _START.get(a.action, 0.0) + _START.get(action, 0.0)) if a.char == cid else a
        for a in s.actors
    ]
    shots = list(scene.shots)
    shots[shot] = replace(s, actors=actors)
    return replace(scene, shots=shots)


# ---- tests ------------------------------------------------------------------------------------
Render = Tuple[np.ndarray, Dict[int, np.ndarray]]  # frames, {cid: mask [F, H, W]}
Feature = Tuple[dict, List[np.ndarray]]  # test data, one flat feature per candidate
CANDIDATE_KEYS = ("hists", "stills", "values", "templates")  # data entries indexed by candidate


def _keep_distinct(*feats: Sequence[np.ndarray]) -> List[int]:
    """Indices of the truth and of the alternatives whose features differ from the truth's (in
    every feature list given: a joint test needs the alternative to show in shot 0 and shot s)."""
    return [0] + [i for i in range(1, len(feats[0])) if all(not np.array_equal(f[i], f[0]) for f in feats)]


def _take(data: dict, keep: List[int]) -> dict:
    out = dict(data)
    for k in CANDIDATE_KEYS:
        if k in data:
            out[k] = [t[keep] for t in data[k]] if isinstance(data[k], list) else data[k][keep]
    return out


def make_test(
    metric: str, run: str, shot: int, what: str, measure: str, feat: Optional[Feature], first: Optional[Feature] = None
) -> Optional[Test]:
    """A test from the candidates' features (truth first); with `first` (the same candidates in
    shot 0) a joint-mode test (see score_videos). None when no alternative differs visibly."""
    if feat is None or (first is None and run == "joint"):
        return None
    keep = _keep_distinct(feat[1]) if first is None else _keep_distinct(feat[1], first[1])
    if len(keep) < 2:
        return None
    return Test(
        metric, run, shot, measure, what, _take(feat[0], keep), first=None if first is None else _take(first[0], keep)
    )


def hist_feature(renders: Sequence[Render]) -> Feature:
    hists = [measures.soft_hist(r[0]) for r in renders]
    return {"hists": np.stack(hists)}, hists


def pix_feature(renders: Sequence[Render]) -> Feature:
    stills = [measures.still_image(r[0]) for r in renders]
    return {"stills": np.stack(stills)}, stills


def area_feature(colours: Sequence[np.ndarray], renders: Sequence[Render]) -> Feature:
    """How many pixels a frame has in a character's body or pattern colour (measures.colour_mass)."""
    vals = [np.array([measures.colour_mass(r[0], colours)]) for r in renders]
    return {"values": np.stack(vals), "colours": np.stack(colours)}, vals


def _dilate(mask: np.ndarray) -> np.ndarray:
    p = np.pad(mask, 1)
    H, W = mask.shape
    return np.any([p[dy : dy + H, dx : dx + W] for dy in range(3) for dx in range(3)], axis=0)


def ncc_feature(cid: int, renders: Sequence[Render], n_frames: int, min_px: int) -> Optional[Feature]:
    """Templates around character `cid` on up to n_frames evenly spaced frames."""
    F = renders[0][0].shape[0]
    templates, supports, frames = [], [], []
    for f in np.unique(np.linspace(0, F - 1, n_frames).round().astype(int)):
        union = np.any([r[1][cid][f] for r in renders], axis=0)  # [H, W]
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
    return {"frames": frames, "supports": supports, "templates": templates}, flat


def motion_test(shot, what, colour, area: float, truth: Render, refs: Sequence[Render], moving: bool) -> Optional[Test]:
    m_truth = measures.colour_change(truth[0], colour) / area
    m_ref = float(np.median([measures.colour_change(r[0], colour) for r in refs])) / area
    if abs(m_truth - m_ref) < MOTION_MIN:
        return None
    return Test(
        "motion",
        "free",
        shot,
        "motion",
        what,
        {"colour": colour, "area": area, "values": np.array([m_truth, m_ref])},
        "moving" if moving else "still",
    )


def solid_characters(scene: Scene) -> Scene:
    """Every character drawn solid (sizes, colours, shapes as they are)."""
    for c in scene.cast:
        scene = with_character(scene, c.id, pattern="solid")
    return scene


def redraw_sizes(scene: Scene, rng: np.random.Generator) -> Scene:
    """Every character's size drawn anew, patterns kept."""
    for c in scene.cast:
        scene = with_character(scene, c.id, size=float(rng.uniform(*SIZE_RANGE)))
    return scene


# doctored ground truths (shot 0 true, later shots rendered from a changed scene): what the
# consistency tests score on videos whose memory is known to be wrong in one way
DOCTORED = {
    "truth, no memory": redraw_hidden,  # every hidden attribute re-drawn
    "truth, solid": lambda sc, rng: solid_characters(sc),  # right sizes, no pattern
    "truth, sizes re-drawn": redraw_sizes,  # right patterns, sizes at random
}


def build_probe(
    scene: Scene, size: int, seed: int, alternatives: int = 4, ncc_frames: int = 3, min_px: int = 4
) -> Probe:
    """Ground truth, the doctored truths and every test of one scene (rendered at size x size)."""
    rng = np.random.default_rng(seed)
    draw = lambda sc, s: render_shot(sc, s, size, masks=True)
    truth = [draw(scene, s) for s in range(len(scene.shots))]
    tests: List[Optional[Test]] = []
    spare = [c for c in COLOURS if c not in {ch.colour for ch in scene.cast}]
    area = lambda r, cid: float(r[1][cid].sum((1, 2)).mean())  # mean visible pixels
    for s, shot in enumerate(scene.shots):
        loc = scene.locations[shot.location]
        tests.append(
            make_test(
                "palette",
                "free",
                s,
                f"location {loc.name}",
                "hist",
                hist_feature(
                    [truth[s]]
                    + [
                        draw(with_location(scene, shot.location, replace(loc, name=n)), s)
                        for n in LOCATIONS
                        if n != loc.name
                    ]
                ),
            )
        )
        for a in shot.actors:
            char, what = scene.character(a.char), f"character {a.char}"
            if area(truth[s], a.char) < min_px:
                continue
            tests.append(
                make_test(
                    "colour",
                    "free",
                    s,
                    what,
                    "hist",
                    hist_feature([truth[s]] + [draw(with_character(scene, a.char, colour=c), s) for c in spare]),
                )
            )
            tests.append(
                make_test(
                    "shape",
                    "free",
                    s,
                    what,
                    "ncc",
                    ncc_feature(
                        a.char,
                        [truth[s]]
                        + [draw(with_character(scene, a.char, shape=sh), s) for sh in SHAPES if sh != char.shape],
                        ncc_frames,
                        min_px,
                    ),
                )
            )
            refs = _MOVING if a.action == "stays" else ("stays",)
            tests.append(
                motion_test(
                    s,
                    what,
                    COLOURS[char.colour],
                    area(truth[s], a.char),
                    truth[s],
                    [draw(with_action(scene, s, a.char, r), s) for r in refs],
                    a.action != "stays",
                )
            )
    first = scene.shots[0]
    seen = {a.char for a in first.actors if area(truth[0], a.char) >= min_px}
    for s in range(1, len(scene.shots)):
        shot = scene.shots[s]
        for a in shot.actors:
            if a.char not in seen or area(truth[s], a.char) < min_px:
                continue
            char, what = scene.character(a.char), f"character {a.char}"
            colours = [np.asarray(COLOURS[char.colour], np.float32), pattern_colour(char.colour)]
            pats = [with_character(scene, a.char, pattern=p) for p in PATTERNS if p != char.pattern]
            sizes = [with_character(scene, a.char, size=float(rng.uniform(*SIZE_RANGE))) for _ in range(alternatives)]
            for metric, alts in (("pattern", pats), ("size", sizes)):
                r0, rs = [truth[0]] + [draw(sc, 0) for sc in alts], [truth[s]] + [draw(sc, s) for sc in alts]
                f0, fs = ncc_feature(a.char, r0, ncc_frames, min_px), ncc_feature(a.char, rs, ncc_frames, min_px)
                tests += [
                    make_test(metric, "cond", s, what, "ncc", fs),
                    make_test(metric, "joint", s, what, "ncc", fs, f0),
                ]
                if metric == "size":
                    f0, fs = area_feature(colours, r0), area_feature(colours, rs)
                    tests += [
                        make_test("area", "cond", s, what, "area", fs),
                        make_test("area", "joint", s, what, "area", fs, f0),
                    ]
        if shot.location == first.location and shot.framing == "wide":
            alts = [redraw_location(scene, shot.location, rng) for _ in range(alternatives)]
            what = f"location {scene.locations[shot.location].name}"
            fs = pix_feature([truth[s]] + [draw(sc, s) for sc in alts])
            f0 = pix_feature([truth[0]] + [draw(sc, 0) for sc in alts])
            tests += [
                make_test("background", "cond", s, what, "pix", fs),
                make_test("background", "joint", s, what, "pix", fs, f0),
            ]
    doctored = {}
    for name, change in DOCTORED.items():
        sc = change(scene, rng)
        doctored[name] = np.concatenate(
            [truth[0][0]] + [render_shot(sc, s, size) for s in range(1, len(scene.shots))], 0
        )
    return Probe(scene, [t[0] for t in truth], [t for t in tests if t is not None], doctored)


# ---- scoring ----------------------------------------------------------------------------------
VIDEO_OF_RUN = {"free": "free", "cond": "cond", "joint": "free"}  # joint tests read the free video


def score_videos(probe: Probe, videos: Dict[str, Dict[str, np.ndarray]], device="cpu") -> Dict[str, List[dict]]:
    """Scores of every test for every video.

    videos: {"free": {name: uint8 [T, H, W, 3]}, "cond": {name: ...}}, the same names in both.
    Returns {name: [{"metric", "run", "score", "shot", "what", "cls"}, ...]}.
    """
    names = list(videos["free"])
    out: Dict[str, List[dict]] = {n: [] for n in names}
    slices = probe.shot_slices()
    stacked = {run: np.stack([videos[run][n] for n in names]) for run in videos}  # [V, T, H, W, 3]
    cache: Dict[tuple, object] = {}  # video-side features per (video, shot)

    def feature(video: str, shot: int, kind: str, make):
        key = (video, shot, kind)
        if key not in cache:
            cache[key] = make(stacked[video][:, slices[shot]])  # from [V, F, H, W, 3]
        return cache[key]

    def distances(measure: str, data: dict, video: str, shot: int) -> np.ndarray:
        """[V, 1+K]: every video's distance to every candidate."""
        if measure == "hist":
            h = feature(video, shot, "hist", lambda v: np.stack([measures.soft_hist(x) for x in v]))  # [V, bins]
            return np.abs(h[:, None] - data["hists"][None]).sum(-1)
        if measure == "pix":
            im = feature(video, shot, "pix", lambda v: np.stack([measures.still_image(x) for x in v]))
            return ((im[:, None] - data["stills"][None]) ** 2).mean((2, 3, 4))
        if measure == "area":
            cols = data["colours"]
            m = feature(
                video, shot, ("area", cols.tobytes()), lambda v: np.array([[measures.colour_mass(x, cols)] for x in v])
            )  # [V, 1]
            return np.abs(m[:, None] - data["values"][None]).sum(-1)
        if measure == "motion":
            m = np.array(
                [measures.colour_change(v, data["colour"]) / data["area"] for v in stacked[video][:, slices[shot]]]
            )
            return np.abs(m[:, None] - data["values"][None])
        u = feature(video, shot, "unit", lambda v: measures.to_unit(v, device))  # [V, F, 3, H, W]
        best = [
            measures.ncc_max(u[:, f], measures.to_unit(tpl, device), torch.from_numpy(sup).to(device).float())
            for f, tpl, sup in zip(data["frames"], data["templates"], data["supports"])
        ]
        return (1.0 - torch.stack(best).mean(0)).double().cpu().numpy()

    for t in probe.tests:
        video = VIDEO_OF_RUN[t.run]
        d = distances(t.measure, t.data, video, t.shot)  # [V, 1+K]
        if t.first is not None:  # joint: hold shot s to what shot 0 shows
            pick = distances(t.measure, t.first, video, 0).argmin(1)  # [V] the candidate shot 0 looks like
            d = np.stack([np.concatenate([[dv[p]], np.delete(dv, p)]) for dv, p in zip(d, pick)])
        for n, dv in zip(names, d):
            out[n].append(
                {
                    "metric": t.metric,
                    "run": t.run,
                    "score": measures.forced_choice(dv),
                    "shot": t.shot,
                    "what": t.what,
                    "cls": t.cls,
                }
            )
    return out
