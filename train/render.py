"""Numpy renderer of the world (world.py): shots -> uint8 frames [F, size, size, 3].

Geometry: world units, the wide view is the unit square, y grows downwards. A shot's camera
(cx, cy, zoom) maps pixel centre (px, py) of a size x size frame to world
    u = cx + ((px + 0.5) / size - 0.5) / zoom,   v = cy + ((py + 0.5) / size - 0.5) / zoom.
Background (sky gradient, ground, scenery) is static within a shot and drawn once; each
character is drawn for all F frames at once on [F, size, size] grids (vectorised, thousands of
frames per second at 64x64 on one CPU core). Characters are drawn far to near (by rest y), each
with a dark outline and its pattern in body-local coordinates, so patterns turn when it spins.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from .vocab import COLOURS
from .world import BOUNCE_HEIGHT, GROW_FACTOR, MOVE_DISTANCE, SPIN_TURNS, Actor, Character, Scene, Shot

PALETTES = {  # location -> (sky top, sky at horizon, ground at horizon, ground at bottom)
    "meadow": ((110, 170, 235), (185, 220, 250), (110, 180, 85), (80, 155, 60)),
    "beach": ((90, 180, 240), (200, 235, 250), (240, 222, 170), (220, 195, 140)),
    "desert": ((240, 170, 90), (250, 222, 165), (215, 165, 95), (190, 135, 70)),
    "forest": ((90, 140, 120), (160, 200, 170), (55, 115, 55), (35, 90, 40)),
    "city": ((120, 130, 160), (190, 190, 205), (125, 125, 135), (100, 100, 110)),
    "snow": ((150, 180, 220), (215, 225, 240), (245, 248, 252), (220, 228, 238)),
}
OUTLINE = np.array((25, 25, 30), np.float32)
OUTLINE_WIDTH = 0.2  # in units of the character's radius


def actor_state(actor: Actor, char: Character, t: np.ndarray) -> Tuple[np.ndarray, ...]:
    """Centre x, centre y, scale, angle of an actor at shot times t in [0, 1] (arrays like t)."""
    t = np.asarray(t, np.float32)
    x = np.full_like(t, actor.x)
    y = np.full_like(t, actor.y)
    scale = np.ones_like(t)
    angle = np.zeros_like(t)
    if actor.action == "moves left":
        x = x - MOVE_DISTANCE * t
    elif actor.action == "moves right":
        x = x + MOVE_DISTANCE * t
    elif actor.action == "bounces":
        y = y - BOUNCE_HEIGHT * np.abs(np.sin(2 * np.pi * t))
    elif actor.action == "spins":
        angle = 2 * np.pi * SPIN_TURNS * t
    elif actor.action == "grows":
        scale = 1 + GROW_FACTOR * t
        y = y - char.size * (scale - 1)  # feet stay on the ground
    return x, y, scale, angle


def shot_times(frames: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, frames, dtype=np.float32) if frames > 1 else np.zeros(1, np.float32)


def shape_mask(shape: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Inside test in body-local units (radius 1, b grows downwards, points face up)."""
    if shape == "circle":
        return a * a + b * b <= 1.0
    if shape == "square":
        return np.maximum(np.abs(a), np.abs(b)) <= 0.82
    if shape == "diamond":
        return np.abs(a) + np.abs(b) <= 1.0
    if shape == "triangle":
        return (b <= 0.55) & (b >= -1.0 + 1.8 * np.abs(a))
    if shape == "cross":
        aa, bb = np.abs(a), np.abs(b)
        return ((aa <= 0.32) & (bb <= 0.95)) | ((bb <= 0.32) & (aa <= 0.95))
    if shape == "star":
        r = np.sqrt(a * a + b * b)
        theta = np.arctan2(a, -b)  # 0 at the top point
        w = np.abs(np.mod(theta * 5 / (2 * np.pi) + 0.5, 1.0) - 0.5) * 2  # 1 at points, 0 between
        return r <= 0.42 + 0.6 * (1 - w) ** 2
    raise ValueError(f"unknown shape {shape!r}")


