#!/bin/bash
# Benchmark: memory of a restored pre-forked tree (issue 3). A parent fills
# SIZE_MB MiB of private anonymous memory, then forks NCHILD children that
# only read it (copy-on-write sharing); the total PSS of the tree (sum of
# Pss from /proc/PID/smaps_rollup over every task) is measured before the
# dump and after the restore. Restored without copy-on-write sharing, each
# task holds its own copy and the total grows about NCHILD + 1 times; the
# goal is a restored total within 10% of the original's.
#
#   bench/pss.sh [SIZE_MB [NCHILD]]          (default: 256 4; as root)
#
# Steps: start $STASIS_BUILD_DIR/tests/prefork GOFILE SIZE_MB NCHILD in its
# own session, wait for READY, measure, `stasis dump -t PID -D DIR` (the tree
# is killed), wait until the killed tree's PIDs, group and session IDs are
# free (init reaps the orphaned zombies slowly), `stasis restore -D DIR -d
# --pidfile FILE`, measure, then touch GOFILE: every task checks every word
# of its data and the program prints PASS.
#
# Environment:
#   STASIS_BUILD_DIR  build tree (default: the build/ beside this script);
#                     stasis is taken from $STASIS_BUILD_DIR/root/bin first
#   BENCH_DIR         where the images go (default: a fresh directory in /tmp)
#   BENCH_KEEP=1      keep the images and logs
#   BENCH_TIMEOUT     seconds to wait for READY / PASS / free IDs (default 120)
#   BENCH_STRICT=1    exit 1 when the restored PSS is more than 10% above
#   STASIS_DUMP_OPTS, STASIS_RESTORE_OPTS   extra options for dump/restore

set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${STASIS_BUILD_DIR:-$repo/build}
export STASIS_BUILD_DIR=$build
export PATH="$build/root/bin:$PATH"
prefork=$build/tests/prefork
wait_s=${BENCH_TIMEOUT:-120}

die() { echo "bench: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root"
[ -x "$prefork" ] || die "$prefork is not built (tests/progs/prefork.c)"
command -v stasis >/dev/null || die "stasis is not built ($build/root/bin/stasis); run tests/run or cmake --install first"
command -v python3 >/dev/null || die "python3 is needed to read the checkpoint's pstree"

mb=${1:-256}
nchild=${2:-4}
[[ $mb =~ ^[1-9][0-9]*$ ]] || die "bad size: $mb (MiB)"
if ! [[ $nchild =~ ^[1-9][0-9]*$ ]] || [ "$nchild" -gt 64 ]; then
	die "bad number of children: $nchild (1-64)"
fi

if [ -n "${BENCH_DIR:-}" ]; then
	top=$BENCH_DIR
	mkdir -p "$top" || exit 1
	top_is_ours=0
else
	top=$(mktemp -d /tmp/stasis-bench.XXXXXX) || exit 1
	top_is_ours=1
fi
run=$top/pss-$mb-$nchild
rm -rf "$run"
mkdir -p "$run/images" || exit 1
log=$run/prefork.log go=$run/go pidfile=$run/restored.pid

# Every PID of the tree (as started, then as restored), to kill on the way
# out if it is still a prefork.
pids=()
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	local p
	for p in "${pids[@]}"; do
		[ "$(cat /proc/"$p"/comm 2>/dev/null)" = prefork ] && kill -KILL "$p" 2>/dev/null
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null # our children; restored ones are not
		wait_gone "$p" 10
	done
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "bench: images and logs kept in $run" >&2
	elif [ "$top_is_ours" = 1 ]; then
		rm -rf "$top"
	else
		rm -rf "$run"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# Wait (up to $2 seconds) until a task no longer exists or is a zombie.
wait_gone() {
	local p=$1 t=$(($2 * 10)) st
	while [ "$t" -gt 0 ]; do
		st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' /proc/"$p"/status 2>/dev/null)
		{ [ -z "$st" ] || [ "$st" = Z ]; } && return 0
		sleep 0.05
		t=$((t - 1))
	done
	return 1
}

# Wait (up to $3 seconds) for a line matching $2 in file $1.
wait_line() {
	local t=$(($3 * 10))
	while [ "$t" -gt 0 ]; do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
		t=$((t - 1))
	done
	return 1
}

# Start "$@" in its own session with nothing open but fds 0-2 (see
# bench/dump-restore.sh): $! is the program itself.
spawn() {
	local fd
	for fd in /proc/"$BASHPID"/fd/*; do
		fd=${fd##*/}
		[ "$fd" -gt 2 ] && eval "exec $fd>&-"
	done
	exec setsid "$@"
}

# PID and its descendants.
tree_pids() {
	ps -eo pid=,ppid= | awk -v root="$1" '
		{ kids[$2] = kids[$2] " " $1 }
		END {
			q[1] = root; n = 1
			for (i = 1; i <= n; i++) {
				print q[i]
				m = split(kids[q[i]], k, " ")
				for (j = 1; j <= m; j++) q[++n] = k[j]
			}
		}'
}

# "PSS_KB RSS_KB NTASKS" of the tree under PID.
tree_mem() {
	local p pss=0 rss=0 n=0 a b
	for p in $(tree_pids "$1"); do
		read -r a b < <(awk '$1 == "Pss:" { p = $2 } $1 == "Rss:" { r = $2 } END { print p + 0, r + 0 }' \
			"/proc/$p/smaps_rollup" 2>/dev/null)
		pss=$((pss + ${a:-0}))
		rss=$((rss + ${b:-0}))
		n=$((n + 1))
	done
	echo "$pss $rss $n"
}

