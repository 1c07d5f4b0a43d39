#!/usr/bin/env bats
# Never lose a process: a dump that fails, wherever it fails, exits non-zero
# with a message and leaves the tree running exactly as it was (not stopped,
# not traced, same mappings, descriptors and signal state, no parasite), and
# the program still passes its own check afterwards. A restore that cannot
# be done fails cleanly and leaves nothing behind.

load helpers

MNT=

teardown() {
	cleanup_owned
	if [ -n "$MNT" ] && mountpoint -q "$MNT"; then
		umount "$MNT" || umount -l "$MNT" || true
	fi
}

# What must not change: /proc maps, fds, signal state (State is checked by
# assert_running_untraced: a sleeping program may be seen running).
snapshot() { # FILE
	proc_snapshot "$PID" | grep -v '^State:' >"$1"
}

# The dump failed: non-zero status, a message, and the program untouched.
check_failed_dump() { # STATUS OUTPUT-FILE SNAPSHOT-BEFORE
	local rc=$1 out=$2 before=$3
	[ "$rc" -ne 0 ] || die_with_logs "the dump succeeded (status 0) but it should have failed" || return 1
	[ "$rc" -lt 128 ] || die_with_logs "the dump died of a signal (status $rc)" || return 1
	grep -qiE 'error|fail|cannot|denied|not a directory|no space|broken pipe' "$out" ||
		die_with_logs "no error message from the failed dump: $(head -c 500 "$out")" || return 1
	assert_running_untraced "$PID" || die_with_logs "after the failed dump" || return 1
	snapshot "$BATS_TEST_TMPDIR/after"
	if ! diff -u "$before" "$BATS_TEST_TMPDIR/after" >"$BATS_TEST_TMPDIR/snapshot.diff"; then
		cat "$BATS_TEST_TMPDIR/snapshot.diff"
		die_with_logs "the failed dump changed the process (maps, fds or signals)"
		return 1
	fi
	go_and_check_original
}

# stasis dump of $PID with the given -D and options; output to dump.out.
try_dump() { # ARGS...
	local rc=0
	(cd "$BATS_TEST_TMPDIR" && exec stasis dump -t "$PID" "$@") \
		</dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 3>&- || rc=$?
	return $rc
}

@test "dump into a path whose parent is a regular file fails, the process runs on untouched" {
	start_prog heap
	snapshot "$BATS_TEST_TMPDIR/before"
	echo data >"$BATS_TEST_TMPDIR/file"
	local rc=0
	try_dump -D "$BATS_TEST_TMPDIR/file/img" || rc=$?
	check_failed_dump "$rc" "$BATS_TEST_TMPDIR/dump.out" "$BATS_TEST_TMPDIR/before"
}

@test "dump into an unwritable directory (/sys) fails, the process runs on untouched" {
	start_prog heap
	snapshot "$BATS_TEST_TMPDIR/before"
	local rc=0
	try_dump -D /sys || rc=$?
	check_failed_dump "$rc" "$BATS_TEST_TMPDIR/dump.out" "$BATS_TEST_TMPDIR/before"
}

# The output of the failed dump is one line, the first cause (PATTERN),
# not the cascade of the stages that saw it fail.
one_line_cause() { # OUTPUT-FILE PATTERN
	local n
	n=$(wc -l <"$1")
	[ "$n" -eq 1 ] || die_with_logs "$n lines from the failed dump, expected one: $(cat "$1")" || return 1
	grep -qE "$2" "$1" || die_with_logs "the line does not say the first cause ($2): $(cat "$1")"
}

@test "dump that runs out of space half-way (8 MiB tmpfs, 64 MiB process) fails, the process runs on untouched" {
	MNT=$BATS_TEST_TMPDIR/small
	mkdir -p "$MNT"
	mount -t tmpfs -o size=8m stasis-test "$MNT" || { MNT=; echo "FAILED: cannot mount a tmpfs"; return 1; }
	start_prog heap
	snapshot "$BATS_TEST_TMPDIR/before"
	mkdir "$MNT/img"
	local rc=0
	try_dump -D "$MNT/img" -v4 -o dump.log || rc=$?
	cp "$MNT/img/dump.log" "$BATS_TEST_TMPDIR/dump.log" 2>/dev/null || true
	[ "$rc" -eq 1 ] || die_with_logs "status $rc, expected 1"
	# what ran out, not collect's broken pipe after it
	one_line_cause "$BATS_TEST_TMPDIR/dump.out" '(^|\) )stasis-serialize: error: .*No space left on device'
	check_failed_dump "$rc" "$BATS_TEST_TMPDIR/dump.out" "$BATS_TEST_TMPDIR/before"
}

