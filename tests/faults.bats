#!/usr/bin/env bats
# Injected faults (STASIS_FAULT, include/stasis/fault.h): every failure
# point of dump and restore is made to fail in turn, and some stages of a
# dump and a restore are killed with SIGKILL while they wait at a point
# (NAME:hang). After each:
#  - dump: the tree runs, untraced, unchanged (maps, descriptors, signal
#    state); the older checkpoint in the directory is untouched (or, once
#    the sink has stored the new one, a whole new one); the program passes
#    its own check at the end;
#  - restore: no task of the checkpoint is left, the checkpoint is
#    untouched, and a last restore without faults succeeds (PASS);
#  - no process of the failed pipeline is left (each carries a token in its
#    environment);
#  - a failure names its point on one line, exit status 1, no crash.

load helpers

# The failure points, by program; a fault_hit("NAME") in the sources that
# is not here (or the reverse) fails the first test.
DUMP_POINTS='freeze-seized collect-seized collect-parasite collect-pages unpack-commit collect-ack collect-kill'
RESTORE_POINTS='inject-forked inject-mm inject-files inject-release'
# From collect-ack on, the sink has stored the new checkpoint in DIR.
STORED_POINTS='collect-ack collect-kill'

SRC=$BATS_TEST_DIRNAME/..

setup() {
	stasis_test_setup
	TOKEN=STASIS_FAULTS_TOKEN=$BATS_TEST_TMPDIR
	HANG=$BATS_TEST_TMPDIR/hang
}

