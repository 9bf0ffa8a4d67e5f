import json
import os
import time

import numpy as np
import pytest

from train.render import PALETTES, pattern_colour, render_background, render_scene, render_shot
from train.vocab import COLOURS, CaptionTooLong, Vocab
from train.world import (
    export_storyboard,
    global_caption,
    parse_global_caption,
    parse_shot_caption,
    sample_scene,
    scene_from_dict,
    shot_caption,
    storyboard,
    validate_storyboard,
)

SEEDS = range(60)


def test_determinism():
    for seed in (0, 7, 123456789):
        a, b = sample_scene(seed), sample_scene(seed)
        assert a.to_dict() == b.to_dict()
        for fa, fb in zip(render_scene(a), render_scene(b)):
            assert fa.dtype == np.uint8 and np.array_equal(fa, fb)
    assert sample_scene(1).to_dict() != sample_scene(2).to_dict()
    assert not all(np.array_equal(x, y) for x, y in zip(render_scene(sample_scene(1)), render_scene(sample_scene(2))))


def test_resolution_and_frames_are_parameters():
    s = sample_scene(5, shots=3, frames=[2, 5, 1])
    shots = render_scene(s, size=32)
    assert [f.shape for f in shots] == [(2, 32, 32, 3), (5, 32, 32, 3), (1, 32, 32, 3)]


def test_captions_agree_with_scene_and_tokenize():
    vocab = Vocab()
    for seed in SEEDS:
        s = sample_scene(seed)
        g = global_caption(s)
        assert parse_global_caption(g) == {c.id: (c.colour, c.shape) for c in s.cast}
        assert 1 <= len(s.cast) <= 3 and 1 <= len(s.locations) <= 2
        for i, shot in enumerate(s.shots):
            cap = shot_caption(s, i)
            parsed = parse_shot_caption(cap)
            assert parsed == {
                "actors": [(a.char, a.action) for a in shot.actors],
                "location": s.locations[shot.location].name,
                "framing": shot.framing,
            }, cap
            if shot.framing == "close-up":
                assert len(shot.actors) == 1
        for cap in [g] + [shot_caption(s, i) for i in range(len(s.shots))]:
            enc = vocab.encode(cap, 24)
            assert enc.unknown == [] and len(enc.ids) == 24
            assert vocab.decode(enc.ids).replace(" .", ".").replace(" ,", ",") == cap.lower()


def test_pixels_show_the_captioned_colour_and_location():
    for seed in SEEDS:
        s = sample_scene(seed)
        for i, shot in enumerate(s.shots):
            frames, masks = render_shot(s, i, 64, masks=True)
            for a in shot.actors:
                m = masks[a.char][0]
                if shot.framing == "wide" and len(shot.actors) == 1:
                    assert m.sum() > 20, "a lone character is clearly visible in a wide shot"
                if m.sum() == 0:
                    continue
                char = s.character(a.char)
                px = frames[0][m].astype(int)
                near = lambda c: np.abs(px - np.asarray(c)).sum(-1) < 8
                body = near(COLOURS[char.colour])
                hit = (body | near(pattern_colour(char.colour).round())).mean()
                assert body.any() and hit > 0.4, f"seed {seed} shot {i}: colour covers {hit:.2f} of the character"
            # the ground at the bottom row is the location's palette (where no character stands)
            loc = s.locations[shot.location]
            bg = render_background(s, shot, 64)
            if shot.framing == "wide":
                assert np.abs(bg[-1, 0] - np.array(PALETTES[loc.name][3])).max() < 12


def test_uncaptioned_attributes_persist_across_shots():
    """Scenery is pixel-identical across wide shots of one location; a character's size is the
    same wherever it appears; hidden attributes vary between scenes (so they need memory)."""
    checked_bg = checked_size = 0
    for seed in SEEDS:
        s = sample_scene(seed, shots=6)
        wide = {}
        for i, shot in enumerate(s.shots):
            if shot.framing == "wide":
                wide.setdefault(shot.location, []).append(i)
        for loc, idx in wide.items():
            if len(idx) < 2:
                continue
            (fa, ma), (fb, mb) = (render_shot(s, j, 64, masks=True) for j in idx[:2])
            free = np.ones((64, 64), bool)
            for m in list(ma.values()) + list(mb.values()):
                free &= ~m.any(0)
                free &= ~np.roll(m.any(0), 1, 0) & ~np.roll(m.any(0), -1, 0)
            assert np.array_equal(fa[0][free], fb[0][free]), f"seed {seed}: scenery changed between shots"
            checked_bg += 1
        areas = {}
        for i, shot in enumerate(s.shots):
            if shot.framing != "wide" or len(shot.actors) != 1 or shot.actors[0].action == "grows":
                continue
            _, masks = render_shot(s, i, 64, masks=True)
            cid = shot.actors[0].char
            areas.setdefault(cid, []).append(int(masks[cid][0].sum()))
        for cid, a in areas.items():
            if len(a) >= 2:
                assert max(a) <= 1.25 * min(a), f"seed {seed}: character {cid} changed size {a}"
                checked_size += 1
    assert checked_bg >= 5 and checked_size >= 5
    patterns = {sample_scene(seed).cast[0].pattern for seed in SEEDS}
    layouts = {round(sample_scene(seed).locations[0].horizon, 4) for seed in SEEDS}
    assert len(patterns) >= 3 and len(layouts) > 30


