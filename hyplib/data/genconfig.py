"""Configuration of the generated world (sizes, seeds, render settings) with named presets.

Seed streams: every random draw comes from ``numpy.random.default_rng([seed, stream, ...])``
with ``stream`` 0 for training shards (then the shard index) and one fixed stream id per
benchmark (:data:`STREAMS`), so training and benchmark images never share a random stream.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

STREAMS = {"train": 0, "zeroshot": 1, "retrieval": 2, "pep": 3, "chains": 4, "composition": 5,
           "hierarcaps": 6, "heldout": 99}


@dataclass(frozen=True)
class GenConfig:
    n_train: int = 50_000                 # training images
    shard_size: int = 2_500               # images per training shard (one worker task each)
    image_size: int = 32                  # output side in pixels
    supersample: int = 2                  # render at this multiple, then box-filter down
    seed: int = 0
    workers: int = 2                      # processes (1 = in this process)
    objects_per_scene: tuple = (0.4, 0.3, 0.2, 0.1)   # weights of 1, 2, 3, 4 objects
    group_size: int = 1                   # training records come in blocks this long; the loader keeps them whole
    look_alike_blocks: float = 0.0        # fraction of blocks of one-object scenes sharing colour and background
    caption_colour: float = 1.0           # P(a training record's captions and box phrases name colours)
    caption_background: float = 1.0       # P(a training record's captions name the background)
    zeroshot_per_class: int = 20
    retrieval_images: int = 500
    pep_images: int = 300
    chain_items: int = 300
    chain_render_scale: int = 4           # chains are rendered at this multiple of image_size
    composition_per_subset: int = 200
    heldout_fraction: float = 0.3         # composition items whose positive names a held-out pair
    hierarcaps_images: int = 500
    extra: dict = field(default_factory=dict)

    @property
    def min_box_size(self) -> float:
        """Loader's box filter for this image size (HyCoCLIP's 32 px scaled to 1/8 of the side)."""
        return self.image_size / 8

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def preset(cls, name: str, **overrides) -> GenConfig:
        """``quick`` (tests, seconds), ``default`` (the embedded CPU reproduction), ``large``."""
        presets = {
            "quick": dict(n_train=512, shard_size=128, zeroshot_per_class=2, retrieval_images=40,
                          pep_images=30, chain_items=20, composition_per_subset=12, hierarcaps_images=30,
                          workers=1),
            "default": {},
            "large": dict(n_train=200_000, shard_size=5_000, image_size=64),
        }
        if name not in presets:
            raise ValueError(f"unknown preset {name!r}; valid: {sorted(presets)}")
        unknown = sorted(set(overrides) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"unknown generator setting(s) {unknown}; valid: {cls.field_names()}")
        return replace(cls(), **{**presets[name], **overrides})
