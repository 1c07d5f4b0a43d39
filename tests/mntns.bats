#!/usr/bin/env bats
# Mount namespaces: round trips of tests/progs/mntns.c, which unshares a
# mount namespace and changes it: a tmpfs (nosuid,nodev, size= and mode=)
# with a patterned 6 MiB file, owners, modes, an mtime, a directory, a
# symlink, a hard link, a FIFO and a device node, a tmpfs nested in it,
# binds of a host directory (one read-only), proc, sysfs, devpts and
# mqueue, tmpfs made shared and unbindable, and a tmpfs of the host's
# namespace (mounted here, in setup) unmounted there. It holds a file of
# the tmpfs open at an offset, another mapped MAP_SHARED and its cwd in it;
# its child stays in the namespace with its cwd in the tmpfs. The dump
# records the namespace as a difference from stasis's own (ns.img, NS_MNT,
# the tmpfs files in mnt-files.img); the restore makes a new namespace and
# nothing of it shows in ours; a child's namespace made from its parent's
# comes back made from the parent's new one. What is refused: a tmpfs
# covered by another mount.

load helpers

setup() {
	stasis_test_setup
	mkdir -p "$BATS_TEST_TMPDIR/hostdir" "$BATS_TEST_TMPDIR/hostmnt"
	printf host >"$BATS_TEST_TMPDIR/hostdir/marker"
	mount -t tmpfs stasis-hostmnt "$BATS_TEST_TMPDIR/hostmnt"
	echo h >"$BATS_TEST_TMPDIR/hostmnt/h"
}

teardown() {
	cleanup_owned
	local mnt=$BATS_TEST_TMPDIR/hostmnt
	if mountpoint -q "$mnt"; then
		umount "$mnt" || umount -l "$mnt" || true
	fi
}

# $PID is in a mount namespace other than ours.
in_other_mntns() {
	local theirs ours
	theirs=$(readlink "/proc/$PID/ns/mnt") || die_with_logs "no /proc/$PID/ns/mnt" || return 1
	ours=$(readlink "/proc/$$/ns/mnt")
	[ "$theirs" != "$ours" ] || die_with_logs "PID $PID is in our mount namespace ($ours)"
}

# Nothing of the program's namespace shows in ours: the host's tmpfs is
# still mounted with its file, the program's mounts are not here.
host_untouched() {
	local d=$BATS_TEST_TMPDIR leaked
	mountpoint -q "$d/hostmnt" || die_with_logs "hostmnt is no longer a mount point here" || return 1
	[ -e "$d/hostmnt/h" ] || die_with_logs "hostmnt/h is gone here" || return 1
	if mountpoint -q "$d/m/t"; then
		die_with_logs "m/t is a mount point in our namespace"
		return 1
	fi
	[ ! -e "$d/m/t/big" ] || die_with_logs "m/t/big shows in our namespace" || return 1
	leaked=$(grep -F " $d/m/" /proc/self/mountinfo) || true
	[ -z "$leaked" ] || die_with_logs "mounts of the program's namespace in ours: $leaked"
}

@test "mntns: a tmpfs with its files, binds, proc, sysfs, devpts, mqueue, flags, propagation and an unmounted host mount come back in a new mount namespace, with open files, a shared mapping and cwds" {
	start_prog mntns
	in_other_mntns || return 1
	dump_and_kill_tree
	[ -s "$IMG/ns.img" ] || die_with_logs "no ns image" || return 1
	stasis-serialize show "$IMG/ns.img" | grep -q '"kind": "NS_MNT"' ||
		die_with_logs "no NS_MNT record in ns.img" || return 1
	[ -s "$IMG/mnt-files.img" ] || die_with_logs "no mnt-files image" || return 1
	grep -q "mount namespace 1:" "$(find_log dump.log)" ||
		die_with_logs "the dump log does not count the namespace's mounts" || return 1
	host_untouched || return 1
	start_restore
	wait_restored || return 1
	# before GO: the restored tree runs in its namespace
	in_other_mntns || return 1
	host_untouched || return 1
	check_restored || return 1
	grep -q "mount namespace 1 made:" "$(find_log restore.log)" ||
		die_with_logs "the restore log does not count the namespace's mounts" || return 1
	host_untouched
}

