#!/usr/bin/python3
"""Writes small demo inputs with the standard library only: a PNG picture, a 16 kHz WAV tone
sweep, and a 50 Hz IMU CSV window (a simulated walk). Usage: make_demo_inputs.py OUT_DIR"""
import math
import os
import struct
import sys
import wave
import zlib


def write_png(path, w, h, pixel):
    rows = b"".join(b"\x00" + bytes(c for x in range(w) for c in pixel(x, y)) for y in range(h))
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    open(path, "wb").write(png)


def main(out):
    os.makedirs(out, exist_ok=True)
    # A red shirt-like shape on grey.
    def shirt(x, y):
        inside = (8 <= x < 56 and 16 <= y < 60) or (0 <= x < 64 and 8 <= y < 24 and abs(x - 32) > 8)
        return (200, 40, 40) if inside else (180, 180, 180)
    write_png(os.path.join(out, "shirt.png"), 64, 64, shirt)
    # 0.8 s rising tone at 16 kHz.
    with wave.open(os.path.join(out, "sweep.wav"), "wb") as wv:
        wv.setnchannels(1), wv.setsampwidth(2), wv.setframerate(16000)
        n = 12800
        wv.writeframes(b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * (300 + 400 * i / n) * i / 16000)))
                                for i in range(n)))
    # 2 s of walking at 50 Hz: vertical bounce at 2 Hz, gyro sway.
    with open(os.path.join(out, "walk.csv"), "w") as f:
        f.write("t,ax,ay,az,gx,gy,gz\n")
        for i in range(100):
            t = i / 50
            f.write("%.2f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f\n" % (
                t, 0.8 * math.sin(2 * math.pi * 2 * t), 0.2, 9.81 + 2.5 * math.sin(2 * math.pi * 2 * t + 0.5),
                0.3 * math.sin(2 * math.pi * t), 0.1, 0.05 * math.cos(2 * math.pi * 2 * t)))


if __name__ == "__main__":
    main(sys.argv[1])
