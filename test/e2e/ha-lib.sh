# Helpers of the HA end-to-end test and benchmark (sourced): they need
# KFORGE, KUBECTL, HA (the cluster file) and NS.

# members prints kforge's etcd member table; it exits non-zero when a
# member is not healthy, which the callers check themselves.
members() { "$KFORGE" etcd members -f "$HA" "$@" 2>&1 || true; }
# members_json is the same as JSON (its error, on stderr, left out).
members_json() { "$KFORGE" etcd members -f "$HA" -o json 2>/dev/null || true; }
# healthy_members counts the members etcd reports healthy.
healthy_members() { members_json | jq '[.members[]? | select(.healthy)] | length' 2>/dev/null || echo 0; }
# etcd_leader names the member etcd reports as its leader.
etcd_leader() { members_json | jq -r '.members[]? | select(.leader) | .name'; }
# wait_healthy N SECONDS waits until N members are healthy.
wait_healthy() {
  local i deadline=$(($(date +%s) + $2))
  for i in $(seq 1 100); do
    [ "$(healthy_members)" = "$1" ] && return 0
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 2
  done
  return 1
}

# start_prober NAME NODE URL COUNT starts a pod on NODE that asks URL
# COUNT times, 100 ms apart, as the prober service account (echo probe).
start_prober() {
  "$KUBECTL" -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  nodeName: $2
  serviceAccountName: prober
  restartPolicy: Never
  containers:
  - name: probe
    image: kforge.dev/echo:v1
    imagePullPolicy: Never
    command: [/echo, probe, "$3", "$4", "100ms"]
YAML
  "$KUBECTL" -n "$NS" wait --for=condition=Ready "pod/$1" --timeout=60s >/dev/null
}

# prober_account creates the service account the probers ask as, allowed
# to list ConfigMaps in NS (a read that needs etcd's quorum).
prober_account() {
  "$KUBECTL" -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: ServiceAccount
metadata: {name: prober}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: prober}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: prober}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: prober}
subjects: [{kind: ServiceAccount, name: prober, namespace: $NS}]
YAML
}
