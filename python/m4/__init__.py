"""m4 — Python binding of the m4 client (the C ABI of include/m4.h, loaded with ctypes).

Apps call the m4fwd system service, which runs the on-device foundation model with their
adapters. Nothing is compiled for Python: this module loads libm4.so (built with the project,
``build/src/client/libm4.so``; set ``M4_LIBRARY`` to point elsewhere).

    import m4
    with m4.Client() as c:                               # default socket, or Client("/path/sock")
        c.register_adapter("lang", "adapters/txt.lang_id.m4a", replace=True)
        print(c.classify("lang", "bonjour tout le monde")[:3])   # [(label, score), ...] best first
        g = c.generate(None, "the weather today", max_new_tokens=8, temperature=0.7, seed=1,
                       stop=["."])
        print(g.text, g.stop_reason)
        v = c.embed("a photo of a cat")                  # unit vector in the shared space
        img = c.generate_image("small.png")              # path 4 (a firmware with an image decoder)
        open("big.png", "wb").write(img.png)             # img.width, img.height: the decoder's S×S
        scene = c.draw_image("a large red circle at the top left")   # the full path into the decoder
        snd = c.synthesize("hello")                      # path 4 over text (a speech decoder)
        open("hello.wav", "wb").write(snd.wav)           # snd.sample_rate
        print(c.status()["apps"])                        # this app's usage

Every daemon refusal raises ``m4.Error`` with ``code`` (the m4_status number), ``name``
(``"INVALID_ARGUMENT"``, ``"BUSY"`` …), the daemon's message and ``retry_after_ms``.
"""

import ctypes
import json
import os
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

__all__ = ["Audio", "Client", "Error", "Generation", "Image", "load_library"]

STATUS_NAMES = {
    0: "OK", 1: "INVALID_ARGUMENT", 2: "NOT_FOUND", 3: "PERMISSION_DENIED", 4: "INCOMPATIBLE",
    5: "BUSY", 6: "DEADLINE_EXCEEDED", 7: "QUOTA_EXCEEDED", 8: "CANCELLED", 9: "UNAVAILABLE",
    10: "INTERNAL", 100: "IO",
}


class Error(Exception):
    """A refused call: code (m4_status), name, message, retry_after_ms (with BUSY)."""

    def __init__(self, code: int, message: str, retry_after_ms: int = 0):
        self.code = code
        self.name = STATUS_NAMES.get(code, str(code))
        self.message = message
        self.retry_after_ms = retry_after_ms
        super().__init__(f"{self.name}: {message}")


@dataclass
class Generation:
    text: str
    tokens: List[int] = field(default_factory=list)
    stop_reason: str = ""  # "eos", "stop", "length" or "context"


@dataclass
class Image:
    width: int
    height: int
    png: bytes  # 8-bit RGB PNG, the bytes `m4fw run --path generator --out F.png` writes


@dataclass
class Audio:
    sample_rate: int
    wav: bytes  # 16-bit PCM mono WAV, the bytes `m4fw run --path generator TEXT --out F.wav` writes


_lib = None


def load_library(path: Optional[str] = None) -> ctypes.CDLL:
    """Loads libm4.so: `path`, else $M4_LIBRARY, else the build tree next to this package."""
    global _lib
    if _lib is not None and path is None:
        return _lib
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [path, os.environ.get("M4_LIBRARY"),
                  os.path.join(here, "..", "..", "build", "src", "client", "libm4.so"),
                  os.path.join(here, "libm4.so"), "libm4.so"]
    errors = []
    for c in candidates:
        if not c:
            continue
        try:
            lib = ctypes.CDLL(c)
            break
        except OSError as e:
            errors.append(f"{c}: {e}")
    else:
        raise OSError("cannot load libm4.so (build the project or set M4_LIBRARY): " + "; ".join(errors))
    _declare(lib)
    if path is None:
        _lib = lib
    return lib


