#!/usr/bin/env bash
# perf record the server and the loadgen during one run.
servers=$1 model=$2 conns=$3 out=$4
ulimit -n 20000
log=$(mktemp)
taskset -c 0 "$servers" "$model" --addr 127.0.0.1:0 --admin 127.0.0.1:0 >"$log" 2>/dev/null &
spid=$!
for _ in $(seq 100); do grep -q listening "$log" && break; sleep 0.1; done
line=$(grep listening "$log")
data=$(sed 's/.*data=\([^ ]*\).*/\1/' <<<"$line"); admin=$(sed 's/.*admin=\([^ ]*\).*/\1/' <<<"$line")
taskset -c 1 /tmp/perf-bin/loadgen-after run --target "$data" --admin "$admin" -c "$conns" --method echo --size 64 --depth 1 \
  --warmup 1s --duration 3s --server-cpus 0 --json "$out.json" >/dev/null 2>&1 &
lpid=$!
sleep 1.5
perf record -g -o "$out.server.perf" -p $spid -- sleep 2 2>/dev/null &
perf record -g -o "$out.loadgen.perf" -p $lpid -- sleep 2 2>/dev/null
wait $lpid; kill -TERM $spid; wait $spid
