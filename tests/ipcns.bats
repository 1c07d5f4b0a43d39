#!/usr/bin/env bats
# IPC namespaces (docs/ipc.md): round trips of tests/progs/ipcns.c, which
# unshares an IPC namespace and fills it with SysV segments (attached
# read-write in two pieces, read-only, removed while attached, attached by
# nobody), a semaphore set, message queues and changed sysctls, with ids
# the namespace would not give by itself; its child shares an attach. What
# is refused: SysV memory attached in stasis's own IPC namespace, a
# segment nobody attaches under kernel.shm_rmid_forced, POSIX message
# queues.

load helpers

@test "ipcns: segments, semaphores, queues with their messages and the sysctls of an IPC namespace come back with their ids; the attaches of a parent and its child too" {
	start_prog ipcns
	dump_and_kill_tree
	[ -s "$IMG/ipc-shm.img" ] || die_with_logs "no ipc-shm image" || return 1
	[ -s "$IMG/ipc-msg.img" ] || die_with_logs "no ipc-msg image" || return 1
	grep -q "IPC namespace 1: 4 segments, 1 semaphore sets, 2 message queues" "$(find_log dump.log)" ||
		die_with_logs "the dump log does not count the namespace's objects" || return 1
	restore_and_check
	grep -q "IPC namespace 1: 4 segments, 1 semaphore sets, 2 message queues made" \
		"$(find_log restore.log)" || die_with_logs "the restore log does not count them"
}

@test "ipcns: a checkpoint restored twice, each restore in an IPC namespace of its own" {
	start_prog ipcns
	dump_and_kill_tree
	restore_and_check
	wait_ids_free 30 || die_with_logs "the restored tree's IDs did not become free" || return 1
	rm -f "$GOFILE"
	cp "$LOG.at-dump" "$LOG"
	restore_and_check
}

@test "ipcns: dump -R leaves every object, message and attach in place (MSG_COPY), and the program passes" {
	start_prog ipcns
	run_dump -R
	assert_running_untraced "$PID" || die_with_logs "after dump -R" || return 1
	go_and_check_original
}

@test "ipcns: SysV memory attached in stasis's own IPC namespace is refused, the program runs on" {
	start_prog ipcns hostns
	refused_then_pass "SysV IPC is carried only in an IPC namespace of the tree's own"
}

@test "ipcns: a segment nobody attaches under kernel.shm_rmid_forced is refused, the program runs on" {
	start_prog ipcns forced
	refused_then_pass "kernel.shm_rmid_forced is 1: its restore would destroy it"
}

@test "ipcns: an IPC namespace with a POSIX message queue is refused, the program runs on" {
	start_prog ipcns mqueue
	refused_then_pass "POSIX message queue (mq_open), which stasis does not carry"
}

@test "checker self-test: ipcns notices a changed segment, semaphore, queue, sysctl and a lost attach (STASIS_SABOTAGE)" {
	local what
	for what in ipc-shm ipc-sem ipc-msg ipc-sysctl ipc-attach; do
		rm -f "$BATS_TEST_TMPDIR/ipcns.log"
		export STASIS_SABOTAGE=$what
		start_prog ipcns
		unset STASIS_SABOTAGE
		touch "$GOFILE"
		wait_child "$PID" 30 || die_with_logs "$what: no verdict" || return 1
		grep -q '^FAIL' "$LOG" || die_with_logs "$what: sabotage not noticed" || return 1
	done
}
