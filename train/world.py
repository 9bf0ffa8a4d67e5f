"""The procedural multi-shot world (MODEL.md "The world"): scenes, shots, captions, storyboards.

A Scene has a cast (1-3 characters) and 1-2 locations; each Shot shows one location, some of
the cast doing one action each, framed wide or close-up, over F frames. Captions name only
colour, shape, action, location and framing. Pattern, exact size and the scenery layout
(horizon height, trees/houses/rocks and where they stand) are never captioned: they are drawn
when the scene is made, which is the same as fixing them at the first shot that shows the
character or location, and every later shot renders them unchanged. Only attention to earlier
shots can recover them; that is what MoC routing and the evaluation are about.

World versions (`version`, recorded by the trainer as --world and in config.json as
world_version): 1, the default, is the world every shipped model was trained on and renders bit
for bit as it always has (train/tests/test_world_v2.py holds a digest). 2 makes the hidden
attributes visible at the model's scale (8x8 patches of a 64x64 frame): two clearly separate
size classes (SIZE_CLASSES_V2: radius ~6 vs ~11 px at 64x64 instead of 5-9 px uniform), patterns
of half a body (vocab.PATTERNS_V2: two-tone halves, a wide band, a large core) instead of 1-5 px
stripes/dots/checks, drawn in a hidden second colour (Character.colour2) instead of a darker
shade of the body colour. Captions are the same words in both versions; `oracle=True` captions
(global_caption) add each character's size class and pattern, the oracle run that shows whether
a model can draw them at all (vocab.build_words(oracle=True)).

Everything is a pure function of an integer seed (numpy's PCG64 via default_rng). Rendering
lives in render.py; the vocabulary and tokenizer in vocab.py.

Storyboard JSON (shared with the studio and the CLI):
    {"version": 1, "globalCaption": str, "shots": [{"caption": str, "frames": int, "seed": int}]}
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .vocab import (
    ACTIONS,
    COLOURS,
    FRAMINGS,
    LOCATIONS,
    MAX_CAST,
    PATTERNS,
    PATTERNS_V2,
    PREPOSITION,
    SHAPES,
    SIZE_WORDS,
)

RGB = Tuple[int, int, int]
STORYBOARD_VERSION = 1

# Motion constants (world units: the wide view is the unit square, y grows downwards).
MOVE_DISTANCE = 0.3  # how far "moves left/right" travels over one shot
BOUNCE_HEIGHT = 0.15  # peak height of a bounce; two bounces per shot
GROW_FACTOR = 0.6  # "grows": scale goes 1 -> 1 + GROW_FACTOR over the shot
SPIN_TURNS = 0.5  # "spins": half a turn over the shot
CLOSE_UP_ZOOM = 2.0
SIZE_RANGE = (0.08, 0.14)  # character radius, uncaptioned
HORIZON_RANGE = (0.36, 0.55)  # horizon height, uncaptioned
WORLD_VERSIONS = (1, 2)
SIZE_CLASSES_V2 = ((0.09, 0.11), (0.16, 0.18))  # v2 radius: small or large (uniform inside each)
SIZE_SPLIT = {1: 0.11, 2: 0.135}  # radius below this is "small" (oracle captions)


@dataclass
class Character:
    id: int  # 1-based, as in the captions ("Character 1")
    colour: str  # captioned
    shape: str  # captioned
    pattern: str  # uncaptioned, persistent
    size: float  # uncaptioned, persistent: radius in world units
    colour2: Optional[str] = None  # v2: uncaptioned, persistent: the pattern's colour


@dataclass
class SceneryItem:
    kind: str  # "tree" | "house" | "rock"
    x: float  # centre, world units
    base: float  # y of the item's foot
    width: float
    height: float
    colour: RGB  # trunk / wall / rock
    colour2: RGB  # crown / roof (unused for rocks)


@dataclass
class Location:
    name: str  # captioned (decides the sky/ground palette)
    horizon: float  # uncaptioned, persistent
    items: List[SceneryItem] = field(default_factory=list)  # uncaptioned, persistent


@dataclass
class Actor:
    """One character inside one shot."""

    char: int  # character id
    action: str  # one of vocab.ACTIONS
    x: float  # start x of the centre
    y: float  # rest y of the centre (feet on the ground)


@dataclass
class Shot:
    location: int  # index into Scene.locations
    actors: List[Actor]
    framing: str  # "wide" | "close-up"
    frames: int
    seed: int  # the studio's per-shot noise seed
    camera: Tuple[float, float, float]  # (centre x, centre y, zoom)


@dataclass
class Scene:
    seed: int
    cast: List[Character]
    locations: List[Location]
    shots: List[Shot]
    version: int = 1  # world version (WORLD_VERSIONS)

    def character(self, cid: int) -> Character:
        return self.cast[cid - 1]

    def to_dict(self) -> dict:
        """As asdict; a v1 scene leaves out the v2 keys, so its JSON is what it always was."""
        d = asdict(self)
        if self.version == 1:
            d.pop("version")
            for c in d["cast"]:
                if c["colour2"] is None:
                    c.pop("colour2")
        return d


# ---------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------
_SCENERY_KINDS = {
    "meadow": ("tree", "house", "rock"),
    "beach": ("rock", "house", "tree"),
    "desert": ("rock", "house"),
    "forest": ("tree", "tree", "rock"),
    "city": ("house",),
    "snow": ("tree", "house", "rock"),
}
_CROWNS = ((40, 130, 50), (65, 155, 60), (30, 100, 45), (90, 140, 40))
_WALLS = ((200, 80, 60), (230, 200, 120), (150, 150, 170), (240, 240, 230), (120, 160, 200))
_ROOFS = ((120, 40, 30), (60, 60, 70), (170, 60, 40), (40, 70, 120))
_ROCKS = ((120, 120, 125), (150, 140, 130), (95, 95, 100))
_TRUNK = (110, 75, 40)


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def _sample_location(rng: np.random.Generator, name: str) -> Location:
    horizon = float(rng.uniform(*HORIZON_RANGE))
    items: List[SceneryItem] = []
    for _ in range(int(rng.integers(2, 6))):
        kind = _pick(rng, _SCENERY_KINDS[name])
        x = float(rng.uniform(0.05, 0.95))
        base = horizon + float(rng.uniform(0.0, 0.06))
        if kind == "tree":
            h = float(rng.uniform(0.18, 0.32))
            w = h * float(rng.uniform(0.5, 0.8))
            items.append(SceneryItem(kind, x, base, w, h, _TRUNK, _pick(rng, _CROWNS)))
        elif kind == "house":
            h = float(rng.uniform(0.14, 0.28)) * (1.6 if name == "city" else 1.0)
            w = float(rng.uniform(0.12, 0.22))
            items.append(SceneryItem(kind, x, base, w, h, _pick(rng, _WALLS), _pick(rng, _ROOFS)))
        else:
            w = float(rng.uniform(0.07, 0.16))
            h = w * float(rng.uniform(0.5, 0.9))
            items.append(SceneryItem(kind, x, base, w, h, _pick(rng, _ROCKS), _pick(rng, _ROCKS)))
    items.sort(key=lambda it: it.base)  # far (higher up) first
    return Location(name, horizon, items)


def _sample_cast(rng: np.random.Generator, n: int) -> List[Character]:
    colours = rng.permutation(len(COLOURS))[:n]  # distinct colours keep captions unambiguous
    names = list(COLOURS)
    return [
        Character(i + 1, names[int(c)], _pick(rng, SHAPES), _pick(rng, PATTERNS), float(rng.uniform(*SIZE_RANGE)))
        for i, c in enumerate(colours)
    ]


def _sample_cast_v2(rng: np.random.Generator, n: int) -> List[Character]:
    names = list(COLOURS)
    colours = rng.permutation(len(COLOURS))[:n]
    cast = []
    for i, c in enumerate(colours):
        lo, hi = SIZE_CLASSES_V2[int(rng.integers(len(SIZE_CLASSES_V2)))]
        second = [x for x in names if x != names[int(c)]]
        cast.append(
            Character(
                i + 1,
                names[int(c)],
                _pick(rng, SHAPES),
                _pick(rng, PATTERNS_V2),
                float(rng.uniform(lo, hi)),
                _pick(rng, second),
            )
        )
    return cast


def size_class(char: Character, version: int = 1) -> int:
    """0 small, 1 large (v2: the class it was drawn from; v1: below or above the middle radius)."""
    return int(char.size >= SIZE_SPLIT[version])


def _sample_shot(rng: np.random.Generator, scene_cast: Sequence[Character], locations, frames: int, seed: int) -> Shot:
    loc = int(rng.integers(len(locations)))
    horizon = locations[loc].horizon
    n_cast = len(scene_cast)
    r = rng.random()
    n = 0 if r < 0.05 else 1 if r < 0.55 or n_cast == 1 else 2 if r < 0.9 or n_cast == 2 else 3
    ids = sorted(int(i) + 1 for i in rng.permutation(n_cast)[:n])
    slots = rng.permutation(n) if n else []
    actors = []
    for slot, cid in zip(slots, ids):
        size = scene_cast[cid - 1].size
        action = _pick(rng, ACTIONS)
        centre = 0.15 + (slot + 0.5) * 0.7 / n + float(rng.uniform(-0.05, 0.05))
        x = centre + {"moves left": 0.5, "moves right": -0.5}.get(action, 0.0) * MOVE_DISTANCE
        feet = float(rng.uniform(horizon + 0.2, 0.93))
        actors.append(Actor(cid, action, float(x), feet - size))
    framing = "close-up" if n == 1 and rng.random() < 0.35 else "wide"
    camera = (0.5, 0.5, 1.0)
    if framing == "close-up":
        a = actors[0]
        dx = {"moves left": -0.5, "moves right": 0.5}.get(a.action, 0.0) * MOVE_DISTANCE
        half = 0.5 / CLOSE_UP_ZOOM
        camera = (float(np.clip(a.x + dx, half, 1 - half)), float(np.clip(a.y - 0.05, half, 1 - half)), CLOSE_UP_ZOOM)
    return Shot(loc, actors, framing, frames, seed, camera)


def sample_scene(
    seed: int,
    shots: int = 4,
    frames: Union[int, Sequence[int]] = 8,
    cast: Optional[int] = None,
    locations: Optional[int] = None,
    version: int = 1,
) -> Scene:
    """A random scene, a pure function of its arguments (version: the world, WORLD_VERSIONS)."""
    if version not in WORLD_VERSIONS:
        raise ValueError(f"unknown world version {version!r} (known: {', '.join(map(str, WORLD_VERSIONS))})")
    rng = np.random.default_rng(seed)
    n_cast = cast if cast is not None else int(rng.choice([1, 2, 3], p=[0.25, 0.4, 0.35]))
    n_loc = locations if locations is not None else int(rng.integers(1, 3))
    assert 1 <= n_cast <= MAX_CAST and 1 <= n_loc <= len(LOCATIONS)
    frame_list = [frames] * shots if isinstance(frames, int) else list(frames)
    assert len(frame_list) == shots and all(f >= 1 for f in frame_list)
    the_cast = (_sample_cast if version == 1 else _sample_cast_v2)(rng, n_cast)
    names = [LOCATIONS[int(i)] for i in rng.permutation(len(LOCATIONS))[:n_loc]]
    locs = [_sample_location(rng, n) for n in names]
    shot_seeds = rng.integers(0, 2**31 - 1, size=shots)
    shot_list = [_sample_shot(rng, the_cast, locs, f, int(s)) for f, s in zip(frame_list, shot_seeds)]
    return Scene(seed, the_cast, locs, shot_list, version)


# ---------------------------------------------------------------------------------------------
# Captions
# ---------------------------------------------------------------------------------------------
def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def global_caption(scene: Scene, oracle: bool = False) -> str:
    """ "Character 1 is a red star. Character 2 is an orange circle." With oracle=True the hidden
    size class and pattern too: "Character 1 is a large halved red star." """
    parts = []
    for c in scene.cast:
        words = [c.colour, c.shape]
        if oracle:
            words = [SIZE_WORDS[size_class(c, scene.version)], c.pattern] + words
        parts.append(f"Character {c.id} is {_article(words[0])} {' '.join(words)}.")
    return " ".join(parts)


def shot_caption(scene: Scene, index: int) -> str:
    """ "Character 1 bounces and character 2 stays in the meadow, wide." """
    shot = scene.shots[index]
    name = scene.locations[shot.location].name
    where = f"{PREPOSITION[name]} the {name}, {shot.framing}."
    if not shot.actors:
        return f"Nobody is {where}"
    parts = [f"character {a.char} {a.action}" for a in shot.actors]
    text = " and ".join(parts)
    return text[0].upper() + text[1:] + " " + where


_ORACLE = "(?:(?:" + "|".join(SIZE_WORDS) + ") )?(?:(?:" + "|".join(dict.fromkeys(PATTERNS + PATTERNS_V2)) + ") )?"
_GLOBAL_RE = re.compile(r"character (\d+) is an? " + _ORACLE + r"(\w+) (\w+)\.")
_ACTOR_RE = re.compile(r"character (\d+) (" + "|".join(ACTIONS) + r")")
_WHERE_RE = re.compile(r"(?:in|on) the (\w+), (" + "|".join(FRAMINGS) + r")\.$")


def parse_global_caption(text: str) -> Dict[int, Tuple[str, str]]:
    """Inverse of global_caption (oracle or not): {id: (colour, shape)}. Unparseable text gives {}."""
    return {int(i): (c, s) for i, c, s in _GLOBAL_RE.findall(text.lower())}


def parse_shot_caption(text: str) -> Optional[dict]:
    """Inverse of shot_caption: {"actors": [(id, action)], "location": str, "framing": str}."""
    low = text.lower().strip()
    where = _WHERE_RE.search(low)
    if not where:
        return None
    actors = [(int(i), a) for i, a in _ACTOR_RE.findall(low[: where.start()])]
    return {"actors": actors, "location": where.group(1), "framing": where.group(2)}


# ---------------------------------------------------------------------------------------------
# Storyboards
# ---------------------------------------------------------------------------------------------
def storyboard(scene: Scene) -> dict:
    """The studio's storyboard for a scene (captions only; the hidden attributes stay here)."""
    return {
        "version": STORYBOARD_VERSION,
        "globalCaption": global_caption(scene),
        "shots": [
            {"caption": shot_caption(scene, i), "frames": s.frames, "seed": s.seed} for i, s in enumerate(scene.shots)
        ],
    }


