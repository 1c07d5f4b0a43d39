#!/usr/bin/env bats
# Terminals: a pseudo-terminal pair inside the dumped tree.

load helpers

# Every PID of the dumped tree must be free (not a pid, pgid or sid of any
# process) before the restore can reuse them; init reaps orphans slowly.
wait_tree_pids_free() {
	local pids p i
	pids=$(stasis-serialize show -D "$IMG" | python3 -c '
import json, sys
for im in json.load(sys.stdin):
    if im["image"] == "pstree":
        for r in im["records"]:
            print(r["pid"])')
	for i in $(seq 200); do
		local busy=
		for p in $pids; do
			ps -eo pid=,pgid=,sid= | grep -qw "$p" && busy=1
		done
		[ -z "$busy" ] && return 0
		sleep 0.1
	done
	echo "FAILED: PIDs $pids still in use 20 s after the dump"
	return 1
}

@test "pty: master and slave in the tree, settings, window, controlling terminal, foreground group" {
	start_prog pty
	dump_and_kill
	grep -q '"PTMX"' <(stasis-serialize show -D "$IMG")
	grep -q '"PTS"' <(stasis-serialize show -D "$IMG")
	wait_tree_pids_free
	restore_and_check
}
