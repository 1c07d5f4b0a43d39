#!/usr/bin/env bats
# stasis check: the kernel feature probes, their report and criu(8)'s exit
# statuses (0 "Looks good.", 1 "Does not look good.", 2 "Looks good but").

setup() {
	command -v stasis >/dev/null || skip "stasis is not in PATH"
	[ "$(id -u)" -eq 0 ] || skip "needs root (the probes use ptrace, clone3 with set_tid)"
}

@test "check: the required features are there: Looks good., status 0" {
	run stasis check
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "Looks good." ]
}

@test "check --feature list: one feature a line, with its category" {
	run stasis check --feature list
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | wc -l)" -ge 20 ]
	for f in ptrace_seize get_rseq_conf clone3_set_tid mm_map vdso_map pidfd kcmp map_files \
		pagemap_scan uffd_wp_async uffd_wp_sync soft_dirty memfd unix_diag packet_diag netlink_diag \
		seccomp_filters timens; do
		echo "$output" | grep -qE "^$f +(required|extra|experimental) " || {
			echo "feature $f is not listed"
			return 1
		}
	done
	# every line is NAME CATEGORY DESCRIPTION
	[ "$(echo "$output" | grep -cvE '^[a-z0-9_]+ +(required|extra|experimental) +[^ ]')" -eq 0 ]
}

@test "check --feature NAME: a known feature is probed, status 0" {
	run stasis check --feature clone3_set_tid
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "clone3_set_tid is supported" ]
	run stasis check --feature=vdso_map
	[ "$status" -eq 0 ]
	[ "$output" = "vdso_map is supported" ]
}

@test "check --feature: every listed feature can be checked on its own" {
	local f n=0
	while read -r f _; do
		run stasis check --feature "$f"
		echo "$f: $status: $output"
		case $status in
		0) [ "$output" = "$f is supported" ] ;;
		1) [[ "$output" == "$f is missing ("*"): "* ]] ;;
		*) return 1 ;;
		esac
		n=$((n + 1))
	done < <(stasis check --feature list)
	[ "$n" -ge 20 ]
}

@test "check --feature with an unknown name: an error, status 1" {
	run stasis check --feature no_such_feature
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"unknown feature 'no_such_feature'"* ]]
	[[ "$output" == *"--feature list"* ]]
	[[ "$output" != *"Looks good"* ]]
}

@test "check --extra and --all: a missing extra feature gives Looks good but ..., status 2" {
	local sd
	# soft-dirty bits: absent when the kernel is built without
	# CONFIG_MEM_SOFT_DIRTY (as on the development machines)
	run stasis check --feature soft_dirty
	sd=$status
	echo "soft_dirty: $output"
	for opt in --extra --all; do
		run stasis check $opt
		echo "$opt: $status"
		echo "$output"
		if [ "$sd" -eq 1 ]; then
			[ "$status" -eq 2 ]
			[[ "$output" == *"soft_dirty is missing (soft-dirty bits in /proc/PID/pagemap: "* ]]
			# what it costs
			echo "$output" | grep -q '^soft_dirty is missing .*: dirty pages are tracked with PAGEMAP_SCAN'
			[ "$(echo "$output" | tail -n 3 | head -n 1)" = "Looks good but some kernel features are missing" ]
			[ "$(echo "$output" | tail -n 1)" = "dump or restore failure." ]
		else
			[ "$status" -eq 0 ]
			[ "$(echo "$output" | tail -n 1)" = "Looks good." ]
		fi
		[[ "$output" != *"Does not look good"* ]]
	done
	# experimental only: no extra feature is probed
	run stasis check --experimental
	echo "$output"
	[[ "$output" != *soft_dirty* ]]
}

@test "check without capabilities: required features missing, Does not look good., status 1" {
	command -v setpriv >/dev/null || { echo "FAILED: setpriv (util-linux) is not installed"; return 1; }
	# root without any capability (empty bounding set across exec)
	run setpriv --bounding-set=-all stasis check
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$(echo "$output" | tail -n 1)" = "Does not look good." ]
	echo "$output" | grep -q '^clone3_set_tid is missing (clone3 with set_tid: .*CAP_CHECKPOINT_RESTORE.*): tasks cannot be restored with their PIDs$'
	run setpriv --bounding-set=-all stasis check --feature clone3_set_tid
	[ "$status" -eq 1 ]
	[[ "$output" == "clone3_set_tid is missing ("* ]]
}

@test "check: options of other commands are refused; --help describes it" {
	run stasis check -t 1
	[ "$status" -eq 1 ]
	[[ "$output" == *"--tree does not apply to check"* ]]
	run stasis dump -t 1 --extra
	[ "$status" -eq 1 ]
	[[ "$output" == *"--extra does not apply to dump"* ]]
	run stasis check --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"Usage: stasis check"* ]]
	[[ "$output" == *"--feature NAME"* ]]
	[[ "$output" != *"--tree"* ]]
}

@test "check -v3 names every supported feature; -o writes them to a log" {
	run stasis check -v3
	[ "$status" -eq 0 ]
	[[ "$output" == *"clone3_set_tid: supported"* ]]
	run stasis check -v3 -W "$BATS_TEST_TMPDIR" -o check.log
	[ "$status" -eq 0 ]
	[ "$output" = "Looks good." ]
	grep -q "stasis: ptrace_seize: supported" "$BATS_TEST_TMPDIR/check.log"
}
