#!/bin/bash
# Benchmark: the cost of sealing a checkpoint, against sealing it after the
# fact with a general-purpose tool.
#
#   bench/seal.sh [SIZE_MB]          (default 1024; as root)
#
# In each round, one process ($STASIS_BUILD_DIR/tests/bigmem SIZE_MB GOFILE)
# is dumped by every variant (left running, -R), then killed, and every
# checkpoint is restored in turn (the restored bigmem checks all of its
# memory: PASS), then deleted.
#
#   unsealed  dump: stasis-freeze | stasis-collect | stasis-serialize unpack
#             restore: stasis-serialize pack | stasis-inject
#   piped     unsealed with cat as a stage of its own in both pipelines:
#             what a program more in the pipe costs, without any crypto
#   sealed    what stasis dump -e and stasis restore do: dump
#             stasis-freeze | stasis-collect | stasis-seal --encrypt -D DIR,
#             restore stasis-seal --open -D DIR | stasis-inject (stasis-seal
#             stores and reads the directory itself: no unpack, no pack)
#             (an ECDSA P-256 certificate and key made with certtool)
#   sealed-pipe  the pipelines of DESIGN.md, with stasis-seal as a filter:
#             collect | stasis-seal --encrypt | stasis-serialize unpack,
#             pack | stasis-seal --open | stasis-inject
#   gpg       the unsealed dump, then its directory through
#             tar | gpg --symmetric --batch --passphrase x; the plaintext
#             directory removed. Restore: gpg -d | tar -x, then as unsealed
#   openssl   the same with openssl enc -aes-256-ctr -pbkdf2 -pass pass:x
#   age       the same with age -r (a key made with age-keygen)
#
# There are BENCH_REPS rounds (default 3); the table shows the median and
# the best. Each round starts with another variant, so that none is always
# the first or the last after a restart of the process. A dump's time runs until the
# checkpoint is on disk (stasis-serialize unpack fsyncs; the encrypted
# files of the other tools are synced too); a restore's until stasis-inject
# has written its pidfile, that is, until the process is back and about to
# run.
#
# Environment:
#   STASIS_BUILD_DIR  build tree (default: the build/ beside this script);
#                     programs are taken from $STASIS_BUILD_DIR/root/bin first
#   BENCH_DIR         where the images go (default: a new directory in /var/tmp)
#   BENCH_REPS        runs of each variant (default 3)
#   BENCH_KEEP=1      keep images and logs
#   BENCH_WARM        MiB of memory touched and freed before every timed run
#                     (default 3 x SIZE_MB; 0: none). In a virtual machine
#                     whose free memory is handed back to the host (free page
#                     reporting, DAMON reclaim), a run that happens to take
#                     pages back from the host is slowed by up to 4x; the
#                     warm-up takes that chance out of the comparison.
#   BENCH_SEAL_OPTS   extra options for both stasis-seal runs (e.g. --threads 0)
#   BENCH_VARIANTS    the variants to run (default "unsealed piped sealed
#                     sealed-pipe gpg openssl age")
#
# Missing tools (gnupg, openssl, age, gnutls-bin) are installed with apt-get.

set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${STASIS_BUILD_DIR:-$repo/build}
export STASIS_BUILD_DIR=$build
export PATH="$build/root/bin:$PATH"
bigmem=$build/tests/bigmem
mb=${1:-1024}
reps=${BENCH_REPS:-3}
read -r -a variants <<<"${BENCH_VARIANTS:-unsealed piped sealed sealed-pipe gpg openssl age}"