@test "dump whose image writer is killed half-way (file size limit, SIGXFSZ) fails, the process runs on untouched" {
	start_prog heap
	snapshot "$BATS_TEST_TMPDIR/before"
	mkdir -p "$IMG"
	local rc=0
	# 4 MiB (in 1 KiB blocks) per file: the page data does not fit.
	(ulimit -f 4096 && try_dump -D "$IMG" -v4 -o dump.log) || rc=$?
	[ "$rc" -eq 1 ] || die_with_logs "status $rc, expected 1"
	one_line_cause "$BATS_TEST_TMPDIR/dump.out" 'stasis: error: dump failed: stasis-serialize killed by signal 25$'
	check_failed_dump "$rc" "$BATS_TEST_TMPDIR/dump.out" "$BATS_TEST_TMPDIR/before"
}

@test "raw pipeline: stasis-freeze | stasis-collect into a reader that quits early fails, the process runs on untouched" {
	command -v stasis-freeze >/dev/null && command -v stasis-collect >/dev/null ||
		{ echo "FAILED: stasis-freeze or stasis-collect not in PATH"; return 1; }
	start_prog heap
	snapshot "$BATS_TEST_TMPDIR/before"
	local rc=0
	(
		set -o pipefail
		stasis-freeze -t "$PID" stasis-collect 2>"$BATS_TEST_TMPDIR/dump.out" 3>&- </dev/null |
			head -c 1000 >/dev/null
	) || rc=$?
	# The reader quit: the writer's failure (EPIPE or SIGPIPE) is the
	# pipeline's status. Whatever it is, it must not be success.
	[ "$rc" -ne 0 ] || die_with_logs "the pipeline succeeded though its reader quit after 1000 bytes"
	assert_running_untraced "$PID" || die_with_logs "after the failed pipeline"
	snapshot "$BATS_TEST_TMPDIR/after"
	if ! diff -u "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/after"; then
		die_with_logs "the failed pipeline changed the process (maps, fds or signals)"
	fi
	go_and_check_original
}

@test "dump of a PID that does not exist fails with a message" {
	# A PID that was just freed (our reaped child).
	true &
	local gone=$!
	wait "$gone" || true
	local rc=0
	(cd "$BATS_TEST_TMPDIR" && exec stasis dump -t "$gone" -D "$BATS_TEST_TMPDIR") \
		</dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 3>&- || rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || die_with_logs "stasis dump -t $gone (no such process) exited with status $rc"
	grep -qiE 'error|no such|not found|cannot' "$BATS_TEST_TMPDIR/dump.out" ||
		die_with_logs "no error message from dumping a missing PID"
}

@test "restore while the PID is in use fails cleanly, the running process is untouched" {
	start_prog heap
	run_dump -R
	snapshot "$BATS_TEST_TMPDIR/before"
	local rc=0
	(cd "$BATS_TEST_TMPDIR" && exec timeout -k 5 "$STASIS_TEST_WAIT" stasis restore -D "$IMG" -v4 -o restore.log) \
		</dev/null >"$BATS_TEST_TMPDIR/restore.out" 2>&1 3>&- || rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -lt 124 ] || die_with_logs "stasis restore with PID $PID in use exited with status $rc"
	grep -qiE 'error|in use|exists|busy|cannot' "$BATS_TEST_TMPDIR/restore.out" "$(find_log restore.log)" ||
		die_with_logs "no error message from the failed restore"
	check_failed_dump 1 "$BATS_TEST_TMPDIR/restore.out" "$BATS_TEST_TMPDIR/before"
}

@test "restore from an empty directory fails with a message" {
	mkdir -p "$IMG"
	local rc=0
	(cd "$BATS_TEST_TMPDIR" && exec timeout -k 5 "$STASIS_TEST_WAIT" stasis restore -D "$IMG") \
		</dev/null >"$BATS_TEST_TMPDIR/restore.out" 2>&1 3>&- || rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -lt 124 ] || die_with_logs "stasis restore of an empty directory exited with status $rc"
	[ -s "$BATS_TEST_TMPDIR/restore.out" ] || die_with_logs "no message from the failed restore"
}

