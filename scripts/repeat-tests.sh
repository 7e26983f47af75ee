#!/usr/bin/env bash
# Runs the test command N times in a row in a fresh clone of REF, to catch tests that fail one
# run in a few (an ordering, a timing, this machine's load). --hog adds one busy process per core.
# Stops at the first failing run (exit 1) and keeps its log. Only committed work is tested.
#
#   usage: bash scripts/repeat-tests.sh [-n N] [--hog] [REF]      (N defaults to 5, REF to HEAD)
#   STITCH_REPEAT_COMMAND replaces `npm test` (e.g. to try the script itself on a quick command).
#
# Every process a run starts inherits a token in its environment; after each run and on any exit
# (failure, Ctrl-C, SIGTERM) the script stops every process that carries it, so it finds them even
# when they left the run's session or were orphaned. Only a SIGKILL of this script skips that: the
# hogs then stop by themselves, a running test command does not.
set -euo pipefail

usage() {
  echo "usage: bash scripts/repeat-tests.sh [-n N] [--hog] [REF]" >&2
  exit 2
}
runs=5
hog=false
ref=
while [ $# -gt 0 ]; do
  case $1 in
    -n) [ $# -ge 2 ] || usage; runs=$2; shift 2 ;;
    --hog) hog=true; shift ;;
    -h | --help) usage ;;
    -*) echo "unknown option $1" >&2; usage ;;
    *) [ -z "$ref" ] || usage; ref=$1; shift ;;
  esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "-n must be a positive whole number, got '$runs'" >&2; exit 2; }
command=${STITCH_REPEAT_COMMAND:-npm test}
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
commit=$(git -C "$repo" rev-parse --verify --quiet "${ref:-HEAD}^{commit}") ||
  { echo "no commit named '${ref:-HEAD}' in $repo" >&2; exit 2; }

say() { printf 'repeat-tests: %s\n' "$*"; }
work=$(mktemp -d "${TMPDIR:-/tmp}/stitch-repeat.XXXXXX")
token="$$-$RANDOM$RANDOM"
hogs=()

# Pids whose environment carries this invocation's token: what the test runs started, nothing else.
tagged() {
  grep -lzx "STITCH_REPEAT_TOKEN=$token" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 || true
}

# TERM, then KILL what is still there after 5 s; says what it had to stop, returns 1 if anything.
stop_tagged() {
  local pids left=0 i
  for ((i = 0; i < 50; i++)); do
    pids=$(tagged)
    [ -n "$pids" ] || return "$left"
    if [ "$left" = 0 ]; then
      say "stopping processes the run left behind:"
      # shellcheck disable=SC2086 # one pid per word
      ps -o pid=,args= -p "$(echo $pids | tr ' ' ,)" | sed 's/^/  /' || true
      left=1
    fi
    # shellcheck disable=SC2086
    kill -s "$([ "$i" -lt 25 ] && echo TERM || echo KILL)" $pids 2>/dev/null || true
    sleep 0.2
  done
  say "could not stop: $(tagged | tr '\n' ' ')"
  return 1
}

cleanup() {
  trap '' INT TERM HUP
  stop_tagged >&2 || true
  for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null || true; done
  { wait; } 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

git clone --quiet "$repo" "$work/repo"
git -C "$work/repo" checkout --quiet --detach "$commit"
say "$(git -C "$repo" log -1 --format='%h %s' "$commit" | cut -c1-100)"
say "command: $command; runs: $runs; clone: $work/repo"

if $hog; then
  # Busy loops that also end by themselves once this script is gone, even after a SIGKILL.
  for ((core = $(nproc); core > 0; core--)); do
    while kill -0 "$$" 2>/dev/null; do :; done &
    hogs+=("$!")
  done
  say "hog: ${#hogs[@]} busy processes (one per core)"
fi

passed=0
for ((run = 1; run <= runs; run++)); do
  log="$work/run-$run.log"
  start=$(date +%s%N)
  # Its own session, so a Ctrl-C here reaches the test only through cleanup, which stops all of it.
  (cd "$work/repo" && STITCH_REPEAT_TOKEN=$token exec setsid --wait bash -c "$command") >"$log" 2>&1 &
  rc=0
  wait "$!" || rc=$?
  ms=$((($(date +%s%N) - start) / 1000000))
  last=$(grep -v '^[[:space:]]*$' "$log" | tail -n 1 || true)
  verdict=pass
  [ "$rc" = 0 ] || verdict="FAIL (exit $rc)"
  printf 'run %d/%d  %-14s %6d.%01d s  %s\n' "$run" "$runs" "$verdict" $((ms / 1000)) $((ms % 1000 / 100)) "$last"
  if ! stop_tagged; then
    [ "$rc" = 0 ] && say "run $run passed but left processes behind; counted as a failure"
    rc=1
  fi
  if [ "$rc" != 0 ]; then
    kept="${TMPDIR:-/tmp}/stitch-repeat-$(git -C "$repo" rev-parse --short "$commit")-run$run.log"
    cp "$log" "$kept"
    echo "--- last 40 lines (whole log: $kept) ---"
    tail -n 40 "$log"
    say "$passed of $runs runs passed before run $run failed"
    exit 1
  fi
  passed=$((passed + 1))
done
say "all $runs runs passed"
