#!/usr/bin/env bats
# Operating stasis: action scripts, configuration files, logs (-v, -o, -W,
# --log-pid), statistics (--display-stats, stats-dump, stats-restore) and
# the progress line. Round trips use the real programs and the C test
# programs (see helpers.bash); the configuration tests use fake stages that
# log their arguments, so they check what the front-end passes on.

load helpers

bats_require_minimum_version 1.5.0

setup() {
	stasis_test_setup
	SCRIPT=$BATS_TEST_TMPDIR/action.sh
	ACTIONS=$BATS_TEST_TMPDIR/actions.log
	: >"$ACTIONS"
	# One line per stage: the stage, the variables criu(8) sets, and the
	# state of the tree's root at that moment (ptrace-stopped and traced
	# while a stage program holds it). FAIL_AT makes one stage fail.
	cat >"$SCRIPT" <<EOF
#!/bin/sh
pid=\$CRTOOLS_INIT_PID state=gone tracer=-
if [ -n "\$pid" ] && [ -r /proc/\$pid/status ]; then
	state=\$(awk '/^State:/ { print \$2 }' /proc/\$pid/status)
	tracer=\$(awk '/^TracerPid:/ { print \$2 }' /proc/\$pid/status)
	[ "\$tracer" = 0 ] && tracer=untraced || tracer=traced
fi
echo "\$CRTOOLS_SCRIPT_ACTION \$pid \$CRTOOLS_IMAGE_DIR \$state \$tracer" >>"$ACTIONS"
[ "\$CRTOOLS_SCRIPT_ACTION" != "\${FAIL_AT:-}" ]
EOF
	chmod +x "$SCRIPT"
	unset FAIL_AT
}

# The stage names of the actions log, space-separated.
stages() {
	awk '{ printf "%s%s", sep, $1; sep = " " }' "$ACTIONS"
}

# Every line of the actions log: right PID and images directory, and the
# state of the root for the stage.
check_action_lines() { # PID
	local a pid dir state tracer img
	img=$(realpath "$IMG")
	while read -r a pid dir state tracer; do
		echo "  $a $pid $dir $state $tracer"
		[ "$pid" = "$1" ] || { echo "FAILED: $a: CRTOOLS_INIT_PID=$pid, not $1"; return 1; }
		[ "$dir" = "$img" ] || { echo "FAILED: $a: CRTOOLS_IMAGE_DIR=$dir, not $img"; return 1; }
		case $a in
		pre-dump | post-resume)
			[[ $state == [RS] && $tracer == untraced ]] ;;
		pre-restore)
			[[ $state == gone ]] ;;
		network-unlock)
			# dump -R: the tree is still held, and so in a restore
			[[ $state == t && $tracer == traced ]] ;;
		*)
			[[ $state == t && $tracer == traced ]] ;;
		esac || { echo "FAILED: $a: the root is '$state $tracer'"; return 1; }
	done <"$ACTIONS"
}

@test "action scripts: every stage of a dump and a restore, in order, with criu's variables" {
	start_prog heap
	dump_and_kill --action-script "$SCRIPT"
	[ "$(stages)" = "pre-dump network-lock post-dump" ] || {
		cat "$ACTIONS"
		die_with_logs "dump stages: $(stages)"
	}
	check_action_lines "$PID"
	: >"$ACTIONS"
	restore_and_check --action-script "$SCRIPT"
	[ "$(stages)" = "pre-restore setup-namespaces post-restore network-unlock pre-resume post-resume" ] || {
		cat "$ACTIONS"
		die_with_logs "restore stages: $(stages)"
	}
	check_action_lines "$PID"
}

@test "action scripts: dump -R unlocks the network before the tree runs on; scripts add up in order" {
	local second=$BATS_TEST_TMPDIR/second.sh
	printf '#!/bin/sh\necho "second $CRTOOLS_SCRIPT_ACTION" >>"%s"\n' "$ACTIONS" >"$second"
	chmod +x "$second"
	start_prog heap
	# The background snapshot lets the tree run before the pages are
	# stored, so the network is unlocked before post-dump.
	run_dump -R --action-script "$SCRIPT" --action-script "$second"
	assert_running_untraced "$PID"
	cat "$ACTIONS"
	[ "$(stages)" = "pre-dump second network-lock second network-unlock second post-dump second" ]
	grep -q "^network-unlock $PID .* traced$" "$ACTIONS"
	grep -q "^post-dump $PID .* untraced$" "$ACTIONS"

	# Without it, criu's order: the tree runs on after post-dump.
	: >"$ACTIONS"
	run_dump -R --no-background-snapshot --action-script "$SCRIPT" --action-script "$second"
	assert_running_untraced "$PID"
	cat "$ACTIONS"
	[ "$(stages)" = "pre-dump second network-lock second post-dump second network-unlock second" ]
	grep -q "^post-dump $PID .* traced$" "$ACTIONS"
	go_and_check_original
}

