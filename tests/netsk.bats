#!/usr/bin/env bats
# Packet and netlink sockets (tests/progs/packetsk.c, netlinksk.c): every
# kind with its options round-trips and carries traffic afterwards; packet
# rings are mapped again at their addresses; what cannot be carried (a
# netlink message not read yet, a packet socket whose interface is gone)
# makes the dump fail before anything is touched; a packet socket in the
# tree's network namespace comes back inside a new one (docs/netns.md); a
# real program (ip monitor) keeps listening across a restore.

load helpers

bats_require_minimum_version 1.5.0

# What must not change when a dump fails: maps, fds, signal state.
snapshot() { # FILE
	proc_snapshot "$PID" | grep -v '^State:' >"$1"
}

# stasis dump of $PID, expected to fail; output in dump.out.
dump_must_fail() {
	local rc=0
	rm -rf "$IMG"
	{
		(cd "$BATS_TEST_TMPDIR" && exec stasis dump -t "$PID" -D "$IMG" -v4 -o dump.log) \
			</dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 3>&- || rc=$?
	} 2>/dev/null
	[ "$rc" -ne 0 ] || die_with_logs "the dump succeeded but it should have failed" || return 1
	[ "$rc" -lt 128 ] || die_with_logs "the dump died of a signal (status $rc)" || return 1
}

# The failed dump named WHAT and the PID on one line, and left the process
# as it was (snapshot BEFORE); then the original still passes its check.
check_refused() { # BEFORE WHAT
	grep -F -- "$2" "$BATS_TEST_TMPDIR/dump.out" | grep -q -- "task $PID" ||
		die_with_logs "the dump's error does not name $2 and task $PID" || return 1
	assert_running_untraced "$PID" || die_with_logs "after the failed dump" || return 1
	snapshot "$BATS_TEST_TMPDIR/after"
	diff -u "$1" "$BATS_TEST_TMPDIR/after" ||
		die_with_logs "the failed dump changed the process (maps, fds or signals)" || return 1
	go_and_check_original
}

# The checkpoint's images as JSON.
image_json() {
	stasis-serialize show -D "$IMG"
}

# The program run with STASIS_SABOTAGE=WHAT prints FAIL mentioning PATTERN.
sabotage_fails() { # PROG MODE WHAT PATTERN
	STASIS_SABOTAGE=$3 start_prog "$1" "$2"
	touch "$GOFILE"
	wait_child "$PID" 20 || die_with_logs "$1 did not finish" || return 1
	[ "$STATUS" -eq 1 ] || die_with_logs "$1 exited with $STATUS, expected 1 (FAIL)" || return 1
	grep -q "^FAIL: .*$4" "$LOG" || die_with_logs "no FAIL about $4" || return 1
}

@test "netlink sockets: port ids, groups above 32, connected, unbound, options, filter" {
	start_prog netlinksk all
	dump_and_kill
	image_json | grep -q '"NETLINKSK"' || die_with_logs "no NETLINKSK in the files image"
	restore_and_check
}

@test "netlinksk's check notices a group left" {
	sabotage_fails netlinksk all groups "groups"
}

@test "a netlink message not read yet is refused before anything is touched" {
	start_prog netlinksk queued
	snapshot "$BATS_TEST_TMPDIR/before"
	dump_must_fail
	check_refused "$BATS_TEST_TMPDIR/before" "netlink socket"
}

@test "packet sockets: raw, dgram, SOCK_PACKET, TPACKET_V1-3 rings mapped in place, options" {
	start_prog packetsk all
	dump_and_kill
	image_json | grep -q '"PACKETSK"' || die_with_logs "no PACKETSK in the files image"
	image_json | grep -q '"packet_ring"' || die_with_logs "no ring mapping in the mm image"
	restore_and_check
}

@test "packetsk's check notices a ring that is not mapped from its socket" {
	sabotage_fails packetsk all ring "A's ring"
}

@test "a packet ring shared by a parent and its child, which closed its descriptor, stays one ring" {
	start_prog packetsk tree
	dump_and_kill_tree
	restore_and_check
}

@test "packetsk's check notices a child that did not see the frame" {
	sabotage_fails packetsk tree child-ring "child's mappings"
}

@test "a packet socket whose interface is gone is refused before anything is touched" {
	local ifname=stpk$$
	ip link add "$ifname" type veth peer name "${ifname}p"
	start_prog packetsk bound "$ifname" || { ip link del "$ifname"; return 1; }
	ip link del "$ifname"
	snapshot "$BATS_TEST_TMPDIR/before"
	dump_must_fail
	check_refused "$BATS_TEST_TMPDIR/before" "packet socket"
}

@test "a packet socket in the tree's own network namespace comes back inside the new one" {
	LOG=$BATS_TEST_TMPDIR/packetsk.log
	start_cmd unshare -n "$TESTPROGS/packetsk" "$GOFILE" bound lo
	wait_ready "$LOG" "$PID" 10
	dump_and_kill_tree
	restore_and_check
	image_json | grep -q "\"net_ns\": 1" ||
		die_with_logs "the socket does not name its network namespace"
}

@test "ip monitor (iproute2) reports, after the restore, a rule added after it" {
	local pref=$((30000 + $$ % 2000)) addr=192.0.2.$((1 + $$ % 250)) i=0 seen=0
	LOG=$BATS_TEST_TMPDIR/monitor.log
	start_cmd ip monitor rule
	dump_and_kill_tree
	image_json | grep -q '"NETLINKSK"' || die_with_logs "no NETLINKSK in the files image"
	start_restore
	wait_restored
	ip rule add pref "$pref" from "$addr" lookup main
	while [ $i -lt 50 ]; do
		grep -q "from $addr" "$LOG" && { seen=1; break; }
		sleep 0.1
		i=$((i + 1))
	done
	ip rule del pref "$pref" from "$addr" lookup main
	kill -KILL "$PID"
	wait_child "$RPID" 10 || die_with_logs "stasis restore did not exit after its restored PID $PID was killed"
	[ "$seen" = 1 ] || die_with_logs "the restored ip monitor did not report the rule"
}

@test "a packet socket whose interface is gone by the restore: a clear error, nothing left running" {
	local ifname=stpr$$ rc=0
	ip link add "$ifname" type veth peer name "${ifname}p"
	start_prog packetsk bound "$ifname" || { ip link del "$ifname"; return 1; }
	dump_and_kill_tree || { ip link del "$ifname"; return 1; }
	ip link del "$ifname"
	(cd "$BATS_TEST_TMPDIR" && exec stasis restore -D "$IMG" -v4 -o restore.log) \
		</dev/null >"$BATS_TEST_TMPDIR/restore.out" 2>&1 3>&- || rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || die_with_logs "stasis restore exited with $rc" || return 1
	grep -q "packet socket .*interface $ifname .*is gone" "$BATS_TEST_TMPDIR/restore.out" ||
		die_with_logs "the restore's error does not name the interface" || return 1
	run ! alive "$PID"
}
