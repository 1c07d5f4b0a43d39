#!/usr/bin/env bats
# Round trips of real programs: an interpreter appending a counter to a file
# every ~0.1 s is dumped (and killed), then restored; the counter must carry
# on from exactly where it stopped: the file holds 0, 1, 2, ... with no gap
# and no repeat, before and after the checkpoint.

load helpers

setup() {
	stasis_test_setup
	COUNT=$BATS_TEST_TMPDIR/count
}

# Lines in the counter file.
count_lines() {
	local n
	n=$(wc -l <"$COUNT" 2>/dev/null) || n=0
	echo "${n:-0}"
}

# Wait until the counter file has at least N lines (at most SECONDS).
wait_lines() { # N SECONDS
	local i=0 limit=$(($2 * 10))
	while [ "$(count_lines)" -lt "$1" ]; do
		i=$((i + 1))
		if [ $i -ge $limit ]; then
			echo "FAILED: $COUNT has $(count_lines) lines after $2 s, expected at least $1"
			show_logs
			return 1
		fi
		sleep 0.1
	done
}

# The counter file is exactly 0..N-1, one a line (checked on a copy, as
# the counter may still be running).
check_sequence() { # WHEN
	local n snap=$BATS_TEST_TMPDIR/count.snapshot
	cp "$COUNT" "$snap"
	n=$(wc -l <"$snap")
	if ! seq 0 $((n - 1)) | cmp -s - "$snap"; then
		echo "FAILED: $1: $COUNT is not the sequence 0..$((n - 1)); first difference:"
		seq 0 $((n - 1)) | diff - "$snap" | head -n 10
		show_logs
		return 1
	fi
}

# Start the counting command (its PID in $PID), dump and kill it, restore
# it, and check the counter carried on.
counter_round_trip() { # CMD...
	LOG=$BATS_TEST_TMPDIR/counter.log
	start_cmd "$@"
	wait_lines 10 20
	# The interpreter has exec'd by now: record its executable.
	own_pid "$PID"
	PROG=${OWNED[$PID]}
	check_sequence "before the dump"

	dump_and_kill
	local before
	before=$(count_lines)
	sleep 0.5
	[ "$(count_lines)" -eq "$before" ] || die_with_logs "the counter went on after the dump killed it"
	check_sequence "after the dump"

	start_restore
	wait_restored
	wait_lines $((before + 10)) 30
	kill -KILL "$PID"
	wait_child "$RPID" 10 || die_with_logs "stasis restore did not exit after its restored PID $PID was killed"
	echo "counter: $before lines before the dump, $(count_lines) after the restore"
	check_sequence "after the restore"
}

@test "python3: a counter appended to a file carries on after dump and restore" {
	local py=/usr/bin/python3
	[ -x "$py" ] || py=$(command -v python3) || { echo "FAILED: no python3"; return 1; }
	counter_round_trip "$py" -c '
import sys, time
f = open(sys.argv[1], "a")
i = 0
while True:
    f.write("%d\n" % i)
    f.flush()
    i += 1
    time.sleep(0.1)
' "$COUNT"
}

@test "bash: a counter loop (builtins only, no child) carries on after dump and restore" {
	# A busy loop instead of sleep(1): the shell then never has a child, so
	# the dumped tree is the shell alone.
	counter_round_trip bash -c '
i=0
while :; do
	echo $i >>"$1"
	i=$((i + 1))
	for ((j = 0; j < 60000; j++)); do :; done
done
' bash "$COUNT"
}