@test "mntns: dump -R leaves the namespace, its mounts and files as they were, and the program passes" {
	start_prog mntns
	run_dump -R
	assert_running_untraced "$PID" || die_with_logs "after dump -R" || return 1
	host_untouched || return 1
	go_and_check_original
}

@test "mntns: a checkpoint restored twice, each restore in a mount namespace of its own" {
	start_prog mntns
	dump_and_kill_tree
	restore_and_check
	host_untouched || return 1
	wait_ids_free 30 || die_with_logs "the restored tree's IDs did not become free" || return 1
	rm -f "$GOFILE"
	cp "$LOG.at-dump" "$LOG"
	start_restore
	wait_restored || return 1
	in_other_mntns || return 1
	check_restored || return 1
	host_untouched
}

@test "mntns: a tmpfs covered by another mount on its mount point is refused, the program runs on" {
	start_prog mntns covered
	refused_then_pass "covered by another mount"
}

@test "mntns: a child in a mount namespace of its own, made from its parent's, comes back in one made from its parent's new one: its own tmpfs, the parent's shared with it" {
	start_prog mntns childns
	dump_and_kill_tree
	stasis-serialize show "$IMG/ns.img" | grep -q '"mnt_base": 1' ||
		die_with_logs "the child's mount namespace is not a difference from its parent's" || return 1
	restore_and_check
	host_untouched
}

@test "mntns: restore --join-ns mnt:PID puts a tree into an existing mount namespace, and the tree sees its mounts" {
	local d=$BATS_TEST_TMPDIR sleep_exe i exe
	sleep_exe=$(readlink -f "$(command -v sleep)")
	start_prog heap
	dump_and_kill_tree
	mkdir -p "$d/joined"
	(
		close_extra_fds
		exec setsid unshare -m --propagation private sh -c \
			"mount -t tmpfs stasis-joined '$d/joined' && touch '$d/joined/j' && exec sleep 1000" \
			</dev/null >/dev/null 2>&1
	) &
	HOLDER=$!
	for i in $(seq 100); do
		exe=$(readlink "/proc/$HOLDER/exe") || true
		[ "$exe" != "$sleep_exe" ] || break
		sleep 0.05
	done
	own_pid "$HOLDER" "$exe"
	[ "$exe" = "$sleep_exe" ] || die_with_logs "the namespace holder did not start" || return 1
	start_restore --join-ns "mnt:$HOLDER"
	wait_restored || return 1
	[ "$(readlink "/proc/$PID/ns/mnt")" = "$(readlink "/proc/$HOLDER/ns/mnt")" ] ||
		die_with_logs "the restored tree is not in the joined mount namespace" || return 1
	[ -e "/proc/$PID/root$d/joined/j" ] ||
		die_with_logs "the restored tree does not see the joined namespace's tmpfs" || return 1
	[ ! -e "$d/joined/j" ] || die_with_logs "the joined namespace's tmpfs shows in ours" || return 1
	check_restored
}

@test "mntns: a checkpoint whose tmpfs files lead out through a symlink is refused in one line, nothing written outside, nothing mounted here" {
	local d=$BATS_TEST_TMPDIR
	mkdir -p "$d/outside"
	"$STASIS_BUILD_DIR/serialize/stasis-test-mkstream" -p 4 -m "$d" >"$d/evil.stream"
	run ! stasis-inject <"$d/evil.stream"
	[[ "$output" == *"tmpfs $d/t: cannot open the directory of esc/pwned"* ]] ||
		die_with_logs "no clear refusal: $output" || return 1
	[[ "$output" == *"mount namespace 1 could not be made"* ]] || die_with_logs "$output" || return 1
	[ ! -e "$d/outside/pwned" ] || die_with_logs "a file was written through the symlink" || return 1
	run ! mountpoint -q "$d/t"
}
