#!/usr/bin/env bash
# kforge's benchmark (make bench). On this machine, with the bundle's images
# already in containerd, it alternates `kubeadm init` and `kforge init`,
# BENCH_N runs each after a warm-up of each, resetting the machine before
# every run, and times each run from the command's start to the API
# server's /readyz, to the node Ready and to CoreDNS Ready. Then it times
# `kforge up --local` from a reset machine to a Service answering by DNS
# name from a pod, and measures the control plane's memory once idle. It
# prints a table of medians and, last, `init ratio kforge/kubeadm: X.XX`
# (medians of the time to node Ready).
#
# Both tools start from the same state: `kforge reset --force` (kubelet,
# containers, containerd, files, CNI, iptables) and containerd started again
# under kforge's supervisor with kforge's config before the clock starts.
# kubeadm gets a config with kforge's version, subnets, advertise address
# and node name, a KubeletConfiguration with what this host needs, the
# bridge CNI config kforge writes (kubeadm installs no CNI), and a systemctl
# that runs its kubelet unit under kforge's supervisor (bench/systemctl).
#
# It changes this machine: it needs root, takes the node lock that the e2e
# tests take, and leaves the machine reset. Every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

KFORGE=$(realpath "${KFORGE:-bin/kforge}")
KUBEADM=${KUBEADM:-} # the kubeadm binary of the bundle's Kubernetes version
BUNDLE=${BUNDLE:?set BUNDLE to the path make artifacts prints}
# The machine's own kubectl, an independent client; else the one built
# with the bundle's Kubernetes (make bench passes it).
KUBECTL=${KUBECTL:-/usr/bin/kubectl}
[ -x "$KUBECTL" ] || KUBECTL=${KUBECTL_BUILT:-$KUBECTL}
N=${BENCH_N:-5}
IDLE=${BENCH_IDLE:-30}       # seconds idle before the memory is measured
TIMEOUT=${BENCH_TIMEOUT:-240} # seconds a run may take to CoreDNS Ready
OUT=$(realpath -m "${BENCH_OUT:-_output/bench}")
ONLY=${BENCH_ONLY:-} # "up": only kforge up --local to usable, BENCH_N times

STATE=/var/lib/kforge-bench           # the bench's own files on the host
SUPERVISOR=/var/lib/kforge/supervisor # kforge's supervisor, as phases/services.go has it
KFORGE_ON_HOST=/var/lib/kforge/bin/kforge
LOGDIR=/var/log/kforge
SUPER_ADMIN=/etc/kubernetes/super-admin.conf
CONTAINERD_CONFIG=/etc/containerd/config.toml # as layout.ContainerdConfig has it
NS=kforge-bench

RUN=$OUT/$(date +%Y%m%d-%H%M%S)
RESULTS=$RUN/results.tsv # tool, run, metric, seconds (or MiB)
WATCH_PIDS=()

log() { printf '%s  %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf 'bench FAILED: %s\n' "$*" >&2
  exit 1
}
# since T0 prints the seconds from T0 to now; T0 and now are $EPOCHREALTIME.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }
record() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; }

cleanup() {
  local rc=$?
  set +e
  for p in "${WATCH_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  if [ -n "${LOCKED:-}" ] && [ -z "${DONE:-}" ]; then
    log "resetting the machine"
    reset_host >/dev/null 2>&1
    rm -rf "$STATE"
  fi
  exit "$rc"
}

# reset_host: kforge reset, then what kubeadm's runs leave that it does not
# remove (containerd creates /lib/modules for kube-proxy's hostPath), so
# every run starts from the same state.
reset_host() {
  timeout 300 "$KFORGE" reset --force 8>&- >>"$RUN/reset.log" 2>&1 || die "kforge reset failed: see $RUN/reset.log"
  # The host's own containerd config (an OS package's), as it was before
  # the bench: start_containerd writes kforge's, which kforge's reset
  # removes as its own.
  case ${HOST_CONTAINERD_CONFIG:-} in
  "") ;;
  absent) rm -f "$CONTAINERD_CONFIG" ;;
  *) cmp -s "$HOST_CONTAINERD_CONFIG" "$CONTAINERD_CONFIG" || install -D -m 0644 "$HOST_CONTAINERD_CONFIG" "$CONTAINERD_CONFIG" ;;
  esac
  if [ "$LIB_MODULES" = absent ] && [ -d /lib/modules ]; then rmdir /lib/modules 2>/dev/null || true; fi
  local left
  left=$(find /etc/kubernetes /var/lib/kubelet /var/lib/etcd /etc/cni/net.d -mindepth 1 2>/dev/null | head -3 || true)
  [ -z "$left" ] || die "reset left files: $left"
  wait_ports
}

