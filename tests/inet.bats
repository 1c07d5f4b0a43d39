#!/usr/bin/env bats
# Inet sockets (tests/progs/inet.c): TCP listeners, unbound and bound
# sockets, established connections inside the tree and to a client outside
# it, data queued both ways (sent and unsent), v4, v6 and v4-mapped; socket
# options read back equal; UDP, UDP-lite, ICMP and raw sockets;
# --tcp-established, --tcp-close and --skip-in-flight.

load helpers

setup_file() {
	ping_sockets_allow
}

teardown_file() {
	ping_sockets_restore
}

# stasis dump of $PID into $IMG with ARGS, expected to fail; output in
# dump.out.
dump_must_fail() { # ARGS...
	local rc=0
	rm -rf "$IMG"
	{
		(cd "$BATS_TEST_TMPDIR" && exec stasis dump -t "$PID" -D "$IMG" -v4 -o dump.log "$@") \
			</dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 3>&- || rc=$?
	} 2>/dev/null
	[ "$rc" -ne 0 ] || die_with_logs "the dump succeeded but it should have failed" || return 1
	[ "$rc" -lt 128 ] || die_with_logs "the dump died of a signal (status $rc)" || return 1
}

# The failed dump named WHAT and the PID; the process runs untraced and
# passes its own check (its connections work).
check_refused() { # WHAT
	grep -F -- "$1" "$BATS_TEST_TMPDIR/dump.out" | grep -q -- "task $PID" ||
		die_with_logs "the dump's error does not name $1 and task $PID" || return 1
	assert_running_untraced "$PID" || die_with_logs "after the failed dump" || return 1
	go_and_check_original
}

# A checker run under STASIS_SABOTAGE=WHAT without a dump must print FAIL.
sabotaged_fails() { # WHAT ARGS...
	local what=$1
	shift
	STASIS_SABOTAGE=$what start_prog inet "$@"
	touch "$GOFILE"
	wait_child "$PID" 20 || die_with_logs "inet did not finish"
	[ "$STATUS" -eq 1 ] || die_with_logs "inet exited with $STATUS, expected 1 (FAIL)"
	grep -q '^FAIL: ' "$LOG" || die_with_logs "no FAIL line"
}

@test "TCP over IPv4: listener, sockets, a connection in the tree with data queued both ways" {
	start_prog inet tcp v4
	dump_and_kill_tree --tcp-established
	restore_and_check
}

@test "TCP over IPv6: listener, sockets, a connection in the tree with data queued both ways" {
	start_prog inet tcp v6
	dump_and_kill_tree --tcp-established
	restore_and_check
}

@test "TCP over v4-mapped IPv6 (dual stack): a connection with data queued both ways" {
	start_prog inet tcp mapped
	dump_and_kill_tree --tcp-established
	restore_and_check
}

@test "TCP queues of megabytes (more than a record) travel in pieces" {
	start_prog inet tcp v4 big
	grep -E '^queued: .* [0-9]{7,} to the client' "$LOG" || die_with_logs "less than 1 MB queued"
	dump_and_kill_tree --tcp-established
	restore_and_check
}

@test "inet's tcp check notices a byte lost from a queue" {
	sabotaged_fails queue tcp v4
}

@test "a TCP connection to a client outside the tree keeps its data both ways" {
	local portfile=$BATS_TEST_TMPDIR/port clog=$BATS_TEST_TMPDIR/client.log cpid
	("$TESTPROGS/inet" --client "$portfile" "$GOFILE" >"$clog" 2>&1) &
	cpid=$!
	own_pid "$cpid"
	start_prog inet serve "$portfile"
	dump_and_kill --tcp-established
	restore_and_check
	wait_child "$cpid" 20 || die_with_logs "the outside client did not finish"
	[ "$STATUS" -eq 0 ] || { cat "$clog"; die_with_logs "the outside client failed"; }
	grep -qx PASS "$clog"
}

