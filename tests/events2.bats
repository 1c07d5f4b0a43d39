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

@test "pidfd: of a child (in an epoll), of itself (shared with the child), of a thread, of a zombie; pidfd_getfd" {
	start_prog pidfd
	dump_and_kill_tree
	[ "$(stasis-serialize show -D "$IMG" | python3 -c '
import json, sys
n = 0
for im in json.load(sys.stdin):
    if im["image"] == "files":
        n += sum(r["type"] == "PIDFD" for r in im["records"])
print(n)')" = 4 ] || die_with_logs "the files image does not hold 4 pidfds"
	restore_and_check
}

@test "pidfd: the checker passes on the original and notices a pidfd naming another task" {
	start_prog pidfd
	go_and_check_original
	rm -f "$GOFILE" "$LOG"
	STASIS_SABOTAGE=pidfd start_prog pidfd
	touch "$GOFILE"
	run wait_child "$PID" 20
	grep -q '^FAIL: fdinfo of pidfd 1' "$LOG" || die_with_logs "sabotage not noticed"
}

@test "pidfd: of a task outside the tree is refused at dump; the process runs on" {
	start_prog pidfd outside
	local rc=0
	(cd "$BATS_TEST_TMPDIR" && exec stasis dump -t "$PID" -D "$IMG" -v4 -o dump.log) \
		</dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 3>&- || rc=$?
	[ "$rc" -ne 0 ] || die_with_logs "the dump succeeded"
	grep -q "fd 3 of task $PID: pidfd of task [0-9]*, which is outside the tree" \
		"$BATS_TEST_TMPDIR/dump.out" || die_with_logs "the error does not name the pidfd and the PID"
	assert_running_untraced "$PID"
	go_and_check_original
}

@test "pidfd: of tasks that exited and were reaped: one inode per task, exit status, ESRCH" {
	start_prog pidfd reaped
	dump_and_kill
	restore_and_check
}

@test "pidfd: the reaped checker passes on the original and notices a pidfd of the other task" {
	start_prog pidfd reaped
	go_and_check_original
	rm -f "$GOFILE" "$LOG"
	STASIS_SABOTAGE=pidfd-reaped start_prog pidfd reaped
	touch "$GOFILE"
	run wait_child "$PID" 20
	grep -q '^FAIL: .*reaped pidfd 1' "$LOG" || die_with_logs "sabotage not noticed"
}

@test "lease: read and write leases, one of two descriptions leased, leases being broken (--file-locks)" {
	start_prog lease "$BATS_TEST_TMPDIR"
	dump_and_kill --file-locks
	[ "$(stasis-serialize show -D "$IMG" | python3 -c '
import json, sys
n = 0
for im in json.load(sys.stdin):
    if im["image"] == "file-locks":
        n += sum(r["kind"] == "LOCK_LEASE" for r in im["records"])
print(n)')" = 5 ] || die_with_logs "the file-locks image does not hold 5 leases"
	restore_and_check --file-locks
}

@test "lease: the checker passes on the original and notices a lost lease" {
	start_prog lease "$BATS_TEST_TMPDIR"
	go_and_check_original
	rm -f "$GOFILE" "$LOG" "$BATS_TEST_TMPDIR"/{rd,wr,two,brk-rd,brk-wr}
	STASIS_SABOTAGE=lease start_prog lease "$BATS_TEST_TMPDIR"
	touch "$GOFILE"
	run wait_child "$PID" 20
	grep -q '^FAIL: F_GETLEASE of fd 3 is 2, was 0' "$LOG" || die_with_logs "sabotage not noticed"
}

@test "lease: without --file-locks the dump refuses, naming it; the process runs on" {
	start_prog lease "$BATS_TEST_TMPDIR"
	local rc=0
	(cd "$BATS_TEST_TMPDIR" && exec stasis dump -t "$PID" -D "$IMG" -v4 -o dump.log) \
		</dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 3>&- || rc=$?
	[ "$rc" -ne 0 ] || die_with_logs "the dump succeeded"
	grep -q "task $PID holds a LEASE lock on fd [0-9]*; dump with --file-locks" \
		"$BATS_TEST_TMPDIR/dump.out" || die_with_logs "the error does not name the lease and the PID"
	assert_running_untraced "$PID"
	go_and_check_original
}

@test "fanotify: groups with their init flags, inode, mount and filesystem marks, ignored masks" {
	start_prog fanotify "$BATS_TEST_TMPDIR"
	dump_and_kill
	[ "$(stasis-serialize show -D "$IMG" | python3 -c '
import json, sys
n = 0
for im in json.load(sys.stdin):
    if im["image"] == "files":
        n += sum(len(r.get("fanotify", {}).get("marks", [])) for r in im["records"])
print(n)')" = 4 ] || die_with_logs "the files image does not hold 4 fanotify marks"
	restore_and_check
}

@test "fanotify: the checker passes on the original and notices a lost mark" {
	start_prog fanotify "$BATS_TEST_TMPDIR"
	go_and_check_original
	rm -f "$GOFILE" "$LOG"
	STASIS_SABOTAGE=fanotify start_prog fanotify "$BATS_TEST_TMPDIR"
	touch "$GOFILE"
	run wait_child "$PID" 20
	grep -q "^FAIL: group A's fdinfo is" "$LOG" || die_with_logs "sabotage not noticed"
}
