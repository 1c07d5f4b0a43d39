#!/usr/bin/env bats
# Live TCP migration between two hosts: a server in the tree
# (tests/progs/netecho.c) listens on the service address $SVC_IP in the
# source host $NS_SRC; a client outside the tree (tests/netstream.py), on a
# third host $NS_CLI, streams a counted sequence to it and checks the echo.
# The tree moves to the destination $NS_DST (stasis dump --remote over TLS,
# or a directory copied across), which takes over $SVC_IP: the client must
# see no byte lost, repeated or reordered, on one connection throughout.
#
# The three hosts are network namespaces on one Ethernet segment: a bridge
# in $NS_CLI with a veth to each of the others. The address moves as
# docs/inet.md tells an operator to move it: the source's post-dump action
# script removes it once the checkpoint is safe on the other side, the
# destination's post-restore script adds it (with an unsolicited ARP so the
# segment learns its new place) once the connections exist again, in repair
# mode, before they run.

load helpers

NS_SRC=stasis-msrc-$$
NS_DST=stasis-mdst-$$
NS_CLI=stasis-mcli-$$
VETH_SRC=stms$$
VETH_DST=stmd$$
BRIDGE=stmb$$
SRC_IP=10.232.0.1
DST_IP=10.232.0.2
CLI_IP=10.232.0.3
SVC_IP=10.232.0.10
SVC_PORT=7000
PORT=4433
PKI=$BATS_FILE_TMPDIR/pki

# A CA and the two hosts' certificates (ECDSA P-256: fast to make).
make_pki() {
	local d=$1 n
	mkdir -p "$d" || return 1
	certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 \
		--outfile "$d/ca-key.pem" >/dev/null 2>&1 || return 1
	printf 'cn = stasis test CA\nca\ncert_signing_key\ncrl_signing_key\nexpiration_days = 30\n' \
		>"$d/ca.tmpl"
	certtool --generate-self-signed --template "$d/ca.tmpl" --load-privkey "$d/ca-key.pem" \
		--outfile "$d/ca.pem" >/dev/null 2>&1 || return 1
	for n in src:$SRC_IP dst:$DST_IP; do
		certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 \
			--outfile "$d/${n%%:*}-key.pem" >/dev/null 2>&1 || return 1
		printf 'cn = %s\nip_address = %s\ntls_www_server\ntls_www_client\nsigning_key\nencryption_key\nexpiration_days = 30\n' \
			"${n%%:*}" "${n#*:}" >"$d/${n%%:*}.tmpl"
		certtool --generate-certificate --template "$d/${n%%:*}.tmpl" \
			--load-privkey "$d/${n%%:*}-key.pem" --load-ca-certificate "$d/ca.pem" \
			--load-ca-privkey "$d/ca-key.pem" --outfile "$d/${n%%:*}.pem" >/dev/null 2>&1 ||
			return 1
	done
}

setup_file() {
	if [ "$(id -u)" -eq 0 ] && command -v certtool >/dev/null; then
		make_pki "$PKI"
	fi
}

make_hosts() {
	ip netns add "$NS_SRC" && ip netns add "$NS_DST" && ip netns add "$NS_CLI" &&
		ip -n "$NS_CLI" link add "$BRIDGE" type bridge &&
		ip link add "$VETH_SRC" netns "$NS_SRC" type veth peer name "${VETH_SRC}p" netns "$NS_CLI" &&
		ip link add "$VETH_DST" netns "$NS_DST" type veth peer name "${VETH_DST}p" netns "$NS_CLI" &&
		ip -n "$NS_CLI" link set "${VETH_SRC}p" master "$BRIDGE" up &&
		ip -n "$NS_CLI" link set "${VETH_DST}p" master "$BRIDGE" up &&
		ip -n "$NS_CLI" addr add "$CLI_IP/24" dev "$BRIDGE" &&
		ip -n "$NS_CLI" link set "$BRIDGE" up &&
		ip -n "$NS_SRC" addr add "$SRC_IP/24" dev "$VETH_SRC" &&
		ip -n "$NS_SRC" addr add "$SVC_IP/24" dev "$VETH_SRC" &&
		ip -n "$NS_DST" addr add "$DST_IP/24" dev "$VETH_DST" &&
		for ns in "$NS_SRC" "$NS_DST" "$NS_CLI"; do ip -n "$ns" link set lo up || return 1; done &&
		ip -n "$NS_SRC" link set "$VETH_SRC" up && ip -n "$NS_DST" link set "$VETH_DST" up
}

