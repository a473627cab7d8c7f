#!/usr/bin/env python3
"""The Python binding (python/m4) against a live m4fwd: classify / generate / embed / status, checked
against the in-process `m4fw run` (another code path to the same numbers), options and coded errors.

Environment (set by CTest): M4_LIBRARY (libm4.so), M4FWD, M4FW (binaries), M4_FIRMWARE (the default
firmware), M4_SOURCE_DIR."""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

SRC = os.environ.get("M4_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "python"))
import m4  # noqa: E402

FIRMWARE = os.environ.get("M4_FIRMWARE", os.path.join(SRC, "firmware", "m4-small.m4fw"))
LANG_ADAPTER = os.path.join(SRC, "adapters", "txt.lang_id.m4a")


def m4fw_run(*args):
    out = subprocess.run([os.environ["M4FW"], "run", "--firmware", FIRMWARE, "--json", *args],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


class Daemon:
    def __init__(self, firmware=FIRMWARE):
        self.dir = tempfile.mkdtemp(prefix="m4py_")
        self.socket = os.path.join(self.dir, "m4fwd.sock")
        with open(os.path.join(self.dir, "config.json"), "w") as f:
            f.write("{}")
        self.log = open(os.path.join(self.dir, "daemon.log"), "w")
        self.proc = subprocess.Popen([os.environ["M4FWD"], "--firmware", firmware, "--socket", self.socket,
                                      "--state-dir", os.path.join(self.dir, "state"),
                                      "--config", os.path.join(self.dir, "config.json")],
                                     stderr=self.log, stdout=self.log)
        for _ in range(400):
            if os.path.exists(self.socket):
                try:
                    m4.Client(self.socket).close()
                    return
                except m4.Error:
                    pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.025)
        raise RuntimeError("m4fwd did not start: " + open(os.path.join(self.dir, "daemon.log")).read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class BindingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon()
        cls.c = m4.Client(cls.daemon.socket)
        cls.c.register_adapter("lang", LANG_ADAPTER, replace=True)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.daemon.stop()

    def test_classify_matches_the_in_process_run(self):
        text = "bonjour tout le monde, comment allez-vous"
        got = self.c.classify("lang", text)
        self.assertGreater(len(got), 1)
        self.assertAlmostEqual(sum(s for _, s in got), 1.0, places=4)
        self.assertEqual(got, sorted(got, key=lambda x: -x[1]))
        want = m4fw_run("--adapter", LANG_ADAPTER, "--top", "100", text)[0]["labels"]
        self.assertEqual([l for l, _ in got], [w["label"] for w in want])
        for (_, s), w in zip(got, want):
            self.assertAlmostEqual(s, w["score"], places=4)

    def test_embed_text_matches_the_in_process_encoder_path(self):
        v = self.c.embed("a photo of a cat")
        self.assertAlmostEqual(math.sqrt(sum(x * x for x in v)), 1.0, places=4)
        want = m4fw_run("--path", "encoder", "--modality", "text", "a photo of a cat")[0]["embedding"]
        self.assertEqual(len(v), len(want))
        for a, b in zip(v, want):
            self.assertAlmostEqual(a, b, places=5)
        self.assertNotEqual(v, self.c.embed("a dog in the snow"))

    def test_generate_options_and_errors(self):
        g = self.c.generate(None, "the weather today", max_new_tokens=5, temperature=0)
        self.assertLessEqual(len(g.tokens), 5)
        self.assertIn(g.stop_reason, ("eos", "length", "stop", "context"))
        want = m4fw_run("--max-new-tokens", "5", "--temperature", "0", "the weather today")[0]
        self.assertEqual(g.tokens, want["tokens"])
        self.assertEqual(g.text, want["text"])
        # Sampling with a seed is reproducible; the in-process run with the same seed agrees.
        s1 = self.c.generate(None, "the weather today", max_new_tokens=6, temperature=1.2, top_k=20,
                             top_p=0.9, seed=7)
        s2 = self.c.generate(None, "the weather today", max_new_tokens=6, temperature=1.2, top_k=20,
                             top_p=0.9, seed=7)
        self.assertEqual(s1, s2)
        want = m4fw_run("--max-new-tokens", "6", "--temperature", "1.2", "--top-k", "20", "--top-p", "0.9",
                        "--seed", "7", "the weather today")[0]
        self.assertEqual(s1.tokens, want["tokens"])
        # A stop string cuts the text.
        long = self.c.generate(None, "the weather today", max_new_tokens=16, temperature=0)
        if len(long.text) >= 4:
            stop = long.text[len(long.text) // 2:len(long.text) // 2 + 2]
            cut = self.c.generate(None, "the weather today", max_new_tokens=16, temperature=0, stop=[stop])
            self.assertEqual(cut.stop_reason, "stop")
            self.assertEqual(cut.text, long.text[:long.text.index(stop)])
        # Bad values: coded errors that name the value; the connection keeps working.
        for kwargs, needle in (({"temperature": -1}, "temperature"), ({"top_p": 1.5}, "top_p"),
                               ({"max_new_tokens": 100000}, "max_new_tokens"),
                               ({"stop": ["x" * 65]}, "stop string 0 has 65 bytes")):
            with self.assertRaises(m4.Error) as e:
                self.c.generate(None, "hello", **kwargs)
            self.assertEqual(e.exception.name, "INVALID_ARGUMENT")
            self.assertIn(needle, e.exception.message)
        self.assertTrue(self.c.generate(None, "hello", max_new_tokens=2).tokens)
        with self.assertRaises(m4.Error) as e:
            self.c.classify("no-such-adapter", "hello")
        self.assertEqual(e.exception.name, "NOT_FOUND")

    def test_constrained_output(self):
        choices = ["yes", "no", "not sure"]
        for seed in range(3):
            g = self.c.generate(None, "is the sky blue?", choices=choices, temperature=1.5, seed=seed)
            self.assertIn(g.text, choices)
        schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                                                   "tags": {"type": "array", "items": {"enum": ["a", "b"]}}},
                  "required": ["name", "age"]}
        for seed in range(3):
            g = self.c.generate(None, "a person:", json_schema=schema, max_new_tokens=30, temperature=1.0, seed=seed)
            v = json.loads(g.text)
            self.assertIsInstance(v["name"], str)
            self.assertIsInstance(v["age"], int)
            self.assertLessEqual(set(v), {"name", "age", "tags"})
        with self.assertRaises(m4.Error) as e:
            self.c.generate(None, "x", json_schema={"type": "string", "pattern": "a"})
        self.assertEqual(e.exception.name, "INVALID_ARGUMENT")
        self.assertIn('keyword "pattern"', e.exception.message)
        with self.assertRaises(m4.Error) as e:
            self.c.generate(None, "x", choices=["\u2603 snowman"])
        self.assertIn("cannot be spelled", e.exception.message)

    def test_status_reports_usage(self):
        self.c.generate(None, "count my tokens", max_new_tokens=3, temperature=0)
        st = self.c.status()
        self.assertTrue(st["firmwareFingerprint"])
        apps = st["apps"]
        mine = [a for a in apps if a["uid"] == os.getuid()]
        self.assertEqual(len(mine), 1)
        u = mine[0]
        self.assertGreater(int(u["generatedTokens"]), 0)
        self.assertGreater(int(u["promptTokens"]), 0)
        self.assertGreater(int(u["cpuUs"]), 0)
        self.assertGreaterEqual(int(u["items"]), 1)

    def test_generate_image_on_the_default_firmware(self):
        # The default firmware carries the image decoder: path 4 answers with its 32x32 output.
        png = os.path.join(self.daemon.dir, "small16.png")
        write_png(png, 16, 16)
        img = self.c.generate_image(png)
        self.assertEqual((img.width, img.height), (32, 32))
        self.assertEqual(img.png[:8], b"\x89PNG\r\n\x1a\n")

    def test_generate_image_without_a_decoder_is_a_coded_error(self):
        # m4-tiny has no image decoder (the default firmware has one).
        tiny = Daemon(os.path.join(SRC, "firmware", "m4-tiny.m4fw"))
        try:
            c = m4.Client(tiny.socket)
            png = os.path.join(tiny.dir, "small.png")
            write_png(png, 6, 5)
            with self.assertRaises(m4.Error) as e:
                c.generate_image(png)
            self.assertEqual(e.exception.name, "INCOMPATIBLE")
            self.assertIn("needs an image decoder", e.exception.message)
            self.assertTrue(c.generate(None, "hello", max_new_tokens=2).tokens)  # still served
            c.close()
        finally:
            tiny.stop()

    def test_example_runs(self):
        out = subprocess.run([sys.executable, os.path.join(SRC, "python", "examples", "quickstart.py"),
                              self.daemon.socket], capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("best caption", out.stdout)


def write_png(path, w, h):
    """An 8-bit RGB PNG with a smooth pattern (zlib only)."""
    import struct
    import zlib
    raw = b"".join(b"\0" + bytes((x * 23 + y * 11 + c * 80) % 256 for x in range(w) for c in range(3))
                   for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class GeneratorPathTest(unittest.TestCase):
    """Path 4 on a firmware with an image decoder (tests/oracle/oracle_config.json: 16×16): the image
    the daemon returns is the file the in-process `m4fw run --path generator --out` writes."""

    def test_generate_image_matches_the_in_process_run(self):
        work = tempfile.mkdtemp(prefix="m4py_gen_")
        try:
            fw = os.path.join(work, "fw.m4fw")
            subprocess.run([os.environ["M4FW"], "init", "--config",
                            os.path.join(SRC, "tests", "oracle", "oracle_config.json"), "--out", fw, "--seed", "3"],
                           check=True, capture_output=True)
            small, run_png = os.path.join(work, "small.png"), os.path.join(work, "run.png")
            write_png(small, 9, 7)
            subprocess.run([os.environ["M4FW"], "run", "--firmware", fw, "--path", "generator", small,
                            "--out", run_png], check=True, capture_output=True)
            d = Daemon(fw)
            try:
                with m4.Client(d.socket) as c:
                    img = c.generate_image(small)
                    self.assertEqual((img.width, img.height), (16, 16))
                    with open(run_png, "rb") as f:
                        self.assertEqual(img.png, f.read())
                    with self.assertRaises(m4.Error) as e:
                        c.generate_image(os.path.join(work, "missing.png"))
                    self.assertEqual(e.exception.name, "INVALID_ARGUMENT")
                    # The full path into the decoder (the config's decoder has from_backbone).
                    desc, draw_png = "a red circle above a blue square", os.path.join(work, "draw.png")
                    subprocess.run([os.environ["M4FW"], "run", "--firmware", fw, "--path", "full", desc,
                                    "--out", draw_png], check=True, capture_output=True)
                    img = c.draw_image(desc)
                    self.assertEqual((img.width, img.height), (16, 16))
                    with open(draw_png, "rb") as f:
                        self.assertEqual(img.png, f.read())
                    with self.assertRaises(m4.Error) as e:
                        c.draw_image("")
                    self.assertEqual(e.exception.name, "INVALID_ARGUMENT")
            finally:
                d.stop()
        finally:
            shutil.rmtree(work, ignore_errors=True)


class SpeechPathTest(unittest.TestCase):
    """Path 4 over text on a firmware with a speech decoder (tests/oracle/oracle_config.json: 5
    characters × 3 frames): the WAV the daemon returns is the file the in-process `m4fw run
    --path generator TEXT --out` writes."""

    def test_synthesize_matches_the_in_process_run(self):
        work = tempfile.mkdtemp(prefix="m4py_tts_")
        try:
            fw = os.path.join(work, "fw.m4fw")
            subprocess.run([os.environ["M4FW"], "init", "--config",
                            os.path.join(SRC, "tests", "oracle", "oracle_config.json"), "--out", fw, "--seed", "3"],
                           check=True, capture_output=True)
            run_wav = os.path.join(work, "run.wav")
            subprocess.run([os.environ["M4FW"], "run", "--firmware", fw, "--path", "generator", "Seven",
                            "--out", run_wav], check=True, capture_output=True)
            d = Daemon(fw)
            try:
                with m4.Client(d.socket) as c:
                    snd = c.synthesize("Seven")
                    self.assertEqual(snd.sample_rate, 16000)
                    with open(run_wav, "rb") as f:
                        self.assertEqual(snd.wav, f.read())
                    with self.assertRaises(m4.Error) as e:
                        c.synthesize("eleven")   # 6 characters, the decoder takes 5
                    self.assertEqual(e.exception.name, "INVALID_ARGUMENT")
            finally:
                d.stop()
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
