#!/usr/bin/env bash
# The main job on embedded defaults: installs what is missing, builds, starts the daemon with the
# bundled rules and a SQLite store in ./data, feeds it the example data over TCP, shows what it
# ingested and the alerts it raised, and stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build
bin=build/src/iraewatch
data_dir="${IRAEWATCH_DATA_DIR:-data}"
mkdir -p "$data_dir"
ready="$data_dir/quickstart.ready"
rm -f "$ready"

# Port 0: the system picks free ports (the ready file says which), so a busy 7470, 7471 or 2575
# cannot stop the demo.
"$bin" --data-dir "$data_dir" serve --listen 127.0.0.1:0 --subscribers 127.0.0.1:0 --mllp 127.0.0.1:0 \
  --ready-file "$ready" &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null || true; wait $daemon 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  [ -s "$ready" ] && break
  kill -0 $daemon 2>/dev/null || { echo "quickstart: the daemon did not start" >&2; exit 1; }
  sleep 0.1
done
[ -s "$ready" ] || { echo "quickstart: the daemon did not start listening within 10 s" >&2; exit 1; }
endpoint=$(sed -E 's/.*"ndjson":"([^"]+)".*/\1/' "$ready")
mllp_port=$(sed -E 's/.*"mllp":"[^"]*:([0-9]+)".*/\1/' "$ready")

echo "== sending examples/records.ndjson to the daemon at $endpoint"
"$bin" send --to "$endpoint" --print examples/records.ndjson
echo
echo "== sending examples/messages.hl7 (HL7 v2: an ICI dose and three thyroid panels) over MLLP with mllp_send"
# mllp_send (Debian's python3-hl7) prints each ACK; MSA|AA means stored.
mllp_send --loose -p "$mllp_port" -f examples/messages.hl7 127.0.0.1 | tr '\r' '\n' | grep -a '^MSA'
# Stopping drains: every acknowledged record is committed and evaluated before the daemon exits.
kill -TERM $daemon
wait $daemon
trap - EXIT
echo
echo "== what the store holds"
"$bin" --data-dir "$data_dir" summary
echo
echo "== the alerts raised, for clinician review (acknowledge one with: $bin --data-dir $data_dir ack ID --by NAME)"
"$bin" --data-dir "$data_dir" alerts
echo
echo "Full alert events (JSON lines): $data_dir/alerts.jsonl"
echo "The daemon stopped cleanly. Run it yourself with: $bin --data-dir $data_dir serve"
