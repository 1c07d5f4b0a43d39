#!/usr/bin/env bats
# The front-end: command dispatch, option parsing, and the pipelines it
# builds. The pipeline tests run a copy of stasis next to fake stages
# (shell scripts that log their arguments), so they check the wiring --
# arguments, the data pipe, the acknowledgement channel, exit statuses --
# without freezing anything.

setup() {
	STASIS=$(command -v stasis) || skip "stasis is not in PATH"
	pid=
}

teardown() {
	if [ -n "$pid" ]; then
		{
			kill -CONT "$pid"
			kill -KILL "$pid"
			wait "$pid"
		} 2>/dev/null || true
	fi
}

# A copy of stasis in $fake/bin beside fake stasis-* programs: stasis looks
# for its stages next to itself first.
make_fakes() {
	fake=$BATS_TEST_TMPDIR/fake
	mkdir -p "$fake/bin" "$fake/img"
	cp "$STASIS" "$fake/bin/stasis"
	export FAKE_LOG=$fake/log
	: >"$FAKE_LOG"

	cat >"$fake/bin/stasis-freeze" <<'EOF'
#!/bin/bash
echo "freeze $*" >>"$FAKE_LOG"
while [ $# -gt 0 ]; do
	case $1 in
	-v*) shift ;;
	-o | -t) shift 2 ;;
	*) break ;;
	esac
done
[ -n "${FAKE_FREEZE_STATUS:-}" ] && exit "$FAKE_FREEZE_STATUS"
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
[ -n "${FAKE_COLLECT_SIGNAL:-}" ] && kill -"$FAKE_COLLECT_SIGNAL" $$
if [ -n "${FAKE_COLLECT_ERROR:-}" ]; then
	echo "stasis-collect: error: $FAKE_COLLECT_ERROR" >&2
	exit 1
fi
echo "STREAM-DATA"
exec >&-
if read -r line <&"$ack" && [ "$line" = OK ]; then
	echo "collect: acknowledged" >>"$FAKE_LOG"
	exit 0
fi
echo "collect: no acknowledgement" >>"$FAKE_LOG"
[ -n "${FAKE_UNPACK_ERROR:-}" ] && echo "stasis-collect: error: no acknowledgement from the sink" >&2
exit 1
EOF
	cat >"$fake/bin/stasis-serialize" <<'EOF'
#!/bin/bash
echo "serialize $*" >>"$FAKE_LOG"
cmd=$1
shift
dir= ack=
while [ $# -gt 0 ]; do
	case $1 in
	-D) dir=$2; shift 2 ;;
	--ack-fd) ack=$2; shift 2 ;;
	--version) echo "stasis-serialize (fake)"; exit 0 ;;
	*) shift ;;
	esac
done
case $cmd in
unpack)
	cat >"$dir/stream"
	[ -n "${FAKE_UNPACK_STATUS:-}" ] && exit "$FAKE_UNPACK_STATUS"
	if [ -n "${FAKE_UNPACK_ERROR:-}" ]; then
		[ -n "${FAKE_UNPACK_WARNING:-}" ] && echo "stasis-serialize: warning: $FAKE_UNPACK_WARNING" >&2
		echo "stasis-serialize: error: $FAKE_UNPACK_ERROR" >&2
		exit 1
	fi
	echo OK >&"$ack"
	;;
pack)
	cat "$dir/stream"
	;;
esac
EOF
	cat >"$fake/bin/stasis-inject" <<'EOF'
#!/bin/bash
echo "inject $*" >>"$FAKE_LOG"
while [ $# -gt 0 ]; do
	case $1 in
	--pidfile) echo 4242 >"$2"; shift 2 ;;
	*) shift ;;
	esac
done
cat >"${FAKE_LOG%/*}/injected"
exit "${FAKE_INJECT_STATUS:-0}"
EOF
	chmod +x "$fake/bin"/stasis-*
	FS=$fake/bin/stasis
}