# wait_ports waits (at most 10 minutes) until nothing listens on the
# control plane's ports: the Go tests start control planes of their own on
# them without the node lock.
wait_ports() {
  local i held
  for i in $(seq 1 600); do
    held=$(ss -Hltnp | awk '$4 ~ /:(6443|2379|2380|10250|10257|10259)$/ { print $4, $6 }')
    [ -n "$held" ] || return 0
    [ "$i" != 1 ] || log "waiting for the control plane's ports: $(echo "$held" | tr '\n' ' ')"
    sleep 1
  done
  die "the control plane's ports stayed busy for 10 minutes: $held"
}

# start_containerd puts back the runtime and the kubelet as the
# warm-up installed them from the bundle (kforge reset removes them; both
# tools start from a host that has them, as kubeadm expects), starts
# kforge's supervisor with kforge's containerd service, as saved from the
# warm-up, with the config.toml kforge wrote (what this host needs, such
# as restrict_oom_score_adj where root lacks CAP_SYS_RESOURCE; kforge init
# finds it unchanged), and waits until containerd answers.
start_containerd() {
  install -D -m 0644 "$STATE/containerd-config.toml" "$CONTAINERD_CONFIG"
  cp -a "$STATE/bin/." /usr/local/bin/
  mkdir -p /opt/cni/bin && cp -a "$STATE/cni/." /opt/cni/bin/
  cmp -s "$KFORGE" "$KFORGE_ON_HOST" || install -D -m 0755 "$KFORGE" "$KFORGE_ON_HOST"
  install -D -m 0644 "$STATE/containerd.yaml" "$SUPERVISOR/services/containerd.yaml"
  # shellcheck disable=SC2016 # $1 and $@ are the inner shell's
  (cd / && setsid -f sh -c 'mkdir -p "$1" && log="$1/supervisor.log" && shift && exec "$@" </dev/null >>"$log" 2>&1' \
    sh "$LOGDIR" "$KFORGE_ON_HOST" supervise run --state-dir "$SUPERVISOR" --log-dir "$LOGDIR" 8>&-)
  "$KFORGE_ON_HOST" supervise wait --state-dir "$SUPERVISOR" --log-dir "$LOGDIR" --service containerd --timeout 60s >/dev/null ||
    die "containerd did not start under the supervisor"
  timeout 30 ctr --address /run/containerd/containerd.sock version >/dev/null || die "containerd does not answer"
}

# stamp prefixes every line with the time it was read.
stamp() {
  local l
  while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done
}

# ---------------------------------------------------------------------------
# The watcher: /readyz with curl and the admin client certificate (polled
# every 100 ms); a kubectl watch on the node from the API server's first
# answer, and one on CoreDNS once /readyz passes. It appends
# "NAME EPOCH" lines to an events file, or "timeout NAME". Deadlines are in
# microseconds since the epoch, ${EPOCHREALTIME/./}.

kubeconfig_field() { sed -n "s/^ *$1: //p" /etc/kubernetes/admin.conf | head -1 | base64 -d 2>/dev/null; }

# wait_apiserver EVENTS DEADLINE serving|ready: until the API server answers
# /readyz at all (serving), or with 200 (ready, recorded as "apiserver").
wait_apiserver() {
  local ev=$1 deadline=$2 want=$3 d=$RUN/tls f code
  mkdir -p "$d"
  while ((${EPOCHREALTIME/./} < deadline)); do
    # admin.conf appears early in both tools' runs; take its CA and client
    # certificate once it is complete.
    if [ ! -s "$d/admin.key" ] && [ -s /etc/kubernetes/admin.conf ]; then
      kubeconfig_field certificate-authority-data >"$d/ca.crt"
      kubeconfig_field client-certificate-data >"$d/admin.crt"
      kubeconfig_field client-key-data >"$d/admin.key"
      for f in ca.crt admin.crt admin.key; do grep -q -- '-----END' "$d/$f" || rm -f "$d/admin.key"; done
    fi
    if [ -s "$d/admin.key" ]; then
      code=$(curl -s --max-time 1 --cacert "$d/ca.crt" --cert "$d/admin.crt" --key "$d/admin.key" \
        -o /dev/null -w '%{http_code}' "https://$ADDRESS:6443/readyz" 2>/dev/null) || true
      if [ "$code" = 200 ] || { [ "$want" = serving ] && [ "${code:-000}" != 000 ]; }; then
        [ "$want" = serving ] || echo "apiserver $EPOCHREALTIME" >>"$ev"
        return 0
      fi
    fi
    sleep 0.1
  done
  [ "$want" = serving ] || echo "timeout apiserver" >>"$ev"
  return 1
}

