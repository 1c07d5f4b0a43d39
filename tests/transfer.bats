#!/usr/bin/env bats
# stasis-transfer, the page server and image-less migration between two
# hosts: two network namespaces joined by a veth pair, the source
# ($NS_SRC, $SRC_IP) and the destination ($NS_DST, $DST_IP). Every process
# of a test runs in one of them (ip netns exec). The certificates are made
# with certtool for the suite: a CA, the destination's certificate (its
# address in the subject alternative names), the source's, one revoked in
# the CA's CRL, one for another name, and a second CA with a certificate of
# its own.
#
# The two namespaces share the PID namespace, so a migrated tree gets its
# PIDs back only once the source has been killed: stasis restore --remote
# waits for them (stasis-inject --wait-pids-free) while stasis-transfer
# holds the stream in memory.

load helpers

bats_require_minimum_version 1.5.0

NS_SRC=stasis-src-$$
NS_DST=stasis-dst-$$
VETH_SRC=stxs$$
VETH_DST=stxd$$
SRC_IP=10.231.0.1
DST_IP=10.231.0.2
PORT=4433
PKI=$BATS_FILE_TMPDIR/pki
MKSTREAM=$STASIS_BUILD_DIR/serialize/stasis-test-mkstream

# ---------------------------------------------------------------- set-up

# CA, second CA, certificates (ECDSA P-256 keys: fast to make), CRL.
make_pki() {
	local d=$1
	mkdir -p "$d" || return 1
	key() {
		certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 \
			--outfile "$d/$1-key.pem" >/dev/null 2>&1
	}
	ca() { # NAME CN
		key "$1"
		printf 'cn = %s\nca\ncert_signing_key\ncrl_signing_key\nexpiration_days = 30\n' \
			"$2" >"$d/$1.tmpl"
		certtool --generate-self-signed --template "$d/$1.tmpl" \
			--load-privkey "$d/$1-key.pem" --outfile "$d/$1.pem" >/dev/null 2>&1
	}
	leaf() { # NAME CA CN [ip ADDR | dns NAME]...
		local n=$1 c=$2 cn=$3
		shift 3
		key "$n"
		{
			echo "cn = $cn"
			while [ $# -gt 1 ]; do
				case $1 in
				ip) echo "ip_address = $2" ;;
				dns) echo "dns_name = $2" ;;
				esac
				shift 2
			done
			printf 'tls_www_server\ntls_www_client\nsigning_key\nencryption_key\n'
			printf 'expiration_days = 30\n'
		} >"$d/$n.tmpl"
		certtool --generate-certificate --template "$d/$n.tmpl" \
			--load-privkey "$d/$n-key.pem" --load-ca-certificate "$d/$c.pem" \
			--load-ca-privkey "$d/$c-key.pem" --outfile "$d/$n.pem" >/dev/null 2>&1
	}
	ca ca "stasis test CA" &&
		ca ca2 "another CA" &&
		leaf dst ca dst ip "$DST_IP" &&
		leaf other ca other ip 10.231.0.99 dns other.example &&
		leaf src ca src ip "$SRC_IP" &&
		leaf revoked ca revoked ip "$SRC_IP" &&
		leaf foreign ca2 src ip "$SRC_IP" || return 1
	printf 'crl_next_update = 30\ncrl_number = 1\n' >"$d/crl.tmpl"
	certtool --generate-crl --template "$d/crl.tmpl" --load-ca-privkey "$d/ca-key.pem" \
		--load-ca-certificate "$d/ca.pem" --load-certificate "$d/revoked.pem" \
		--outfile "$d/crl.pem" >/dev/null 2>&1
}

setup_file() {
	if [ "$(id -u)" -eq 0 ] && command -v certtool >/dev/null; then
		make_pki "$PKI"
	fi
}

# The two hosts.
make_hosts() {
	ip netns add "$NS_SRC" && ip netns add "$NS_DST" &&
		ip link add "$VETH_SRC" type veth peer name "$VETH_DST" &&
		ip link set "$VETH_SRC" netns "$NS_SRC" &&
		ip link set "$VETH_DST" netns "$NS_DST" &&
		ip -n "$NS_SRC" addr add "$SRC_IP/24" dev "$VETH_SRC" &&
		ip -n "$NS_DST" addr add "$DST_IP/24" dev "$VETH_DST" &&
		ip -n "$NS_SRC" link set lo up && ip -n "$NS_DST" link set lo up &&
		ip -n "$NS_SRC" link set "$VETH_SRC" up && ip -n "$NS_DST" link set "$VETH_DST" up
}

remove_hosts() {
	# the veth pair goes with the namespaces
	ip netns del "$NS_SRC" 2>/dev/null
	ip netns del "$NS_DST" 2>/dev/null
	ip link del "$VETH_SRC" 2>/dev/null
	return 0
}

setup() {
	stasis_test_setup
	command -v stasis-transfer >/dev/null || skip "stasis-transfer is not built"
	command -v certtool >/dev/null || skip "certtool (gnutls-bin) is not installed"
	[ -s "$PKI/crl.pem" ] || { echo "FAILED: the test certificates could not be made"; return 1; }
	make_hosts || {
		remove_hosts
		echo "FAILED: cannot make two network namespaces joined by a veth pair"
		return 1
	}
	STASIS=$(readlink -f "$(command -v stasis)")
	XFER=$(readlink -f "$(command -v stasis-transfer)")
	TLS_DST=(--tls --tls-cacert "$PKI/ca.pem" --tls-cacrl "$PKI/crl.pem"
		--tls-cert "$PKI/dst.pem" --tls-key "$PKI/dst-key.pem")
	TLS_SRC=(--tls --tls-cacert "$PKI/ca.pem" --tls-cert "$PKI/src.pem" --tls-key "$PKI/src-key.pem")
}

teardown() {
	cleanup_owned
	remove_hosts
}

# ---------------------------------------------------------------- helpers

on_src() { ip netns exec "$NS_SRC" "$@"; }
on_dst() { ip netns exec "$NS_DST" "$@"; }