# PIDs of processes whose environment holds our token.
token_pids() {
	local e
	for e in /proc/[0-9]*/environ; do
		grep -qzx "$TOKEN" "$e" 2>/dev/null && { e=${e#/proc/}; echo "${e%/environ}"; }
	done
	return 0
}

no_token_left() {
	local i left
	for i in $(seq 50); do
		left=$(token_pids)
		[ -z "$left" ] && return 0
		sleep 0.1
	done
	echo "FAILED: processes of the failed pipeline are left: $left"
	ps -o pid,ppid,stat,args -p "${left//$'\n'/,}" || true
	return 1
}

# The image files of DIR with their digests (the staging directory of an
# unpack that was killed is not an image).
digest() { # DIR
	(cd "$1" && sha256sum -- *.img | sort -k 2)
}

# The living (not zombie) tasks of the tree of $PID.
living_tree_pids() {
	local p
	for p in $(tree_pids "$PID"); do
		[ "$(proc_state "$p")" = Z ] || echo "$p"
	done
}

# A snapshot of every task of the tree of $PID (its zombies: a line each).
tree_snapshot() {
	local p
	for p in $(tree_pids "$PID"); do
		echo "## $p"
		if [ "$(proc_state "$p")" = Z ]; then echo zombie; continue; fi
		proc_snapshot "$p" | grep -v '^State:'
	done
}

tree_running_unchanged() { # SNAPSHOT WHAT
	local p
	for p in $(living_tree_pids); do
		assert_running_untraced "$p" || { echo "FAILED: $2"; return 1; }
	done
	tree_snapshot >"$BATS_TEST_TMPDIR/after"
	diff -u "$1" "$BATS_TEST_TMPDIR/after" || { echo "FAILED: $2: the tree changed"; return 1; }
}

# The failure was reported for POINT on one line: status 1, exactly one
# line naming the fault, none that shows a crash.
one_fault_line() { # POINT STATUS OUTPUT-FILE
	local n
	[ "$2" -eq 1 ] || { echo "FAILED: $1: status $2, expected 1"; cat "$3"; return 1; }
	n=$(grep -c "error: fault injected at $1 " "$3")
	[ "$n" -eq 1 ] || { echo "FAILED: $1: $n lines name the fault"; cat "$3"; return 1; }
	if grep -qiE 'segmentation|aborted|core dumped|sanitizer|killed by signal' "$3"; then
		echo "FAILED: $1: a crash"
		cat "$3"
		return 1
	fi
}

# After a dump failed at POINT: $IMG still holds the older checkpoint
# (digest OLD) or, from the points where the sink has stored the new one
# on, a whole new one.
checkpoint_kept() { # POINT OLD
	if [[ " $STORED_POINTS " == *" $1 "* ]]; then
		stasis-serialize show -D "$IMG" >/dev/null || { echo "FAILED: $1: $IMG is damaged"; return 1; }
	else
		[ "$(digest "$IMG")" = "$2" ] || { echo "FAILED: $1: the older checkpoint changed"; return 1; }
	fi
}

fault_dump() { # FAULT [ARGS...]
	local fault=$1 rc=0
	shift
	(cd "$BATS_TEST_TMPDIR" && exec env "$TOKEN" STASIS_FAULT="$fault" STASIS_FAULT_HANG_FILE="$HANG" \
		stasis dump -t "$PID" -D "$IMG" "$@") </dev/null >"$BATS_TEST_TMPDIR/fault.out" 2>&1 3>&- || rc=$?
	return $rc
}

fault_restore() { # FAULT
	local rc=0
	(cd "$BATS_TEST_TMPDIR" && exec env "$TOKEN" STASIS_FAULT="$1" STASIS_FAULT_HANG_FILE="$HANG" \
		stasis restore -D "$IMG" -d) </dev/null >"$BATS_TEST_TMPDIR/fault.out" 2>&1 3>&- || rc=$?
	return $rc
}

# None of the checkpoint's tasks exists (after a failed restore).
no_task_of_image() { # WHAT
	local pid i
	for i in $(seq 50); do
		local left=
		while read -r pid _; do
			alive "$pid" && left+=" $pid"
		done < <(image_tasks)
		[ -z "$left" ] && return 0
		sleep 0.1
	done
	echo "FAILED: $1: tasks of the checkpoint are left:$left"
	ps -o pid,ppid,stat,args -p "${left// /,}" || true
	return 1
}

# Wait until the stage hanging at POINT has said so; its PID in HANG_PID.
wait_hang() { # POINT
	local i
	for i in $(seq 200); do
		HANG_PID=$(awk -v p="$1" '$1 == p { print $2 }' "$HANG" 2>/dev/null | tail -n 1)
		[ -n "$HANG_PID" ] && return 0
		sleep 0.05
	done
	echo "FAILED: no stage reached $1"
	return 1
}

@test "fault points: the suite walks exactly the points in the sources" {
	local src tab
	src=$(grep -rhoE 'fault_hit\("[a-z0-9-]+"\)' "$SRC"/{freeze,collect,serialize,seal,transfer,inject,stasis,lib} |
		sed -E 's/fault_hit\("(.*)"\)/\1/' | grep -vx seal-lazy-page-flip | sort -u)
	# seal-lazy-page-flip alters a page instead of failing: lazy-remote.bats
	# walks it
	tab=$(echo $DUMP_POINTS $RESTORE_POINTS | tr ' ' '\n' | sort -u)
	echo "in the sources: $(echo $src)"
	echo "in the suite:   $(echo $tab)"
	[ "$src" = "$tab" ]
}

@test "faults: every failure point of dump fails it cleanly, the tree runs on unchanged, the older checkpoint stays" {
	local p rc old
	start_prog tree
	# the older checkpoint
	run_dump -R
	assert_running_untraced "$PID"
	old=$(digest "$IMG")
	tree_snapshot >"$BATS_TEST_TMPDIR/before"
	for p in $DUMP_POINTS; do
		rc=0
		fault_dump "$p" || rc=$?
		one_fault_line "$p" "$rc" "$BATS_TEST_TMPDIR/fault.out"
		tree_running_unchanged "$BATS_TEST_TMPDIR/before" "after the fault at $p"
		no_token_left
		checkpoint_kept "$p" "$old"
		old=$(digest "$IMG")
		echo "# $p: $(grep -m 1 'fault injected' "$BATS_TEST_TMPDIR/fault.out")"
	done
	go_and_check_original
}

@test "faults: every failure point of restore fails it cleanly, leaves no task, and the checkpoint restores after" {
	local p rc old
	start_prog tree
	dump_and_kill_tree
	old=$(digest "$IMG")
	for p in $RESTORE_POINTS; do
		rc=0
		fault_restore "$p" || rc=$?
		one_fault_line "$p" "$rc" "$BATS_TEST_TMPDIR/fault.out"
		no_task_of_image "after the fault at $p"
		no_token_left
		[ "$(digest "$IMG")" = "$old" ] || { echo "FAILED: $p: the checkpoint changed"; return 1; }
		wait_ids_free 30
		echo "# $p: $(grep -m 1 'fault injected' "$BATS_TEST_TMPDIR/fault.out")"
	done
	restore_and_check
}

# Kill the stage waiting at POINT; the dump must fail and leave the tree
# as it was.
kill_dump_stage_at() { # POINT
	local p=$1 dpid rc=0
	rm -f "$HANG"
	(cd "$BATS_TEST_TMPDIR" && exec env "$TOKEN" STASIS_FAULT="$p:hang" STASIS_FAULT_HANG_FILE="$HANG" \
		stasis dump -t "$PID" -D "$IMG") </dev/null >"$BATS_TEST_TMPDIR/fault.out" 2>&1 3>&- &
	dpid=$!
	wait_hang "$p"
	kill -KILL "$HANG_PID"
	wait_child "$dpid" 60 || { echo "FAILED: $p: stasis dump still runs 60 s after its stage was killed"; return 1; }
	[ "$STATUS" -ne 0 ] || { echo "FAILED: $p: the dump succeeded"; return 1; }
	echo "# killed $(cat "/proc/$HANG_PID/comm" 2>/dev/null || echo "the stage") at $p: dump status $STATUS"
}

@test "faults: SIGKILL of collect or of the sink at several moments of a dump leaves the tree running unchanged" {
	local p old
	start_prog tree
	run_dump -R
	old=$(digest "$IMG")
	tree_snapshot >"$BATS_TEST_TMPDIR/before"
	# freeze with the tree seized; collect with it seized, sending pages,
	# waiting for the acknowledgement; the sink about to store the checkpoint
	for p in freeze-seized collect-seized collect-pages collect-ack unpack-commit; do
		kill_dump_stage_at "$p"
		tree_running_unchanged "$BATS_TEST_TMPDIR/before" "after SIGKILL at $p"
		no_token_left
		checkpoint_kept "$p" "$old"
		old=$(digest "$IMG")
	done
	go_and_check_original
}

@test "faults: SIGKILL of stasis-inject in the middle of a restore leaves no task, the checkpoint restores after" {
	local p rpid
	start_prog tree
	dump_and_kill_tree
	for p in inject-forked inject-mm inject-files inject-release; do
		rm -f "$HANG"
		(cd "$BATS_TEST_TMPDIR" && exec env "$TOKEN" STASIS_FAULT="$p:hang" STASIS_FAULT_HANG_FILE="$HANG" \
			stasis restore -D "$IMG" -d) </dev/null >"$BATS_TEST_TMPDIR/fault.out" 2>&1 3>&- &
		rpid=$!
		wait_hang "$p"
		kill -KILL "$HANG_PID"
		wait_child "$rpid" 60 || { echo "FAILED: $p: stasis restore still runs 60 s after inject was killed"; return 1; }
		[ "$STATUS" -ne 0 ] || { echo "FAILED: $p: the restore succeeded"; return 1; }
		no_task_of_image "after SIGKILL at $p"
		no_token_left
		wait_ids_free 30
	done
	restore_and_check
}
