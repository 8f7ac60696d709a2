"""Caption of every figure: shown under it in its notebook and in the Snakemake report
(``workflow/report/<name>.rst``, written by ``scripts/make_figure_notebooks.py``).

Captions say what is drawn and how to read it, never what the outcome is: that is measured
(see ``results/tables/claims.md``).
"""
from __future__ import annotations

__all__ = ["CAPTIONS"]

CAPTIONS: dict[str, str] = {
    "distance_to_root": (
        "Distance to the root by modality, MERU vs CLIP (METHODS.md claim 1). Histograms of the "
        "retrieval benchmark's images and captions, seeds pooled; dashed lines mark the means and the "
        "panel states text minus image. MERU: hyperbolic distance to the origin. CLIP's embeddings are "
        "unit vectors, so their norm cannot separate anything; its panel uses the angle to the normalised "
        "centroid of all embeddings as the root (MERU's choice of [ROOT] for CLIP)."),
    "norms_by_kind": (
        "HyCoCLIP: distance to the root by input kind. Images and captions from the retrieval benchmark, "
        "box images (part and sub-part crops of the chains benchmark) and box texts (the chains' noun "
        "phrases); seeds pooled, dashed lines at the means. HyCoCLIP's objective implies images below "
        "their boxes and texts below the box texts, i.e. boxes and box texts closer to the root."),
    "curvature_robustness": (
        "Zero-shot mean per-class accuracy against a fixed curvature c, MERU vs ATMG (claim 3, ATMG "
        "Table 5). Points are means over the available seeds, error bars one standard deviation, small "
        "dots single seeds, crosses diverged runs (drawn at zero); dashed horizontal lines are runs with "
        "learned curvature where present. With one seed per curvature the spread is not estimated."),
    "eigen_spectra": (
        "Covariance eigenvalue spectra of the tangent features (logmap at the root; identity for CLIP; "
        "per factor concatenated for PHyCLIP) of the retrieval images and captions, per method. Each "
        "spectrum is normalised to shares of total variance and averaged over seeds; the legend gives the "
        "effective rank exp(H). A faster decay means fewer directions in use."),
    "chain_accuracy": (
        "Share of whole -> part (depth 1) and whole -> part -> sub-part (depth 2) image chains, and of "
        "adjective -> noun phrase -> caption text chains, whose distance to the root is strictly ordered "
        "in the direction each evaluation was configured with (claim 4). Bars: mean over seeds; error "
        "bars: standard deviation; dots: seeds; dotted lines: a random order (1/2 for depth 1, 1/6 for "
        "depth 2)."),
    "cone_collapse": (
        "Cone collapse (claim 6). (a) The plain entailment loss max(0, phi - omega(x)) of MERU/HyCoCLIP "
        "as a function of the parent's norm in units of the boundary 2K/sqrt(c) and of the exterior "
        "angle: left of the dashed line the half-aperture saturates at pi/2 and every child in the outer "
        "half-space costs nothing (white contour: the zero-loss border). (b) Where the trained texts, the "
        "parents, sit relative to that boundary, with the share inside. (c) The entailment loss over "
        "training steps. (d) ARGENT's adaptive weight h(d) = 1 - exp(-d/sigma) (our reconstruction) on "
        "the PEP benchmark's entailing pairs by pair type (near-identical pairs get weight near 0); the "
        "dotted outline is the non-entailing pairs, which training never weights, for comparison."),
    "phyclip_factor_norms": (
        "PHyCLIP: per-factor distance to the root for single-concept prompts (each class name in the "
        "first zero-shot template) and composed captions (the composition benchmark's true captions). "
        "Left: mean radius per factor with the inter-quartile band. Right: share of a prompt's factors "
        "whose radius exceeds half its largest factor radius. One row per PHyCLIP configuration (first "
        "seed with a checkpoint)."),
    "poincare_embeddings": (
        "Images and captions of the retrieval benchmark on the Poincare disk, with the entailment cones "
        "of three captions (shaded) and geodesics to their images. This is a projection: each embedding's "
        "direction is its tangent vector projected on a fixed 2-D PCA plane (fitted per run on both "
        "modalities), while its distance to the root is kept exactly; angles between points, and hence "
        "which points fall inside a drawn cone, are approximate. Dotted circles: distances 1, 2, 3 from "
        "the root."),
    "traversals": (
        "Root traversals: for the first HierarCaps images (top), the caption nearest to each of the "
        "points on the geodesic from the image (step 0) to the root (last step), among all HierarCaps "
        "captions at every level ([L0] most generic .. [L3] most specific); repeated retrievals are "
        "merged into step ranges. One row per method, first seed. A hierarchy-aware space retrieves "
        "increasingly generic captions towards the root."),
    "trajectories": (
        "Curvature c and the image and text scales alpha over training steps, from the training logs. "
        "Solid: learned curvature; thin dashed: runs with the curvature held fixed (curvature study). "
        "For PHyCLIP the line is the mean over factors and the band their range. The lower end of the "
        "curvature axis to watch is each method's clamp floor (c0/10 for MERU)."),
}
