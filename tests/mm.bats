#!/usr/bin/env bats
# Memory beyond the pages (issue 10): round trips of tests/progs/mmstate.c
# (madvise advice, mlock, MAP_NORESERVE, MAP_DROPPABLE, guard regions, in a
# parent and the child it forked) and shmwin.c (shared and private windows
# on a shared memory object whose creating mapping is gone), each checker
# shown to notice damage.

load helpers

@test "mmstate: madvise advice, mlock, MAP_NORESERVE/MAP_DROPPABLE and guard regions of a parent and its child" {
	start_prog mmstate
	dump_and_kill_tree
	restore_and_check
}

@test "checker self-test: mmstate notices lost advice, a lost lock and lost guards (STASIS_SABOTAGE)" {
	local what
	for what in advice mlock guard; do
		rm -f "$BATS_TEST_TMPDIR/mmstate.log"
		export STASIS_SABOTAGE=$what
		start_prog mmstate
		unset STASIS_SABOTAGE
		touch "$GOFILE"
		wait_child "$PID" 30 || die_with_logs "$what: no verdict" || return 1
		grep -q '^FAIL' "$LOG" || die_with_logs "$what: sabotage not noticed" || return 1
	done
}

@test "shmwin: shared and private windows of a shared anonymous object, none of them its creator, in a parent and its child" {
	start_prog shmwin
	dump_and_kill_tree
	restore_and_check
}

@test "checker self-test: shmwin notices an unshared window and changed data (STASIS_SABOTAGE)" {
	local what
	for what in unshare data; do
		rm -f "$BATS_TEST_TMPDIR/shmwin.log"
		export STASIS_SABOTAGE=$what
		start_prog shmwin
		unset STASIS_SABOTAGE
		touch "$GOFILE"
		wait_child "$PID" 30 || die_with_logs "$what: no verdict" || return 1
		grep -q '^FAIL' "$LOG" || die_with_logs "$what: sabotage not noticed" || return 1
	done
}
