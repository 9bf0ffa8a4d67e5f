"""Evaluation of a MoC DiT on held-out storyboards of the procedural world (MODEL.md "Evaluation").

    probes.py    what the eval knows about a scene: ground truth, counterfactual renders, tests
    measures.py  the measures (colour histograms, template NCC, still images, colour mass, colour motion)
    generate.py  loading a checkpoint / exported folder, batched generation per attention mode
    report.py    summaries, the markdown tables, the model card, contact sheets
    stats.py     cluster-bootstrap intervals (by storyboard / scene)
    memory.py    the counterfactual-memory probe: `python3 -m train.eval.memory --help`
    retrieval.py whether MoC routing retrieves a character's earlier shots
    run.py       the CLI: `python3 -m train.eval --help`
"""