@test "restore from images with truncated page data fails, and the task never runs" {
	start_prog heap
	dump_and_kill
	# The largest image is the page data: cut it in half.
	local big size
	big=$(ls -S "$IMG" | grep -v '\.log$' | head -n 1)
	size=$(stat -c %s "$IMG/$big")
	truncate -s $((size / 2)) "$IMG/$big"
	# Should the task run, it must not wait: it would check and print.
	touch "$GOFILE"
	local rc=0
	(cd "$BATS_TEST_TMPDIR" && exec timeout -k 5 "$STASIS_TEST_WAIT" stasis restore -D "$IMG" -v4 -o restore.log) \
		</dev/null >"$BATS_TEST_TMPDIR/restore.out" 2>&1 3>&- || rc=$?
	own_pid "$PID" "$PROG"
	[ "$rc" -ne 0 ] && [ "$rc" -lt 124 ] || die_with_logs "restore of images with $big cut from $size to $((size / 2)) bytes exited with status $rc"
	cmp -s "$LOG" "$LOG.at-dump" || die_with_logs "the restored program ran with the truncated images (its log changed)"
	wait_gone "$PID" 5 || die_with_logs "PID $PID is left behind by the failed restore"
}

# stasis-inject of the stream FILE must fail with a line saying WHAT, the
# dumped program never running.
inject_refuses() { # FILE WHAT
	local rc=0
	(cd "$BATS_TEST_TMPDIR" && exec timeout -k 5 "$STASIS_TEST_WAIT" stasis-inject -v4 -o inject-bad.log) \
		<"$1" >"$BATS_TEST_TMPDIR/inject.out" 2>&1 3>&- || rc=$?
	own_pid "$PID" "$PROG"
	[ "$rc" -ne 0 ] && [ "$rc" -lt 124 ] || die_with_logs "stasis-inject of $(stat -c %s "$1") bytes exited with status $rc" || return 1
	grep -q "$2" "$BATS_TEST_TMPDIR/inject.out" || die_with_logs "no '$2' from stasis-inject: $(cat "$BATS_TEST_TMPDIR/inject.out")" || return 1
	wait_gone "$PID" 5 || die_with_logs "PID $PID is left behind by the refused stream" || return 1
	cmp -s "$LOG" "$LOG.at-dump" || die_with_logs "the program ran from a refused stream (its log changed)"
}

@test "stasis-inject reads its stream ahead: given in odd pieces every page comes back intact; cut anywhere or followed by more data, it is refused and nothing runs" {
	start_prog heap
	dump_and_kill
	local s=$BATS_TEST_TMPDIR/s.stream bad=$BATS_TEST_TMPDIR/bad.stream size cut
	stasis-serialize pack -D "$IMG" >"$s"
	size=$(stat -c %s "$s")
	# should a refused stream run the program, it checks and prints at once
	touch "$GOFILE"
	for cut in 20 100 4096 $((size / 3)) $((size / 2 + 7)) $((size - 9)) $((size - 1)); do
		head -c "$cut" "$s" >"$bad"
		inject_refuses "$bad" "truncated checkpoint" || return 1
	done
	{ cat "$s"; printf x; } >"$bad"
	inject_refuses "$bad" "data after the trailer" || return 1
	# headers and frames split anywhere, the ring wrapped many times over
	rm -f "$GOFILE"
	(cd "$BATS_TEST_TMPDIR" && python3 "$BATS_TEST_DIRNAME/dribble.py" "$s" |
		exec stasis-inject -v4 -o inject.log) </dev/null >"$BATS_TEST_TMPDIR/restore.out" 2>&1 3>&- &
	RPID=$!
	own_pid "$RPID"
	check_restored || return 1
	grep -q "reading the stream ahead" "$BATS_TEST_TMPDIR/inject.log" ||
		die_with_logs "stasis-inject did not read ahead"
}

# (PID namespaces are carried: tests/pidns.bats, which refuses a nested one;
# network namespaces: tests/netns.bats)
@test "a task in a user namespace of its own is refused before anything is touched, and runs on untouched" {
	local flags what
	while read -r flags what; do
		LOG=$BATS_TEST_TMPDIR/heap$flags.log
		PROG=$(readlink -f "$TESTPROGS/heap")
		rm -f "$GOFILE"
		(
			close_extra_fds
			exec setsid unshare $flags "$PROG" "$GOFILE" </dev/null >"$LOG" 2>&1
		) &
		PID=$!
		own_pid "$PID"
		wait_ready "$LOG" "$PID" 10 || return 1
		own_pid "$PID" "$PROG"
		snapshot "$BATS_TEST_TMPDIR/before"
		local rc=0
		try_dump -D "$IMG" -v4 -o dump.log || rc=$?
		grep -q "task $PID is in another $what namespace, which stasis does not support" \
			"$BATS_TEST_TMPDIR/dump.out" ||
			die_with_logs "unshare $flags: no clear refusal" || return 1
		check_failed_dump "$rc" "$BATS_TEST_TMPDIR/dump.out" "$BATS_TEST_TMPDIR/before" || return 1
	done <<'EOT'
-U user
EOT
}
