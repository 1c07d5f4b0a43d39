#!/usr/bin/env bats
# stasis-serialize: stream <-> directory conversion, show as JSON, and the
# handling of truncated, damaged and hostile input. The sample checkpoint
# comes from stasis-test-mkstream (tests/progs/mkstream.c, built in
# $STASIS_BUILD_DIR/serialize): inventory, pstree, core-1234 (TaskCore and
# two ThreadCores), fdinfo, files, fs, mm, pagemap and 600 KiB of pages-1.

STASIS_BUILD_DIR=${STASIS_BUILD_DIR:-$BATS_TEST_DIRNAME/../build}
MKSTREAM=$STASIS_BUILD_DIR/serialize/stasis-test-mkstream

setup() {
	command -v stasis-serialize >/dev/null || PATH=$STASIS_BUILD_DIR/serialize:$PATH
	command -v stasis-serialize >/dev/null || {
		echo "stasis-serialize is not built"
		return 1
	}
	[ -x "$MKSTREAM" ] || {
		echo "test helper $MKSTREAM is not built"
		return 1
	}
	T=$BATS_TEST_TMPDIR
	"$MKSTREAM" >"$T/s.bin"
}

teardown() {
	if [ -n "${SMALL_MNT:-}" ]; then
		umount "$SMALL_MNT"
	fi
}

