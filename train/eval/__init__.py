"""Evaluation of a MoC DiT on held-out storyboards of the procedural world (MODEL.md "Evaluation").

    probes.py    what the eval knows about a scene: ground truth, counterfactual renders, tests
    measures.py  the measures (colour histograms, template NCC, still images, colour motion)
    generate.py  loading a checkpoint / exported folder, batched generation per attention mode
    report.py    summaries, the markdown table, the model card, contact sheets
    run.py       the CLI: `python3 -m train.eval --help`
"""
