#!/usr/bin/env bats
# Per-process attributes (issue 4): credentials, seccomp, timers, scheduling
# and prctl state survive a dump and restore. Each program sets the state
# up, checks after the restore that it is still the same and still behaves
# the same, and reports PASS or FAIL (see the top of tests/progs/creds.c,
# timers.c and sched.c).

load helpers

bats_require_minimum_version 1.5.0

@test "creds: uids, groups, capabilities, securebits, no_new_privs, seccomp filters, per thread" {
	start_prog creds
	dump_and_kill
	restore_and_check
}

@test "timers: ITIMER_REAL and POSIX timers fire on time after restore, keep IDs and intervals" {
	start_prog timers
	dump_and_kill
	restore_and_check
}

@test "sched: SCHED_BATCH/nice, SCHED_RR, affinity, ioprio per thread; personality, prctls" {
	start_prog sched
	dump_and_kill
	restore_and_check
}

@test "procattrs: oom_score_adj and loginuid of a process, its thread and its child" {
	start_prog procattrs
	dump_and_kill_tree
	restore_and_check
}

# The cgroups test's directories and mount, removed whatever happened to
# it (the program removes them itself when it ends well); CG_PROPS: the
# settings' cgroups (memory, cpu, cpuset, pids), each with its sub.
CG_V1='' CG_V2='' CG_PROPS=()
# A named v1 hierarchy of this test's own (dump --cgroup-root), mounted on
# CG_NAMED; CG_NAMED_DIRS: its cgroups, deepest first.
CG_NAMED='' CG_NAMED_NAME='' CG_NAMED_DIRS=()
# rmdir, retried while a task killed a moment ago still holds the cgroup
# (an unmounted v1 hierarchy with a cgroup left lives on in every task's
# /proc cgroup file)
rmdir_cgroup() { # DIR
	local i
	for i in $(seq 50); do
		[ -d "$1" ] || return 0
		rmdir "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "# cannot remove cgroup $1" >&3
}
teardown() {
	cleanup_owned
	local d dirs=()
	for d in "${CG_NAMED_DIRS[@]}"; do
		rmdir_cgroup "$CG_NAMED/$d"
	done
	if [ -n "$CG_NAMED" ] && mountpoint -q "$CG_NAMED"; then umount -l "$CG_NAMED" || true; fi
	CG_NAMED='' CG_NAMED_DIRS=()
	[ -z "$CG_V2" ] || dirs+=("$CG_V2/empty/nested" "$CG_V2/empty" "$CG_V2")
	[ -z "$CG_V1" ] || dirs+=("$CG_V1/lead/empty/nested" "$CG_V1/lead/empty" "$CG_V1/lead" "$CG_V1/thr")
	for d in "${CG_PROPS[@]}"; do
		dirs+=("$d/sub" "$d")
	done
	for d in "${dirs[@]}"; do
		rmdir_cgroup "$d"
	done
	if [ -n "$CG_V1" ] && mountpoint -q "$CG_V1"; then umount -l "$CG_V1" || true; fi
	CG_V1='' CG_V2='' CG_PROPS=()
}

# Start tests/progs/cgroups.c and read where its cgroups are.
start_cgroups() {
	start_prog cgroups "$BATS_TEST_TMPDIR"
	CG_V1=$(awk '$1 == "V1" { print $2 }' "$LOG") CG_V2=$(awk '$1 == "V2" { print $2 }' "$LOG")
	mapfile -t CG_PROPS < <(awk '$1 == "PROPS" { print $2 }' "$LOG")
	[ -n "$CG_V1" ] && [ -n "$CG_V2" ] || die_with_logs "no V1/V2 lines"
	[ "${#CG_PROPS[@]}" -gt 0 ] || die_with_logs "no PROPS lines (no memory, cpu, cpuset or pids hierarchy?)"
}

# Remove every cgroup directory of the dumped program (it is gone).
remove_cgroups() {
	local d
	for d in "$CG_V1/lead/empty/nested" "$CG_V1/lead/empty" "$CG_V1/lead" "$CG_V1/thr" \
		"$CG_V2/empty/nested" "$CG_V2/empty" "$CG_V2"; do
		rmdir "$d"
	done
	for d in "${CG_PROPS[@]}"; do
		rmdir "$d/sub" "$d"
	done
	[ ! -e "$CG_V1/lead" ]
	[ ! -e "$CG_V2" ]
}

# The settings' cgroup of controller $1 (empty when not mounted here).
props_dir() { # CONTROLLER
	local d
	for d in "${CG_PROPS[@]}"; do
		[ -e "$d/$1.stat" ] || [ -e "$d/$1.shares" ] || [ -e "$d/$1.cpus" ] || [ -e "$d/$1.max" ] || continue
		echo "$d"
		return 0
	done
}

