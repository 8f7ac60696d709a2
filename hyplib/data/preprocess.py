"""Image and box preprocessing shared by the training loader and the real-data readers.

Conventions:
    * Full images: shorter side resized to ``size`` (bicubic), then a centre square crop
      (CLIP's evaluation transform; generated square images pass through untouched).
    * Box crops (HyCoCLIP's GRIT preparation): the box is cropped, padded to a square with white
      (their "border" resize mode), then resized to ``size``.
    * Box filtering (HyCoCLIP): phrases de-duplicated keeping the first box of each exact phrase,
      then boxes of area at most ``min_box_size**2`` pixels dropped (their cut-off is 32*32 on
      real images; generated 32-px images need a smaller value).
    * Normalisation: OpenAI CLIP mean/std, channels first.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
PAD_COLOUR = (255, 255, 255)


def resize_square(img: Image.Image, size: int) -> Image.Image:
    """Shorter side to ``size`` then centre crop to ``size x size``."""
    w, h = img.size
    if (w, h) == (size, size):
        return img
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((nw, nh), Image.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def squash(img: Image.Image, size: int) -> Image.Image:
    """Resize to ``size x size`` without crop (retrieval protocol: square, nothing cut)."""
    return img if img.size == (size, size) else img.resize((size, size), Image.BICUBIC)


def crop_box(img: Image.Image, box, size: int) -> Image.Image:
    """Crop ``box`` (pixels, clipped to the image), pad to square with white, resize to ``size``."""
    w, h = img.size
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)  # a degenerate box still yields one pixel
    crop = img.crop((x0, y0, x1, y1))
    side = max(crop.size)
    canvas = Image.new("RGB", (side, side), PAD_COLOUR)
    canvas.paste(crop, ((side - crop.size[0]) // 2, (side - crop.size[1]) // 2))
    return canvas if side == size else canvas.resize((size, size), Image.BICUBIC)


def usable_boxes(boxes: list[dict], min_box_size: float) -> list[dict]:
    """HyCoCLIP's filter: first box per exact phrase, then drop area <= ``min_box_size**2``."""
    seen, out = set(), []
    for b in boxes:
        phrase = b["phrase"].strip()
        if not phrase or phrase in seen:
            continue
        seen.add(phrase)
        x0, y0, x1, y1 = b["box"]
        if (x1 - x0) * (y1 - y0) > min_box_size ** 2:
            out.append(b)
    return out


def to_tensor(images: list[Image.Image]) -> torch.Tensor:
    """List of RGB images of one size -> normalised float tensor (B, 3, H, W)."""
    arr = np.stack([np.asarray(im, dtype=np.uint8) for im in images])
    x = torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std)
