#!/usr/bin/env bats
# Lazy (post-copy) migration, the source side and its transport: stasis
# dump --lazy-pages on the source host ($NS_SRC) stores every image but
# the private anonymous memory, keeps the tree frozen and serves that memory
# over TLS; the destination host ($NS_DST) connects with stasis-transfer
# --lazy-pages --to SRC:PORT and reads the page stream (through stasis-seal
# --open --lazy-pages when it is sealed).
#
# The destination's consumer here is stasis-test-lazysink
# (tests/progs/lazysink.c), a stand-in for the lazy-pages daemon: it asks
# for pages (some of every run, a whole run, pages no run has), checks that
# every lazy page arrives exactly once, writes the images with those pages
# put back (a whole checkpoint), and sends LAZY_REQ_DONE. The whole
# checkpoint is restored on the destination, and the program checks
# itself: what the page server sent is what the process had.
#
# Hosts and certificates as in tests/transfer.bats: a veth pair between two
# network namespaces (one PID namespace), a CA, the source's and the
# destination's certificates. Here the source listens, so its certificate
# names its address ($SRC_IP).

load helpers

NS_SRC=stasis-lsrc-$$
NS_DST=stasis-ldst-$$
VETH_SRC=stls$$
VETH_DST=stld$$
SRC_IP=10.232.0.1
DST_IP=10.232.0.2
PORT=4434
PKI=$BATS_FILE_TMPDIR/pki

# ---------------------------------------------------------------- set-up

make_pki() {
	local d=$1 n
	mkdir -p "$d" || return 1
	for n in ca src dst; do
		certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 \
			--outfile "$d/$n-key.pem" >/dev/null 2>&1 || return 1
	done
	printf 'cn = stasis lazy test CA\nca\ncert_signing_key\ncrl_signing_key\nexpiration_days = 30\n' >"$d/ca.tmpl"
	certtool --generate-self-signed --template "$d/ca.tmpl" --load-privkey "$d/ca-key.pem" \
		--outfile "$d/ca.pem" >/dev/null 2>&1 || return 1
	for n in src dst; do
		local ip=$SRC_IP
		[ "$n" = dst ] && ip=$DST_IP
		printf 'cn = %s\nip_address = %s\ntls_www_server\ntls_www_client\nsigning_key\nencryption_key\nexpiration_days = 30\n' \
			"$n" "$ip" >"$d/$n.tmpl"
		certtool --generate-certificate --template "$d/$n.tmpl" --load-privkey "$d/$n-key.pem" \
			--load-ca-certificate "$d/ca.pem" --load-ca-privkey "$d/ca-key.pem" \
			--outfile "$d/$n.pem" >/dev/null 2>&1 || return 1
	done
}

setup_file() {
	if [ "$(id -u)" -eq 0 ] && command -v certtool >/dev/null; then
		make_pki "$PKI"
	fi
}

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
	ip netns del "$NS_SRC" 2>/dev/null
	ip netns del "$NS_DST" 2>/dev/null
	ip link del "$VETH_SRC" 2>/dev/null
	return 0
}

setup() {
	stasis_test_setup
	command -v certtool >/dev/null || skip "certtool (gnutls-bin) is not installed"
	[ -s "$PKI/dst.pem" ] || { echo "FAILED: the test certificates could not be made"; return 1; }
	make_hosts || {
		remove_hosts
		echo "FAILED: cannot make two network namespaces joined by a veth pair"
		return 1
	}
	STASIS=$(readlink -f "$(command -v stasis)")
	XFER=$(readlink -f "$(command -v stasis-transfer)")
	SEAL=$(readlink -f "$(command -v stasis-seal)")
	SINK=$STASIS_BUILD_DIR/transfer/stasis-test-lazysink
	[ -x "$SINK" ] || { echo "FAILED: $SINK is not built"; return 1; }
	TLS_SRC=(--tls --tls-cacert "$PKI/ca.pem" --tls-cert "$PKI/src.pem" --tls-key "$PKI/src-key.pem")
	TLS_DST=(--tls --tls-cacert "$PKI/ca.pem" --tls-cert "$PKI/dst.pem" --tls-key "$PKI/dst-key.pem")
	WHOLE=$BATS_TEST_TMPDIR/whole
	PLAIN=$IMG
	DPID='' SINKPID=''
}

