#!/usr/bin/env python3
"""Encoder forward FLOPs per input for the input-shape candidates (docs/training.md, "Input shapes").

    python3 scripts/encoder-flops.py WIDTH LAYERS [EMBED_DIM]      # ffn = 4 × width

Counts 2 FLOPs per multiply-add of the encoder math in docs/architecture.md: patch embedding,
per layer q/k/v/o and the two MLP matmuls, attention scores and the weighted sum (T² terms), the
pooled embedding projection; for audio also the log-mel front end (windowed DFT as a matmul with
the cos and sin matrices, then the mel matmul), which depends on the clip, not on the encoder.
Norms, softmax, GELU and additions are left out (a few % at these widths).
"""
import sys


def encoder(T, P, W, L, F, E):
    per_layer = 2 * T * (4 * W * W + 2 * W * F) + 2 * 2 * T * T * W
    return 2 * T * P * W + L * per_layer + 2 * W * E


def log_mel(clip, n_fft=400, hop=160, n_mels=40):
    frames, bins = 1 + (clip - n_fft) // hop, n_fft // 2 + 1
    return frames, 2 * frames * n_fft * 2 * bins + 2 * frames * bins * n_mels


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    W, L = int(sys.argv[1]), int(sys.argv[2])
    E = int(sys.argv[3]) if len(sys.argv) > 3 else 128
    F = 4 * W
    print(f"encoder width {W}, {L} layers, ffn {F}, embed_dim {E}: MFLOP per input")
    for name, S, p in [("img32p4", 32, 4), ("img64p8", 64, 8), ("img48p4", 48, 4), ("img64p4", 64, 4)]:
        T = (S // p) ** 2
        print(f"{name:9s} tokens {T:4d}  encoder {encoder(T, p * p * 3, W, L, F, E) / 1e6:7.1f}")
    for name, clip, pf in [("aud1s", 16000, 4), ("aud2s", 32000, 4), ("aud3s", 48000, 4), ("aud3spf8", 48000, 8)]:
        frames, fe = log_mel(clip)
        T = frames // pf
        f = encoder(T, pf * 40, W, L, F, E)
        print(f"{name:9s} tokens {T:4d}  encoder {f / 1e6:7.1f} + log-mel {fe / 1e6:6.1f} = {(f + fe) / 1e6:7.1f}")
    for name, rows in [("imu1s", 50), ("imu2s", 100), ("imu4s", 200)]:
        T = rows // 5
        print(f"{name:9s} tokens {T:4d}  encoder {encoder(T, 30, W, L, F, E) / 1e6:7.1f}")


if __name__ == "__main__":
    main()