def _declare(lib: ctypes.CDLL) -> None:
    P, S, I = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    PP = ctypes.POINTER(ctypes.c_void_p)
    sigs = {
        "m4_client_open": (I, [S, PP]),
        "m4_client_close": (None, [P]),
        "m4_last_error": (S, [P]),
        "m4_retry_after_ms": (ctypes.c_uint32, [P]),
        "m4_firmware_fingerprint": (S, [P]),
        "m4_app_name": (S, [P]),
        "m4_adapter_register_file": (I, [P, S, S, I]),
        "m4_adapter_remove": (I, [P, S]),
        "m4_infer_text": (I, [P, S, S, PP]),
        "m4_infer_file": (I, [P, S, S, S, PP]),
        "m4_infer_signal": (I, [P, S, S, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t, PP]),
        "m4_options_create": (P, []),
        "m4_options_destroy": (None, [P]),
        "m4_options_set_max_new_tokens": (None, [P, ctypes.c_uint32]),
        "m4_options_set_temperature": (None, [P, ctypes.c_float]),
        "m4_options_set_top_k": (None, [P, ctypes.c_uint32]),
        "m4_options_set_top_p": (None, [P, ctypes.c_float]),
        "m4_options_set_seed": (None, [P, ctypes.c_uint64]),
        "m4_options_add_stop": (I, [P, S]),
        "m4_generate": (I, [P, S, S, P, PP]),
        "m4_embed_text": (I, [P, S, PP]),
        "m4_status_json": (I, [P, ctypes.POINTER(ctypes.c_void_p)]),
        "m4_string_free": (None, [P]),
        "m4_result_score_count": (ctypes.c_size_t, [P]),
        "m4_result_label": (S, [P, ctypes.c_size_t]),
        "m4_result_score": (ctypes.c_float, [P, ctypes.c_size_t]),
        "m4_result_value_count": (ctypes.c_size_t, [P]),
        "m4_result_values": (ctypes.POINTER(ctypes.c_float), [P]),
        "m4_result_text": (S, [P]),
        "m4_result_token_count": (ctypes.c_size_t, [P]),
        "m4_result_tokens": (ctypes.POINTER(ctypes.c_int32), [P]),
        "m4_result_stop_reason": (S, [P]),
        "m4_result_free": (None, [P]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    # Optional entry points (newer libraries): constrained output, image outputs.
    for name, args in (("m4_options_add_choice", [P, S]), ("m4_options_set_json_schema", [P, S]),
                       ("m4_generate_image", [P, S, S, PP]), ("m4_draw_image", [P, S, S, PP]),
                       ("m4_synthesize", [P, S, S, PP])):
        if hasattr(lib, name):
            getattr(lib, name).restype = I
            getattr(lib, name).argtypes = args
    if hasattr(lib, "m4_result_image"):
        U32 = ctypes.POINTER(ctypes.c_uint32)
        lib.m4_result_image.restype = ctypes.c_size_t
        lib.m4_result_image.argtypes = [P, ctypes.POINTER(ctypes.POINTER(ctypes.c_uint8)), U32, U32]
    if hasattr(lib, "m4_result_audio"):
        lib.m4_result_audio.restype = ctypes.c_size_t
        lib.m4_result_audio.argtypes = [P, ctypes.POINTER(ctypes.POINTER(ctypes.c_uint8)),
                                        ctypes.POINTER(ctypes.c_uint32)]


def _b(s: Optional[str]) -> Optional[bytes]:
    return None if s is None else s.encode("utf-8")


class Client:
    """One connection to m4fwd (not thread-safe: one Client per thread)."""

    def __init__(self, socket_path: Optional[str] = None, library: Optional[str] = None):
        self._lib = load_library(library)
        self._c = ctypes.c_void_p()
        rc = self._lib.m4_client_open(_b(socket_path), ctypes.byref(self._c))
        if rc != 0:
            msg = self._lib.m4_last_error(self._c).decode("utf-8", "replace")
            self._lib.m4_client_close(self._c)
            self._c = None
            raise Error(rc, msg)

    def close(self) -> None:
        if self._c:
            self._lib.m4_client_close(self._c)
            self._c = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    @property
    def firmware_fingerprint(self) -> str:
        return self._lib.m4_firmware_fingerprint(self._c).decode()

    @property
    def app(self) -> str:
        return self._lib.m4_app_name(self._c).decode()

    def _check(self, rc: int) -> None:
        if rc != 0:
            raise Error(rc, self._lib.m4_last_error(self._c).decode("utf-8", "replace"),
                        self._lib.m4_retry_after_ms(self._c))

    def _result(self, call) -> ctypes.c_void_p:
        r = ctypes.c_void_p()
        self._check(call(ctypes.byref(r)))
        return r

    # -- adapters ------------------------------------------------------------------------------
    def register_adapter(self, name: str, path: str, replace: bool = False) -> None:
        self._check(self._lib.m4_adapter_register_file(self._c, _b(name), _b(path), int(replace)))

    def remove_adapter(self, name: str) -> None:
        self._check(self._lib.m4_adapter_remove(self._c, _b(name)))

    # -- inference -----------------------------------------------------------------------------
    def _infer(self, adapter: Optional[str], data, modality: Optional[str]) -> ctypes.c_void_p:
        L, a = self._lib, _b(adapter or "")
        if isinstance(data, str) and (modality in (None, "text")):
            return self._result(lambda out: L.m4_infer_text(self._c, a, _b(data), out))
        if isinstance(data, (str, os.PathLike)):
            if modality is None:
                raise ValueError("a file input needs modality='image', 'audio' or 'imu'")
            return self._result(lambda out: L.m4_infer_file(self._c, a, _b(modality), _b(os.fspath(data)), out))
        values = [float(v) for v in data]
        arr = (ctypes.c_float * len(values))(*values)
        if modality is None:
            raise ValueError("a signal needs modality='image', 'audio' or 'imu'")
        return self._result(lambda out: L.m4_infer_signal(self._c, a, _b(modality), arr, len(values), out))

    def classify(self, adapter: str, data, modality: Optional[str] = None) -> List[Tuple[str, float]]:
        """Scores of every label, best first. `data`: text, a file path (with modality), or floats."""
        r = self._infer(adapter, data, modality)
        try:
            L = self._lib
            return [(L.m4_result_label(r, i).decode(), float(L.m4_result_score(r, i)))
                    for i in range(L.m4_result_score_count(r))]
        finally:
            self._lib.m4_result_free(r)

    def embed(self, data, modality: str = "text", adapter: Optional[str] = None) -> List[float]:
        """The input's embedding in the shared space (text, or an image / audio / IMU file or signal);
        with an embedding adapter, its head's vector."""
        if isinstance(data, str) and modality == "text" and not adapter:
            r = self._result(lambda out: self._lib.m4_embed_text(self._c, _b(data), out))
        else:
            r = self._infer(adapter, data, modality)
        try:
            n = self._lib.m4_result_value_count(r)
            return list(self._lib.m4_result_values(r)[:n])
        finally:
            self._lib.m4_result_free(r)

    def generate(self, adapter: Optional[str], text: str, *, max_new_tokens: Optional[int] = None,
                 temperature: Optional[float] = None, top_k: Optional[int] = None,
                 top_p: Optional[float] = None, seed: Optional[int] = None,
                 stop: Optional[Sequence[str]] = None, choices: Optional[Sequence[str]] = None,
                 json_schema=None) -> Generation:
        """Generates from `text`. Each option given overrides the adapter's default; the daemon checks
        the ranges (m4.Error INVALID_ARGUMENT names the value). `choices`: the output is exactly one
        of them; `json_schema` (a dict or JSON text): the output is JSON that follows it."""
        L = self._lib
        o = L.m4_options_create()
        if not o:
            raise MemoryError("m4_options_create")
        try:
            if max_new_tokens is not None:
                if max_new_tokens < 0:
                    raise Error(1, f"max_new_tokens {max_new_tokens} is out of range (at least 1)")
                L.m4_options_set_max_new_tokens(o, max_new_tokens)
            if temperature is not None:
                L.m4_options_set_temperature(o, temperature)
            if top_k is not None:
                if top_k < 0:
                    raise Error(1, f"top_k {top_k} is out of range (0: off)")
                L.m4_options_set_top_k(o, top_k)
            if top_p is not None:
                L.m4_options_set_top_p(o, top_p)
            if seed is not None:
                L.m4_options_set_seed(o, seed)
            for s in ([stop] if isinstance(stop, str) else stop or []):
                self._check(L.m4_options_add_stop(o, _b(s)))
            if choices is not None or json_schema is not None:
                if not hasattr(L, "m4_options_add_choice"):
                    raise Error(1, "this libm4 has no constrained output")
                for ch in choices or []:
                    self._check(L.m4_options_add_choice(o, _b(ch)))
                if json_schema is not None:
                    schema = json_schema if isinstance(json_schema, str) else json.dumps(json_schema)
                    self._check(L.m4_options_set_json_schema(o, _b(schema)))
            r = self._result(lambda out: L.m4_generate(self._c, _b(adapter or ""), _b(text), o, out))
        finally:
            L.m4_options_destroy(o)
        try:
            n = L.m4_result_token_count(r)
            toks = L.m4_result_tokens(r)
            return Generation(L.m4_result_text(r).decode("utf-8", "replace"),
                              [toks[i] for i in range(n)], L.m4_result_stop_reason(r).decode())
        finally:
            L.m4_result_free(r)

    def generate_image(self, image, adapter: Optional[str] = None) -> Image:
        """The generator path (path 4): the image file (at most the decoder's S×S) through the image
        decoder alone, or an image-output adapter; returns the S×S output as PNG bytes."""
        L = self._lib
        if not hasattr(L, "m4_generate_image"):
            raise Error(1, "this libm4 has no image outputs")
        r = self._result(lambda out: L.m4_generate_image(self._c, _b(adapter or ""), _b(os.fspath(image)), out))
        try:
            p, w, h = ctypes.POINTER(ctypes.c_uint8)(), ctypes.c_uint32(), ctypes.c_uint32()
            n = L.m4_result_image(r, ctypes.byref(p), ctypes.byref(w), ctypes.byref(h))
            return Image(w.value, h.value, ctypes.string_at(p, n) if n else b"")
        finally:
            L.m4_result_free(r)

    def draw_image(self, text: str, adapter: Optional[str] = None) -> Image:
        """The full path into the image decoder: a description through the backbone, the decoder's
        projector and the decoder (the firmware alone, or an image-output adapter of that path);
        returns the S×S image as PNG bytes."""
        L = self._lib
        if not hasattr(L, "m4_draw_image"):
            raise Error(1, "this libm4 has no full path into the image decoder")
        r = self._result(lambda out: L.m4_draw_image(self._c, _b(adapter or ""), _b(text), out))
        try:
            p, w, h = ctypes.POINTER(ctypes.c_uint8)(), ctypes.c_uint32(), ctypes.c_uint32()
            n = L.m4_result_image(r, ctypes.byref(p), ctypes.byref(w), ctypes.byref(h))
            return Image(w.value, h.value, ctypes.string_at(p, n) if n else b"")
        finally:
            L.m4_result_free(r)

    def synthesize(self, text: str, adapter: Optional[str] = None) -> Audio:
        """The generator path over text (path 4): `text` through the speech decoder alone, or an
        audio-output adapter; returns the waveform as WAV bytes."""
        L = self._lib
        if not hasattr(L, "m4_synthesize"):
            raise Error(1, "this libm4 has no audio outputs")
        r = self._result(lambda out: L.m4_synthesize(self._c, _b(adapter or ""), _b(text), out))
        try:
            p, rate = ctypes.POINTER(ctypes.c_uint8)(), ctypes.c_uint32()
            n = L.m4_result_audio(r, ctypes.byref(p), ctypes.byref(rate))
            return Audio(rate.value, ctypes.string_at(p, n) if n else b"")
        finally:
            L.m4_result_free(r)

    # -- status --------------------------------------------------------------------------------
    def status(self) -> dict:
        """The daemon's status with per-app usage (this app's, or every app's for the admin)."""
        p = ctypes.c_void_p()
        self._check(self._lib.m4_status_json(self._c, ctypes.byref(p)))
        try:
            return json.loads(ctypes.string_at(p).decode("utf-8"))
        finally:
            self._lib.m4_string_free(p)
