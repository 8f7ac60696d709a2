"""open_clip's attention pool computed for the one token it returns.

open_clip's ``AttentionPool2d`` (the last layer of its ModifiedResNet) builds ``HW + 1`` tokens
from the final ``(N, C, H, W)`` feature map: the mean of the ``HW`` positions, then every
position, each plus its positional embedding. It runs multi-head attention with every token as a
query and returns the output of the first token only. :class:`FirstTokenAttentionPool` computes
the same output with less work:

* only the first token gets a query and an output projection (1 instead of ``HW + 1``);
* keys and values are affine in the tokens, so the mean token's key (value) is the mean of the
  positions' keys (values): the batch is projected at ``HW`` positions instead of ``HW + 1``,
  and the positional embeddings, with the biases, are projected once per call.

The two are equal in exact arithmetic and differ in float32 rounding (``tests/test_attention_pool.py``
checks both). At the default run's 32-px input the last stage is 1 x 1, so the pool projects one
position instead of two and has half the multiply-adds. On 2 CPU cores, batch 64, the image
tower's forward and backward took 9-13% less time and a training step 7-10% less
(docs/recipe_study.md, section 8).

Parameters, their names and ``state_dict`` are open_clip's: :func:`use_first_token_pool` only
changes the pool's class, so checkpoints load either way.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from open_clip.modified_resnet import AttentionPool2d
from torch import Tensor, nn

__all__ = ["FirstTokenAttentionPool", "use_first_token_pool"]


class FirstTokenAttentionPool(AttentionPool2d):
    """open_clip's ``AttentionPool2d`` with a forward that computes only the returned token."""

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` feature map -> ``(N, output_dim)``, open_clip's ``x[0]``."""
        n, c, h, w = x.shape
        heads = self.num_heads
        pos = self.positional_embedding.to(x.dtype)                   # (HW + 1, C)
        cells = x.reshape(n, c, h * w).transpose(1, 2)                 # (N, HW, C)
        query = F.linear(cells.mean(dim=1) + pos[0], self.q_proj.weight, self.q_proj.bias)

        def per_token(proj: nn.Linear) -> Tensor:
            at_cells = F.linear(cells, proj.weight)                    # (N, HW, C), no bias yet
            tokens = torch.cat([at_cells.mean(dim=1, keepdim=True), at_cells], dim=1)
            return tokens + F.linear(pos, proj.weight, proj.bias)      # (N, HW + 1, C)

        key, value = per_token(self.k_proj), per_token(self.v_proj)
        split = (n, -1, heads, c // heads)
        out = F.scaled_dot_product_attention(query.view(n, 1, heads, -1).transpose(1, 2),
                                             key.view(split).transpose(1, 2),
                                             value.view(split).transpose(1, 2))
        return F.linear(out.reshape(n, c), self.c_proj.weight, self.c_proj.bias)


def use_first_token_pool(visual: nn.Module) -> nn.Module:
    """Give ``visual``'s attention pool the :class:`FirstTokenAttentionPool` forward, in place.

    ``visual`` is an open_clip image tower; a tower without ``AttentionPool2d`` (the ViT) is
    returned unchanged. Returns ``visual``."""
    pool = getattr(visual, "attnpool", None)
    if isinstance(pool, AttentionPool2d) and not isinstance(pool, FirstTokenAttentionPool):
        pool.__class__ = FirstTokenAttentionPool
    return visual
