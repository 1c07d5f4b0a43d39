#!/usr/bin/env bats
# Memory beyond the pages (issue 10): round trips of tests/progs/mmstate.c
# (madvise advice, mlock, mseal, MAP_NORESERVE, MAP_DROPPABLE, guard regions,
# membarrier registrations, in a parent and the child it forked), shmwin.c
# (shared and private windows on a shared memory object whose creating
# mapping is gone), memfdexec.c (a memfd executed after the restore),
# aio.c (aio rings with completions not reaped) and novdso.c (a task
# without a vDSO), each checker shown to notice damage.

load helpers

@test "mmstate: madvise advice, mlock, mseal, MAP_NORESERVE/MAP_DROPPABLE, guard regions, membarrier registrations of a parent and its child" {
	start_prog mmstate
	dump_and_kill_tree
	restore_and_check
	# the private pages of the mappings inject made went in by UFFDIO_COPY
	grep -E "task $PID: [1-9][0-9]* private pages copied in by userfaultfd" \
		"$(find_log restore.log)"
}

@test "checker self-test: mmstate notices lost advice, a lost lock, lost guards, other membarrier registrations, another seal (STASIS_SABOTAGE)" {
	local what
	for what in advice mlock guard membarrier seal; do
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

@test "memfdexec: a memfd mapped shared and privately can still be executed (no new writer)" {
	start_prog memfdexec
	dump_and_kill
	restore_and_check
}

@test "checker self-test: memfdexec notices a writer of the memfd (STASIS_SABOTAGE)" {
	STASIS_SABOTAGE=writer start_prog memfdexec
	touch "$GOFILE"
	run wait_child "$PID" 20
	grep -q '^FAIL: .*execveat' "$LOG" || die_with_logs "the writer was not noticed"
}

@test "aio: rings keep their addresses and their unreaped completions (one wrapped around); new requests complete" {
	start_prog aio "$BATS_TEST_TMPDIR"
	dump_and_kill
	restore_and_check
}

@test "checker self-test: aio notices a lost completion (STASIS_SABOTAGE)" {
	STASIS_SABOTAGE=reap start_prog aio "$BATS_TEST_TMPDIR"
	touch "$GOFILE"
	run wait_child "$PID" 20
	grep -q '^FAIL: ring A: 2 completions' "$LOG" || die_with_logs "the lost completion was not noticed"
}

@test "novdso: a task that unmapped its vDSO is dumped through another syscall instruction and restored without one" {
	start_prog novdso
	dump_and_kill
	restore_and_check
}

@test "checker self-test: novdso notices a vDSO (STASIS_SABOTAGE)" {
	STASIS_SABOTAGE=vdso start_prog novdso
	touch "$GOFILE"
	run wait_child "$PID" 20
	grep -q '^FAIL: \[vdso\]\|^FAIL: \[vvar' "$LOG" || die_with_logs "the vDSO was not noticed"
}

@test "collect --reader-copies sends pages by reference from buffers it reads into again; a slow reader gets the pages a copying dump gives" {
	LOG=$BATS_TEST_TMPDIR/bigmem.log
	start_cmd "$TESTPROGS/bigmem" 48 "$GOFILE"
	wait_ready "$LOG" "$PID" 10
	collect=$(command -v stasis-collect)
	cd "$BATS_TEST_TMPDIR"
	# the slow reader keeps the pipe full: a buffer read into again while
	# the pipe still held its pages would show in the pages written
	strace -f -qq -e trace=vmsplice -e signal=none -o ref.trace \
		stasis-freeze -t "$PID" "$collect" -R --reader-copies -v4 -o ref.log |
		python3 "$BATS_TEST_DIRNAME/slow_reader.py" | stasis-serialize unpack -D ref
	stasis-freeze -t "$PID" "$collect" -R | stasis-serialize unpack -D copy
	assert_running_untraced "$PID"
	pages=$(cd copy && ls pages-*.img)
	[ "$(stat -c %s "copy/$pages")" -ge $((48 << 20)) ]
	# bigmem's 48 MiB, where they lie in pages-N (the rest, the stack and
	# the thread's rseq area say which CPU it last ran on, may differ)
	at=$(stasis-serialize show "copy/pagemap-$PID.img" | python3 -c '
import json, sys
off = 0
for r in json.load(sys.stdin)["records"][1:]:
    if r["nr_pages"] == 12288:
        print(off)
    off += 0 if r.get("in_parent") else r["nr_pages"] * 4096')
	[ -n "$at" ]
	cmp <(tail -c +$((at + 1)) "ref/$pages" | head -c $((48 << 20))) \
		<(tail -c +$((at + 1)) "copy/$pages" | head -c $((48 << 20)))
	# and the 48 MiB went into the pipe by reference, through a ring of 8
	# MiB (but for the frames the small mappings before it share)
	[ "$(awk '/vmsplice\(/ { n += $NF } END { print n + 0 }' ref.trace)" -ge $((46 << 20)) ]
	go_and_check_original
}
