#!/usr/bin/env bats
# Terminals: a pseudo-terminal pair inside the dumped tree.

load helpers

@test "pty: master and slave in the tree, settings, window, controlling terminal, foreground group" {
	start_prog pty
	dump_and_kill_tree
	grep -q '"PTMX"' <(stasis-serialize show -D "$IMG")
	grep -q '"PTS"' <(stasis-serialize show -D "$IMG")
	restore_and_check
}

@test "ctty: a controlling pty no task holds a descriptor of, /dev/tty held open without --shell-job, a member that gave it up, the foreground group, the slave node's owner and mode, a hung-up slave whose node is gone" {
	start_prog ctty
	dump_and_kill_tree
	grep -q '"uid": 13333' <(stasis-serialize show -D "$IMG")
	grep -q '"CTTY"' <(stasis-serialize show -D "$IMG")
	grep -q '"hungup": true' <(stasis-serialize show -D "$IMG")
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
	wait_ids_free 30
	(sleep 1; touch "$GOFILE") &
	(
		close_extra_fds
		exec script -qfec "stasis restore -j -D $IMG" "$ts2" </dev/null >/dev/null 2>&1
	)
	# the restore's progress line is drawn on the terminal and erased with
	# "\r ESC[K" before the program's output: read the screen's lines
	tr '\r' '\n' <"$ts2" | sed 's/\x1b\[K//g' | grep -q '^PASS' || { cat "$ts2"; return 1; }
}