teardown() {
	cleanup_owned
	remove_hosts
}

# ---------------------------------------------------------------- helpers

on_src() { ip netns exec "$NS_SRC" "$@"; }
on_dst() { ip netns exec "$NS_DST" "$@"; }

start_prog_on_src() { # NAME [ARGS...]
	local name=$1
	shift
	PROG=$(readlink -f "$TESTPROGS/$name")
	[ -x "$PROG" ] || { echo "FAILED: $TESTPROGS/$name is not built"; return 1; }
	LOG=$BATS_TEST_TMPDIR/$name.log
	if [ "$name" = bigmem ]; then set -- "$1" "$GOFILE"; else set -- "$GOFILE" "$@"; fi
	(
		close_extra_fds
		exec ip netns exec "$NS_SRC" setsid "$PROG" "$@" </dev/null >"$LOG" 2>&1
	) &
	PID=$!
	own_pid "$PID" "$PROG"
	wait_ready "$LOG" "$PID" 20 || return 1
	PID_START=$(proc_stat_field "$PID" 22)
}

# Until the dump's log has LINE (the dump is DPID).
wait_dump_log() { # LINE WHAT
	local i=0
	until grep -q "$1" "$BATS_TEST_TMPDIR/dump.log" 2>/dev/null; do
		alive "$DPID" || { die_with_logs "stasis dump exited before $2"; return 1; }
		i=$((i + 1))
		[ $i -ge 400 ] && { die_with_logs "stasis dump: not $2 after 20 s"; return 1; }
		sleep 0.05
	done
}

# stasis dump --lazy-pages of $PID on the source, in the background (DPID),
# once its page server listens and the images are stored. ARGS added.
start_lazy_dump() { # [ARGS...]
	rm -rf "$IMG" "$WHOLE"
	mkdir -p "$IMG"
	(
		close_extra_fds
		cd "$BATS_TEST_TMPDIR" || exit 1
		exec ip netns exec "$NS_SRC" "$STASIS" dump -t "$PID" -D "$IMG" --lazy-pages \
			--address "$SRC_IP" --port "$PORT" -v4 -o "$BATS_TEST_TMPDIR/dump.log" "$@"
	) </dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 &
	DPID=$!
	own_pid "$DPID" "$STASIS"
	wait_dump_log "listening on" "listening" || return 1
	wait_dump_log "serving [0-9]* lazy pages" "serving the pages"
}

# The destination: stasis-transfer --lazy-pages to the source, [stasis-seal
# --open --lazy-pages,] the stand-in daemon; in the background (SINKPID).
# SEALED=1 opens the stream; SINK_ARGS are the sink's.
start_lazy_dst() {
	local req=$BATS_TEST_TMPDIR/req
	rm -f "$req"
	mkfifo "$req"
	(
		close_extra_fds
		cd "$BATS_TEST_TMPDIR" || exit 1
		if [ "${SEALED:-0}" = 1 ]; then
			ip netns exec "$NS_DST" "$XFER" --lazy-pages --to "$SRC_IP:$PORT" "${TLS_DST[@]}" -v4 \
				-o "$BATS_TEST_TMPDIR/xfer-dst.log" <"$req" |
				"$SEAL" --open --lazy-pages --tls-key "$PKI/dst-key.pem" -v4 \
					-o "$BATS_TEST_TMPDIR/seal-dst.log" |
				exec "$SINK" -D "$PLAIN" -O "$WHOLE" ${SINK_ARGS:-} >"$req"
		else
			ip netns exec "$NS_DST" "$XFER" --lazy-pages --to "$SRC_IP:$PORT" "${TLS_DST[@]}" -v4 \
				-o "$BATS_TEST_TMPDIR/xfer-dst.log" <"$req" |
				exec "$SINK" -D "$PLAIN" -O "$WHOLE" ${SINK_ARGS:-} >"$req"
		fi
	) </dev/null >"$BATS_TEST_TMPDIR/dst.out" 2>&1 &
	SINKPID=$!
	own_pid "$SINKPID"
}