# The veth pairs and the bridge go with the namespaces (and the network
# lock left in the source with them).
remove_hosts() {
	ip netns del "$NS_SRC" 2>/dev/null
	ip netns del "$NS_DST" 2>/dev/null
	ip netns del "$NS_CLI" 2>/dev/null
	return 0
}

setup() {
	stasis_test_setup
	command -v certtool >/dev/null || { echo "FAILED: certtool (gnutls-bin) is not installed"; return 1; }
	command -v arping >/dev/null || { echo "FAILED: arping (iputils-arping) is not installed"; return 1; }
	[ -s "$PKI/dst.pem" ] || { echo "FAILED: the test certificates could not be made"; return 1; }
	make_hosts || {
		remove_hosts
		echo "FAILED: cannot make three network namespaces on a bridge"
		return 1
	}
	STASIS=$(readlink -f "$(command -v stasis)")
	TLS_DST=(--tls --tls-cacert "$PKI/ca.pem" --tls-cert "$PKI/dst.pem" --tls-key "$PKI/dst-key.pem")
	TLS_SRC=(--tls --tls-cacert "$PKI/ca.pem" --tls-cert "$PKI/src.pem" --tls-key "$PKI/src-key.pem")
	PROGRESS=$BATS_TEST_TMPDIR/progress
	STOP=$BATS_TEST_TMPDIR/stop
	CLOG=$BATS_TEST_TMPDIR/client.log
	# The operator's side of the move (docs/inet.md).
	cat >"$BATS_TEST_TMPDIR/src-script" <<-EOF
		#!/bin/sh
		[ "\$CRTOOLS_SCRIPT_ACTION" = post-dump ] || exit 0
		ip addr del $SVC_IP/24 dev $VETH_SRC
	EOF
	cat >"$BATS_TEST_TMPDIR/dst-script" <<-EOF
		#!/bin/sh
		[ "\$CRTOOLS_SCRIPT_ACTION" = post-restore ] || exit 0
		ip addr add $SVC_IP/24 dev $VETH_DST && arping -q -U -c 1 -I $VETH_DST $SVC_IP
		exit 0
	EOF
	chmod +x "$BATS_TEST_TMPDIR/src-script" "$BATS_TEST_TMPDIR/dst-script"
}

teardown() {
	cleanup_owned
	remove_hosts
}

# The echo server in the source host, listening on the service address.
start_server() {
	PROG=$(readlink -f "$TESTPROGS/netecho")
	[ -x "$PROG" ] || { echo "FAILED: $TESTPROGS/netecho is not built"; return 1; }
	LOG=$BATS_TEST_TMPDIR/netecho.log
	(
		close_extra_fds
		exec ip netns exec "$NS_SRC" setsid "$PROG" "$GOFILE" "$SVC_IP" "$SVC_PORT" \
			</dev/null >"$LOG" 2>&1
	) &
	PID=$!
	own_pid "$PID" "$PROG"
	wait_ready "$LOG" "$PID" 20 || return 1
	PID_START=$(proc_stat_field "$PID" 22)
}

# The streaming client in the client host: CPID.
start_client() {
	rm -f "$PROGRESS" "$STOP"
	(
		close_extra_fds
		exec ip netns exec "$NS_CLI" python3 "$BATS_TEST_DIRNAME/netstream.py" \
			"$SVC_IP" "$SVC_PORT" "$PROGRESS" "$STOP" </dev/null >"$CLOG" 2>&1
	) &
	CPID=$!
	own_pid "$CPID"
}

echoed() { cat "$PROGRESS" 2>/dev/null || echo 0; }

