#!/usr/bin/env bats
# Unix sockets (tests/progs/unixsk.c): every kind with queued messages,
# names and state in one process; a listener that takes a new client after
# the restore; pairs and an accepted connection between parent and child; a
# peer outside the tree (--external, --inherit-fd); sockets stasis does not
# support make the dump fail before anything is touched.

load helpers

# What must not change when a dump fails: maps, fds, signal state.
snapshot() { # FILE
	proc_snapshot "$PID" | grep -v '^State:' >"$1"
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

# The failed dump named WHAT and the PID, and left the process as it was
# (snapshot BEFORE); then the original still passes its own check.
check_refused() { # BEFORE WHAT
	grep -F -- "$2" "$BATS_TEST_TMPDIR/dump.out" | grep -q -- "task $PID" ||
		die_with_logs "the dump's error does not name $2 and task $PID" || return 1
	assert_running_untraced "$PID" || die_with_logs "after the failed dump" || return 1
	snapshot "$BATS_TEST_TMPDIR/after"
	diff -u "$1" "$BATS_TEST_TMPDIR/after" ||
		die_with_logs "the failed dump changed the process (maps, fds or signals)" || return 1
	go_and_check_original
}

# The value of "KEY value" in the program's log.
log_value() { # KEY
	awk -v k="$1" '$1 == k { print $2; exit }' "$LOG"
}

@test "unix sockets: stream, datagram and seqpacket pairs, names, listeners, queues, options" {
	start_prog unixsk kinds "$BATS_TEST_TMPDIR"
	dump_and_kill
	restore_and_check
	# the socket files are the restored sockets' (not stale ones)
	[ -S "$BATS_TEST_TMPDIR/listen.sock" ] && [ -S "$BATS_TEST_TMPDIR/rel.sock" ]
	[ ! -e "$BATS_TEST_TMPDIR/gone.sock" ]
}

@test "unixsk's check notices a message lost from a queue" {
	STASIS_SABOTAGE=queue start_prog unixsk kinds "$BATS_TEST_TMPDIR"
	touch "$GOFILE"
	wait_child "$PID" 20 || die_with_logs "unixsk did not finish"
	[ "$STATUS" -eq 1 ] || die_with_logs "unixsk exited with $STATUS, expected 1 (FAIL)"
	grep -q '^FAIL: .*datagram' "$LOG" || die_with_logs "no FAIL about the datagram queue"
}

@test "unix listener on a path accepts a new connection after restore" {
	local sock=$BATS_TEST_TMPDIR/server.sock
	start_prog unixsk listen "$sock"
	dump_and_kill
	start_restore
	wait_restored
	touch "$GOFILE"
	"$TESTPROGS/unixsk" --connect "$sock" ||
		die_with_logs "a new client could not talk to the restored listener"
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "the restored program did not finish"
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis restore exited with status $STATUS"
	check_pass_log
}

@test "unix sockets between parent and child: socketpairs and an accepted connection still talk; SO_PEERCRED names their makers" {
	start_prog unixsk tree
	dump_and_kill_tree
	start_restore
	wait_restored
	own_image_tree
	touch "$GOFILE"
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "the restored tree did not finish"
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis restore exited with status $STATUS"
	check_pass_log
	[ "$(image_tasks | wc -l)" -eq 2 ] || die_with_logs "the checkpoint does not hold two tasks"
}

@test "unix sockets not connected: never bound, bound and idle, shut down, connected to itself, bound in a removed directory or by a relative name elsewhere" {
	start_prog unixsk unconn "$BATS_TEST_TMPDIR"
	dump_and_kill_tree
	start_restore
	wait_restored
	own_image_tree
	touch "$GOFILE"
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "the restored tree did not finish"
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis restore exited with status $STATUS"
	check_pass_log
	# the relative name's file is the restored listener's, in its directory
	[ -S "$BATS_TEST_TMPDIR/sub/rel.sock" ] && [ ! -e "$BATS_TEST_TMPDIR/rel.sock" ]
}

@test "unixsk's check notices a message lost by a socket connected to itself" {
	STASIS_SABOTAGE=unconn start_prog unixsk unconn "$BATS_TEST_TMPDIR"
	touch "$GOFILE"
	wait_child "$PID" 20 || die_with_logs "unixsk did not finish"
	[ "$STATUS" -eq 1 ] || die_with_logs "unixsk exited with $STATUS, expected 1 (FAIL)"
	grep -q '^FAIL: .*connected to itself' "$LOG" || die_with_logs "no FAIL about the self-connected socket"
}

@test "unixsk's check notices an accepted connection whose SO_PEERCRED names another process" {
	STASIS_SABOTAGE=peercred start_prog unixsk tree
	touch "$GOFILE"
	wait_child "$PID" 20 || die_with_logs "unixsk did not finish"
	[ "$STATUS" -eq 1 ] || die_with_logs "unixsk exited with $STATUS, expected 1 (FAIL)"
	grep -q '^FAIL: .*accepted connection: SO_PEERCRED' "$LOG" || die_with_logs "no FAIL about SO_PEERCRED"
}

@test "a unix socket connected outside the tree is refused, naming it and the PID; the process runs on" {
	start_prog unixsk external original
	own_pid "$(log_value OUTSIDE)"
	snapshot "$BATS_TEST_TMPDIR/before"
	dump_must_fail
	grep -q -- "--external unix\[$(log_value INO)\]" "$BATS_TEST_TMPDIR/dump.out" ||
		die_with_logs "the error does not suggest --external unix[INO]"
	check_refused "$BATS_TEST_TMPDIR/before" "socket $(log_value INO)"
}

@test "--external unix[ID]: the socket is restored with its queue, disconnected" {
	start_prog unixsk external disconnected
	own_pid "$(log_value OUTSIDE)"
	dump_and_kill --external "unix[$(log_value INO)]"
	wait_gone "$(log_value OUTSIDE)" 10
	wait_ids_free 30
	restore_and_check
	grep -q 'restored disconnected' "$(find_log restore.log)" ||
		die_with_logs "restore did not warn that the socket is disconnected"
}

@test "--ext-unix-sk: a datagram socket connected to a name held outside the tree is connected to it again" {
	start_prog unixsk external dgram "$BATS_TEST_TMPDIR"
	own_pid "$(log_value OUTSIDE)"
	dump_must_fail
	grep -q -- "--external unix\[$(log_value INO)\]" "$BATS_TEST_TMPDIR/dump.out" ||
		die_with_logs "without --ext-unix-sk the dump was not refused naming the socket"
	dump_and_kill --ext-unix-sk
	wait_ids_free 30
	restore_and_check --ext-unix-sk
}

@test "--inherit-fd fd[N]:socket:[ID] gives the restored socket the caller's descriptor" {
	local ino stasis_exe
	start_prog unixsk external inherited
	ino=$(log_value INO)
	own_pid "$(log_value OUTSIDE)"
	dump_and_kill --external "unix[$ino]"
	wait_gone "$(log_value OUTSIDE)" 10
	wait_ids_free 30
	# unixsk --peer-exec: fd 7 is a socket whose peer says "from the new peer"
	stasis_exe=$(readlink -f "$(command -v stasis)")
	(cd "$BATS_TEST_TMPDIR" && exec "$TESTPROGS/unixsk" --peer-exec 7 stasis restore -D "$IMG" \
		-v4 -o restore.log --inherit-fd "fd[7]:socket:[$ino]") \
		</dev/null >"$BATS_TEST_TMPDIR/restore.out" 2>&1 3>&- &
	RPID=$!
	own_pid "$RPID" "$stasis_exe"
	wait_restored
	touch "$GOFILE"
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "the restored program did not finish"
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis restore exited with status $STATUS"
	check_pass_log
}

@test "a TCP connection without --tcp-established is refused before anything is touched" {
	# (inet sockets are carried: tests/inet.bats)
	start_prog unixsk tcp
	snapshot "$BATS_TEST_TMPDIR/before"
	dump_must_fail
	check_refused "$BATS_TEST_TMPDIR/before" "TCP connection 127.0.0.1:"
}

@test "a bound netlink socket beside the unix ones round-trips (netsk.bats has the rest)" {
	start_prog unixsk netlink
	dump_and_kill
	restore_and_check
}

# ---- messages with control data (tests/progs/unixscm.c)

@test "descriptors in flight in a stream queue: pipes, a file, the socket, its peer, a listener, a socket with its own queue" {
	start_prog unixscm rights stream "$BATS_TEST_TMPDIR"
	dump_and_kill
	restore_and_check
}

@test "descriptors in flight in a datagram queue come back in the same messages" {
	start_prog unixscm rights dgram "$BATS_TEST_TMPDIR"
	dump_and_kill
	restore_and_check
}

@test "descriptors in flight in a seqpacket queue come back in the same messages" {
	start_prog unixscm rights seqpacket "$BATS_TEST_TMPDIR"
	dump_and_kill
	restore_and_check
}

@test "unixscm's check notices a message with descriptors gone from the queue" {
	STASIS_SABOTAGE=rights start_prog unixscm rights stream "$BATS_TEST_TMPDIR"
	touch "$GOFILE"
	wait_child "$PID" 20 || die_with_logs "unixscm did not finish"
	[ "$STATUS" -eq 1 ] || die_with_logs "unixscm exited with $STATUS, expected 1 (FAIL)"
	grep -q "^FAIL: .*message 2" "$LOG" || die_with_logs "no FAIL about the message with the pipes"
}

@test "SCM_CREDENTIALS: queued messages keep their senders' pid, uid and gid; SO_PEERCRED names who made the pair (stream)" {
	start_prog unixscm creds stream
	dump_and_kill_tree
	start_restore
	wait_restored
	own_image_tree
	touch "$GOFILE"
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "the restored tree did not finish"
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis restore exited with status $STATUS"
	check_pass_log
}

@test "SCM_CREDENTIALS: queued messages keep their senders' pid, uid and gid; SO_PEERCRED names who made the pair (datagram)" {
	start_prog unixscm creds dgram
	dump_and_kill_tree
	start_restore
	wait_restored
	own_image_tree
	touch "$GOFILE"
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "the restored tree did not finish"
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis restore exited with status $STATUS"
	check_pass_log
}

@test "SCM_CREDENTIALS: queued messages keep their senders' pid, uid and gid; SO_PEERCRED names who made the pair (seqpacket)" {
	start_prog unixscm creds seqpacket
	dump_and_kill_tree
	start_restore
	wait_restored
	own_image_tree
	touch "$GOFILE"
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "the restored tree did not finish"
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis restore exited with status $STATUS"
	check_pass_log
}

@test "unixscm's check notices credentials that are not the sender's" {
	STASIS_SABOTAGE=creds start_prog unixscm creds dgram
	touch "$GOFILE"
	wait_child "$PID" 20 || die_with_logs "unixscm did not finish"
	[ "$STATUS" -eq 1 ] || die_with_logs "unixscm exited with $STATUS, expected 1 (FAIL)"
	grep -q '^FAIL: .*credentials' "$LOG" || die_with_logs "no FAIL about the credentials"
}

@test "an epoll instance only in flight comes back with its registrations (numbers, events, data) on the task's files" {
	start_prog unixscm epoll
	dump_and_kill
	restore_and_check
}

@test "a file stasis does not carry, in flight, is refused naming the socket and the PID; the process runs on" {
	start_prog unixscm userfaultfd
	snapshot "$BATS_TEST_TMPDIR/before"
	dump_must_fail
	check_refused "$BATS_TEST_TMPDIR/before" "file in flight"
}

@test "unixscm's check notices a socket pair whose SO_PEERCRED names another process" {
	STASIS_SABOTAGE=peercred start_prog unixscm creds stream
	touch "$GOFILE"
	wait_child "$PID" 20 || die_with_logs "unixscm did not finish"
	[ "$STATUS" -eq 1 ] || die_with_logs "unixscm exited with $STATUS, expected 1 (FAIL)"
	grep -q '^FAIL: .*SO_PEERCRED' "$LOG" || die_with_logs "no FAIL about SO_PEERCRED"
}
