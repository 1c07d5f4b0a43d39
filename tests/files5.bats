#!/usr/bin/env bats
# File-system objects (issue 10): sparse deleted files within --ghost-limit,
# deleted working directories and roots, directories held open after rmdir,
# unlinked FIFOs and device nodes, O_PATH descriptors and symlinks, /proc
# and namespace files, terminals opened by path, file mappings that are
# mprotect'ed to more rights later. See tests/progs/ghost.c and fsobj.c for
# what each program checks.

load helpers

show_image() { # NAME
	stasis-serialize show "$IMG/$1.img"
}

# The checker of a program started with STASIS_SABOTAGE prints FAIL about
# WHAT (a regex) after a round trip.
restore_must_fail_check() { # WHAT
	start_restore
	wait_restored || return 1
	touch "$GOFILE"
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "the restored program did not finish" || return 1
	[ "$STATUS" -ne 0 ] || die_with_logs "the sabotaged program passed" || return 1
	grep -qE "^FAIL: .*$1" "$LOG" || die_with_logs "no FAIL about '$1'" || return 1
}

@test "sparse deleted file: 1 GiB holding 16 KiB passes the default --ghost-limit, holes stay holes" {
	start_prog ghost "$BATS_TEST_TMPDIR" sparse
	dump_and_kill
	show_image ghosts | grep -qE '"size": *"?1073741824' || die_with_logs "no 1 GiB ghost"
	# the checkpoint holds the data, not the holes
	[ "$(du -k "$IMG/ghost-data.img" | cut -f1)" -lt 1024 ] || die_with_logs "ghost-data holds the holes"
	restore_and_check
}

@test "sparse deleted file: the checker notices data written into a hole (self-test)" {
	STASIS_SABOTAGE=ghost start_prog ghost "$BATS_TEST_TMPDIR" sparse
	dump_and_kill
	restore_must_fail_check 'sparse file'
}
