#!/usr/bin/env bats
# Round trips of the C test programs (tests/progs): start, stasis dump (the
# program is killed), stasis restore (same PID), then the program checks that
# everything it set up is still exactly as it was and reports PASS or FAIL.
# See the top of each tests/progs/*.c for what it checks.

load helpers

@test "heap: 64 MiB malloc, brk heap, program break, sparse anonymous memory" {
	start_prog heap
	dump_and_kill
	restore_and_check
}

@test "mappings: private and shared file mappings, PROT_READ, PROT_NONE, shared anonymous, shared read-only that may become writable" {
	start_prog mappings "$BATS_TEST_TMPDIR"
	dump_and_kill
	restore_and_check
}

@test "files: fd numbers, offsets, O_APPEND, FD_CLOEXEC, /dev/null" {
	start_prog files "$BATS_TEST_TMPDIR"
	dump_and_kill
	restore_and_check
}

@test "sigtrap: a SIGTRAP handler, and SIGTRAP blocked and pending for the process and a thread, survive the tracer's own traps" {
	start_prog sigtrap
	dump_and_kill
	restore_and_check
}

@test "sigtrap: a dump -R leaves the pending SIGTRAPs and the handler as they were" {
	start_prog sigtrap
	run_dump -R
	assert_running_untraced "$PID"
	go_and_check_original
}

@test "signals: handlers, blocked and pending (queued, thread-private) signals" {
	start_prog signals
	dump_and_kill
	restore_and_check
}

@test "fpu: vector (ymm/zmm, opmask), x87, MXCSR and general registers" {
	start_prog fpu
	dump_and_kill
	restore_and_check
}

@test "sleeper: dumped inside nanosleep, resumes with a proper return" {
	start_prog sleeper nanosleep
	# Let it get well into a 2 s nanosleep.
	sleep 0.5
	dump_and_kill
	restore_and_check
}

@test "sleeper: dumped inside pause() with a 100 ms interval timer" {
	start_prog sleeper pause
	dump_and_kill
	NUDGE_SIGNAL=ALRM restore_and_check
}

@test "sleeper: a periodic timer whose SIGALRM waits blocked (not re-armed yet) keeps its period" {
	start_prog sleeper blocked
	dump_and_kill
	restore_and_check
}

@test "dump -R (--leave-running): the original runs on, untraced, and passes" {
	start_prog heap
	run_dump -R
	assert_running_untraced "$PID"
	go_and_check_original
}

@test "dump --leave-running: the checkpoint restores once the original has gone" {
	start_prog heap
	run_dump --leave-running
	assert_running_untraced "$PID"
	cp "$LOG" "$LOG.at-dump"
	go_and_check_original
	# The original has passed, exited and been reaped: its PID is free.
	# Give the restored copy the log as it was at the dump.
	mv "$LOG" "$LOG.original"
	cp "$LOG.at-dump" "$LOG"
	rm -f "$GOFILE"
	restore_and_check
}

@test "dump -s (--leave-stopped): the original is left stopped, untraced" {
	start_prog heap
	run_dump -s
	local st
	st=$(proc_state "$PID")
	[ "$st" = T ] || die_with_logs "after dump -s PID $PID has State '$st', expected T (stopped)"
	[ "$(proc_status "$PID" TracerPid)" = 0 ] || die_with_logs "after dump -s PID $PID is still traced"
	kill -CONT "$PID"
	go_and_check_original
}

@test "restore -d --pidfile: same PID, session, process group, command line and executable" {
	start_prog sleeper
	local sid pgid cmdline
	sid=$(proc_stat_field "$PID" 6)
	pgid=$(proc_stat_field "$PID" 5)
	cmdline=$(tr '\0' ' ' <"/proc/$PID/cmdline")
	dump_and_kill

	local rc=0 pidfile=$BATS_TEST_TMPDIR/restored.pid
	(cd "$BATS_TEST_TMPDIR" && exec stasis restore -D "$IMG" -d --pidfile "$pidfile" -v4 -o restore.log) \
		</dev/null >"$BATS_TEST_TMPDIR/restore.out" 2>&1 3>&- || rc=$?
	own_pid "$PID" "$PROG"
	[ $rc -eq 0 ] || die_with_logs "stasis restore -d exited with status $rc"
	alive "$PID" || die_with_logs "PID $PID is not running after stasis restore -d returned"
	[ "$(cat "$pidfile" 2>/dev/null)" = "$PID" ] || die_with_logs "--pidfile holds '$(cat "$pidfile" 2>/dev/null)', expected $PID"
	assert_running_untraced "$PID" || die_with_logs "restored PID $PID"
	[ "$(readlink "/proc/$PID/exe")" = "$PROG" ] || die_with_logs "restored /proc/$PID/exe is $(readlink "/proc/$PID/exe"), expected $PROG"
	[ "$(tr '\0' ' ' <"/proc/$PID/cmdline")" = "$cmdline" ] || die_with_logs "restored command line '$(tr '\0' ' ' <"/proc/$PID/cmdline")', expected '$cmdline'"
	[ "$(proc_stat_field "$PID" 6)" = "$sid" ] || die_with_logs "restored session $(proc_stat_field "$PID" 6), expected $sid"
	[ "$(proc_stat_field "$PID" 5)" = "$pgid" ] || die_with_logs "restored process group $(proc_stat_field "$PID" 5), expected $pgid"

	# Not our child any more: wait until it has gone, then read its verdict.
	touch "$GOFILE"
	wait_gone "$PID" 30 || die_with_logs "restored PID $PID still running 30 s after GO"
	check_pass_log
}

@test "a task stopped by SIGSTOP at the dump is stopped after the restore, and carries on after SIGCONT" {
	start_prog sleeper nanosleep
	kill -STOP "$PID"
	for _ in $(seq 50); do [ "$(proc_state "$PID" | cut -c1)" = T ] && break; sleep 0.1; done
	dump_and_kill
	start_restore
	wait_restored
	local st=
	for _ in $(seq 50); do
		st=$(proc_state "$PID" | cut -c1)
		[ "$st" = T ] && break
		sleep 0.1
	done
	[ "$st" = T ] || die_with_logs "restored task is in state $st, not stopped" || return 1
	[ "$(proc_status "$PID" TracerPid)" = 0 ]
	touch "$GOFILE"
	sleep 0.5
	[ "$(proc_state "$PID" | cut -c1)" = T ]
	kill -CONT "$PID"
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "the task did not finish after SIGCONT" || return 1
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis restore exited with $STATUS" || return 1
	check_pass_log
}
