#!/usr/bin/env bash
# strace -c -f the server during a run; prints syscall summary + request count.
servers=$1 model=$2 conns=$3 out=$4; shift 4
ulimit -n 20000
log=$(mktemp)
taskset -c 0 strace -c -f -o "$out.strace" "$servers" "$model" --addr 127.0.0.1:0 --admin 127.0.0.1:0 "$@" >"$log" 2>/dev/null &
spid=$!
for _ in $(seq 100); do grep -q listening "$log" && break; sleep 0.1; done
line=$(grep listening "$log")
data=$(sed 's/.*data=\([^ ]*\).*/\1/' <<<"$line"); admin=$(sed 's/.*admin=\([^ ]*\).*/\1/' <<<"$line")
taskset -c 1 /tmp/perf-bin/loadgen-after run --target "$data" --admin "$admin" -c "$conns" --method echo --size 64 --depth 1 \
  --warmup 0.5s --duration 2s --server-cpus 0 --json "$out" >/dev/null 2>&1
kill -TERM $(pgrep -P $spid) 2>/dev/null; wait $spid
python3 -c "import json;r=json.load(open('$out'));print('server requests in window',r['server']['requests'], 'ok', r['counts']['ok'])"
head -15 "$out.strace"
