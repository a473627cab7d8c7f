#!/usr/bin/env bash
# Path 4 over text (`generator`, the speech decoder alone + Griffin-Lim) through the m4fw command
# line: a run that writes a WAV, the adapter's output kind, `m4fw inspect` listing the path's
# operators, and each fault a clear error (an audio-output adapter on another input or path, a
# firmware without the speech decoder, a bad --out, text too long or outside the alphabet).
# Usage: test_speech_cli.sh M4FW_BINARY WORKDIR
source "$(dirname "$0")/harness.sh" "$@"

/usr/bin/python3 - "$root/tests/oracle/oracle_config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c.setdefault("decoders", {})["speech"] = {"max_chars": 6, "frames_per_char": 4, "n_fft": 400, "hop": 160,
                                          "n_mels": 40, "griffin_lim_iters": 4, "width": 16, "layers": 1,
                                          "heads": 2, "ffn": 32}
json.dump(c, open("speech.json", "w"))
del c["decoders"]["speech"]
json.dump(c, open("nospeech.json", "w"))
PY
"$m4fw" init --config speech.json --out fw.m4fw --seed 3 >/dev/null 2>&1 && ok "init with a speech decoder" || bad "init"
"$m4fw" init --config nospeech.json --out nospeech.m4fw --seed 3 >/dev/null 2>&1 && ok "init without" || bad "init without"

shown=$("$m4fw" inspect fw.m4fw 2>&1)
grep -q "^decoder speech: 6 chars x 4 frames → 24 log-mel frames of 40" <<<"$shown" \
  && ok "inspect shows the speech decoder" || bad "inspect decoder: $shown"
line=$(grep -E "^  generator +audio" <<<"$shown")
for op in matmul add mul layernorm attention gelu; do
  grep -qw "$op" <<<"$line" || bad "generator audio ops lack $op: $line"
done
[ -n "$line" ] && ok "inspect lists the speech path's operators: ${line# }" || bad "no generator audio line: $shown"
"$m4fw" inspect nospeech.m4fw 2>&1 | grep -qE "generator +audio" && bad "nospeech lists path 4 over audio" \
  || ok "no speech decoder, no path 4 over audio"

"$m4fw" adapter init --firmware fw.m4fw --out tts.m4a --task generate --path generator --modality audio \
  --rank 2 --alpha 4 --targets all --seed 5 >/dev/null 2>&1 && ok "adapter init (speech)" || bad "adapter init"
"$m4fw" inspect tts.m4a 2>&1 | grep -q "path: generator  modality: audio  output: audio" \
  && ok "adapter output kind audio" || bad "adapter output kind: $("$m4fw" inspect tts.m4a 2>&1)"

check_wav() {  # FILE: a 16-bit mono 16 kHz WAV of (24 − 1)·160 + 400 samples
  /usr/bin/python3 -c "
import struct, sys
b = open('$1', 'rb').read()
assert b[:4] == b'RIFF' and b[8:12] == b'WAVE', 'not a WAV'
ch, rate = struct.unpack('<HI', b[22:28]); bits = struct.unpack('<H', b[34:36])[0]
n = struct.unpack('<I', b[40:44])[0] // 2
assert (ch, rate, bits, n) == (1, 16000, 16, 23 * 160 + 400), (ch, rate, bits, n)
"
}
if "$m4fw" run --firmware fw.m4fw --path generator "Go now" --out hello.wav >run.out 2>&1 && check_wav hello.wav; then
  ok "run --path generator \"Go now\" --out hello.wav (firmware alone)"
else
  bad "run speech: $(cat run.out)"
fi
if "$m4fw" run --firmware fw.m4fw --adapter tts.m4a "go now" --out ad.wav >run.out 2>&1 && check_wav ad.wav; then
  ok "run --adapter tts.m4a --out ad.wav"
  cmp -s hello.wav ad.wav && bad "the adapter changes nothing" || ok "the adapter changes the audio"
else
  bad "run speech adapter: $(cat run.out)"
fi
"$m4fw" run --firmware fw.m4fw --path generator "Go now" --out again.wav >/dev/null 2>&1
cmp -s hello.wav again.wav && ok "deterministic WAV" || bad "two runs differ"

