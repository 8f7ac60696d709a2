"""The training engine behind :mod:`hyplib.train`, in small parts.

* :mod:`.config` — run configurations as data: defaults, ``--set`` overrides, validation, diffs.
* :mod:`.schedule` — AdamW over ``param_groups``; linear warm-up then cosine, per step.
* :mod:`.step` — one optimisation step (autocast, all-gather, loss, backward, clip, clamps).
* :mod:`.loop` — :func:`~hyplib.training.loop.fit`: set-up, exact resume, checkpoints, logs.
* :mod:`.checkpoint` — atomic checkpoint files, RNG states, pruning.
* :mod:`.distributed` — torchrun/DDP set-up, device choice, all-gather with gradients.
* :mod:`.logging` — ``log.jsonl`` records and the progress-bar summary.
"""
