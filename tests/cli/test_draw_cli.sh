#!/usr/bin/env bash
# The full path into the image decoder (a scene description → an image) through the m4fw command
# line: runs that write a PNG (firmware alone and with an image-output adapter), the adapter's
# output kind, `m4fw inspect` listing the path's operators (the decoder's included), each fault a
# clear error (no --out, a firmware without the decoder or without its projector, a bad --out, an
# image file as the description), and the same path served by m4fwd: `m4fw infer --path full
# --out` writes the PNG the daemon returns, byte for byte the in-process one.
# Usage: test_draw_cli.sh M4FW_BINARY WORKDIR
source "$(dirname "$0")/harness.sh" "$@"

cfg="$root/tests/oracle/oracle_config.json"   # "decoders": {"image": 16×16, patch 4} → 16 queries
/usr/bin/python3 - "$cfg" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["decoders"]["image"]["from_backbone"] = {"queries": 16}
json.dump(c, open("draw.json", "w"))
del c["decoders"]["image"]["from_backbone"]
json.dump(c, open("noproj.json", "w"))
del c["decoders"]
json.dump(c, open("nodec.json", "w"))
PY
for n in draw noproj nodec; do
  "$m4fw" init --config $n.json --out $n.m4fw --seed 3 >/dev/null 2>&1 && ok "init $n" || bad "init $n"
done

shown=$("$m4fw" inspect draw.m4fw 2>&1)
grep -q "^decoder image: 16x16 output, patch 4.*(from_backbone: 16 queries)" <<<"$shown" \
  && ok "inspect shows the projector" || bad "inspect decoder: $shown"
line=$(grep -E "^  full +text" <<<"$shown")
for op in matmul add rmsnorm rope silu gather layernorm gelu attention; do
  grep -qw "$op" <<<"$line" || bad "full text ops lack $op: $line"
done
[ -n "$line" ] && ok "inspect lists the full path into the decoder: ${line# }" || bad "no full text line"
"$m4fw" inspect noproj.m4fw 2>&1 | grep -qE "^  full +text" && bad "noproj lists a full text path" \
  || ok "no projector, no full path over text"

"$m4fw" adapter init --firmware draw.m4fw --out scene.m4a --task generate --path full --modality text \
  --rank 2 --alpha 4 --targets all --seed 5 >/dev/null 2>&1 && ok "adapter init (full path over text)" \
  || bad "adapter init"
"$m4fw" inspect scene.m4a 2>&1 | grep -q "path: full  modality: text  output: image" \
  && ok "adapter output kind image" || bad "adapter output kind: $("$m4fw" inspect scene.m4a 2>&1)"