@test "action scripts: a failing pre-dump script aborts the dump; the process runs on untouched" {
	local before after rc=0
	start_prog heap
	before=$(proc_snapshot "$PID")
	mkdir -p "$IMG"
	FAIL_AT=pre-dump stasis dump -t "$PID" -D "$IMG" -o dump.log --action-script "$SCRIPT" \
		>"$BATS_TEST_TMPDIR/dump.out" 2>&1 || rc=$?
	cat "$BATS_TEST_TMPDIR/dump.out"
	[ "$rc" -ne 0 ]
	grep -q "pre-dump action script" "$BATS_TEST_TMPDIR/dump.out"
	[ "$(stages)" = pre-dump ]
	assert_running_untraced "$PID"
	after=$(proc_snapshot "$PID")
	[ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after"); return 1; }
	[ ! -e "$IMG/inventory.img" ]
	go_and_check_original
}

@test "action scripts: a failing post-dump script keeps the checkpoint and resumes the tree" {
	local rc=0
	start_prog heap
	mkdir -p "$IMG"
	FAIL_AT=post-dump stasis dump -t "$PID" -D "$IMG" -o dump.log --action-script "$SCRIPT" \
		>"$BATS_TEST_TMPDIR/dump.out" 2>&1 || rc=$?
	cat "$BATS_TEST_TMPDIR/dump.out"
	[ "$rc" -ne 0 ]
	[ "$(stages)" = "pre-dump network-lock post-dump network-unlock" ]
	[ -e "$IMG/inventory.img" ]
	assert_running_untraced "$PID"
	go_and_check_original
}

@test "action scripts: failing pre-restore and post-restore scripts abort the restore" {
	local rc=0
	start_prog heap
	dump_and_kill
	FAIL_AT=pre-restore stasis restore -D "$IMG" -d --action-script "$SCRIPT" \
		>"$BATS_TEST_TMPDIR/r1.out" 2>&1 || rc=$?
	cat "$BATS_TEST_TMPDIR/r1.out"
	[ "$rc" -ne 0 ]
	[ "$(stages)" = pre-restore ]
	run ! alive "$PID"

	: >"$ACTIONS"
	rc=0
	FAIL_AT=post-restore stasis restore -D "$IMG" -d --action-script "$SCRIPT" \
		>"$BATS_TEST_TMPDIR/r2.out" 2>&1 || rc=$?
	cat "$BATS_TEST_TMPDIR/r2.out"
	[ "$rc" -ne 0 ]
	[ "$(stages)" = "pre-restore setup-namespaces post-restore" ]
	wait_gone "$PID" 10
	# nothing was left behind: the checkpoint restores
	restore_and_check
}

# ---------------------------------------------------------------- config

# A copy of stasis beside fake stages that log their arguments (it runs its
# stages from its own directory first).
make_fakes() {
	fake=$BATS_TEST_TMPDIR/fake
	mkdir -p "$fake/bin" "$fake/img" "$fake/home/.stasis"
	cp "$(command -v stasis)" "$fake/bin/stasis"
	export FAKE_LOG=$fake/log
	: >"$FAKE_LOG"
	cat >"$fake/bin/stasis-freeze" <<'EOF'
#!/bin/bash
while [ $# -gt 0 ]; do
	case $1 in
	-v* | -o | -t) [ "$1" = -o ] || [ "$1" = -t ] && shift; shift ;;
	*) break ;;
	esac
done
exec "$@"
EOF
	cat >"$fake/bin/stasis-collect" <<'EOF'
#!/bin/bash
echo "collect $*" >>"$FAKE_LOG"
ack=
while [ $# -gt 0 ]; do
	case $1 in
	--ack-fd) ack=$2; shift 2 ;;
	*) shift ;;
	esac
done
echo STREAM
exec >&-
read -r line <&"$ack"
EOF
	cat >"$fake/bin/stasis-serialize" <<'EOF'
#!/bin/bash
ack=
while [ $# -gt 0 ]; do
	case $1 in
	--ack-fd) ack=$2; shift 2 ;;
	*) shift ;;
	esac
