# shellcheck shell=bash
# Shared by the round-trip suites (roundtrip.bats, real.bats, failure.bats).
#
#   load helpers
#
# A test starts a program from $STASIS_BUILD_DIR/tests (tests/progs/*.c) in
# its own session, dumps it, restores it, and lets it check its own state:
#
#   start_prog heap                  # PID, PROG, LOG, GOFILE are set
#   dump_and_kill                    # stasis dump; the dumped PID is reaped
#   restore_and_check                # stasis restore; touch GOFILE; PASS?
#
# Everything a test creates lives in $BATS_TEST_TMPDIR; teardown kills the
# processes the test started (and their descendants), by PID, and nothing
# else.

STASIS_BUILD_DIR=${STASIS_BUILD_DIR:-$BATS_TEST_DIRNAME/../build}
TESTPROGS=$STASIS_BUILD_DIR/tests
# Seconds to wait for a restore (or a dump) to finish.
STASIS_TEST_WAIT=${STASIS_TEST_WAIT:-60}

GOFILE=$BATS_TEST_TMPDIR/go
IMG=$BATS_TEST_TMPDIR/img

# PID -> executable (as /proc/PID/exe reads) of every process the test
# started; teardown kills these and their descendants.
declare -gA OWNED=()

PID='' PROG='' LOG='' RPID=''

# ---------------------------------------------------------------- set-up

# The default setup(); a suite may define its own and call this first.
stasis_test_setup() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (ptrace, clone3 with set_tid)"
	command -v stasis >/dev/null || skip "stasis is not in PATH"
	OWNED=()
	PID='' PROG='' LOG='' RPID=''
	rm -f "$GOFILE"
}

setup() {
	stasis_test_setup
}

teardown() {
	cleanup_owned
}

# ---------------------------------------------------------------- output

# Print a file for a failure report, at most its last N lines (default 80).
show_file() { # FILE [N]
	local f=$1 n=${2:-80}
	if [ -s "$f" ]; then
		echo "---- $f (last $n lines)"
		tail -n "$n" "$f" | cut -c1-400
	elif [ -e "$f" ]; then
		echo "---- $f: empty"
	else
		echo "---- $f: missing"
	fi
}

# Everything that helps to understand a failed round trip.
show_logs() {
	[ -n "$LOG" ] && show_file "$LOG" 40
	show_file "$BATS_TEST_TMPDIR/dump.out" 40
	show_file "$(find_log dump.log)"
	if [ -e "$BATS_TEST_TMPDIR/restore.out" ]; then
		show_file "$BATS_TEST_TMPDIR/restore.out" 40
		show_file "$(find_log restore.log)"
	fi
	if [ -n "$PID" ] && [ -e "/proc/$PID" ]; then
		echo "---- /proc/$PID/status"
		grep -E '^(Name|State|Tgid|PPid|TracerPid|SigPnd|ShdPnd|SigBlk)' "/proc/$PID/status" 2>/dev/null || true
	fi
	return 0
}

# The log file named by -o: relative to the images directory, as in CRIU;
# tolerate the current directory too.
find_log() { # NAME
	if [ -e "$IMG/$1" ]; then
		echo "$IMG/$1"
	elif [ -e "$BATS_TEST_TMPDIR/$1" ]; then
		echo "$BATS_TEST_TMPDIR/$1"
	else
		echo "$IMG/$1"
	fi
}

# Fail the test with a message and the logs.
die_with_logs() {
	echo "FAILED: $*"
	show_logs
	return 1
}

# ---------------------------------------------------------------- processes

own_pid() { # PID [EXE]
	local exe=${2:-}
	[ -n "$exe" ] || exe=$(readlink "/proc/$1/exe" 2>/dev/null) || true
	OWNED[$1]=$exe
}