def pattern_mask(pattern: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Where the pattern's darker colour shows, in body-local units."""
    if pattern == "solid":
        return np.zeros(a.shape, bool)
    if pattern == "striped":
        return np.mod(np.floor((b + 2.0) / 0.5), 2) == 1
    if pattern == "dotted":
        da = np.mod(a + 2.0, 0.8) - 0.4
        db = np.mod(b + 2.0, 0.8) - 0.4
        return da * da + db * db <= 0.24**2
    if pattern == "checkered":
        return np.mod(np.floor((a + 2.0) / 0.6) + np.floor((b + 2.0) / 0.6), 2) == 1
    # world v2: half a body or more, so at least one 8x8 patch changes colour as a whole
    if pattern == "halved":
        return b > 0.0
    if pattern == "banded":
        return np.abs(b) <= 0.38
    if pattern == "cored":
        return a * a + b * b <= 0.6**2
    raise ValueError(f"unknown pattern {pattern!r}")


def pattern_colour(colour: str, colour2: Optional[str] = None) -> np.ndarray:
    """The pattern's colour: v1 a darker shade of the body's; v2 the hidden second colour."""
    if colour2 is not None:
        return np.array(COLOURS[colour2], np.float32)
    body = np.array(COLOURS[colour], np.float32)
    return np.array((135, 135, 140), np.float32) if colour == "white" else body * 0.55


def _world_grid(shot: Shot, size: int) -> Tuple[np.ndarray, np.ndarray]:
    cx, cy, zoom = shot.camera
    p = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    u = cx + p[None, :] / zoom  # [1, W]
    v = cy + p[:, None] / zoom  # [H, 1]
    return np.broadcast_to(u, (size, size)), np.broadcast_to(v, (size, size))


def render_background(scene: Scene, shot: Shot, size: int) -> np.ndarray:
    """Static background of a shot: float32 [size, size, 3] in 0..255."""
    loc = scene.locations[shot.location]
    sky_top, sky_hor, gnd_hor, gnd_bot = (np.array(c, np.float32) for c in PALETTES[loc.name])
    u, v = _world_grid(shot, size)
    hz = loc.horizon
    s = np.clip(v / hz, 0, 1)[..., None]
    g = np.clip((v - hz) / (1.0 - hz), 0, 1)[..., None]
    img = np.where((v < hz)[..., None], sky_top + (sky_hor - sky_top) * s, gnd_hor + (gnd_bot - gnd_hor) * g).astype(
        np.float32
    )
    for it in loc.items:
        c1 = np.array(it.colour, np.float32)
        c2 = np.array(it.colour2, np.float32)
        du = u - it.x
        if it.kind == "tree":
            trunk = (np.abs(du) <= it.width * 0.12) & (v <= it.base) & (v >= it.base - it.height * 0.5)
            crown = (du / (it.width * 0.5)) ** 2 + ((v - (it.base - it.height * 0.68)) / (it.height * 0.34)) ** 2 <= 1
            img[trunk] = c1
            img[crown] = c2
        elif it.kind == "house":
            wall_top = it.base - it.height * 0.62
            wall = (np.abs(du) <= it.width / 2) & (v <= it.base) & (v >= wall_top)
            apex = it.base - it.height
            roof = (v >= apex) & (v < wall_top) & (np.abs(du) <= (v - apex) / (wall_top - apex) * it.width * 0.62)
            img[wall] = c1
            img[roof] = c2
        else:  # rock: upper half of an ellipse standing on its base
            rock = ((du / (it.width / 2)) ** 2 + ((v - it.base) / (it.height)) ** 2 <= 1) & (v <= it.base)
            img[rock] = c1
    return img


def render_shot(scene: Scene, index: int, size: int = 64, masks: bool = False):
    """Frames of shot `index`: uint8 [F, size, size, 3]; with masks=True also
    {character id: bool [F, size, size]} of the pixels where that character is visible."""
    shot = scene.shots[index]
    frames = np.repeat(render_background(scene, shot, size)[None], shot.frames, axis=0)
    u, v = _world_grid(shot, size)
    t = shot_times(shot.frames)
    visible: Dict[int, np.ndarray] = {}
    for actor in sorted(shot.actors, key=lambda a: a.y + scene.character(a.char).size):
        char = scene.character(actor.char)
        x, y, scale, angle = actor_state(actor, char, t)
        r = (char.size * scale)[:, None, None]  # [F, 1, 1]
        du = (u[None] - x[:, None, None]) / r  # [F, H, W]
        dv = (v[None] - y[:, None, None]) / r
        ca, sa = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
        a = ca * du + sa * dv  # body-local, turns with angle
        b = -sa * du + ca * dv
        body = shape_mask(char.shape, a, b)
        grow = 1.0 + OUTLINE_WIDTH
        outline = shape_mask(char.shape, a / grow, b / grow) & ~body
        dark = body & pattern_mask(char.pattern, a, b)
        frames[outline] = OUTLINE
        frames[body] = np.array(COLOURS[char.colour], np.float32)
        frames[dark] = pattern_colour(char.colour, char.colour2)
        drawn = body | outline
        for other in visible.values():
            other &= ~drawn
        visible[char.id] = drawn
    out = np.clip(frames + 0.5, 0, 255).astype(np.uint8)
    return (out, visible) if masks else out


def render_scene(scene: Scene, size: int = 64) -> List[np.ndarray]:
    """All shots: a list of uint8 [F_s, size, size, 3]."""
    return [render_shot(scene, i, size) for i in range(len(scene.shots))]


def contact_sheet(shots: List[np.ndarray], every: int = 1) -> np.ndarray:
    """One image with a row per shot (frames side by side), uint8 [rows*H, cols*W, 3]."""
    rows = [s[::every] for s in shots]
    cols = max(r.shape[0] for r in rows)
    h, w = rows[0].shape[1:3]
    sheet = np.full((len(rows) * h, cols * w, 3), 255, np.uint8)
    for i, r in enumerate(rows):
        for j, f in enumerate(r):
            sheet[i * h : (i + 1) * h, j * w : (j + 1) * w] = f
    return sheet


def write_png(path: str, image: np.ndarray) -> None:
    """Write uint8 [H, W, 3] as an 8-bit RGB PNG (stdlib zlib only, no imaging library)."""
    import struct
    import zlib

    img = np.ascontiguousarray(image, dtype=np.uint8)
    h, w = img.shape[:2]
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b"")
        )
