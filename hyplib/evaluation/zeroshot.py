"""Zero-shot classification.

Class embeddings: each class's prompt features are averaged **in the tangent space**
(``model.text_features``: after the projection, before alpha and expmap), then lifted with
``model.lift`` (``prompt_agg="tangent_mean"``, MERU/HyCoCLIP/PHyCLIP). ATMG instead averages
the *scores* over prompts (``prompt_agg="score_mean"``: each prompt lifted on its own,
similarity averaged per class); ``"auto"`` takes the method's own choice,
``method.EVAL_DEFAULTS["prompt_agg"]`` (ATMG: ``score_mean``; the others: the tangent mean).

Images are scored against the classes with the method's own similarity (or a product
variant, see :func:`hyplib.evaluation._common.similarity_fn`). Reported: mean per-class
accuracy (the papers' number), top-1 and, when there are at least 5 classes, top-5.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from hyplib.evaluation import _common as C

PROMPT_AGGS = ("auto", "tangent_mean", "score_mean")


def accuracy_metrics(scores, labels) -> dict:
    """Accuracies of a score matrix.

    Args:
        scores: (N, C) higher = more likely.
        labels: (N,) int true classes in [0, C).

    Returns:
        ``mean_per_class_acc`` (mean over classes present in ``labels`` of their accuracy),
        ``top1`` and ``top5`` (only if C >= 5), and ``chance`` (1/C: the expected mean
        per-class accuracy of a uniform guess). Ties are broken pessimistically
        (:data:`hyplib.evaluation._common.TIE_RULE`): an image is right at top-K only when
        fewer than K wrong classes score at least as high as its true class, so a constant
        score matrix gets 0 (below chance), never 1.
    """
    s = torch.as_tensor(np.asarray(scores) if not isinstance(scores, Tensor) else scores)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if s.dim() != 2 or y.shape != (s.shape[0],):
        raise ValueError(f"scores must be (N, C) and labels (N,), got {tuple(s.shape)} and {tuple(y.shape)}")
    n, c = s.shape
    if n == 0:
        raise ValueError("no images to score")
    if y.min() < 0 or y.max() >= c:
        raise ValueError(f"labels must lie in [0, {c}), got [{int(y.min())}, {int(y.max())}]")
    right = torch.nn.functional.one_hot(y, c).bool()
    rank = C.rank_among_wrong(s, right)
    correct = (rank == 0).double()
    per_class_total = torch.bincount(y, minlength=c).double()
    per_class_hit = torch.bincount(y, weights=correct, minlength=c)
    present = per_class_total > 0
    out = {"mean_per_class_acc": float((per_class_hit[present] / per_class_total[present]).mean()),
           "top1": float(correct.mean()), "chance": 1.0 / c}
    if c >= 5:
        out["top5"] = float((rank < 5).double().mean())
    return out


def predictions(scores, labels) -> Tensor:
    """(N,) predicted classes of (N, C) scores: the top class, a wrong one whenever a wrong
    class ties the true one (:func:`hyplib.evaluation._common.pessimistic_argmax`); these are
    what the hierarchy metrics score."""
    s = torch.as_tensor(np.asarray(scores) if not isinstance(scores, Tensor) else scores)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    return C.pessimistic_argmax(s, torch.nn.functional.one_hot(y, s.shape[1]).bool())


def _prompts(classnames: Sequence[str], templates: Sequence[str]) -> list[str]:
    if not templates or any("{}" not in t for t in templates):
        raise ValueError(f"templates must be non-empty strings containing '{{}}', got {list(templates)[:3]}")
    return [t.format(name) for name in classnames for t in templates]


def class_embeddings(model, classnames: Sequence[str], templates: Sequence[str], *,
                     prompt_agg: str = "tangent_mean", batch_size: int = 256) -> Tensor:
    """Class embeddings from prompts.

    Returns:
        ``tangent_mean``: (C, D) lifted means of the tangent prompt features;
        ``score_mean``: (C, T, D) each prompt lifted on its own.
    """
    feats = C.text_features(model, _prompts(classnames, templates), batch_size=batch_size)
    nc, nt = len(classnames), len(templates)
    feats = feats.reshape(nc, nt, -1)
    if prompt_agg == "tangent_mean":
        return C.lift(model, feats.mean(1), "text")
    if prompt_agg == "score_mean":
        return C.lift(model, feats.reshape(nc * nt, -1), "text").reshape(nc, nt, -1)
    raise ValueError(f"prompt_agg={prompt_agg!r} unknown; choose one of {PROMPT_AGGS[1:]}")


def class_scores(image: Tensor, classes: Tensor, sim, curv, *, block_elems: int = 1 << 22) -> Tensor:
    """Scores (N, C) of images (N, D) against classes (C, D), or averaged over prompts for
    classes (C, T, D); images in blocks of at most ``block_elems`` intermediate floats."""
    flat = classes.reshape(-1, classes.shape[-1])
    rows = max(1, block_elems // (flat.shape[0] * getattr(sim, "width", 1)))
    out = []
    for s in range(0, image.shape[0], rows):
        S = C.as_float(sim(image[s:s + rows], flat, curv), "scores")
        out.append(S if classes.dim() == 2 else S.reshape(S.shape[0], classes.shape[0], classes.shape[1]).mean(-1))
    return torch.cat(out)


def resolve_prompt_agg(prompt_agg: str, method) -> str:
    """``prompt_agg``, or for ``"auto"`` the method's ``EVAL_DEFAULTS["prompt_agg"]``
    (``"tangent_mean"`` for a method that states none)."""
    if prompt_agg not in PROMPT_AGGS:
        raise ValueError(f"prompt_agg={prompt_agg!r} unknown; choose one of {PROMPT_AGGS}")
    if prompt_agg == "auto":
        agg = getattr(method, "EVAL_DEFAULTS", {}).get("prompt_agg", "tangent_mean")
        if agg not in PROMPT_AGGS[1:]:
            raise ValueError(f"method {getattr(method, 'name', method)!r} states prompt_agg={agg!r}; "
                             f"choose one of {PROMPT_AGGS[1:]}")
        return agg
    return prompt_agg


def zeroshot_scores(source, benchmark: Mapping, *, method=None, curv=None, score: str = "method",
                    prompt_agg: str = "auto", batch_size: int = 128) -> tuple[Tensor, np.ndarray]:
    """(N, C) class scores and (N,) labels of the zero-shot benchmark.

    ``source``: a model, or ``{"image": (N, D), "classes": (C, D) or (C, T, D), "curv": ...}``
    with lifted class embeddings (their prompt aggregation is then the caller's business).
    """
    C.need(benchmark, ["labels"], "the zeroshot benchmark")
    method = C.resolve_method(source, method)
    curv = C.resolve_curv(source, curv)
    agg = resolve_prompt_agg(prompt_agg, method)
    image = C.embeddings(source, "image", lambda: C.encode_images(source, benchmark["images"], batch_size=batch_size))
    if C.is_model(source):
        C.need(benchmark, ["classnames", "templates"], "the zeroshot benchmark")
        classes = class_embeddings(source, benchmark["classnames"], benchmark["templates"],
                                   prompt_agg=agg, batch_size=2 * batch_size)
    else:
        classes = C.embeddings(source, "classes", None)
    flat = classes.reshape(-1, classes.shape[-1])
    C.check_pair(image, flat, method, curv)
    labels = np.asarray(benchmark["labels"])
    n_classes = classes.shape[0]
    if "classnames" in benchmark and len(benchmark["classnames"]) != n_classes:
        raise ValueError(f"{n_classes} class embeddings but {len(benchmark['classnames'])} classnames")
    if len(labels) != image.shape[0]:
        raise ValueError(f"{image.shape[0]} image embeddings but {len(labels)} labels")
    return class_scores(image, classes, C.similarity_fn(method, score), curv), labels


def evaluate_zeroshot(source, benchmark: Mapping, *, method=None, curv=None, score: str = "method",
                      prompt_agg: str = "auto", batch_size: int = 128) -> dict:
    """Zero-shot benchmark -> ``{"mean_per_class_acc", "top1", "top5"}``."""
    scores, labels = zeroshot_scores(source, benchmark, method=method, curv=curv, score=score,
                                     prompt_agg=prompt_agg, batch_size=batch_size)
    return accuracy_metrics(scores, labels)
