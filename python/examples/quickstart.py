#!/usr/bin/env python3
"""Quick start for the m4 Python binding: cross-modal retrieval and generation through m4fwd.

    python3 python/examples/quickstart.py [SOCKET]

Embeds an image (examples/demo/scene.png) and a few captions in the shared space and ranks the
captions by cosine similarity, then generates a short continuation with explicit sampling options.
Needs a running m4fwd (default socket, or SOCKET) and libm4.so (build/, or $M4_LIBRARY)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import m4  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def main() -> int:
    with m4.Client(sys.argv[1] if len(sys.argv) > 1 else None) as c:
        print(f"connected as app {c.app!r}, firmware {c.firmware_fingerprint[:12]}…")
        image = c.embed(os.path.join(ROOT, "examples", "demo", "scene.png"), modality="image")
        captions = ["a red circle on a white background", "a photo of a cat", "a spoken word",
                    "a person walking"]
        scores = [(sum(a * b for a, b in zip(image, c.embed(t))), t) for t in captions]
        for s, t in sorted(scores, reverse=True):
            print(f"  {s:+.3f}  {t}")
        print("best caption:", max(scores)[1])
        g = c.generate(None, "the weather today", max_new_tokens=12, temperature=0.8, top_p=0.95, seed=1,
                       stop=["\n"])
        print(f"generated: {g.text!r} ({len(g.tokens)} tokens, stop: {g.stop_reason})")
        try:
            c.generate(None, "the weather today", temperature=-1)
        except m4.Error as e:
            print("refused as expected:", e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