# watch_for DEADLINE PREDICATE ARGS... prints the first line of `kubectl get
# ARGS -w --no-headers` whose columns satisfy PREDICATE; a watch that ends
# early is started again. It fails at the deadline.
watch_for() {
  local deadline=$1 pred=$2 fd pid line left tries=0
  shift 2
  while (((tries += 1) <= 50)); do
    left=$(((deadline - ${EPOCHREALTIME/./}) / 1000000))
    ((left > 0)) || break
    exec {fd}< <(exec timeout "$left" "$KUBECTL" get "$@" -w --no-headers 2>>"$RUN/watch.err")
    pid=$!
    while IFS= read -r -u "$fd" line; do
      # shellcheck disable=SC2086 # the columns are the predicate's arguments
      if $pred $line; then
        kill "$pid" 2>/dev/null || true
        exec {fd}<&-
        printf '%s\n' "$line"
        return 0
      fi
    done
    exec {fd}<&-
    sleep 0.2
  done
  return 1
}

node_ready() { [ "${1:-}" = True ]; }
all_ready() { [ "${1:-}" != "<none>" ] && [ "${1:-}" = "${2:-}" ]; }
pod_done() { [ "${1:-}" = Succeeded ] || [ "${1:-}" = Failed ]; }

# watch_event EVENTS DEADLINE NAME PREDICATE ARGS... records NAME when
# watch_for finds it.
watch_event() {
  local ev=$1 deadline=$2 name=$3
  shift 3
  if watch_for "$deadline" "$@" >/dev/null; then
    echo "$name $EPOCHREALTIME" >>"$ev"
  else
    echo "timeout $name" >>"$ev"
  fi
}

watch_cluster() { # EVENTS DEADLINE
  rm -f "$RUN"/tls/*
  if ! wait_apiserver "$1" "$2" serving; then
    echo "timeout apiserver" >>"$1"
    return 0
  fi
  # The node can turn Ready before /readyz passes: its watch starts as soon
  # as the API server answers, with super-admin.conf (system:masters, which
  # needs no RBAC yet).
  watch_event "$1" "$2" node node_ready --kubeconfig "$SUPER_ADMIN" nodes \
    -o 'custom-columns=READY:.status.conditions[?(@.type=="Ready")].status' &
  if ! wait_apiserver "$1" "$2" ready; then
    wait
    return 0
  fi
  watch_event "$1" "$2" coredns all_ready --kubeconfig "$SUPER_ADMIN" deployments -n kube-system -l k8s-app=kube-dns \
    -o 'custom-columns=READY:.status.readyReplicas,WANT:.spec.replicas' &
  wait
}

deadline() { echo $((${1/./} + TIMEOUT * 1000000)); } # T0 -> microseconds

# kubelet_started T0 prints "kubelet EPOCH" for the first start of the
# kubelet after T0 that the supervisor logged: both tools' kubelets run
# under kforge's supervisor, whose log lines start with an RFC 3339 time.
kubelet_started() {
  local t0=$1 ts
  ts=$(grep -h ' kforge supervisor: started pid ' "$LOGDIR/kubelet.log" 2>/dev/null |
    cut -d' ' -f1 | while read -r ts; do
      e=$(date -d "$ts" +%s.%N) && awk -v e="$e" -v t="$t0" 'BEGIN { exit !(e > t) }' && { echo "$e"; break; }
    done) || true
  [ -z "$ts" ] || echo "kubelet $ts"
}

# event EVENTS NAME T0 prints NAME's seconds after T0, or "-".
event() { awk -v n="$2" -v t0="$3" '$1 == n { printf "%.2f", $2 - t0; f = 1; exit } END { if (!f) print "-" }' "$1"; }

# ---------------------------------------------------------------------------
# The control plane's memory: the RSS of the main process of the etcd,
# kube-apiserver, kube-controller-manager and kube-scheduler containers of
# this machine's containerd (not of other containerds on the host).

control_plane_rss() { # TOOL RUN
  local c="ctr --address /run/containerd/containerd.sock -n k8s.io" id img pid comp kb total=0
  while read -r id img _; do
    comp=$(printf '%s\n' "$img" | sed -n 's#.*/\(etcd\|kube-apiserver\|kube-controller-manager\|kube-scheduler\):.*#\1#p')
    [ -n "$comp" ] || continue
    pid=$($c tasks ls 2>/dev/null | awk -v id="$id" '$1 == id && $3 == "RUNNING" { print $2 }')
    [ -n "$pid" ] || continue
    kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
    record "$1" "$2" "rss-$comp" "$(awk -v k="$kb" 'BEGIN { printf "%.0f", k / 1024 }')"
    total=$((total + kb))
  done < <($c containers ls 2>/dev/null | tail -n +2)
  record "$1" "$2" rss "$(awk -v k="$total" 'BEGIN { printf "%.0f", k / 1024 }')"
  log "  control plane RSS after ${IDLE}s idle: $((total / 1024)) MiB"
}

# ---------------------------------------------------------------------------
# One init run of a tool.