# A process to checkpoint, in its own session, with nothing but /dev/null
# open (bats keeps descriptors of its own open, fd 3 among them).
start_sleep() {
	(
		for fd in /proc/$BASHPID/fd/*; do
			fd=${fd##*/}
			[ "$fd" -gt 2 ] && eval "exec $fd>&-"
		done
		exec setsid sleep 1000 </dev/null >/dev/null 2>&1
	) &
	pid=$!
	# wait until it is sleep, not the forked shell
	for _ in $(seq 50); do
		[ "$(cat /proc/$pid/comm 2>/dev/null)" = sleep ] && return 0
		sleep 0.1
	done
	return 1
}

# The process runs, is neither stopped nor traced.
assert_untouched() {
	local state tracer
	state=$(awk '/^State:/ { print $2 }' /proc/"$1"/status)
	tracer=$(awk '/^TracerPid:/ { print $2 }' /proc/"$1"/status)
	echo "State: $state TracerPid: $tracer"
	[ "$state" = S ] || [ "$state" = R ]
	[ "$tracer" = 0 ]
}

@test "stasis --help and --version" {
	run stasis --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"stasis dump"* ]]
	[[ "$output" == *"stasis restore"* ]]
	[[ "$output" == *"--images-dir"* ]]
	run stasis -h
	[ "$status" -eq 0 ]
	run stasis --version
	[ "$status" -eq 0 ]
	[[ "$output" == *stasis*[0-9].[0-9]* ]]
	run stasis -V
	[ "$status" -eq 0 ]
}

@test "stasis dump --help and stasis restore --help" {
	run stasis dump --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"--tree"* ]]
	[[ "$output" == *"--leave-running"* ]]
	[[ "$output" != *"--restore-detached"* ]]
	run stasis restore --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"--restore-detached"* ]]
	[[ "$output" != *"--leave-running"* ]]
}

@test "stasis serialize --version dispatches to stasis-serialize" {
	command -v stasis-serialize || { echo "FAILED: stasis-serialize is not built"; return 1; }
	run stasis serialize --version
	[ "$status" -eq 0 ]
	[[ "$output" == *stasis-serialize* ]]
}

@test "stasis TOOL passes its arguments on" {
	make_fakes
	run "$FS" freeze -t 1 echo "a b"
	[ "$status" -eq 0 ]
	grep -qx 'freeze -t 1 echo a b' "$FAKE_LOG"
}

@test "an unknown command prints the usage and exits 1" {
	run stasis frobnicate
	[ "$status" -eq 1 ]
	[[ "$output" == *"unknown command"* ]]
	[[ "$output" == *Usage:* ]]
	run stasis
	[ "$status" -eq 1 ]
	[[ "$output" == *Usage:* ]]
}

@test "criu options that are not implemented are refused by name" {
	run stasis dump -t 1 -D "$BATS_TEST_TMPDIR" --evasive-devices
	[ "$status" -eq 1 ]
	[[ "$output" == *"option --evasive-devices is not supported yet"* ]]
	run stasis restore --no-evasive-devices
	[ "$status" -eq 1 ]
	[[ "$output" == *"option --no-evasive-devices is not supported yet"* ]]
	run stasis dump -t 1 -L /tmp
	[ "$status" -eq 1 ]
	[[ "$output" == *"--libdir) is not supported yet"* ]]
	run stasis exec -t 1
	[ "$status" -eq 1 ]
	[[ "$output" == *"command exec is not supported yet"* ]]
}

@test "bad command lines are refused" {
	run stasis dump -D "$BATS_TEST_TMPDIR"
	[ "$status" -eq 1 ]
	[[ "$output" == *"-t PID"* ]]
	run stasis restore -t 1
	[ "$status" -eq 1 ]
	[[ "$output" == *"--tree does not apply to restore"* ]]
	run stasis dump -R -d -t 1
	[ "$status" -eq 1 ]
	[[ "$output" == *"--restore-detached does not apply to dump"* ]]
	run stasis dump -t nope
	[ "$status" -eq 1 ]
	[[ "$output" == *"invalid -t 'nope': expected a PID"* ]]
	run stasis dump --bogus
	[ "$status" -eq 1 ]
	run stasis dump -t 1 extra
	[ "$status" -eq 1 ]
	[[ "$output" == *"unexpected argument"* ]]
	run stasis restore -v9x
	[ "$status" -eq 1 ]
}