done
cat >/dev/null
echo OK >&"$ack"
EOF
	chmod +x "$fake/bin"/stasis-*
	FS=$fake/bin/stasis
	export HOME=$fake/home
	unset STASIS_CONFIG_FILE
}

# The arguments the fake collect got in its last run.
collect_args() {
	tail -n 1 "$FAKE_LOG"
}

fake_dump() { # [ARGS...]
	run timeout 20 "$FS" dump -t 1 -D "$fake/img" "$@"
	echo "$output"
	[ "$status" -eq 0 ]
	collect_args
}

@test "config: default.conf, STASIS_CONFIG_FILE, --config and the command line, in criu's order" {
	make_fakes
	printf '# home\nleave-running\nverbosity 3\nlog-file home.log\n' >"$HOME/.stasis/default.conf"
	printf 'log-file env.log   # a comment\n' >"$fake/env.conf"
	printf 'verbosity 1\n' >"$fake/cli.conf"

	fake_dump
	[[ "$(collect_args)" == "collect --background-snapshot --leave-running --reader-copies --ack-fd "*" -v3 -o $fake/img/home.log" ]]

	# STASIS_CONFIG_FILE after the default files
	STASIS_CONFIG_FILE=$fake/env.conf fake_dump
	[[ "$(collect_args)" == "collect --background-snapshot --leave-running --reader-copies --ack-fd "*" -v3 -o $fake/img/env.log" ]]

	# --config: the default files are not read; STASIS_CONFIG_FILE still is
	STASIS_CONFIG_FILE=$fake/env.conf fake_dump --config "$fake/cli.conf"
	[[ "$(collect_args)" == "collect --reader-copies --ack-fd "*" -v1 -o $fake/img/env.log" ]]

	# the command line last, negating a boolean of a file
	STASIS_CONFIG_FILE=$fake/env.conf fake_dump --no-leave-running -o cli.log
	[[ "$(collect_args)" == "collect --reader-copies --ack-fd "*" -v3 -o $fake/img/cli.log" ]]

	# --no-default-config: only STASIS_CONFIG_FILE
	STASIS_CONFIG_FILE=$fake/env.conf fake_dump --no-default-config
	[[ "$(collect_args)" == "collect --reader-copies --ack-fd "*" -o $fake/img/env.log" ]]
}

@test "config: criu's syntax: quotes, escaped quotes, comments, no- prefixes, repeatable options" {
	make_fakes
	cat >"$HOME/.stasis/default.conf" <<'EOF'
	# a comment line, indented
shell-job   # a comment after an option
no-shell-job
leave-stopped
log-file "my \"quoted\" log"
action-script /bin/true
restore-detached # another command's option: ignored in a file
EOF
	fake_dump --action-script "$SCRIPT"
	[ "$(collect_args | sed 's/--ack-fd [0-9]*/--ack-fd N/')" = \
		"collect --leave-stopped --reader-copies --action-script /bin/true --action-script $SCRIPT --ack-fd N -o $fake/img/my \"quoted\" log" ]
}

@test "config: errors name the file and the line, and nothing runs" {
	make_fakes
	printf 'shell-job\n\nbogus-option\n' >"$HOME/.stasis/default.conf"
	run "$FS" dump -t 1 -D "$fake/img"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"'--bogus-option'"* ]]
	[[ "$output" == *"in configuration file $HOME/.stasis/default.conf, line 3"* ]]
	[ ! -s "$FAKE_LOG" ]

	printf 'log-file "unterminated\n' >"$fake/bad.conf"
	run "$FS" dump -t 1 -D "$fake/img" --config "$fake/bad.conf"
	[ "$status" -eq 1 ]
	[[ "$output" == *"$fake/bad.conf:1: a quoted argument has no closing quote"* ]]

	printf 'dump\n' >"$fake/bad.conf"
	run "$FS" dump -t 1 -D "$fake/img" --config "$fake/bad.conf"
	[ "$status" -eq 1 ]
	[[ "$output" == *"line 1"* ]]

	# a stray word before more options: its own line, not one of theirs
	printf 'leave-running stray\nshell-job\nlog-pid\n' >"$fake/bad.conf"
	run "$FS" dump -t 1 -D "$fake/img" --config "$fake/bad.conf"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"$fake/bad.conf:1: 'stray' is not an option"* ]]
	[[ "$output" == *"in configuration file $fake/bad.conf, line 1"* ]]
	[ ! -s "$FAKE_LOG" ]

	rm "$HOME/.stasis/default.conf"
	STASIS_CONFIG_FILE=$fake/missing.conf run "$FS" dump -t 1 -D "$fake/img"
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot read configuration file $fake/missing.conf"* ]]
	[ ! -s "$FAKE_LOG" ]

	# --help is shown whatever the files say
	run "$FS" --help
	[ "$status" -eq 0 ]
}

