#!/usr/bin/env bats
# Open file descriptions shared between descriptors and processes.

load helpers

@test "sharedfd: dup'ed and inherited descriptors keep one shared offset; O_DIRECT and O_NONBLOCK kept" {
	start_prog sharedfd "$BATS_TEST_TMPDIR"
	dump_and_kill_tree
	restore_and_check
}

@test "sharedfd: the checker notices a moved offset" {
	STASIS_SABOTAGE=offset start_prog sharedfd "$BATS_TEST_TMPDIR"
	touch "$GOFILE"
	run wait_child "$PID" 20
	grep -q '^FAIL: .*fd 6' "$LOG"
}
