"""MoC Studio's Python side: the procedural world, the reference MoC DiT, the trainer.

Run everything from the repository root with Debian's interpreter, e.g.
`/usr/bin/python3 -m pytest train/tests -q` or `/usr/bin/python3 -m train.train --help`.
"""
