"""Tables of the reproduction: the main comparison of all methods and the claims table.

* :func:`main_comparison`: rows = methods of the ``main`` study, columns = the key metric of
  every protocol (:data:`MAIN_METRICS`), mean and sample std (ddof=1) over seeds.
* :func:`claims_table`: one row per claim of docs/METHODS.md section 5 (sub-parts as rows), with
  the measured quantity, its values, the direction observed and whether the claim holds here.
  Everything is computed from the metrics (and training logs); no outcome is written in.
* :func:`write_tables`: Markdown and CSV files (``main_comparison.*``, ``claims.*``).

Verdict rules (:mod:`hyplib.reporting.common`): every claim is decided ``yes`` or ``no`` once
its arms have seeds to compare, the seeds' spread being the noise scale; a difference within the
spread answers "A beats B" with ``no`` (not shown at this scale) and "A is about equal to B" with
``yes`` (indistinguishable). ``inconclusive`` is left for what cannot be measured; a conditional
claim whose condition the runs never reached says :data:`NOT_REACHED` with the measured trend. A
claim with several parts holds when every part does and fails when any part fails.
"""
from hyplib.reporting.claims import CLAIM_COLUMNS, claims_table
from hyplib.reporting.common import (
                                     EQUAL_TOL,
                                     MAIN_METRICS,
                                     NOT_REACHED,
                                     about_equal,
                                     beats,
                                     combine,
                                     fmt,
                                     near,
                                     sign_of,
)
from hyplib.reporting.tables import RANDOM_ROW, claims_markdown, main_comparison, to_markdown, write_tables

__all__ = ["MAIN_METRICS", "EQUAL_TOL", "NOT_REACHED", "RANDOM_ROW", "CLAIM_COLUMNS", "main_comparison", "to_markdown",
           "claims_table", "claims_markdown", "write_tables", "beats", "about_equal", "near", "sign_of", "combine",
           "fmt"]
