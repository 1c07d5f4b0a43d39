#!/usr/bin/env bats
# hugetlb memory (docs/memory.md): round trips of tests/progs/hugetlb.c,
# private and shared MAP_HUGETLB mappings and an MFD_HUGETLB memfd mapped
# shared and privately, for 2 MiB pages and 1 GiB pages where the kernel
# has them. The pools are empty on these machines: each suite fills the
# ones it needs (and fails if the kernel cannot) and empties them after.

load helpers

# Huge pages tests/progs/hugetlb.c needs of a size: 9, with --fork 11,
# and what the restored child takes more: it gets its own copies of the
# pages it shared copy-on-write with its parent (hugetlb pages are not
# matched with the parent's at the dump). --fork runs with 2 MiB pages
# only, so 1 GiB pages (where the kernel has them) need 9 GiB, not 14.
HUGE_PAGES_2M=14
HUGE_PAGES_1G=9

setup_file() {
	local kb
	for kb in $(hugepage_sizes); do
		if [ "$kb" = 2048 ]; then
			hugepages_reserve "$kb" "$HUGE_PAGES_2M" || return 1
		else
			hugepages_reserve "$kb" "$HUGE_PAGES_1G" || return 1
		fi
	done
}

teardown_file() {
	hugepages_restore
}

@test "hugetlb: private and shared MAP_HUGETLB mappings and a hugetlb memfd come back as hugetlb memory of the same page size, address and contents" {
	# shellcheck disable=SC2046 # one argument per page size
	start_prog hugetlb $(hugepage_sizes)
	dump_and_kill_tree
	restore_and_check
}

@test "hugetlb: a child inherits the hugetlb mappings, its private copy partly its own (maps10)" {
	start_prog hugetlb --fork 2048
	dump_and_kill_tree
	restore_and_check
}

@test "hugetlb: the dump names every hugetlb mapping with its page size" {
	start_prog hugetlb 2048
	dump_and_kill_tree
	run stasis-serialize show "$IMG/mm-$PID.img"
	[ "$status" -eq 0 ]
	[ "$(grep -c '"hugetlb_page_size": *"\?2097152' <<<"$output")" -eq 4 ]
	restore_and_check
}

@test "hugetlb: pre-dump, then dump --track-mem on top of it (hugetlb pages dumped whole in each link): the chain restores" {
	local chain=$BATS_TEST_TMPDIR/chain
	start_prog hugetlb 2048
	mkdir -p "$chain"
	(cd "$BATS_TEST_TMPDIR" && exec stasis pre-dump -t "$PID" -D "$chain/1" -v4 -o pre-dump.log) \
		</dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 3>&- ||
		die_with_logs "stasis pre-dump failed" || return 1
	alive "$PID" || die_with_logs "the pre-dump did not leave $PID running" || return 1
	assert_running_untraced "$PID"
	IMG=$chain/2
	dump_and_kill_tree --track-mem --prev-images-dir ../1
	restore_and_check
}

@test "hugetlb: dump -R (background snapshot, hugetlb memory copied while frozen): the copy restores" {
	start_prog hugetlb 2048
	run_dump -R || return 1
	assert_running_untraced "$PID"
	kill -KILL "$PID"
	wait_child "$PID" 10 || die_with_logs "PID $PID did not die" || return 1
	wait_ids_free 30 || die_with_logs "the IDs of the checkpoint did not become free" || return 1
	restore_and_check
}

@test "hugetlb: a restore without free huge pages fails with a message, nothing of the tree is left" {
	local pool=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages rc=0
	start_prog hugetlb 2048
	dump_and_kill_tree
	echo 0 >"$pool" # teardown_file puts the old size back
	(cd "$BATS_TEST_TMPDIR" && exec timeout -k 5 "$STASIS_TEST_WAIT" stasis restore -D "$IMG" \
		-v4 -o restore.log) </dev/null >"$BATS_TEST_TMPDIR/restore.out" 2>&1 3>&- || rc=$?
	hugepages_reserve 2048 "$HUGE_PAGES_2M"
	[ "$rc" -ne 0 ] && [ "$rc" -lt 124 ] || die_with_logs "stasis restore exited with status $rc" || return 1
	grep -q 'Cannot allocate memory' "$(find_log restore.log)" ||
		die_with_logs "the restore log does not say why" || return 1
	run alive "$PID"
	[ "$status" -ne 0 ] || die_with_logs "PID $PID exists after the failed restore"
}

@test "checker self-test: hugetlb notices changed data, ordinary pages, an unshared mapping, a changed memfd, a child's changed copy (STASIS_SABOTAGE)" {
	local what
	for what in data pagesize unshared memfd child; do
		rm -f "$BATS_TEST_TMPDIR/hugetlb.log" # READY is looked for in it
		export STASIS_SABOTAGE=$what
		start_prog hugetlb --fork 2048
		unset STASIS_SABOTAGE
		touch "$GOFILE"
		wait_child "$PID" 30 || die_with_logs "$what: no verdict" || return 1
		grep -q '^FAIL' "$LOG" || die_with_logs "$what: sabotage not noticed" || return 1
	done
}