# start_prog, with the program on the source host.
start_prog_on_src() { # NAME [ARGS...]
	local name=$1
	shift
	PROG=$(readlink -f "$TESTPROGS/$name")
	[ -x "$PROG" ] || { echo "FAILED: $TESTPROGS/$name is not built"; return 1; }
	LOG=$BATS_TEST_TMPDIR/$name.log
	# bigmem SIZE_MB GOFILE, the others GOFILE [ARGS]
	if [ "$name" = bigmem ]; then set -- "$1" "$GOFILE"; else set -- "$GOFILE" "$@"; fi
	(
		close_extra_fds
		exec ip netns exec "$NS_SRC" setsid "$PROG" "$@" </dev/null >"$LOG" 2>&1
	) &
	PID=$!
	own_pid "$PID" "$PROG"
	wait_ready "$LOG" "$PID" 20 || return 1
	PID_START=$(proc_stat_field "$PID" 22)
	[ "$(readlink "/proc/$PID/exe")" = "$PROG" ] || {
		echo "FAILED: \$! ($PID) is not $PROG"
		return 1
	}
	[ "$(readlink "/proc/$PID/ns/net")" = "$(on_src readlink /proc/self/ns/net)" ] || {
		echo "FAILED: $PID does not run in $NS_SRC"
		return 1
	}
}

# Wait until FILE holds the byte a --status-fd writes once listening.
wait_listening() { # FILE PID WHAT
	local i=0
	until [ -s "$1" ]; do
		alive "$2" || { die_with_logs "$3 exited before listening"; return 1; }
		i=$((i + 1))
		[ $i -ge 200 ] && { die_with_logs "$3 is not listening after 10 s"; return 1; }
		sleep 0.05
	done
	[ "$(od -An -tx1 "$1" | tr -d ' ')" = 00 ] || { die_with_logs "$3: --status-fd got $(od -c "$1")"; return 1; }
}

# stasis restore --remote on the destination, in the background (our
# child, the parent of the restored tree), listening on $DST_IP:PORT.
# Sets RPID. ARGS are added.
start_remote_restore() { # [PORT] [ARGS...]
	local port=$PORT
	if [[ ${1:-} =~ ^[0-9]+$ ]]; then port=$1; shift; fi
	rm -f "$BATS_TEST_TMPDIR/listening"
	(
		close_extra_fds
		cd "$BATS_TEST_TMPDIR" || exit 1
		exec ip netns exec "$NS_DST" "$STASIS" restore --remote --address "$DST_IP" \
			--port "$port" --status-fd 3 -v4 -o "$BATS_TEST_TMPDIR/restore.log" "$@" \
			3>"$BATS_TEST_TMPDIR/listening"
	) </dev/null >"$BATS_TEST_TMPDIR/restore.out" 2>&1 &
	RPID=$!
	wait_listening "$BATS_TEST_TMPDIR/listening" "$RPID" "stasis restore --remote" || return 1
	own_pid "$RPID" "$STASIS"
}

# stasis page-server on the destination, in the background: SPID.
start_page_server() { # [ARGS...]
	rm -f "$BATS_TEST_TMPDIR/listening"
	(
		close_extra_fds
		exec ip netns exec "$NS_DST" "$STASIS" page-server -D "$IMG" --address "$DST_IP" \
			--port "$PORT" --status-fd 3 -v4 -o "$BATS_TEST_TMPDIR/page-server.log" "$@" \
			3>"$BATS_TEST_TMPDIR/listening"
	) </dev/null >"$BATS_TEST_TMPDIR/page-server.out" 2>&1 &
	SPID=$!
	wait_listening "$BATS_TEST_TMPDIR/listening" "$SPID" "stasis page-server" || return 1
	own_pid "$SPID" "$STASIS"
}

# stasis dump (or COMMAND, for remote_cmd) of $PID from the source host to
# the destination; its status goes to DUMP_RC (no failure here). ARGS are
# added.
remote_cmd() { # COMMAND [ARGS...]
	local cmd=$1
	shift
	DUMP_RC=0
	{
		(
			close_extra_fds
			cd "$BATS_TEST_TMPDIR" || exit 1
			exec ip netns exec "$NS_SRC" "$STASIS" "$cmd" -t "$PID" --address "$DST_IP" \
				-v4 -o "$BATS_TEST_TMPDIR/dump.log" "$@"
		) </dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 || DUMP_RC=$?
	} 2>/dev/null
}

remote_dump() { # [ARGS...]
	remote_cmd dump "$@"
}

# The source was dumped and killed: it is gone (bash reaps it at once, and
# the restored copy may already have its PID: another start time), and it
# was killed, not ended by itself.
reap_source() {
	local i=0
	while [ "$(proc_stat_field "$PID" 22 2>/dev/null)" = "$PID_START" ] && alive "$PID"; do
		i=$((i + 1))
		[ $i -ge 200 ] && { die_with_logs "PID $PID runs on 10 s after a successful dump"; return 1; }
		sleep 0.05
	done
	STATUS=0
	wait "$PID" 2>/dev/null || STATUS=$?
	[ "$STATUS" -gt 128 ] || die_with_logs "PID $PID exited by itself (status $STATUS), it was not killed by the dump"
}

# stasis restore -D $IMG on the destination, checked as check_restored does.
restore_on_dst() {
	(
		close_extra_fds
		cd "$BATS_TEST_TMPDIR" || exit 1
		exec ip netns exec "$NS_DST" "$STASIS" restore -D "$IMG" -v4 -o restore.log
	) </dev/null >"$BATS_TEST_TMPDIR/restore.out" 2>&1 &
	RPID=$!
	own_pid "$RPID"
	check_restored
}

# Wait for the restored copy of $PID, tell it GO, and require PASS and
# exit status 0 from the restore (the program's status).
check_restored() {
	wait_restored || return 1
	touch "$GOFILE"
	wait_child "$RPID" "$STASIS_TEST_WAIT" ||
		die_with_logs "stasis restore still runs ${STASIS_TEST_WAIT}s after GO" || return 1
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis restore exited with status $STATUS" || return 1
	check_pass_log
}

# What a failed dump must leave unchanged (proc_snapshot), but the
# scheduler state: a running program may be caught runnable or asleep.
snapshot() { # PID
	proc_snapshot "$1" | grep -v '^State:'
}

# The dump failed, and the source is exactly as it was (SNAP), running,
# untraced; then it passes its own check.
source_untouched() { # SNAPSHOT
	[ "$DUMP_RC" -ne 0 ] || die_with_logs "stasis dump succeeded; it should have failed" || return 1
	assert_running_untraced "$PID" || return 1
	diff -u "$1" <(snapshot "$PID") || die_with_logs "the source changed" || return 1
	go_and_check_original
}

