"""Loading and embedding a released checkpoint at MERU's ViT-S size on the CPU.

Writes a random-valued ``meru_vit_s.pth`` in the released layout (``tests/released_fake.py``:
ViT-S/16 with 12 heads, 12-layer 512-wide text tower, D = 512) to a temporary folder, then
prints, in one run:

0. for each released file name, a small random checkpoint of its layout: the method
   :func:`hyplib.released.load_released` infers and the max abs error of its image and text
   embeddings against the independent forward pass;
1. the seconds :func:`hyplib.released.load_released` takes (read, check, build, copy);
2. the seconds to embed ``--images`` random 224-px images (batches of ``--batch``) and
   ``--texts`` captions, and the images per second;
3. the parity of those embeddings with the tests' independent float32 forward pass (max abs
   error over the first batch).

    python benchmarks/released.py [--threads 1] [--images 1000] [--batch 50] [--texts 1000]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from released_fake import SMALL, VIT_S, ref_lift, ref_pixel_features, ref_text_features, write_fake  # noqa: E402

from hyplib.released import load_released  # noqa: E402

#: released file name -> layout of its random stand-in
NAMES = {"clip_vit_s.pth": "clip", "meru_vit_s.pth": "meru", "hycoclip_vit_s.pth": "meru",
         "atmg_vit_s.pth": "meru", "phyclip_vit_b.pth": "phyclip"}


def layouts(captions) -> None:
    pixels = torch.rand(3, 3, SMALL["img"], SMALL["img"], generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        for name, kind in NAMES.items():
            state = write_fake(Path(tmp) / name, kind)
            model = load_released(Path(tmp) / name)
            tokens = model.tokenize(captions)
            img = ref_lift(state, ref_pixel_features(state, pixels, 2), "image", kind)
            txt = ref_lift(state, ref_text_features(state, tokens, 2), "text", kind)
            e_img = float((model.encode_pixels(pixels) - img).abs().max())
            e_txt = float((model.encode_text(tokens) - txt).abs().max())
            print(f"{name:20s} -> {model.method.name:9s} ({model.released_info['geometry']}): "
                  f"max abs error image {e_img:.1e}, text {e_txt:.1e}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--texts", type=int, default=1000)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    layouts(["a photo of a dog.", "two red cubes on a wooden table beside a small green sphere", "tree"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "meru_vit_s.pth"
        state = write_fake(path, "meru", **VIT_S)
        print(f"file: {path.stat().st_size / 2**20:.0f} MiB, {len(state)} tensors")
        t0, c0 = time.perf_counter(), time.process_time()
        model = load_released(path)
        print(f"load_released: {time.perf_counter() - t0:.2f} s wall, {time.process_time() - c0:.2f} s CPU "
              f"(threads={args.threads})")
    g = torch.Generator().manual_seed(0)
    first = torch.rand(args.batch, 3, 224, 224, generator=g)
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        done = 0
        while done < args.images:
            n = min(args.batch, args.images - done)
            pixels = first[:n] if done == 0 else torch.rand(n, 3, 224, 224, generator=g)
            emb = model.encode_pixels(pixels)
            if done == 0:
                first_emb = emb
            done += n
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"embed {args.images} images: {elapsed:.1f} s wall, {cpu:.1f} s CPU ({args.images / elapsed:.1f} images/s "
          f"wall; CPU seconds count the machine's other load out)")
    captions = [f"a photo of object number {i} on a table" for i in range(args.texts)]
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        for s in range(0, len(captions), 250):
            model.encode_text(model.tokenize(captions[s:s + 250]))
    print(f"embed {args.texts} captions: {time.perf_counter() - t0:.1f} s wall, {time.process_time() - c0:.1f} s CPU")
    with torch.no_grad():
        ref = ref_lift(state, ref_pixel_features(state, first, 12), "image", "meru")
    print(f"parity (first batch, image embeddings): max abs error {float((first_emb - ref).abs().max()):.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