# Wait until the client has had at least N bytes echoed (at most SECONDS).
wait_echoed() { # N SECONDS
	local i=0 limit=$(($2 * 10))
	while [ "$(echoed)" -lt "$1" ]; do
		alive "$CPID" || { die_with_logs "the client ended: $(cat "$CLOG")"; return 1; }
		i=$((i + 1))
		[ $i -ge $limit ] && { die_with_logs "the client has $(echoed) bytes echoed after $2 s, expected $1"; return 1; }
		sleep 0.1
	done
}

# The client ends its stream; it must report PASS, the server (now the
# restored copy, RPID's child) PASS too, and the restore exit 0.
finish_and_check() {
	touch "$GOFILE" "$STOP"
	wait_child "$CPID" 60 || die_with_logs "the client still runs 60 s after STOP" || return 1
	echo "client: $(cat "$CLOG")"
	[ "$STATUS" -eq 0 ] || die_with_logs "the client exited with $STATUS: $(cat "$CLOG")" || return 1
	grep -q '^PASS' "$CLOG" || die_with_logs "no PASS from the client" || return 1
	[ "$(grep -c '^connected' "$CLOG")" -eq 1 ] || die_with_logs "the client connected more than once" || return 1
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "stasis restore still runs after the client ended" || return 1
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis restore exited with $STATUS (the server's status)" || return 1
	check_pass_log
}

# The source was dumped and killed (bash reaps it; the restored copy may
# have its PID already, with another start time).
reap_source() {
	local i=0
	while [ "$(proc_stat_field "$PID" 22 2>/dev/null)" = "$PID_START" ] && alive "$PID"; do
		i=$((i + 1))
		[ $i -ge 200 ] && { die_with_logs "PID $PID runs on 10 s after the dump"; return 1; }
		sleep 0.05
	done
	wait "$PID" 2>/dev/null || true
}

# The server now runs in the destination and holds the client's connection
# there; the source no longer has the address.
check_moved() {
	wait_restored || return 1
	[ "$(readlink "/proc/$PID/ns/net")" = "$(ip netns exec "$NS_DST" readlink /proc/self/ns/net)" ] ||
		die_with_logs "the restored server does not run in $NS_DST" || return 1
	ip -n "$NS_SRC" -br addr | grep -q "$SVC_IP" && { die_with_logs "$SVC_IP is still in $NS_SRC"; return 1; }
	ip netns exec "$NS_DST" ss -Htn state established "( sport = :$SVC_PORT )" | grep -q "$CLI_IP" ||
		die_with_logs "no connection from the client in $NS_DST: $(ip netns exec "$NS_DST" ss -tan)"
}

@test "netecho and netstream: the echo checks pass unmigrated" {
	start_server
	start_client
	wait_echoed 100000 20
	RPID=$PID
	finish_and_check
}

@test "netecho's check fails when a byte of the stream is lost (sabotage)" {
	STASIS_SABOTAGE=echo start_server
	start_client
	wait_echoed 100000 20
	touch "$GOFILE"
	sleep 0.5
	touch "$STOP"
	wait_child "$PID" 30 || die_with_logs "netecho did not finish"
	[ "$STATUS" -eq 1 ] || die_with_logs "netecho exited with $STATUS, expected 1 (FAIL)"
	grep -q '^FAIL: .*not the counted sequence' "$LOG" || die_with_logs "no FAIL line from netecho"
	wait_child "$CPID" 30 || die_with_logs "the client did not finish"
	[ "$STATUS" -eq 1 ] || die_with_logs "the client exited with $STATUS, expected 1"
	grep -q '^FAIL: ' "$CLOG"
}

@test "netstream's check fails when a byte of the echo is lost (sabotage)" {
	start_server
	rm -f "$PROGRESS" "$STOP"
	(
		close_extra_fds
		export STASIS_SABOTAGE=stream
		exec ip netns exec "$NS_CLI" python3 "$BATS_TEST_DIRNAME/netstream.py" \
			"$SVC_IP" "$SVC_PORT" "$PROGRESS" "$STOP" </dev/null >"$CLOG" 2>&1
	) &
	CPID=$!
	own_pid "$CPID"
	# it fails by itself, 64 KiB into the echo
	wait_child "$CPID" 30 || die_with_logs "the client did not finish"
	[ "$STATUS" -eq 1 ] || die_with_logs "the client exited with $STATUS, expected 1 (FAIL)"
	grep -q '^FAIL: ' "$CLOG"
}

@test "live migration over TLS (dump --remote): the client's stream goes on, nothing lost or repeated" {
	start_server
	start_client
	wait_echoed 200000 20
	# stasis restore --remote in the destination, waiting for the stream
	rm -f "$BATS_TEST_TMPDIR/listening"
	(
		close_extra_fds
		cd "$BATS_TEST_TMPDIR" || exit 1
		exec ip netns exec "$NS_DST" "$STASIS" restore --remote --address "$DST_IP" --port "$PORT" \
			"${TLS_DST[@]}" --action-script "$BATS_TEST_TMPDIR/dst-script" --status-fd 3 \
			-v4 -o "$BATS_TEST_TMPDIR/restore.log" 3>"$BATS_TEST_TMPDIR/listening"
	) </dev/null >"$BATS_TEST_TMPDIR/restore.out" 2>&1 &
	RPID=$!
	own_pid "$RPID" "$STASIS"
	local i=0
	until [ -s "$BATS_TEST_TMPDIR/listening" ]; do
		alive "$RPID" || { die_with_logs "stasis restore --remote exited before listening"; return 1; }
		i=$((i + 1))
		[ $i -ge 200 ] && { die_with_logs "stasis restore --remote is not listening after 10 s"; return 1; }
		sleep 0.05
	done
	local rc=0 before
	{
		(
			close_extra_fds
			cd "$BATS_TEST_TMPDIR" || exit 1
			exec ip netns exec "$NS_SRC" "$STASIS" dump -t "$PID" --tcp-established --remote \
				--address "$DST_IP" --port "$PORT" "${TLS_SRC[@]}" \
				--action-script "$BATS_TEST_TMPDIR/src-script" -v4 -o "$BATS_TEST_TMPDIR/dump.log"
		) </dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 || rc=$?
	} 2>/dev/null
	[ "$rc" -eq 0 ] || die_with_logs "stasis dump --remote failed ($rc)" || return 1
	before=$(echoed)
	reap_source
	check_moved
	grep -q "TLS with $DST_IP:$PORT" "$BATS_TEST_TMPDIR/dump.log" || die_with_logs "the dump did not use TLS"
	# the stream goes on through the restored server
	wait_echoed $((before + 200000)) 60
	echo "echoed: $before bytes before the dump, $(echoed) after the restore"
	finish_and_check
}

@test "live migration through a checkpoint directory copied to the other host: the stream goes on" {
	start_server
	start_client
	wait_echoed 200000 20
	local rc=0 before
	{
		(
			close_extra_fds
			cd "$BATS_TEST_TMPDIR" || exit 1
			exec ip netns exec "$NS_SRC" "$STASIS" dump -t "$PID" --tcp-established -D "$IMG" \
				--action-script "$BATS_TEST_TMPDIR/src-script" -v4 -o dump.log
		) </dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 || rc=$?
	} 2>/dev/null
	[ "$rc" -eq 0 ] || die_with_logs "stasis dump -D failed ($rc)" || return 1
	before=$(echoed)
	reap_source
	cp -a "$IMG" "$BATS_TEST_TMPDIR/copy" || return 1
	wait_ids_free 30 "$BATS_TEST_TMPDIR/copy" || return 1
	(
		close_extra_fds
		cd "$BATS_TEST_TMPDIR" || exit 1
		exec ip netns exec "$NS_DST" "$STASIS" restore -D "$BATS_TEST_TMPDIR/copy" \
			--action-script "$BATS_TEST_TMPDIR/dst-script" -v4 -o restore.log
	) </dev/null >"$BATS_TEST_TMPDIR/restore.out" 2>&1 &
	RPID=$!
	own_pid "$RPID" "$STASIS"
	check_moved
	wait_echoed $((before + 200000)) 60
	echo "echoed: $before bytes before the dump, $(echoed) after the restore"
	finish_and_check
}
