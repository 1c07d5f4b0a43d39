#!/usr/bin/env bats
# stasis-seal: sealed checkpoints. A test program keeps a random secret in
# memory (and in the name of its working directory); the suite dumps it
# through stasis-seal --encrypt, checks that no image holds the secret, that
# each recipient's key alone restores it, and that a wrong or missing key, a
# flipped byte anywhere, a dropped, added or truncated piece are refused
# with nothing restored. The keys and certificates (RSA and ECDSA P-256,
# each signed by its own CA) are made with certtool for the suite.

load helpers

PKI=$BATS_FILE_TMPDIR/pki

setup_file() {
	command -v certtool >/dev/null || return 0
	mkdir -p "$PKI"
	cat >"$PKI/ca.tmpl" <<'EOF'
cn = "stasis seal test CA"
ca
cert_signing_key
expiration_days = 2
EOF
	cat >"$PKI/leaf.tmpl" <<'EOF'
cn = "stasis seal test recipient"
tls_www_server
tls_www_client
encryption_key
signing_key
expiration_days = 2
EOF
	local t k
	for t in rsa ec; do
		if [ $t = rsa ]; then k="--key-type=rsa --bits=2048"; else k="--key-type=ecdsa --curve=secp256r1"; fi
		# shellcheck disable=SC2086
		certtool --generate-privkey $k --outfile "$PKI/$t-ca.key" 2>/dev/null &&
			certtool --generate-self-signed --load-privkey "$PKI/$t-ca.key" \
				--template "$PKI/ca.tmpl" --outfile "$PKI/$t-ca.pem" 2>/dev/null &&
			certtool --generate-privkey $k --outfile "$PKI/$t.key" 2>/dev/null &&
			certtool --generate-certificate --load-privkey "$PKI/$t.key" \
				--load-ca-certificate "$PKI/$t-ca.pem" --load-ca-privkey "$PKI/$t-ca.key" \
				--template "$PKI/leaf.tmpl" --outfile "$PKI/$t.pem" 2>/dev/null || return 1
	done
	# keys of nobody the checkpoints are sealed for
	certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --outfile "$PKI/other-ec.key" 2>/dev/null &&
		certtool --generate-privkey --key-type=rsa --bits=2048 --outfile "$PKI/other-rsa.key" 2>/dev/null
}

setup() {
	stasis_test_setup
	command -v stasis-seal >/dev/null || skip "stasis-seal is not in PATH"
	command -v certtool >/dev/null || skip "certtool (gnutls-bin) is not installed"
	[ -s "$PKI/ec.pem" ] || { echo "FAILED: the test certificates could not be made"; return 1; }
	SEALED=$BATS_TEST_TMPDIR/sealed
	PLAIN=$BATS_TEST_TMPDIR/plain
}

# ---------------------------------------------------------------- helpers

# Start tests/progs/secret with a fresh random secret, also in the name of
# its working directory (so that a record image holds it too).
start_secret() {
	SECRET=stasis-secret-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
	mkdir -p "$BATS_TEST_TMPDIR/cwd-$SECRET"
	start_prog secret "$SECRET" "$BATS_TEST_TMPDIR/cwd-$SECRET"
}

# The plaintext stream of $PID, which goes on running.
collect_stream() { # FILE
	stasis-freeze -t "$PID" stasis-collect -R >"$1" 2>"$BATS_TEST_TMPDIR/collect.err" ||
		die_with_logs "stasis-freeze | stasis-collect failed: $(cat "$BATS_TEST_TMPDIR/collect.err")"
}

# A sealed dump of $PID into DIR (left running), for the certificates given.
sealed_dump() { # DIR CERT...
	local dir=$1 args=() c rc=0
	shift
	for c in "$@"; do args+=(--tls-cert "$c"); done
	rm -rf "$dir"
	stasis-freeze -t "$PID" stasis-collect -R 2>"$BATS_TEST_TMPDIR/collect.err" |
		stasis-seal --encrypt "${args[@]}" 2>"$BATS_TEST_TMPDIR/seal.err" |
		stasis-serialize unpack -D "$dir" 2>"$BATS_TEST_TMPDIR/unpack.err" || rc=$?
	[ $rc -eq 0 ] || die_with_logs "sealed dump failed: $(cat "$BATS_TEST_TMPDIR"/{collect,seal,unpack}.err)"
}

# Kill the original program and reap it: its PID is free for a restore.
kill_original() {
	cp "$LOG" "$LOG.at-dump"
	kill -KILL "$PID"
	wait_child "$PID" 10 || die_with_logs "PID $PID did not die"
}