# The source was dumped and killed: it is gone, killed, its IDs free.
reap_source() {
	local i=0
	while [ "$(proc_stat_field "$PID" 22 2>/dev/null)" = "$PID_START" ] && alive "$PID"; do
		i=$((i + 1))
		[ $i -ge 200 ] && { die_with_logs "PID $PID runs on 10 s after the lazy dump"; return 1; }
		sleep 0.05
	done
	STATUS=0
	wait "$PID" 2>/dev/null || STATUS=$?
	[ "$STATUS" -gt 128 ] || die_with_logs "PID $PID exited by itself (status $STATUS), it was not killed by the dump" || return 1
	wait_ids_free 30 "$WHOLE"
}

# The whole checkpoint restored on the destination host, checked.
restore_whole_on_dst() {
	(
		close_extra_fds
		cd "$BATS_TEST_TMPDIR" || exit 1
		exec ip netns exec "$NS_DST" "$STASIS" restore -D "$WHOLE" -v4 -o restore.log
	) </dev/null >"$BATS_TEST_TMPDIR/restore.out" 2>&1 &
	RPID=$!
	own_pid "$RPID"
	wait_restored || return 1
	own_image_tree_of "$WHOLE"
	touch "$GOFILE"
	wait_child "$RPID" "$STASIS_TEST_WAIT" ||
		die_with_logs "stasis restore still runs ${STASIS_TEST_WAIT}s after GO" || return 1
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis restore exited with status $STATUS" || return 1
	check_pass_log
}

own_image_tree_of() { # DIR
	local pid zombie
	while read -r pid _ _ _ zombie _; do
		[ "$zombie" = 0 ] && alive "$pid" && own_pid "$pid"
	done < <(image_tasks "$1")
	return 0
}

# A whole lazy migration of the program NAME, checked on the destination.
lazy_migrate() { # NAME [DUMP ARGS...]
	local name=$1
	shift
	start_prog_on_src "$name" || return 1
	start_lazy_dump "${TLS_SRC[@]}" "$@" || return 1
	start_lazy_dst
	wait_child "$SINKPID" "$STASIS_TEST_WAIT" || die_with_logs "the destination still runs" || return 1
	[ "$STATUS" -eq 0 ] || die_with_logs "the stand-in daemon failed ($STATUS): $(cat "$BATS_TEST_TMPDIR/dst.out")" || return 1
	wait_child "$DPID" "$STASIS_TEST_WAIT" || die_with_logs "stasis dump still runs after LAZY_REQ_DONE" || return 1
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis dump --lazy-pages exited with $STATUS" || return 1
	reap_source || return 1
	grep -q "the destination has every lazy page" "$BATS_TEST_TMPDIR/dump.log" || die_with_logs "no LAZY_REQ_DONE in the log" || return 1
	restore_whole_on_dst
}

# The memory the lazy dump kept out of -D: pagemap runs marked lazy, and
# pages-N without them.
assert_lazy_images() {
	local lazy
	lazy=$(stasis-serialize show "$IMG" | python3 -c '
import json, sys
n = 0
for img in json.load(sys.stdin):
    if img["image"].startswith("pagemap-"):
        n += sum(r.get("nr_pages", 0) for r in img["records"] if r.get("lazy"))
print(n)')
	[ "$lazy" -gt 0 ] || die_with_logs "no lazy runs in the pagemaps" || return 1
	stasis-serialize show "$IMG/inventory.img" | grep -q '"lazy_pages": true' ||
		die_with_logs "the inventory does not say the dump is lazy"
}

# Signal one process of the destination's or the source's pipeline (one
# the test started, or a descendant of one).
kill_child_named() { # PARENT-PID NAME [SIGNAL]
	local p
	for p in $(tree_pids "$1"); do
		if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ]; then
			kill -"${3:-KILL}" "$p"
			return 0
		fi
	done
	echo "FAILED: no $2 under $1"
	return 1
}

# What a failed dump must leave unchanged (proc_snapshot), but the
# scheduler state.
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

# ---------------------------------------------------------------- tests

@test "lazy migration over TLS: memory program; the images lack the lazy pages, the page server sends each once" {
	lazy_migrate heap
	assert_lazy_images
	# nothing of the lazy memory went into -D
	local lazy_bytes written
	written=$(stat -c %s "$IMG"/pages-1.img)
	[ "$written" -lt $((1 << 20)) ] || die_with_logs "pages-1.img holds $written bytes"
	grep -q "TLS with $SRC_IP:$PORT: (TLS1" "$BATS_TEST_TMPDIR/xfer-dst.log"
	grep -q "lazy pages: [0-9]* in all, [1-9][0-9]* served on request, [0-9]* pushed" "$BATS_TEST_TMPDIR/dump.log"
	grep -q "lazysink: [0-9]* answers" "$BATS_TEST_TMPDIR/dst.out"
}