# A tiny TCP proxy on the destination: LISTEN_PORT -> $DST_IP:$PORT.
# cut N: forwards N bytes of the sender's stream, then resets both sides.
# cut-second N: the first connection passes whole, the second is cut so.
# drop-ack: forwards everything to the receiver, but from the receiver only
# its first line (READY); when the receiver closes, resets the sender.
start_proxy() { # LISTEN_PORT MODE [N]
	cat >"$BATS_TEST_TMPDIR/proxy.py" <<'EOF'
import os, socket, struct, sys, threading
lport, mode = int(sys.argv[1]), sys.argv[4]
cut = int(sys.argv[5])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((sys.argv[2], lport))
ls.listen(1)
sys.stdout.write("listening\n"); sys.stdout.flush()
if mode == "cut-second":
    # the first connection passes whole: a link of a chain
    c, _ = ls.accept()
    s = socket.create_connection((sys.argv[2], int(sys.argv[3])))
    # a reset or a broken pipe ends that direction as an end of file
    # would: an exception here would end the proxy, and the second link
    # would find nothing listening
    def pump(a, b):
        while True:
            try:
                d = a.recv(65536)
                if d:
                    b.sendall(d)
                    continue
            except OSError as e:
                print("first link: %s" % e, flush=True)
            try: b.shutdown(socket.SHUT_WR)
            except OSError: pass
            return
    t = threading.Thread(target=pump, args=(c, s), daemon=True); t.start()
    pump(s, c); t.join(); c.close(); s.close()
    mode = "cut"
c, _ = ls.accept()
s = socket.create_connection((sys.argv[2], int(sys.argv[3])))
def reset(k):
    k.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    k.close()
def up():
    n = 0
    while True:
        d = c.recv(65536)
        if not d:
            s.shutdown(socket.SHUT_WR)
            return
        if mode == "cut" and n + len(d) >= cut:
            s.sendall(d[: cut - n])
            print("cut after %d bytes" % cut, flush=True)
            reset(c); reset(s); os._exit(0)
        s.sendall(d)
        n += len(d)
def down():
    n = 0
    while True:
        d = s.recv(65536)
        if not d:
            break
        if mode == "drop-ack" and n >= 6:
            print("dropped %r" % d, flush=True)
            continue
        c.sendall(d)
        n += len(d)
    reset(c); os._exit(0)
threading.Thread(target=up, daemon=True).start()
down()
EOF
	(
		close_extra_fds
		exec ip netns exec "$NS_DST" python3 "$BATS_TEST_TMPDIR/proxy.py" "$1" "$DST_IP" "$PORT" "$2" "${3:-0}"
	) </dev/null >"$BATS_TEST_TMPDIR/proxy.out" 2>&1 &
	XPID=$!
	local i=0
	until grep -q listening "$BATS_TEST_TMPDIR/proxy.out" 2>/dev/null; do
		i=$((i + 1))
		[ $i -ge 100 ] && { echo "FAILED: the proxy did not start"; cat "$BATS_TEST_TMPDIR/proxy.out"; return 1; }
		sleep 0.05
	done
	own_pid "$XPID"
}

# The image files a checkpoint leaves: none may exist after an image-less
# migration.
no_images_written() {
	local found
	found=$(find "$BATS_TEST_TMPDIR" -name '*.img' -o -name '.stasis-unpack*' | head -n 5)
	[ -z "$found" ] || die_with_logs "images were written: $found"
}

# ---------------------------------------------------------------- the tool

@test "stasis-transfer carries a stream unchanged, confirms it, and warns without --tls" {
	"$MKSTREAM" -p 3000 >"$BATS_TEST_TMPDIR/stream" || { echo "FAILED: stasis-test-mkstream failed"; return 1; }
	head -c 5000000 /dev/urandom >"$BATS_TEST_TMPDIR/random"

	# a checkpoint stream, its frames checked on the way
	rm -f "$BATS_TEST_TMPDIR/listening"
	on_dst "$XFER" --listen "$DST_IP:$PORT" --status-fd 3 3>"$BATS_TEST_TMPDIR/listening" \
		>"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/recv.err" &
	local r=$!
	own_pid "$r" "$XFER"
	wait_listening "$BATS_TEST_TMPDIR/listening" "$r" receiver
	run on_src "$XFER" --to "$DST_IP:$PORT" --ack-fd 3 <"$BATS_TEST_TMPDIR/stream" 3>"$BATS_TEST_TMPDIR/ack"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[[ $output == *"warning: no --tls: the stream goes to $DST_IP:$PORT in the clear"* ]]
	wait "$r"
	grep -q "warning: no --tls: the stream arrives in the clear" "$BATS_TEST_TMPDIR/recv.err"
	cmp "$BATS_TEST_TMPDIR/stream" "$BATS_TEST_TMPDIR/out"
	[ "$(cat "$BATS_TEST_TMPDIR/ack")" = OK ]

	# any bytes with --raw, over TLS
	on_dst "$XFER" --listen "$DST_IP:$PORT" --raw --status-fd 3 "${TLS_DST[@]}" \
		3>"$BATS_TEST_TMPDIR/listening2" >"$BATS_TEST_TMPDIR/out2" 2>"$BATS_TEST_TMPDIR/recv2.err" &
	r=$!
	own_pid "$r" "$XFER"
	wait_listening "$BATS_TEST_TMPDIR/listening2" "$r" receiver
	run on_src "$XFER" --to "$DST_IP:$PORT" "${TLS_SRC[@]}" <"$BATS_TEST_TMPDIR/random"
	[ "$status" -eq 0 ] || { echo "$output"; cat "$BATS_TEST_TMPDIR/recv2.err"; false; }
	[[ $output != *warning* ]]
	wait "$r"
	cmp "$BATS_TEST_TMPDIR/random" "$BATS_TEST_TMPDIR/out2"
}