# Change settings of the dumped program's existing cgroups: the memory
# limit and cpu.shares of sub. Sets CHANGED to the files changed.
change_settings() {
	local m c
	CHANGED=()
	m=$(props_dir memory) c=$(props_dir cpu)
	if [ -n "$m" ]; then
		echo 536870912 >"$m/memory.limit_in_bytes"
		CHANGED+=("$m/memory.limit_in_bytes=536870912")
	fi
	if [ -n "$c" ]; then
		echo 1000 >"$c/sub/cpu.shares"
		CHANGED+=("$c/sub/cpu.shares=1000")
	fi
	[ "${#CHANGED[@]}" -gt 0 ] || die_with_logs "neither a memory nor a cpu hierarchy"
}

# The changed settings kept their new values.
settings_unchanged() {
	local c
	for c in "${CHANGED[@]}"; do
		[ "$(cat "${c%=*}")" = "${c##*=}" ] || die_with_logs "${c%=*} is $(cat "${c%=*}"), was set to ${c##*=}" || return 1
	done
}

@test "--manage-cgroups: a process and its thread go back into their v2 and v1 cgroups, removed ones made again with their empty sub-cgroups, modes, owners and settings" {
	start_cgroups
	dump_and_kill --manage-cgroups
	# the restore makes them again: the tasks' cgroups and the empty ones
	# below them, with their modes, owners and settings (the program checks)
	remove_cgroups
	restore_and_check --manage-cgroups
	grep -q "in cgroup name=stasis-test-$PID:/thr again" "$(find_log restore.log)" ||
		die_with_logs "the restore log does not show the thread moved"
	grep -q "cgroup name=stasis-test-$PID:/lead/empty/nested made again" "$(find_log restore.log)" ||
		die_with_logs "the restore log does not show the empty v1 cgroup made"
	grep -q "cgroup v2:/.*${CG_V2##*/}/empty/nested made again" "$(find_log restore.log)" ||
		die_with_logs "the restore log does not show the empty v2 cgroup made"
	# the program removed what it made
	[ ! -e "$CG_V2" ]
	[ ! -e "$CG_V1/lead" ]
	[ ! -e "$CG_V1/thr" ]
	[ ! -e "${CG_PROPS[0]}" ]
	run ! mountpoint -q "$CG_V1"
}

@test "--manage-cgroups=full: removed cgroups made again with their settings (zdtm cgroup04)" {
	start_cgroups
	dump_and_kill
	remove_cgroups
	restore_and_check --manage-cgroups=full
	grep -q "cgroup settings restored (--manage-cgroups=full)" "$(find_log restore.log)" ||
		die_with_logs "the restore log does not show the settings restored"
}

# Dump the cgroups program, change settings of its cgroups (kept), restore
# with --manage-cgroups=MODE: the program finds its settings back.
existing_settings_restored() { # MODE
	start_cgroups
	dump_and_kill
	change_settings
	restore_and_check --manage-cgroups="$1"
}

@test "--manage-cgroups=full restores the settings of cgroups that exist" {
	existing_settings_restored full
}

@test "--manage-cgroups=props restores the settings of cgroups that exist" {
	existing_settings_restored props
}

@test "--manage-cgroups=soft and none leave the settings of existing cgroups alone" {
	local mode
	start_cgroups
	dump_and_kill
	change_settings
	for mode in soft none; do
		start_restore --manage-cgroups=$mode
		wait_restored
		settings_unchanged
		kill -KILL "$PID"
		wait_child "$RPID" 10
	done
}

@test "--manage-cgroups=props and none need the cgroups to exist; strict needs them gone: the restore fails, no task left" {
	local mode
	start_cgroups
	dump_and_kill
	for mode in strict props none; do
		[ "$mode" != props ] || rmdir "${CG_PROPS[0]}/sub"
		run stasis restore -D "$IMG" -v4 -o "$BATS_TEST_TMPDIR/restore-$mode.log" --manage-cgroups=$mode 3>&-
		[ "$status" -ne 0 ]
		if [ "$mode" = strict ]; then
			grep -q "exists: --manage-cgroups=strict restores into new cgroups only" "$BATS_TEST_TMPDIR/restore-$mode.log" ||
				die_with_logs "strict: no error naming the existing cgroup"
		else
			grep -q "${CG_PROPS[0]##*/}/sub (.*) does not exist: --manage-cgroups=$mode does not make cgroups" "$BATS_TEST_TMPDIR/restore-$mode.log" ||
				die_with_logs "$mode: no error naming the missing cgroup"
		fi
		wait_gone "$PID" 10
	done
}

