#!/usr/bin/env bats
# Process trees, threads and shared memory (issue 3): round trips of
# tests/progs/{tree,threads,shmcount,daemon,forker,prefork}.c and of real
# programs (a bash script waiting for its background jobs, a multi-threaded
# python3 program). Each restored tree is compared from outside with the
# tree at the dump (PIDs, TIDs, parents, groups, sessions, zombies, names),
# then the programs check themselves after GO. The total PSS of a
# pre-forked tree must stay within 10% (copy-on-write sharing survives).
# Exit safety: a dump that leaves the tree running (-R) or fails leaves
# every task and thread running, untraced.
#
# After a dump the killed tree's tasks are zombies adopted by init, which
# reaps them slowly: every restore first waits until all the IDs of the
# checkpoint are free (dump_and_kill_tree). Teardown kills every task of the
# restored tree by PID.

load helpers

bats_require_minimum_version 1.5.0

teardown() {
	cleanup_owned
	# shmcount's POSIX shared memory object, if it could not remove it
	if [ -n "$PID" ]; then rm -f "/dev/shm/stasis-shmcount.$PID"; fi
}

# ---------------------------------------------------------------- helpers

# State letter and tracer of PID (or PID/task/TID) into ST and TRACER
# (empty when gone). The status file is read in one read(): line by line,
# bash seeks back and reads again, and the file of a running task changes
# between the reads. Bash builtins only: forks are slow on these machines.
task_state() { # PID
	local s='' l
	ST='' TRACER=''
	IFS= read -r -d '' s 2>/dev/null <"/proc/$1/status" || true
	l=${s#*$'\nState:'}
	if [ "$l" != "$s" ]; then
		l=${l%%$'\n'*}
		read -r ST _ <<<"$l"
	fi
	l=${s#*$'\nTracerPid:'}
	if [ "$l" != "$s" ]; then
		l=${l%%$'\n'*}
		read -r TRACER _ <<<"$l"
	fi
}

# The tree under PID as comparable text, one task a line sorted by PID:
# "PID PPID PGID SID STATE [COMM]" with STATE Z for a zombie and - for any
# other, and PPID "root" for PID itself (its parent changes with a restore).
# With "comm", every task's name is listed; with "comm-living", only those
# of tasks that are not zombies.
tree_snapshot() { # PID [comm|comm-living]
	local root=$1 what=${2:-} p st ppid pgid sid state name
	for p in $(tree_pids "$root"); do
		read -r st 2>/dev/null <"/proc/$p/stat" || continue
		read -r state ppid pgid sid _ <<<"${st##*) }"
		[ "$p" = "$root" ] && ppid=root
		[ "$state" = Z ] || state=-
		name=
		if [ "$what" = comm ] || { [ "$what" = comm-living ] && [ "$state" = - ]; }; then
			read -r name 2>/dev/null <"/proc/$p/comm" || true
			name=" $name"
		fi
		echo "$p $ppid $pgid $sid $state$name"
	done | sort -n
}

# The threads of every living task of the tree under PID: "PID TID COMM"
# lines, sorted (zombies are left to tree_snapshot).
threads_snapshot() { # PID
	local p t name
	for p in $(tree_pids "$1"); do
		task_state "$p"
		[ "$ST" = Z ] && continue
		for t in /proc/"$p"/task/*; do
			[ -e "$t" ] || continue
			read -r name 2>/dev/null <"$t/comm" || true
			echo "$p ${t##*/} $name"
		done
	done | sort -n -k1,1 -k2,2
}

# Compare two snapshots; fail with the difference.
same_snapshot() { # WHAT BEFORE AFTER
	if ! diff -u "$2" "$3" >"$BATS_TEST_TMPDIR/snapshot.diff"; then
		echo "FAILED: $1 differs after the restore (- at the dump, + restored):"
		cat "$BATS_TEST_TMPDIR/snapshot.diff"
		show_logs
		return 1
	fi
}

# Wait (at most STASIS_TEST_WAIT s) until every task of the checkpoint is
# back and released: living tasks exist, are not traced and, per MODE, run
# (not stopped; the default), are "stopped" (restore -s), or either
# ("any": a tree with tasks stopped at the dump); zombies are
# zombies. With "may-exit", tasks other than the root may already have
# exited once released (short-lived children, like a shell's sleep): the
# restore creates every task before it releases any, and releases the root
# first. Fails early if stasis restore ($RPID) exits.
wait_tree_restored() { # [MODE] [may-exit]
	local mode=${1:-running} may_exit=${2:-} i=0 limit=$((STASIS_TEST_WAIT * 20))
	local pid zombie pending root_ok tasks
	tasks=$(image_tasks) || { die_with_logs "cannot read the checkpoint's pstree"; return 1; }
	while :; do
		pending=
		root_ok=
		while read -r pid _ _ _ zombie _; do
			task_state "$pid"
			if [ -z "$ST" ] && [ -n "$may_exit" ] && [ "$pid" != "$PID" ] && [ -n "$root_ok" ]; then
				continue
			fi
			if [ "$zombie" = 1 ]; then
				[ "$ST" = Z ] || pending+=" $pid(zombie:${ST:-none})"
				continue
			fi
			case "$mode:$ST" in
			running:[RSD] | stopped:T | any:[RSDT])
				if [ "$TRACER" = 0 ]; then
					[ "$pid" = "$PID" ] && root_ok=1
				else
					pending+=" $pid(traced)"
				fi
				;;
			*) pending+=" $pid(${ST:-none})" ;;
			esac
		done <<<"$tasks"
		[ -z "$pending" ] && break
		if [ -n "$RPID" ] && ! alive "$RPID"; then
			local rc=0
			wait "$RPID" || rc=$?
			die_with_logs "stasis restore exited with status $rc before the tree was back:$pending"
			return 1
		fi
		i=$((i + 1))
		if [ $i -ge $limit ]; then
			die_with_logs "the restored tree is not all back and released ($mode) after ${STASIS_TEST_WAIT}s:$pending"
			return 1
		fi
		sleep 0.05
	done
	own_image_tree
}

