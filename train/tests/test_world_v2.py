"""World v2 (train/world.py `version=2`), the v1 reproducibility digest, oracle captions."""
import hashlib
import json

import numpy as np

from train.render import render_scene, render_shot
from train.world import global_caption, sample_scene, shot_caption, storyboard

# sha256 of v1 scenes, renders and captions for fixed seeds, taken at 705bcf6 (before world v2).
V1_DIGEST = "0430767297e048a6a304cbe9913e399149d1923da7597f04011f776b5ca84a65"


def v1_digest() -> str:
    h = hashlib.sha256()
    for seed, shots, frames in [(0, 4, 8), (1, 4, 8), (7, 3, [2, 5, 1]), (123456789, 2, 4), (42, 4, 3)]:
        s = sample_scene(seed, shots=shots, frames=frames)
        h.update(json.dumps(s.to_dict(), sort_keys=True).encode())
        h.update(json.dumps(storyboard(s), sort_keys=True).encode())
        h.update(global_caption(s).encode())
        for i in range(len(s.shots)):
            h.update(shot_caption(s, i).encode())
            frames_i, masks = render_shot(s, i, 32, masks=True)
            h.update(frames_i.tobytes())
            for cid in sorted(masks):
                h.update(masks[cid].tobytes())
        for f in render_scene(s, 64):
            h.update(f.tobytes())
    return h.hexdigest()


def test_v1_is_bit_for_bit_unchanged():
    assert v1_digest() == V1_DIGEST