# ---------------------------------------------------------------- stats, logs

# One field of the only record of an image file, with stasis-serialize show.
stat_field() { # IMAGE_FILE FIELD
	stasis serialize show "$1" | python3 -c '
import json, sys
print(json.load(sys.stdin)["records"][0][sys.argv[1]])' "$2"
}

@test "stats: stats-dump and stats-restore decode with stasis-serialize show; --display-stats prints them" {
	local written restored
	start_prog heap
	dump_and_kill --display-stats
	[ -f "$IMG/stats-dump.img" ]
	written=$(stat_field "$IMG/stats-dump.img" pages_written)
	echo "pages written: $written"
	[ "$written" -gt 16000 ] # the 64 MiB of heap's malloc
	[ "$(stat_field "$IMG/stats-dump.img" pages_scanned)" -ge "$written" ]
	[ "$(stat_field "$IMG/stats-dump.img" frozen_time)" -gt 0 ]
	[ "$(stat_field "$IMG/stats-dump.img" memwrite_time)" -gt 0 ]
	[ "$(stat_field "$IMG/stats-dump.img" tasks)" -eq 1 ]
	grep -qx "Displaying dump stats:" "$BATS_TEST_TMPDIR/dump.out"
	grep -qE "^Frozen time: [0-9]+ us$" "$BATS_TEST_TMPDIR/dump.out"
	grep -qE "^Freezing time: [0-9]+ us$" "$BATS_TEST_TMPDIR/dump.out"
	grep -qE "^Memory dump time: [0-9]+ us$" "$BATS_TEST_TMPDIR/dump.out"
	grep -qE "^Memory write time: [0-9]+ us$" "$BATS_TEST_TMPDIR/dump.out"
	grep -qE "^Memory pages scanned: [0-9]+ " "$BATS_TEST_TMPDIR/dump.out"
	grep -qE "^Memory pages skipped: [0-9]+ " "$BATS_TEST_TMPDIR/dump.out"
	grep -qx "Memory pages written: $written (0x$(printf %x "$written"))" "$BATS_TEST_TMPDIR/dump.out"

	restore_and_check --display-stats
	[ -f "$IMG/stats-restore.img" ]
	restored=$(stat_field "$IMG/stats-restore.img" pages_restored)
	# one task: every page written is restored
	[ "$restored" -eq "$written" ]
	[ "$(stat_field "$IMG/stats-restore.img" restore_time)" -gt 0 ]
	grep -qx "Displaying restore stats:" "$BATS_TEST_TMPDIR/restore.out"
	grep -qx "Pages restored: $restored (0x$(printf %x "$restored"))" "$BATS_TEST_TMPDIR/restore.out"
	grep -qE "^Restore time: [0-9]+ us$" "$BATS_TEST_TMPDIR/restore.out"
	# the stats images go with the checkpoint and are shown with it
	stasis serialize show -D "$IMG" | grep -q '"image": "stats-dump"'
}

@test "stats: without --display-stats nothing is printed, the images are still written" {
	start_prog heap
	dump_and_kill
	[ -f "$IMG/stats-dump.img" ]
	run ! grep -q "Displaying" "$BATS_TEST_TMPDIR/dump.out"
	restore_and_check
	[ -f "$IMG/stats-restore.img" ]
	run ! grep -q "Displaying" "$BATS_TEST_TMPDIR/restore.out"
}

@test "logs: -W holds the log, the pidfile and stats-restore; the images stay in -D" {
	local w=$BATS_TEST_TMPDIR/work
	start_prog heap
	dump_and_kill -W "$w" --pidfile dump.pid
	[ -s "$w/dump.log" ]
	[ "$(cat "$w/dump.pid")" = "$PID" ]
	[ ! -e "$IMG/dump.log" ] && [ ! -e "$IMG/dump.pid" ]
	[ -f "$IMG/inventory.img" ] && [ -f "$IMG/stats-dump.img" ]
	restore_and_check -W "$w/r"
	[ -s "$w/r/restore.log" ]
	[ -f "$w/r/stats-restore.img" ]
	[ ! -e "$IMG/stats-restore.img" ]
}