# The dumped tree's connections are locked until the restore: what the
# outside client sends meanwhile is dropped (no RST) and retransmitted.
locked_round_trip() { # LOCKED-CMD ARGS...
	local portfile=$BATS_TEST_TMPDIR/port clog=$BATS_TEST_TMPDIR/client.log cpid
	local locked=$1
	shift
	("$TESTPROGS/inet" --client "$portfile" "$GOFILE" "$BATS_TEST_TMPDIR/mid" >"$clog" 2>&1) &
	cpid=$!
	own_pid "$cpid"
	start_prog inet serve "$portfile" mid
	local root=$PID
	dump_and_kill --tcp-established "$@"
	$locked "$root" || die_with_logs "no lock for tree $root after the dump"
	touch "$BATS_TEST_TMPDIR/mid"
	sleep 1
	restore_and_check
	run $locked "$root"
	[ "$status" -ne 0 ] || die_with_logs "the lock of tree $root is still there after the restore"
	wait_child "$cpid" 20 || die_with_logs "the outside client did not finish"
	[ "$STATUS" -eq 0 ] || { cat "$clog"; die_with_logs "the outside client failed"; }
	grep -qx PASS "$clog"
}

ipt_locked() { iptables -w -n -L "STASIS-$1" >/dev/null 2>&1; }
nft_locked() { nft list table inet "stasis-$1" >/dev/null 2>&1; }

@test "network lock (iptables, the default): data sent to the tree while it is checkpointed arrives" {
	locked_round_trip ipt_locked
}

@test "network lock --network-lock nftables: data sent while the tree is checkpointed arrives" {
	locked_round_trip nft_locked --network-lock nftables
}

@test "inet's serve check notices data lost while the server is checkpointed" {
	# without a lock the data sent meanwhile meets no socket: reset
	local portfile=$BATS_TEST_TMPDIR/port cpid
	("$TESTPROGS/inet" --client "$portfile" "$GOFILE" "$BATS_TEST_TMPDIR/mid" >/dev/null 2>&1) &
	cpid=$!
	own_pid "$cpid"
	start_prog inet serve "$portfile" mid
	dump_and_kill --tcp-established --network-lock skip
	touch "$BATS_TEST_TMPDIR/mid"
	sleep 1
	start_restore
	wait_restored
	touch "$GOFILE"
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "the restored program did not finish"
	[ "$STATUS" -eq 1 ] || die_with_logs "status $STATUS, expected 1 (FAIL)"
	grep -q '^FAIL: ' "$LOG"
}

@test "inet's serve check notices a byte lost from a queue" {
	local portfile=$BATS_TEST_TMPDIR/port cpid
	("$TESTPROGS/inet" --client "$portfile" "$GOFILE" >/dev/null 2>&1) &
	cpid=$!
	own_pid "$cpid"
	sabotaged_fails queue serve "$portfile"
}

@test "socket options read back equal: SO_*, TCP_*, IP_*, IPV6_*, linger, timeouts, device, filter" {
	start_prog inet opts
	dump_and_kill --tcp-established
	restore_and_check
}

@test "inet's opts check notices a changed option" {
	sabotaged_fails opts opts
}

@test "UDP (bound, connected, shut down, broadcast), UDP-lite, ICMP echo and raw sockets" {
	start_prog inet dgram
	dump_and_kill
	restore_and_check
}

@test "inet's dgram check notices a socket connected elsewhere" {
	sabotaged_fails dgram dgram
}

@test "half-closed TCP connections (FIN_WAIT2 and CLOSE_WAIT ends), v4 and v6, with data queued" {
	start_prog inet halfclosed
	dump_and_kill --tcp-established
	restore_and_check
}

@test "inet's halfclosed check notices the data before a FIN lost" {
	sabotaged_fails fin halfclosed
}

@test "a TCP connect in progress (SYN_SENT) connects after the restore" {
	start_prog inet connecting
	dump_and_kill --tcp-established --skip-in-flight
	restore_and_check
}

@test "inet's connecting check notices a connect that never completes" {
	sabotaged_fails connecting connecting
}

@test "two TCP listeners share a port (SO_REUSEPORT), one has turned it off since" {
	start_prog inet reuseport
	dump_and_kill
	restore_and_check
}