# Writes byte VALUE (0-255) at OFFSET of FILE.
poke() { # FILE OFFSET VALUE
	printf "\\$(printf %03o "$3")" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# unpack STREAM into DIR with an acknowledgement file; sets status/output.
unpack_ack() { # STREAM DIR
	run bash -c 'stasis-serialize unpack -D "$2" --ack-fd 3 3>"$2.ack" <"$1"' _ "$1" "$2"
}

# Fails unless the last run ended with status 1 (an error, not a signal),
# with exactly one line of output that matches the pattern.
one_error() { # PATTERN
	echo "status $status, output: $output"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" == *"$1"* ]]
}

@test "unpack then pack gives back the same stream, byte for byte" {
	unpack_ack "$T/s.bin" "$T/d"
	[ "$status" -eq 0 ]
	printf 'OK\n' | cmp - "$T/d.ack"
	run ls -A "$T/d"
	[ "$output" = "$(printf '%s.img\n' core-1234 fdinfo-1234 files fs-1234 inventory \
		mm-1234 pagemap-1234 pages-1 pstree)" ]
	[ "$(stat -c %s "$T/d/pages-1.img")" -eq $((600 * 1024)) ]
	stasis-serialize pack -D "$T/d" >"$T/s2.bin"
	cmp "$T/s.bin" "$T/s2.bin"
}

@test "empty images and images of unknown type survive the round trip" {
	"$MKSTREAM" -e -x >"$T/e.bin"
	stasis-serialize unpack -D "$T/d" <"$T/e.bin"
	[ -f "$T/d/timers-1234.img" ] && [ -f "$T/d/pages-2.img" ] && [ -f "$T/d/stats-unknown.img" ]
	[ "$(stat -c %s "$T/d/pages-2.img")" -eq 0 ]
	stasis-serialize pack -D "$T/d" | cmp "$T/e.bin" -
}

@test "show decodes every record of a stream into JSON" {
	"$MKSTREAM" -x >"$T/x.bin"
	stasis-serialize show <"$T/x.bin" >"$T/out.json"
	python3 -m json.tool "$T/out.json" >/dev/null
	python3 - "$T/out.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
img = {o["image"]: o for o in doc}
assert [o["image"] for o in doc] == ["inventory", "pstree", "core-1234", "fdinfo-1234",
    "files", "fs-1234", "mm-1234", "pagemap-1234", "pages-1", "stats-unknown"], doc
inv = img["inventory"]["records"][0]
assert inv["root_pid"] == 1234 and inv["kernel"] == "6.1.0-test", inv
assert inv["shell_job"] is False and inv["dump_time_ns"] == 2**64 - 1, inv
assert img["pstree"]["records"][0]["threads"] == [1234, 1235]
task, t1, t2 = img["core-1234"]["records"]
assert task["pid"] == 1234 and task["pdeath_sig"] == -1, task
assert task["sigactions"][0]["handler"] == 0x401500, task
assert task["shared_pending"][0] == "0a" + "00" * 127, task
assert t1["tid"] == 1234 and t1["regs"]["rip"] == 0x401000 + 1234, t1
assert t1["regs"]["rax"] == 2**64 - 38, t1
assert t1["xsave"] == bytes(range(64)).hex() and t1["rseq"]["len"] == 32, t1
assert "robust_list" not in t1, t1          # unset optional fields are left out
assert t2["comm"] == 'w"ork\\er\t\u00e9\ufffd', t2
assert img["files"]["records"][0]["type"] == "TTY"
vmas = img["mm-1234"]["records"][0]["vmas"]
assert [v["kind"] for v in vmas] == ["FILE", "ANON"], vmas
assert img["pagemap-1234"]["records"] == [{"pages_id": 1},
    {"vaddr": 0x7f0000000000, "nr_pages": 150}]
assert img["pages-1"] == {"image": "pages-1", "bytes": 614400}
assert img["stats-unknown"]["records"] == [{"raw": "080112026869"}]
EOF
}

@test "show of a directory, of one image file and of a stream agree" {
	stasis-serialize unpack -D "$T/d" <"$T/s.bin"
	stasis-serialize show <"$T/s.bin" >"$T/stream.json"
	stasis-serialize show -D "$T/d" >"$T/dir.json"
	cmp "$T/stream.json" "$T/dir.json"
	stasis-serialize show - <"$T/s.bin" | cmp "$T/stream.json" -
	stasis-serialize show -i "$T/s.bin" | cmp "$T/stream.json" -

	run stasis-serialize show -i "$T/d/core-1234.img"
	[ "$status" -eq 0 ]
	python3 -c 'import json, sys
o = json.loads(sys.argv[1])
assert o["image"] == "core-1234" and len(o["records"]) == 3, o
assert o["records"][1]["regs"]["cs"] == 0x33, o' "$output"

	run stasis-serialize show "$T/d/pages-1.img"
	[ "$status" -eq 0 ]
	python3 -c 'import json, sys
assert json.loads(sys.argv[1]) == {"image": "pages-1", "bytes": 614400}' "$output"
}

@test "a truncated stream: unpack says so, exits 1, writes no acknowledgement" {
	local size n
	size=$(stat -c %s "$T/s.bin")
	for n in 1 31 32 33 49 50 91 200 1000 5000 300000 $((size - 41)) $((size - 40)) \
		$((size - 8)) $((size - 1)); do
		head -c "$n" "$T/s.bin" >"$T/cut.bin"
		unpack_ack "$T/cut.bin" "$T/d"
		echo "cut at $n bytes"
		one_error "truncated checkpoint"
		[ ! -s "$T/d.ack" ]
		# nothing that looks like a checkpoint is left behind
		[ ! -e "$T/d" ]
		# show prints what it could decode, then the error
		run stasis-serialize show -i "$T/cut.bin"
		[ "$status" -eq 1 ]
		[[ "$output" == *"truncated checkpoint"* ]]
	done
}

@test "a failed unpack keeps the checkpoint the directory held" {
	stasis-serialize unpack -D "$T/d" <"$T/s.bin"
	head -c 300000 "$T/s.bin" >"$T/cut.bin"
	unpack_ack "$T/cut.bin" "$T/d"
	one_error "truncated"
	[ ! -s "$T/d.ack" ]
	run ls -A "$T/d"
	[ "${#lines[@]}" -eq 9 ]
	[[ "$output" != *stasis-unpack* ]]
	stasis-serialize pack -D "$T/d" | cmp "$T/s.bin" -
}

@test "unpack replaces the images of an older checkpoint and leaves other files alone" {
	"$MKSTREAM" -x -e >"$T/old.bin"
	stasis-serialize unpack -D "$T/d" <"$T/old.bin"
	echo "keep me" >"$T/d/dump.log"
	stasis-serialize unpack -D "$T/d" <"$T/s.bin"
	[ ! -e "$T/d/stats-unknown.img" ] && [ ! -e "$T/d/pages-2.img" ] && [ ! -e "$T/d/timers-1234.img" ]
	[ "$(cat "$T/d/dump.log")" = "keep me" ]
	stasis-serialize pack -D "$T/d" | cmp "$T/s.bin" -
}

@test "damaged frame headers are detected" {
	# frame 0: HEAD (32 + 18 bytes); frame 1 at 50: IMAGE "inventory" (32 + 9);
	# frame 2 at 91: the inventory record. Header: magic 0, kind 4, flags 6,
	# image 8, len 12, seq 16, offset 24.
	local spec pos val
	for spec in 0:0x00 1:0x41 50:0x58 54:0x09 58:0x05 66:0x07 99:0x07 102:0x40 106:0x01 107:0xff; do
		pos=${spec%:*} val=${spec#*:}
		cp "$T/s.bin" "$T/bad.bin"
		poke "$T/bad.bin" "$pos" $((val))
		cmp -s "$T/s.bin" "$T/bad.bin" && {
			echo "byte $pos is already $val"
			return 1
		}
		unpack_ack "$T/bad.bin" "$T/d"
		echo "byte $pos set to $val"
		[ "$status" -eq 1 ]
		[ "${#lines[@]}" -eq 1 ]
		[[ "$output" =~ corrupted|not\ a\ stasis|truncated|cannot\ hold ]]
		[ ! -s "$T/d.ack" ] && [ ! -e "$T/d" ]
		run stasis-serialize show <"$T/bad.bin"
		[ "$status" -eq 1 ]
	done
}

@test "empty input and garbage give one clear error, never a crash" {
	run stasis-serialize unpack -D "$T/d" </dev/null
	one_error "empty input"
	run stasis-serialize show </dev/null
	one_error "empty input"
	head -c 65536 /dev/urandom >"$T/rand.bin"
	run stasis-serialize unpack -D "$T/d" <"$T/rand.bin"
	one_error "not a stasis image stream"
	run stasis-serialize show -i "$T/rand.bin"
	one_error "not a stasis image stream"
	echo "hello, world" >"$T/text"
	run stasis-serialize show -i "$T/text"
	one_error "not a stasis image stream"
	run stasis-serialize unpack -D "$T/d" <"$T/text"
	one_error "not a stasis image stream"
	[ ! -e "$T/d" ]
}

@test "data after the trailer is an error" {
	{ cat "$T/s.bin"; printf x; } >"$T/long.bin"
	unpack_ack "$T/long.bin" "$T/d"
	one_error "data after the trailer"
	[ ! -s "$T/d.ack" ]
	run stasis-serialize show -i "$T/long.bin"
	[ "$status" -eq 1 ]
	[[ "$output" == *"data after the trailer"* ]]
	# two streams back to back are not one checkpoint either
	cat "$T/s.bin" "$T/s.bin" >"$T/two.bin"
	unpack_ack "$T/two.bin" "$T/d"
	one_error "data after the trailer"
}

@test "pack and show name a truncated or damaged image file" {
	stasis-serialize unpack -D "$T/d" <"$T/s.bin"
	truncate -s -3 "$T/d/core-1234.img"
	run stasis-serialize pack -D "$T/d"
	one_error "core-1234.img: record 2 is truncated"
	run stasis-serialize show -D "$T/d"
	[ "$status" -eq 1 ]
	[[ "$output" == *"core-1234.img: truncated: record 2"* ]]

	truncate -s 10 "$T/d/core-1234.img" # magic and half a length
	run stasis-serialize pack -D "$T/d"
	one_error "core-1234.img: truncated"

	stasis-serialize unpack -D "$T/d" <"$T/s.bin"
	poke "$T/d/inventory.img" 0 0x58
	run stasis-serialize pack -D "$T/d"
	one_error "inventory.img: not a stasis image file"

	stasis-serialize unpack -D "$T/d" <"$T/s.bin"
	poke "$T/d/mm-1234.img" 11 0x7f # length of record 0: far too large
	run stasis-serialize pack -D "$T/d"
	one_error "mm-1234.img: record 0 claims"
}

@test "a record that does not decode is an error naming the image and the record" {
	stasis-serialize unpack -D "$T/d" <"$T/s.bin"
	# record 1 of core-1234 (a ThreadCore) replaced by three bytes of junk
	python3 - "$T/d/core-1234.img" <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
recs, off = [], 8
while off < len(data):
    n, = struct.unpack_from("<I", data, off)
    recs.append(data[off + 4:off + 4 + n])
    off += 4 + n
recs[1] = b"\xff\xff\xff"
open(sys.argv[1], "wb").write(data[:8] + b"".join(struct.pack("<I", len(r)) + r for r in recs))
EOF
	run stasis-serialize show -D "$T/d"
	[ "$status" -eq 1 ]
	[[ "$output" == *"record 1 of image core-1234 does not decode as stasis.ThreadCore"* ]]
	# pack does not decode records; show of the stream finds the same
	stasis-serialize pack -D "$T/d" >"$T/p.bin"
	run stasis-serialize show -i "$T/p.bin"
	[ "$status" -eq 1 ]
	[[ "$output" == *"record 1 of image core-1234 does not decode"* ]]
}

@test "show of a sealed checkpoint needs its private key (stasis-seal's core opens it)" {
	stasis-serialize unpack -D "$T/d" <"$T/s.bin"
	cp "$T/d/inventory.img" "$T/d/cipher.img"
	run stasis-serialize show -D "$T/d" --tls-key "$T/key.pem"
	one_error "cannot load private key $T/key.pem: No such file or directory"
	stasis-serialize pack -D "$T/d" >"$T/sealed.bin"
	run stasis-serialize show --tls-key "$T/key.pem" -i "$T/sealed.bin"
	one_error "cannot load private key $T/key.pem: No such file or directory"
	if [ ! -e /etc/pki/stasis/private/key.pem ]; then
		run stasis-serialize show -D "$T/d"
		one_error "cannot load private key /etc/pki/stasis/private/key.pem"
	fi
	# (tests/seal.bats shows real sealed checkpoints)
}

@test "pack into a closed pipe reports the write error once and exits 1" {
	"$MKSTREAM" -p 16384 >"$T/big.bin"
	stasis-serialize unpack -D "$T/d" <"$T/big.bin"
	run bash -c 'stasis-serialize pack -D "$1" 2>"$1.err" | head -c 100 >/dev/null
		echo "${PIPESTATUS[0]}"' _ "$T/d"
	cat "$T/d.err"
	[ "$output" = 1 ]
	[ "$(wc -l <"$T/d.err")" -eq 1 ]
	grep -q "Broken pipe" "$T/d.err"
}

@test "page images of many write buffers and of an odd length are stored byte for byte" {
	# 21 MiB + 1000 bytes: several 4 MiB buffers of the page writer, written
	# with O_DIRECT, then a tail that O_DIRECT does not take
	"$MKSTREAM" -p 21504 >"$T/big.bin"
	stasis-serialize unpack -D "$T/d" <"$T/big.bin"
	stasis-serialize pack -D "$T/d" | cmp "$T/big.bin" -
	head -c 1000 /dev/urandom >>"$T/d/pages-1.img"
	cp "$T/d/pages-1.img" "$T/pages-1.copy"
	stasis-serialize pack -D "$T/d" >"$T/odd.bin"
	unpack_ack "$T/odd.bin" "$T/d2"
	[ "$status" -eq 0 ]
	printf 'OK\n' | cmp - "$T/d2.ack"
	cmp "$T/pages-1.copy" "$T/d2/pages-1.img"
	stasis-serialize pack -D "$T/d2" | cmp "$T/odd.bin" -
}

@test "page data goes into a pipe by reference (vmsplice), into a file by write; the same bytes" {
	# 21 MiB: chunks of the page reader beyond its three buffers, so that
	# a chunk reused while the pipe (or the relay after it) still holds
	# its pages would show in the bytes
	"$MKSTREAM" -p 21504 >"$T/big.bin"
	stasis-serialize unpack -D "$T/d" <"$T/big.bin"
	strace -f -qq -e trace=vmsplice -o "$T/pipe.trace" stasis-serialize pack -D "$T/d" |
		cmp "$T/big.bin" -
	# through a relay that moves the pages on to a second pipe (splice)
	# before they are read
	run bash -c 'stasis-serialize pack -D "$1" | python3 -c "
import os, sys
r, w = os.pipe()
data = bytearray()
while True:
    n = os.splice(0, w, 1 << 20)
    if not n:
        break
    while n:
        chunk = os.read(r, n)
        data += chunk
        n -= len(chunk)
sys.stdout.buffer.write(data)
" | cmp "$2" -' _ "$T/d" "$T/big.bin"
	[ "$status" -eq 0 ]
	strace -f -qq -e trace=vmsplice -o "$T/file.trace" stasis-serialize pack -D "$T/d" \
		>"$T/file.bin"
	cmp "$T/big.bin" "$T/file.bin"
	# 84 frames of 256 KiB: every payload spliced, nothing into the file
	[ "$(awk '/vmsplice\(/ { n += $NF } END { print n + 0 }' "$T/pipe.trace")" -ge $((84 << 18)) ]
	[ "$(grep -c vmsplice "$T/file.trace")" -eq 0 ]
}

@test "pack --reader-copies reads page chunks into buffers the reader has taken; the same bytes for a slow reader" {
	"$MKSTREAM" -p 21504 >"$T/big.bin"
	stasis-serialize unpack -D "$T/d" <"$T/big.bin"
	stasis-serialize pack -D "$T/d" --reader-copies -v4 -o "$T/pack.log" |
		python3 "$BATS_TEST_DIRNAME/slow_reader.py" |
		cmp "$T/big.bin" -
	# a buffer read into while the pipe still held its pages would show
	# in the bytes; and buffers were read into again
	grep -Eq "page chunks: [1-9][0-9]* read into again" "$T/pack.log"
	run stasis-serialize unpack -D "$T/e" --reader-copies <"$T/big.bin"
	one_error "--reader-copies is an option of pack without --chain only"
	run stasis-serialize pack -D "$T/d" --chain --reader-copies
	one_error "--reader-copies is an option of pack without --chain only"
}

@test "a page write that fails (disk full) fails unpack with one line, without acknowledgement" {
	"$MKSTREAM" -p 16384 >"$T/big.bin"
	mkdir "$T/small"
	mount -t tmpfs -o size=4m stasis-test "$T/small"
	SMALL_MNT=$T/small
	unpack_ack "$T/big.bin" "$T/small/d"
	one_error "No space left on device"
	[ ! -s "$T/small/d.ack" ]
	[ ! -e "$T/small/d" ]
}

@test "pack refuses a directory without a checkpoint and files that are not regular" {
	mkdir "$T/empty"
	run stasis-serialize pack -D "$T/empty"
	one_error "no inventory.img"
	run stasis-serialize pack -D "$T/nonexistent"
	one_error "cannot open images directory"
	stasis-serialize unpack -D "$T/d" <"$T/s.bin"
	mkfifo "$T/d/zz-1.img"
	run timeout 20 stasis-serialize pack -D "$T/d"
	one_error "zz-1.img: not a regular file"
}

@test "--ack-fd and the log options" {
	run stasis-serialize unpack -D "$T/d" --ack-fd 57 <"$T/s.bin"
	one_error "--ack-fd 57"
	[ ! -e "$T/d" ]
	run stasis-serialize unpack -D "$T/d" --ack-fd x <"$T/s.bin"
	one_error "invalid --ack-fd"
	run stasis-serialize pack -D "$T/d" --ack-fd 1
	one_error "--ack-fd is an option of unpack only"

	stasis-serialize -v4 -o "$T/log" unpack -D "$T/d" <"$T/s.bin"
	grep -q "checkpoint stored in $T/d" "$T/log"
	stasis-serialize unpack --verbosity 0 -D "$T/d2" <"$T/s.bin"
	run stasis-serialize --verbosity 9 show -i "$T/s.bin"
	one_error "invalid verbosity"
	# -v0: not even errors
	run stasis-serialize -v0 show </dev/null
	[ "$status" -eq 1 ] && [ -z "$output" ]
}

@test "--help, --version and bad command lines" {
	run stasis-serialize --help
	[ "$status" -eq 0 ]
	local o
	for o in --images-dir --ack-fd --input --tls-key --verbosity --log-file --help --version; do
		[[ "$output" == *"$o"* ]]
	done
	[[ "$output" == *unpack* && "$output" == *pack* && "$output" == *show* ]]
	run stasis-serialize --version
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^stasis-serialize\ \(stasis\)\ [0-9] ]]

	run stasis-serialize --bogus
	[ "$status" -eq 1 ]
	[[ "${lines[0]}" == *"unknown option --bogus"* ]]
	[[ "$output" == *Usage:* ]]
	run stasis-serialize
	[ "$status" -eq 1 ]
	[[ "$output" == *"no command"* ]]
	run stasis-serialize frobnicate -D "$T/d"
	[ "$status" -eq 1 ]
	[[ "$output" == *"unknown command 'frobnicate'"* ]]
	run stasis-serialize unpack
	one_error "needs the images directory"
	run stasis-serialize show -D "$T" -i "$T/s.bin"
	one_error "show takes one input"
}

