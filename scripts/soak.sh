#!/usr/bin/env bash
# Soak (a reliability campaign; not part of CI): replicanary at a 1 s interval over every lab
# scenario for SOAK_SECONDS (default 1800), sampling the daemon's RSS, open file
# descriptors and threads every SOAK_SAMPLE_SECONDS (default 60), with its verdict counts
# and canaries outstanding. Prints a start/end summary and exits 1 if RSS or descriptors
# grew beyond the allowed slack. Everything binds 127.0.0.1; the lab and the daemon are
# stopped on exit (and die on their own if this script is SIGKILLed: the lab watches this
# shell's pid, the daemon runs under `timeout`).
#
#   scripts/soak.sh                                  # 30 minutes, release binary
#   SOAK_SECONDS=120 SOAK_SAMPLE_SECONDS=10 scripts/soak.sh
#   REPLICANARY_BIN=target/debug/replicanary scripts/soak.sh
#
# Environment: SOAK_SECONDS, SOAK_SAMPLE_SECONDS, REPLICANARY_BIN (default
# target/release/replicanary, built if missing), SOAK_RSS_SLACK_KIB (default 8192: the
# end RSS may exceed the RSS after the first sample by this much), SOAK_FD_SLACK (default 4).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SOAK_SECONDS=${SOAK_SECONDS:-1800}
SAMPLE=${SOAK_SAMPLE_SECONDS:-60}
BIN=${REPLICANARY_BIN:-target/release/replicanary}
RSS_SLACK=${SOAK_RSS_SLACK_KIB:-8192}
FD_SLACK=${SOAK_FD_SLACK:-4}
PY=tests/lab/.venv/bin/python

work=$(mktemp -d /tmp/replicanary-soak.XXXXXX)
lab_pid="" daemon_pid=""
stop_all() {
    [[ -n $daemon_pid ]] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
    [[ -n $lab_pid ]] && kill -TERM "$lab_pid" 2>/dev/null && wait "$lab_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap 'stop_all' EXIT
trap 'exit 130' INT TERM

[[ -x $BIN ]] || cargo build --release --quiet
bash tests/lab/setup.sh >/dev/null

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
lab_port=$(free_port)
metrics_port=$(free_port)

"$PY" tests/lab/labserver.py --port "$lab_port" --replication-delay 0.3 --exit-with-parent $$ \
    >"$work/lab.log" 2>&1 &
lab_pid=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$lab_port/_ministack/health" >/dev/null && break
    sleep 0.2
done
"$PY" tests/lab/provision.py --endpoint "http://127.0.0.1:$lab_port" --out "$work/config.yaml" \
    --suffix=-soak --interval 1s --poll-initial 100ms --poll-max 500ms --replication-timeout 10s \
    --slow-timeout 3s 2>>"$work/lab.log"

AWS_ACCESS_KEY_ID=333333333333 AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true \
AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent \
    timeout --signal=KILL $((SOAK_SECONDS + 120)) \
    "$BIN" run --config "$work/config.yaml" --listen "127.0.0.1:$metrics_port" --log-format json \
    2>"$work/daemon.log" >/dev/null &
daemon_pid=$!
# `timeout` forks the daemon: measure the daemon itself.
pid=""
for _ in $(seq 100); do
    pid=$(pgrep -P "$daemon_pid" -x replicanary || true)
    [[ -n $pid ]] && curl -sf "http://127.0.0.1:$metrics_port/readyz" >/dev/null && break
    sleep 0.2
done
[[ -n $pid ]] || { echo "soak: the daemon did not start" >&2; cat "$work/daemon.log" >&2; exit 1; }
trap 'exit 130' INT TERM

# One sample line: elapsed s, RSS KiB, fds, threads, verdicts, ok, error, canaries outstanding.
sample() {
    local elapsed=$1 rss fds threads m
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
    threads=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")
    fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    m=$(curl -sf "http://127.0.0.1:$metrics_port/metrics")
    awk -v e="$elapsed" -v rss="$rss" -v fds="$fds" -v th="$threads" '
        /^replicanary_probes_total\{/ { n += $NF; if ($0 ~ /outcome="ok"/) ok += $NF; if ($0 ~ /outcome="error"/) err += $NF }
        /^replicanary_canaries_outstanding / { out = $NF }
        END { printf "%7d %9d %5d %8d %9d %7d %6d %12d\n", e, rss, fds, th, n, ok, err, out }' <<<"$m"
}

echo "soak: $BIN, lab :$lab_port, metrics :$metrics_port, ${SOAK_SECONDS}s, all scenarios at interval 1s"
echo "soak: command: SOAK_SECONDS=$SOAK_SECONDS SOAK_SAMPLE_SECONDS=$SAMPLE scripts/soak.sh"
printf "%7s %9s %5s %8s %9s %7s %6s %12s\n" elapsed rss_kib fds threads verdicts ok error outstanding
start=$(date +%s)
sleep "$SAMPLE"   # the first sample is taken once every replication has probed a few times
first=$(sample $(( $(date +%s) - start )))
echo "$first"
while (( $(date +%s) - start < SOAK_SECONDS )); do
    left=$(( SOAK_SECONDS - ($(date +%s) - start) ))
    sleep $(( left < SAMPLE ? left : SAMPLE ))
    last=$(sample $(( $(date +%s) - start )))
    echo "$last"
done

read -r _ rss0 fd0 th0 _ <<<"$first"
read -r _ rss1 fd1 th1 n1 ok1 err1 out1 <<<"$last"
kill -TERM "$pid" 2>/dev/null || true
wait "$daemon_pid" 2>/dev/null || true
daemon_pid=""
panics=$(grep -c '"level":"ERROR"\|panicked' "$work/daemon.log" || true)
echo
echo "soak summary: rss ${rss0} -> ${rss1} KiB, fds ${fd0} -> ${fd1}, threads ${th0} -> ${th1}," \
     "verdicts ${n1} (ok ${ok1}, error ${err1}), canaries outstanding at end ${out1}, error/panic log lines ${panics}"
status=0
if (( rss1 > rss0 + RSS_SLACK )); then echo "soak: RSS grew by $((rss1 - rss0)) KiB (> $RSS_SLACK)"; status=1; fi
if (( fd1 > fd0 + FD_SLACK )); then echo "soak: descriptors grew by $((fd1 - fd0)) (> $FD_SLACK)"; status=1; fi
if (( panics > 0 )); then grep -m5 '"level":"ERROR"\|panicked' "$work/daemon.log"; status=1; fi
exit $status
