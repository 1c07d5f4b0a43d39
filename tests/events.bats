#!/usr/bin/env bats
# Event objects and memfd: eventfd, epoll, signalfd, timerfd, inotify and
# memfd (open, sealed, mapped by a parent and its child) round-trip and
# behave the same afterwards; see tests/progs/events.c and memfd.c for what
# each program checks.

load helpers

# The descriptor types the checkpoint in $IMG holds, one per line.
image_fd_types() {
	stasis-serialize show -D "$IMG" | python3 -c '
import json, sys
for im in json.load(sys.stdin):
    if im["image"] == "files":
        for r in im["records"]:
            print(r["type"])'
}

@test "eventfd: counters (64-bit, semaphore), O_NONBLOCK, a shared dup" {
	start_prog events eventfd
	dump_and_kill
	image_fd_types | grep -qx EVENTFD || die_with_logs "no EVENTFD in the files image"
	restore_and_check
}

@test "epoll: registrations with their events and data, edge-triggered, one-shot, exclusive, nested, DEL" {
	start_prog events epoll
	dump_and_kill
	image_fd_types | grep -qx EPOLL || die_with_logs "no EPOLL in the files image"
	restore_and_check
}

@test "epoll: registrations made through numbers closed or reused since are kept" {
	start_prog events epoll
	dump_and_kill
	# two registrations name their file by another descriptor
	[ "$(stasis-serialize show -D "$IMG" | python3 -c '
import json, sys
n = 0
for im in json.load(sys.stdin):
    if im["image"] == "files":
        for r in im["records"]:
            for t in r.get("epoll", {}).get("tfds", []):
                n += "src_fd" in t or "srcFd" in t
print(n)')" = 2 ] || die_with_logs "the image does not hold 2 registrations by another descriptor"
	restore_and_check
}

@test "signalfd: mask, O_NONBLOCK, a signal queued before the dump and signals sent after" {
	start_prog events signalfd
	dump_and_kill
	image_fd_types | grep -qx SIGNALFD || die_with_logs "no SIGNALFD in the files image"
	restore_and_check
}

@test "timerfd: time left and interval, TFD_TIMER_ABSTIME on CLOCK_REALTIME, unread expirations" {
	start_prog events timerfd
	# dumped about 1.5 s into its 3 s; restored 1 s later: the relative
	# timer must not count that second, the absolute one must
	sleep 1.5
	dump_and_kill
	image_fd_types | grep -qx TIMERFD || die_with_logs "no TIMERFD in the files image"
	sleep 1
	restore_and_check
}

@test "inotify: watches by path keep their wds (with a gap), new events are reported" {
	start_prog events inotify "$BATS_TEST_TMPDIR"
	dump_and_kill
	image_fd_types | grep -qx INOTIFY || die_with_logs "no INOTIFY in the files image"
	restore_and_check
	if grep -q 'is wd .* now, was' "$(find_log restore.log)"; then
		die_with_logs "the restore reports changed watch descriptors"
	fi
}

@test "inotify on an unlinked file: the watch travels with the deleted file and reports a write to it" {
	start_prog events inotify-deleted "$BATS_TEST_TMPDIR"
	dump_and_kill
	stasis-serialize show -D "$IMG" | python3 -c '
import json, sys
ok = any(w.get("ghost") for im in json.load(sys.stdin) for r in im.get("records", [])
         for w in (r.get("inotify") or {}).get("watches", []))
sys.exit(0 if ok else 1)' || die_with_logs "the watch is not recorded on a ghost file"
	restore_and_check
}

@test "memfd: contents, offset, names, mode, seals; shared mappings across parent and child" {
	start_prog memfd
	dump_and_kill
	image_fd_types | grep -qx MEMFD || die_with_logs "no MEMFD in the files image"
	# six objects, the 64 MiB sparse one by its one written page
	[ "$(stasis-serialize show -D "$IMG" | python3 -c '
import json, sys
for im in json.load(sys.stdin):
    if im["image"] == "memfds":
        print(len(im["records"]))')" = 6 ] || die_with_logs "the memfds image does not hold 6 objects"
	local size
	size=$(du -sk "$IMG" | cut -f1)
	[ "$size" -lt 8192 ] || die_with_logs "the checkpoint is $size KiB: the sparse memfd was copied whole"
	wait_ids_free 30
	restore_and_check
}

@test "epoll: the checker passes on the original and notices a lost registration" {
	start_prog events epoll
	go_and_check_original
	rm -f "$GOFILE" "$LOG"
	STASIS_SABOTAGE=epoll start_prog events epoll
	touch "$GOFILE"
	run wait_child "$PID" 20
	grep -q '^FAIL: .*expected 5' "$LOG" || die_with_logs "sabotage not noticed"
}

@test "inotify: a watch whose name was unlinked is found by its handle under its other name (--force-irmap)" {
	start_prog events inotify-relinked "$BATS_TEST_TMPDIR"
	dump_and_kill --force-irmap --irmap-scan-path "$BATS_TEST_TMPDIR"
	stasis-serialize show -D "$IMG" | grep -q "\"$BATS_TEST_TMPDIR/second\"" ||
		die_with_logs "the watch is not recorded by its other name"
	restore_and_check
}

@test "inotify: the relinked checker passes on the original and notices a lost watch" {
	start_prog events inotify-relinked "$BATS_TEST_TMPDIR"
	go_and_check_original
	rm -f "$GOFILE" "$LOG" "$BATS_TEST_TMPDIR/second"
	STASIS_SABOTAGE=inotify-relinked start_prog events inotify-relinked "$BATS_TEST_TMPDIR"
	touch "$GOFILE"
	run wait_child "$PID" 20
	grep -q '^FAIL: the watch on the file known by its other name' "$LOG" ||
		die_with_logs "sabotage not noticed"
}
