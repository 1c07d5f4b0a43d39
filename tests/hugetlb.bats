#!/usr/bin/env bats
# hugetlb memory (docs/memory.md): round trips of tests/progs/hugetlb.c,
# private and shared MAP_HUGETLB mappings and an MFD_HUGETLB memfd mapped
# shared and privately, for 2 MiB pages and 1 GiB pages where the kernel
# has them. The pools are empty on these machines: each suite fills the
# ones it needs (and fails if the kernel cannot) and empties them after.

load helpers

# huge pages tests/progs/hugetlb.c uses per page size with --fork (11),
# and what the restored child takes more: it gets its own copies of the
# pages it shared copy-on-write with its parent (hugetlb pages are not
# matched with the parent's at the dump)
HUGE_PAGES=14

setup_file() {
	local kb
	for kb in $(hugepage_sizes); do
		hugepages_reserve "$kb" "$HUGE_PAGES" || return 1
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
	# shellcheck disable=SC2046 # one argument per page size
	start_prog hugetlb --fork $(hugepage_sizes)
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

@test "checker self-test: hugetlb notices changed data, ordinary pages, an unshared mapping, a changed memfd, a child's changed copy (STASIS_SABOTAGE)" {
	local what
	for what in data pagesize unshared memfd child; do
		export STASIS_SABOTAGE=$what
		start_prog hugetlb --fork 2048
		unset STASIS_SABOTAGE
		touch "$GOFILE"
		wait_child "$PID" 30 || die_with_logs "$what: no verdict" || return 1
		grep -q '^FAIL' "$LOG" || die_with_logs "$what: sabotage not noticed" || return 1
	done
}