# GO, then stasis restore (the root's parent) must exit 0 and the program
# report PASS.
go_and_check_restored() {
	touch "$GOFILE"
	wait_child "$RPID" "$STASIS_TEST_WAIT" ||
		die_with_logs "stasis restore still running ${STASIS_TEST_WAIT}s after GO (restored PID $PID did not finish)" || return 1
	# the program's own verdict first: it says what differed
	check_pass_log || return 1
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis restore exited with status $STATUS (the restored program's status; expected 0)" || return 1
}

# Start a tree program, dump it, restore it, compare the tree from outside
# (SNAPSHOT-MODE as for tree_snapshot), and let it check itself.
tree_round_trip() { # SNAPSHOT-MODE PROG [ARGS...]
	local mode=$1
	shift
	start_prog "$@"
	tree_snapshot "$PID" "$mode" >"$BATS_TEST_TMPDIR/tree.before"
	threads_snapshot "$PID" >"$BATS_TEST_TMPDIR/threads.before"
	dump_and_kill_tree
	start_restore
	wait_tree_restored
	tree_snapshot "$PID" "$mode" >"$BATS_TEST_TMPDIR/tree.after"
	threads_snapshot "$PID" >"$BATS_TEST_TMPDIR/threads.after"
	same_snapshot "the process tree (PID PPID PGID SID STATE${mode:+ NAME})" "$BATS_TEST_TMPDIR/tree.before" "$BATS_TEST_TMPDIR/tree.after"
	same_snapshot "the threads (PID TID NAME)" "$BATS_TEST_TMPDIR/threads.before" "$BATS_TEST_TMPDIR/threads.after"
	go_and_check_restored
}

# Total Pss (kB) of the tree under PID, from smaps_rollup.
tree_pss() { # PID
	local p sum=0 v
	for p in $(tree_pids "$1"); do
		v=$(awk '$1 == "Pss:" { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null)
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

# ---------------------------------------------------------------- C programs

@test "tree: three levels, two sessions, an orphaned group whose leader is dead, zombies, a subreaper" {
	tree_round_trip comm-living tree
}

@test "tree: zombies keep their names" {
	tree_round_trip comm tree zombie-names
}

@test "zombies: exited, killed by SIGKILL and SIGSEGV, a zombie session leader and a zombie group leader with living members, a session leader's zombie" {
	tree_round_trip comm zombies
}

@test "stopped: tasks stopped by SIGTSTP, SIGSTOP (3 threads) and a stopped parent of a child stopped by SIGTTIN stay stopped by their signals" {
	start_prog stopped
	tree_snapshot "$PID" comm >"$BATS_TEST_TMPDIR/tree.before"
	dump_and_kill_tree
	start_restore
	wait_tree_restored any
	tree_snapshot "$PID" comm >"$BATS_TEST_TMPDIR/tree.after"
	same_snapshot "the process tree (PID PPID PGID SID STATE NAME)" "$BATS_TEST_TMPDIR/tree.before" "$BATS_TEST_TMPDIR/tree.after"
	local p stopped=0
	for p in $(tree_pids "$PID"); do
		task_state "$p"
		[ "$ST" = T ] && stopped=$((stopped + 1))
	done
	[ "$stopped" -eq 4 ] || die_with_logs "$stopped tasks are stopped after the restore, expected 4" || return 1
	go_and_check_restored
}

@test "fdtable: processes sharing one descriptor table (CLONE_FILES) still share it, and its copies stay apart" {
	tree_round_trip comm fdtable
}

@test "fdtable: two siblings sharing a table their parent does not are refused at dump, the tree left running" {
	start_prog fdtable siblings
	tree_snapshot "$PID" comm >"$BATS_TEST_TMPDIR/tree.before"
	mkdir -p "$IMG"
	run ! stasis dump -t "$PID" -D "$IMG" -o dump.log
	grep -q "descriptor table is shared with task .* but not with its parent: not supported" "$IMG/dump.log" ||
		die_with_logs "no refusal line for the shared descriptor table" || return 1
	assert_tree_running_untraced "$PID"
	tree_snapshot "$PID" comm >"$BATS_TEST_TMPDIR/tree.after"
	same_snapshot "the process tree" "$BATS_TEST_TMPDIR/tree.before" "$BATS_TEST_TMPDIR/tree.after"
	go_and_check_original
}

@test "checker self-test: zombies and stopped notice damage (STASIS_SABOTAGE)" {
	local what
	for what in zombies:zombie stopped:stopsig; do
		rm -f "$BATS_TEST_TMPDIR/${what%%:*}.log"
		export STASIS_SABOTAGE=${what#*:}
		start_prog "${what%%:*}"
		unset STASIS_SABOTAGE
		touch "$GOFILE"
		wait_child "$PID" 30 || die_with_logs "$what: no verdict" || return 1
		grep -q '^FAIL' "$LOG" || die_with_logs "$what: sabotage not noticed" || return 1
	done
}

@test "threads: 8 threads with their TIDs, names, masks, pending signals, futex hand-offs, a condition wait" {
	tree_round_trip comm threads
}

@test "shmcount: shared anonymous and /dev/shm counters of a parent and two children stay shared, and only where they were" {
	tree_round_trip comm shmcount
}

@test "daemon: a double-forked daemon under a subreaper keeps its session and group, whose leader is gone" {
	tree_round_trip comm daemon
}

@test "forker: a process forking all the time is restored with its running children and zombies, consistently" {
	start_prog forker
	# it forks and reaps thousands of children a second
	sleep 1
	dump_and_kill_tree

	# The checkpoint: the forker, children, zombies, perhaps grandchildren.
	local tasks children zombies living grand
	tasks=$(image_tasks)
	children=$(awk -v r="$PID" '$2 == r' <<<"$tasks" | wc -l)
	zombies=$(awk -v r="$PID" '$2 == r && $5 == 1' <<<"$tasks" | wc -l)
	living=$((children - zombies))
	grand=$(awk -v r="$PID" '$1 != r && $2 != r' <<<"$tasks" | wc -l)
	echo "checkpoint: $children children ($living living, $zombies zombies), $grand grandchildren"
	[ "$living" -ge 4 ] || die_with_logs "the checkpoint holds $living living children; the 4 long-lived ones at least were running"

	# Restore it stopped, compare it with the checkpoint while nothing runs.
	start_restore -s
	wait_tree_restored stopped
	local pid ppid pgid sid zombie want have
	want=$(while read -r pid ppid pgid sid zombie _; do
		[ "$pid" = "$PID" ] && ppid=root
		echo "$pid $ppid $pgid $sid $([ "$zombie" = 1 ] && echo Z || echo -)"
	done <<<"$tasks" | sort -n)
	have=$(tree_snapshot "$PID")
	[ "$want" = "$have" ] || {
		echo "FAILED: the restored tree is not the checkpoint's (- checkpoint, + restored):"
		diff -u <(echo "$want") <(echo "$have")
		show_logs
		return 1
	}
	# Children first: once the forker runs, it reaps them.
	for pid in $(tree_pids "$PID" | tac); do
		task_state "$pid"
		[ "$ST" = Z ] || kill -CONT "$pid" 2>/dev/null || true
	done
	go_and_check_restored
	grep '^INFO' "$LOG" || true
}

@test "prefork: 4 children reading the parent's 32 MiB of inherited data see it intact, total PSS within 10%" {
	start_prog prefork 32 4
	local before after
	before=$(tree_pss "$PID")
	tree_snapshot "$PID" >"$BATS_TEST_TMPDIR/tree.before"
	dump_and_kill_tree
	start_restore
	wait_tree_restored
	after=$(tree_pss "$PID")
	tree_snapshot "$PID" >"$BATS_TEST_TMPDIR/tree.after"
	same_snapshot "the process tree" "$BATS_TEST_TMPDIR/tree.before" "$BATS_TEST_TMPDIR/tree.after"
	echo "# prefork 32 MiB x 4 children: total PSS $before kB before the dump, $after kB restored" >&3
	# copy-on-write sharing survives: within 10% (without it, about 5 times)
	[ $((after * 100)) -le $((before * 110)) ] ||
		die_with_logs "the restored tree's total PSS is $after kB, more than 10% above the $before kB before the dump (copy-on-write sharing lost)"
	go_and_check_restored
}

# ---------------------------------------------------------------- exit safety

# Every thread of every task of the tree under PID runs (not stopped, not a
# zombie unless the task is one) and is not traced.
assert_tree_running_untraced() { # PID
	local p t bad=
	for p in $(tree_pids "$1"); do
		task_state "$p"
		[ "$ST" = Z ] && continue
		for t in /proc/"$p"/task/*; do
			[ -e "$t" ] || continue
			task_state "$p/task/${t##*/}"
			case $ST in
			[RSD]) [ "$TRACER" = 0 ] || bad+=" $p/${t##*/}(traced by $TRACER)" ;;
			*) bad+=" $p/${t##*/}(${ST:-gone})" ;;
			esac
		done
	done
	[ -z "$bad" ] || die_with_logs "not every thread of the tree runs untraced:$bad"
}

@test "dump -R of a tree: every task and thread runs on untraced, and the tree passes its own check" {
	start_prog tree
	tree_snapshot "$PID" comm >"$BATS_TEST_TMPDIR/tree.before"
	run_dump -R
	assert_tree_running_untraced "$PID"
	tree_snapshot "$PID" comm >"$BATS_TEST_TMPDIR/tree.after"
	same_snapshot "the tree left running" "$BATS_TEST_TMPDIR/tree.before" "$BATS_TEST_TMPDIR/tree.after"
	go_and_check_original
}

@test "dump -R of 8 threads: every thread runs on untraced with its state, and the program passes" {
	start_prog threads
	run_dump -R
	assert_tree_running_untraced "$PID"
	go_and_check_original
}

@test "a failed dump of a tree (into /sys) leaves every task running untraced, the tree unchanged, and it passes" {
	start_prog tree
	tree_snapshot "$PID" comm >"$BATS_TEST_TMPDIR/tree.before"
	local rc=0
	(cd "$BATS_TEST_TMPDIR" && exec stasis dump -t "$PID" -D /sys) \
		</dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 3>&- || rc=$?
	[ "$rc" -ne 0 ] || die_with_logs "the dump into /sys succeeded"
	[ "$rc" -lt 128 ] || die_with_logs "the dump died of a signal (status $rc)"
	assert_tree_running_untraced "$PID"
	tree_snapshot "$PID" comm >"$BATS_TEST_TMPDIR/tree.after"
	same_snapshot "the tree after the failed dump" "$BATS_TEST_TMPDIR/tree.before" "$BATS_TEST_TMPDIR/tree.after"
	go_and_check_original
}

# ---------------------------------------------------------------- real programs

# Lines in FILE (0 if missing).
lines_of() { # FILE
	local n
	n=$(wc -l <"$1" 2>/dev/null) || n=0
	echo "${n:-0}"
}

# Wait (at most SECONDS) until every FILE has at least N more lines than
# in the matching entry of the array named BASE (or N lines without BASE).
wait_growth() { # SECONDS N FILES...
	local limit=$(($1 * 10)) n=$2 i=0 f ok
	shift 2
	declare -A base=()
	for f in "$@"; do base[$f]=$(lines_of "$f"); done
	while :; do
		ok=1
		for f in "$@"; do
			[ "$(lines_of "$f")" -ge $((base[$f] + n)) ] || ok=0
		done
		[ $ok = 1 ] && return 0
		i=$((i + 1))
		if [ $i -ge "$limit" ]; then
			echo "FAILED: not every file grew by $n lines in $((limit / 10)) s:"
			for f in "$@"; do echo "  $f: ${base[$f]} -> $(lines_of "$f")"; done
			show_logs
			return 1
		fi
		sleep 0.1
	done
}

# FILE is exactly 0..N-1, one a line (checked on a copy).
check_sequence() { # FILE WHEN
	local n snap=$1.snapshot
	cp "$1" "$snap"
	n=$(wc -l <"$snap")
	if ! seq 0 $((n - 1)) | cmp -s - "$snap"; then
		echo "FAILED: $2: $1 is not the sequence 0..$((n - 1)); first difference:"
		seq 0 $((n - 1)) | diff - "$snap" | head -n 10
		show_logs
		return 1
	fi
}

# The files must not grow while the tree is dead.
check_still() { # FILES...
	local f before=()
	for f in "$@"; do before+=("$(lines_of "$f")"); done
	sleep 0.5
	local i=0
	for f in "$@"; do
		[ "$(lines_of "$f")" -eq "${before[$i]}" ] || die_with_logs "$f grew after the dump killed the tree" || return 1
		i=$((i + 1))
	done
}

@test "bash: background jobs (subshells running sleep) keep appending after the restore, the parent still waits for them" {
	local d=$BATS_TEST_TMPDIR files=() i
	for i in 1 2 3; do files+=("$d/job$i"); done
	LOG=$d/bash.log
	start_cmd bash -c '
for i in 1 2 3; do
	(n=0; while :; do echo $n >>"$1/job$i"; n=$((n + 1)); sleep 0.2; done) &
done
wait
echo wait-returned' bash "$d"
	wait_growth 20 5 "${files[@]}"
	own_pid "$PID"
	# shellcheck disable=SC2034 # used by the helpers
	PROG=${OWNED[$PID]}
	# bash, its 3 jobs and their sleeps
	local n
	n=$(tree_pids "$PID" | wc -l)
	[ "$n" -ge 4 ] || die_with_logs "the bash tree has $n tasks, expected bash, 3 jobs and their sleeps"
	# bash and its jobs (the sleeps come and go)
	tree_snapshot "$PID" | awk -v r="$PID" '$2 == "root" || $2 == r' >"$d/tree.before"

	dump_and_kill_tree
	check_still "${files[@]}"
	for i in "${files[@]}"; do check_sequence "$i" "after the dump"; done
	n=$(image_tasks | wc -l)
	echo "checkpoint: $n tasks"
	[ "$n" -ge 4 ] || die_with_logs "the checkpoint holds $n tasks, expected bash, its 3 jobs and their sleeps"

	start_restore
	wait_tree_restored running may-exit
	tree_snapshot "$PID" | awk -v r="$PID" '$2 == "root" || $2 == r' >"$d/tree.after"
	same_snapshot "bash and its jobs (PID PPID PGID SID STATE)" "$d/tree.before" "$d/tree.after"
	wait_growth 20 5 "${files[@]}"
	for i in "${files[@]}"; do check_sequence "$i" "after the restore"; done

	# bash itself is still in wait4() for its jobs
	local sc
	sc=$(cut -d' ' -f1 "/proc/$PID/syscall" 2>/dev/null)
	[ "$sc" = 61 ] || die_with_logs "the restored bash ($PID) is in system call '$sc', expected wait4 (61)"

	# End the jobs: bash's wait returns, it says so and exits 0. The jobs
	# first (so that they start no more sleeps), then their sleeps.
	local jobs others
	jobs=$(tree_snapshot "$PID" | awk -v r="$PID" '$2 == r { print $1 }')
	others=$(tree_pids "$PID" | grep -vxF "$PID" | grep -vxF "$jobs") || true
	# shellcheck disable=SC2086
	kill -KILL $jobs
	# shellcheck disable=SC2086
	[ -z "$others" ] || kill -KILL $others 2>/dev/null || true
	wait_child "$RPID" 20 || die_with_logs "bash did not return from wait once its jobs were killed"
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis restore (bash) exited with status $STATUS, expected 0"
	grep -qx wait-returned "$LOG" || die_with_logs "bash did not get past its wait"
}

@test "python3: threads appending to their files all keep going after the restore" {
	local py=/usr/bin/python3 d=$BATS_TEST_TMPDIR files=() i
	[ -x "$py" ] || py=$(command -v python3) || { echo "FAILED: no python3"; return 1; }
	for i in 0 1 2 3 4; do files+=("$d/thread$i"); done
	LOG=$d/python.log
	start_cmd "$py" -c '
import sys, threading, time

def sleeper(i):
    with open("%s/thread%d" % (sys.argv[1], i), "a") as f:
        n = 0
        while True:
            f.write("%d\n" % n)
            f.flush()
            n += 1
            time.sleep(0.05 * (i + 1))

def spinner(i):
    # CPU-bound: holds the GIL between switches
    with open("%s/thread%d" % (sys.argv[1], i), "a") as f:
        n, acc = 0, 0
        while True:
            for k in range(20000):
                acc = (acc * 31 + k) % 1000003
            f.write("%d\n" % n)
            f.flush()
            n += 1

ts = [threading.Thread(target=sleeper, args=(i,), name="sleeper%d" % i) for i in range(4)]
ts.append(threading.Thread(target=spinner, args=(4,), name="spinner"))
for t in ts:
    t.start()
for t in ts:
    t.join()
' "$d"
	wait_growth 20 5 "${files[@]}"
	own_pid "$PID"
	# shellcheck disable=SC2034 # used by the helpers
	PROG=${OWNED[$PID]}
	local nthreads
	nthreads=$(ls "/proc/$PID/task" | wc -l)
	[ "$nthreads" -eq 6 ] || die_with_logs "python3 has $nthreads threads, expected 6 (main and 5)"
	threads_snapshot "$PID" >"$d/threads.before"

	dump_and_kill_tree
	check_still "${files[@]}"
	for i in "${files[@]}"; do check_sequence "$i" "after the dump"; done

	start_restore
	wait_tree_restored
	threads_snapshot "$PID" >"$d/threads.after"
	same_snapshot "the threads (PID TID NAME)" "$d/threads.before" "$d/threads.after"
	wait_growth 20 5 "${files[@]}"
	for i in "${files[@]}"; do check_sequence "$i" "after the restore"; done
	kill -KILL "$PID"
	wait_child "$RPID" 10 || die_with_logs "stasis restore did not exit after its restored PID $PID was killed"
}