@test "dump into an unwritable directory fails before freezing" {
	start_sleep
	run stasis dump -t "$pid" -D /proc/unwritable
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"images directory /proc/unwritable"* ]]
	assert_untouched "$pid"

	# exists, but no file can be created in it
	run stasis dump -t "$pid" -D /proc -v4
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"cannot write to images directory /proc"* ]]
	[[ "$output" != *"starting"* ]]
	assert_untouched "$pid"

	# a file in the way
	touch "$BATS_TEST_TMPDIR/file"
	run stasis dump -t "$pid" -D "$BATS_TEST_TMPDIR/file"
	[ "$status" -ne 0 ]
	[[ "$output" == *"is not a directory"* ]]
	assert_untouched "$pid"
}

@test "dump creates a missing images directory" {
	make_fakes
	run "$FS" dump -t 1234 -D "$fake/a/b/c"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -d "$fake/a/b/c" ]
}

@test "dump builds freeze | collect | serialize unpack with an acknowledgement" {
	make_fakes
	run timeout 20 "$FS" dump -t 1234 -D "$fake/img" -v4 -o dump.log -j
	echo "$output"
	cat "$FAKE_LOG"
	[ "$status" -eq 0 ]
	log=$fake/img/dump.log
	grep -qx "freeze -v4 -o $log -t 1234 $fake/bin/stasis-collect --shell-job --reader-copies --ack-fd [0-9]* -v4 -o $log" "$FAKE_LOG"
	grep -qx "collect --shell-job --reader-copies --ack-fd [0-9]* -v4 -o $log" "$FAKE_LOG"
	grep -qx "serialize unpack -D $fake/img --ack-fd [0-9]* -v4 -o $log" "$FAKE_LOG"
	grep -qx "collect: acknowledged" "$FAKE_LOG"
	[ "$(cat "$fake/img/stream")" = STREAM-DATA ]
	# the front-end logs into the same file
	grep -q "stasis: .*dump complete" "$log"
}

@test "dump: -R and -s, the last one wins; --no- forms negate" {
	make_fakes
	run timeout 20 "$FS" dump -t 1 -D "$fake/img" -R -s
	[ "$status" -eq 0 ]
	run timeout 20 "$FS" dump -t 1 -D "$fake/img" --leave-stopped --leave-running
	[ "$status" -eq 0 ]
	run timeout 20 "$FS" dump -t 1 -D "$fake/img" -R --no-leave-running -j --no-shell-job
	[ "$status" -eq 0 ]
	cat "$FAKE_LOG"
	mapfile -t c < <(grep '^collect --' "$FAKE_LOG")
	[ "${#c[@]}" -eq 3 ]
	[[ "${c[0]}" =~ ^collect\ --leave-stopped\ --reader-copies\ --ack-fd\ [0-9]+$ ]]
	[[ "${c[1]}" =~ ^collect\ (--background-snapshot\ )?--leave-running\ --reader-copies\ --ack-fd\ [0-9]+$ ]]
	[[ "${c[2]}" =~ ^collect\ --reader-copies\ --ack-fd\ [0-9]+$ ]]
}

@test "dump gives collect --reader-copies, but not when the progress relay (which splices) reads its stream" {
	make_fakes
	# the progress line is drawn on a terminal only
	run timeout 20 script -qec "$FS dump -t 1 -D $fake/img" /dev/null
	echo "$output"
	[ "$status" -eq 0 ]
	cat "$FAKE_LOG"
	mapfile -t c < <(grep '^collect --' "$FAKE_LOG")
	[ "${#c[@]}" -eq 1 ]
	[[ "${c[0]}" =~ ^collect\ --ack-fd\ [0-9]+$ ]]
}

