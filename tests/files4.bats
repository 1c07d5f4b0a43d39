#!/usr/bin/env bats
# Pipes, FIFOs, deleted files, file validation and file locks (issue 4):
# round trips of tests/progs/{pipes,ghost,locks}.c and of a real shell
# pipeline, and the dumps that must be refused.

load helpers

# The JSON of one image of the checkpoint.
show_image() { # NAME
	stasis-serialize show "$IMG/$1.img"
}

# stasis dump that must fail: non-zero status, MESSAGE (a regex) in its
# output, and the program running on untouched and untraced.
dump_must_fail() { # MESSAGE [ARGS...]
	local msg=$1 rc=0
	shift
	(cd "$BATS_TEST_TMPDIR" && exec stasis dump -t "$PID" -D "$IMG" -v4 -o dump.log "$@") \
		</dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 3>&- || rc=$?
	[ "$rc" -ne 0 ] || die_with_logs "the dump succeeded but it should have failed" || return 1
	grep -qE -- "$msg" "$BATS_TEST_TMPDIR/dump.out" ||
		die_with_logs "the failed dump does not say '$msg'" || return 1
	grep -qE "(task|of) $PID\b|\b$PID:" "$BATS_TEST_TMPDIR/dump.out" ||
		die_with_logs "the failed dump does not name PID $PID" || return 1
	assert_running_untraced "$PID" || die_with_logs "after the failed dump" || return 1
}

@test "pipes: queued data between parent and child, within one task, F_SETPIPE_SZ, O_NONBLOCK, a FIFO" {
	start_prog pipes "$BATS_TEST_TMPDIR"
	dump_and_kill
	# one record per pipe object carries the data, the other end shares its id
	show_image files | grep -q '"PIPE"'
	show_image files | grep -q '"FIFO"'
	[ -s "$IMG/pipes-data.img" ] || die_with_logs "no pipes-data image"
	wait_ids_free 30
	restore_and_check
}

@test "pipes: the checker notices data lost from a pipe (self-test)" {
	# read at start-up: the restored program keeps its environment
	STASIS_SABOTAGE=pipes start_prog pipes "$BATS_TEST_TMPDIR"
	dump_and_kill
	wait_ids_free 30
	start_restore
	wait_restored
	touch "$GOFILE"
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "the restored program did not finish"
	[ "$STATUS" -ne 0 ] || die_with_logs "the sabotaged program passed"
	grep -q '^FAIL: .*pipe C' "$LOG" || die_with_logs "no FAIL about pipe C"
}

@test "shell pipeline: seq | gzip -1 | wc -c, dumped mid-run, finishes with the uninterrupted output" {
	local expected out=$BATS_TEST_TMPDIR/pipeline.out i
	expected=$(seq 1 300000000 | gzip -1 | wc -c)
	LOG=$out
	start_cmd bash -c 'seq 1 300000000 | gzip -1 | wc -c'
	# the three children are running: bash waits for them
	for i in $(seq 100); do
		[ "$(pgrep -c -P "$PID")" -eq 3 ] && break
		sleep 0.1
	done
	[ "$(pgrep -c -P "$PID")" -eq 3 ] || die_with_logs "bash $PID does not have its three children"
	sleep 4
	[ ! -s "$out" ] || die_with_logs "the pipeline finished before the dump"
	dump_and_kill
	show_image files | grep -q '"PIPE"' || die_with_logs "no pipe in the checkpoint"
	wait_ids_free 30
	start_restore
	wait_restored
	wait_child "$RPID" 300 || die_with_logs "the restored pipeline did not finish within 300 s"
	[ "$STATUS" -eq 0 ] || die_with_logs "the restored pipeline exited with $STATUS"
	[ "$(cat "$out")" = "$expected" ] ||
		die_with_logs "the restored pipeline printed '$(cat "$out")', expected '$expected'"
}

@test "deleted files: open (two descriptions, offsets, holes, mode) and mapped (shared, private), restored invisibly" {
	start_prog ghost "$BATS_TEST_TMPDIR" basic
	dump_and_kill
	show_image ghosts | grep -q '"path"'
	[ -z "$(ls -A "$BATS_TEST_TMPDIR/ghost")" ] || die_with_logs "the dump left files in the directory"
	restore_and_check
	[ -z "$(ls -A "$BATS_TEST_TMPDIR/ghost")" ] || die_with_logs "the restore left files in the directory"
}

@test "deleted files: larger than --ghost-limit (default 1M) is refused; --ghost-limit 3M carries it" {
	start_prog ghost "$BATS_TEST_TMPDIR" big
	dump_must_fail 'ghost-limit'
	dump_must_fail 'ghost-limit' --ghost-limit 2047K
	dump_and_kill --ghost-limit 3M
	restore_and_check
}

@test "--ghost-limit takes sizes with K, M, G and refuses anything else" {
	start_prog ghost "$BATS_TEST_TMPDIR" basic
	local rc=0
	(cd "$BATS_TEST_TMPDIR" && exec stasis dump -t "$PID" -D "$IMG" --ghost-limit 12X) \
		</dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 || rc=$?
	[ "$rc" -ne 0 ] && grep -q 'invalid --ghost-limit' "$BATS_TEST_TMPDIR/dump.out" ||
		die_with_logs "--ghost-limit 12X was not refused"
	assert_running_untraced "$PID"
	dump_and_kill --ghost-limit 1G
	restore_and_check
}

