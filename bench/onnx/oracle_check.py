#!/usr/bin/python3
"""Optional third opinion for bench/onnx/run.sh --oracle: compares the embeddings of m4 and of
ONNX Runtime with the project's independent float64 PyTorch reference (tests/oracle/reference.py,
mode "plain": f32 weights, exact float64 arithmetic). m4 vs ORT agreement alone cannot tell a
bug that both share (e.g. in the exporter's reading of the firmware, which is reused by nothing
in m4); this one can, because reference.py was written from the docs independently of both.

    /usr/bin/python3 bench/onnx/oracle_check.py --firmware vit.m4fw --tol 1e-4 \
        --result m4=m4.json --result ort=ort.json img0.npy img1.npy ...

Each JSON is a list of {"embedding": [...]} in the order of the images (`m4fw run --json`,
`node bench.mjs check --save`). Exits 1 if any engine is further than --tol from float64.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "oracle"))
from m4file import M4File  # noqa: E402
import reference  # noqa: E402  (needs torch: /usr/bin/python3)


def main():
    ap = argparse.ArgumentParser(description="engines vs the float64 reference encoder")
    ap.add_argument("--firmware", required=True)
    ap.add_argument("--result", action="append", required=True, metavar="NAME=JSON")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("images", nargs="+", help=".npy [S, S, 3] images, as given to the engines")
    a = ap.parse_args()

    fw = M4File.load(a.firmware, expect_magic=b"M4FW")
    model = reference.Model(fw, mode="plain")  # float64
    t0 = time.time()
    ref = [model.encoder_path("image", np.load(p)).numpy() for p in a.images]
    print("oracle: float64 reference for %d images in %.1f s" % (len(ref), time.time() - t0))

    ok = True
    for spec in a.result:
        name, _, path = spec.partition("=")
        with open(path) as fh:
            got = json.load(fh)
        if len(got) != len(ref):
            sys.exit("oracle_check.py: %s holds %d results for %d images" % (path, len(got), len(ref)))
        diff = max(float(np.abs(np.asarray(g["embedding"], dtype=np.float64) - r).max())
                   for g, r in zip(got, ref))
        good = diff <= a.tol
        ok &= good
        print("oracle: max |%s - float64| = %.3e (tolerance %g) %s" % (name, diff, a.tol, "OK" if good else "FAILED"))
    if not ok:
        sys.exit("oracle_check.py: an engine disagrees with the float64 reference")


if __name__ == "__main__":
    main()