@test "the options of the table reach collect and inject, each once, none to the other" {
	make_fakes
	run timeout 20 "$FS" dump -t 1 -D "$fake/img" -l --link-remap --ghost-limit 2M --tcp-established \
		--network-lock skip --skip-in-flight --external unix[7] --external unix[8] --force-irmap \
		--irmap-scan-path /tmp
	echo "$output"
	[ "$status" -eq 0 ]
	grep -qx "collect --file-locks --link-remap --ghost-limit 2M --tcp-established --network-lock skip --skip-in-flight --external unix\[7\] --external unix\[8\] --force-irmap --irmap-scan-path /tmp --reader-copies --ack-fd [0-9]*" "$FAKE_LOG"
	echo STREAM-DATA >"$fake/img/stream"
	run timeout 20 "$FS" restore -D "$fake/img" -d -s -j -l --tcp-close --file-validation filesize \
		--inherit-fd 'fd[5]:socket:[9]' --link-remap --tcp-established
	echo "$output"
	[ "$status" -eq 0 ]
	grep -qx "inject --leave-stopped --shell-job --restore-detached --file-locks --file-validation filesize --tcp-close --inherit-fd fd\[5\]:socket:\[9\] --stats-file $fake/img/stats-restore.img" "$FAKE_LOG"
}

@test "dump --pidfile writes the PID of the root task" {
	make_fakes
	run timeout 20 "$FS" dump -t 1234 -D "$fake/img" --pidfile dump.pid
	[ "$status" -eq 0 ]
	[ "$(cat "$fake/img/dump.pid")" = 1234 ]
}

@test "dump fails when the sink fails, and collect gets no acknowledgement" {
	make_fakes
	FAKE_UNPACK_STATUS=2 run timeout 20 "$FS" dump -t 1 -D "$fake/img" --pidfile p
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"stasis-serialize exited with status 2"* ]]
	[[ "$output" == *"dump failed"* ]]
	grep -qx "collect: no acknowledgement" "$FAKE_LOG"
	[ ! -e "$fake/img/p" ]
}

@test "dump fails when freeze fails" {
	make_fakes
	FAKE_FREEZE_STATUS=3 run timeout 20 "$FS" dump -t 1 -D "$fake/img"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"stasis-freeze exited with status 3"* ]]
}

@test "a stage killed by a signal is reported by name" {
	make_fakes
	FAKE_COLLECT_SIGNAL=KILL run timeout 20 "$FS" dump -t 1 -D "$fake/img"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"stasis-collect killed by signal 9"* ]]
}

@test "a failed pipeline says its first cause in one line: collect failed, the sink saw the stream end" {
	make_fakes
	FAKE_COLLECT_ERROR="the first cause" FAKE_UNPACK_ERROR="truncated stream" \
		run timeout 20 "$FS" dump -t 1 -D "$fake/img"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	[ "${lines[0]}" = "stasis-collect: error: the first cause" ]
}

@test "a failed pipeline says its first cause in one line: the sink failed, collect got no acknowledgement" {
	make_fakes
	FAKE_UNPACK_WARNING="a warning goes through" FAKE_UNPACK_ERROR="no space left on device" \
		run timeout 20 "$FS" dump -t 1 -D "$fake/img"
	echo "$output"
	[ "$status" -eq 1 ]
	# warnings pass; of the errors, only the first
	[ "${#lines[@]}" -eq 2 ]
	[ "${lines[0]}" = "stasis-serialize: warning: a warning goes through" ]
	[ "${lines[1]}" = "stasis-serialize: error: no space left on device" ]
	grep -qx "collect: no acknowledgement" "$FAKE_LOG"
}