run_init() { # TOOL RUN
  local tool=$1 run=$2 ev=$RUN/$1-$2.events out=$RUN/$1-$2.log t0 deadline wpid rc=0
  reset_host
  start_containerd
  if [ "$tool" = kubeadm ]; then
    install -D -m 0644 "$STATE/10-kforge-bridge.conflist" /etc/cni/net.d/10-kforge-bridge.conflist
  fi
  : >"$ev"
  t0=$EPOCHREALTIME
  deadline=$(deadline "$t0")
  watch_cluster "$ev" "$deadline" 8>&- &
  wpid=$!
  WATCH_PIDS+=("$wpid")
  case $tool in
  kubeadm)
    (PATH=$STATE/shim:$PATH KFORGE_BENCH_KFORGE=$KFORGE_ON_HOST KFORGE_BENCH_SUPERVISOR=$SUPERVISOR \
      KFORGE_BENCH_KUBELET=$STATE/kubelet-kubeadm.sh \
      timeout "$TIMEOUT" "$KUBEADM" init --config "$STATE/kubeadm.yaml" --ignore-preflight-errors=all 8>&- 2>&1) |
      stamp >"$out" || rc=$?
    ;;
  kforge)
    (timeout "$TIMEOUT" "$KFORGE" init --bundle "$BUNDLE" -o json 8>&- 2>&1) | stamp >"$out" || rc=$?
    ;;
  esac
  echo "exit $EPOCHREALTIME" >>"$ev"
  [ "$rc" = 0 ] || die "$tool init (run $run) failed: see $out"
  wait "$wpid" || true
  kubelet_started "$t0" >>"$ev"
  local m v line=""
  for m in kubelet apiserver node coredns exit; do
    v=$(event "$ev" "$m" "$t0")
    [ "$v" != - ] || die "$tool run $run: no $m within ${TIMEOUT}s (events: $ev, log: $out)"
    record "$tool" "$run" "$m" "$v"
    line+=" $m ${v}s"
  done
  log "$tool init run $run:$line"
  if [ "$tool" = kforge ]; then
    kforge_phases "$out" | while read -r p v; do record kforge "$run" "phase $p" "$v"; done
  else
    kubeadm_steps "$out" "$t0" | while read -r p v; do record kubeadm "$run" "step $p" "$v"; done
  fi
}

# kforge_phases LOG prints each phase that succeeded as NAME SECONDS, from
# the phase-end events of kforge's JSON output (-o json) in LOG; stamp's
# time is cut off each line first, and lines that are not JSON (stderr)
# are skipped.
kforge_phases() {
  cut -d' ' -f2- "$1" |
    jq -Rr 'fromjson? | objects | select(.event == "phase-end" and (.error // "") == "") | [.phase, .duration_seconds] | @tsv' |
    awk -F'\t' '{ printf "%s %.3f\n", $1, $2 }'
}

# kubeadm_steps LOG T0 prints, for each "[step]" prefix of kubeadm's output
# in order, the seconds from its first line to the next step's (the last
# one's to the command's last line).
kubeadm_steps() {
  awk -v t0="$2" '
    { last = $1 }
    $2 ~ /^\[[a-z-]+\]$/ && !($2 in seen) { seen[$2] = 1; name[++n] = substr($2, 2, length($2) - 2); at[n] = $1 }
    END { for (i = 1; i <= n; i++) printf "%s %.3f\n", name[i], (i < n ? at[i + 1] : last) - at[i] }' "$1"
}

# ---------------------------------------------------------------------------
# kforge up --local from a reset machine (containerd stopped, as a user
# finds it after kforge reset) to a Service answering by name from a pod.

web_yaml() {
  printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n---\n' "$NS"
  sed "s/^metadata: {name: web}$/metadata: {name: web, namespace: $NS}/" test/e2e/web.yaml
}

client_yaml() { # NAME
  cat <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1, namespace: $NS}
spec:
  restartPolicy: Never
  containers:
  - name: client
    image: kforge.dev/echo:v1
    imagePullPolicy: Never
    command: [/echo, get, "http://web.$NS.svc.cluster.local/"]
YAML
}

# timeline_start FILE: until timeline_stop, appends stamped lines to FILE:
# "pod NAME NODE READY STARTED" from a watch on the workload's pods (each
# change), "slice NAME READY,..." (each endpoint's ready condition) from
# one on its EndpointSlices (a filter in the columns would end the watch
# while a slice has no endpoints), and
# "proxy T" for every iptables sync kube-proxy reports in its metrics
# (kubeproxy_sync_proxy_rules_last_timestamp_seconds, polled every 0.1 s,
# at most 600 times).
TIMELINE_PIDS=()
timeline_start() {
  local f=$1 kc=$2
  : >"$f"
  (timeout 120 "$KUBECTL" --kubeconfig "$kc" get pods -n "$NS" -w --no-headers \
    -o 'custom-columns=NAME:.metadata.name,NODE:.spec.nodeName,READY:.status.conditions[?(@.type=="Ready")].status,STARTED:.status.containerStatuses[0].state.running.startedAt' \
    2>>"$RUN/watch.err" | sed -u 's/^/pod /' | stamp >>"$f") 8>&- &
  TIMELINE_PIDS+=("$!")
  (timeout 120 "$KUBECTL" --kubeconfig "$kc" get endpointslices -n "$NS" -w --no-headers \
    -o 'custom-columns=NAME:.metadata.name,READY:.endpoints[*].conditions.ready' \
    2>>"$RUN/watch.err" | sed -u 's/^/slice /' | stamp >>"$f") 8>&- &
  TIMELINE_PIDS+=("$!")
  (
    last="" i=0
    while ((i++ < 600)); do
      v=$(curl -s --max-time 1 http://127.0.0.1:10249/metrics 2>/dev/null |
        awk '$1 ~ /^kubeproxy_sync_proxy_rules_last_timestamp_seconds($|\{ip_family="IPv4"\})/ { printf "%.3f", $2 }') || true
      if [ -n "$v" ] && [ "$v" != "$last" ]; then
        echo "$EPOCHREALTIME proxy $v" >>"$f"
        last=$v
      fi
      sleep 0.1
    done
  ) 8>&- &
  TIMELINE_PIDS+=("$!")
  WATCH_PIDS+=("${TIMELINE_PIDS[@]}")
}

