#!/bin/bash
# Benchmark: the durable dump against writing the same bytes to a file and
# fsyncing it on the same disk, and the sealed dump and restore against the
# unsealed ones (issue 15).
#
#   bench/snapshot.sh [SIZE_MB ...]       (default: 256 1024 4096; as root)
#
# For each size, BENCH_REPS rounds (default 3; the table shows medians):
#   write   dd if=/dev/zero bs=1M count=SIZE_MB conv=fsync, into the
#           directory that receives the images: write and fsync of the
#           bytes the checkpoint's pages hold
#   dump    stasis dump -t PID -D DIR of $STASIS_BUILD_DIR/tests/bigmem
#           SIZE_MB (the durable dump: it returns once the checkpoint is
#           fsynced and the tree killed), then stasis restore -D DIR -d
#           --pidfile F; the restored bigmem checks its memory (PASS)
#   sealed  the same with -e --tls-cert CERT (stasis-seal stores the
#           directory), restored with --tls-key KEY
# Ratios: dump/write, sealed/dump (dump and restore). Targets of issue 15:
# dump/write at most 1.30 at 1 GiB, sealed/dump at most 1.10. A second
# table gives the CPU seconds of each dump and restore (user + system of
# the programs of the pipeline, /usr/bin/time).
#
# The table has one row per size, the size first, so that it can be
# joined with the other tables of bench/ by that column (join(1)).
#
# Environment:
#   STASIS_BUILD_DIR  build tree (default: the build/ beside this script);
#                     stasis is taken from $STASIS_BUILD_DIR/root/bin first
#   BENCH_DIR         where the images go (default: a new directory in /var/tmp)
#   BENCH_REPS        rounds per size (default 3)
#   BENCH_WARM        MiB touched and freed before every timed run (default:
#                     the size; 0: none), so that no run is the one that takes
#                     memory back from the host of the virtual machine
#   BENCH_KEEP=1      keep the images and logs
#   BENCH_TIMEOUT     seconds to wait for READY / PASS (default 300)

set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${STASIS_BUILD_DIR:-$repo/build}
export STASIS_BUILD_DIR=$build
export PATH="$build/root/bin:$PATH"
bigmem=$build/tests/bigmem
reps=${BENCH_REPS:-3}
wait_s=${BENCH_TIMEOUT:-300}

die() { echo "bench: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root"
[ -x "$bigmem" ] || die "$bigmem is not built (tests/progs/bigmem.c)"
command -v stasis >/dev/null || die "stasis is not built; run tests/run or cmake --install first"
command -v certtool >/dev/null || die "certtool is missing (apt-get install gnutls-bin)"
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time)"
[[ $reps =~ ^[1-9][0-9]*$ ]] || die "bad BENCH_REPS: $reps"

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(256 1024 4096)
for s in "${sizes[@]}"; do
	[[ $s =~ ^[1-9][0-9]*$ ]] || die "bad size: $s (MiB)"
done

if [ -n "${BENCH_DIR:-}" ]; then
	top=$BENCH_DIR
	mkdir -p "$top" || exit 1
	top_is_ours=0
else
	top=$(mktemp -d /var/tmp/stasis-snapshot-bench.XXXXXX) || exit 1
	top_is_ours=1
fi
run=$top/run
rm -rf "$run"
mkdir -p "$run/pki" || exit 1

pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		[ "$(cat /proc/"$p"/comm 2>/dev/null)" = bigmem ] && kill -KILL "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -f /dev/shm/stasis-bench-warm.$$
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "bench: images and logs kept in $top" >&2
	elif [ "$top_is_ours" = 1 ]; then
		rm -rf "$top"
	else
		rm -rf "$run"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
warm_up() { # MiB
	local mb=${BENCH_WARM:-$1}
	[ "$mb" -gt 0 ] || return 0
	dd if=/dev/zero of=/dev/shm/stasis-bench-warm.$$ bs=1M count="$mb" status=none
	rm -f /dev/shm/stasis-bench-warm.$$
}

