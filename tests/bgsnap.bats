#!/usr/bin/env bats
# Background snapshot (docs/memory.md): stasis dump -R keeps the tree frozen
# only while its state other than memory is read; its private anonymous
# memory is write-protected with a synchronous userfaultfd, and copied while
# the tree runs, a write waiting only for the copy of its page.
#
# tests/progs/bgwriter.c: writer threads stamp page[c % N] with c, c++,
# without pause; after the restore every page must hold the value its
# restored counter gives, which only the memory of the freeze does.

load helpers

bats_require_minimum_version 1.5.0

PAGES=2048 # per writer thread: 8 MiB

# A field of the stats-dump record of $IMG.
stat_field() { # NAME
	stasis-serialize show -i "$IMG/stats-dump.img" |
		awk -F': ' -v f="\"$1\"" '$1 ~ f { gsub(/[^0-9a-z]/, "", $2); print $2; exit }'
}

# The program left running by the dump is killed, its IDs become free.
kill_original() {
	kill -KILL "$PID"
	wait_child "$PID" 10 || die_with_logs "PID $PID did not die" || return 1
	wait_ids_free 30 || die_with_logs "the IDs of the checkpoint did not become free"
}

# No mapping of PID is registered with a userfaultfd any more.
assert_unprotected() { # PID
	if grep -q '^VmFlags:.* uw' "/proc/$1/smaps"; then
		echo "FAILED: PID $1 still has write-protected mappings:"
		grep -B20 '^VmFlags:.* uw' "/proc/$1/smaps" | grep -E '^[0-9a-f]+-' | head -n 5
		return 1
	fi
}

# dump -R with a background snapshot, the tree written to all along; then
# kill it, restore, check every page.
bg_round_trip() { # [DUMP ARGS...]
	run_dump -R "$@" || return 1
	assert_running_untraced "$PID" || return 1
	assert_unprotected "$PID" || return 1
	[ "$(stat_field background_snapshot)" = true ] ||
		die_with_logs "the dump did not copy the memory in the background" || return 1
	kill_original || return 1
	restore_and_check
}

@test "dump -R of 4 writer threads: frozen only while the state is read, the restored memory is the memory of the freeze, page for page" {
	start_prog bgwriter 4 "$PAGES"
	bg_round_trip --display-stats
	# the writers hit pages not copied yet, and waited for their copy
	[ "$(stat_field pages_copied_on_write)" -gt 0 ]
	[ -n "$(stat_field background_copy_time)" ]
	grep -q '^Memory pages copied on write: [1-9]' "$BATS_TEST_TMPDIR/dump.out"
	grep -q '^Background copy time: ' "$BATS_TEST_TMPDIR/dump.out"
	grep -q 'background-snapshot' "$IMG/dump.log"
}

@test "dump -R while a thread forks children that write to each region: the children's writes stay theirs, the parent's still wait for the copy" {
	start_prog bgwriter 3 "$PAGES" fork
	bg_round_trip
}

@test "dump -R while a thread keeps moving a region with mremap: the moved pages are copied from their new place" {
	start_prog bgwriter 2 "$PAGES" remap
	bg_round_trip
}

@test "dump -R while a thread keeps dropping a region with MADV_DONTNEED and filling it again: the dropped pages are copied before they go" {
	start_prog bgwriter 2 "$PAGES" dontneed
	# A drop that wins the race against the copy fails the dump (the error
	# says to dump again); the tree runs on, so do as it says, twice more.
	bg_round_trip || bg_round_trip || bg_round_trip
}

@test "dump -R while a thread keeps unmapping a region: exact, or a clear failure with the tree running untouched" {
	start_prog bgwriter 2 "$PAGES" unmap
	local rc=0
	(cd "$BATS_TEST_TMPDIR" && exec stasis dump -R -t "$PID" -D "$IMG" -v4 -o dump.log) \
		</dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 3>&- || rc=$?
	assert_running_untraced "$PID"
	assert_unprotected "$PID"
	if [ $rc -ne 0 ]; then
		# pages unmapped before they were copied cannot be had any more
		grep -q "unmapped memory .* before it was copied" "$BATS_TEST_TMPDIR/dump.out" ||
			die_with_logs "the failed dump does not say why"
		go_and_check_original
		return
	fi
	kill_original
	restore_and_check
}

@test "a program with a userfaultfd of its own is refused with one clear line, left running untouched" {
	start_prog bgwriter 2 "$PAGES" uffd
	run ! stasis dump -R -t "$PID" -D "$IMG"
	[[ "$output" == *"anon_inode:[userfaultfd] is not supported"* ]]
	assert_running_untraced "$PID"
	# its own registration is there, ours is gone
	grep -q '^VmFlags:.* um' "/proc/$PID/smaps"
	assert_unprotected "$PID"
	go_and_check_original
}

@test "--no-background-snapshot and --track-mem copy the memory frozen" {
	start_prog bgwriter 2 "$PAGES"
	run_dump -R --no-background-snapshot
	[ -z "$(stat_field background_snapshot)" ]
	run_dump -R --track-mem
	[ -z "$(stat_field background_snapshot)" ]
	assert_running_untraced "$PID"
	kill_original
	restore_and_check
}

@test "a background copy that fails leaves the tree running, unprotected, and its memory intact" {
	start_prog bgwriter 3 "$PAGES"
	local rc=0
	(cd "$BATS_TEST_TMPDIR" && exec env STASIS_FAULT=collect-pages \
		stasis dump -R -t "$PID" -D "$IMG" -v4 -o dump.log) \
		</dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 3>&- || rc=$?
	[ $rc -ne 0 ]
	grep -q "the tree was left running" "$BATS_TEST_TMPDIR/dump.out"
	assert_running_untraced "$PID"
	assert_unprotected "$PID"
	# the writers still run, and their memory is still consistent
	go_and_check_original
}

@test "checker: bgwriter notices a page written after the counter, a stale page, a moved and a dropped region" {
	local what
	for what in page stale moved dropped; do
		rm -f "$GOFILE" "$BATS_TEST_TMPDIR/bgwriter.log"
		STASIS_SABOTAGE=$what start_prog bgwriter 2 64 remap dontneed
		touch "$GOFILE"
		wait_child "$PID" 20
		[ "$STATUS" -eq 1 ] || die_with_logs "sabotage $what: status $STATUS"
		grep -q '^FAIL' "$LOG" || die_with_logs "sabotage $what: no FAIL"
	done
}