@test "stasis-transfer: a truncated or damaged checkpoint is not confirmed, nor completed downstream" {
	"$MKSTREAM" -p 3000 >"$BATS_TEST_TMPDIR/stream" || { echo "FAILED: stasis-test-mkstream failed"; return 1; }
	head -c 2000000 "$BATS_TEST_TMPDIR/stream" >"$BATS_TEST_TMPDIR/short"
	cp "$BATS_TEST_TMPDIR/stream" "$BATS_TEST_TMPDIR/bad"
	# the magic of the first frame
	printf 'XXXX' | dd of="$BATS_TEST_TMPDIR/bad" bs=1 seek=0 conv=notrunc 2>/dev/null
	local f r
	for f in short bad; do
		rm -f "$BATS_TEST_TMPDIR/listening" "$BATS_TEST_TMPDIR/ack"
		(
			on_dst "$XFER" --listen "$DST_IP:$PORT" --status-fd 3 3>"$BATS_TEST_TMPDIR/listening" \
				2>"$BATS_TEST_TMPDIR/recv.err" |
				stasis-serialize unpack -D "$BATS_TEST_TMPDIR/img-$f" 2>"$BATS_TEST_TMPDIR/unpack.err"
		) &
		r=$!
		wait_listening "$BATS_TEST_TMPDIR/listening" "$r" receiver
		run on_src "$XFER" --to "$DST_IP:$PORT" --ack-fd 3 <"$BATS_TEST_TMPDIR/$f" 3>"$BATS_TEST_TMPDIR/ack"
		echo "$output"
		[ "$status" -ne 0 ]
		# the receiver's reason, whether it came before the end of the
		# stream (refused) or after (did not confirm)
		[[ $output == *"the receiver $DST_IP:$PORT "*": the stream from $SRC_IP:"*" is not a complete, valid checkpoint"* ]]
		[ ! -s "$BATS_TEST_TMPDIR/ack" ]
		wait "$r" || true
		cat "$BATS_TEST_TMPDIR/recv.err"
		grep -qE "truncated checkpoint|not a stasis image stream" "$BATS_TEST_TMPDIR/recv.err"
		# the consumer never saw a trailer: nothing stored
		[ ! -e "$BATS_TEST_TMPDIR/img-$f/inventory.img" ]
	done
}

@test "stasis-transfer --ps-socket: both ends on a socket pair the caller made, with TLS" {
	"$MKSTREAM" -p 1000 >"$BATS_TEST_TMPDIR/stream" || { echo "FAILED: stasis-test-mkstream failed"; return 1; }
	run python3 - "$XFER" "$BATS_TEST_TMPDIR" "$PKI" "$DST_IP" <<'EOF'
import socket, subprocess, sys
xfer, tmp, pki, name = sys.argv[1:5]
a, b = socket.socketpair()
tls = ["--tls", "--tls-cacert", pki + "/ca.pem"]
with open(tmp + "/out", "wb") as out:
    recv = subprocess.Popen([xfer, "--listen", "--ps-socket", str(b.fileno())] + tls +
                            ["--tls-cert", pki + "/dst.pem", "--tls-key", pki + "/dst-key.pem"],
                            stdout=out, pass_fds=[b.fileno()])
with open(tmp + "/stream", "rb") as inp:
    send = subprocess.run([xfer, "--ps-socket", str(a.fileno()), "--to", name] + tls +
                          ["--tls-cert", pki + "/src.pem", "--tls-key", pki + "/src-key.pem"],
                          stdin=inp, pass_fds=[a.fileno()])
print("sender", send.returncode, "receiver", recv.wait())
EOF
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"sender 0 receiver 0"* ]]
	cmp "$BATS_TEST_TMPDIR/stream" "$BATS_TEST_TMPDIR/out"
}

@test "stasis-transfer --daemon returns once listening and writes --pidfile; the daemon serves one stream" {
	"$MKSTREAM" -p 1000 >"$BATS_TEST_TMPDIR/stream" || { echo "FAILED: stasis-test-mkstream failed"; return 1; }
	# (not with run: the daemon holds its stdout)
	on_dst "$XFER" --listen "$DST_IP:$PORT" --daemon --pidfile "$BATS_TEST_TMPDIR/pid" \
		>"$BATS_TEST_TMPDIR/out" 2>/dev/null
	local d
	d=$(cat "$BATS_TEST_TMPDIR/pid")
	own_pid "$d" "$XFER"
	alive "$d"
	[ "$(proc_stat_field "$d" 6)" = "$d" ] # its own session
	# listening already: the sender connects at once
	on_src "$XFER" --to "$DST_IP:$PORT" <"$BATS_TEST_TMPDIR/stream" 2>/dev/null
	wait_gone "$d" 10
	cmp "$BATS_TEST_TMPDIR/stream" "$BATS_TEST_TMPDIR/out"
}

# ---------------------------------------------------------------- migration

@test "migration with TLS: the process moves to the other host, nothing on disk, and passes" {
	start_prog_on_src heap
	start_remote_restore "${TLS_DST[@]}"
	remote_dump --remote --port "$PORT" "${TLS_SRC[@]}"
	[ "$DUMP_RC" -eq 0 ] || die_with_logs "stasis dump --remote failed ($DUMP_RC)"
	reap_source
	check_restored
	# it ran on the destination host
	[ "$(on_dst readlink /proc/self/ns/net)" != "$(on_src readlink /proc/self/ns/net)" ]
	grep -q "TLS with $DST_IP:$PORT: (TLS1" "$BATS_TEST_TMPDIR/dump.log"
	grep -q "stasis-transfer: TLS with $SRC_IP:.*subject CN=src" "$BATS_TEST_TMPDIR/restore.log"
	grep -q "the receiver confirmed" "$BATS_TEST_TMPDIR/dump.log"
	no_images_written
}

@test "page server with TLS: dump --page-server stores the checkpoint on the other host, restored there" {
	start_prog_on_src heap
	start_page_server "${TLS_DST[@]}"
	remote_dump --page-server --port "$PORT" "${TLS_SRC[@]}"
	[ "$DUMP_RC" -eq 0 ] || die_with_logs "stasis dump --page-server failed ($DUMP_RC)"
	reap_source
	wait_child "$SPID" 10 || die_with_logs "the page server still runs after the dump"
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis page-server exited with $STATUS"
	[ -s "$IMG/inventory.img" ] || die_with_logs "no checkpoint in $IMG"
	restore_on_dst
}

