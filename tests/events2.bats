#!/usr/bin/env bats
# Event delivery that names tasks: SIGIO owners (F_SETOWN, F_SETOWN_EX,
# F_SETSIG) on several descriptor types; see tests/progs/fown.c.

load helpers

@test "fown: SIGIO owners (process, group, thread) and F_SETSIG on a pipe, a socket, a pty" {
	start_prog fown
	dump_and_kill
	restore_and_check
}

@test "fown: the checker passes on the original and notices a lost owner" {
	start_prog fown
	go_and_check_original
	rm -f "$GOFILE" "$LOG"
	STASIS_SABOTAGE=fown start_prog fown
	touch "$GOFILE"
	run wait_child "$PID" 20
	grep -q '^FAIL: .*pipe: owner is' "$LOG" || die_with_logs "sabotage not noticed"
}

@test "fown: a SIGIO owner outside the tree is refused at dump, naming it; the process runs on" {
	start_prog fown outside
	local rc=0
	(cd "$BATS_TEST_TMPDIR" && exec stasis dump -t "$PID" -D "$IMG" -v4 -o dump.log) \
		</dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 3>&- || rc=$?
	[ "$rc" -ne 0 ] || die_with_logs "the dump succeeded"
	grep -q "fd 3 of task $PID: its SIGIO owner (F_SETOWN process [0-9]*) is outside the tree" \
		"$BATS_TEST_TMPDIR/dump.out" || die_with_logs "the error does not name the owner and the PID"
	assert_running_untraced "$PID"
	go_and_check_original
}
