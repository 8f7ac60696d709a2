"""Tables of the reproduction: the main comparison of all methods and the claims table.

* :func:`main_comparison`: rows = methods of the ``main`` study, columns = the key metric of
  every protocol (:data:`MAIN_METRICS`), mean and sample std (ddof=1) over seeds.
* :func:`claims_table`: one row per claim of docs/METHODS.md section 5 (sub-parts as rows), with
  the measured quantity, its values, the direction observed and whether the claim holds here.
  Everything is computed from the metrics (and training logs); no outcome is written in.
* :func:`write_tables`: Markdown and CSV files (``main_comparison.*``, ``claims.*``).

Verdict rules (:mod:`hyplib.reporting.common`: :func:`beats`, :func:`about_equal`,
:func:`sign_of`): with fewer than 2 seeds on either side, or a difference no larger than the
seeds' spread (``sqrt(s_a^2 + s_b^2)``, or ``s`` against a fixed value), the answer is
``inconclusive``; otherwise ``yes``/``no`` by the sign. "About equal" holds within a tolerance of one point (:data:`EQUAL_TOL`). A claim with
several parts holds when every part does, fails when any part fails, else is inconclusive.
"""
from hyplib.reporting.claims import CLAIM_COLUMNS, claims_table
from hyplib.reporting.common import (EQUAL_TOL, MAIN_METRICS, about_equal, beats, combine, fmt, near,
                                     sign_of)
from hyplib.reporting.tables import claims_markdown, main_comparison, to_markdown, write_tables

__all__ = ["MAIN_METRICS", "EQUAL_TOL", "CLAIM_COLUMNS", "main_comparison", "to_markdown", "claims_table",
           "claims_markdown", "write_tables", "beats", "about_equal", "near", "sign_of", "combine", "fmt"]