wait_line() { # FILE PATTERN SECONDS
	local t=$(($3 * 10))
	while [ "$t" -gt 0 ]; do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
		t=$((t - 1))
	done
	return 1
}

# Until the task is gone or a zombie (its PID free for the restore).
wait_gone() { # PID SECONDS
	local t=$(($2 * 10)) st
	while [ "$t" -gt 0 ]; do
		st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' /proc/"$1"/status 2>/dev/null)
		{ [ -z "$st" ] || [ "$st" = Z ]; } && return 0
		sleep 0.05
		t=$((t - 1))
	done
	return 1
}

pki=$run/pki
certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --outfile "$pki/key.pem" 2>/dev/null &&
	printf 'cn = "stasis bench"\nexpiration_days = 2\nencryption_key\nsigning_key\n' >"$pki/tmpl" &&
	certtool --generate-self-signed --load-privkey "$pki/key.pem" --template "$pki/tmpl" \
		--outfile "$pki/cert.pem" 2>/dev/null || die "certtool failed"

declare -A t_write t_dump t_restore c_dump c_restore check
# user + system seconds of a command and every program it waited for
cpu_of() { tail -n 1 "$1" | awk '{ printf "%.2f", $1 + $2 }'; }
fail=0

# One bigmem of $1 MiB, with nothing open but fds 0-2: started, dumped
# ($2: dump or sealed), restored, checked.
round() { # MB VARIANT
	local mb=$1 v=$2 dir=$run/images log=$run/bigmem.log go=$run/go pidfile=$run/restored.pid
	local pid rpid t0 t1 rc dopts=() ropts=()

	[ "$v" = sealed ] && dopts=(-e --tls-cert "$pki/cert.pem") && ropts=(--tls-key "$pki/key.pem")
	rm -rf "$dir" "$go" "$log" "$pidfile"
	(
		for f in "/proc/$BASHPID/fd/"*; do
			f=${f##*/}
			[ "$f" -gt 2 ] && eval "exec $f>&-" 2>/dev/null
		done
		exec setsid "$bigmem" "$mb" "$go" </dev/null >"$log" 2>&1
	) &
	pid=$!
	disown "$pid" # killed by the dump: no job notice (bash still reaps it)
	pids+=("$pid")
	wait_line "$log" READY "$wait_s" || { echo "bench: bigmem did not get READY" >&2; return 1; }
	warm_up "$mb"
	t0=$(now)
	/usr/bin/time -f "%U %S" -o "$run/cpu" \
		stasis dump -t "$pid" -D "$dir" "${dopts[@]}" >"$run/dump.log" 2>&1
	rc=$?
	t1=$(now)
	if [ $rc -ne 0 ]; then
		cat "$run/dump.log" >&2
		echo "bench: $v dump of $mb MiB failed" >&2
		return 1
	fi
	t_dump[$mb.$v]+=" $(elapsed "$t0" "$t1")"
	c_dump[$mb.$v]+=" $(cpu_of "$run/cpu")"
	wait_gone "$pid" 10 || { echo "bench: $pid still alive after the dump" >&2; return 1; }

	warm_up "$mb"
	t0=$(now)
	/usr/bin/time -f "%U %S" -o "$run/cpu" \
		stasis restore -D "$dir" -d --pidfile "$pidfile" "${ropts[@]}" >"$run/restore.log" 2>&1
	rc=$?
	t1=$(now)
	rpid=$(cat "$pidfile" 2>/dev/null)
	[ -n "$rpid" ] && pids+=("$rpid")
	if [ $rc -ne 0 ] || [ -z "$rpid" ]; then
		cat "$run/restore.log" >&2
		echo "bench: $v restore of $mb MiB failed" >&2
		return 1
	fi
	t_restore[$mb.$v]+=" $(elapsed "$t0" "$t1")"
	c_restore[$mb.$v]+=" $(cpu_of "$run/cpu")"
	touch "$go"
	if wait_line "$log" PASS "$wait_s"; then
		check[$mb.$v]=${check[$mb.$v]:-PASS}
	else
		check[$mb.$v]=FAIL
		tail -n 3 "$log" >&2
	fi
	wait_gone "$rpid" 30 || kill -KILL "$rpid" 2>/dev/null
	[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$dir"
	return 0
}

write_fsync() { # MB
	local t0 t1
	warm_up "$1"
	t0=$(now)
	dd if=/dev/zero of="$run/write-fsync" bs=1M count="$1" conv=fsync status=none || return 1
	t1=$(now)
	rm -f "$run/write-fsync"
	t_write[$1]+=" $(elapsed "$t0" "$t1")"
}

for mb in "${sizes[@]}"; do
	for ((r = 1; r <= reps; r++)); do
		# rotated, so that no variant is always first after the write
		case $((r % 3)) in
		1) order=(write dump sealed) ;;
		2) order=(dump sealed write) ;;
		0) order=(sealed write dump) ;;
		esac
		for v in "${order[@]}"; do
			echo "bench: $mb MiB, round $r/$reps: $v" >&2
			if [ "$v" = write ]; then
				write_fsync "$mb" || fail=1
			else
				round "$mb" "$v" || { fail=1; check[$mb.$v]=FAIL; }
			fi
		done
	done