def test_storyboard_export(tmp_path):
    s = sample_scene(11, shots=3, frames=[4, 6, 8])
    frames = export_storyboard(s, str(tmp_path / "board.json"), size=32, truth_path=str(tmp_path / "truth.json"))
    board = json.loads((tmp_path / "board.json").read_text())
    validate_storyboard(board)
    assert set(board) == {"version", "globalCaption", "shots"} and board["version"] == 1
    assert [sh["frames"] for sh in board["shots"]] == [4, 6, 8] == [f.shape[0] for f in frames]
    assert all(set(sh) == {"caption", "frames", "seed"} for sh in board["shots"])
    assert board == storyboard(s)
    again = scene_from_dict(json.loads((tmp_path / "truth.json").read_text()))
    assert again.to_dict() == s.to_dict()
    with pytest.raises(ValueError, match="shots\\[0\\].frames"):
        validate_storyboard({**board, "shots": [{"caption": "x", "frames": 0, "seed": 1}]})


def test_tokenizer_reports_unknown_words():
    v = Vocab()
    enc = v.encode("Character 1 is a mauve star. Character 2 dances!", 24)
    assert enc.unknown == ["mauve", "dances!"]
    assert v.unk_id in enc.ids and enc.ids[-1] == v.pad_id
    assert v.encode("Character 1 bounces in the meadow, close-up.", 24).unknown == []
    with pytest.raises(CaptionTooLong):
        v.encode("character " * 30, 24)
    assert v.to_json()["words"][:2] == ["<pad>", "<unk>"]


def test_render_speed():
    scenes = [sample_scene(seed) for seed in range(8)]
    t = time.time()
    n = sum(f.shape[0] for s in scenes for f in render_scene(s, 64))
    fps = n / (time.time() - t)
    assert fps > 200, f"rendering {fps:.0f} frames/s"


STORYBOARDS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "public", "storyboards"
)


def test_sample_storyboards_are_current_and_tokenize():
    """public/storyboards holds what `python3 -m train.preview --samples` writes; every caption
    tokenizes with no unknown word within text_len, parses back, and names only the cast."""
    from train.model import ModelConfig
    from train.preview import sample_files

    text_len = ModelConfig().text_len
    vocab = Vocab()
    files = sample_files()
    on_disk = sorted(f for f in os.listdir(STORYBOARDS) if f.endswith(".json"))
    assert on_disk == sorted(files), "run: /usr/bin/python3 -m train.preview --samples public/storyboards"
    for name, content in files.items():
        with open(os.path.join(STORYBOARDS, name)) as f:
            assert json.load(f) == content, f"{name} is stale: rerun train.preview --samples"
    entries = files["index.json"]["storyboards"]
    assert len(entries) >= 3 and all(e["title"] and e["description"] for e in entries)
    assert max(e["shots"] for e in entries) >= 6, "one long storyboard for benchmarks"
    memory = 0
    for e in entries:
        board = files[e["file"]]
        validate_storyboard(board)
        caps = [board["globalCaption"]] + [s["caption"] for s in board["shots"]]
        for cap in caps:
            enc = vocab.encode(cap, text_len)  # raises CaptionTooLong past text_len
            assert enc.unknown == [], f"{e['file']}: unknown words {enc.unknown} in {cap!r}"
        cast = parse_global_caption(board["globalCaption"])
        assert cast and sorted(cast) == list(range(1, len(cast) + 1))
        present = []
        for s in board["shots"]:
            parsed = parse_shot_caption(s["caption"])
            assert parsed is not None, s["caption"]
            assert all(cid in cast for cid, _ in parsed["actors"])
            present.append({cid for cid, _ in parsed["actors"]})
        # memory: someone seen in shot 1, absent in shot 2, back in shot 3
        memory += bool(len(present) >= 3 and (present[0] - present[1]) & present[2])
    assert memory >= 1