@test "a failed pipeline says its first cause in one line: a killed stage, not what the others said of it" {
	make_fakes
	FAKE_COLLECT_SIGNAL=KILL FAKE_UNPACK_ERROR="truncated stream" run timeout 20 "$FS" dump -t 1 -D "$fake/img"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	[ "${lines[0]}" = "stasis: error: dump failed: stasis-collect killed by signal 9" ]
	# -v4 shows every error as it comes, and the cause last
	FAKE_COLLECT_SIGNAL=KILL FAKE_UNPACK_ERROR="truncated stream" run timeout 20 "$FS" dump -t 1 -D "$fake/img" -v4
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"stasis-serialize: error: truncated stream"* ]]
	[[ "${lines[-1]}" == *"stasis: error: dump failed: stasis-collect killed by signal 9" ]]
}

@test "restore builds serialize pack | inject and exits with the root's status" {
	make_fakes
	echo STREAM-DATA >"$fake/img/stream"
	FAKE_INJECT_STATUS=7 run timeout 20 "$FS" restore -D "$fake/img" -s -j --pidfile r.pid -v3 -o r.log
	echo "$output"
	cat "$FAKE_LOG"
	[ "$status" -eq 7 ]
	log=$fake/img/r.log
	grep -qx "serialize pack -D $fake/img --reader-copies -v3 -o $log" "$FAKE_LOG"
	grep -qx "inject --leave-stopped --shell-job --pidfile $fake/img/r.pid --stats-file $fake/img/stats-restore.img -v3 -o $log" "$FAKE_LOG"
	[ "$(cat "$fake/injected")" = STREAM-DATA ]
	[ "$(cat "$fake/img/r.pid")" = 4242 ]
	[[ "$output" != *"exited with status"* ]]
}

@test "restore -d exits 0 once inject succeeded, else with its status" {
	make_fakes
	echo STREAM-DATA >"$fake/img/stream"
	run timeout 20 "$FS" restore -D "$fake/img" -d --pidfile /tmp/stasis-fe-$$.pid
	[ "$status" -eq 0 ]
	grep -qx "inject --restore-detached --pidfile /tmp/stasis-fe-$$.pid --stats-file $fake/img/stats-restore.img" "$FAKE_LOG"
	rm -f /tmp/stasis-fe-$$.pid
	FAKE_INJECT_STATUS=5 run timeout 20 "$FS" restore --images-dir "$fake/img" --restore-detached
	[ "$status" -eq 5 ]
	[[ "$output" == *"stasis-inject exited with status 5"* ]]
}

@test "restore from a missing directory fails clearly" {
	run stasis restore -D "$BATS_TEST_TMPDIR/none"
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot open images directory"* ]]
}

@test "options may come before the command; --verbosity takes N" {
	make_fakes
	run timeout 20 "$FS" -v2 --verbosity 4 dump --tree 1 --images-dir "$fake/img"
	echo "$output"
	[ "$status" -eq 0 ]
	grep -q '^serialize unpack .* -v4$' "$FAKE_LOG"
	run timeout 20 "$FS" dump -t 1 -D "$fake/img" -vv
	grep '^serialize' "$FAKE_LOG" | tail -n 1 | grep -q -- ' -v4$'
}

@test "dump and restore a process with the real programs" {
	for p in stasis-freeze stasis-collect stasis-serialize stasis-inject; do
		command -v $p || { echo "FAILED: $p is not built"; return 1; }
	done
	start_sleep
	img=$BATS_TEST_TMPDIR/img
	run timeout 60 stasis dump -t "$pid" -D "$img" -o dump.log
	echo "$output"
	[ "$status" -eq 0 ]
	[ -e "$img/dump.log" ]
	# killed after the dump: reap it so that its PID is free again
	wait "$pid" 2>/dev/null || true
	[ ! -e /proc/"$pid" ]

	run timeout 60 stasis restore -D "$img" -d --pidfile restore.pid -o restore.log
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(cat "$img/restore.pid")" = "$pid" ]
	[ "$(cat /proc/"$pid"/comm)" = sleep ]
	assert_untouched "$pid"
}
