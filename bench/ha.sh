#!/usr/bin/env bash
# make bench-ha: on 3 control planes with a virtual IP and a worker (the
# machines of make machines), how long a client on the worker finds the
# API unavailable when the etcd leader's machine stops (a pod asking the
# API server through the virtual IP every 100 ms, at most 900 times, per
# round), and how long kforge init -f takes to join each further control
# plane. BENCH_HA_ROUNDS rounds (default 3). Prints a table and
# `ha: unavailable max X.Xs, control-plane join max Y.Ys` last. A
# benchmark: nothing here is asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
KFORGE=${KFORGE:-bin/kforge}
KUBECTL=${KUBECTL:-/usr/bin/kubectl}
BUNDLE=${BUNDLE:?set BUNDLE}
CLUSTER=${CLUSTER:?set CLUSTER to a cluster file of make machines CONTROL_PLANES=3}
ROUNDS=${BENCH_HA_ROUNDS:-3}
STATE=$(dirname "$CLUSTER")
export KUBECONFIG=$STATE/bench-ha-admin.conf
NS=kforge-bench
HA=$STATE/bench-ha.yaml
NET=$(awk '/address:/ {print $NF; exit}' "$CLUSTER" | awk -F. '{print $1"."$2"."$3}')
VIP=$NET.100
source test/e2e/ha-lib.sh

cp "$CLUSTER" "$HA"
printf 'loadBalancer:\n  virtualIP: %s\n' "$VIP" >>"$HA"
"$KFORGE" init -f "$HA" --bundle "$BUNDLE" --kubeconfig-out "$KUBECONFIG" >"$STATE/bench-ha-init.log" 2>&1 ||
  { tail -40 "$STATE/bench-ha-init.log"; exit 1; }
mapfile -t joins < <(sed -n 's/^  control plane \([0-9.]*\): joined as \(.*\) in \([0-9.]*\)s$/\2 \3/p' "$STATE/bench-ha-init.log")
"$KUBECTL" create namespace "$NS" >/dev/null
prober_account
worker=$(awk '/name:/ {n=$NF} /role: worker/ {print n; exit}' "$HA")
url="https://$VIP:6443/api/v1/namespaces/$NS/configmaps?limit=1"

printf '\n%-8s %-12s %-s\n' round stopped "prober on $worker (100 ms apart)"
outages=()
for r in $(seq 1 "$ROUNDS"); do
  wait_healthy 3 240 || { members; echo "bench-ha: etcd is not back to 3 healthy members" >&2; exit 1; }
  "$KUBECTL" -n "$NS" delete pod prober --ignore-not-found --wait=true >/dev/null
  leader=$(etcd_leader)
  start_prober prober "$worker" "$url" 600
  sleep 5
  docker stop -t 1 "$leader" >/dev/null
  "$KUBECTL" --request-timeout=10s -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded pod/prober --timeout=150s >/dev/null || true
  line=$("$KUBECTL" --request-timeout=10s -n "$NS" logs prober 2>&1 | tail -1)
  printf '%-8s %-12s %s\n' "$r" "$leader" "$line"
  outages+=("$(sed -n 's/.*longest outage \([0-9.]*\)s.*/\1/p' <<<"$line")")
  docker start "$leader" >/dev/null
done
wait_healthy 3 240 || true
printf '\n%-12s %s\n' "joined" "seconds (init -f, one control plane after another)"
for j in "${joins[@]}"; do printf '%-12s %s\n' $j; done
"$KFORGE" reset -f "$HA" --force >"$STATE/bench-ha-reset.log" 2>&1 || tail -20 "$STATE/bench-ha-reset.log"
max_out=$(printf '%s\n' "${outages[@]}" | sort -g | tail -1)
max_join=$(printf '%s\n' "${joins[@]}" | awk '{print $2}' | sort -g | tail -1)
echo "ha: unavailable max ${max_out:-?}s over $ROUNDS rounds, control-plane join max ${max_join:-?}s"