die() { echo "bench: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root"
[[ $mb =~ ^[1-9][0-9]*$ ]] || die "bad size: $mb (MiB)"
[[ $reps =~ ^[1-9][0-9]*$ ]] || die "bad BENCH_REPS: $reps"
[ -x "$bigmem" ] || die "$bigmem is not built (tests/progs/bigmem.c)"
for p in stasis-freeze stasis-collect stasis-serialize stasis-seal stasis-inject; do
	command -v $p >/dev/null || die "$p is not built; run tests/run or cmake --install first"
done

need=()
command -v gpg >/dev/null || need+=(gnupg)
command -v openssl >/dev/null || need+=(openssl)
command -v age >/dev/null || need+=(age)
command -v certtool >/dev/null || need+=(gnutls-bin)
if [ ${#need[@]} -gt 0 ]; then
	echo "bench: installing ${need[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get update && apt-get install -y --no-install-recommends "${need[@]}"; } >&2 ||
		die "cannot install ${need[*]}"
fi

if [ -n "${BENCH_DIR:-}" ]; then
	top=$BENCH_DIR
	mkdir -p "$top" || exit 1
	top_is_ours=0
else
	top=$(mktemp -d /var/tmp/stasis-seal-bench.XXXXXX) || exit 1
	top_is_ours=1
fi
run=$top/run
rm -rf "$run"
mkdir -p "$run/pki" || exit 1

pid=
pipe_pid=
cleanup() {
	for p in $pipe_pid $pid; do
		if [ "$(cat /proc/"$p"/comm 2>/dev/null)" = bigmem ]; then
			kill -KILL "$p" 2>/dev/null
		fi
	done
	[ -n "$pipe_pid" ] && kill -KILL "$pipe_pid" 2>/dev/null
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
warm_mb=${BENCH_WARM:-$((3 * mb))}
[[ $warm_mb =~ ^[0-9]+$ ]] || die "bad BENCH_WARM: $warm_mb (MiB)"
warm_up() {
	[ "$warm_mb" -gt 0 ] || return 0
	dd if=/dev/zero of=/dev/shm/stasis-bench-warm.$$ bs=1M count="$warm_mb" status=none
	rm -f /dev/shm/stasis-bench-warm.$$
}
# CPU time (s) of the whole machine, busy (user, nice, system, irq, softirq)
cpu_busy() { awk '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8) / 100 }' /proc/stat; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'; }
best() { tr ' ' '\n' | grep . | sort -n | head -n 1 | grep . || echo -; }

wait_line() { # FILE PATTERN SECONDS
	local t=$(($3 * 10))
	while [ "$t" -gt 0 ]; do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
		t=$((t - 1))
	done
	return 1
}

# ---- keys and passphrases
pki=$run/pki
certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --outfile "$pki/key.pem" 2>/dev/null &&
	printf 'cn = "stasis bench"\nexpiration_days = 2\nencryption_key\nsigning_key\n' >"$pki/tmpl" &&
	certtool --generate-self-signed --load-privkey "$pki/key.pem" --template "$pki/tmpl" \
		--outfile "$pki/cert.pem" 2>/dev/null || die "certtool failed"
age-keygen -o "$pki/age.key" 2>/dev/null || die "age-keygen failed"
age_recipient=$(age-keygen -y "$pki/age.key")
export GNUPGHOME=$run/gnupg
mkdir -m 700 -p "$GNUPGHOME"
# shellcheck disable=SC2206
seal_opts=(${BENCH_SEAL_OPTS:-})

# ---- the process: started anew for every round (same program, same size)
log=$run/bigmem.log
go=$run/go
start_bigmem() {
	# the log of the last restored bigmem says READY too: not that one
	rm -f "$go" "$log"
	# only fds 0-2: nothing else of ours gets dumped
	(
		for f in "/proc/$BASHPID/fd/"*; do
			f=${f##*/}
			[ "$f" -gt 2 ] && eval "exec $f>&-" 2>/dev/null
		done
		exec setsid "$bigmem" "$mb" "$go" </dev/null >"$log" 2>&1
	) &
	pid=$!
	wait_line "$log" READY 120 || die "bigmem did not get READY: $(cat "$log")"
	cp "$log" "$log.at-dump"
}

# ---- dumps
encrypt() { # TOOL DIR FILE
	case $1 in
	gpg) tar -C "$2" -cf - . | gpg --batch --yes --quiet --pinentry-mode loopback \
		--passphrase x --symmetric -o "$3" ;;
	openssl) tar -C "$2" -cf - . | openssl enc -aes-256-ctr -pbkdf2 -pass pass:x -out "$3" ;;
	age) tar -C "$2" -cf - . | age -r "$age_recipient" -o "$3" ;;
	esac
}

decrypt() { # TOOL FILE DIR
	mkdir -p "$3"
	case $1 in
	gpg) gpg --batch --quiet --pinentry-mode loopback --passphrase x -d "$2" | tar -C "$3" -xf - ;;
	openssl) openssl enc -d -aes-256-ctr -pbkdf2 -pass pass:x -in "$2" | tar -C "$3" -xf - ;;
	age) age -d -i "$pki/age.key" "$2" | tar -C "$3" -xf - ;;
	esac
}