@test "--link-remap: a file unlinked but linked elsewhere needs it; restored through the remap, which goes" {
	start_prog ghost "$BATS_TEST_TMPDIR" link
	dump_must_fail 'link-remap'
	[ "$(ls "$BATS_TEST_TMPDIR/ghost")" = other ] || die_with_logs "the failed dump left a link behind"
	dump_and_kill --link-remap
	ls "$BATS_TEST_TMPDIR/ghost" | grep -q '^link_remap\.' ||
		die_with_logs "no link remap next to the file after the dump"
	show_image ghosts | grep -q '"link_remap"'
	restore_and_check
}

@test "deleted executable: a program whose binary was removed runs on from the checkpoint's copy" {
	local d=$BATS_TEST_TMPDIR
	mkdir -p "$d/ghost"
	cp "$TESTPROGS/ghost" "$d/ghost/exe"
	PROG="$d/ghost/exe (deleted)" # as /proc/PID/exe reads once it removed itself
	LOG=$d/ghost-exe.log
	(
		close_extra_fds
		exec setsid "$d/ghost/exe" "$GOFILE" "$d" exe </dev/null >"$LOG" 2>&1
	) &
	PID=$!
	own_pid "$PID" "$PROG"
	wait_ready "$LOG" "$PID" 10
	[ "$(readlink "/proc/$PID/exe")" = "$PROG" ] || die_with_logs "the program did not remove its binary"
	dump_and_kill
	show_image ghosts | grep -q '/ghost/exe"'
	restore_and_check
}

@test "--file-validation: filesize refuses a file whose size changed; buildid is refused" {
	start_prog files "$BATS_TEST_TMPDIR"
	dump_and_kill
	local rc=0
	(cd "$BATS_TEST_TMPDIR" && exec stasis restore -D "$IMG" --file-validation buildid) \
		</dev/null >"$BATS_TEST_TMPDIR/restore.out" 2>&1 || rc=$?
	[ "$rc" -ne 0 ] && grep -q 'buildid is not supported' "$BATS_TEST_TMPDIR/restore.out" ||
		die_with_logs "--file-validation buildid was not refused"
	alive "$PID" && die_with_logs "PID $PID exists after a refused restore"
	echo more >>"$BATS_TEST_TMPDIR/files-data.dat"
	rc=0
	(cd "$BATS_TEST_TMPDIR" && exec stasis restore -D "$IMG" --file-validation filesize) \
		</dev/null >"$BATS_TEST_TMPDIR/restore.out" 2>&1 || rc=$?
	[ "$rc" -ne 0 ] && grep -q 'files-data.dat changed size' "$BATS_TEST_TMPDIR/restore.out" ||
		die_with_logs "a file that grew was not refused"
	alive "$PID" && die_with_logs "PID $PID exists after a failed restore"
	truncate -s 8192 "$BATS_TEST_TMPDIR/files-data.dat"
	restore_and_check --file-validation filesize
}

@test "file locks: a tree holding locks is not dumped without --file-locks" {
	start_prog locks "$BATS_TEST_TMPDIR"
	dump_must_fail 'file-locks'
	"$TESTPROGS/locks" probe flock "$BATS_TEST_TMPDIR/lock-flock" 0 0 r ||
		die_with_logs "the flock lock is gone after the failed dump"
	go_and_check_original
}

@test "file locks: flock, POSIX and OFD locks are held again and block a process outside the tree" {
	local d=$BATS_TEST_TMPDIR probe=$TESTPROGS/locks
	start_prog locks "$d"
	dump_and_kill --file-locks
	show_image file-locks | grep -q LOCK_OFD
	# with the tree gone, nothing holds them
	"$probe" probe posix "$d/lock-posix" 150 1 w >/dev/null && die_with_logs "a POSIX lock survived the kill"
	wait_ids_free 30
	start_restore --file-locks
	wait_restored
	flock -n "$d/lock-flock" true && die_with_logs "flock -n took lock-flock from outside"
	"$probe" probe flock "$d/lock-shared" 0 0 w || die_with_logs "LOCK_EX on lock-shared was granted"
	"$probe" probe flock "$d/lock-shared" 0 0 r && die_with_logs "the shared flock lock is exclusive"
	"$probe" probe posix "$d/lock-posix" 150 1 w || die_with_logs "the POSIX write lock is not held"
	"$probe" probe posix "$d/lock-posix" 400 1 r && die_with_logs "the POSIX read lock is exclusive"
	"$probe" probe posix "$d/lock-posix" 400 1 w || die_with_logs "the POSIX read lock is not held"
	"$probe" probe ofd "$d/lock-ofd" 10 1 r || die_with_logs "the OFD lock is not held"
	"$probe" probe ofd "$d/lock-ofd" 60 1 w && die_with_logs "the OFD lock grew"
	"$probe" probe posix "$d/lock-child" 0 0 r || die_with_logs "the child's POSIX lock is not held"
	touch "$GOFILE"
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "the restored program did not finish"
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis restore exited with $STATUS"
	check_pass_log
}