@test "hostile input: 200 randomly damaged streams never crash unpack, show or pack" {
	python3 - "$T" <<'EOF'
import os, random, shutil, subprocess, sys
t = sys.argv[1]
src = open(os.path.join(t, "s.bin"), "rb").read()
rnd = random.Random(20261123)
d = os.path.join(t, "fz")
for it in range(200):
    data = bytearray(src)
    if it % 5 == 4:
        data = data[:rnd.randrange(len(data))]
    else:
        for _ in range(rnd.randint(1, 4)):
            # mostly in the metadata, where the decoding happens
            i = rnd.randrange(2048) if rnd.random() < 0.8 else rnd.randrange(len(data))
            data[i] = rnd.randrange(256)
    shutil.rmtree(d, ignore_errors=True)
    runs = [["unpack", "-D", d], ["show"]]
    for cmd in runs:
        p = subprocess.run(["stasis-serialize"] + cmd, input=bytes(data),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if p.returncode not in (0, 1) or (p.returncode == 1 and not p.stderr):
            sys.exit("iteration %d: %s exited %d: %s" % (it, cmd, p.returncode, p.stderr))
    if os.path.isdir(d):
        for cmd in (["pack", "-D", d], ["show", "-D", d]):
            p = subprocess.run(["stasis-serialize"] + cmd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=60)
            if p.returncode not in (0, 1):
                sys.exit("iteration %d: %s exited %d" % (it, cmd, p.returncode))
EOF
}