@test "lazy migration over TLS: process tree" {
	lazy_migrate tree
}

@test "lazy migration over TLS: threads" {
	lazy_migrate threads
}

@test "lazy migration --display-stats: pages served on request and pushed" {
	lazy_migrate heap --display-stats
	grep -q "^Lazy pages: [1-9]" "$BATS_TEST_TMPDIR/dump.out"
	grep -q "^Lazy pages served on request: [1-9]" "$BATS_TEST_TMPDIR/dump.out"
	grep -q "^Lazy pages pushed: [0-9]" "$BATS_TEST_TMPDIR/dump.out"
	grep -q "^Memory pages left lazy: [1-9]" "$BATS_TEST_TMPDIR/dump.out"
}

@test "sealed lazy migration: the images and every page sealed, opened on arrival" {
	start_prog_on_src heap
	start_lazy_dump -e --tls-cert "$PKI/dst.pem" "${TLS_SRC[@]}"
	[ -e "$IMG/cipher.img" ] || die_with_logs "the images are not sealed"
	# the destination opens the images, as a restore would
	PLAIN=$BATS_TEST_TMPDIR/plain
	mkdir -p "$PLAIN"
	"$SEAL" --open --tls-key "$PKI/dst-key.pem" -D "$IMG" | stasis-serialize unpack -D "$PLAIN"
	SEALED=1 start_lazy_dst
	wait_child "$SINKPID" "$STASIS_TEST_WAIT" || die_with_logs "the destination still runs"
	[ "$STATUS" -eq 0 ] || die_with_logs "the destination failed: $(cat "$BATS_TEST_TMPDIR/dst.out")"
	wait_child "$DPID" "$STASIS_TEST_WAIT" || die_with_logs "stasis dump still runs"
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis dump exited with $STATUS"
	reap_source
	restore_whole_on_dst
	grep -q "lazysink: [0-9]* answers" "$BATS_TEST_TMPDIR/dst.out"
}

@test "sealed lazy migration: a page altered on the way is refused before use; the source tree resumes" {
	start_prog_on_src heap
	local snap=$BATS_TEST_TMPDIR/snap
	snapshot "$PID" >"$snap"
	STASIS_FAULT=seal-lazy-page-flip start_lazy_dump -e --tls-cert "$PKI/dst.pem" "${TLS_SRC[@]}"
	PLAIN=$BATS_TEST_TMPDIR/plain
	mkdir -p "$PLAIN"
	"$SEAL" --open --tls-key "$PKI/dst-key.pem" -D "$IMG" | stasis-serialize unpack -D "$PLAIN"
	SEALED=1 start_lazy_dst
	wait_child "$SINKPID" "$STASIS_TEST_WAIT" || die_with_logs "the destination still runs"
	[ "$STATUS" -ne 0 ] || die_with_logs "the destination took a tampered stream"
	grep -q "page frame at offset .* fails authentication" "$BATS_TEST_TMPDIR/dst.out" ||
		die_with_logs "stasis-seal --open did not name the altered page"
	# not a byte of it reached the consumer
	if grep -q "lazysink: [0-9]* answers" "$BATS_TEST_TMPDIR/dst.out"; then
		die_with_logs "the stand-in daemon took the altered page"
		return 1
	fi
	[ ! -e "$WHOLE" ]
	wait_child "$DPID" "$STASIS_TEST_WAIT" || die_with_logs "stasis dump still runs"
	DUMP_RC=$STATUS
	grep -q "resuming the tree here" "$BATS_TEST_TMPDIR/dump.log" || die_with_logs "collect did not say it resumed"
	source_untouched "$snap"
}

