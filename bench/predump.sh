#!/bin/bash
# Benchmark: the pause of a dump with and without pre-copy (docs/predump.md).
#
#   bench/predump.sh [SIZE_MB] [WSET_MB] [ROUNDS]   (default: 1024 64 3; as root)
#
# A process holds SIZE_MB of patterned memory and rewrites its first WSET_MB
# without pause (tests/progs/dirtier.c, spin mode). Each round checkpoints it
# twice into fresh directories, leaving it running (-R):
#   one-shot:  stasis dump --no-background-snapshot (the frozen copy)
#   pre-copy:  stasis pre-dump, pre-dump --prev-images-dir ../1, then
#              dump --track-mem --prev-images-dir ../2
# and prints, from each dump's stats-dump, the time the tree was frozen
# (from the first seize to the last page in the stream) and the pages
# copied, then the ratio of the medians. The last pre-copy chain is
# restored and the restored process checks every page (PASS).
#
# With BENCH_MIGRATE=1, the same comparison as a migration over loopback
# with TLS (docs/predump.md, through page servers): one-shot is dump
# --page-server then restore -D on the receiving side; pre-copy is two
# pre-dump --page-server links and the dump, then the restore of the chain.
# Downtime runs from the start of the last dump to the restored tree
# running (restore -d returning); each restored copy checks its pages. Both
# are run twice: restored eagerly, and restored lazily (stasis lazy-pages -D
# DIR, then restore --lazy-pages: the tree runs at once and the daemon
# fills its memory from the directory; the time until every page is in is
# printed too). The table gives each pre-copy/one-shot ratio, and the lazy
# pre-copy against the eager one-shot.
#
# The same again image-less (stasis restore --remote on the receiving side:
# no image on either side): one-shot is dump --remote; pre-copy is two
# pre-dump --remote links and dump --remote --track-mem. Downtime runs from
# the start of the last dump to the restored tree running (restore --remote
# -d returning). Both again with restore --remote --lazy-pages (the tree
# runs once the dump is in; the daemon fills its memory from the links the
# destination keeps). A table of the downtimes and their ratios ends the run.
#
# BENCH_ONLY=remote runs the image-less comparison alone.
#
# Environment: STASIS_BUILD_DIR (default: build/ beside this script),
# BENCH_DIR (default: a fresh directory in /tmp), BENCH_KEEP=1.

set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${STASIS_BUILD_DIR:-$repo/build}
export PATH="$build/root/bin:$PATH"
prog=$build/tests/dirtier
size=${1:-1024} wset=${2:-64} rounds=${3:-3}