@test "logs: --log-pid gives every program its own log file, FILE.PID" {
	local f n=0 all
	start_prog heap
	dump_and_kill --log-pid
	[ ! -e "$IMG/dump.log" ]
	for f in "$IMG"/dump.log.*; do
		[[ ${f##*.} =~ ^[0-9]+$ ]]
		n=$((n + 1))
	done
	# stasis, stasis-freeze (then stasis-collect, same PID), stasis-serialize
	[ "$n" -eq 3 ]
	all=$(cat "$IMG"/dump.log.*)
	# each program's lines are in one file only, the one of its PID
	for p in stasis stasis-collect stasis-serialize; do
		[ "$(grep -l "^([ 0-9.]*) $p: " "$IMG"/dump.log.* | wc -l)" -eq 1 ] || {
			echo "$p: not in exactly one log"
			ls -l "$IMG"
			return 1
		}
	done
	grep -l "^([ 0-9.]*) stasis-freeze: " "$IMG"/dump.log.* | xargs grep -q "stasis-collect: "
	[[ "$all" == *"stasis: "* ]]
	restore_and_check --log-pid
}

@test "logs: -v0 to -v4 in every program: -v0 silent, -v1 errors only, -v3 information with timestamps" {
	local p
	run stasis -v0 dump -t 999999999 -D "$BATS_TEST_TMPDIR/img"
	[ "$status" -ne 0 ]
	[ -z "$output" ]
	run stasis -v1 dump -t 999999999 -D "$BATS_TEST_TMPDIR/img"
	[ "$status" -ne 0 ]
	[[ "$output" == *"stasis-freeze: error: cannot freeze task 999999999"* ]]
	[ "$(echo "$output" | grep -cv ': error: ')" -eq 0 ]
	run stasis -v3 dump -t 999999999 -D "$BATS_TEST_TMPDIR/img"
	echo "$output"
	echo "$output" | grep -qE '^\( *[0-9]+\.[0-9]{6}\) stasis: dumping the tree of 999999999'
	# the programs themselves, each on an error of its own
	while read -r p args; do
		run $p -v0 $args </dev/null
		echo "$p -v0 $args: $status: $output"
		[ "$status" -ne 0 ] && [ -z "$output" ]
		run $p -v1 $args </dev/null
		echo "$p -v1 $args: $status: $output"
		[ "$status" -ne 0 ]
		[[ "$output" == "$p: error: "* ]]
	done <<-EOF
		stasis-freeze -t 999999999 true
		stasis-collect
		stasis-serialize pack -D /nonexistent
		stasis-inject
		stasis-seal --open
	EOF
}

# ---------------------------------------------------------------- progress

@test "progress: a line with bytes, rate and time left on a terminal, nothing otherwise" {
	command -v script >/dev/null || { echo "FAILED: script (util-linux) is not installed"; return 1; }
	local out=$BATS_TEST_TMPDIR/tty.out
	PROG=$(readlink -f "$TESTPROGS/bigmem")
	LOG=$BATS_TEST_TMPDIR/bigmem.log
	(
		close_extra_fds
		# large enough that the dump and the restore outlast the first
		# redraw (200 ms) on a fast machine
		exec setsid "$PROG" 768 "$GOFILE" </dev/null >"$LOG" 2>&1
	) &
	PID=$!
	own_pid "$PID" "$PROG"
	wait_ready "$LOG" "$PID" 30
	rm -rf "$IMG"
	# script(1) gives stasis a terminal
	script -qec "stasis dump -t $PID -D $IMG" /dev/null >"$out" 2>&1 </dev/null
	wait_child "$PID" 10
	cat -v "$out" | tail -c 600
	grep -aqE 'stasis: dump: [0-9.]+ (KiB|MiB) of ~[0-9.]+ MiB, [0-9.]+ [KMG]iB/s, [0-9]+ s left' "$out"
	# rubbed out at the end
	[ "$(tail -c 4 "$out" | od -An -c | tr -d ' ')" = '\r033[K' ]

	script -qec "stasis restore -D $IMG -d" /dev/null >"$out" 2>&1 </dev/null
	wait_restored
	grep -aqE 'stasis: restore: [0-9.]+ (KiB|MiB) of [0-9.]+ MiB, ' "$out"
	touch "$GOFILE"
	wait_gone "$PID" 30
	check_pass_log

	# no terminal: no line, and the same pipeline as always
	start_prog heap
	dump_and_kill
	run ! grep -q 'MiB/s' "$BATS_TEST_TMPDIR/dump.out"
	restore_and_check
	run ! grep -q 'MiB/s' "$BATS_TEST_TMPDIR/restore.out"
}
