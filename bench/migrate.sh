#!/bin/bash
# Benchmark: image-less migration of a process holding SIZE_MB MiB of
# touched anonymous memory over loopback, with TLS and without:
#
#   stasis restore --remote --address 127.0.0.1 --port P [--tls ...]
#   stasis dump -t PID --remote --address 127.0.0.1 --port P [--tls ...]
#
#   bench/migrate.sh [SIZE_MB]            (default: 1024; as root)
#
# For each mode: start $STASIS_BUILD_DIR/tests/bigmem SIZE_MB GOFILE, start
# the receiver and wait until it listens (--status-fd), run the dump, then
# touch GOFILE: the restored process checks every word of its memory and
# must print PASS.
#
#   downtime    from the start of the freeze (stasis-freeze's log line,
#               less the time it says freezing took) to the restored tree
#               running (stasis-inject's "restored tree" line); both logs
#               are stamped with CLOCK_MONOTONIC
#   xfer MiB/s  stream bytes / the time stasis-transfer took from its first
#               byte sent to the receiver's confirmation
#
# Modes:
#   plain, tls          both ends in one PID namespace, as a migration
#                       within one host: the restore starts only once the
#                       source is killed, after the whole stream arrived
#                       (held in the receiver's memory meanwhile), so
#                       downtime = dump + restore, one after the other
#   plain-ns, tls-ns    the receiver in a PID namespace of its own (unshare
#                       --pid), as on another host: the restore fills memory
#                       while the pages arrive
#
# Environment:
#   STASIS_BUILD_DIR  build tree (default: the build/ beside this script);
#                     stasis is taken from $STASIS_BUILD_DIR/root/bin first
#   BENCH_MODES       modes to run (default: "plain tls plain-ns tls-ns")
#   BENCH_KEEP=1      keep the logs and certificates
#   BENCH_TIMEOUT     seconds to wait for READY / PASS (default 120)
#   BENCH_PORT        first TCP port to use (default 27700)

set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${STASIS_BUILD_DIR:-$repo/build}
export STASIS_BUILD_DIR=$build
export PATH="$build/root/bin:$PATH"
bigmem=$build/tests/bigmem
wait_s=${BENCH_TIMEOUT:-120}
port=${BENCH_PORT:-27700}

die() { echo "bench: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root"
[ -x "$bigmem" ] || die "$bigmem is not built (tests/progs/bigmem.c)"
command -v stasis >/dev/null || die "stasis is not built ($build/root/bin/stasis); run tests/run or cmake --install first"
command -v stasis-transfer >/dev/null || die "stasis-transfer is not built"
command -v certtool >/dev/null || die "certtool is missing (Debian: gnutls-bin)"

mb=${1:-1024}
[[ $mb =~ ^[1-9][0-9]*$ ]] || die "bad size: $mb (MiB)"

top=$(mktemp -d /tmp/stasis-migrate.XXXXXX) || exit 1
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		case $(cat /proc/"$p"/comm 2>/dev/null) in
		bigmem | stasis*) kill -KILL "$p" 2>/dev/null ;;
		esac
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null
	done
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "bench: logs kept in $top" >&2
	else
		rm -rf "$top"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# Wait (up to $3 seconds) for a line matching $2 in file $1.
wait_line() {
	local t=$(($3 * 10))
	while [ "$t" -gt 0 ]; do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
		t=$((t - 1))
	done
	return 1
}

# Wait (up to $2 seconds) until a task no longer exists or is a zombie.
wait_gone() {
	local p=$1 t=$(($2 * 20)) st
	while [ "$t" -gt 0 ]; do
		st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' /proc/"$p"/status 2>/dev/null)
		{ [ -z "$st" ] || [ "$st" = Z ]; } && return 0
		sleep 0.05
		t=$((t - 1))
	done
	return 1
}

# Run "$@" in its own session with only fds 0-2 (see bench/dump-restore.sh);
# call it in the background: $! is the program itself.
spawn() {
	local fd
	for fd in /proc/$BASHPID/fd/*; do
		fd=${fd##*/}
		[ "$fd" -gt 2 ] && eval "exec $fd>&-"
	done
	exec setsid "$@"
}

# shellcheck source=bench/pki.sh
. "$repo/bench/pki.sh"

pki=$top/pki
make_pki "$pki" || die "cannot make the certificates"
rows=()
status=0

# The CLOCK_MONOTONIC stamp "( 1234.567890)" of the first line of FILE
# matching RE, in seconds.
stamp() { # FILE RE
	sed -n "/$2/{s/^( *\([0-9.]*\)).*/\1/p;q}" "$1"
}

