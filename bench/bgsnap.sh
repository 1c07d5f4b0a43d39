#!/bin/bash
# Benchmark: the frozen time of stasis dump -R with the background snapshot
# (docs/memory.md) against the frozen copy (--no-background-snapshot).
#
#   bench/bgsnap.sh [SIZE_MB...]     (default: 256 1024 4096; as root)
#
# For each size, tests/progs/bgwriter.c runs 2 threads that stamp SIZE_MB
# of memory without pause; it is dumped with -R twice into a fresh
# directory: with the background snapshot (the default) and without. The
# program itself measures the longest pause any writer saw during each dump
# ("pause", from SIGUSR1 to SIGUSR1); "frozen" is the dump's own figure
# (stats-dump: from the end of the freeze until the tree ran again),
# "freeze" the seizing before it. Target: the pause at most 50 ms at every
# size with the background snapshot.
#
# Sourced (". bench/bgsnap.sh" with BGSNAP_LIB=1), it only defines
# bgsnap_row SIZE_MB, which prints one line of the table, for a shared
# benchmark to call.
#
# Environment: STASIS_BUILD_DIR (default: build/ beside this script),
# BENCH_DIR (default: a fresh directory in /var/tmp, on the disk).

bgsnap_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bgsnap_build=${STASIS_BUILD_DIR:-$bgsnap_repo/build}
export PATH="$bgsnap_build/root/bin:$PATH"

# A field of the stats-dump in DIR ("-" when absent).
bgsnap_stat() { # DIR FIELD
	stasis-serialize show -i "$1/stats-dump.img" | awk -F': ' -v f="\"$2\"" '
		$1 ~ f { gsub(/[^0-9a-z]/, "", $2); v = $2 }
		END { print (v == "" ? "-" : v) }'
}

# The program's longest pause since the last call, in us.
bgsnap_pause() { # PID LOG
	local n
	n=$(grep -c '^PAUSE' "$2")
	kill -USR1 "$1"
	for _ in $(seq 200); do
		[ "$(grep -c '^PAUSE' "$2")" -gt "$n" ] && break
		sleep 0.01
	done
	grep '^PAUSE' "$2" | tail -n 1 | awk '{ print $2 }'
}

# One dump -R of PID into DIR with ARGS: "pause_us frozen_us freeze_us
# copy_us pages_on_write".
bgsnap_dump() { # PID LOG DIR [ARGS...]
	local pid=$1 log=$2 dir=$3 pause
	shift 3
	rm -rf "$dir"
	mkdir -p "$dir"
	bgsnap_pause "$pid" "$log" >/dev/null
	stasis dump -R -t "$pid" -D "$dir" "$@" >/dev/null 2>"$dir.err" ||
		{ echo "dump failed: $(tail -n 2 "$dir.err")" >&2; return 1; }
	pause=$(bgsnap_pause "$pid" "$log")
	echo "$pause $(bgsnap_stat "$dir" frozen_time) $(bgsnap_stat "$dir" freezing_time)" \
		"$(bgsnap_stat "$dir" background_copy_time) $(bgsnap_stat "$dir" pages_copied_on_write)"
	rm -rf "$dir"
}

bgsnap_header() {
	printf '%-8s | %-32s | %-20s\n' "" "background snapshot (default)" "frozen copy"
	printf '%-8s | %9s %9s %9s %9s %9s | %9s %9s\n' size_MB pause_ms frozen_ms freeze_ms \
		copy_ms on_write pause_ms frozen_ms
}

bgsnap_row() { # SIZE_MB
	local size=$1 top pid log bg fz ms
	top=${BENCH_DIR:-$(mktemp -d /var/tmp/stasis-bench-bgsnap.XXXXXX)} || return 1
	log=$top/bgwriter.log
	rm -f "$top/go"
	setsid "$bgsnap_build/tests/bgwriter" "$top/go" 2 $((size * 256 / 2)) </dev/null >"$log" 2>&1 &
	pid=$!
	for _ in $(seq 600); do grep -q READY "$log" && break; sleep 0.05; done
	grep -q READY "$log" || { echo "bgwriter did not start" >&2; kill -KILL "$pid"; return 1; }
	bg=$(bgsnap_dump "$pid" "$log" "$top/img") || bg="- - - - -"
	fz=$(bgsnap_dump "$pid" "$log" "$top/img" --no-background-snapshot) || fz="- - - - -"
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
	[ -n "${BENCH_DIR:-}" ] || rm -rf "$top"
	ms() { [ "$1" = - ] && echo - || awk -v v="$1" 'BEGIN { printf "%.1f", v / 1000 }'; }
	read -r -a b <<<"$bg"
	read -r -a f <<<"$fz"
	printf '%-8s | %9s %9s %9s %9s %9s | %9s %9s\n' "$size" "$(ms "${b[0]}")" "$(ms "${b[1]}")" \
		"$(ms "${b[2]}")" "$(ms "${b[3]}")" "${b[4]}" "$(ms "${f[0]}")" "$(ms "${f[1]}")"
}

if [ "${BGSNAP_LIB:-0}" != 1 ]; then
	set -u
	[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
	[ -x "$bgsnap_build/tests/bgwriter" ] || { echo "bench: bgwriter is not built" >&2; exit 1; }
	sizes=("$@")
	[ ${#sizes[@]} -gt 0 ] || sizes=(256 1024 4096)
	bgsnap_header
	for s in "${sizes[@]}"; do
		[[ $s =~ ^[1-9][0-9]*$ ]] || { echo "bench: bad size $s" >&2; exit 1; }
		bgsnap_row "$s"
	done
fi