# One field of /proc/PID/status ("State" gives the letter only).
proc_status() { # PID FIELD
	local v
	v=$(awk -v k="$2:" '$1 == k { print $2; exit }' "/proc/$1/status" 2>/dev/null) || true
	echo "$v"
}

proc_state() { proc_status "$1" State; }

# Field N (1-based, as in proc(5)) of /proc/PID/stat, robust to the comm.
proc_stat_field() { # PID N
	local s a
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	# After the comm, field 3 (state) comes first.
	read -r -a a <<<"${s##*) }"
	echo "${a[$(($2 - 3))]}"
}

# True while PID exists and is not a zombie.
alive() { # PID
	local st
	st=$(proc_state "$1")
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# Wait until the line READY appears in LOG; fails if PID dies first.
wait_ready() { # LOG PID [SECONDS]
	local log=$1 pid=$2 limit=$(( ${3:-10} * 20 )) i=0
	while ! grep -qx READY "$log" 2>/dev/null; do
		if ! alive "$pid"; then
			echo "FAILED: PID $pid exited before printing READY"
			show_file "$log"
			return 1
		fi
		i=$((i + 1))
		if [ $i -ge $limit ]; then
			echo "FAILED: no READY from PID $pid after $(( limit / 20 )) s"
			show_file "$log"
			return 1
		fi
		sleep 0.05
	done
}

# Wait for our child PID to end (at most SECONDS) and reap it; its exit
# status (128+N when killed by signal N) goes to $STATUS.
wait_child() { # PID SECONDS
	local pid=$1 limit=$(( $2 * 20 )) i=0
	STATUS=
	# stderr off meanwhile: bash would report a child killed by a signal
	# ("... Killed ...") as soon as it notices, which is expected here.
	{
		while alive "$pid"; do
			i=$((i + 1))
			[ $i -ge $limit ] && return 1
			sleep 0.05
		done
		STATUS=0
		wait "$pid" || STATUS=$?
	} 2>/dev/null
	return 0
}

# Wait until PID, not our child, is gone from /proc (or a zombie: its
# parent reaps it).
wait_gone() { # PID SECONDS
	local pid=$1 limit=$(( $2 * 20 )) i=0
	while alive "$pid"; do
		i=$((i + 1))
		[ $i -ge $limit ] && return 1
		sleep 0.05
	done
	return 0
}

# Close every descriptor but 0, 1 and 2 in the current (sub)shell, so that
# a program started from it holds only what it opens itself (bats, a CI
# runner or a terminal may leave pipes open, which stasis may not support).
close_extra_fds() {
	local f fd
	for f in "/proc/$BASHPID/fd/"*; do
		fd=${f##*/}
		[ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
	done
	return 0
}

# Start a test program in its own session: GOFILE first, then ARGS. Sets
# PID (the program itself: in a non-interactive shell's background job,
# setsid does not fork), PROG (its path) and LOG (its stdout and stderr).
start_prog() { # NAME [ARGS...]
	local name=$1
	shift
	PROG=$(readlink -f "$TESTPROGS/$name" 2>/dev/null)
	if [ -z "$PROG" ] || [ ! -x "$PROG" ]; then
		echo "FAILED: test program $TESTPROGS/$name is not built"
		return 1
	fi
	LOG=$BATS_TEST_TMPDIR/$name.log
	rm -f "$GOFILE"
	(
		close_extra_fds
		exec setsid "$PROG" "$GOFILE" "$@" </dev/null >"$LOG" 2>&1
	) &
	PID=$!
	own_pid "$PID" "$PROG"
	wait_ready "$LOG" "$PID" 10 || return 1
	local exe
	exe=$(readlink "/proc/$PID/exe") || true
	[ "$exe" = "$PROG" ] || {
		echo "FAILED: \$! ($PID) is $exe, not $PROG (did setsid fork?)"
		return 1
	}
	[ "$(proc_stat_field "$PID" 6)" = "$PID" ] || {
		echo "FAILED: $PID is not a session leader"
		return 1
	}
}

# Start any command in its own session, output to LOG (default
# $BATS_TEST_TMPDIR/cmd.log). Sets PID.
start_cmd() { # CMD [ARGS...]
	LOG=${LOG:-$BATS_TEST_TMPDIR/cmd.log}
	(
		close_extra_fds
		exec setsid "$@" </dev/null >"$LOG" 2>&1
	) &
	PID=$!
	sleep 0.2
	own_pid "$PID"
	PROG=${OWNED[$PID]}
	return 0
}

# Kill what the test started, and their descendants: SIGCONT (in case they
# are stopped) and SIGKILL, by PID; then reap our children and wait a little
# for the others to go.
cleanup_owned() {
	local p pids=() all=() ppid_of=() f s c a
	for p in "${!OWNED[@]}"; do
		alive "$p" || continue
		# Only if it is still the process we started (or restored).
		[ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "${OWNED[$p]}" ] || continue
		pids+=("$p")
	done
	# Descendants: children's parent is one of ours, repeatedly.
	for f in /proc/[0-9]*/stat; do
		s=$(cat "$f" 2>/dev/null) || continue
		c=${f#/proc/}
		c=${c%/stat}
		read -r -a a <<<"${s##*) }"
		ppid_of[c]=${a[1]}
	done
	all=("${pids[@]}")
	local grew=1
	while [ $grew = 1 ]; do
		grew=0
		for c in "${!ppid_of[@]}"; do
			for p in "${all[@]}"; do
				if [ "${ppid_of[$c]}" = "$p" ]; then
					all+=("$c")
					unset "ppid_of[$c]"
					grew=1
					break
				fi
			done
		done
	done
	{
		for p in "${all[@]}"; do
			kill -CONT "$p" || true
			kill -KILL "$p" || true
		done
		for p in "${all[@]}" "${!OWNED[@]}"; do
			# Our own children: reap them (wait fails at once for the
			# others).
			wait "$p" || true
			wait_gone "$p" 5 || true
		done
	} 2>/dev/null
	return 0
}

# ---------------------------------------------------------------- stasis

# stasis dump of $PID into $IMG with a log, ARGS added; then the tree must
# be gone (killed by the dump) and is reaped so that its PID is free.
dump_and_kill() { # [ARGS...]
	run_dump "$@" || return 1
	wait_child "$PID" 10 || die_with_logs "PID $PID is still alive 10 s after stasis dump (it should have been killed)" || return 1
	if [ "$STATUS" -le 128 ]; then
		die_with_logs "PID $PID exited by itself (status $STATUS) instead of being killed by the dump" || return 1
	fi
	# Keep the program's log as it was when the dump was taken.
	if [ -n "$LOG" ]; then cp "$LOG" "$LOG.at-dump"; fi
	return 0
}

# stasis dump of $PID into $IMG, ARGS added; fails (with the logs) when
# stasis fails. Nothing else is checked.
run_dump() { # [ARGS...]
	rm -rf "$IMG"
	mkdir -p "$IMG"
	local rc=0
	# (stderr off around it: the dumped program killed by the dump is our
	# child, and bash would report it with a "Killed" line.)
	{
		(cd "$BATS_TEST_TMPDIR" && exec stasis dump -t "$PID" -D "$IMG" -v4 -o dump.log "$@") \
			</dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 3>&- || rc=$?
	} 2>/dev/null
	[ $rc -eq 0 ] || die_with_logs "stasis dump -t $PID -D $IMG $* exited with status $rc" || return 1
	[ -n "$(ls -A "$IMG")" ] || die_with_logs "stasis dump succeeded but $IMG is empty" || return 1
}

# The process must be running normally: not stopped, not traced.
assert_running_untraced() { # PID
	local st tr
	alive "$1" || { echo "FAILED: PID $1 is gone"; return 1; }
	st=$(proc_state "$1")
	tr=$(proc_status "$1" TracerPid)
	case $st in
	T | t) echo "FAILED: PID $1 is stopped (State $st)"; return 1 ;;
	esac
	[ "$tr" = 0 ] || { echo "FAILED: PID $1 is still traced (TracerPid $tr)"; return 1; }
}

# Start stasis restore in the background (the parent of the restored tree),
# ARGS added. Sets RPID.
start_restore() { # [ARGS...]
	(cd "$BATS_TEST_TMPDIR" && exec stasis restore -D "$IMG" -v4 -o restore.log "$@") \
		</dev/null >"$BATS_TEST_TMPDIR/restore.out" 2>&1 3>&- &
	RPID=$!
	own_pid "$RPID"
}

# Wait (at most STASIS_TEST_WAIT s) until /proc/$PID exists again and the
# restorer has let it go (no tracer): the PID exists from the start of the
# restore, long before its files, locks and memory are back.
untraced() { # PID
	local tracer
	tracer=$(awk '/^TracerPid:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
	[ "$tracer" = 0 ]
}
wait_restored() {
	local i=0 limit=$((STASIS_TEST_WAIT * 20))
	until alive "$PID" && untraced "$PID"; do
		if [ -n "$RPID" ] && ! alive "$RPID"; then
			local st=0
			wait "$RPID" || st=$?
			die_with_logs "stasis restore exited with status $st before PID $PID appeared" || return 1
		fi
		i=$((i + 1))
		[ $i -ge $limit ] && { die_with_logs "PID $PID did not appear within ${STASIS_TEST_WAIT}s of stasis restore"; return 1; }
		sleep 0.05
	done
	own_pid "$PID" "$PROG"
}

# Restore $IMG with stasis restore as our child (it reaps the restored
# tree), tell the program to check itself, and require exit status 0 from
# the restore (= the program's) and PASS in the program's log.
# NUDGE_SIGNAL=SIG: also send SIG to the restored program 1 s after GO.
restore_and_check() { # [ARGS...]
	start_restore "$@"
	check_restored
}

# The restore of $PID runs in the background as RPID (our child): wait for
# the program, tell it to check itself, require status 0 and PASS.
check_restored() {
	wait_restored || return 1
	touch "$GOFILE"
	# A program that waits for a signal to notice GO (sleeper pause) would
	# hang if its timer was lost: after a second, wake it once, so that it
	# reports what it found instead.
	if [ -n "${NUDGE_SIGNAL:-}" ]; then
		sleep 1
		if alive "$PID"; then kill -"$NUDGE_SIGNAL" "$PID" 2>/dev/null || true; fi
	fi
	wait_child "$RPID" "$STASIS_TEST_WAIT" ||
		die_with_logs "stasis restore still running ${STASIS_TEST_WAIT}s after GO (restored PID $PID did not finish)" || return 1
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis restore exited with status $STATUS (the restored program's status; expected 0)" || return 1
	check_pass_log
}

# The program's log says PASS and no FAIL.
check_pass_log() {
	if grep -q '^FAIL' "$LOG"; then
		die_with_logs "the program reports: $(grep '^FAIL' "$LOG" | head -n 3)"
		return 1
	fi
	grep -qx PASS "$LOG" || die_with_logs "no PASS in $LOG" || return 1
}

# Tell the original (not dumped or not killed) program to check itself, and
# require exit status 0 and PASS.
go_and_check_original() {
	touch "$GOFILE"
	wait_child "$PID" "$STASIS_TEST_WAIT" || die_with_logs "PID $PID did not finish after GO" || return 1
	[ "$STATUS" -eq 0 ] || die_with_logs "PID $PID exited with status $STATUS after GO" || return 1
	check_pass_log
}

# The dump failed with MESSAGE, and the program runs on and passes.
refused_then_pass() { # MESSAGE
	local rc=0
	(cd "$BATS_TEST_TMPDIR" && exec stasis dump -t "$PID" -D "$IMG" -v4 -o dump.log) \
		</dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 3>&- || rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || die_with_logs "the dump exited with $rc, expected a failure" || return 1
	grep -qF "$1" "$BATS_TEST_TMPDIR/dump.out" ||
		die_with_logs "no clear refusal (\"$1\") from the dump" || return 1
	assert_running_untraced "$PID" || die_with_logs "after the failed dump" || return 1
	go_and_check_original
}

# A snapshot of what a failed dump must leave unchanged: the memory map,
# the open descriptors and the signal state.
proc_snapshot() { # PID
	echo "# maps"
	cat "/proc/$1/maps"
	echo "# fds"
	local f
	for f in "/proc/$1/fd/"*; do
		echo "${f##*/} $(readlink "$f")"
	done | sort -n
	echo "# status"
	# running or sleeping is the same state here (the program polls); stopped or
	# traced is not
	grep -E '^(State|TracerPid|SigPnd|ShdPnd|SigBlk|SigIgn|SigCgt|Threads)' "/proc/$1/status" |
		sed -E 's/^State:\t[RS] .*/State:\trunning or sleeping/'
}

# ---------------------------------------------------------------- trees

# The tasks of the checkpoint in DIR (default $IMG), from its pstree image,
# one a line: PID PPID PGID SID ZOMBIE(0/1) TIDS (comma-separated, - for a
# zombie).
image_tasks() { # [DIR]
	stasis-serialize show "${1:-$IMG}/pstree.img" | python3 -c '
import json, sys
for r in json.load(sys.stdin)["records"]:
    tids = ",".join(str(t) for t in r.get("threads", [])) or "-"
    print(r["pid"], r.get("ppid", 0), r.get("pgid", 0), r.get("sid", 0),
          1 if r.get("zombie") else 0, tids)'
}

# Every ID the restore of the checkpoint in DIR (default $IMG) needs free,
# one a line: the PID and TIDs of every task, and every process group and
# session ID (a group whose leader is dead is refounded with its ID).
image_ids() { # [DIR]
	image_tasks "$@" | awk '{
		print $1; print $3; print $4
		if ($6 != "-") { n = split($6, t, ","); for (i = 1; i <= n; i++) print t[i] }
	}' | sort -un
}

# After a dump killed a tree, wait (at most SECONDS, default 30) until the
# restore can have every ID of the checkpoint in DIR (default $IMG): no
# process or thread has one as its PID, TID, process group or session.
# The dead tree's tasks are zombies adopted by init, which reaps them
# slowly, and a zombie keeps its group and session IDs in use.
wait_ids_free() { # [SECONDS] [DIR]
	local limit=$((${1:-30} * 10)) i=0 ids busy
	ids=$(image_ids "${2:-$IMG}") || {
		echo "FAILED: cannot read the pstree image of ${2:-$IMG}"
		return 1
	}
	ids=${ids//$'\n'/ }
	[ -n "${ids// /}" ] || { echo "FAILED: no IDs in the pstree image of ${2:-$IMG}"; return 1; }
	while :; do
		# pid, tid, pgid and sid of every thread, against the IDs
		busy=$(ps -eLo pid=,lwp=,pgid=,sid= | awk -v ids="$ids" '
			BEGIN { n = split(ids, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
			{ for (f = 1; f <= 4; f++) if ($f in want) { busy[$f] = 1 } }
			END { for (p in busy) printf "%s ", p }')
		[ -z "$busy" ] && return 0
		i=$((i + 1))
		if [ $i -ge $limit ]; then
			echo "FAILED: IDs of the checkpoint still in use $((limit / 10)) s after the dump: $busy"
			ps -eLo pid,lwp,ppid,pgid,sid,stat,comm | awk -v b=" $busy" 'NR == 1 || index(b, " " $1 " ") || index(b, " " $4 " ") || index(b, " " $5 " ")' | head -n 20
			return 1
		fi
		sleep 0.1
	done
}

# dump_and_kill for a tree: then wait until every ID of the checkpoint is
# free for the restore.
dump_and_kill_tree() { # [ARGS...]
	dump_and_kill "$@" || return 1
	wait_ids_free 30 || die_with_logs "the dumped tree's IDs did not become free" || return 1
}

# PID and all its descendants, one a line (PID first, then breadth-first).
tree_pids() { # PID
	ps -eo pid=,ppid= | awk -v root="$1" '
		{ kids[$2] = kids[$2] " " $1 }
		END {
			q[1] = root; n = 1
			for (i = 1; i <= n; i++) {
				print q[i]
				m = split(kids[q[i]], k, " ")
				for (j = 1; j <= m; j++) q[++n] = k[j]
			}
		}'
}

# Own (for cleanup_owned) every living task of the checkpoint in $IMG that
# exists now, with the executable it has now: call it once the tree is
# restored, so that teardown kills the whole restored tree by PID even if
# its root is gone.
own_image_tree() {
	local pid zombie
	while read -r pid _ _ _ zombie _; do
		[ "$zombie" = 0 ] && alive "$pid" && own_pid "$pid"
	done < <(image_tasks)
	return 0
}

# ---------------------------------------------------------------- ICMP

# ICMP echo sockets (inet dgram) need the caller's group inside
# net.ipv4.ping_group_range, which systemd widens at boot and a bare
# container leaves at "1 0" (nobody). A suite that makes them widens the
# range in setup_file and puts the old one back in teardown_file.
ping_sockets_allow() {
	cat /proc/sys/net/ipv4/ping_group_range >"$BATS_FILE_TMPDIR/ping_group_range"
	echo "0 2147483647" >/proc/sys/net/ipv4/ping_group_range
}

ping_sockets_restore() {
	[ -s "$BATS_FILE_TMPDIR/ping_group_range" ] || return 0
	cat "$BATS_FILE_TMPDIR/ping_group_range" >/proc/sys/net/ipv4/ping_group_range
}

# Huge pages of SIZE_KB (e.g. 2048) reserved for a suite: at least COUNT
# in the pool (nr_hugepages of that size), the old value kept to be put
# back by hugepages_restore. Fails loudly when the kernel gives fewer (no
# memory left to make them): the hugetlb tests need them.
hugepages_reserve() { # SIZE_KB COUNT
	local f=/sys/kernel/mm/hugepages/hugepages-${1}kB/nr_hugepages saved have
	saved=$BATS_FILE_TMPDIR/nr_hugepages-$1
	[ -w "$f" ] || { echo "FAILED: no huge pages of $1 kB on this kernel ($f)"; return 1; }
	[ -e "$saved" ] || cat "$f" >"$saved"
	have=$(cat "$f")
	[ "$have" -ge "$2" ] && return 0
	echo "$2" >"$f"
	have=$(cat "$f")
	[ "$have" -ge "$2" ] || {
		echo "FAILED: asked for $2 huge pages of $1 kB, the kernel made $have"
		return 1
	}
}

# Every pool hugepages_reserve changed, back to its old size.
hugepages_restore() {
	local saved size
	for saved in "$BATS_FILE_TMPDIR"/nr_hugepages-*; do
		[ -e "$saved" ] || continue
		size=${saved##*-}
		cat "$saved" >"/sys/kernel/mm/hugepages/hugepages-${size}kB/nr_hugepages"
		rm -f "$saved"
	done
}

# The huge page sizes (kB) of this kernel the hugetlb tests use: 2 MiB,
# and 1 GiB where the kernel has them.
hugepage_sizes() {
	local kb
	for kb in 2048 1048576; do
		[ -d "/sys/kernel/mm/hugepages/hugepages-${kb}kB" ] && echo "$kb"
	done
	return 0
}
