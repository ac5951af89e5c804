#!/usr/bin/env bash
# airgap-check.sh [MACHINE...]: proves that machine containers are air-gapped
# hosts with no container runtime, as kforge must find them before it runs:
# inside each machine (docker exec), in parallel, with time limits,
#
#   - `apt-get update --error-on=any` must fail (without --error-on=any it
#     exits 0 when every index fails to download) and fetch nothing;
#   - a TCP connection (bash's /dev/tcp) must fail to the Debian mirror
#     (MACHINES_MIRROR) and to the Go module proxy this host uses (the first
#     URL in `go env GOPROXY`), each by name and by the address this host
#     resolves it to, so a machine without DNS still has to prove it has no
#     route;
#   - containerd, runc, ctr and crun must be missing (`command -v`), as must
#     a containerd unit and the CNI plugin directories.
#
# MACHINE is a container name; without one, every running machine of
# MACHINES_PREFIX. It prints one line saying what failed in the machines and
# exits 0, or names every machine and finding that breaks the air gap and
# exits 1 (2: a machine does not answer). It also tries each address from
# this host: when this host cannot reach it either, the line says so, as the
# check then proves less.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TCP_SECONDS=5
APT_SECONDS=30

# url_target URL: prints "HOST PORT" of an http(s) URL.
url_target() {
  local url=$1 hostport host port=80
  [[ "$url" == https://* ]] && port=443
  hostport=${url#*://}
  hostport=${hostport%%/*}
  hostport=${hostport##*@}
  host=${hostport%%:*}
  [ "$host" = "$hostport" ] || port=${hostport##*:}
  printf '%s %s\n' "$host" "$port"
}

# goproxy_url prints the first URL in GOPROXY as `go env` reports it (or the
# environment, or Go's default), or nothing when it lists none (off, direct).
goproxy_url() {
  local list e
  list=$(timeout 10 go env GOPROXY 2>/dev/null || true)
  list=${list:-${GOPROXY:-https://proxy.golang.org,direct}}
  for e in ${list//[,|]/ }; do
    case "$e" in http://* | https://*)
      printf '%s\n' "$e"
      return 0
      ;;
    esac
  done
}

# resolve HOST: prints HOST's first IPv4 address as this host resolves it.
resolve() { getent ahostsv4 "$1" 2>/dev/null | awk 'NR == 1 {print $1}'; }

# The script run in each machine: ARGS are "HOST:PORT" targets. It prints
# "ok TEXT" for what failed as it must and "BAD TEXT" for what breaks the
# air gap.
# shellcheck disable=SC2016 # expanded in the machine
INSIDE='
# A short resolver timeout for every lookup here: where there is a route,
# the resolver docker gives the machines answers at once; where there is
# none, each lookup would wait 10 s and more.
export RES_OPTIONS="timeout:2 attempts:1"
tcp() {
  local out rc why
  out=$(timeout "$TCP_SECONDS" bash -c "exec 3<>/dev/tcp/$1/$2" 2>&1) && rc=0 || rc=$?
  case "$rc:$out" in
    0:*) echo "BAD tcp to $1:$2 connected"; return ;;
    124:*) why="timed out" ;;
    *refused*) why=refused ;;
    *"No route"* | *unreachable*) why=unreachable ;;
    *"name resolution"* | *resolving* | *"not known"*) why="has no address (DNS)" ;;
    *) why="failed (${out##*: })" ;;
  esac
  echo "ok tcp to $1:$2 $why"
}
apt_update() {
  local out rc
  out=$(timeout "$APT_SECONDS" apt-get update --error-on=any \
    -o Acquire::Retries=0 -o Acquire::http::Timeout=5 -o Acquire::https::Timeout=5 2>&1) && rc=0 || rc=$?
  if [ "$rc" = 0 ] || grep -Eq "^(Hit|Get):" <<<"$out"; then
    echo "BAD apt-get update fetched: $(grep -Em1 "^(Hit|Get):" <<<"$out" || echo "exit 0")"
  elif [ "$rc" = 124 ]; then
    echo "ok apt-get update timed out after ${APT_SECONDS}s"
  else
    echo "ok apt-get update failed ($(grep -Em1 "^(E|W): " <<<"$out" | sed -E "s/^E: Failed to fetch [^ ]+ +//; s/^[EW]: //"))"
  fi
}
for t in "$@"; do tcp "${t%:*}" "${t##*:}" & done
apt_update &
wait
for c in containerd runc ctr crun; do
  if p=$(command -v "$c"); then echo "BAD $c is installed: $p"; fi
done
for f in /lib/systemd/system/containerd.service /etc/systemd/system/containerd.service /usr/lib/cni /opt/cni/bin; do
  if [ -e "$f" ]; then echo "BAD $f exists"; fi
done
echo done
'

# span NAME...: "p-m1..m4" for consecutive machines of PREFIX, else the names.
span() {
  local i=1 n
  for n in "$@"; do
    if [ "$n" != "$(machine_name "$i")" ]; then
      echo "$*"
      return 0
    fi
    i=$((i + 1))
  done
  if [ $# -gt 2 ]; then echo "$1..m$#"; else echo "$*"; fi
}

main() {
  local start=$SECONDS machines targets=() names=() mirror_host mirror_port proxy host port ip
  if [ $# -gt 0 ]; then
    machines=("$@")
  else
    mapfile -t machines < <(d ps --filter "label=$LABEL.prefix=$PREFIX" \
      --format '{{.Label "dev.kforge.machines.index"}} {{.Names}}' | sort -n | awk '{print $2}')
    [ ${#machines[@]} -gt 0 ] || { log "no running machines of $PREFIX"; exit 2; }
  fi

  read -r mirror_host mirror_port < <(url_target "$MIRROR")
  names+=("$mirror_host:$mirror_port")
  proxy=$(goproxy_url)
  if [ -n "$proxy" ]; then
    read -r host port < <(url_target "$proxy")
    names+=("$host:$port")
  fi
  local unreachable=()
  for t in "${names[@]}"; do
    host=${t%:*} port=${t##*:}
    targets+=("$t")
    ip=$(resolve "$host")
    if [ -n "$ip" ] && [ "$ip" != "$host" ]; then targets+=("$ip:$port"); fi
    timeout "$TCP_SECONDS" bash -c "exec 3<>/dev/tcp/${ip:-$host}/$port" 2>/dev/null || unreachable+=("$t")
  done

  local dir m out bad=0 rc=0
  dir=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now
  trap "rm -rf '$dir'" EXIT
  for m in "${machines[@]}"; do
    timeout $((APT_SECONDS + 30)) "$DOCKER" exec -e TCP_SECONDS="$TCP_SECONDS" -e APT_SECONDS="$APT_SECONDS" \
      "$m" bash -c "$INSIDE" airgap-check "${targets[@]}" >"$dir/$m" 2>&1 &
  done
  wait || true
  for m in "${machines[@]}"; do
    out=$(cat "$dir/$m")
    if [ "$(tail -1 <<<"$out")" != "done" ]; then
      printf 'airgap: %s did not answer: %s\n' "$m" "$out" >&2
      rc=2
      continue
    fi
    while read -r line; do printf 'airgap: %s: %s\n' "$m" "${line#BAD }" >&2; bad=1; done < <(grep '^BAD ' <<<"$out" || true)
  done
  [ "$rc" = 0 ] || exit "$rc"
  if [ "$bad" = 1 ]; then
    printf 'airgap: FAILED: the machines above are not air-gapped hosts without a container runtime\n' >&2
    exit 1
  fi
  local found
  # What failed, as every machine saw it (one entry when they agree).
  found=$(cat "${machines[@]/#/$dir/}" | sed -n 's/^ok //p' | sort -u | paste -sd ';' | sed 's/;/; /g')
  printf 'airgap: %s have no route out (%s) and no containerd/runc/ctr (%ds)\n' \
    "$(span "${machines[@]}")" "$found" $((SECONDS - start))
  if [ ${#unreachable[@]} -gt 0 ]; then
    printf 'airgap: note: this host cannot reach %s either, so the check proves less there\n' "${unreachable[*]}"
  fi
}

main "$@"