@test "the source's page server killed in mid-migration: the source tree resumes, the destination gives up" {
	start_prog_on_src heap
	local snap=$BATS_TEST_TMPDIR/snap
	snapshot "$PID" >"$snap"
	start_lazy_dump "${TLS_SRC[@]}"
	SINK_ARGS=-s start_lazy_dst
	local i=0
	until grep -q stalling "$BATS_TEST_TMPDIR/dst.out" 2>/dev/null; do
		i=$((i + 1))
		[ $i -ge 200 ] && { die_with_logs "the destination got no answer"; return 1; }
		sleep 0.05
	done
	kill_child_named "$DPID" stasis-transfer
	wait_child "$DPID" "$STASIS_TEST_WAIT" || die_with_logs "stasis dump still runs"
	DUMP_RC=$STATUS
	grep -q "the destination closed the lazy page channel before it had every page" "$BATS_TEST_TMPDIR/dump.log" ||
		die_with_logs "collect did not say why"
	grep -q "resuming the tree here" "$BATS_TEST_TMPDIR/dump.log"
	source_untouched "$snap"
	# the page stream never ended: the stand-in daemon is told nothing
	# more; gone, its transport fails too
	kill_child_named "$SINKPID" stasis-test-laz
	wait_child "$SINKPID" 10 || die_with_logs "the destination's transport still runs"
	grep -qE "broke off|cannot pass the lazy page stream on" "$BATS_TEST_TMPDIR/xfer-dst.log" ||
		die_with_logs "no message from the destination's transport"
	[ ! -e "$WHOLE" ]
}

@test "the destination's daemon killed in mid-migration: the source tree resumes" {
	start_prog_on_src heap
	local snap=$BATS_TEST_TMPDIR/snap
	snapshot "$PID" >"$snap"
	start_lazy_dump "${TLS_SRC[@]}"
	SINK_ARGS=-s start_lazy_dst
	local i=0
	until grep -q stalling "$BATS_TEST_TMPDIR/dst.out" 2>/dev/null; do
		i=$((i + 1))
		[ $i -ge 200 ] && { die_with_logs "the destination got no answer"; return 1; }
		sleep 0.05
	done
	kill_child_named "$SINKPID" stasis-test-laz
	wait_child "$DPID" "$STASIS_TEST_WAIT" || die_with_logs "stasis dump still runs"
	DUMP_RC=$STATUS
	grep -q "the destination closed the lazy page channel" "$BATS_TEST_TMPDIR/dump.log" ||
		die_with_logs "collect did not say why"
	source_untouched "$snap"
	wait_child "$SINKPID" 10 || die_with_logs "the destination's transport still runs"
}

@test "dump --lazy-pages refuses what it cannot do, before touching the tree" {
	start_prog_on_src heap
	run "$STASIS" dump -t "$PID" -D "$IMG" --lazy-pages
	[ "$status" -ne 0 ]
	[[ $output == *"give --port PORT"* ]]
	run "$STASIS" dump -t "$PID" -D "$IMG" --lazy-pages --port "$PORT" --track-mem
	[ "$status" -ne 0 ]
	[[ $output == *"--lazy-pages with an iterative dump is not supported yet"* ]]
	run "$STASIS" dump -t "$PID" -D "$IMG" --lazy-pages --port "$PORT" --remote --address "$DST_IP"
	[ "$status" -ne 0 ]
	[[ $output == *"not supported yet"* ]]
	assert_running_untraced "$PID"
	go_and_check_original
}

@test "a whole-stream sender and a lazy page server refuse each other with a clear message" {
	start_prog_on_src heap
	local snap=$BATS_TEST_TMPDIR/snap
	snapshot "$PID" >"$snap"
	start_lazy_dump "${TLS_SRC[@]}"
	run bash -c "echo x | ip netns exec $NS_DST $XFER --to $SRC_IP:$PORT ${TLS_DST[*]} 2>&1"
	[ "$status" -ne 0 ]
	[[ $output == *"this is a lazy page server"* ]]
	grep -q "sends a whole stream, not a lazy migration's requests" "$BATS_TEST_TMPDIR/dump.log"
	# the page server still waits for its destination; interrupted, the
	# dump resumes the tree
	kill_child_named "$DPID" stasis-collect INT
	wait_child "$DPID" 20 || die_with_logs "stasis dump still runs"
	DUMP_RC=$STATUS
	grep -q "interrupted while serving lazy pages" "$BATS_TEST_TMPDIR/dump.log"
	source_untouched "$snap"
}

