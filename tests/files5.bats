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

# fsobj MODE round trip, then the same with its sabotage, which must FAIL.
fsobj_roundtrip() { # MODE [DUMP ARGS...]
	local mode=$1
	shift
	start_prog fsobj "$BATS_TEST_TMPDIR" "$mode"
	dump_and_kill "$@"
	wait_ids_free 30
	restore_and_check
}

fsobj_sabotaged() { # MODE WHAT [DUMP ARGS...]
	local mode=$1 what=$2
	shift 2
	STASIS_SABOTAGE=$mode start_prog fsobj "$BATS_TEST_TMPDIR" "$mode"
	dump_and_kill "$@"
	wait_ids_free 30
	restore_must_fail_check "$what"
}

@test "removed working directory: made again, entered and removed; the same directory as a descriptor on it" {
	fsobj_roundtrip cwd
	show_image ghosts | grep -q '/fs/cwd"'
}

@test "removed working directory: the checker notices another cwd (self-test)" {
	fsobj_sabotaged cwd 'cwd'
}

@test "roots: a child chrooted into a removed directory, another in a kept jail with a file outside" {
	fsobj_roundtrip root
}

@test "roots: the checker notices a child lost (self-test)" {
	fsobj_sabotaged root 'jailed child'
}

@test "directory open after rmdir, its parent removed too: no name comes back" {
	fsobj_roundtrip rmdir
}

@test "directory open after rmdir: the checker notices another directory (self-test)" {
	fsobj_sabotaged rmdir 'fd 23'
}

@test "unlinked FIFO: three descriptions, one FIFO, queued data kept, no name" {
	fsobj_roundtrip fifo
}

@test "unlinked FIFO: the checker notices the queued data gone (self-test)" {
	fsobj_sabotaged fifo 'FIFO held'
}

@test "unlinked device node: same device number, mode and access, no name" {
	fsobj_roundtrip dev
}

@test "unlinked device node: the checker notices another device (self-test)" {
	fsobj_sabotaged dev 'fd 27'
}

@test "O_PATH: a file, a directory, symlinks with O_NOFOLLOW, one of them unlinked" {
	fsobj_roundtrip opath
}

@test "O_PATH: the checker notices a descriptor without O_PATH (self-test)" {
	fsobj_sabotaged opath 'fd 28'
}

@test "deleted file whose directory is gone too: made in its directory made again, which goes" {
	fsobj_roundtrip gonedir
}

@test "deleted file whose directory is gone: the checker notices changed data (self-test)" {
	fsobj_sabotaged gonedir 'fd 32'
}

@test "O_TMPFILE: a file never named, and one linked since (--link-remap), keep their data and names" {
	fsobj_roundtrip tmpfile --link-remap
	[ "$(ls "$BATS_TEST_TMPDIR/fs")" = linked ] || die_with_logs "the link remap was left behind"
}

@test "O_TMPFILE: the checker notices changed data (self-test)" {
	fsobj_sabotaged tmpfile 'fd 33' --link-remap
}

@test "--ghost-fiemap is accepted; a sparse file travels as without it" {
	start_prog ghost "$BATS_TEST_TMPDIR" sparse
	dump_and_kill --ghost-fiemap
	restore_and_check
}

@test "--no-ghost-fiemap is accepted; a sparse file travels as without it" {
	start_prog ghost "$BATS_TEST_TMPDIR" sparse
	dump_and_kill --no-ghost-fiemap
	restore_and_check
}

@test "/proc files of tasks of the tree: opened once the tree exists, same offset, shared by two tasks" {
	fsobj_roundtrip proc
	show_image files | grep -q '"PROCFS"' || die_with_logs "no PROCFS file in the checkpoint"
}

@test "/proc files: the checker notices another file (self-test)" {
	fsobj_sabotaged proc 'fd 35'
}

@test "namespace files of the namespaces the tree runs in" {
	fsobj_roundtrip ns
	show_image files | grep -q '"NSFS"' || die_with_logs "no NSFS file in the checkpoint"
}

@test "namespace files: the checker notices another namespace (self-test)" {
	fsobj_sabotaged ns 'fd 38'
}

@test "the directory /proc/PID of a process gone, as working directory and descriptor" {
	fsobj_roundtrip deadproc
}

@test "the directory of a process gone: the checker notices another cwd (self-test)" {
	fsobj_sabotaged deadproc 'cwd'
}

@test "a namespace file of another namespace is refused at dump; the tree runs on untouched" {
	start_prog fsobj "$BATS_TEST_TMPDIR" foreignns
	local rc=0
	(cd "$BATS_TEST_TMPDIR" && exec stasis dump -t "$PID" -D "$IMG" -o dump.log) \
		</dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 3>&- || rc=$?
	[ "$rc" -ne 0 ] || die_with_logs "the dump succeeded"
	grep -q "fd 41 of task $PID: the namespace file net:\[[0-9]*\] is of a net namespace other than the one stasis runs in" \
		"$BATS_TEST_TMPDIR/dump.out" || die_with_logs "no clear refusal"
	assert_running_untraced "$PID"
	go_and_check_original
}

@test "a namespace file of another namespace: the checker notices it replaced (self-test)" {
	STASIS_SABOTAGE=foreignns start_prog fsobj "$BATS_TEST_TMPDIR" foreignns
	touch "$GOFILE"
	wait_child "$PID" "$STASIS_TEST_WAIT" || die_with_logs "the program did not finish"
	[ "$STATUS" -ne 0 ] && grep -q '^FAIL: .*fd 41' "$LOG" || die_with_logs "no FAIL about fd 41"
}

@test "restore accepts --link-remap, as criu does" {
	start_prog fsobj "$BATS_TEST_TMPDIR" ns
	dump_and_kill
	restore_and_check --link-remap
}

@test "console and virtual console opened by path, the vt the controlling terminal: no --shell-job" {
	fsobj_roundtrip console
}

@test "console and virtual console: the checker notices another device (self-test)" {
	fsobj_sabotaged console 'fds 42 and 43'
}
