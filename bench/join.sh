#!/usr/bin/env bash
# make bench-join: how joining workers scales. On the machines of make
# machines, a control plane is built once (kforge init -f, not timed); then
# for each N of BENCH_JOIN_NS (default "1 2 4 6"), N fresh worker machines
# (containers made anew, so nothing of an earlier round is on them) are
# joined by kforge init -f with the control plane and them in its cluster
# file. For each N it prints the workers' wall time (from init's "Joining"
# line to its summary), the whole command's, the bytes this machine sent
# to the machines (the tx counter of the machines' bridge on this
# machine), the bytes each worker received (its eth0's rx counter) and the
# control plane sent (its eth0's tx counter). Ends with
# `join scale T(6)/T(1): X.XX operator bytes B(6)/B(1): Y.YY`.
# A benchmark: nothing here is asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/machines/lib.sh
KFORGE=${KFORGE:-bin/kforge}
BUNDLE=${BUNDLE:?set BUNDLE}
NS_LIST=${BENCH_JOIN_NS:-1 2 4 6}
OUT=${BENCH_OUT:-_output/bench-join}
mkdir -p "$OUT"
# calc EXPR: awk's arithmetic, two decimals.
calc() { awk "BEGIN {printf \"%.2f\", $1}"; }
max_n=$(tr ' ' '\n' <<<"$NS_LIST" | sort -n | tail -1)

# A fresh set: the control plane's machine and no workers.
bash scripts/machines/down.sh >/dev/null 2>&1 || true
N=1 bash scripts/machines/up.sh >"$OUT/machines.log" 2>&1 || { tail -20 "$OUT/machines.log"; exit 1; }
cluster=$(tail -1 "$OUT/machines.log")
bridge="br-$(d network inspect -f '{{.Id}}' "$NETWORK" | cut -c1-12)"
[ -r "/sys/class/net/$bridge/statistics/tx_bytes" ] || { echo "bench-join: no bridge $bridge on this machine" >&2; exit 1; }
counter() { cat "/sys/class/net/$bridge/statistics/tx_bytes"; }
start=$(date +%s.%N)
b0=$(counter)
"$KFORGE" init -f "$cluster" --bundle "$BUNDLE" --plain >"$OUT/init-control-plane.log" 2>&1 ||
  { tail -40 "$OUT/init-control-plane.log"; exit 1; }
CP_BYTES=$(($(counter) - b0))
cp_s=$(calc "$(date +%s.%N) - $start")
ADMIN=$OUT/admin.conf
docker exec "$PREFIX-m1" cat /etc/kubernetes/admin.conf >"$ADMIN"
chmod 600 "$ADMIN"

eth() { d exec "$1" cat "/sys/class/net/eth0/statistics/$2"; }
mib() { awk "BEGIN {printf \"%.1f\", $1 / 1048576}"; }
# stamp prefixes each line with the time since the epoch.
stamp() { while IFS= read -r l; do printf '%s %s\n' "$(date +%s.%N)" "$l"; done; }

printf 'control plane built in %.1fs, %s MiB sent (kforge init -f, not part of the table)\n\n' "$cp_s" "$(mib "$CP_BYTES")"
printf '%-3s %-10s %-10s %-14s %-14s %-16s %s\n' N "T(N) s" "T/T(1)" "command s" "operator MiB" "worker MiB each" "control plane sent MiB"
declare -A T B
for n in $NS_LIST; do
  # Fresh workers: remove the earlier round's machines and their nodes.
  for i in $(seq 2 $((max_n + 1))); do d rm -f -v "$PREFIX-m$i" >/dev/null 2>&1 || true; done
  kubectl --kubeconfig "$ADMIN" delete nodes -l '!node-role.kubernetes.io/control-plane' --wait=true >/dev/null 2>&1 || true
  N=$((n + 1)) bash scripts/machines/up.sh >"$OUT/machines-$n.log" 2>&1 || { tail -20 "$OUT/machines-$n.log"; exit 1; }
  cluster=$(tail -1 "$OUT/machines-$n.log")
  declare -A rx0=()
  for i in $(seq 2 $((n + 1))); do rx0[$i]=$(eth "$PREFIX-m$i" rx_bytes); done
  cp0=$(eth "$PREFIX-m1" tx_bytes)
  b0=$(counter)
  start=$(date +%s.%N)
  set +e
  "$KFORGE" init -f "$cluster" --bundle "$BUNDLE" --plain 2>&1 | stamp >"$OUT/join-$n.log"
  rc=${PIPESTATUS[0]}
  set -e
  end=$(date +%s.%N)
  b1=$(counter)
  cp1=$(eth "$PREFIX-m1" tx_bytes)
  [ "$rc" = 0 ] || { tail -40 "$OUT/join-$n.log"; echo "bench-join: kforge init -f with $n workers failed" >&2; exit 1; }
  t0=$(awk '/ Joining [0-9]+ worker/ {print $1; exit}' "$OUT/join-$n.log")
  t1=$(awk '/^[0-9.]+ Workers:$/ {print $1; exit}' "$OUT/join-$n.log")
  T[$n]=$(calc "$t1 - $t0")
  B[$n]=$((b1 - b0))
  each=""
  for i in $(seq 2 $((n + 1))); do each+="$(mib $(($(eth "$PREFIX-m$i" rx_bytes) - rx0[$i]))) "; done
  grep -A$((n + 1)) 'Workers:$' "$OUT/join-$n.log" | grep -c ' joined as ' | grep -qx "$n" ||
    { tail -20 "$OUT/join-$n.log"; echo "bench-join: not every worker joined" >&2; exit 1; }
  printf '%-3s %-10.2f %-10.2f %-14.1f %-14s %-16s %s\n' "$n" "${T[$n]}" "$(calc "${T[$n]} / ${T[${NS_LIST%% *}]}")" \
    "$(calc "$end - $start")" "$(mib "${B[$n]}")" "$each" "$(mib $((cp1 - cp0)))"
done
first=${NS_LIST%% *}
last=${NS_LIST##* }
echo
echo "where the time goes for N=$first (seconds after init's Joining line; the worker's phases and their durations):"
awk '/ Joining [0-9]+ worker/ {t0 = $1} t0 && / \[172\.[0-9.]*\] (\[ok\]|fetched|kforge join finished)/ {printf "  %6.2f %s\n", $1 - t0, substr($0, index($0, " ") + 1)}
  t0 && /^[0-9.]+ Workers:$/ {printf "  %6.2f Workers: summary\n", $1 - t0}' "$OUT/join-$first.log"
echo
echo "operator bytes with the control plane's build (the bundle's one crossing): B($first) $(mib $((CP_BYTES + B[$first]))) MiB, B($last) $(mib $((CP_BYTES + B[$last]))) MiB"
echo "join scale T($last)/T($first): $(calc "${T[$last]} / ${T[$first]}") operator bytes B($last)/B($first): $(calc "${B[$last]} / ${B[$first]}")"
bash scripts/machines/down.sh >/dev/null 2>&1 || true