timeline_stop() {
  local p
  for p in "${TIMELINE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${TIMELINE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  TIMELINE_PIDS=()
}

# crictl_times FILE appends "sandbox EPOCH POD" and "container EPOCH POD"
# (created) and "started EPOCH POD" for the workload's pods, from
# containerd's own records (nanoseconds).
crictl_times() {
  local f=$1 c=(crictl --runtime-endpoint unix:///run/containerd/containerd.sock) id pod created started
  "${c[@]}" pods --namespace "$NS" -o json 2>/dev/null |
    jq -r '.items[] | "sandbox \(.createdAt | tonumber / 1e9) \(.metadata.name)"' >>"$f" || true
  for id in $("${c[@]}" ps -a -q --label "io.kubernetes.pod.namespace=$NS" 2>/dev/null); do
    read -r pod created started < <("${c[@]}" inspect "$id" 2>/dev/null |
      jq -r '.status | "\(.labels["io.kubernetes.pod.name"]) \(.createdAt) \(.startedAt)"') || continue
    echo "container $(date -d "$created" +%s.%N) $pod"
    echo "started $(date -d "$started" +%s.%N) $pod"
  done >>"$f"
}

# up_breakdown TIMELINE T0 prints "NAME SECONDS" (from T0) for the steps
# between the workload's creation and the first answer: the first web pod
# scheduled, its sandbox, its container started, its readiness, the
# EndpointSlice's first ready address, kube-proxy's first sync after it,
# and the client's sandbox and container start.
up_breakdown() {
  awk -v t0="$2" '
    # Containers of earlier runs are left out: only times after T0 count.
    function at(name, t) { if (t + 0 >= t0 && !(name in seen)) { seen[name] = t; order[++n] = name } }
    $2 == "pod" && $3 ~ /^web-/ && $4 != "<none>" { at("web scheduled", $1) }
    $2 == "pod" && $3 ~ /^web-/ && $6 != "<none>" && $6 != "" { at("web container running (API)", $1) }
    $2 == "pod" && $3 ~ /^web-/ && $5 == "True" { at("web pod Ready (API)", $1) }
    $2 == "pod" && $3 ~ /^client-/ && $4 != "<none>" { at("client scheduled", $1) }
    $2 == "slice" && $4 ~ /true/ { at("endpoint ready (API)", $1); ready = $1 }
    $2 == "proxy" && ready != "" && $3 + 0 >= ready { at("kube-proxy synced after it", $3) }
    $1 == "sandbox" && $3 ~ /^web-/ { at("web sandbox created", $2) }
    $1 == "sandbox" && $3 ~ /^client-/ { at("client sandbox created", $2) }
    $1 == "started" && $3 ~ /^web-/ { at("web container started", $2) }
    $1 == "started" && $3 ~ /^client-/ { at("client container started", $2) }
    END { for (i = 1; i <= n; i++) printf "%s\t%.2f\n", order[i], seen[order[i]] - t0 }
  ' <(sort -n -k1,1 "$1" 2>/dev/null; grep -hE '^(sandbox|started) ' "$1" | sort -k2,2n) | sort -t$'\t' -k2,2n
}

run_up() {
  local run=${1:-1}
  local ev=$RUN/up-$run.events out=$RUN/up-$run.log kc=$RUN/up.kubeconfig tl=$RUN/up-$run.timeline t0 deadline wpid rc=0 i
  reset_host
  : >"$ev"
  t0=$EPOCHREALTIME
  deadline=$(deadline "$t0")
  watch_cluster "$ev" "$deadline" 8>&- &
  wpid=$!
  WATCH_PIDS+=("$wpid")
  (timeout "$TIMEOUT" "$KFORGE" up --local --bundle "$BUNDLE" --kubeconfig "$kc" -o json 8>&- 2>&1) | stamp >"$out" || rc=$?
  echo "exit $EPOCHREALTIME" >>"$ev"
  [ "$rc" = 0 ] || die "kforge up --local failed: see $out"
  kubelet_started "$t0" >>"$ev"
  timeline_start "$tl" "$kc"
  # The workload goes in as soon as up returns; the namespace's default
  # service account may take a moment, so creation is retried.
  for i in $(seq 1 50); do
    { web_yaml; echo ---; client_yaml client-1; } | "$KUBECTL" --kubeconfig "$kc" apply -f - >>"$RUN/up-workload.log" 2>&1 && break
    sleep 0.2
  done
  echo "applied $EPOCHREALTIME" >>"$ev"

  # The client tries for about 10 s; a client that gave up is replaced.
  local phase="" answered=""
  for i in 1 2 3 4 5; do
    [ "$i" = 1 ] || client_yaml "client-$i" | "$KUBECTL" --kubeconfig "$kc" apply -f - >>"$RUN/up-workload.log" 2>&1 || true
    phase=$(watch_for "$(deadline "$EPOCHREALTIME")" pod_done --kubeconfig "$kc" -n "$NS" pod "client-$i" \
      -o 'custom-columns=PHASE:.status.phase') || true
    if [ "$phase" = Succeeded ]; then
      answered=$("$KUBECTL" --kubeconfig "$kc" -n "$NS" logs --timestamps "client-$i" | grep ' web-' | head -1) || true
      [ -n "$answered" ] && break
    fi
    "$KUBECTL" --kubeconfig "$kc" -n "$NS" logs --timestamps "client-$i" >"$RUN/up-$run.client-$i.log" 2>&1 || true
    log "  client-$i: $phase (log: $RUN/up-$run.client-$i.log), trying again"
  done
  [ -n "$answered" ] || die "no answer from web.$NS.svc.cluster.local: see $RUN/up-workload.log"
  # The container runtime stamps the answer's line when the client wrote it.
  echo "usable $(date -d "${answered%% *}" +%s.%N)" >>"$ev"
  timeline_stop
  crictl_times "$tl"
  "$KUBECTL" --kubeconfig "$kc" -n "$NS" logs --timestamps "client-$i" >"$RUN/up-$run.client.log" 2>&1 || true
  "$KUBECTL" --kubeconfig "$kc" -n kube-system logs --timestamps ds/kube-proxy >"$RUN/up-$run.kube-proxy.log" 2>&1 || true
  wait "$wpid" || true
  local m v line=""
  for m in kubelet apiserver node coredns exit applied usable; do
    v=$(event "$ev" "$m" "$t0")
    line+=" $m ${v}s"
    [ "$v" = - ] || record up "$run" "$m" "$v"
  done
  log "kforge up --local (run $run):$line (answer: ${answered#* })"
  up_breakdown "$tl" "$t0" | while IFS=$'\t' read -r m v; do record up "$run" "step $m" "$v"; done
  kforge_phases "$out" | while read -r p v; do record up "$run" "phase $p" "$v"; done
  if [ "$run" = 1 ]; then
    log "  idle ${IDLE}s"
    sleep "$IDLE"
    control_plane_rss up 1
  fi
}

# ---------------------------------------------------------------------------
# The report: medians (with the range) of every metric.

median_table() { # prints TOOL METRIC MEDIAN MIN MAX COUNT for the numbered runs
  awk -F'\t' '$2 ~ /^[1-9][0-9]*$/' "$RESULTS" | sort -t$'\t' -k1,1 -k3,3 -k4,4g |
    awk -F'\t' '
      function flush() { if (n) { m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2; printf "%s\t%s\t%.2f\t%.2f\t%.2f\t%d\n", k1, k2, m, v[1], v[n], n } }
      { if ($1 != k1 || $3 != k2) { flush(); k1 = $1; k2 = $3; n = 0 } v[++n] = $4 }
      END { flush() }'
}

report() {
  local med=$RUN/medians.tsv
  median_table >"$med"
  get() { awk -F'\t' -v t="$1" -v m="$2" '$1 == t && $2 == m { print $3; f = 1 } END { if (!f) print "-" }' "$med"; }
  range() { awk -F'\t' -v t="$1" -v m="$2" '$1 == t && $2 == m { printf "%.2f-%.2f", $4, $5; f = 1 } END { if (!f) print "-" }' "$med"; }
  up() { awk -F'\t' -v m="$1" '$1 == "up" && $3 == m { print $4; f = 1 } END { if (!f) print "-" }' "$RESULTS"; }
  local kv
  kv=$("$KUBEADM" version -o short 2>/dev/null || echo '?')
  echo
  echo "kforge bench, $(date -u +%Y-%m-%d), $(hostname): $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Kubernetes $kv"
  echo "median (min-max) of $N runs each, seconds from the command's start"
  echo
  printf '| %-30s | %-20s | %-20s |\n' "" "kubeadm init" "kforge init"
  printf '|%s|%s|%s|\n' "--------------------------------" "----------------------" "----------------------"
  local m label
  for m in kubelet apiserver node coredns exit; do
    case $m in
    kubelet) label="kubelet started" ;;
    apiserver) label="API server /readyz ok" ;;
    node) label="node Ready" ;;
    coredns) label="CoreDNS Ready (2/2)" ;;
    exit) label="command exits" ;;
    esac
    printf '| %-30s | %-20s | %-20s |\n' "$label" "$(get kubeadm "$m") ($(range kubeadm "$m"))" "$(get kforge "$m") ($(range kforge "$m"))"
  done
  printf '| %-30s | %-20s | %-20s |\n' "control plane RSS idle (MiB)" "$(get kubeadm rss | cut -d. -f1)" "$(get kforge rss | cut -d. -f1)"
  echo
  echo "kforge init phases (median seconds):"
  awk -F'\t' '$1 == "kforge" && $2 ~ /^phase / { sub(/^phase /, "", $2); printf "  %-32s %6.2f\n", $2, $3 }' "$med" | sort -k2,2nr
  echo
  echo "kubeadm init steps (median seconds from a step's first line to the next step's):"
  awk -F'\t' '$1 == "kubeadm" && $2 ~ /^step / { sub(/^step /, "", $2); printf "  %-32s %6.2f\n", $2, $3 }' "$med" | sort -k2,2nr
  echo
  echo "kforge up --local from a reset machine (one run): kubelet started $(up kubelet)s, API server $(up apiserver)s," \
    "node Ready $(up node)s, command exits $(up exit)s, CoreDNS Ready $(up coredns)s, a Service answers by name from a pod $(up usable)s;" \
    "control plane RSS after ${IDLE}s idle $(up rss) MiB" \
    "(etcd $(up rss-etcd), kube-apiserver $(up rss-kube-apiserver), kube-controller-manager $(up rss-kube-controller-manager), kube-scheduler $(up rss-kube-scheduler))"
  echo "up phases: $(awk -F'\t' '$1 == "up" && $3 ~ /^phase / { sub(/^phase /, "", $3); printf "%s %.2f, ", $3, $4 }' "$RESULTS" | sed 's/, $//')"
  echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); logs: $RUN"
  echo
  awk -v a="$(get kforge node)" -v b="$(get kubeadm node)" 'BEGIN { printf "init ratio kforge/kubeadm: %.2f\n", a / b }'
}