die() { echo "bench: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root"
[ -x "$prog" ] || die "$prog is not built (tests/progs/dirtier.c)"
command -v stasis >/dev/null || die "stasis is not built; run tests/run first"
for v in "$size" "$wset" "$rounds"; do
	[[ $v =~ ^[1-9][0-9]*$ ]] || die "bad number: $v"
done

top=${BENCH_DIR:-$(mktemp -d /tmp/stasis-bench-predump.XXXXXX)} || exit 1
mkdir -p "$top"
pid=
cleanup() {
	if [ -n "$pid" ] && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = dirtier ]; then
		kill -KILL "$pid" 2>/dev/null
	fi
	[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$top"
}
trap cleanup EXIT
# shellcheck source=bench/pki.sh
. "$repo/bench/pki.sh"

# "frozen_us pages" of the stats-dump in DIR.
stats() { # DIR
	stasis-serialize show -i "$1/stats-dump.img" | awk -F': ' '
		/"frozen_time"/ { gsub(/[^0-9]/, "", $2); f = $2 }
		/"pages_written"/ { gsub(/[^0-9]/, "", $2); p = $2 }
		END { print f, p }'
}

ms() { awk -v u="$1" 'BEGIN { printf "%.1f", u / 1000 }'; }

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

start() {
	rm -f "$top/go"
	setsid "$prog" "$top/go" "$size" spin "$wset" </dev/null >"$top/prog.log" 2>&1 &
	pid=$!
	for _ in $(seq 600); do
		grep -q READY "$top/prog.log" 2>/dev/null && return 0
		sleep 0.1
	done
	die "dirtier did not start"
}

only=${BENCH_ONLY:-}
[ -z "$only" ] || [ "$only" = remote ] || die "BENCH_ONLY: remote, or nothing"
[ "$only" = remote ] && BENCH_MIGRATE=1

if [ -z "$only" ]; then
start
echo "stasis pre-copy benchmark: $size MiB, $wset MiB rewritten without pause, $rounds rounds"
printf '%-6s %-9s %12s %10s\n' round mode "frozen ms" pages
one=() pre=()
for r in $(seq "$rounds"); do
	d=$top/r$r
	mkdir -p "$d"
	# the frozen copy: with the background snapshot (dump -R's default) the
	# one-shot dump is hardly frozen at all (bench/bgsnap.sh measures it)
	stasis dump -R --no-background-snapshot -t "$pid" -D "$d/one" >/dev/null ||
		die "one-shot dump failed"
	read -r f p < <(stats "$d/one")
	one+=("$f")
	printf '%-6s %-9s %12s %10s\n' "$r" one-shot "$(ms "$f")" "$p"
	stasis pre-dump -t "$pid" -D "$d/1" >/dev/null || die "pre-dump failed"
	stasis pre-dump -t "$pid" -D "$d/2" --prev-images-dir ../1 >/dev/null || die "second pre-dump failed"
	stasis dump -R -t "$pid" -D "$d/3" --track-mem --prev-images-dir ../2 >/dev/null ||
		die "the last dump of the chain failed"
	read -r f p < <(stats "$d/3")
	pre+=("$f")
	printf '%-6s %-9s %12s %10s\n' "$r" pre-copy "$(ms "$f")" "$p"
	[ "$r" = "$rounds" ] || rm -rf "$d"
done
m1=$(printf '%s\n' "${one[@]}" | median)
m2=$(printf '%s\n' "${pre[@]}" | median)
awk -v a="$m1" -v b="$m2" 'BEGIN { printf "median frozen time: one-shot %.1f ms, pre-copy %.1f ms, ratio %.3f (target <= 0.200)\n", a / 1000, b / 1000, b / a }'

# the last chain restores exactly
kill -KILL "$pid"
wait "$pid" 2>/dev/null
for _ in $(seq 100); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
stasis restore -D "$top/r$rounds/3" -d >/dev/null || die "restore of the chain failed"
touch "$top/go"
for _ in $(seq 600); do
	[ -e "/proc/$pid" ] || break
	sleep 0.1
done
tail -n 1 "$top/prog.log"
fi

[ "${BENCH_MIGRATE:-0}" = 1 ] || exit 0

# ---------------------------------------------------------------- migration
command -v certtool >/dev/null || die "certtool is missing (Debian: gnutls-bin)"
make_pki "$top/pki" || die "cannot make the certificates"
port=${BENCH_PORT:-27800}
tls_dst=(--tls --tls-cacert "$top/pki/ca.pem" --tls-cert "$top/pki/dst.pem" --tls-key "$top/pki/dst-key.pem")
tls_src=(--tls --tls-cacert "$top/pki/ca.pem" --tls-cert "$top/pki/src.pem" --tls-key "$top/pki/src-key.pem")
now() { date +%s.%N; }

# One link: a page server into DIR (with ARGS), and the source's COMMAND.
link() { # DIR "SERVER ARGS" COMMAND [ARGS...]
	local dir=$1 sargs=$2 cmd=$3
	shift 3
	port=$((port + 1))
	# shellcheck disable=SC2086
	stasis page-server -D "$dir" --address 127.0.0.1 --port "$port" --daemon $sargs \
		"${tls_dst[@]}" >/dev/null 2>&1 || die "the page server did not start"
	stasis "$cmd" -t "$pid" --page-server --address 127.0.0.1 --port "$port" \
		"${tls_src[@]}" "$@" >/dev/null 2>&1 || die "stasis $cmd --page-server failed"
}

# Restores DIR once the killed source's PID is free, checks it; downtime since
# T0. With lazy, through stasis lazy-pages -D DIR and restore --lazy-pages:
# the tree runs before its memory is in; the time until the daemon has put
# every page in follows.
land() { # DIR T0 MODE [lazy]
	local t1 t2 lz= all=
	wait "$pid" 2>/dev/null
	for _ in $(seq 100); do [ -e "/proc/$pid" ] || break; sleep 0.05; done
	if [ "${4:-}" = lazy ]; then
		rm -f "$1/lazy-pages.socket"
		stasis lazy-pages -D "$1" >"$top/lazy.out" 2>&1 &
		lz=$!
		for _ in $(seq 200); do [ -S "$1/lazy-pages.socket" ] && break; sleep 0.01; done
		stasis restore -D "$1" -d --lazy-pages >/dev/null 2>&1 || die "$3: the restore failed"
		t1=$(now)
		wait "$lz" || die "$3: stasis lazy-pages failed: $(tail -n 2 "$top/lazy.out")"
		t2=$(now)
		all=$(awk -v a="$2" -v b="$t2" 'BEGIN { printf "  (all pages in after %.1f ms)", (b - a) * 1000 }')
	else
		stasis restore -D "$1" -d >/dev/null 2>&1 || die "$3: the restore failed"
		t1=$(now)
	fi
	rm -f "$top/go.ok"
	touch "$top/go"
	for _ in $(seq 600); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
	printf '%-14s %12s ms  %s%s\n' "$3" "$(awk -v a="$2" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')" \
		"$(tail -n 1 "$top/prog.log")" "$all"
}

if [ -z "$only" ]; then
echo "migration over loopback with TLS (page servers), downtime from the last dump to the restored tree running:"
for mode in "" lazy; do
	start
	d=$top/mig-one$mode
	t0=$(now)
	link "$d" "" dump
	# (not in a pipeline: the source must stay this shell's child to be reaped)
	land "$d" "$t0" "one-shot${mode:+ $mode}" $mode >"$top/ps-one$mode"
	cat "$top/ps-one$mode"

	start
	d=$top/mig-pre$mode
	link "$d/1" "" pre-dump
	link "$d/2" "--prev-images-dir ../1" pre-dump --prev-images-dir ../1
	t0=$(now)
	link "$d/3" "--prev-images-dir ../2" dump --track-mem --prev-images-dir ../2
	land "$d/3" "$t0" "pre-copy${mode:+ $mode}" $mode >"$top/ps-pre$mode"
	cat "$top/ps-pre$mode"
done
echo
echo "| page servers, $size MiB, $wset MiB working set, TLS loopback | restore | one-shot | pre-copy (2 pre-dumps + dump) | ratio |"
echo "| --- | --- | --- | --- | --- |"
for mode in "" lazy; do
	a=$(grep -o '[0-9.]* ms' "$top/ps-one$mode" | head -n 1 | awk '{ print $1 }')
	b=$(grep -o '[0-9.]* ms' "$top/ps-pre$mode" | head -n 1 | awk '{ print $1 }')
	awk -v a="$a" -v b="$b" -v o="$(grep -o '[0-9.]* ms' "$top/ps-one" | head -n 1 | awk '{ print $1 }')" \
		-v m="${mode:-eager}" 'BEGIN { printf "| downtime | %s | %.1f ms | %.1f ms | %.2f (against one-shot eager: %.2f; target <= 0.20) |\n", m, a, b, b / a, b / o }'
done
fi

# ---------------------------------------------------------------- image-less
# One image-less migration: PRE pre-dump --remote links, then the dump; the
# downtime in ms on stdout, the restored copy's verdict after it.
remote_migrate() { # PRE MODE [--lazy-pages]
	local pre=$1 i t0 t1 rpid args=()
	port=$((port + 1))
	rm -f "$top/listening"
	stasis restore --remote --address 127.0.0.1 --port "$port" -d --status-fd 3 ${3:-} \
		"${tls_dst[@]}" 3>"$top/listening" >/dev/null 2>"$top/restore.err" &
	rpid=$!
	for _ in $(seq 200); do [ -s "$top/listening" ] && break; sleep 0.05; done
	[ -s "$top/listening" ] || die "$2: stasis restore --remote does not listen"
	for i in $(seq "$pre"); do
		stasis pre-dump -t "$pid" --remote --address 127.0.0.1 --port "$port" \
			"${tls_src[@]}" >/dev/null 2>&1 || die "$2: pre-dump $i --remote failed"
	done
	[ "$pre" -gt 0 ] && args=(--track-mem)
	t0=$(now)
	stasis dump -t "$pid" --remote --address 127.0.0.1 --port "$port" "${args[@]}" \
		"${tls_src[@]}" >/dev/null 2>&1 || die "$2: dump --remote failed"
	# the killed source is ours to reap: its PID is free only then
	wait "$pid" 2>/dev/null
	wait "$rpid" || die "$2: the restore --remote failed: $(tail -n 3 "$top/restore.err")"
	t1=$(now)
	rm -f "$top/go.ok"
	touch "$top/go"
	for _ in $(seq 600); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
	printf '%-14s %12s ms  %s\n' "$2" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')" \
		"$(tail -n 1 "$top/prog.log")"
}

echo "image-less migration over loopback with TLS (restore --remote), downtime from the last dump to the restored tree running:"
start
# (not in a pipeline: the source must stay this shell's child to be reaped)
remote_migrate 0 one-shot >"$top/rem-one"
cat "$top/rem-one"
start
remote_migrate 2 pre-copy >"$top/rem-pre"
cat "$top/rem-pre"
# restore --remote --lazy-pages: the tree runs once the dump is in, its
# memory filled from the links afterwards
start
remote_migrate 0 "one-shot lazy" --lazy-pages >"$top/rem-one-lazy"
cat "$top/rem-one-lazy"
start
remote_migrate 2 "pre-copy lazy" --lazy-pages >"$top/rem-pre-lazy"
cat "$top/rem-pre-lazy"
ms_of() { grep -o '[0-9.]* ms' "$1" | head -n 1 | awk '{ print $1 }'; }
r1=$(ms_of "$top/rem-one")
echo
echo "| image-less migration, $size MiB, $wset MiB working set, TLS loopback | restore | one-shot | pre-copy (2 pre-dumps + dump) | ratio |"
echo "| --- | --- | --- | --- | --- |"
for mode in "" -lazy; do
	awk -v a="$(ms_of "$top/rem-one$mode")" -v b="$(ms_of "$top/rem-pre$mode")" -v o="$r1" \
		-v m="${mode:+lazy}" 'BEGIN { printf "| downtime (freeze to running on the destination) | %s | %.1f ms | %.1f ms | %.2f (against one-shot eager: %.2f; target <= 0.20) |\n", (m == "" ? "eager" : m), a, b, b / a, b / o }'

done
