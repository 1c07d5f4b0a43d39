#!/usr/bin/env bats
# Namespaces (docs/tasks.md, Namespaces): a tree in UTS, time and cgroup
# namespaces of its own comes back in new ones of the same contents, each
# task in its own (tests/progs/namespaces.c checks its names, clocks and
# cgroup from inside); what is still refused is refused before anything
# is touched.

load helpers

bats_require_minimum_version 1.5.0

CGDIR=''
teardown() {
	cleanup_owned
	if [ -n "$CGDIR" ]; then
		[ ! -d "$CGDIR/inner" ] || rmdir "$CGDIR/inner" || true
		[ ! -d "$CGDIR" ] || rmdir "$CGDIR" || true
	fi
	CGDIR=''
}

# The offset of CLOCK (monotonic, boottime) in seconds, in PID's time
# namespace.
offset() { # PID CLOCK
	awk -v c="$2" '$1 == c { print $2 }' "/proc/$1/timens_offsets"
}

@test "UTS and time namespaces of a process, and the UTS namespace of its child, come back" {
	local host
	host=$(hostname)
	start_prog namespaces
	[ "$(offset "$PID" monotonic)" = 864000 ] || die_with_logs "the time namespace was not set up"
	dump_and_kill_tree
	restore_and_check
	[ "$(hostname)" = "$host" ] || die_with_logs "the host's name changed to $(hostname)"
	grep -q "UTS namespace 1 made" "$(find_log restore.log)" ||
		die_with_logs "the restore log does not say it made the UTS namespace"
}

@test "the time namespace's clocks go on from the dump: the time spent in the checkpoint does not count" {
	local mono boot
	start_prog namespaces
	dump_and_kill_tree
	sleep 3
	start_restore
	wait_restored
	mono=$(offset "$PID" monotonic) boot=$(offset "$PID" boottime)
	echo "offsets after the restore: monotonic $mono s, boot time $boot s"
	# 3 s in the checkpoint come off the offsets (864000 s, 1728000 s)
	[ "$mono" -le 863997 ] && [ "$mono" -ge 863900 ] || die_with_logs "monotonic offset $mono"
	[ "$boot" -le 1727997 ] && [ "$boot" -ge 1727900 ] || die_with_logs "boot time offset $boot"
	check_restored
}

@test "a child's cgroup namespace, rooted at its cgroup, comes back with --manage-cgroups=soft, its cgroups made again" {
	start_prog namespaces cgroup
	CGDIR=$(awk '$1 == "CGDIR" { print $2 }' "$LOG")
	[ -d "$CGDIR/inner" ] || die_with_logs "no CGDIR line"
	dump_and_kill_tree
	rmdir "$CGDIR/inner" "$CGDIR"
	restore_and_check --manage-cgroups=soft
	# the program removed them at the end
	[ ! -d "$CGDIR" ] || die_with_logs "$CGDIR is still there"
}

@test "a cgroup namespace restored with --manage-cgroups=ignore is rooted where the tree is: the child sees another cgroup" {
	start_prog namespaces cgroup
	CGDIR=$(awk '$1 == "CGDIR" { print $2 }' "$LOG")
	[ -d "$CGDIR/inner" ] || die_with_logs "no CGDIR line"
	dump_and_kill_tree
	start_restore --manage-cgroups=ignore
	wait_restored
	touch "$GOFILE"
	wait_child "$RPID" "$STASIS_TEST_WAIT"
	[ "$STATUS" -ne 0 ]
	grep -q "child: sees its cgroup as /, was /inner" "$LOG" || die_with_logs "no cgroup FAIL line"
}

@test "a task that made a time namespace for its children only is refused before anything is touched" {
	start_cmd unshare --time --fork sleep 1000
	run ! stasis dump -t "$PID" -D "$IMG"
	[[ "$output" == *"task $PID made a time namespace for its children to come, which stasis does not support"* ]]
	assert_running_untraced "$PID"
}

# A process holding a UTS namespace named NAME, ours to end. Sets HOLDER.
start_uts_holder() { # NAME
	(
		close_extra_fds
		exec setsid unshare --uts sh -c "hostname $1 && exec sleep 1000" </dev/null >/dev/null 2>&1
	) &
	HOLDER=$!
	local i exe
	# owned once it is sleep, the command it stays (teardown ends only
	# what still runs the executable it was owned with)
	for i in $(seq 100); do
		exe=$(readlink "/proc/$HOLDER/exe") || true
		[ "$exe" != "$(readlink -f "$(command -v sleep)")" ] || break
		sleep 0.05
	done
	own_pid "$HOLDER" "$exe"
	[ "$exe" = "$(readlink -f "$(command -v sleep)")" ]
}

@test "restore --join-ns uts:PID and uts:FILE put the tree into an existing namespace, its own names left out" {
	local how
	start_prog namespaces
	dump_and_kill_tree
	start_uts_holder joined.example
	for how in "$HOLDER" "/proc/$HOLDER/ns/uts"; do
		start_restore -d --join-ns "uts:$how"
		wait_child "$RPID" "$STASIS_TEST_WAIT"
		[ "$STATUS" -eq 0 ] || die_with_logs "restore --join-ns uts:$how exited with $STATUS"
		own_image_tree
		[ "$(readlink "/proc/$PID/ns/uts")" = "$(readlink "/proc/$HOLDER/ns/uts")" ] ||
			die_with_logs "the root is not in the joined namespace"
		[ "$(nsenter -t "$PID" -u hostname)" = joined.example ]
		# the child's own namespace is still made again
		local child
		child=$(awk '{ print $1 }' "/proc/$PID/task/$PID/children")
		[ "$(nsenter -t "$child" -u hostname)" = "stasis-ns-child-$PID" ]
		kill -KILL "$PID" "$child"
		wait_gone "$child" 20
		wait_ids_free 30
	done
}

@test "restore --join-ns with an unknown kind or a file of another kind fails in one line, nothing left running" {
	start_prog namespaces
	dump_and_kill_tree
	run ! stasis restore -D "$IMG" --join-ns pid:1
	[[ "$output" == *"--join-ns pid:1: expected NS:PID or NS:FILE, NS one of net, uts, ipc, time, cgroup, mnt"* ]]
	run ! stasis restore -D "$IMG" --join-ns uts:/proc/self/ns/net
	[[ "$output" == *"/proc/self/ns/net is not a UTS namespace"* ]]
	run ! stasis restore -D "$IMG" --join-ns uts:/nonexistent
	[[ "$output" == *"cannot open /nonexistent"* ]]
	run ! alive "$PID"
}