@test "iterative migration through page servers with TLS: two pre-dumps and the dump arrive as a chain, restored there" {
	local top=$BATS_TEST_TMPDIR/chain i
	start_prog_on_src dirtier 16
	IMG=$top/1
	start_page_server "${TLS_DST[@]}"
	remote_cmd pre-dump --page-server --port "$PORT" "${TLS_SRC[@]}"
	[ "$DUMP_RC" -eq 0 ] || die_with_logs "stasis pre-dump --page-server failed ($DUMP_RC)"
	wait_child "$SPID" 10 && [ "$STATUS" -eq 0 ] || die_with_logs "the first page server failed"
	alive "$PID" || die_with_logs "the pre-dump did not leave the source running"
	for i in 1 2; do
		kill -USR1 "$PID"
		for _ in $(seq 100); do grep -q "^DIRTIED $i " "$LOG" && break; sleep 0.05; done
		IMG=$top/$((i + 1))
		start_page_server --prev-images-dir "../$i" "${TLS_DST[@]}"
		if [ "$i" = 1 ]; then
			remote_cmd pre-dump --page-server --port "$PORT" --prev-images-dir ../1 "${TLS_SRC[@]}"
		else
			remote_dump --page-server --port "$PORT" --track-mem --prev-images-dir ../2 "${TLS_SRC[@]}"
		fi
		[ "$DUMP_RC" -eq 0 ] || die_with_logs "link $((i + 1)) failed ($DUMP_RC)"
		wait_child "$SPID" 10 && [ "$STATUS" -eq 0 ] || die_with_logs "page server $((i + 1)) failed"
		[ "$(readlink "$IMG/parent")" = "../$i" ]
		# the 256 pages rewritten and a few more, not the 16 MiB
		[ "$(cat "$IMG"/pages-*.img | wc -c)" -lt $((2 << 20)) ] || die_with_logs "link $((i + 1)) holds more than the pages written"
	done
	reap_source
	restore_on_dst
}

# "Memory pages written" (or another line NAME) of --display-stats in dump.out.
shown_pages() { # [NAME]
	awk -F': ' -v n="${1:-Memory pages written}" '$1 == n { print $2 + 0; exit }' \
		"$BATS_TEST_TMPDIR/dump.out"
}

# Sends SIGUSR1 to dirtier and waits for its I-th DIRTIED line.
dirty_slice() { # I
	kill -USR1 "$PID"
	for _ in $(seq 100); do grep -q "^DIRTIED $1 " "$LOG" && return 0; sleep 0.05; done
	die_with_logs "dirtier did not report DIRTIED $1"
}

# Two pre-dumps and the dump of $PID (dirtier 16), image-less, to the
# restore started already; each link's pages shown and checked. ARGS are
# added to each.
migrate_chain() { # [ARGS...]
	local w
	remote_cmd pre-dump --remote --port "$PORT" --display-stats "$@"
	[ "$DUMP_RC" -eq 0 ] || die_with_logs "pre-dump 1 --remote failed ($DUMP_RC)" || return 1
	assert_running_untraced "$PID" || return 1
	w=$(shown_pages)
	echo "link 1: $w pages written"
	[ "$w" -ge 4096 ] || die_with_logs "the first pre-dump wrote $w pages, not the 16 MiB" || return 1
	dirty_slice 1 || return 1
	remote_cmd pre-dump --remote --port "$PORT" --display-stats "$@"
	[ "$DUMP_RC" -eq 0 ] || die_with_logs "pre-dump 2 --remote failed ($DUMP_RC)" || return 1
	w=$(shown_pages)
	echo "link 2: $w pages written, $(shown_pages 'Memory pages skipped from parent') from the parent"
	[ "$w" -ge 256 ] && [ "$w" -le 400 ] || die_with_logs "link 2 wrote $w pages, not the 256 rewritten and a few more" || return 1
	[ "$(shown_pages 'Memory pages skipped from parent')" -ge 3800 ] || die_with_logs "link 2 took too little from its parent" || return 1
	dirty_slice 2 || return 1
	remote_dump --remote --port "$PORT" --track-mem --display-stats "$@"
	[ "$DUMP_RC" -eq 0 ] || die_with_logs "the dump --remote failed ($DUMP_RC)" || return 1
	w=$(shown_pages)
	echo "link 3: $w pages written"
	[ "$w" -ge 256 ] && [ "$w" -le 400 ] || die_with_logs "the dump wrote $w pages, not the 256 rewritten and a few more" || return 1
	grep -q "link 3 of the chain received (dump, kept in memory)" "$BATS_TEST_TMPDIR/restore.log" ||
		die_with_logs "the destination did not take the dump as the chain's third link"
}

# No link of a chain is left in memory on the destination.
no_links_left() {
	local left
	# those the resolver logged: other sessions' may be in /dev/shm too
	left=$(grep -aho '/dev/shm/stasis-chain\.[A-Za-z0-9]*' "$BATS_TEST_TMPDIR/restore.log" 2>/dev/null |
		sort -u | while read -r d; do [ ! -e "$d" ] || echo "$d"; done)
	[ -z "$left" ] || die_with_logs "links left behind: $left"
}

@test "image-less iterative migration with TLS: two pre-dumps and the dump over --remote, each link only the pages written since, nothing on disk" {
	start_prog_on_src dirtier 16
	start_remote_restore "${TLS_DST[@]}"
	migrate_chain "${TLS_SRC[@]}"
	reap_source
	check_restored
	[ "$(on_dst readlink /proc/self/ns/net)" != "$(on_src readlink /proc/self/ns/net)" ]
	[ "$(grep -c "the receiver confirmed" "$BATS_TEST_TMPDIR/dump.log")" -eq 3 ]
	no_images_written
	no_links_left
}

@test "image-less iterative migration sealed (-e): every link with its own keys, opened on the destination" {
	start_prog_on_src dirtier 16
	start_remote_restore -e "${TLS_DST[@]}"
	migrate_chain -e --tls-cert "$PKI/dst.pem" "${TLS_SRC[@]}"
	[ "$(grep -c "link [123] of the chain is sealed" "$BATS_TEST_TMPDIR/restore.log")" -eq 3 ]
	reap_source
	check_restored
	no_images_written
	no_links_left
}

@test "image-less one-shot migration sealed (-e): a whole dump goes through as it arrives, opened on the destination" {
	start_prog_on_src heap
	start_remote_restore -e "${TLS_DST[@]}"
	remote_dump --remote --port "$PORT" -e --tls-cert "$PKI/dst.pem" "${TLS_SRC[@]}"
	[ "$DUMP_RC" -eq 0 ] || die_with_logs "stasis dump --remote -e failed ($DUMP_RC)"
	reap_source
	check_restored
	grep -q "link 1 of the chain is sealed" "$BATS_TEST_TMPDIR/restore.log"
	grep -q "link 1 of the chain received (dump, whole, passed through)" "$BATS_TEST_TMPDIR/restore.log"
	no_images_written
	no_links_left
}