# pack DIR | stasis-seal --open --tls-key KEY | stasis-inject (with a third
# argument: stasis-seal --open -D DIR | stasis-inject), in the background as
# our child; then the program must check itself and PASS.
sealed_restore_and_check() { # DIR KEY [-D]
	cp "$LOG.at-dump" "$LOG"
	rm -f "$GOFILE"
	if [ -n "${3:-}" ]; then
		(stasis-seal --open --tls-key "$2" -D "$1" | stasis-inject) \
			</dev/null >"$BATS_TEST_TMPDIR/restore.out" 2>&1 3>&- &
	else
		(stasis-serialize pack -D "$1" | stasis-seal --open --tls-key "$2" | stasis-inject) \
			</dev/null >"$BATS_TEST_TMPDIR/restore.out" 2>&1 3>&- &
	fi
	RPID=$!
	own_pid "$RPID"
	check_restored
}

not_running() { # PID
	if alive "$1"; then return 1; fi
}

fingerprint() { # CERT
	certtool --fingerprint --hash=sha256 --infile "$1" 2>/dev/null | tail -n 1
}

# XOR the byte at OFFSET of FILE with 0xff.
flip_byte() { # FILE OFFSET
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	# shellcheck disable=SC2059
	printf "$(printf '\\%03o' $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# The sealed stream FILE, or a directory made from it, must be refused by
# --open (status in OPEN_RC) and its output must not be a whole stream.
open_refused() { # STREAM-FILE
	local out=$BATS_TEST_TMPDIR/open.out
	OPEN_RC=0
	stasis-seal --open --tls-key "$PKI/ec.key" <"$1" >"$out" 2>"$BATS_TEST_TMPDIR/open.err" || OPEN_RC=$?
	[ "$OPEN_RC" -ne 0 ] || return 1
	# nothing unverified and no trailer: a reader sees a truncated stream
	if stasis-serialize unpack -D "$BATS_TEST_TMPDIR/open-unpacked" <"$out" 2>/dev/null; then
		return 1
	fi
}

# ---------------------------------------------------------------- tests

@test "encrypt | open gives back the exact plaintext stream, with each recipient's key" {
	start_secret
	collect_stream "$BATS_TEST_TMPDIR/plain.stream"
	stasis-seal --encrypt --tls-cert "$PKI/rsa.pem" --tls-cert "$PKI/ec.pem" \
		<"$BATS_TEST_TMPDIR/plain.stream" >"$BATS_TEST_TMPDIR/sealed.stream"
	local k t
	for k in rsa ec; do
		for t in 0 2; do
			stasis-seal --open --threads $t --tls-key "$PKI/$k.key" \
				<"$BATS_TEST_TMPDIR/sealed.stream" >"$BATS_TEST_TMPDIR/opened.stream"
			cmp "$BATS_TEST_TMPDIR/plain.stream" "$BATS_TEST_TMPDIR/opened.stream"
		done
	done
	# and after a trip through a directory (unpack, pack: another order)
	stasis-serialize unpack -D "$SEALED" <"$BATS_TEST_TMPDIR/sealed.stream"
	stasis-serialize pack -D "$SEALED" | stasis-seal --open --tls-key "$PKI/rsa.key" |
		stasis-serialize unpack -D "$BATS_TEST_TMPDIR/opened"
	stasis-serialize unpack -D "$PLAIN" <"$BATS_TEST_TMPDIR/plain.stream"
	diff -r "$PLAIN" "$BATS_TEST_TMPDIR/opened"
	# --open -D reads the directory itself, in the order of pack
	stasis-seal --open --tls-key "$PKI/ec.key" -D "$SEALED" >"$BATS_TEST_TMPDIR/opened-d.stream"
	stasis-serialize pack -D "$SEALED" | stasis-seal --open --tls-key "$PKI/ec.key" |
		cmp - "$BATS_TEST_TMPDIR/opened-d.stream"
	# into a pipe, the page frames opened in place go by reference (vmsplice)
	strace -f -qq -e trace=vmsplice -o "$BATS_TEST_TMPDIR/open.trace" \
		stasis-seal --open --tls-key "$PKI/ec.key" -D "$SEALED" |
		cmp - "$BATS_TEST_TMPDIR/opened-d.stream"
	grep -q 'vmsplice(.*= [1-9][0-9]*$' "$BATS_TEST_TMPDIR/open.trace"
	stasis-seal --open -D "$PLAIN" | cmp - <(stasis-serialize pack -D "$PLAIN")
	go_and_check_original
}

@test "a sealed checkpoint holds no plaintext of the secret; its page images keep their length" {
	start_secret
	collect_stream "$BATS_TEST_TMPDIR/plain.stream"
	stasis-serialize unpack -D "$PLAIN" <"$BATS_TEST_TMPDIR/plain.stream"
	stasis-seal --encrypt --tls-cert "$PKI/ec.pem" <"$BATS_TEST_TMPDIR/plain.stream" \
		>"$BATS_TEST_TMPDIR/sealed.stream"
	stasis-serialize unpack -D "$SEALED" <"$BATS_TEST_TMPDIR/sealed.stream"
	# the plaintext holds it, in pages and in a record image
	grep -q -r -F -- "$SECRET" "$PLAIN"
	grep -l -r -F -- "$SECRET" "$PLAIN" | grep -q 'pages-'
	grep -l -r -F -- "$SECRET" "$PLAIN" | grep -qv 'pages-'
	# the sealed forms do not
	run grep -l -r -F -- "$SECRET" "$SEALED" "$BATS_TEST_TMPDIR/sealed.stream"
	[ "$status" -eq 1 ] || { echo "plaintext secret found in: $output"; false; }
	# nor does any of its images in plain text start like a record file of
	# the plaintext, beyond the cipher and page tags
	[ -s "$SEALED/cipher.img" ]
	local f n=0
	for f in "$PLAIN"/pages-*.img; do
		n=$((n + 1))
		[ "$(stat -c %s "$f")" = "$(stat -c %s "$SEALED/${f##*/}")" ] ||
			{ echo "${f##*/}: $(stat -c %s "$f") bytes plain, $(stat -c %s "$SEALED/${f##*/}") sealed"; false; }
		if cmp -s "$f" "$SEALED/${f##*/}"; then echo "${f##*/} is the same sealed"; false; fi
	done
	[ $n -ge 1 ]
	go_and_check_original
}

@test "sealed dump and restore: two recipients, each key alone restores (RSA, ECDSA P-256)" {
	start_secret
	sealed_dump "$SEALED" "$PKI/rsa.pem" "$PKI/ec.pem"
	kill_original
	sealed_restore_and_check "$SEALED" "$PKI/rsa.key"
	sealed_restore_and_check "$SEALED" "$PKI/ec.key" -D
}

@test "stasis-seal --encrypt -D stores the checkpoint itself: as | unpack would, acknowledged; a failure keeps the older one" {
	start_secret
	collect_stream "$BATS_TEST_TMPDIR/plain.stream"
	local via=$BATS_TEST_TMPDIR/via-unpack ack=$BATS_TEST_TMPDIR/ack before
	stasis-seal --encrypt --tls-cert "$PKI/ec.pem" -D "$SEALED" --ack-fd 3 \
		<"$BATS_TEST_TMPDIR/plain.stream" 3>"$ack"
	[ "$(cat "$ack")" = OK ]
	stasis-seal --encrypt --tls-cert "$PKI/ec.pem" <"$BATS_TEST_TMPDIR/plain.stream" |
		stasis-serialize unpack -D "$via"
	# the same image files with the same sizes, and no plaintext secret
	diff <(cd "$SEALED" && stat -c '%n %s' -- * | sort) <(cd "$via" && stat -c '%n %s' -- * | sort)
	run grep -r -l -F -- "$SECRET" "$SEALED"
	[ "$status" -eq 1 ]
	# it opens to exactly the plaintext checkpoint
	stasis-serialize unpack -D "$PLAIN" <"$BATS_TEST_TMPDIR/plain.stream"
	stasis-seal --open --tls-key "$PKI/ec.key" -D "$SEALED" | cmp - <(stasis-serialize pack -D "$PLAIN")
	# a truncated input: an error, no acknowledgement, the older checkpoint intact
	before=$(cd "$SEALED" && md5sum -- * | sort)
	run bash -c "head -c -100 '$BATS_TEST_TMPDIR/plain.stream' |
		stasis-seal --encrypt --tls-cert '$PKI/ec.pem' -D '$SEALED' --ack-fd 3 3>'$ack'"
	[ "$status" -eq 1 ]
	[[ $output == *"stasis-seal: error: "*truncated* ]] || { echo "$output"; false; }
	[ ! -s "$ack" ]
	[ "$(cd "$SEALED" && md5sum -- * | sort)" = "$before" ]
	[ -z "$(find "$SEALED" -name '.stasis-unpack*')" ]
	# --ack-fd goes with --encrypt -D only
	run stasis-seal --encrypt --ack-fd 3
	[ "$status" -eq 1 ]
	[[ $output == *"--ack-fd is an option of --encrypt -D"* ]]
	kill_original
	sealed_restore_and_check "$SEALED" "$PKI/ec.key" -D
}

@test "stasis-seal --encrypt -D seals in place (its default) what the thread pool seals (--threads 1): both open to the plaintext" {
	start_secret
	collect_stream "$BATS_TEST_TMPDIR/plain.stream"
	stasis-serialize unpack -D "$PLAIN" <"$BATS_TEST_TMPDIR/plain.stream"
	local t
	for t in 0 1; do
		stasis-seal --encrypt --threads "$t" --tls-cert "$PKI/ec.pem" -D "$BATS_TEST_TMPDIR/t$t" \
			<"$BATS_TEST_TMPDIR/plain.stream"
		stasis-seal --open --tls-key "$PKI/ec.key" -D "$BATS_TEST_TMPDIR/t$t" |
			cmp - <(stasis-serialize pack -D "$PLAIN")
		run grep -r -l -F -- "$SECRET" "$BATS_TEST_TMPDIR/t$t"
		[ "$status" -eq 1 ]
	done
	diff <(cd "$BATS_TEST_TMPDIR/t0" && stat -c '%n %s' -- * | sort) \
		<(cd "$BATS_TEST_TMPDIR/t1" && stat -c '%n %s' -- * | sort)
}

@test "stasis-seal --open -D --reader-copies reads page chunks into buffers the reader has taken; the same bytes for a slow reader" {
	"$STASIS_BUILD_DIR/serialize/stasis-test-mkstream" -p 21504 >"$BATS_TEST_TMPDIR/plain.stream"
	stasis-seal --encrypt --tls-cert "$PKI/ec.pem" -D "$SEALED" <"$BATS_TEST_TMPDIR/plain.stream"
	# the directory in the order of pack
	stasis-seal --open --tls-key "$PKI/ec.key" -D "$SEALED" >"$BATS_TEST_TMPDIR/opened.stream"
	stasis-seal --open --reader-copies --tls-key "$PKI/ec.key" -D "$SEALED" -v4 \
		-o "$BATS_TEST_TMPDIR/open.log" | python3 "$BATS_TEST_DIRNAME/slow_reader.py" |
		cmp "$BATS_TEST_TMPDIR/opened.stream" -
	grep -Eq "page chunks: [1-9][0-9]* read into again" "$BATS_TEST_TMPDIR/open.log"
	run stasis-seal --open --reader-copies --tls-key "$PKI/ec.key" <"$BATS_TEST_TMPDIR/plain.stream"
	[ "$status" -eq 1 ]
	[[ $output == *"--reader-copies is an option of --open -D"* ]]
}

@test "a key of no recipient is refused, naming the certificates the checkpoint is sealed for" {
	start_secret
	sealed_dump "$SEALED" "$PKI/rsa.pem" "$PKI/ec.pem"
	kill_original
	local k
	for k in other-ec other-rsa; do
		run bash -c "stasis-serialize pack -D '$SEALED' | stasis-seal --open --tls-key '$PKI/$k.key' | stasis-inject"
		[ "$status" -ne 0 ]
		echo "$output" | grep -F "stasis-seal: error: private key $PKI/$k.key opens none of the 2 recipients"
		echo "$output" | grep -F "sha256:$(fingerprint "$PKI/rsa.pem")"
		echo "$output" | grep -F "sha256:$(fingerprint "$PKI/ec.pem")"
		not_running "$PID"
	done
}

@test "a missing or unreadable key: cannot load private key PATH: reason" {
	start_secret
	sealed_dump "$SEALED" "$PKI/ec.pem"
	go_and_check_original
	run bash -c "stasis-serialize pack -D '$SEALED' | stasis-seal --open --tls-key '$PKI/nothing.key' >/dev/null"
	[ "$status" -ne 0 ]
	[[ $output == *"stasis-seal: error: cannot load private key $PKI/nothing.key: No such file or directory"* ]]
	run bash -c "stasis-serialize pack -D '$SEALED' | stasis-seal --open --tls-key '$PKI/ec.pem' >/dev/null"
	[ "$status" -ne 0 ]
	[[ $output == *"stasis-seal: error: cannot load private key $PKI/ec.pem: "* ]]
	if [ ! -e /etc/pki/stasis/private/key.pem ]; then
		run bash -c "stasis-serialize pack -D '$SEALED' | stasis-seal --open >/dev/null"
		[ "$status" -ne 0 ]
		[[ $output == *"cannot load private key /etc/pki/stasis/private/key.pem: No such file or directory"* ]]
	fi
	# and a missing certificate when sealing
	run bash -c "stasis-seal --encrypt --tls-cert '$PKI/nothing.pem' </dev/null >/dev/null"
	[ "$status" -ne 0 ]
}

@test "one flipped byte at 200+ places over every image of a sealed directory: refused, nothing restored" {
	start_secret
	sealed_dump "$SEALED" "$PKI/rsa.pem" "$PKI/ec.pem"
	kill_original
	local work=$BATS_TEST_TMPDIR/flipped f name size k i pos total=0 files=0 rc
	local -a st
	for f in "$SEALED"/*.img; do
		name=${f##*/}
		size=$(stat -c %s "$f")
		files=$((files + 1))
		# up to 24 places spread evenly over the file, first and last byte too
		k=$((size < 24 ? size : 24))
		for ((i = 0; i < k; i++)); do
			pos=$((k > 1 ? i * (size - 1) / (k - 1) : 0))
			rm -rf "$work"
			cp -r "$SEALED" "$work"
			flip_byte "$work/$name" "$pos"
			# through pack, or read by stasis-seal itself (-D), in turn
			if ((total % 2)); then
				{
					stasis-seal --open --tls-key "$PKI/ec.key" -D "$work" \
						2>"$BATS_TEST_TMPDIR/open.err" | stasis-inject >/dev/null 2>&1
					st=(0 "${PIPESTATUS[@]}")
				} || true
			else
				{
					stasis-serialize pack -D "$work" 2>/dev/null |
						stasis-seal --open --tls-key "$PKI/ec.key" 2>"$BATS_TEST_TMPDIR/open.err" |
						stasis-inject >/dev/null 2>&1
					st=("${PIPESTATUS[@]}")
				} || true
			fi
			total=$((total + 1))
			if [ "${st[1]}" -eq 0 ] || [ "${st[2]}" -eq 0 ]; then
				echo "FAILED: $name byte $pos flipped: stasis-seal --open exited ${st[1]}, stasis-inject ${st[2]}"
				return 1
			fi
			if alive "$PID"; then
				echo "FAILED: $name byte $pos flipped: PID $PID is running"
				return 1
			fi
		done
	done
	echo "# $total flips over $files image files, all refused" >&3
	[ "$files" -ge 10 ]
	[ "$total" -ge 200 ]
	# the same directory, untouched, restores: the PID was free all along
	sealed_restore_and_check "$SEALED" "$PKI/ec.key"
}

@test "flipped bytes in a sealed stream (frame headers too) are refused" {
	start_secret
	collect_stream "$BATS_TEST_TMPDIR/plain.stream"
	go_and_check_original
	local s=$BATS_TEST_TMPDIR/sealed.stream w=$BATS_TEST_TMPDIR/flipped.stream size i pos
	stasis-seal --encrypt --tls-cert "$PKI/ec.pem" <"$BATS_TEST_TMPDIR/plain.stream" >"$s"
	size=$(stat -c %s "$s")
	# the first 4 KiB byte by byte in steps (heads, cipher, records), then spread out
	for ((i = 0; i < 120; i++)); do
		if [ $i -lt 80 ]; then pos=$((i * 53)); else pos=$(((i - 80) * (size - 1) / 39)); fi
		cp "$s" "$w"
		flip_byte "$w" "$pos"
		open_refused "$w" || { echo "FAILED: byte $pos of the sealed stream flipped: accepted"; cat "$BATS_TEST_TMPDIR/open.err"; return 1; }
	done
}

@test "truncated or extended sealed streams are refused" {
	start_secret
	collect_stream "$BATS_TEST_TMPDIR/plain.stream"
	go_and_check_original
	local s=$BATS_TEST_TMPDIR/sealed.stream w=$BATS_TEST_TMPDIR/cut.stream size n
	stasis-seal --encrypt --tls-cert "$PKI/ec.pem" <"$BATS_TEST_TMPDIR/plain.stream" >"$s"
	size=$(stat -c %s "$s")
	for n in 0 40 200 1000 $((size / 2)) $((size - 300)) $((size - 41)) $((size - 1)); do
		head -c "$n" "$s" >"$w"
		open_refused "$w" || { echo "FAILED: the first $n of $size bytes accepted"; return 1; }
		grep -q -i 'truncated\|empty input' "$BATS_TEST_TMPDIR/open.err" ||
			{ echo "FAILED: cut at $n: $(cat "$BATS_TEST_TMPDIR/open.err")"; return 1; }
	done
	{ cat "$s"; printf 'x'; } >"$w"
	open_refused "$w"
	{ cat "$s" "$s"; } >"$w"
	open_refused "$w"
}

@test "dropped, added and truncated images and records of a sealed directory are refused" {
	start_secret
	sealed_dump "$SEALED" "$PKI/ec.pem"
	go_and_check_original
	local w=$BATS_TEST_TMPDIR/edited case f
	try() { # description: the edit was made in $w
		stasis-serialize pack -D "$w" 2>/dev/null |
			stasis-seal --open --tls-key "$PKI/ec.key" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/open.err" &&
			{ echo "FAILED: accepted: $1"; return 1; }
		echo "# $1: $(cat "$BATS_TEST_TMPDIR/open.err")"
		if stasis-serialize unpack -D "$BATS_TEST_TMPDIR/u" <"$BATS_TEST_TMPDIR/out" 2>/dev/null; then
			return 1
		fi
	}
	fresh() { rm -rf "$w" "$BATS_TEST_TMPDIR/u"; cp -r "$SEALED" "$w"; }
	for f in "$SEALED"/*.img; do
		f=${f##*/}
		fresh
		rm "$w/$f"
		try "$f removed"
	done
	fresh
	truncate -s -4096 "$w"/pages-*.img
	try "the last page of a page image cut off"
	fresh
	f=$(ls "$w"/core-*.img | head -n 1)
	# the last record of core-PID: keep only the first record
	python3 - "$f" <<'EOF'
import struct, sys
p = sys.argv[1]
d = open(p, 'rb').read()
n = struct.unpack_from('<I', d, 8)[0]
open(p, 'wb').write(d[:12 + n])
EOF
	try "the last record of ${f##*/} dropped"
	fresh
	cp "$w/pstree.img" "$w/extra.img"
	try "an image added"
	fresh
	cat "$w/pstree.img" <(tail -c +9 "$w/pstree.img") >"$w/p2" && mv "$w/p2" "$w/pstree.img"
	try "a record appended (a copy of the first)"
	fresh
	rm "$w/cipher.img"
	try "cipher.img removed (the rest is not plaintext)"
	run stasis-seal --open --tls-key "$PKI/ec.key" -D "$w"
	[ "$status" -ne 0 ]
	[[ $output == *"lost its cipher image"* ]]
}

# Rewrite the sealed stream IN into OUT with every pagetags-N record moved
# after all the page frames (sequence numbers renumbered): tags after their
# frames, which --open must accept (holding the frames) as well.
tags_last() { # IN OUT
	python3 - "$1" "$2" <<'EOF'
import struct, sys
data = open(sys.argv[1], 'rb').read()
frames, names, pos = [], {}, 0
while pos < len(data):
    magic, kind, flags, image, length, seq, offset = struct.unpack_from('<IHHIIQQ', data, pos)
    payload = data[pos + 32:pos + 32 + length]
    if kind == 2:
        names[image] = payload.decode()
    frames.append([kind, flags, image, length, offset, payload])
    pos += 32 + length
trailer = frames.pop()
tags = [f for f in frames if f[0] == 3 and names.get(f[2], '').startswith('pagetags-')]
rest = [f for f in frames if not (f[0] == 3 and names.get(f[2], '').startswith('pagetags-'))]
last_page = max(i for i, f in enumerate(rest) if f[0] == 4)
out = rest[:last_page + 1] + tags + rest[last_page + 1:] + [trailer]
with open(sys.argv[2], 'wb') as o:
    for seq, (kind, flags, image, length, offset, payload) in enumerate(out):
        o.write(struct.pack('<IHHIIQQ', 0x52465453, kind, flags, image, length, seq, offset))
        o.write(payload)
EOF
}

# IN without its pagetags-N records (trailer count fixed) into OUT.
tags_dropped() { # IN OUT
	python3 - "$1" "$2" <<'EOF'
import struct, sys
data = open(sys.argv[1], 'rb').read()
out, names, pos, seq = bytearray(), {}, 0, 0
while pos < len(data):
    magic, kind, flags, image, length, s, offset = struct.unpack_from('<IHHIIQQ', data, pos)
    payload = data[pos + 32:pos + 32 + length]
    pos += 32 + length
    if kind == 2:
        names[image] = payload.decode()
    if kind == 3 and names.get(image, '').startswith('pagetags-'):
        continue
    if kind == 5:
        payload = struct.pack('<Q', seq)
    out += struct.pack('<IHHIIQQ', magic, kind, flags, image, length, seq, offset) + payload
    seq += 1
open(sys.argv[2], 'wb').write(out)
EOF
}

@test "page tags that come after their frames are accepted; frames without tags are refused" {
	start_secret
	collect_stream "$BATS_TEST_TMPDIR/plain.stream"
	go_and_check_original
	local s=$BATS_TEST_TMPDIR/sealed.stream r=$BATS_TEST_TMPDIR/reordered.stream
	stasis-seal --encrypt --tls-cert "$PKI/ec.pem" <"$BATS_TEST_TMPDIR/plain.stream" >"$s"
	tags_last "$s" "$r"
	if cmp -s "$s" "$r"; then echo "the rewrite changed nothing"; false; fi
	stasis-seal --open --tls-key "$PKI/ec.key" --threads 0 <"$r" >"$BATS_TEST_TMPDIR/opened.stream"
	cmp "$BATS_TEST_TMPDIR/plain.stream" "$BATS_TEST_TMPDIR/opened.stream"
	stasis-seal --open --tls-key "$PKI/ec.key" --threads 2 <"$r" | cmp - "$BATS_TEST_TMPDIR/plain.stream"
	# without the tags, the held frames never go out
	tags_dropped "$s" "$BATS_TEST_TMPDIR/notags.stream"
	open_refused "$BATS_TEST_TMPDIR/notags.stream"
	grep -q "no authentication tag" "$BATS_TEST_TMPDIR/open.err"
}

@test "an unsealed stream passes --open unchanged; --require-sealed refuses it" {
	start_secret
	collect_stream "$BATS_TEST_TMPDIR/plain.stream"
	go_and_check_original
	stasis-seal --open --tls-key "$PKI/nothing.key" <"$BATS_TEST_TMPDIR/plain.stream" >"$BATS_TEST_TMPDIR/out"
	cmp "$BATS_TEST_TMPDIR/plain.stream" "$BATS_TEST_TMPDIR/out"
	run bash -c "stasis-seal --open --require-sealed <'$BATS_TEST_TMPDIR/plain.stream' >/dev/null"
	[ "$status" -ne 0 ]
	[[ $output == *"not sealed"* ]]
	# a sealed stream is not sealed twice
	stasis-seal --encrypt --tls-cert "$PKI/ec.pem" <"$BATS_TEST_TMPDIR/plain.stream" >"$BATS_TEST_TMPDIR/sealed"
	run bash -c "stasis-seal --encrypt --tls-cert '$PKI/ec.pem' <'$BATS_TEST_TMPDIR/sealed' >/dev/null"
	[ "$status" -ne 0 ]
}

@test "stasis-serialize show --tls-key decodes a sealed directory and stream" {
	start_secret
	collect_stream "$BATS_TEST_TMPDIR/plain.stream"
	go_and_check_original
	stasis-seal --encrypt --tls-cert "$PKI/ec.pem" <"$BATS_TEST_TMPDIR/plain.stream" >"$BATS_TEST_TMPDIR/sealed.stream"
	stasis-serialize unpack -D "$SEALED" <"$BATS_TEST_TMPDIR/sealed.stream"
	run stasis-serialize show -D "$SEALED" --tls-key "$PKI/ec.key"
	[ "$status" -eq 0 ]
	[[ $output == *'"root_pid"'* ]]
	[[ $output == *"cwd-$SECRET"* ]]
	run stasis-serialize show -i "$BATS_TEST_TMPDIR/sealed.stream" --tls-key "$PKI/ec.key"
	[ "$status" -eq 0 ]
	[[ $output == *"cwd-$SECRET"* ]]
	run stasis-serialize show -D "$SEALED" --tls-key "$PKI/other-ec.key"
	[ "$status" -ne 0 ]
}

@test "stasis dump --encrypt and stasis restore --tls-key (front-end)" {
	start_secret
	dump_and_kill --encrypt --tls-cert "$PKI/rsa.pem" --tls-cert "$PKI/ec.pem"
	[ -s "$IMG/cipher.img" ]
	run grep -r -l -F -- "$SECRET" "$IMG"
	[ "$status" -eq 1 ]
	# sealed for both certificates: the RSA key opens it too
	stasis-seal --open --require-sealed --tls-key "$PKI/rsa.key" -D "$IMG" >/dev/null
	restore_and_check --tls-key "$PKI/ec.key"
}

@test "a sealed chain: pre-dump -e twice, then dump -e, each link with its own keys, restored whole; another chain's link in its place is refused" {
	local c=$BATS_TEST_TMPDIR/chain i other
	start_prog dirtier 8
	mkdir -p "$c"
	stasis pre-dump -t "$PID" -D "$c/1" -e --tls-cert "$PKI/ec.pem"
	for i in 1 2; do
		kill -USR1 "$PID"
		for _ in $(seq 100); do grep -q "^DIRTIED $i " "$LOG" && break; sleep 0.05; done
		if [ "$i" = 1 ]; then
			stasis pre-dump -t "$PID" -D "$c/2" -e --tls-cert "$PKI/ec.pem" --prev-images-dir ../1
		fi
	done
	IMG=$c/3
	# (a single process, our child: its PID is free once reaped)
	dump_and_kill -e --tls-cert "$PKI/ec.pem" --track-mem --prev-images-dir ../2
	# sealed links, each with keys of its own, the last one small
	for i in 1 2 3; do [ -s "$c/$i/cipher.img" ]; done
	run cmp -s "$c/1/cipher.img" "$c/2/cipher.img"
	[ "$status" -ne 0 ]
	[ "$(cat "$c"/3/pages-*.img | wc -c)" -lt $((2 << 20)) ]

	# the first link of another chain of the same certificate in its place
	mv "$c/1" "$c/1.real"
	setsid "$TESTPROGS/dirtier" "$BATS_TEST_TMPDIR/go-other" 4 </dev/null >"$BATS_TEST_TMPDIR/other.log" 2>&1 &
	other=$!
	own_pid "$other"
	wait_ready "$BATS_TEST_TMPDIR/other.log" "$other" 10
	stasis pre-dump -t "$other" -D "$c/1" -e --tls-cert "$PKI/ec.pem"
	kill -KILL "$other"
	run stasis restore -D "$IMG" --tls-key "$PKI/ec.key"
	[ "$status" -ne 0 ]
	[[ $output == *"is not the one it was taken against"* ]] || die_with_logs "a foreign link was not refused: $output"
	alive "$PID" && die_with_logs "the refused chain ran a task"
	# the opened links went with the refusal
	[ -z "$(find /dev/shm /tmp -maxdepth 1 -name 'stasis-chain.*' -newer "$c/3/cipher.img" 2>/dev/null)" ]

	rm -rf "$c/1"
	mv "$c/1.real" "$c/1"
	restore_and_check --tls-key "$PKI/ec.key"
}

@test "a sealed chain in one stream: pack --chain of the sealed links, each opened with its own keys by stasis-serialize chain, restored whole" {
	local c=$BATS_TEST_TMPDIR/chain i
	start_prog dirtier 8
	mkdir -p "$c"
	stasis pre-dump -t "$PID" -D "$c/1" -e --tls-cert "$PKI/ec.pem"
	for i in 1 2; do
		kill -USR1 "$PID"
		for _ in $(seq 100); do grep -q "^DIRTIED $i " "$LOG" && break; sleep 0.05; done
		if [ "$i" = 1 ]; then
			stasis pre-dump -t "$PID" -D "$c/2" -e --tls-cert "$PKI/ec.pem" --prev-images-dir ../1
		fi
	done
	IMG=$c/3
	dump_and_kill -e --tls-cert "$PKI/ec.pem" --track-mem --prev-images-dir ../2
	stasis-serialize pack -D "$IMG" --chain >"$BATS_TEST_TMPDIR/chain.stream"
	# the links as stored: three sealed streams
	[ "$(stat -c %s "$BATS_TEST_TMPDIR/chain.stream")" -ge $((8 << 20)) ]
	# a key of nobody the links are sealed for: refused, nothing restored
	run bash -c 'stasis-serialize chain --tls-key "$1" <"$2" | stasis-inject' - \
		"$PKI/other-ec.key" "$BATS_TEST_TMPDIR/chain.stream"
	[ "$status" -ne 0 ]
	[[ $output == *"link 1 of the chain"* || $output == *"key"* ]] || die_with_logs "no clear refusal: $output"
	alive "$PID" && die_with_logs "a chain opened with a wrong key ran a task"
	(cd "$BATS_TEST_TMPDIR" && stasis-serialize chain --require-sealed --tls-key "$PKI/ec.key" \
		-v4 -o chain.log <chain.stream | exec stasis-inject -v4 -o restore.log) \
		</dev/null >"$BATS_TEST_TMPDIR/restore.out" 2>&1 3>&- &
	RPID=$!
	own_pid "$RPID"
	wait_restored
	touch "$GOFILE"
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "the restored program did not finish"
	[ "$STATUS" -eq 0 ] || die_with_logs "the restore exited with $STATUS"
	check_pass_log
	[ "$(grep -c "link [123] of the chain is sealed" "$BATS_TEST_TMPDIR/chain.log")" -eq 3 ]
	# the links kept in memory went with the resolver (others' may be there)
	local d
	d=$(grep -ao '/dev/shm/stasis-chain\.[A-Za-z0-9]*' "$BATS_TEST_TMPDIR/chain.log" | head -n 1)
	[ -n "$d" ] && [ ! -e "$d" ]
}
