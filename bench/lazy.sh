#!/bin/bash
# Lazy (post-copy) migration against a full one, over loopback with TLS:
#
#   bench/lazy.sh [SIZE_MB...]      (default: 1024 4096)
#
# For each size, tests/bigmem SIZE_MB (patterned memory, checked after the
# move) is migrated twice, the destination in a PID namespace of its own
# (as another host: the source keeps its PIDs until it is done):
#
#   lazy   stasis dump --lazy-pages --port P --tls -D DIR on the source;
#          stasis lazy-pages --page-server --tls and stasis restore
#          --lazy-pages -D DIR on the destination (DIR as copied: the same
#          directory here)
#   full   stasis dump --remote --tls to stasis restore --remote --tls
#
# Columns (CLOCK_MONOTONIC stamps of the log lines):
#   run again   from the start of stasis restore to the restored tree
#               running (stasis-inject's "restored tree" line)
#   all pages   from the start of stasis restore until every page is in the
#               restored tree (lazy: the daemon's "every page is in"; full:
#               the same as run again)
#   frozen      from the start of the freeze until the restored tree runs
#               (full: the whole downtime; lazy: the freeze, the images and
#               the restore, until the copy runs)
#
# Environment: STASIS_BUILD_DIR, BENCH_KEEP=1, BENCH_TIMEOUT (s, default
# 300), BENCH_PORT (default 27800), BENCH_MODES (default "lazy full").
set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${STASIS_BUILD_DIR:-$repo/build}
export STASIS_BUILD_DIR=$build
export PATH="$build/root/bin:$PATH"
bigmem=$build/tests/bigmem
wait_s=${BENCH_TIMEOUT:-300}
port=${BENCH_PORT:-27800}

die() { echo "bench: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root"
[ -x "$bigmem" ] || die "$bigmem is not built (tests/progs/bigmem.c)"
command -v stasis >/dev/null || die "stasis is not built; run tests/run or cmake --install first"
command -v stasis-lazy-pages >/dev/null || die "stasis-lazy-pages is not built"
command -v certtool >/dev/null || die "certtool is missing (Debian: gnutls-bin)"

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1024 4096)
for mb in "${sizes[@]}"; do
	[[ $mb =~ ^[1-9][0-9]*$ ]] || die "bad size: $mb (MiB)"
done

top=$(mktemp -d /tmp/stasis-lazy.XXXXXX) || exit 1
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		case $(cat /proc/"$p"/comm 2>/dev/null) in
		bigmem | stasis* | unshare | bash) kill -KILL "$p" 2>/dev/null ;;
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

wait_line() { # FILE RE SECONDS
	local t=$(($3 * 10))
	while [ "$t" -gt 0 ]; do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
		t=$((t - 1))
	done
	return 1
}

spawn() {
	local fd
	for fd in /proc/$BASHPID/fd/*; do
		fd=${fd##*/}
		[ "$fd" -gt 2 ] && eval "exec $fd>&-"
	done
	exec setsid "$@"
}

# The CLOCK_MONOTONIC stamp of the first line of FILE matching RE (s).
stamp() { # FILE RE
	sed -n "/$2/{s/^( *\([0-9.]*\)).*/\1/p;q}" "$1"
}

sub() { # B A: B - A, 3 decimals, or -
	awk -v a="$2" -v b="$1" 'BEGIN { if (a == "" || b == "") print "-"; else printf "%.3f", b - a }'
}

# shellcheck source=bench/pki.sh
. "$repo/bench/pki.sh"
pki=$top/pki
make_pki "$pki" || die "cannot make the certificates"
tls_src=(--tls --tls-cacert "$pki/ca.pem" --tls-cert "$pki/src.pem" --tls-key "$pki/src-key.pem")
tls_dst=(--tls --tls-cacert "$pki/ca.pem" --tls-cert "$pki/dst.pem" --tls-key "$pki/dst-key.pem")
rows=()
status=0

start_bigmem() { # MB RUN
	spawn "$bigmem" "$1" "$2/go" >"$2/bigmem.log" 2>&1 </dev/null &
	pid=$!
	pids+=("$pid")
	wait_line "$2/bigmem.log" READY "$wait_s" || { echo "bench: bigmem did not get READY" >&2; return 1; }
}

check_pass() { # RUN
	touch "$1/go"
	wait_line "$1/bigmem.log" PASS "$wait_s" && echo PASS && return 0
	grep -q FAIL "$1/bigmem.log" && echo FAIL || echo "no answer"
	return 1
}