# ---------------------------------------------------------------- with the daemon

# The destination host with its own PID namespace (as another host has:
# the source keeps its PIDs until every page arrived): stasis lazy-pages
# --page-server to the source, then stasis restore --lazy-pages of $IMG
# (the images, as copied over). In the background (DSTPID); its verdict
# in dst.rc once the restored tree ended.
start_lazy_restore_on_dst() { # [DAEMON ARGS...]
	cat >"$BATS_TEST_TMPDIR/dst.sh" <<EOF2
cd "$BATS_TEST_TMPDIR" || exit 1
rm -f "$IMG/lazy-pages.socket"
"$STASIS" lazy-pages --page-server --address $SRC_IP --port $PORT ${TLS_DST[*]} -D "$IMG" \\
	-v4 -o "$BATS_TEST_TMPDIR/lazy-pages.log" --display-stats "\$@" >lazy.out 2>&1 &
lz=\$!
for i in \$(seq 200); do [ -S "$IMG/lazy-pages.socket" ] && break; sleep 0.05; done
"$STASIS" restore -D "$IMG" --lazy-pages ${RESTORE_ARGS:-} -v4 -o "$BATS_TEST_TMPDIR/restore.log" >restore.out 2>&1
rc=\$?
wait \$lz
echo "restore \$rc lazy-pages \$?" >dst.rc
EOF2
	rm -f "$BATS_TEST_TMPDIR/dst.rc"
	(
		close_extra_fds
		exec ip netns exec "$NS_DST" unshare --pid --fork --mount-proc \
			bash "$BATS_TEST_TMPDIR/dst.sh" "$@"
	) </dev/null >"$BATS_TEST_TMPDIR/dst.out" 2>&1 &
	DSTPID=$!
	own_pid "$DSTPID"
}

# A lazy migration of NAME restored by the daemon on the destination: the
# source goes once every page is in; then the copy checks itself.
lazy_migrate_restore() { # NAME [DUMP ARGS...]
	local name=$1
	shift
	start_prog_on_src "$name" || return 1
	start_lazy_dump "${TLS_SRC[@]}" "$@" || return 1
	start_lazy_restore_on_dst
	wait_child "$DPID" "$STASIS_TEST_WAIT" || die_with_logs "stasis dump still runs" || return 1
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis dump --lazy-pages exited with $STATUS" || return 1
	grep -q "the destination has every lazy page" "$BATS_TEST_TMPDIR/dump.log" ||
		die_with_logs "no LAZY_REQ_DONE" || return 1
	reap_source_only || return 1
	touch "$GOFILE"
	wait_child "$DSTPID" "$STASIS_TEST_WAIT" || die_with_logs "the destination still runs after GO" || return 1
	[ "$(cat "$BATS_TEST_TMPDIR/dst.rc")" = "restore 0 lazy-pages 0" ] ||
		die_with_logs "destination: $(cat "$BATS_TEST_TMPDIR/dst.rc" 2>/dev/null); $(tail -n 3 "$BATS_TEST_TMPDIR/lazy-pages.log")" || return 1
	check_pass_log
}

reap_source_only() {
	local i=0
	while alive "$PID" && [ "$(proc_stat_field "$PID" 22 2>/dev/null)" = "$PID_START" ]; do
		i=$((i + 1))
		[ $i -ge 200 ] && { die_with_logs "PID $PID runs on 10 s after the lazy dump"; return 1; }
		sleep 0.05
	done
	wait "$PID" 2>/dev/null || true
}

@test "lazy migration restored by the daemon over TLS: memory program" {
	lazy_migrate_restore heap
	grep -q "TLS with $SRC_IP:$PORT: (TLS1" "$BATS_TEST_TMPDIR/lazy-pages.log"
	grep -q "^Pages left lazy: [1-9]" "$BATS_TEST_TMPDIR/lazy.out"
}

@test "lazy migration restored by the daemon over TLS: process tree" {
	lazy_migrate_restore tree
}

@test "lazy migration restored by the daemon over TLS: threads" {
	lazy_migrate_restore threads
}