# A plain pre-dump sent to a restore --remote -e (with ARGS): refused on
# both sides, the source running untraced.
plain_link_refused() { # [RESTORE ARGS...]
	start_prog_on_src dirtier 4
	start_remote_restore "$@" -e "${TLS_DST[@]}"
	remote_cmd pre-dump --remote --port "$PORT" "${TLS_SRC[@]}"
	[ "$DUMP_RC" -ne 0 ] || die_with_logs "the plain pre-dump was accepted" || return 1
	assert_running_untraced "$PID" || return 1
	wait_child "$RPID" 10 || die_with_logs "stasis restore --remote still runs" || return 1
	[ "$STATUS" -ne 0 ] || die_with_logs "stasis restore --remote exited 0" || return 1
	grep -q "is not sealed, and a sealed chain was expected" "$BATS_TEST_TMPDIR/restore.out" ||
		die_with_logs "no clear message"
}

# The lazy-pages daemons of this test's restores (not our children once a
# restore -d returned): their PIDs, each owned for the clean-up.
our_daemons() {
	local p
	for p in $(pgrep -f "stasis-lazy-pages -W $BATS_TEST_TMPDIR" || true); do
		own_pid "$p"
		echo "$p"
	done
}

# Until the restore's log says that every page is in, and the daemon and
# the links it was served from are gone.
wait_lazy_done_remote() {
	local i
	for i in $(seq $((STASIS_TEST_WAIT * 10))); do
		grep -q "stasis-lazy-pages: every page is in" "$BATS_TEST_TMPDIR/restore.log" &&
			[ -z "$(our_daemons)" ] && no_links_left 2>/dev/null && return 0
		sleep 0.1
	done
	die_with_logs "the lazy-pages daemon did not put every page in, or it or the links stayed"
}

@test "image-less iterative migration restored lazily (restore --remote --lazy-pages): the tree runs before its memory is in, the daemon fills it from the links kept in memory, nothing on disk" {
	start_prog_on_src dirtier 16
	start_remote_restore --lazy-pages --display-stats "${TLS_DST[@]}"
	[ -n "$(our_daemons)" ] || die_with_logs "restore --remote --lazy-pages started no lazy-pages daemon"
	migrate_chain "${TLS_SRC[@]}"
	reap_source
	check_restored
	local lazy
	lazy=$(awk -F': ' '$1 == "Pages left lazy" { print $2 + 0; exit }' "$BATS_TEST_TMPDIR/restore.out")
	echo "pages left lazy: $lazy"
	[ "${lazy:-0}" -ge 4096 ] || die_with_logs "only ${lazy:-no} pages were left lazy (16 MiB is 4096)"
	grep -q "pages left to the lazy-pages daemon, not streamed" "$BATS_TEST_TMPDIR/restore.log"
	wait_lazy_done_remote
	no_images_written
}

@test "image-less one-shot migration restored lazily and detached (-d): the restore returns once the tree runs; the daemon and the dump it serves from stay until every page is in, then go" {
	start_prog_on_src heap
	start_remote_restore --lazy-pages -d "${TLS_DST[@]}"
	remote_dump --remote --port "$PORT" "${TLS_SRC[@]}"
	[ "$DUMP_RC" -eq 0 ] || die_with_logs "stasis dump --remote failed ($DUMP_RC)"
	reap_source
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "stasis restore -d did not return"
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis restore -d exited with status $STATUS"
	wait_restored
	# a whole dump is kept too: its pages are served from memory
	grep -q "link 1 of the chain received (dump, kept in memory)" "$BATS_TEST_TMPDIR/restore.log"
	wait_lazy_done_remote
	touch "$GOFILE"
	wait_gone "$PID" "$STASIS_TEST_WAIT" || die_with_logs "the restored program did not finish after GO"
	check_pass_log
	no_images_written
}

@test "image-less migration restored lazily: a refused link stops the daemon and the restore, nothing is left, the source runs on" {
	plain_link_refused --lazy-pages -d
	local i
	for i in $(seq 50); do [ -z "$(our_daemons)" ] && break; sleep 0.1; done
	[ -z "$(our_daemons)" ] || die_with_logs "the lazy-pages daemon outlived the failed restore"
	no_links_left
	go_and_check_original
}

@test "image-less iterative migration: the restore waits for the source's PIDs however late they are freed after the last link" {
	# the source's parent reaps it 2 s after it died: its PID stays in use
	# that long after the dump, while the chain is long in hand
	cat >"$BATS_TEST_TMPDIR/late.py" <<'EOF'
import os, sys, time
pid = os.fork()
if pid == 0:
    os.setsid()
    os.execv(sys.argv[2], sys.argv[2:])
with open(sys.argv[1], "w") as f:
    f.write("%d\n" % pid)
os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
time.sleep(2)
os.waitpid(pid, 0)
EOF
	PROG=$(readlink -f "$TESTPROGS/dirtier")
	LOG=$BATS_TEST_TMPDIR/dirtier.log
	(
		close_extra_fds
		exec ip netns exec "$NS_SRC" python3 "$BATS_TEST_TMPDIR/late.py" \
			"$BATS_TEST_TMPDIR/late.pid" "$PROG" "$GOFILE" 1 </dev/null >"$LOG" 2>&1
	) &
	local late=$!
	own_pid "$late"
	for _ in $(seq 100); do [ -s "$BATS_TEST_TMPDIR/late.pid" ] && break; sleep 0.05; done
	PID=$(cat "$BATS_TEST_TMPDIR/late.pid")
	own_pid "$PID" "$PROG"
	wait_ready "$LOG" "$PID" 20
	start_remote_restore "${TLS_DST[@]}"
	# a small tree: the whole resolved stream fits in the pipe to
	# stasis-inject, which reads nothing until the PID is free
	remote_cmd pre-dump --remote --port "$PORT" "${TLS_SRC[@]}"
	[ "$DUMP_RC" -eq 0 ] || die_with_logs "pre-dump 1 failed"
	dirty_slice 1
	remote_cmd pre-dump --remote --port "$PORT" "${TLS_SRC[@]}"
	[ "$DUMP_RC" -eq 0 ] || die_with_logs "pre-dump 2 failed"
	remote_dump --remote --port "$PORT" --track-mem "${TLS_SRC[@]}"
	[ "$DUMP_RC" -eq 0 ] || die_with_logs "the dump failed"
	grep -q "waiting for PID $PID" "$BATS_TEST_TMPDIR/restore.log" ||
		die_with_logs "the restore did not have to wait for the source's PID"
	wait_child "$late" 20
	check_restored
	no_links_left
}

@test "image-less migration: a plain link where -e expects sealed ones is refused, and the source runs on" {
	plain_link_refused
	no_links_left
	go_and_check_original
}

