# Sourced by kforge's resume end-to-end tests: run a kforge command with
# -o json and SIGKILL it at a phase boundary.

# killat EVENT PHASE HOST DELAY -- CMD...: runs CMD (a kforge command, given
# -o json here) and kills it with SIGKILL DELAY seconds after the first
# event EVENT (phase-start, phase-end) of PHASE on HOST ("" for any host).
# It succeeds when it killed the command, and fails when the command ended
# first. KILLAT_ALSO, when set, is a command run right after the kill (to
# kill the remote end of an SSH command). Bounded by KILLAT_TIMEOUT seconds
# (300).
killat() {
  local ev=$1 phase=$2 hostsel=$3 delay=$4
  shift 5
  local dir fifo pid killed=0 line
  dir=$(mktemp -d)
  fifo=$dir/events
  mkfifo "$fifo"
  timeout -s KILL "${KILLAT_TIMEOUT:-300}" "$@" -o json >"$fifo" 2>"$dir/stderr" &
  pid=$!
  while IFS= read -r line; do
    if jq -e --arg ev "$ev" --arg ph "$phase" --arg h "$hostsel" \
      '.event == $ev and .phase == $ph and ($h == "" or .host == $h)' <<<"$line" >/dev/null 2>&1; then
      sleep "$delay"
      # timeout runs kforge as its child: kill both.
      pkill -KILL -P "$pid" 2>/dev/null || true
      kill -KILL "$pid" 2>/dev/null || true
      [ -z "${KILLAT_ALSO:-}" ] || eval "$KILLAT_ALSO" || true
      killed=1
      break
    fi
  done <"$fifo"
  { wait "$pid"; } 2>/dev/null || true
  [ "$killed" = 1 ] || { echo "the command ended before the kill; its stderr:"; tail -15 "$dir/stderr"; } >&2
  rm -rf "$dir"
  [ "$killed" = 1 ]
}

# phases_of CMD...: runs CMD with -o json to its end and prints the hosts
# and phases it finished, one "HOST PHASE" per line, in order.
phases_of() {
  "$@" -o json 2>/dev/null | jq -r 'select(.event == "phase-end" and (.error // "") == "") | "\(.host) \(.phase)"'
}

# kill_points DELAY PHASE...: the kill points of a command with these
# phases, as EVENT:PHASE:DELAY: right after each phase's end, DELAY seconds
# into bundle and images (the long copies) and a second into wait.
kill_points() {
  local delay=$1 p
  shift
  for p in "$@"; do echo "phase-end:$p:0"; done
  echo "phase-start:bundle:$delay"
  echo "phase-start:images:$delay"
  echo "phase-start:wait:1"
}