done

fstype=$(findmnt -n -o FSTYPE -T "$top" 2>/dev/null || stat -f -c %T "$top")
echo
echo "stasis durable and sealed dump, images on $top ($fstype), $(nproc) CPUs, kernel $(uname -r)"
echo "seconds, median of $reps rounds"
printf '%8s %8s %8s %7s %8s %7s %8s %8s %7s  %s\n' "mem MiB" write dump d/w sealed s/d restore "s.rest" s/r check
for mb in "${sizes[@]}"; do
	w=$(echo "${t_write[$mb]:-}" | median)
	d=$(echo "${t_dump[$mb.dump]:-}" | median)
	s=$(echo "${t_dump[$mb.sealed]:-}" | median)
	rd=$(echo "${t_restore[$mb.dump]:-}" | median)
	rs=$(echo "${t_restore[$mb.sealed]:-}" | median)
	c=PASS
	[ "${check[$mb.dump]:-FAIL}" = PASS ] && [ "${check[$mb.sealed]:-FAIL}" = PASS ] || c=FAIL
	[ $c = PASS ] || fail=1
	printf '%8s %8s %8s %7s %8s %7s %8s %8s %7s  %s\n' "$mb" "$w" "$d" "$(ratio "$d" "$w")" \
		"$s" "$(ratio "$s" "$d")" "$rd" "$rs" "$(ratio "$rs" "$rd")" "$c"
done
echo "write: dd bs=1M conv=fsync of the same MiB; dump: stasis dump (durable, tree killed);"
echo "sealed: stasis dump -e; restore, s.rest: stasis restore -d of each; d/w, s/d, s/r: ratios"
echo
echo "CPU seconds (user + system of the pipeline's programs), median of $reps rounds"
printf '%8s %8s %8s %7s %8s %8s %7s\n' "mem MiB" dump sealed s/d restore "s.rest" s/r
for mb in "${sizes[@]}"; do
	d=$(echo "${c_dump[$mb.dump]:-}" | median)
	s=$(echo "${c_dump[$mb.sealed]:-}" | median)
	rd=$(echo "${c_restore[$mb.dump]:-}" | median)
	rs=$(echo "${c_restore[$mb.sealed]:-}" | median)
	printf '%8s %8s %8s %7s %8s %8s %7s\n' "$mb" "$d" "$s" "$(ratio "$s" "$d")" "$rd" "$rs" \
		"$(ratio "$rs" "$rd")"
done
echo "(on a machine that other work keeps busy, these vary less than the wall times)"
for mb in "${sizes[@]}"; do
	echo "  $mb MiB runs: write${t_write[$mb]:- -}; dump${t_dump[$mb.dump]:- -};" \
		"sealed${t_dump[$mb.sealed]:- -}; restore${t_restore[$mb.dump]:- -};" \
		"sealed restore${t_restore[$mb.sealed]:- -}"
done
exit $fail
