# Sourced (not run) by the shell tests of the m4fw / m4fwd command line: a fresh work directory, the
# PASS / FAIL tally, expect_fail, a daemon on a private socket, and the closing line.
#   source "$(dirname "$0")/harness.sh" M4FW_BINARY WORKDIR   (sets m4fw, work, root; cd's into WORKDIR)
set -uo pipefail
m4fw="$1"
work="$2"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "PASS $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# expect_fail NAME NEEDLE... -- COMMAND...: the command must exit 1..127 (an error, not a signal)
# and print every needle.
expect_fail() {
  local name="$1"; shift
  local needles=()
  while [ "$1" != "--" ]; do needles+=("$1"); shift; done
  shift
  local out rc
  out="$("$@" 2>&1)"
  rc=$?
  local good=1
  if [ "$rc" -eq 0 ] || [ "$rc" -ge 128 ]; then good=0; fi
  for n in "${needles[@]}"; do grep -qF -- "$n" <<<"$out" || good=0; done
  if [ "$good" -eq 1 ]; then ok "$name (exit $rc)"; else bad "$name (exit $rc): $out"; fi
}

# start_daemon [M4FWD ARGS…]: m4fwd of the same build on $work/svc/s.sock (state and log under svc/),
# killed on exit; returns once it answers `m4fw status` (10 s at most). Sets dpid and sock.
start_daemon() {
  local m4fwd
  m4fwd="$(cd "$(dirname "$m4fw")/../m4fwd" && pwd)/m4fwd"
  mkdir -p svc && chmod 700 svc && echo '{}' > svc/config.json
  "$m4fwd" --socket "$work/svc/s.sock" --state-dir "$work/svc/state" --config svc/config.json "$@" \
    > svc/daemon.log 2>&1 < /dev/null &
  dpid=$!
  trap 'kill $dpid 2>/dev/null' EXIT
  for _ in $(seq 1 100); do
    "$m4fw" status --socket "$work/svc/s.sock" > svc/status.log 2>&1 && break
    sleep 0.1
  done
  sock=(--socket "$work/svc/s.sock")
}
stop_daemon() { kill "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null; }

# write_png FILE WIDTH HEIGHT: an 8-bit RGB PNG with a smooth pattern (an app's image input).
write_png() {
  /usr/bin/python3 - "$@" <<'PY'
import struct, sys, zlib
path, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
raw = b"".join(b"\0" + bytes((x * 23 + y * 11 + c * 80) % 256 for x in range(w) for c in range(3)) for y in range(h))
chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                       + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
PY
}

# finish NAME: the tally; the test fails when anything failed.
finish() {
  echo "$1: $pass passed, $fail failed"
  [ "$fail" -eq 0 ] && exit 0
  exit 1
}