bench_lazy() { # MB
	local mb=$1 run="$top/lazy-$1" rc
	mkdir -p "$run/img" || return 1
	start_bigmem "$mb" "$run" || return 1
	port=$((port + 1))
	echo "bench: lazy $mb MiB: stasis dump --lazy-pages --port $port" >&2
	stasis dump -t "$pid" -D "$run/img" --lazy-pages --address 127.0.0.1 --port "$port" \
		"${tls_src[@]}" -v3 -o "$run/dump.log" >"$run/dump.out" 2>&1 </dev/null &
	local dpid=$!
	pids+=("$dpid")
	wait_line "$run/dump.log" "serving [0-9]* lazy pages" "$wait_s" || { cat "$run/dump.out" >&2; return 1; }
	cat >"$run/dst.sh" <<EOF
cd "$run" || exit 1
stasis lazy-pages --page-server --address 127.0.0.1 --port $port ${tls_dst[*]} -D "$run/img" \\
	-v3 -o "$run/lazy.log" >"$run/lazy.out" 2>&1 &
lz=\$!
for i in \$(seq 400); do [ -S "$run/img/lazy-pages.socket" ] && break; sleep 0.01; done
stasis restore -D "$run/img" --lazy-pages -v3 -o "$run/restore.log" >"$run/restore.out" 2>&1
rc=\$?
wait \$lz
echo "\$rc \$?" >"$run/dst.rc"
EOF
	unshare --pid --fork --mount-proc bash "$run/dst.sh" </dev/null >/dev/null 2>&1 &
	local spid=$!
	pids+=("$spid")
	{
		wait "$dpid"
		rc=$?
		wait "$pid"
	} 2>/dev/null
	[ $rc -eq 0 ] || { tail -n 3 "$run/dump.log" >&2; echo "bench: the lazy dump failed" >&2; return 1; }
	local verdict
	verdict=$(check_pass "$run")
	wait "$spid" 2>/dev/null
	local froze fus start ran all
	froze=$(stamp "$run/dump.log" "stasis-freeze: froze")
	fus=$(sed -n 's/.*stasis-freeze: froze .* in \([0-9]*\) us.*/\1/p' "$run/dump.log" | head -n 1)
	start=$(stamp "$run/restore.log" "stasis: ")
	ran=$(stamp "$run/restore.log" "stasis-inject: restored tree")
	all=$(stamp "$run/lazy.log" "every page is in")
	rows+=("$(printf '%-6s %8s %11s %11s %9s  %s' lazy "$mb" "$(sub "$ran" "$start")" \
		"$(sub "$all" "$start")" \
		"$(awk -v a="$froze" -v u="${fus:-0}" -v b="$ran" 'BEGIN { if (a == "" || b == "") print "-"; else printf "%.3f", b - (a - u / 1e6) }')" \
		"$verdict")")
	[ "$verdict" = PASS ]
}

bench_full() { # MB
	local mb=$1 run="$top/full-$1" rc
	mkdir -p "$run" || return 1
	start_bigmem "$mb" "$run" || return 1
	port=$((port + 1))
	unshare --pid --fork --mount-proc stasis restore --remote --address 127.0.0.1 --port "$port" \
		"${tls_dst[@]}" --status-fd 3 -v3 -o "$run/restore.log" \
		3>"$run/listening" >"$run/restore.out" 2>&1 </dev/null &
	local rpid=$! i=0
	pids+=("$rpid")
	until [ -s "$run/listening" ]; do
		i=$((i + 1))
		[ $i -lt 400 ] && kill -0 "$rpid" 2>/dev/null || { echo "bench: the receiver does not listen" >&2; return 1; }
		sleep 0.05
	done
	echo "bench: full $mb MiB: stasis dump --remote --port $port" >&2
	{
		stasis dump -t "$pid" --remote --address 127.0.0.1 --port "$port" "${tls_src[@]}" \
			-v3 -o "$run/dump.log" >"$run/dump.out" 2>&1 </dev/null
		rc=$?
		wait "$pid"
	} 2>/dev/null
	[ $rc -eq 0 ] || { cat "$run/dump.out" >&2; echo "bench: stasis dump failed" >&2; return 1; }
	wait_line "$run/restore.log" "stasis-inject: restored tree" "$wait_s" || return 1
	local verdict
	verdict=$(check_pass "$run")
	wait "$rpid" 2>/dev/null
	local froze fus start ran
	froze=$(stamp "$run/dump.log" "stasis-freeze: froze")
	fus=$(sed -n 's/.*stasis-freeze: froze .* in \([0-9]*\) us.*/\1/p' "$run/dump.log" | head -n 1)
	# the restore "starts" when the first byte can reach it: the freeze
	start=$(awk -v a="$froze" -v u="${fus:-0}" 'BEGIN { if (a == "") print ""; else printf "%.6f", a - u / 1e6 }')
	ran=$(stamp "$run/restore.log" "stasis-inject: restored tree")
	rows+=("$(printf '%-6s %8s %11s %11s %9s  %s' full "$mb" "$(sub "$ran" "$start")" \
		"$(sub "$ran" "$start")" "$(sub "$ran" "$start")" "$verdict")")
	[ "$verdict" = PASS ]
}

for mb in "${sizes[@]}"; do
	for m in ${BENCH_MODES:-lazy full}; do
		"bench_$m" "$mb" || status=1
	done
done

echo
echo "stasis lazy vs full migration over loopback with TLS, $(nproc) CPUs, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %8s %11s %11s %9s  %s\n' mode MiB "run again" "all pages" frozen check
for r in "${rows[@]}"; do echo "$r"; done
echo "run again: from the start of stasis restore to the restored tree running (full: from the freeze)"
echo "all pages: ... until every page is in the restored tree; frozen: from the freeze to the copy running"
exit $status