@test "a setting that cannot be written back fails the restore with its name, no task left" {
	local c
	start_cgroups
	c=$(props_dir cpuset)
	[ -n "$c" ] || { echo "FAILED: no cpuset hierarchy mounted (the test needs one)"; false; }
	dump_and_kill
	remove_cgroups
	# the parent allows no CPU: the cgroup's cpuset.cpus is refused
	mkdir "$c"
	echo 0 >"$c/cpuset.mems"
	run stasis restore -D "$IMG" -v4 -o "$BATS_TEST_TMPDIR/restore.log" --manage-cgroups=full 3>&-
	[ "$status" -ne 0 ]
	grep -q "cgroup cpuset:.*/sub: cannot set cpuset.cpus" "$BATS_TEST_TMPDIR/restore.log" ||
		die_with_logs "no error naming the setting"
	wait_gone "$PID" 10
}

@test "dump --cgroup-props: a replaced list is all a controller's settings recorded, a merged one adds; a bad one is refused, the tree running" {
	local m spec
	start_cgroups
	m=$(props_dir memory)
	[ -n "$m" ] || { echo "FAILED: no memory hierarchy mounted (the test needs one)"; false; }
	spec='"memory":\n - "strategy": "replace"\n - "properties": ["memory.soft_limit_in_bytes"]\n"pids":\n - "strategy": "merge"\n - "properties": ["pids.max", "pids.events"]'
	run stasis dump -t "$PID" -D "$IMG" --cgroup-props '"memory": - "strategy": "bogus"' 3>&-
	[ "$status" -ne 0 ]
	[[ "$output" == *'--cgroup-props: controller memory: the strategy is "merge" or "replace"'* ]]
	assert_running_untraced "$PID"
	dump_and_kill --cgroup-props "$spec"
	stasis-serialize show "$IMG/cgroups.img" >"$BATS_TEST_TMPDIR/cgroups.json"
	grep -q '"memory.soft_limit_in_bytes"' "$BATS_TEST_TMPDIR/cgroups.json"
	run ! grep -q '"memory.limit_in_bytes"' "$BATS_TEST_TMPDIR/cgroups.json"
	grep -q '"cpu.shares"' "$BATS_TEST_TMPDIR/cgroups.json"
	if [ -n "$(props_dir pids)" ]; then
		grep -q '"pids.events"' "$BATS_TEST_TMPDIR/cgroups.json"
	fi
}