@test "inet's reuseport check notices SO_REUSEPORT turned on" {
	sabotaged_fails reuseport reuseport
}

@test "a UDP datagram being built (UDP_CORK) is refused; the socket keeps working" {
	start_prog inet corked
	dump_must_fail
	check_refused "datagram not sent yet"
}

@test "an established TCP connection is refused without --tcp-established; it keeps working" {
	start_prog inet established
	dump_must_fail
	check_refused "TCP connection 127.0.0.1:"
	grep -q -- "--tcp-established" "$BATS_TEST_TMPDIR/dump.out"
}

@test "a failed dump takes the connections out of repair mode: they keep working" {
	# the connection was read in repair mode; the post-dump script fails
	local script=$BATS_TEST_TMPDIR/fail-post-dump
	printf '#!/bin/sh\n[ "$CRTOOLS_SCRIPT_ACTION" != post-dump ]\n' >"$script"
	chmod +x "$script"
	start_prog inet established
	dump_must_fail --tcp-established --action-script "$script"
	grep -q "post-dump" "$BATS_TEST_TMPDIR/dump.out" || die_with_logs "not the post-dump failure"
	run ipt_locked "$PID"
	[ "$status" -ne 0 ] || die_with_logs "the failed dump left its network lock"
	assert_running_untraced "$PID" || die_with_logs "after the failed dump"
	go_and_check_original
}

@test "--tcp-close: established connections are restored closed, the listener listens" {
	start_prog inet closed
	dump_and_kill --tcp-close
	restore_and_check --tcp-close
}

@test "inet's closed check fails on connections that are still open" {
	# without a dump the connection is open: the check must say FAIL
	sabotaged_fails open closed
}

@test "a listener with a connection not accepted yet is refused without --skip-in-flight" {
	start_prog inet inflight
	dump_must_fail --tcp-established
	check_refused "not accepted yet"
}

@test "--skip-in-flight drops the connection not accepted yet; the listener is restored" {
	start_prog inet inflight
	dump_and_kill --tcp-established --skip-in-flight
	restore_and_check
}

@test "urgent data (MSG_OOB) queued at the dump: the mark, the byte, SIOCATMARK and SIGURG as they were (v4, v6)" {
	start_prog netoob
	dump_and_kill --tcp-established
	restore_and_check
	grep -q "urgent mark at byte 3 of 7" "$IMG/dump.log"
}

@test "netoob's check fails when the pending urgent byte is taken (sabotage)" {
	STASIS_SABOTAGE=oob start_prog netoob
	touch "$GOFILE"
	wait_child "$PID" 20 || die_with_logs "netoob did not finish"
	[ "$STATUS" -eq 1 ] || die_with_logs "netoob exited with $STATUS, expected 1 (FAIL)"
	grep -q '^FAIL: .*pending: MSG_OOB' "$LOG" || die_with_logs "no FAIL line about the urgent byte"
}

@test "an urgent pointer whose byte has not arrived is refused; the connection keeps working" {
	start_prog netoob notyet
	dump_must_fail --tcp-established
	check_refused "announced urgent data"
}

@test "netoob notyet's check fails when a byte before the urgent one is lost (sabotage)" {
	STASIS_SABOTAGE=oob start_prog netoob notyet
	touch "$GOFILE"
	wait_child "$PID" 20 || die_with_logs "netoob did not finish"
	[ "$STATUS" -eq 1 ] || die_with_logs "netoob exited with $STATUS, expected 1 (FAIL)"
	grep -q '^FAIL: ' "$LOG" || die_with_logs "no FAIL line"
}

@test "connections reset with data unread (v4, v6; the error pending or taken) read their data, then the error, then the end" {
	start_prog inet reset
	dump_and_kill
	grep -q "ended (reset) with 3 bytes not read and the error not reported" "$IMG/dump.log"
	restore_and_check
}

@test "inet reset's check fails when the unread data is eaten (sabotage)" {
	sabotaged_fails reset reset
}