bench_one() { # MODE
	local mode=$1 run="$top/$1" pid rpid rc
	local tls_dst=() tls_src=() ns=()
	mkdir -p "$run" || return 1
	local log=$run/bigmem.log go=$run/go
	case $mode in
	tls*)
		tls_dst=(--tls --tls-cacert "$pki/ca.pem" --tls-cert "$pki/dst.pem" --tls-key "$pki/dst-key.pem")
		tls_src=(--tls --tls-cacert "$pki/ca.pem" --tls-cert "$pki/src.pem" --tls-key "$pki/src-key.pem")
		;;
	esac
	case $mode in
	*-ns) ns=(unshare --pid --fork --mount-proc) ;;
	esac
	port=$((port + 1))

	echo "bench: $mode: starting bigmem $mb" >&2
	spawn "$bigmem" "$mb" "$go" >"$log" 2>&1 </dev/null &
	pid=$!
	pids+=("$pid")
	wait_line "$log" READY "$wait_s" || { cat "$log" >&2; echo "bench: bigmem did not get READY" >&2; return 1; }

	# the receiver, in the background (the parent of the restored tree);
	# it says when it listens
	"${ns[@]}" stasis restore --remote --address 127.0.0.1 --port "$port" "${tls_dst[@]}" \
		--status-fd 3 -v3 -o "$run/restore.log" \
		3>"$run/listening" >"$run/restore.out" 2>&1 </dev/null &
	rpid=$!
	pids+=("$rpid")
	local i=0
	until [ -s "$run/listening" ]; do
		i=$((i + 1))
		[ $i -lt 200 ] && kill -0 "$rpid" 2>/dev/null || { cat "$run/restore.out" >&2; echo "bench: the receiver does not listen" >&2; return 1; }
		sleep 0.05
	done

	echo "bench: $mode: stasis dump -t $pid --remote --address 127.0.0.1 --port $port" >&2
	# (stderr off around it: bash would report the killed source as "Killed")
	{
		stasis dump -t "$pid" --remote --address 127.0.0.1 --port "$port" "${tls_src[@]}" \
			-v3 -o "$run/dump.log" >"$run/dump.out" 2>&1 </dev/null
		rc=$?
		wait "$pid" # reap it: a restore in our PID namespace waits for the PID
	} 2>/dev/null
	if [ $rc -ne 0 ]; then
		cat "$run/dump.out" >&2
		echo "bench: stasis dump failed ($rc)" >&2
		return 1
	fi
	wait_line "$run/restore.log" "stasis-inject: restored tree" "$wait_s" || {
		cat "$run/restore.out" >&2
		echo "bench: the tree was not restored" >&2
		return 1
	}

	# the freeze began "in N us" before its line
	local froze frozen_us restored bytes send_s
	froze=$(stamp "$run/dump.log" "stasis-freeze: froze")
	frozen_us=$(sed -n 's/.*stasis-freeze: froze .* in \([0-9]*\) us.*/\1/p' "$run/dump.log" | head -n 1)
	restored=$(stamp "$run/restore.log" "stasis-inject: restored tree")
	bytes=$(sed -n 's/.*the receiver confirmed \([0-9]*\) bytes in \([0-9.]*\) s.*/\1/p' "$run/dump.log" | tail -n 1)
	send_s=$(sed -n 's/.*the receiver confirmed \([0-9]*\) bytes in \([0-9.]*\) s.*/\2/p' "$run/dump.log" | tail -n 1)

	touch "$go"
	local verdict=PASS
	if ! wait_line "$log" 'PASS' "$wait_s"; then
		verdict=FAIL
		grep -q FAIL "$log" || verdict="no answer"
		tail -n 5 "$log" >&2
	fi
	# the restore returns with the restored process
	wait "$rpid" 2>/dev/null

	rows+=("$(printf '%-9s %10s %12s %12s  %s' "$mode" \
		"$(awk -v a="$froze" -v u="${frozen_us:-0}" -v b="$restored" 'BEGIN { if (a == "" || b == "") print "-"; else printf "%.3f", b - (a - u / 1e6) }')" \
		"$(awk -v b="${bytes:-0}" 'BEGIN { printf "%.1f", b / 1048576 }')" \
		"$(awk -v b="${bytes:-0}" -v s="${send_s:-0}" 'BEGIN { if (s > 0) printf "%.0f", b / 1048576 / s; else print "-" }')" \
		"$verdict")")
	[ "$verdict" = PASS ]
}

for m in ${BENCH_MODES:-plain tls plain-ns tls-ns}; do
	bench_one "$m" || status=1
done

echo
echo "stasis image-less migration of $mb MiB over loopback, $(nproc) CPUs, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-9s %10s %12s %12s  %s\n' mode "downtime s" "stream MiB" "xfer MiB/s" check
for r in "${rows[@]}"; do echo "$r"; done
echo "downtime: from the start of the freeze to the restored tree running (log stamps)"
echo "xfer MiB/s: stream bytes / time from the first byte sent to the receiver's confirmation"
echo "*-ns: the receiver in a PID namespace of its own, restoring while the pages arrive (as on another host)"
exit $status