def validate_storyboard(board: dict) -> None:
    """Raise ValueError naming the first problem in a storyboard dict."""
    if not isinstance(board, dict) or board.get("version") != STORYBOARD_VERSION:
        raise ValueError(f"storyboard.version must be {STORYBOARD_VERSION}")
    if not isinstance(board.get("globalCaption"), str):
        raise ValueError("storyboard.globalCaption must be a string")
    shots = board.get("shots")
    if not isinstance(shots, list) or not shots:
        raise ValueError("storyboard.shots must be a non-empty list")
    for i, s in enumerate(shots):
        if not isinstance(s, dict) or not isinstance(s.get("caption"), str):
            raise ValueError(f"storyboard.shots[{i}].caption must be a string")
        for key in ("frames", "seed"):
            if (
                not isinstance(s.get(key), int)
                or isinstance(s.get(key), bool)
                or s[key] < (1 if key == "frames" else 0)
            ):
                raise ValueError(
                    f"storyboard.shots[{i}].{key} must be a {'positive' if key == 'frames' else 'non-negative'} integer"
                )


def export_storyboard(scene: Scene, path: str, size: int = 64, truth_path: Optional[str] = None):
    """Write the storyboard JSON; return the ground-truth frames (list of [F,size,size,3] uint8).

    With truth_path, also write the full scene (hidden attributes included) as JSON for eval.
    """
    from .render import render_scene

    board = storyboard(scene)
    validate_storyboard(board)
    with open(path, "w") as f:
        json.dump(board, f, indent=2)
        f.write("\n")
    if truth_path:
        with open(truth_path, "w") as f:
            json.dump(scene.to_dict(), f, indent=1)
            f.write("\n")
    return render_scene(scene, size)


def scene_from_dict(d: dict) -> Scene:
    """Inverse of Scene.to_dict (for ground truth written by export_storyboard)."""
    cast = [Character(**c) for c in d["cast"]]
    locs = [
        Location(
            l["name"],
            l["horizon"],
            [
                SceneryItem(**{**it, "colour": tuple(it["colour"]), "colour2": tuple(it["colour2"])})
                for it in l["items"]
            ],
        )
        for l in d["locations"]
    ]
    shots = [
        Shot(s["location"], [Actor(**a) for a in s["actors"]], s["framing"], s["frames"], s["seed"], tuple(s["camera"]))
        for s in d["shots"]
    ]
    return Scene(d["seed"], cast, locs, shots, d.get("version", 1))
