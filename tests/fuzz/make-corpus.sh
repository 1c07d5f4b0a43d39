#!/bin/bash
# Seeds for the libFuzzer harnesses (tests/fuzz/corpus/HARNESS), made from
# real checkpoints of the project's test programs: each program is started,
# dumped with `stasis dump` (which kills it), and its images are turned
# into the input of every harness:
#
#   stream           the checkpoint as one stream (stasis-serialize pack);
#                    inject reads the same seeds (corpus/inject is a link)
#   seal             that stream sealed for tests/fuzz/keys/cert.pem
#   imgdir           the image directory, and the sealed one, as the
#                    harness's file list (1-byte name length, name, 4-byte
#                    little-endian data length, data)
#   transfer         what a stasis-transfer sender sends: HELLO, chunks of
#                    the stream, the zero-length end
#   config           hand-written configuration files (in this script)
#
# Page images are cut to their first page: the harnesses do not need the
# pages and the corpus stays small; so do checkpoints over 128 KiB, which
# are left out (the sealed and transfer forms only of the first few). Needs root and a build (tests/run, or
# STASIS_PREFIX pointing at an installed stasis).
#
#   tests/fuzz/make-corpus.sh [PROGRAM[:ARG,...]...]
#
# (default: a few of tests/progs; an ARG @ stands for a scratch directory)

set -eu

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${STASIS_BUILD_DIR:-$repo/build}
bin=${STASIS_PREFIX:-$build/root}/bin
corpus=$repo/tests/fuzz/corpus
cert=$repo/tests/fuzz/keys/cert.pem
progs=("$@")
[ ${#progs[@]} -gt 0 ] || progs=(sleeper:nanosleep heap events:epoll timers tree threads pipes:@
	unixsk:tree files:@ mappings:@ memfd signals)

tmp=$(mktemp -d /tmp/stasis-corpus.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

le32() { # N: 4 bytes, little-endian
	printf "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))"
	printf "\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 24 & 255)))"
}

# A directory as the imgdir harness's file list.
dir_input() { # DIR
	local f name
	for f in "$1"/*; do
		name=$(basename "$f")
		printf "\\x$(printf %02x ${#name})%s" "$name"
		le32 "$(stat -c %s "$f")"
		cat "$f"
	done
}

# A stream as a stasis-transfer sender sends it (chunks of 64 KiB).
transfer_input() { # FILE
	local size off=0 n
	size=$(stat -c %s "$1")
	printf 'STASIS-XFER/1.0\n'
	while [ "$off" -lt "$size" ]; do
		n=$((size - off > 65536 ? 65536 : size - off))
		le32 "$n"
		tail -c +$((off + 1)) "$1" | head -c "$n"
		off=$((off + n))
	done
	le32 0
}

mkdir -p "$corpus"/{stream,seal,imgdir,transfer,config}
[ -e "$corpus/inject" ] || ln -s stream "$corpus/inject"
n=0
for spec in "${progs[@]}"; do
	prog=${spec%%:*}
	args=()
	[ "$spec" = "$prog" ] || IFS=, read -r -a args <<<"${spec#*:}"
	# the seed's name: the program and its first argument (a mode)
	p=$prog
	[ ${#args[@]} -gt 0 ] && [ "${args[0]}" != @ ] && p=$prog-${args[0]}
	for i in "${!args[@]}"; do
		if [ "${args[$i]}" = @ ]; then
			mkdir -p "$tmp/$p.scratch"
			args[i]=$tmp/$p.scratch
		fi
	done
	img=$tmp/$p
	mkdir -p "$img"
	rm -f "$tmp/go"
	setsid "$build/tests/$prog" "$tmp/go" "${args[@]}" </dev/null >"$tmp/$p.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		grep -qx READY "$tmp/$p.log" 2>/dev/null && break
		sleep 0.05
	done
	grep -qx READY "$tmp/$p.log" || { echo "$p did not start" >&2; exit 1; }
	"$bin/stasis" dump -t "$pid" -D "$img" >/dev/null 2>&1 || { echo "cannot dump $p" >&2; exit 1; }
	wait "$pid" 2>/dev/null || true
	pid=
	for f in "$img"/pages-*.img; do
		[ -e "$f" ] && truncate -s "$(( $(stat -c %s "$f") < 4096 ? $(stat -c %s "$f") : 4096 ))" "$f"
	done
	"$bin/stasis-serialize" pack -D "$img" >"$tmp/$p.stream"
	if [ "$(stat -c %s "$tmp/$p.stream")" -gt 131072 ]; then
		echo "$p: its checkpoint is over 128 KiB, left out" >&2
		continue
	fi
	cp "$tmp/$p.stream" "$corpus/stream/$p"
	dir_input "$img" >"$corpus/imgdir/$p"
	n=$((n + 1))
	[ $n -le 4 ] || continue
	"$bin/stasis-seal" --encrypt --tls-cert "$cert" <"$tmp/$p.stream" >"$tmp/$p.sealed"
	cp "$tmp/$p.sealed" "$corpus/seal/$p"
	mkdir "$tmp/$p.sealdir"
	"$bin/stasis-seal" --encrypt --tls-cert "$cert" -D "$tmp/$p.sealdir" <"$tmp/$p.stream"
	dir_input "$tmp/$p.sealdir" >"$corpus/imgdir/$p-sealed"
	transfer_input "$tmp/$p.stream" >"$corpus/transfer/$p"
done

cat >"$corpus/config/dump" <<'CONF'
# a dump configuration
tree 1234
images-dir /var/lib/stasis/ckpt
leave-running
verbosity=4
ps-socket 3
--tcp-established
CONF
cat >"$corpus/config/quotes" <<'CONF'
images-dir "/a dir/with \"quotes\" in it"   # comment
log-file "restore.log"
v
-vvv
track-mem
page-server  ps-socket 17
CONF
cat >"$corpus/config/sizes" <<'CONF'
ps-socket 2147483647
tree -5
verbosity 9
images-dir 64K
images-dir 1G
CONF
echo "corpus in $corpus: $(du -sh "$corpus" | cut -f1)"