@test "restore --cgroup-root memory:/PATH: the tree's memory cgroups, made below PATH with their settings" {
	local m line old new
	start_cgroups
	m=$(props_dir memory)
	[ -n "$m" ] || { echo "FAILED: no memory hierarchy mounted (the test needs one)"; false; }
	line=$(grep -E '^[0-9]+:([^:]*,)?memory(,[^:]*)?:' "/proc/$PID/cgroup")
	old=${line#*:*:}
	new=${old%/*}/stasis-moved-$PID
	dump_and_kill
	remove_cgroups
	CG_PROPS+=("${m%/*}/stasis-moved-$PID")
	start_restore --manage-cgroups=full --cgroup-root "memory:$new"
	wait_restored
	grep -qE "^[0-9]+:([^:]*,)?memory(,[^:]*)?:$new\$" "/proc/$PID/cgroup" ||
		die_with_logs "not in $new: $(cat "/proc/$PID/cgroup")"
	[ "$(cat "${m%/*}/stasis-moved-$PID/memory.limit_in_bytes")" = 268435456 ]
	[ "$(cat "${m%/*}/stasis-moved-$PID/sub/memory.limit_in_bytes")" = 67108864 ]
	[ ! -e "$m" ]
	kill -KILL "$PID"
	wait_child "$RPID" 10
}

# Mount a named v1 hierarchy, make /prefix (mode 777) with oldroot and an
# empty sibling (mode 750) in it, and put $PID in /prefix/oldroot
# (zdtm cgroup02's layout).
named_prefix() {
	CG_NAMED=$BATS_TEST_TMPDIR/cg-named CG_NAMED_NAME=stasis-root-$$
	CG_NAMED_DIRS=(newroot/oldroot newroot/empty newroot prefix/oldroot prefix/empty prefix)
	mkdir -p "$CG_NAMED"
	mount -t cgroup -o "none,name=$CG_NAMED_NAME" none "$CG_NAMED"
	mkdir -p "$CG_NAMED/prefix/oldroot" "$CG_NAMED/prefix/empty"
	chmod 0777 "$CG_NAMED/prefix"
	chmod 0750 "$CG_NAMED/prefix/empty"
	echo "$PID" >"$CG_NAMED/prefix/oldroot/cgroup.procs"
}

# The restored $PID is in cgroup $1 of the named hierarchy, and $1's
# parent and its empty sibling were made again with their modes.
in_named() { # PATH
	grep -qE "^[0-9]+:name=$CG_NAMED_NAME:$1\$" "/proc/$PID/cgroup" ||
		die_with_logs "not in $1: $(cat "/proc/$PID/cgroup")" || return 1
	[ "$(stat -c %a "$CG_NAMED${1%/*}")" = 777 ] || die_with_logs "${1%/*}: mode $(stat -c %a "$CG_NAMED${1%/*}")" || return 1
	[ "$(stat -c %a "$CG_NAMED${1%/*}/empty")" = 750 ] || die_with_logs "${1%/*}/empty not made again" || return 1
}

@test "dump --cgroup-root NAME:/prefix records the cgroups above the tree's: removed, they are made again with their modes (zdtm cgroup02)" {
	start_prog sleeper nanosleep
	named_prefix
	dump_and_kill --cgroup-root "name=$CG_NAMED_NAME:/prefix"
	rmdir "$CG_NAMED/prefix/oldroot" "$CG_NAMED/prefix/empty" "$CG_NAMED/prefix"
	start_restore --manage-cgroups=soft
	wait_restored
	in_named /prefix/oldroot
	kill -KILL "$PID"
	wait_child "$RPID" 10
}

@test "restore --cgroup-root NAME:/newroot moves the dump's --cgroup-root, not the root task's cgroup" {
	start_prog sleeper nanosleep
	named_prefix
	dump_and_kill --cgroup-root "name=$CG_NAMED_NAME:/prefix"
	start_restore --manage-cgroups=soft --cgroup-root "name=$CG_NAMED_NAME:/newroot"
	wait_restored
	in_named /newroot/oldroot
	kill -KILL "$PID"
	wait_child "$RPID" 10
}

@test "dump --cgroup-root that is not above the tree's cgroups, or a hierarchy's root, is refused, the tree left running" {
	start_prog sleeper nanosleep
	named_prefix
	run stasis dump -t "$PID" -D "$IMG" --cgroup-root "name=$CG_NAMED_NAME:/prefix/empty"
	[ "$status" -ne 0 ]
	[[ "$output" == *"--cgroup-root /prefix/empty: cgroup name=$CG_NAMED_NAME:/prefix/oldroot of the tree is not at or below it"* ]]
	assert_running_untraced "$PID"
	run stasis dump -t "$PID" -D "$IMG" --cgroup-root "name=$CG_NAMED_NAME:/"
	[ "$status" -ne 0 ]
	[[ "$output" == *"--cgroup-root /: a hierarchy's root is never recorded"* ]]
	assert_running_untraced "$PID"
	run stasis dump -t "$PID" -D "$IMG" --cgroup-root "name=$CG_NAMED_NAME:prefix"
	[ "$status" -ne 0 ]
	[[ "$output" == *"--cgroup-root name=$CG_NAMED_NAME:prefix: expected [CONTROLLER:]/PATH"* ]]
	assert_running_untraced "$PID"
}

@test "restore --manage-cgroups=ignore makes no cgroup directory" {
	start_cgroups
	dump_and_kill
	rmdir "$CG_V1/lead/empty/nested" "$CG_V2/empty/nested"
	start_restore --manage-cgroups=ignore
	wait_restored
	[ ! -e "$CG_V1/lead/empty/nested" ]
	[ ! -e "$CG_V2/empty/nested" ]
	kill -KILL "$PID"
	wait_child "$RPID" 10
}

@test "an unknown --manage-cgroups mode is refused by name, the tree left running" {
	start_prog sleeper nanosleep
	run stasis dump -t "$PID" -D "$IMG" --manage-cgroups=fuzzy
	[ "$status" -ne 0 ]
	[[ "$output" == *"--manage-cgroups=fuzzy: expected none, props, soft, full, strict or ignore"* ]]
	alive "$PID"
}

@test "dump -R of a task with seccomp filters and dropped credentials leaves it working" {
	start_prog creds
	run_dump -R
	assert_running_untraced "$PID"
	go_and_check_original
}

@test "checker self-test: the attribute programs notice damage (STASIS_SABOTAGE)" {
	local what
	for what in creds:creds creds:seccomp timers:itimer timers:posix sched:sched sched:affinity procattrs:oom procattrs:loginuid; do
		# a READY left in the log by the previous round would fool start_prog
		rm -f "$BATS_TEST_TMPDIR/${what%%:*}.log"
		export STASIS_SABOTAGE=${what#*:}
		start_prog "${what%%:*}"
		unset STASIS_SABOTAGE
		touch "$GOFILE"
		wait_child "$PID" 30 || die_with_logs "$what: no verdict" || return 1
		grep -q '^FAIL' "$LOG" || die_with_logs "$what: sabotage not noticed" || return 1
	done
}
