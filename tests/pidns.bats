#!/usr/bin/env bats
# PID namespaces (docs/tasks.md, PID namespaces): a tree whose root is the
# init of a PID namespace of its own comes back in a new one, every task
# with its PID, parent, group and session inside (tests/progs/pidns.c
# checks them from inside, with kill, a pidfd and waitpid by inner PIDs);
# outer PIDs differ; with a mount namespace and the namespace's /proc
# mounted in it, that /proc comes back as the new namespace's. A nested
# PID namespace is refused before anything is touched.

load helpers

bats_require_minimum_version 1.5.0

# PID's PID in its innermost PID namespace.
inner_pid() { # PID
	awk '$1 == "NSpid:" { print $NF }' "/proc/$1/status" 2>/dev/null
}

# Start tests/progs/pidns.c: PID is its outer process (our child), ROOT
# the namespace's init as we see it, the tree to dump.
start_pidns() { # [ARGS...]
	start_prog pidns "$@" || return 1
	OUTER=$PID
	ROOT=$(awk '$1 == "ROOT" { print $2 }' "$LOG")
	[ -n "$ROOT" ] || die_with_logs "no ROOT line" || return 1
	own_pid "$ROOT" "$PROG"
	[ "$(inner_pid "$ROOT")" = 1 ] ||
		die_with_logs "task $ROOT is not PID 1 of its namespace" || return 1
	PID=$ROOT
}

# Dump the tree of ROOT (killed by the dump): the outer process sees its
# child killed.
dump_pidns() { # [ARGS...]
	run_dump "$@" || return 1
	wait_child "$OUTER" 10 || die_with_logs "the outer process is still alive after the dump" || return 1
	[ "$STATUS" -eq 137 ] || die_with_logs "the outer process exited with $STATUS, not 137" || return 1
}

# Start a restore of $IMG writing the root's outer PID to FILE; sets RPID
# and PID (the restored root), once it is released.
restore_pidns() { # FILE [ARGS...]
	local file=$1 i
	shift
	rm -f "$file"
	start_restore --pidfile "$file" "$@"
	for i in $(seq 200); do
		[ -s "$file" ] && break
		alive "$RPID" || die_with_logs "stasis restore exited before writing $file" || return 1
		sleep 0.05
	done
	PID=$(cat "$file")
	[ -n "$PID" ] || die_with_logs "no pidfile after 10 s" || return 1
	own_pid "$PID" "$PROG"
	[ "$(inner_pid "$PID")" = 1 ] ||
		die_with_logs "restored root $PID is not PID 1 of its namespace" || return 1
	wait_restored
}

@test "a tree in its own PID namespace comes back in a new one: the same PIDs, parents, groups and sessions inside" {
	start_pidns
	dump_pidns
	# the records name the tasks as they saw themselves
	[ "$(image_tasks | awk 'NR == 1 { print $1, $2, $3, $4 }')" = "1 0 1 1" ] ||
		die_with_logs "pstree: $(image_tasks)"
	restore_pidns "$BATS_TEST_TMPDIR/root.pid"
	[ "$PID" != "$ROOT" ] || echo "(the restored root got its old outer PID $ROOT)"
	check_restored
}

@test "dump -R of a tree in its own PID namespace leaves it running, untraced, and it checks itself" {
	start_pidns
	run_dump -R
	local p
	for p in $(tree_pids "$ROOT"); do
		assert_running_untraced "$p" || die_with_logs "after dump -R"
	done
	touch "$GOFILE"
	wait_child "$OUTER" "$STASIS_TEST_WAIT" || die_with_logs "no verdict after GO"
	[ "$STATUS" -eq 0 ] || die_with_logs "the program exited with $STATUS"
	check_pass_log
}

@test "a nested PID namespace is refused before anything is touched, and the tree runs on" {
	start_pidns nested
	run ! stasis dump -t "$ROOT" -D "$IMG"
	[[ "$output" == *"is in a PID namespace nested in another one"* ]] ||
		die_with_logs "no clear refusal: $output"
	local p
	for p in $(tree_pids "$ROOT"); do
		assert_running_untraced "$p" || die_with_logs "after the refused dump"
	done
	touch "$GOFILE"
	wait_child "$OUTER" "$STASIS_TEST_WAIT" || die_with_logs "no verdict after GO"
	[ "$STATUS" -eq 0 ] || die_with_logs "the program exited with $STATUS"
	check_pass_log
}

@test "the same checkpoint restores twice at once: each copy has the PIDs inside its own namespace" {
	local first first_rpid
	start_pidns
	dump_pidns
	restore_pidns "$BATS_TEST_TMPDIR/first.pid" -d
	first=$PID first_rpid=$RPID
	wait_child "$first_rpid" 10 || die_with_logs "stasis restore -d did not return"
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis restore -d exited with $STATUS"
	# the first copy still runs with every inner PID: no wait for them
	restore_pidns "$BATS_TEST_TMPDIR/second.pid"
	[ "$PID" != "$first" ] || die_with_logs "both copies are $PID"
	alive "$first" || die_with_logs "the first copy ($first) is gone"
	[ "$(inner_pid "$first")" = 1 ] || die_with_logs "first copy"
	touch "$GOFILE"
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "the second copy did not finish"
	[ "$STATUS" -eq 0 ] || die_with_logs "the second copy exited with $STATUS"
	wait_gone "$first" "$STASIS_TEST_WAIT" || die_with_logs "the first copy did not finish"
	check_pass_log
}

@test "a tree in a PID and a mount namespace of its own, the namespace's /proc mounted there, comes back with a /proc of its new namespace" {
	start_pidns mountproc
	dump_pidns
	grep -q "pidns_proc" <(stasis-serialize show "$IMG/ns.img") ||
		die_with_logs "no /proc of the PID namespace in the mount namespace's record" || return 1
	restore_pidns "$BATS_TEST_TMPDIR/root.pid"
	grep -q "the /proc of the tree's PID namespace mounted at /proc" "$(find_log restore.log)" ||
		die_with_logs "the restore log does not say the init mounted its /proc" || return 1
	# from outside too: PID 1 of the restored tree's /proc is its root
	[ "$(awk '{ print $1 }' "/proc/$PID/root/proc/1/stat")" = 1 ] &&
		[ "$(readlink "/proc/$PID/root/proc/1/ns/pid")" = "$(readlink "/proc/$PID/ns/pid")" ] ||
		die_with_logs "the restored tree's /proc is not its PID namespace's" || return 1
	check_restored
}
