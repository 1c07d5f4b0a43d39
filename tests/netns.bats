#!/usr/bin/env bats
# Network namespaces (docs/netns.md): round trips of tests/progs/netns.c,
# which unshares a network namespace and fills it (lo with an address, a
# veth pair inside with MTU, MAC, IPv4 and IPv6 addresses, routes, changed
# sysctls) and holds a TCP connection between itself and its child on
# 127.0.0.1 with bytes queued, and a listener. Also: a veth whose peer is
# outside, a link kind that is refused, --join-ns net.

load helpers
bats_require_minimum_version 1.5.0

teardown() {
	cleanup_owned
	if [ -n "${OUTER:-}" ]; then ip link del "$OUTER" 2>/dev/null || true; fi
	if [ -n "${JOINED:-}" ]; then ip netns del "$JOINED" 2>/dev/null || true; fi
}

@test "netns: links, addresses, routes, sysctls and a TCP connection inside a network namespace come back in a new one" {
	start_prog netns
	dump_and_kill_tree --tcp-established
	grep -q "network namespace 1: 3 links, " "$(find_log dump.log)" ||
		die_with_logs "the dump log does not count the namespace's links" || return 1
	grep -q "TCP connection(s) of tree $PID in its network namespace" "$(find_log dump.log)" ||
		die_with_logs "the network lock was not taken inside the namespace" || return 1
	restore_and_check --tcp-established
	grep -q "network namespace 1: 3 links, " "$(find_log restore.log)" ||
		die_with_logs "the restore log does not count the namespace's links"
}

@test "netns: dump -R leaves the namespace and its connection as they were (lock removed inside it)" {
	start_prog netns
	run_dump -R --tcp-established
	assert_running_untraced "$PID" || die_with_logs "after dump -R" || return 1
	go_and_check_original
}

@test "netns: a veth whose peer is outside comes back with a new outside peer named by --veth-pair" {
	OUTER=stvo$$
	start_prog netns outside "$OUTER"
	ip link show "$OUTER" >/dev/null || die_with_logs "no outside peer $OUTER" || return 1
	dump_and_kill_tree --tcp-established
	# the namespace went with the tree, and the pair with it
	local i=0
	while ip link show "$OUTER" >/dev/null 2>&1 && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	run ! ip link show "$OUTER"
	start_restore --tcp-established --veth-pair "stv0=$OUTER"
	wait_restored || return 1
	ip -d -o link show "$OUTER" | grep -q "veth" ||
		die_with_logs "no outside peer $OUTER after the restore" || return 1
	check_restored
}

@test "netns: a link of a kind not carried (bridge) is refused before anything is touched; the tree runs on" {
	start_prog netns bridge
	snapshot_before=$(proc_snapshot "$PID")
	local rc=0
	(cd "$BATS_TEST_TMPDIR" && exec stasis dump -t "$PID" -D "$IMG" -v4 -o dump.log) \
		</dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 3>&- || rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || die_with_logs "the dump exited with $rc, expected a failure" || return 1
	grep -q "link stvd (bridge) is of a kind stasis does not carry" "$BATS_TEST_TMPDIR/dump.out" ||
		die_with_logs "no clear refusal naming the link" || return 1
	[ "$(grep -c error "$BATS_TEST_TMPDIR/dump.out")" -le 3 ] || die_with_logs "more than a line of error" || return 1
	assert_running_untraced "$PID" || die_with_logs "after the failed dump" || return 1
	[ "$(proc_snapshot "$PID")" = "$snapshot_before" ] || die_with_logs "the task changed" || return 1
	nsenter -t "$PID" -n ip link show stvd >/dev/null || die_with_logs "the link is gone" || return 1
	go_and_check_original
}

@test "netns: restore --join-ns net:FILE puts the tree and its sockets into an existing namespace, nothing of its own made" {
	JOINED=stasis-join$$
	ip netns add "$JOINED"
	ip -n "$JOINED" link set lo up
	start_prog netns join
	dump_and_kill_tree --tcp-established
	start_restore --tcp-established --join-ns "net:/run/netns/$JOINED"
	wait_restored || return 1
	[ "$(stat -L -c %i "/proc/$PID/ns/net")" = "$(stat -c %i "/run/netns/$JOINED")" ] ||
		die_with_logs "the root is not in the joined namespace" || return 1
	# the sockets are there, the links of the dumped namespace are not
	ip netns exec "$JOINED" ss -tn | grep -q ESTAB || die_with_logs "no connection in the joined namespace" || return 1
	run ! ip -n "$JOINED" link show stv0
	[ "$(ip -n "$JOINED" -o link | wc -l)" -eq 1 ] || die_with_logs "links made in the joined namespace" || return 1
	check_restored
}

@test "netns: half-closed connections and a reset one inside a network namespace come back (the peer's FIN fed inside it)" {
	local mode
	for mode in halfclosed reset; do
		LOG=$BATS_TEST_TMPDIR/inet-$mode.log
		rm -f "$GOFILE"
		start_cmd unshare -n sh -c "ip link set lo up && exec \"\$0\" \"\$@\"" "$TESTPROGS/inet" "$GOFILE" "$mode"
		wait_ready "$LOG" "$PID" 10 || return 1
		PROG=$(readlink -f "$TESTPROGS/inet")
		own_pid "$PID" "$PROG"
		dump_and_kill_tree --tcp-established
		restore_and_check --tcp-established
		wait_ids_free 30 || die_with_logs "the restored tree's IDs did not become free" || return 1
		unset LOG
	done
}

@test "netns: a child in a network namespace of its own under a root in ours; the root stays in ours" {
	start_cmd sh -c 'unshare -n sh -c "ip link set lo up && ip addr add 10.66.0.1/24 dev lo && exec sleep 1000" & wait'
	local child i=0
	until child=$(cat "/proc/$PID/task/$PID/children" 2>/dev/null | awk '{ print $1 }') && [ -n "$child" ] &&
		[ "$(readlink "/proc/$child/exe")" = "$(readlink -f "$(command -v sleep)")" ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || die_with_logs "no child in its namespace" || return 1
		sleep 0.05
	done
	dump_and_kill_tree
	start_restore -d
	wait_child "$RPID" "$STASIS_TEST_WAIT"
	[ "$STATUS" -eq 0 ] || die_with_logs "restore -d exited with $STATUS" || return 1
	own_image_tree
	[ "$(readlink "/proc/$PID/ns/net")" = "$(readlink /proc/self/ns/net)" ] ||
		die_with_logs "the root left our network namespace" || return 1
	[ "$(readlink "/proc/$child/ns/net")" != "$(readlink /proc/self/ns/net)" ] ||
		die_with_logs "the child is in our network namespace" || return 1
	nsenter -t "$child" -n ip -o addr show dev lo | grep -q "10.66.0.1/24" ||
		die_with_logs "the child's namespace lacks its address" || return 1
	nsenter -t "$child" -n ip -o link show lo | grep -q "UP" ||
		die_with_logs "the child's loopback is down" || return 1
}