# Every PID, TID, group and session ID of the checkpoint.
image_ids() {
	stasis-serialize show "$run/images/pstree.img" | python3 -c '
import json, sys
ids = set()
for r in json.load(sys.stdin)["records"]:
    ids.update([r["pid"], r.get("pgid", 0), r.get("sid", 0)])
    ids.update(r.get("threads", []))
ids.discard(0)
print(" ".join(str(i) for i in sorted(ids)))'
}

# Wait until no process or thread uses one of the IDs as PID, TID, group or
# session.
wait_ids_free() {
	local ids=$1 t=$(($2 * 10)) busy
	while [ "$t" -gt 0 ]; do
		busy=$(ps -eLo pid=,lwp=,pgid=,sid= | awk -v ids="$ids" '
			BEGIN { n = split(ids, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
			{ for (f = 1; f <= 4; f++) if ($f in want) busy[$f] = 1 }
			END { for (p in busy) printf "%s ", p }')
		[ -z "$busy" ] && return 0
		sleep 0.1
		t=$((t - 1))
	done
	echo "bench: IDs still in use: $busy" >&2
	return 1
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

echo "bench: starting prefork $mb MiB, $nchild children" >&2
spawn "$prefork" "$go" "$mb" "$nchild" >"$log" 2>&1 </dev/null &
pid=$!
pids+=("$pid")
wait_line "$log" READY "$wait_s" || { cat "$log" >&2; die "prefork did not get READY"; }
mapfile -t tree < <(tree_pids "$pid")
pids+=("${tree[@]:1}")
read -r pss0 rss0 n0 < <(tree_mem "$pid")
echo "bench: before the dump: $n0 tasks, PSS $(mib "$pss0") MiB, RSS $(mib "$rss0") MiB" >&2

echo "bench: stasis dump -t $pid -D $run/images" >&2
# (stderr aside meanwhile: no "Killed" notice for the dumped prefork)
exec 3>&2 2>/dev/null
t0=$(now)
# shellcheck disable=SC2086
stasis dump -t "$pid" -D "$run/images" ${STASIS_DUMP_OPTS:-} >"$run/dump.log" 2>&1
rc=$?
t1=$(now)
wait "$pid"
exec 2>&3 3>&-
[ $rc -eq 0 ] || { cat "$run/dump.log" >&2; die "stasis dump failed ($rc)"; }
dump_s=$(elapsed "$t0" "$t1")
ids=$(image_ids) || die "cannot read the checkpoint's pstree"
t0=$(now)
wait_ids_free "$ids" "$wait_s" || die "the dumped tree's IDs are still in use after ${wait_s}s"
free_s=$(elapsed "$t0" "$(now)")

echo "bench: stasis restore -D $run/images -d --pidfile $pidfile" >&2
t0=$(now)
# shellcheck disable=SC2086
stasis restore -D "$run/images" -d --pidfile "$pidfile" ${STASIS_RESTORE_OPTS:-} >"$run/restore.log" 2>&1
rc=$?
t1=$(now)
rpid=$(cat "$pidfile" 2>/dev/null)
[ -n "$rpid" ] || rpid=$pid
[ $rc -eq 0 ] || { cat "$run/restore.log" >&2; die "stasis restore failed ($rc)"; }
restore_s=$(elapsed "$t0" "$t1")
mapfile -t tree < <(tree_pids "$rpid")
pids+=("${tree[@]}")
read -r pss1 rss1 n1 < <(tree_mem "$rpid")
echo "bench: after the restore: $n1 tasks, PSS $(mib "$pss1") MiB, RSS $(mib "$rss1") MiB" >&2

touch "$go"
verdict=PASS
if ! wait_line "$log" '^PASS' "$wait_s"; then
	verdict=FAIL
	grep -q FAIL "$log" || verdict="no answer"
	tail -n 5 "$log" >&2
fi
wait_gone "$rpid" 10

ratio=$(awk -v a="$pss0" -v b="$pss1" 'BEGIN { if (a > 0) printf "%.3f", b / a; else print "-" }')
within=$(awk -v r="$ratio" 'BEGIN { print (r != "-" && r <= 1.10) ? "yes" : "no" }')

echo
echo "PSS of a pre-forked tree: $mb MiB written by the parent, read by $nchild children; $(nproc) CPUs, kernel $(uname -r)"
printf '%-16s %6s %12s %12s\n' "" tasks "PSS MiB" "RSS MiB"
printf '%-16s %6s %12s %12s\n' "before the dump" "$n0" "$(mib "$pss0")" "$(mib "$rss0")"
printf '%-16s %6s %12s %12s\n' "restored" "$n1" "$(mib "$pss1")" "$(mib "$rss1")"
echo "PSS restored / before: $ratio (within 10%: $within)"
echo "dump ${dump_s}s, IDs free after ${free_s}s, restore -d ${restore_s}s; data check after the restore: $verdict"
[ "$verdict" = PASS ] || exit 1
[ "${BENCH_STRICT:-0}" = 1 ] && [ "$within" != yes ] && exit 1
exit 0
