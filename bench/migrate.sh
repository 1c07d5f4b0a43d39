#!/bin/bash
# Benchmark: image-less migration of a process holding SIZE_MB MiB of
# touched anonymous memory over loopback, with TLS and without:
#
#   stasis restore --remote --address 127.0.0.1 --port P -d [--tls ...]
#   stasis dump -t PID --remote --address 127.0.0.1 --port P [--tls ...]
#
#   bench/migrate.sh [SIZE_MB]            (default: 1024; as root)
#
# For each mode: start $STASIS_BUILD_DIR/tests/bigmem SIZE_MB GOFILE, start
# the receiver and wait until it listens (--status-fd), then time from the
# start of stasis dump (the freeze) until stasis restore -d returns (the
# restored process runs): the downtime. Throughput is the stream's bytes
# over the time stasis-transfer took to send them and get the receiver's
# confirmation. Finally touch GOFILE: the restored process checks every
# word of its memory and must print PASS.
#
# Both ends are on one host and share the PID namespace, so the restore
# starts only once the source has been killed, after the whole stream
# arrived (stasis-transfer holds it in memory meanwhile): downtime = dump +
# restore, one after the other. Between two hosts the destination restores
# while the pages arrive.
#
# Environment:
#   STASIS_BUILD_DIR  build tree (default: the build/ beside this script);
#                     stasis is taken from $STASIS_BUILD_DIR/root/bin first
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

now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

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

# A CA, the receiver's certificate for 127.0.0.1, the sender's.
make_pki() {
	local d=$1 n
	mkdir -p "$d" || return 1
	for n in ca dst src; do
		certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 \
			--outfile "$d/$n-key.pem" >/dev/null 2>&1 || return 1
	done
	printf 'cn = bench CA\nca\ncert_signing_key\nexpiration_days = 2\n' >"$d/ca.tmpl"
	certtool --generate-self-signed --template "$d/ca.tmpl" --load-privkey "$d/ca-key.pem" \
		--outfile "$d/ca.pem" >/dev/null 2>&1 || return 1
	for n in dst src; do
		printf 'cn = %s\nip_address = 127.0.0.1\ntls_www_server\ntls_www_client\nsigning_key\nexpiration_days = 2\n' \
			"$n" >"$d/$n.tmpl"
		certtool --generate-certificate --template "$d/$n.tmpl" --load-privkey "$d/$n-key.pem" \
			--load-ca-certificate "$d/ca.pem" --load-ca-privkey "$d/ca-key.pem" \
			--outfile "$d/$n.pem" >/dev/null 2>&1 || return 1
	done
}

pki=$top/pki
make_pki "$pki" || die "cannot make the certificates"
rows=()
status=0

bench_one() { # MODE (plain | tls)
	local mode=$1 run="$top/$1" pid rpid t0 t1 t2 rc
	local tls_dst=() tls_src=()
	mkdir -p "$run" || return 1
	local log=$run/bigmem.log go=$run/go pidfile=$run/restored.pid
	if [ "$mode" = tls ]; then
		tls_dst=(--tls --tls-cacert "$pki/ca.pem" --tls-cert "$pki/dst.pem" --tls-key "$pki/dst-key.pem")
		tls_src=(--tls --tls-cacert "$pki/ca.pem" --tls-cert "$pki/src.pem" --tls-key "$pki/src-key.pem")
	fi
	port=$((port + 1))

	echo "bench: $mode: starting bigmem $mb" >&2
	spawn "$bigmem" "$mb" "$go" >"$log" 2>&1 </dev/null &
	pid=$!
	pids+=("$pid")
	wait_line "$log" READY "$wait_s" || { cat "$log" >&2; echo "bench: bigmem did not get READY" >&2; return 1; }

	# the receiver, in the background; it says when it listens
	stasis restore --remote --address 127.0.0.1 --port "$port" "${tls_dst[@]}" -d \
		--pidfile "$pidfile" --status-fd 3 -v3 -o "$run/restore.log" \
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
		t0=$(now)
		stasis dump -t "$pid" --remote --address 127.0.0.1 --port "$port" "${tls_src[@]}" \
			-v3 -o "$run/dump.log" >"$run/dump.out" 2>&1 </dev/null
		rc=$?
		t1=$(now)
		wait "$pid" # reap it: the restore waits for the PID
	} 2>/dev/null
	if [ $rc -ne 0 ]; then
		cat "$run/dump.out" >&2
		echo "bench: stasis dump failed ($rc)" >&2
		return 1
	fi
	wait "$rpid"
	rc=$?
	t2=$(now)
	if [ $rc -ne 0 ]; then
		cat "$run/restore.out" >&2
		echo "bench: stasis restore --remote failed ($rc)" >&2
		return 1
	fi
	local restored
	restored=$(cat "$pidfile" 2>/dev/null)
	[ -n "$restored" ] && pids+=("$restored")

	# the stream's size and the time to send it and get the confirmation
	local line bytes send_s
	line=$(grep -o 'the receiver confirmed [0-9]* bytes in [0-9.]* s' "$run/dump.log" | tail -n 1)
	bytes=$(echo "$line" | awk '{ print $4 }')
	send_s=$(echo "$line" | awk '{ print $7 }')
	local frozen_ms
	frozen_ms=$(grep -o 'frozen [0-9]* us' "$run/dump.log" | awk '{ printf "%.0f", $2 / 1000 }' | tail -n 1)

	touch "$go"
	local verdict=PASS
	if ! wait_line "$log" 'PASS' "$wait_s"; then
		verdict=FAIL
		grep -q FAIL "$log" || verdict="no answer"
		tail -n 5 "$log" >&2
	fi
	[ -n "$restored" ] && { wait_gone "$restored" 10 || kill -KILL "$restored" 2>/dev/null; }

	rows+=("$(printf '%-6s %10s %10s %10s %12s %12s  %s' "$mode" \
		"$(elapsed "$t0" "$t2")" "$(elapsed "$t0" "$t1")" "$(elapsed "$t1" "$t2")" \
		"$(awk -v b="${bytes:-0}" 'BEGIN { printf "%.1f", b / 1048576 }')" \
		"$(awk -v b="${bytes:-0}" -v s="${send_s:-0}" 'BEGIN { if (s > 0) printf "%.0f", b / 1048576 / s; else print "-" }')" \
		"$verdict")")
	[ "$verdict" = PASS ]
}

for m in plain tls; do
	bench_one "$m" || status=1
done

echo
echo "stasis image-less migration of $mb MiB over loopback, $(nproc) CPUs, kernel $(uname -r)"
printf '%-6s %10s %10s %10s %12s %12s  %s\n' mode "downtime s" "dump s" "restore s" "stream MiB" "xfer MiB/s" check
for r in "${rows[@]}"; do echo "$r"; done
echo "downtime: from the start of stasis dump (the freeze) until stasis restore -d returned"
echo "  (the restored process runs); dump s: stasis dump's wall time (frozen, sending, confirmed);"
echo "  restore s: after that, until the restored process runs (its PIDs free, memory filled)"
echo "xfer MiB/s: stream bytes / the time stasis-transfer took to send them and get the confirmation"
exit $status
