"""One module per figure; every module here is a figure (see :mod:`hyplib.figures.registry`).

A figure module defines ``NAME``, ``CAPTION``, ``STUDIES``, ``METHODS``, ``RELEASED``,
``inputs(runs, bench_dir) -> dict`` (from evaluation outputs only), ``draw(**inputs) -> Figure``
and, when it needs something only a checkpoint gives, ``eval_arrays(model, bench_dir) -> dict``
(called once per run by the evaluation, saved in ``figure_inputs.npz``).
"""