# report_up: for BENCH_ONLY=up, the medians (with the range) of up's
# milestones and of the steps between the workload's creation and the first
# answer; `up usable: X.XXs` last.
report_up() {
  local med=$RUN/medians.tsv
  median_table >"$med"
  echo
  echo "kforge up --local, $(date -u +%Y-%m-%d), $(hostname): $(nproc) CPUs; median (min-max) of $N runs, seconds from the command's start"
  awk -F'\t' '$1 == "up" && $2 !~ /^phase / && $2 !~ /^rss/' "$med" | sort -t$'\t' -k3,3g |
    awk -F'\t' '{ sub(/^step /, "- ", $2); printf "  %-36s %6.2f  (%.2f-%.2f)\n", $2, $3, $4, $5 }'
  echo "up phases (median): $(awk -F'\t' '$1 == "up" && $2 ~ /^phase / { sub(/^phase /, "", $2); printf "%s %.2f, ", $2, $3 }' "$med" | sed 's/, $//')"
  echo "logs: $RUN"
  echo
  awk -F'\t' '$1 == "up" && $2 == "usable" { printf "up usable: %.2fs\n", $3 }' "$med"
}

# ---------------------------------------------------------------------------

main() {
  [ "$(id -u)" = 0 ] || die "run as root"
  [[ $N =~ ^[1-9][0-9]*$ ]] || die "BENCH_N must be a positive number"
  local t
  [ "$ONLY" = up ] || [ -n "$KUBEADM" ] || die "set KUBEADM to the kubeadm binary of the bundle's Kubernetes version"
  for t in "$KUBECTL" ${KUBEADM:+"$KUBEADM"} "$KFORGE"; do [ -x "$t" ] || die "no executable $t"; done
  for t in curl ctr flock setsid ss jq; do command -v "$t" >/dev/null || die "$t is not installed (make deps)"; done
  mkdir -p "$RUN"
  : >"$RESULTS"
  # One cluster per machine: the e2e tests and the bench take turns.
  exec 8>/run/kforge-node.lock
  flock -w 1800 8 || die "another kforge e2e or bench holds /run/kforge-node.lock"
  LOCKED=1
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  LIB_MODULES=$([ -e /lib/modules ] && echo present || echo absent)
  log "bench: $N runs each, logs in $RUN"

  # Warm-up: kforge up imports the bundle's images and leaves the files
  # kubeadm's runs reuse: kforge's containerd service and bridge CNI config,
  # and the cluster's address, name, version and subnets.
  reset_host
  # What reset_host puts back from now on: the host's config after a reset.
  HOST_CONTAINERD_CONFIG=absent
  if [ -f "$CONTAINERD_CONFIG" ]; then
    cp -a "$CONTAINERD_CONFIG" "$RUN/host-containerd-config.toml"
    HOST_CONTAINERD_CONFIG=$RUN/host-containerd-config.toml
  fi
  log "warm-up: kforge up --local"
  timeout "$TIMEOUT" "$KFORGE" up --local --bundle "$BUNDLE" --kubeconfig "$RUN/warmup.kubeconfig" 8>&- >"$RUN/warmup-up.log" 2>&1 ||
    die "kforge up --local failed: see $RUN/warmup-up.log"
  local manifest=/etc/kubernetes/manifests/kube-apiserver.yaml
  ADDRESS=$(sed -n 's/^ *- "*--advertise-address=\([^"]*\)"*$/\1/p' "$manifest")
  [ -n "$ADDRESS" ] || die "could not read the API server's address from $manifest"
  if [ "$ONLY" = up ]; then
    local r
    for r in $(seq 1 "$N"); do run_up "$r"; done
    log "resetting the machine"
    reset_host
    DONE=1
    report_up | tee "$RUN/report.txt"
    cp "$RUN/report.txt" "$OUT/latest-up.txt"
    return 0
  fi
  rm -rf "$STATE"
  mkdir -p "$STATE/shim"
  cp "$SUPERVISOR/services/containerd.yaml" /etc/cni/net.d/10-kforge-bridge.conflist "$STATE/"
  cp "$CONTAINERD_CONFIG" "$STATE/containerd-config.toml"
  mkdir -p "$STATE/bin" "$STATE/cni"
  cp -a /usr/local/bin/kubelet /usr/local/bin/containerd /usr/local/bin/containerd-shim-runc-v2 /usr/local/bin/ctr /usr/local/bin/runc "$STATE/bin/"
  cp -a /opt/cni/bin/. "$STATE/cni/"
  install -m 0755 bench/systemctl "$STATE/shim/systemctl"
  install -m 0755 bench/kubelet-kubeadm.sh "$STATE/kubelet-kubeadm.sh"
  local version service_subnet pod_subnet domain node
  version=$(sed -n 's#^ *image: "*registry.k8s.io/kube-apiserver:\([^"]*\)"*$#\1#p' "$manifest")
  service_subnet=$(sed -n 's/^ *- "*--service-cluster-ip-range=\([^"]*\)"*$/\1/p' "$manifest")
  pod_subnet=$(sed -n 's/^ *"subnet": "\(.*\)"$/\1/p' "$STATE/10-kforge-bridge.conflist" | head -1)
  domain=$(sed -n 's/^clusterDomain: "*\([^"]*\)"*$/\1/p' /var/lib/kubelet/config.yaml)
  node=$("$KUBECTL" --kubeconfig "$SUPER_ADMIN" get nodes -o jsonpath='{.items[0].metadata.name}')
  for t in ADDRESS version service_subnet pod_subnet domain node; do
    [ -n "${!t}" ] || die "could not read $t from kforge's cluster"
  done
  [ "$("$KUBEADM" version -o short)" = "$version" ] || die "kubeadm is $("$KUBEADM" version -o short), the bundle's Kubernetes is $version"
  log "cluster: $version, node $node at $ADDRESS, pods $pod_subnet, services $service_subnet, domain $domain"
  cat >"$STATE/kubeadm.yaml" <<YAML
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: $ADDRESS
  bindPort: 6443
nodeRegistration:
  name: $node
  criSocket: unix:///run/containerd/containerd.sock
  kubeletExtraArgs:
  - name: node-ip
    value: $ADDRESS
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: $version
# kforge's default key type; kubeadm's own is RSA-2048.
encryptionAlgorithm: ECDSA-P256
networking:
  podSubnet: $pod_subnet
  serviceSubnet: $service_subnet
  dnsDomain: $domain
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
---
# As kforge's kube-proxy: iptables mode, no host-wide conntrack sysctl.
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
conntrack:
  maxPerCore: 0
YAML

  log "warm-up: kubeadm init, kforge init"
  run_init kubeadm 0
  run_init kforge 0
  local i
  for i in $(seq 1 "$N"); do
    run_init kubeadm "$i"
    if [ "$i" = "$N" ]; then
      log "  idle ${IDLE}s"
      sleep "$IDLE"
      control_plane_rss kubeadm "$i"
    fi
    run_init kforge "$i"
    if [ "$i" = "$N" ]; then
      log "  idle ${IDLE}s"
      sleep "$IDLE"
      control_plane_rss kforge "$i"
    fi
  done
  run_up
  log "resetting the machine"
  reset_host
  rm -rf "$STATE"
  DONE=1
  # The ratio is the last line of the output.
  report | tee "$RUN/report.txt"
  cp "$RUN/report.txt" "$OUT/latest.txt"
}

main "$@"
