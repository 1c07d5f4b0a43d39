#!/usr/bin/env bats
# Terminals: a pseudo-terminal pair inside the dumped tree.

load helpers

# Every PID of the dumped tree must be free (not a pid, pgid or sid of any
# process) before the restore can reuse them; init reaps orphans slowly.
wait_tree_pids_free() {
	local pids p i
	pids=$(stasis-serialize show -D "$IMG" | python3 -c '
import json, sys
for im in json.load(sys.stdin):
    if im["image"] == "pstree":
        for r in im["records"]:
            print(r["pid"])')
	for i in $(seq 200); do
		local busy=
		for p in $pids; do
			ps -eo pid=,pgid=,sid= | grep -qw "$p" && busy=1
		done
		[ -z "$busy" ] && return 0
		sleep 0.1
	done
	echo "FAILED: PIDs $pids still in use 20 s after the dump"
	return 1
}

@test "pty: master and slave in the tree, settings, window, controlling terminal, foreground group" {
	start_prog pty
	dump_and_kill
	grep -q '"PTMX"' <(stasis-serialize show -D "$IMG")
	grep -q '"PTS"' <(stasis-serialize show -D "$IMG")
	wait_tree_pids_free
	restore_and_check
}

# A program whose terminal is the caller's (a shell job): `script` gives it a
# pty whose master stays outside the tree.
@test "--shell-job: a program on the caller's terminal is refused without -j, restored with -j onto the new caller's terminal" {
	local prog=$TESTPROGS/heap ts1=$BATS_TEST_TMPDIR/ts1 ts2=$BATS_TEST_TMPDIR/ts2 spid i
	(
		close_extra_fds
		exec script -qfec "$prog $GOFILE" "$ts1" </dev/null >/dev/null 2>&1
	) &
	spid=$!
	own_pid "$spid"
	for i in $(seq 100); do
		PID=$(pgrep -P "$(pgrep -P "$spid" | head -n 1)" 2>/dev/null | head -n 1)
		[ -z "$PID" ] && PID=$(pgrep -f "^$prog $GOFILE" | head -n 1)
		[ -n "$PID" ] && grep -q READY "$ts1" 2>/dev/null && break
		sleep 0.1
	done
	[ -n "$PID" ] || { echo "FAILED: the program did not start under script"; return 1; }
	own_pid "$PID" "$(readlink -f "$prog")"
	readlink "/proc/$PID/fd/1" | grep -q '^/dev/pts/'

	run stasis dump -t "$PID" -D "$IMG"
	[ "$status" -ne 0 ]
	[[ "$output" == *"use --shell-job"* ]]
	assert_running_untraced "$PID"

	rm -rf "$IMG"
	stasis dump -t "$PID" -D "$IMG" -j
	wait "$spid" || true
	for i in $(seq 200); do
		ps -eo pid=,pgid=,sid= | grep -qw "$PID" || break
		sleep 0.1
	done
	(sleep 1; touch "$GOFILE") &
	(
		close_extra_fds
		exec script -qfec "stasis restore -j -D $IMG" "$ts2" </dev/null >/dev/null 2>&1
	)
	grep -q '^PASS' "$ts2" || { cat "$ts2"; return 1; }
}
