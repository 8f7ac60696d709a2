"""Loss on float16 embeddings of norm 400 (and 180) per method: finite or not."""
import sys

import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "tests"))
from test_half_precision import _config, _embeddings

from hyplib import methods

for norm in (180.0, 400.0):
    row = []
    for full in methods.names() + ["atmg:code"]:
        name, _, variant = full.partition(":")
        m = methods.get(name, **_config(name), **({"variant": variant} if variant else {}))
        _, emb = _embeddings(m, torch.float16, norm=norm)
        loss = m.loss(emb)["loss"]
        row.append(f"{full}={'finite' if torch.isfinite(loss) else 'NaN/Inf'}")
    print(f"norm {norm:g}:", ", ".join(row))