@test "image-less iterative migration: a connection cut in the second pre-dump leaves the source running and the destination with nothing" {
	start_prog_on_src dirtier 16
	start_remote_restore "${TLS_DST[@]}"
	# the proxy passes the first link whole, and cuts the second
	start_proxy 4500 cut-second $((1 << 20))
	remote_cmd pre-dump --remote --port 4500 "${TLS_SRC[@]}"
	[ "$DUMP_RC" -eq 0 ] || die_with_logs "pre-dump 1 failed ($DUMP_RC)"
	dirty_slice 1
	local snap=$BATS_TEST_TMPDIR/snap
	snapshot "$PID" >"$snap"
	remote_cmd pre-dump --remote --port 4500 "${TLS_SRC[@]}"
	grep -q "cut after" "$BATS_TEST_TMPDIR/proxy.out" || die_with_logs "the proxy did not cut"
	[ "$DUMP_RC" -ne 0 ]
	assert_running_untraced "$PID"
	diff -u "$snap" <(snapshot "$PID") || die_with_logs "the source changed"
	wait_child "$RPID" 10 || die_with_logs "stasis restore --remote still runs after the cut"
	[ "$STATUS" -ne 0 ]
	grep -q "the stream is incomplete" "$BATS_TEST_TMPDIR/restore.out"
	no_links_left
	no_images_written
	go_and_check_original
}

@test "image-less iterative migration over --ps-socket: every link on the one connection the caller made" {
	start_prog_on_src dirtier 16
	# the destination: a listener that accepts once and runs stasis restore on fd 5
	cat >"$BATS_TEST_TMPDIR/accept.py" <<'EOF'
import os, socket, sys
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((sys.argv[1], int(sys.argv[2])))
ls.listen(1)
open(sys.argv[3], "w").write("\0")
s, _ = ls.accept()
ls.close()
os.dup2(s.fileno(), 5)
os.execvp(sys.argv[4], sys.argv[4:])
EOF
	rm -f "$BATS_TEST_TMPDIR/listening"
	(
		close_extra_fds
		cd "$BATS_TEST_TMPDIR" || exit 1
		exec ip netns exec "$NS_DST" python3 "$BATS_TEST_TMPDIR/accept.py" "$DST_IP" "$PORT" \
			"$BATS_TEST_TMPDIR/listening" "$STASIS" restore --remote --ps-socket 5 -v4 \
			-o "$BATS_TEST_TMPDIR/restore.log" "${TLS_DST[@]}"
	) </dev/null >"$BATS_TEST_TMPDIR/restore.out" 2>&1 &
	RPID=$!
	wait_listening "$BATS_TEST_TMPDIR/listening" "$RPID" "the accepting helper"
	own_pid "$RPID"
	# the source: one connection (fd 5) for the three links, dirtied between
	cat >"$BATS_TEST_TMPDIR/links.sh" <<'EOF'
set -e
exec 5<>"/dev/tcp/$DST_IP/$PORT"
link() { "$STASIS" "$@" -t "$PID" --remote --ps-socket 5 --address "$DST_IP" "${TLS_SRC[@]}" \
	-v4 -o "$BATS_TEST_TMPDIR/dump.log"; }
dirty() {
	kill -USR1 "$PID"
	for _ in $(seq 100); do grep -q "^DIRTIED $1 " "$LOG" && return 0; sleep 0.05; done
	return 1
}
link pre-dump
dirty 1
link pre-dump
dirty 2
link dump --track-mem
EOF
	local rc=0
	{
		DST_IP=$DST_IP PORT=$PORT STASIS=$STASIS PID=$PID LOG=$LOG \
			BATS_TEST_TMPDIR=$BATS_TEST_TMPDIR TLS_SRC="${TLS_SRC[*]}" \
			ip netns exec "$NS_SRC" bash -c 'TLS_SRC=($TLS_SRC); . "$BATS_TEST_TMPDIR/links.sh"' \
			</dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 || rc=$?
	} 2>/dev/null
	[ "$rc" -eq 0 ] || die_with_logs "the links over --ps-socket failed ($rc)"
	grep -q "link 3 of the chain received (dump, kept in memory)" "$BATS_TEST_TMPDIR/restore.log" ||
		die_with_logs "the destination did not take the dump as the chain's third link"
	reap_source
	check_restored
	no_images_written
	no_links_left
}

# ---------------------------------------------------------------- refused

@test "a wrong CA is refused on either side with a clear message; the source runs on untouched" {
	start_prog_on_src heap
	local snap=$BATS_TEST_TMPDIR/snap
	snapshot "$PID" >"$snap"
	start_remote_restore "${TLS_DST[@]}"

	# the sender trusts another CA: the receiver's certificate is refused
	remote_dump --remote --port "$PORT" --tls --tls-cacert "$PKI/ca2.pem" \
		--tls-cert "$PKI/src.pem" --tls-key "$PKI/src-key.pem"
	grep -q "refused the certificate of the receiver $DST_IP:$PORT (subject CN=dst.*issuer is unknown" \
		"$BATS_TEST_TMPDIR/dump.out" || die_with_logs "no clear message from the sender"
	[ "$DUMP_RC" -ne 0 ]
	assert_running_untraced "$PID"
	diff -u "$snap" <(snapshot "$PID")

	# the sender's certificate comes from another CA: the receiver refuses it
	remote_dump --remote --port "$PORT" --tls --tls-cacert "$PKI/ca.pem" \
		--tls-cert "$PKI/foreign.pem" --tls-key "$PKI/foreign-key.pem"
	grep -q "the receiver refused the connection" "$BATS_TEST_TMPDIR/dump.out" ||
		die_with_logs "no clear message from the sender"
	grep -q "refused the connection from $SRC_IP:.*certificate of the sender.*issuer is unknown" \
		"$BATS_TEST_TMPDIR/restore.out" || die_with_logs "no clear message from the receiver"
	source_untouched "$snap"
}

@test "a revoked sender certificate is refused with a clear message; the source runs on untouched" {
	start_prog_on_src heap
	local snap=$BATS_TEST_TMPDIR/snap
	snapshot "$PID" >"$snap"
	start_remote_restore "${TLS_DST[@]}"
	remote_dump --remote --port "$PORT" --tls --tls-cacert "$PKI/ca.pem" \
		--tls-cert "$PKI/revoked.pem" --tls-key "$PKI/revoked-key.pem"
	grep -q "the receiver refused the connection.*not revoked" "$BATS_TEST_TMPDIR/dump.out" ||
		die_with_logs "no clear message from the sender"
	grep -q "certificate of the sender $SRC_IP:.*CN=revoked.*The certificate chain is revoked" \
		"$BATS_TEST_TMPDIR/restore.out" || die_with_logs "no clear message from the receiver"
	source_untouched "$snap"
}

