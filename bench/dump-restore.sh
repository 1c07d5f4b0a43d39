#!/bin/bash
# Benchmark: checkpoint and restore a process holding SIZE_MB MiB of
# touched anonymous memory, and check the restored memory.
#
#   bench/dump-restore.sh [SIZE_MB ...]        (default: 1024; as root)
#
# For each size: start $STASIS_BUILD_DIR/tests/bigmem SIZE_MB GOFILE, wait
# for READY, time `stasis dump -t PID -D DIR` (the process is frozen from the
# start of the freeze until it is killed, so the dump's wall time is an upper
# bound of the frozen time), wait until the PID is reaped, time
# `stasis restore -D DIR -d --pidfile FILE`, then touch GOFILE and wait for
# the restored process to verify its memory and print PASS.
#
# Environment:
#   STASIS_BUILD_DIR  build tree (default: the build/ beside this script);
#                     stasis is taken from $STASIS_BUILD_DIR/root/bin first
#   BENCH_DIR         where the images go (default: a fresh directory in /tmp)
#   BENCH_KEEP=1      keep the images and logs
#   BENCH_TIMEOUT     seconds to wait for READY / PASS (default 120)
#   STASIS_DUMP_OPTS, STASIS_RESTORE_OPTS   extra options for dump/restore

set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${STASIS_BUILD_DIR:-$repo/build}
export STASIS_BUILD_DIR=$build
export PATH="$build/root/bin:$PATH"
bigmem=$build/tests/bigmem
wait_s=${BENCH_TIMEOUT:-120}

die() { echo "bench: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root"
[ -x "$bigmem" ] || die "$bigmem is not built (tests/progs/bigmem.c)"
command -v stasis >/dev/null || die "stasis is not built ($build/root/bin/stasis); run tests/run or cmake --install first"

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1024)
for s in "${sizes[@]}"; do
	[[ $s =~ ^[1-9][0-9]*$ ]] || die "bad size: $s (MiB)"
done

if [ -n "${BENCH_DIR:-}" ]; then
	top=$BENCH_DIR
	mkdir -p "$top" || exit 1
	top_is_ours=0
else
	top=$(mktemp -d /tmp/stasis-bench.XXXXXX) || exit 1
	top_is_ours=1
fi

# Every PID we started (or restored), to kill on the way out.
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		if [ "$(cat /proc/"$p"/comm 2>/dev/null)" = bigmem ]; then
			kill -KILL "$p" 2>/dev/null
		fi
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null # our children; restored ones are not
		wait_gone "$p" 10
	done
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "bench: images and logs kept in $top" >&2
	elif [ "$top_is_ours" = 1 ]; then
		rm -rf "$top"
	else
		rm -rf "$top"/run-*
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

# Start "$@" in its own session with nothing open but fds 0-2 (which the
# caller redirects): a checkpoint should not inherit our pipes. Call it in
# the background (spawn PROG ... >log &): the body runs in the forked child
# and execs, and with no job control that child is not a group leader, so
# setsid does not fork either: $! is PROG itself, our child.
spawn() {
	local fd
	for fd in /proc/$BASHPID/fd/*; do
		fd=${fd##*/}
		[ "$fd" -gt 2 ] && eval "exec $fd>&-"
	done
	exec setsid "$@"
}

fstype=$(findmnt -n -o FSTYPE -T "$top" 2>/dev/null || stat -f -c %T "$top")
rows=()
status=0

bench_one() {
	local mb=$1 run="$top/run-$1" pid rpid t0 t1 dump_s restore_s bytes img_mb
	rm -rf "$run"
	mkdir -p "$run/images" || return 1
	local log=$run/bigmem.log go=$run/go pidfile=$run/restored.pid

	echo "bench: $mb MiB: starting bigmem" >&2
	spawn "$bigmem" "$mb" "$go" >"$log" 2>&1 </dev/null &
	pid=$!
	pids+=("$pid")
	wait_line "$log" READY "$wait_s" || { cat "$log" >&2; echo "bench: bigmem did not get READY" >&2; return 1; }

	echo "bench: $mb MiB: stasis dump -t $pid -D $run/images" >&2
	t0=$(now)
	# shellcheck disable=SC2086
	stasis dump -t "$pid" -D "$run/images" ${STASIS_DUMP_OPTS:-} >"$run/dump.log" 2>&1
	local rc=$?
	t1=$(now)
	if [ $rc -ne 0 ]; then
		cat "$run/dump.log" >&2
		echo "bench: stasis dump failed ($rc)" >&2
		return 1
	fi
	dump_s=$(elapsed "$t0" "$t1")
	{ wait "$pid"; } 2>/dev/null # reap it: restore needs the PID free
	wait_gone "$pid" 10 || { echo "bench: PID $pid still alive after the dump" >&2; return 1; }

	bytes=$(find "$run/images" -maxdepth 1 -name 'pages-*.img' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
	img_mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
	local all_mb
	all_mb=$(du -sm --apparent-size "$run/images" | cut -f1)

	echo "bench: $mb MiB: stasis restore -D $run/images -d --pidfile $pidfile" >&2
	t0=$(now)
	# shellcheck disable=SC2086
	stasis restore -D "$run/images" -d --pidfile "$pidfile" ${STASIS_RESTORE_OPTS:-} >"$run/restore.log" 2>&1
	rc=$?
	t1=$(now)
	rpid=$(cat "$pidfile" 2>/dev/null)
	[ -n "$rpid" ] || rpid=$pid
	pids+=("$rpid")
	if [ $rc -ne 0 ]; then
		cat "$run/restore.log" >&2
		echo "bench: stasis restore failed ($rc)" >&2
		return 1
	fi
	restore_s=$(elapsed "$t0" "$t1")
	[ "$rpid" = "$pid" ] || echo "bench: restored PID $rpid, dumped $pid" >&2

	touch "$go"
	local verdict=PASS
	if ! wait_line "$log" 'PASS' "$wait_s"; then
		verdict=FAIL
		grep -q FAIL "$log" || verdict="no answer"
		tail -n 5 "$log" >&2
	fi
	wait_gone "$rpid" 10 || kill -KILL "$rpid" 2>/dev/null

	rows+=("$(printf '%8s %10s %12s %10s %12s %10s  %s' "$mb" "$dump_s" \
		"$(awk -v b="$bytes" -v s="$dump_s" 'BEGIN { if (s > 0) printf "%.0f", b / 1048576 / s; else print "-" }')" \
		"$img_mb" "$all_mb" "$restore_s" "$verdict")")
	[ "$verdict" = PASS ] || return 1
	[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$run/images"
}

for s in "${sizes[@]}"; do
	bench_one "$s" || status=1
done

echo
echo "stasis dump/restore, images on $top ($fstype), $(nproc) CPUs, kernel $(uname -r)"
printf '%8s %10s %12s %10s %12s %10s  %s\n' "mem MiB" "frozen s" "dump MiB/s" "pages MiB" "images MiB" "restore s" "check"
for r in "${rows[@]}"; do echo "$r"; done
echo "frozen s: wall time of stasis dump (upper bound of the time the tree is frozen)"
echo "dump MiB/s: size of pages-*.img / frozen s; restore s: wall time of stasis restore -d"
exit $status