expect_fail "text too long" "7 characters exceed the speech decoder's 6" -- \
  "$m4fw" run --firmware fw.m4fw --path generator "go left" --out x.wav
expect_fail "character outside the alphabet" "'!' at 2" -- \
  "$m4fw" run --firmware fw.m4fw --path generator "go!" --out x.wav
expect_fail "no --out" "--out" ".wav" -- "$m4fw" run --firmware fw.m4fw --adapter tts.m4a "go"
expect_fail "--out of the wrong kind" "x.png" ".wav" -- "$m4fw" run --firmware fw.m4fw --adapter tts.m4a "go" --out x.png
expect_fail "--out in a missing directory" "no/such/dir/x.wav" "does not exist" -- \
  "$m4fw" run --firmware fw.m4fw --adapter tts.m4a "go" --out no/such/dir/x.wav
mkdir -p ro && chmod a-w ro
if [ "$(id -u)" != 0 ]; then
  expect_fail "--out not writable" "ro/x.wav" "not writable" -- \
    "$m4fw" run --firmware fw.m4fw --adapter tts.m4a "go" --out ro/x.wav
fi
/usr/bin/python3 -c "
import numpy as np; np.save('img.npy', np.zeros((16, 16, 3), np.float32))"
expect_fail "audio adapter on an image" "takes text, not a file" -- \
  "$m4fw" run --firmware fw.m4fw --adapter tts.m4a img.npy --out x.wav
expect_fail "firmware without the speech decoder" "no speech decoder" -- \
  "$m4fw" run --firmware nospeech.m4fw --path generator "go" --out x.wav
expect_fail "speech adapter for a firmware without it" "decoders.speech" -- \
  "$m4fw" adapter init --firmware nospeech.m4fw --out y.m4a --task generate --path generator --modality audio \
  --rank 2 --alpha 4 --targets all
expect_fail "audio adapter on another firmware" "tts.m4a" -- \
  "$m4fw" run --firmware nospeech.m4fw --adapter tts.m4a "go" --out x.wav

# The same path served by m4fwd: `m4fw infer --out x.wav` writes the WAV the daemon returns — byte
# for byte the file the in-process `m4fw run` writes — and the daemon's faults are coded errors.
start_daemon --firmware fw.m4fw
if "$m4fw" infer "${sock[@]}" --path generator "Go now" --out served.wav > infer.out 2>&1; then
  cmp -s hello.wav served.wav && grep -q "of audio at 16000 Hz" infer.out \
    && ok "infer --path generator --out: the served WAV is the in-process one, byte for byte" \
    || bad "served.wav differs from hello.wav: $(cat infer.out)"
else
  bad "infer --path generator: $(cat infer.out) $(cat svc/daemon.log)"
fi
"$m4fw" adapter register "${sock[@]}" tts tts.m4a > /dev/null 2>&1 && ok "register tts.m4a" || bad "register tts.m4a"
if "$m4fw" infer "${sock[@]}" --adapter tts "go now" --out served_ad.wav > infer.out 2>&1; then
  cmp -s ad.wav served_ad.wav && ok "infer --adapter tts --out: equal to the in-process run" \
    || bad "served_ad.wav differs from ad.wav"
else
  bad "infer --adapter tts: $(cat infer.out)"
fi
expect_fail "infer: audio adapter on a text path" "INCOMPATIBLE" "cannot serve a request on the backbone path" -- \
  "$m4fw" infer "${sock[@]}" --adapter tts --path backbone "go"
expect_fail "infer: text too long" "INVALID_ARGUMENT" "exceed the speech decoder's 6" -- \
  "$m4fw" infer "${sock[@]}" --path generator "go left" --out y.wav
expect_fail "infer: --out of the wrong kind" "y.png" ".wav" -- \
  "$m4fw" infer "${sock[@]}" --path generator "go" --out y.png
test ! -e y.wav && test ! -e y.png && ok "infer wrote nothing on failure" || bad "a failed infer wrote a file"
stop_daemon

finish "speech cli"