@test "a receiver certificate for another name is refused, and accepted with --tls-no-cn-verify" {
	start_prog_on_src heap
	local snap=$BATS_TEST_TMPDIR/snap
	snapshot "$PID" >"$snap"
	start_remote_restore --tls --tls-cacert "$PKI/ca.pem" --tls-cacrl "$PKI/crl.pem" \
		--tls-cert "$PKI/other.pem" --tls-key "$PKI/other-key.pem"
	remote_dump --remote --port "$PORT" "${TLS_SRC[@]}"
	grep -q "certificate of the receiver $DST_IP:$PORT (subject CN=other; names: .*other.example.*does not match.*It does not name $DST_IP" \
		"$BATS_TEST_TMPDIR/dump.out" || die_with_logs "no clear message from the sender"
	[ "$DUMP_RC" -ne 0 ]
	assert_running_untraced "$PID"
	diff -u "$snap" <(snapshot "$PID")

	# the receiver still waits for a sender it accepts
	remote_dump --remote --port "$PORT" "${TLS_SRC[@]}" --tls-no-cn-verify
	[ "$DUMP_RC" -eq 0 ] || die_with_logs "stasis dump --tls-no-cn-verify failed ($DUMP_RC)"
	reap_source
	check_restored
}

@test "a plain sender and a TLS receiver refuse each other with a clear message" {
	start_prog_on_src heap
	local snap=$BATS_TEST_TMPDIR/snap
	snapshot "$PID" >"$snap"
	start_remote_restore "${TLS_DST[@]}"
	remote_dump --remote --port "$PORT"
	grep -q "this receiver requires TLS: give the sender --tls" "$BATS_TEST_TMPDIR/dump.out" ||
		die_with_logs "no clear message from the sender"
	[ "$DUMP_RC" -ne 0 ]
	start_remote_restore 4434
	remote_dump --remote --port 4434 "${TLS_SRC[@]}"
	grep -q "does the receiver use --tls" "$BATS_TEST_TMPDIR/dump.out" ||
		die_with_logs "no clear message from the sender"
	grep -q "speaks TLS: start the receiver with --tls as well" "$BATS_TEST_TMPDIR/restore.out" ||
		die_with_logs "no clear message from the receiver"
	source_untouched "$snap"
}

# ---------------------------------------------------------------- cut

@test "a connection cut in mid-stream leaves the source running untouched" {
	start_prog_on_src bigmem 64
	local snap=$BATS_TEST_TMPDIR/snap
	snapshot "$PID" >"$snap"
	start_remote_restore "${TLS_DST[@]}"
	start_proxy 4500 cut $((8 << 20))
	remote_dump --remote --port 4500 "${TLS_SRC[@]}"
	grep -q "cut after" "$BATS_TEST_TMPDIR/proxy.out" || die_with_logs "the proxy did not cut"
	grep -qE "was cut|reset" "$BATS_TEST_TMPDIR/dump.out" || die_with_logs "no message about the cut"
	# the cut is the one line: not collect's failure after it
	[ "$(grep -c error: "$BATS_TEST_TMPDIR/dump.out")" -eq 1 ] || die_with_logs "more than the one line of the cut"
	source_untouched "$snap"
	# the receiving side restored nothing and gave up
	wait_child "$RPID" 10 || die_with_logs "stasis restore --remote still runs after the cut"
	[ "$STATUS" -ne 0 ]
	grep -q "the stream is incomplete" "$BATS_TEST_TMPDIR/restore.out"
}

@test "the receiver killed in mid-transfer leaves the source running untouched" {
	start_prog_on_src bigmem 48
	local snap=$BATS_TEST_TMPDIR/snap
	snapshot "$PID" >"$snap"
	# 100 Mbit/s: the stream takes about 4 s
	on_src tc qdisc add dev "$VETH_SRC" root tbf rate 100mbit burst 64kb latency 200ms ||
		{ echo "FAILED: cannot add a tbf queueing discipline"; return 1; }
	start_remote_restore "${TLS_DST[@]}"
	(
		remote_dump --remote --port "$PORT" "${TLS_SRC[@]}"
		echo "$DUMP_RC" >"$BATS_TEST_TMPDIR/dump.rc"
	) &
	local dpid=$! xp='' i=0 w=0
	# the receiving stasis-transfer, once it has passed 2 MiB on
	while [ $i -lt 200 ]; do
		xp=$(pgrep -P "$RPID" -x stasis-transfer | head -n 1)
		if [ -n "$xp" ]; then
			w=$(awk '$1 == "wchar:" { print $2 }' "/proc/$xp/io" 2>/dev/null)
			[ "${w:-0}" -gt $((2 << 20)) ] && break
		fi
		i=$((i + 1))
		sleep 0.05
	done
	[ "${w:-0}" -gt $((2 << 20)) ] || die_with_logs "the transfer did not start"
	kill -KILL "$xp"
	wait "$dpid" || true
	DUMP_RC=$(cat "$BATS_TEST_TMPDIR/dump.rc")
	grep -qE "was cut|reset" "$BATS_TEST_TMPDIR/dump.out" || die_with_logs "no message about the cut"
	source_untouched "$snap"
	# the destination stops waiting for the PIDs at once
	wait_child "$RPID" 10 || die_with_logs "stasis restore --remote still runs"
	[ "$STATUS" -ne 0 ]
	# the first cause, not inject's "the transfer failed" after it
	grep -q "restore failed: stasis-transfer killed by signal 9" "$BATS_TEST_TMPDIR/restore.out"
	run ! grep -q "the transfer failed" "$BATS_TEST_TMPDIR/restore.out"
}

@test "a lost confirmation leaves the source running (the page server has stored the checkpoint)" {
	start_prog_on_src heap
	local snap=$BATS_TEST_TMPDIR/snap
	snapshot "$PID" >"$snap"
	start_page_server
	start_proxy 4500 drop-ack
	remote_dump --page-server --port 4500
	grep -q "dropped b'OK" "$BATS_TEST_TMPDIR/proxy.out" || die_with_logs "the proxy did not drop the confirmation"
	grep -q "no confirmation from the receiver" "$BATS_TEST_TMPDIR/dump.out" ||
		die_with_logs "no message about the lost confirmation"
	source_untouched "$snap"
	wait_child "$SPID" 10
	[ "$STATUS" -eq 0 ]
	[ -s "$IMG/inventory.img" ]
}