declare -A dump_t restore_t dump_c restore_c size check
dump_one() { # VARIANT REP
	local v=$1 r=$2 dir=$run/$1.$2 t0 t1 c0 c1 rc=0
	rm -rf "$dir" "$dir.enc"
	warm_up
	c0=$(cpu_busy)
	t0=$(now)
	case $v in
	unsealed)
		stasis-freeze -t "$pid" stasis-collect -R | stasis-serialize unpack -D "$dir" ;;
	piped)
		stasis-freeze -t "$pid" stasis-collect -R | cat | stasis-serialize unpack -D "$dir" ;;
	sealed)
		stasis-freeze -t "$pid" stasis-collect -R |
			stasis-seal --encrypt "${seal_opts[@]}" --tls-cert "$pki/cert.pem" -D "$dir" ;;
	sealed-pipe)
		stasis-freeze -t "$pid" stasis-collect -R |
			stasis-seal --encrypt "${seal_opts[@]}" --tls-cert "$pki/cert.pem" |
			stasis-serialize unpack -D "$dir" ;;
	*)
		stasis-freeze -t "$pid" stasis-collect -R | stasis-serialize unpack -D "$dir" &&
			encrypt "$v" "$dir" "$dir.enc" && sync "$dir.enc" && rm -rf "$dir" ;;
	esac
	rc=$?
	t1=$(now)
	c1=$(cpu_busy)
	[ $rc -eq 0 ] || { echo "bench: $v dump failed" >&2; return 1; }
	dump_t[$v]+=" $(elapsed "$t0" "$t1")"
	dump_c[$v]+=" $(elapsed "$c0" "$c1")"
	if [ -e "$dir.enc" ]; then
		size[$v]=$(stat -c %s "$dir.enc")
	else
		size[$v]=$(du -s -b "$dir" | cut -f1)
	fi
}

restore_one() { # VARIANT REP
	local v=$1 r=$2 dir=$run/$1.$2 t0 t1 c0 c1 pidfile=$run/restored.pid src
	rm -f "$go" "$pidfile"
	cp "$log.at-dump" "$log"
	warm_up
	c0=$(cpu_busy)
	t0=$(now)
	src=$dir
	if [ -e "$dir.enc" ]; then
		src=$dir.dec
		rm -rf "$src"
		decrypt "$v" "$dir.enc" "$src" || { echo "bench: $v: decryption failed" >&2; return 1; }
	fi
	if [ "$v" = sealed ]; then
		(stasis-seal --open "${seal_opts[@]}" --tls-key "$pki/key.pem" -D "$src" |
			stasis-inject --pidfile "$pidfile") </dev/null >"$run/restore.log" 2>&1 &
	elif [ "$v" = piped ]; then
		(stasis-serialize pack -D "$src" | cat | stasis-inject --pidfile "$pidfile") \
			</dev/null >"$run/restore.log" 2>&1 &
	elif [ "$v" = sealed-pipe ]; then
		(stasis-serialize pack -D "$src" |
			stasis-seal --open "${seal_opts[@]}" --tls-key "$pki/key.pem" |
			stasis-inject --pidfile "$pidfile") </dev/null >"$run/restore.log" 2>&1 &
	else
		(stasis-serialize pack -D "$src" | stasis-inject --pidfile "$pidfile") \
			</dev/null >"$run/restore.log" 2>&1 &
	fi
	pipe_pid=$!
	# restored: stasis-inject writes the pidfile just before it lets go
	while [ ! -s "$pidfile" ] && kill -0 "$pipe_pid" 2>/dev/null; do
		sleep 0.005
	done
	t1=$(now)
	c1=$(cpu_busy)
	if [ ! -s "$pidfile" ]; then
		wait "$pipe_pid"
		pipe_pid=
		cat "$run/restore.log" >&2
		echo "bench: $v restore failed" >&2
		return 1
	fi
	restore_t[$v]+=" $(elapsed "$t0" "$t1")"
	restore_c[$v]+=" $(elapsed "$c0" "$c1")"
	touch "$go"
	# the restored bigmem checks its memory and exits; stasis-inject reaps it
	wait "$pipe_pid"
	pipe_pid=
	if grep -q PASS "$log"; then
		check[$v]=${check[$v]:-PASS}
	else
		check[$v]=FAIL
		tail -n 3 "$log" >&2
	fi
	rm -rf "$dir.dec"
}