@test "sealed lazy migration restored by the daemon: every page opened on arrival" {
	start_prog_on_src heap
	start_lazy_dump -e --tls-cert "$PKI/dst.pem" "${TLS_SRC[@]}"
	[ -e "$IMG/cipher.img" ] || die_with_logs "the images are not sealed"
	RESTORE_ARGS="--tls-key $PKI/dst-key.pem" start_lazy_restore_on_dst
	wait_child "$DPID" "$STASIS_TEST_WAIT" || die_with_logs "stasis dump still runs"
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis dump exited with $STATUS"
	reap_source_only
	touch "$GOFILE"
	wait_child "$DSTPID" "$STASIS_TEST_WAIT" || die_with_logs "the destination still runs after GO"
	[ "$(cat "$BATS_TEST_TMPDIR/dst.rc")" = "restore 0 lazy-pages 0" ] || die_with_logs "destination: $(cat "$BATS_TEST_TMPDIR/dst.rc")"
	check_pass_log
	# the page stream was sealed, not passed through
	if grep -q "not sealed: passing it through" "$BATS_TEST_TMPDIR/lazy-pages.log"; then
		die_with_logs "the page stream was not sealed"
		return 1
	fi
}

@test "the connection cut while the restored copy runs on lazy memory: the copy is killed, the source resumes" {
	start_prog_on_src bigmem 96
	local snap=$BATS_TEST_TMPDIR/snap
	snapshot "$PID" >"$snap"
	# 100 Mbit/s: the pages take about 8 s
	on_src tc qdisc add dev "$VETH_SRC" root tbf rate 100mbit burst 64kb latency 200ms ||
		{ echo "FAILED: cannot add a tbf queueing discipline"; return 1; }
	start_lazy_dump "${TLS_SRC[@]}"
	start_lazy_restore_on_dst
	# the copy runs (the restore released it), pages still on the way
	local i=0
	until grep -q "lazy pages: connected" "$BATS_TEST_TMPDIR/dump.log" &&
		grep -q "request: task" "$BATS_TEST_TMPDIR/dump.log"; do
		i=$((i + 1))
		[ $i -ge 400 ] && { die_with_logs "the destination did not start"; return 1; }
		sleep 0.05
	done
	sleep 1
	kill_child_named "$DPID" stasis-transfer
	wait_child "$DPID" "$STASIS_TEST_WAIT" || die_with_logs "stasis dump still runs"
	DUMP_RC=$STATUS
	grep -q "resuming the tree here" "$BATS_TEST_TMPDIR/dump.log" || die_with_logs "collect did not resume"
	source_untouched "$snap"
	# the destination's copy was killed: it cannot run without its memory
	wait_child "$DSTPID" "$STASIS_TEST_WAIT" || die_with_logs "the destination still runs"
	[ "$(cat "$BATS_TEST_TMPDIR/dst.rc")" != "restore 0 lazy-pages 0" ]
	grep -q "the restored tree was killed" "$BATS_TEST_TMPDIR/lazy-pages.log" ||
		die_with_logs "the daemon did not say it killed the copy"
}

@test "sealed lazy migration restored by the daemon: an altered page is never mapped; the copy is killed, the source resumes" {
	start_prog_on_src heap
	local snap=$BATS_TEST_TMPDIR/snap
	snapshot "$PID" >"$snap"
	STASIS_FAULT=seal-lazy-page-flip start_lazy_dump -e --tls-cert "$PKI/dst.pem" "${TLS_SRC[@]}"
	RESTORE_ARGS="--tls-key $PKI/dst-key.pem" start_lazy_restore_on_dst
	wait_child "$DPID" "$STASIS_TEST_WAIT" || die_with_logs "stasis dump still runs"
	DUMP_RC=$STATUS
	grep -q "resuming the tree here" "$BATS_TEST_TMPDIR/dump.log" || die_with_logs "collect did not resume"
	source_untouched "$snap"
	wait_child "$DSTPID" "$STASIS_TEST_WAIT" || die_with_logs "the destination still runs"
	[ "$(cat "$BATS_TEST_TMPDIR/dst.rc")" != "restore 0 lazy-pages 0" ]
	grep -q "page frame at offset .* fails authentication" "$BATS_TEST_TMPDIR/lazy-pages.log" ||
		die_with_logs "stasis-seal did not name the altered page"
	grep -q "the restored tree was killed" "$BATS_TEST_TMPDIR/lazy-pages.log" ||
		die_with_logs "the daemon did not say it killed the copy"
}