desc="a red circle above a blue square"
png_ok() {  # FILE: a 16x16 PNG
  /usr/bin/python3 -c "
import struct, sys
b = open('$1', 'rb').read()
assert b[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
assert struct.unpack('>II', b[16:24]) == (16, 16)
"
}
"$m4fw" run --firmware draw.m4fw --path full "$desc" --out alone.png >run.out 2>&1 && png_ok alone.png \
  && ok "run --path full \"…\" --out alone.png (firmware alone)" || bad "run alone: $(cat run.out)"
"$m4fw" run --firmware draw.m4fw --adapter scene.m4a "$desc" --out scene.png >run.out 2>&1 && png_ok scene.png \
  && grep -q "16x16 image" run.out && ok "run --adapter scene.m4a \"…\" --out scene.png" \
  || bad "run adapter: $(cat run.out)"
cmp -s alone.png scene.png && bad "the adapter does not change the image" || ok "the adapter changes the image"
"$m4fw" run --firmware draw.m4fw --path full "$desc" --out again.png >/dev/null 2>&1 && cmp -s alone.png again.png \
  && ok "deterministic" || bad "two runs differ"
"$m4fw" run --firmware draw.m4fw --path full "a green star" --out other.png >/dev/null 2>&1 && ! cmp -s alone.png other.png \
  && ok "another description, another image" || bad "the description does not matter"

expect_fail "image adapter without --out" "--out" ".png" -- "$m4fw" run --firmware draw.m4fw --adapter scene.m4a "$desc"
expect_fail "no --out without adapter" "--out" ".png" -- "$m4fw" run --firmware draw.m4fw --path full "$desc"
expect_fail "firmware without the decoder" "no image decoder" -- \
  "$m4fw" run --firmware nodec.m4fw --path full "$desc" --out x.png
expect_fail "decoder without its projector" "from_backbone" -- \
  "$m4fw" run --firmware noproj.m4fw --path full "$desc" --out x.png
expect_fail "adapter init on a firmware without the projector" "from_backbone" -- \
  "$m4fw" adapter init --firmware noproj.m4fw --out y.m4a --task generate --path full --modality text --rank 2 \
  --targets all
expect_fail "--out in a missing directory" "no/such/dir/x.png" "does not exist" -- \
  "$m4fw" run --firmware draw.m4fw --adapter scene.m4a "$desc" --out no/such/dir/x.png
expect_fail "--out of the wrong kind" "x.wav" ".png" -- \
  "$m4fw" run --firmware draw.m4fw --adapter scene.m4a "$desc" --out x.wav
expect_fail "an image file as the description" "alone.png" "text description" -- \
  "$m4fw" run --firmware draw.m4fw --adapter scene.m4a alone.png --out x.png
expect_fail "a description too long for the backbone" "max_seq" -- \
  "$m4fw" run --firmware draw.m4fw --path full "$(printf 'red circle blue square %.0s' $(seq 1 60))" --out x.png
expect_fail "a description that is not UTF-8" "not valid UTF-8" "byte 6" -- \
  "$m4fw" run --firmware draw.m4fw --path full "$(printf 'a red \xff circle')" --out x.png
test ! -e x.png && ok "nothing written on failure" || bad "x.png written by a failed run"

# Served by m4fwd.
start_daemon --firmware draw.m4fw
if "$m4fw" infer "${sock[@]}" --path full "$desc" --out served.png > infer.out 2>&1; then
  cmp -s alone.png served.png && grep -q "16x16 image" infer.out \
    && ok "infer --path full --out: the served PNG is the in-process one, byte for byte" \
    || bad "served.png differs from alone.png: $(cat infer.out)"
else
  bad "infer --path full: $(cat infer.out) $(cat svc/daemon.log)"
fi
"$m4fw" adapter register "${sock[@]}" scene scene.m4a > /dev/null 2>&1 && ok "register scene.m4a" || bad "register"
if "$m4fw" infer "${sock[@]}" --adapter scene "$desc" --out served_scene.png > infer.out 2>&1; then
  cmp -s scene.png served_scene.png && ok "infer --adapter scene --out: equal to the in-process run" \
    || bad "served_scene.png differs from scene.png"
else
  bad "infer --adapter scene: $(cat infer.out)"
fi
expect_fail "infer: image adapter on an image file" "INVALID_ARGUMENT" "text" -- \
  "$m4fw" infer "${sock[@]}" --adapter scene alone.png --out y.png
expect_fail "infer: --out on a text reply" "--out" "no image" -- \
  "$m4fw" infer "${sock[@]}" --max-new-tokens 2 "hello" --out y.png
expect_fail "infer: a description too long" "INVALID_ARGUMENT" "max_seq" -- \
  "$m4fw" infer "${sock[@]}" --path full "$(printf 'red circle blue square %.0s' $(seq 1 60))" --out y.png
expect_fail "infer: a description that is not UTF-8 (refused by the client, named)" "not valid UTF-8" "input 1" -- \
  "$m4fw" infer "${sock[@]}" --path full "$(printf 'a red \xff circle')" --out y.png
test ! -e y.png && ok "infer wrote nothing on failure" || bad "y.png written by a failed infer"
"$m4fw" infer "${sock[@]}" --path full "$desc" --out served2.png > /dev/null 2>&1 && cmp -s alone.png served2.png \
  && ok "the daemon keeps serving after the faults" || bad "not served after the faults: $(cat svc/daemon.log)"
stop_daemon

finish "draw cli"