# Rounds: every variant dumps the running bigmem, which is then killed, and
# every checkpoint is restored (the restored bigmem checks its memory and
# exits), then deleted: at most one round of images is on disk.
status=0
for ((r = 1; r <= reps; r++)); do
	echo "bench: round $r/$reps: starting bigmem $mb" >&2
	start_bigmem
	# rotated by one each round
	order=("${variants[@]:$(((r - 1) % ${#variants[@]}))}" "${variants[@]:0:$(((r - 1) % ${#variants[@]}))}")
	for v in "${order[@]}"; do
		echo "bench: dump $v ($r/$reps)" >&2
		dump_one "$v" "$r" || { status=1; check[$v]=FAIL; }
	done
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
	pid=
	for v in "${order[@]}"; do
		[ "${check[$v]:-}" = FAIL ] && continue
		echo "bench: restore $v ($r/$reps)" >&2
		restore_one "$v" "$r" || { status=1; check[$v]=FAIL; }
	done
	[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$run"/*."$r" "$run"/*."$r".enc
done

fstype=$(findmnt -n -o FSTYPE -T "$top" 2>/dev/null || stat -f -c %T "$top")
base_d=$(echo "${dump_t[unsealed]:-}" | median)
base_r=$(echo "${restore_t[unsealed]:-}" | median)
base_db=$(echo "${dump_t[unsealed]:-}" | best)
base_rb=$(echo "${restore_t[unsealed]:-}" | best)
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%+.0f%%", (a - b) * 100 / b }'; }
echo
echo "seal benchmark: $mb MiB process, images on $top ($fstype), $(nproc) CPUs, kernel $(uname -r)"
echo "seconds, median and best of $reps rounds; vs: against the unsealed dump/restore"
printf '%-11s %8s %7s %8s %7s %9s %7s %8s %7s %9s  %s\n' variant dump vs "best" vs restore vs best vs "size MiB" check
for v in "${variants[@]}"; do
	d=$(echo "${dump_t[$v]:-}" | median)
	db=$(echo "${dump_t[$v]:-}" | best)
	rs=$(echo "${restore_t[$v]:-}" | median)
	rb=$(echo "${restore_t[$v]:-}" | best)
	printf '%-11s %8s %7s %8s %7s %9s %7s %8s %7s %9s  %s\n' "$v" "$d" "$(pct "$d" "$base_d")" \
		"$db" "$(pct "$db" "$base_db")" "$rs" "$(pct "$rs" "$base_r")" "$rb" "$(pct "$rb" "$base_rb")" \
		"$(awk -v b="${size[$v]:-0}" 'BEGIN { printf "%.1f", b / 1048576 }')" "${check[$v]:-FAIL}"
done
for v in "${variants[@]}"; do
	echo "  $v runs: dump${dump_t[$v]:- -}; restore${restore_t[$v]:- -}"
	echo "  $v CPU seconds (whole machine, median): dump $(echo "${dump_c[$v]:-}" | median), restore $(echo "${restore_c[$v]:-}" | median)"
done
exit $status
