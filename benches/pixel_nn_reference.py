#!/usr/bin/env python3
"""Pixel nearest-neighbour retrieval on one folder of a benchmark: a reference for how much
identity the raw images carry, with no learning at all.

Each image is read in grey (sketches inverted, so ink is the signal), optionally blurred, resized
to 32 x 64, standardised and L2-normalised; every image queries all the others by cosine
similarity with the same-camera filter of the ReID protocol (a gallery image of the query's own
identity and camera is removed). Names are `PID_cCAM_...` (as `next synth` writes them).

    pip install numpy pillow
    python3 benches/pixel_nn_reference.py D/test/SK --blur 2
"""
import argparse
import os

import numpy as np
from PIL import Image, ImageFilter


def features(folder, blur):
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith((".jpg", ".png")))
    feats, pids, cams = [], [], []
    for name in names:
        img = Image.open(os.path.join(folder, name)).convert("L")
        if blur > 0:
            img = img.filter(ImageFilter.GaussianBlur(blur))
        x = 255.0 - np.asarray(img.resize((32, 64)), dtype=np.float64).ravel()
        x = (x - x.mean()) / (x.std() + 1e-9)
        feats.append(x / (np.linalg.norm(x) + 1e-12))
        pid, cam = name.split("_")[:2]
        pids.append(int(pid))
        cams.append(cam)
    return np.array(feats), np.array(pids), np.array(cams)


def evaluate(feats, pids, cams):
    sims = feats @ feats.T
    rank1, aps = [], []
    for q in range(len(pids)):
        keep = ~((pids == pids[q]) & (cams == cams[q]))
        order = np.argsort(-sims[q][keep], kind="stable")
        match = pids[keep][order] == pids[q]
        if not match.any():
            continue
        rank1.append(match[0])
        hits = np.cumsum(match)[match]
        aps.append(np.mean(hits / (np.nonzero(match)[0] + 1)))
    return 100 * np.mean(rank1), 100 * np.mean(aps), len(set(pids.tolist()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--blur", type=float, default=0.0, help="Gaussian blur radius, px")
    args = parser.parse_args()
    r1, m_ap, ids = evaluate(*features(args.folder, args.blur))
    print(f"{args.folder}: blur {args.blur}: R-1 {r1:.2f} mAP {m_ap:.2f} ({ids} identities)")


if __name__ == "__main__":
    main()
