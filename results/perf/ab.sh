#!/usr/bin/env bash
# One echo-saturate run (64 B, depth 1, closed loop): server pinned to CPU 0,
# loadgen pinned to CPU 1. Prints one line of figures and keeps the JSON.
#   ab.sh SERVERS_BIN LOADGEN_BIN MODEL CONNS OUT.json [server args...]
set -euo pipefail
servers=$1 loadgen=$2 model=$3 conns=$4 out=$5; shift 5
ulimit -n 20000
log=$(mktemp)
taskset -c 0 "$servers" "$model" --addr 127.0.0.1:0 --admin 127.0.0.1:0 "$@" 2>"$log.err" >"$log" &
spid=$!
for _ in $(seq 100); do grep -q listening "$log" && break; sleep 0.1; done
line=$(grep listening "$log")
data=$(sed 's/.*data=\([^ ]*\).*/\1/' <<<"$line"); admin=$(sed 's/.*admin=\([^ ]*\).*/\1/' <<<"$line")
taskset -c 1 "$loadgen" run --target "$data" --admin "$admin" -c "$conns" --method echo --size 64 --depth 1 \
  --warmup 1s --duration ${DURATION:-3s} --server-cpus 0 --json "$out" >/dev/null 2>"$out.log" || true
kill -TERM $spid; wait $spid 2>/dev/null || true
rm -f "$log" "$log.err"
python3 - "$out" "$model" "$conns" <<'PY'
import json,sys
r=json.load(open(sys.argv[1]))
s=r.get("server") or {}
print(f'{sys.argv[2]} c={sys.argv[3]} rps={r["throughput_rps"]:.0f} srv_cpu={s.get("cpu_us_per_req",0):.2f} '
      f'lg_cpu={r["loadgen"]["cpu_us_per_req"]:.2f} srv_util={s.get("cpu_utilization",0):.2f} '
      f'lg_util={r["loadgen"]["cpu_utilization"]:.2f} lg_rss={r["loadgen"]["max_rss_bytes"]/2**20:.1f} '
      f'bound={r["loadgen_bound"]} fail={r["failure"]} fair={r["fairness"]}')
PY
