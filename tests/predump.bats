#!/usr/bin/env bats
# Iterative checkpoints (docs/predump.md): stasis pre-dump copies memory and
# leaves the tree running, tracking what it writes (userfaultfd write
# protection read with PAGEMAP_SCAN); each later link copies only the pages
# written since the previous one, and stasis restore puts the chain back
# together. tests/progs/dirtier.c rewrites a slice of 256 pages on SIGUSR1,
# moves a page-sized mapping on SIGUSR2 and drops a slice on SIGWINCH, and
# checks every page after GO.

load helpers

CHAIN=$BATS_TEST_TMPDIR/chain

# The number of pages the last stats-dump of DIR says were written.
pages_written() { # DIR
	stasis-serialize show -i "$1/stats-dump.img" |
		awk -F': ' '/"pages_written"/ { gsub(/[^0-9]/, "", $2); print $2; exit }'
}

pages_skipped_prev() { # DIR
	stasis-serialize show -i "$1/stats-dump.img" |
		awk -F': ' '/"pages_skipped_prev"/ { gsub(/[^0-9]/, "", $2); print $2; exit }'
}

# Bytes of page data a link holds.
page_bytes() { # DIR
	cat "$1"/pages-*.img | wc -c
}

# stasis pre-dump of $PID into $CHAIN/N, with ARGS.
pre_dump() { # N [ARGS...]
	local n=$1 rc=0
	shift
	mkdir -p "$CHAIN"
	(cd "$BATS_TEST_TMPDIR" && exec stasis pre-dump -t "$PID" -D "$CHAIN/$n" -v4 \
		-o pre-dump.log "$@") </dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 3>&- || rc=$?
	[ $rc -eq 0 ] || die_with_logs "stasis pre-dump -D $CHAIN/$n $* exited with status $rc" ||
		return 1
	alive "$PID" || die_with_logs "the pre-dump did not leave $PID running" || return 1
	assert_running_untraced "$PID"
}

# Sends SIG to the program and waits for its log to have COUNT lines WORD.
poke() { # SIG WORD COUNT
	kill -"$1" "$PID"
	local i
	for i in $(seq 100); do
		[ "$(grep -c "^$2" "$LOG")" -ge "$3" ] && return 0
		sleep 0.05
	done
	die_with_logs "the program did not report $2 $3"
}

# The helper that keeps the tracker of the tree rooted at $PID.
tracker_pid() {
	grep -a -o "memory tracker of tree $PID: process [0-9]*" "$@" 2>/dev/null |
		awk '{ print $NF }' | tail -n 1
}

@test "pre-dump twice, then dump: each link holds only the pages written since the one before; the restored memory is exact" {
	start_prog dirtier 64
	pre_dump 1
	local full
	full=$(page_bytes "$CHAIN/1")
	[ "$full" -ge $((64 << 20)) ] || die_with_logs "the first pre-dump holds $full bytes of pages, less than the 64 MiB written"

	poke USR1 DIRTIED 1
	pre_dump 2 --prev-images-dir ../1
	local w2 s2
	w2=$(pages_written "$CHAIN/2")
	s2=$(pages_skipped_prev "$CHAIN/2")
	echo "second link: $w2 pages written, $s2 left to the first"
	# the slice of 256 pages, plus the stack, libc's data and such
	[ "$w2" -ge 256 ] && [ "$w2" -le 400 ] || die_with_logs "the second link wrote $w2 pages, not the 256 rewritten and a few more"
	[ "$s2" -ge 16000 ] || die_with_logs "the second link left only $s2 pages to the first"
	[ "$(page_bytes "$CHAIN/2")" -eq $((w2 * 4096)) ]
	[ "$(readlink "$CHAIN/2/parent")" = ../1 ]

	poke USR1 DIRTIED 2
	IMG=$CHAIN/3
	dump_and_kill --track-mem --prev-images-dir ../2
	local w3
	w3=$(pages_written "$IMG")
	echo "last link: $w3 pages written"
	[ "$w3" -ge 256 ] && [ "$w3" -le 400 ] || die_with_logs "the dump wrote $w3 pages, not the 256 rewritten and a few more"
	wait_ids_free 30
	restore_and_check
}

@test "the tracked program sees no extra descriptor, its maps are unchanged, and the tracker goes with the tree" {
	start_prog dirtier 8
	local fds maps
	fds=$(ls "/proc/$PID/fd")
	maps=$(cut -d' ' -f1,2,6- "/proc/$PID/maps")
	pre_dump 1
	[ "$(ls "/proc/$PID/fd")" = "$fds" ] || die_with_logs "the pre-dump changed the descriptors of $PID"
	[ "$(cut -d' ' -f1,2,6- "/proc/$PID/maps")" = "$maps" ] || die_with_logs "the pre-dump changed the mappings of $PID"
	local holder
	holder=$(tracker_pid "$CHAIN/1/pre-dump.log")
	[ -n "$holder" ] && alive "$holder" || die_with_logs "no memory tracker runs after the pre-dump"
	own_pid "$holder"
	grep -q 'anon_inode:\[userfaultfd\]' <(ls -l "/proc/$holder/fd")
	# the program runs on normally: it still rewrites pages on request
	poke USR1 DIRTIED 1
	kill -KILL "$PID"
	wait_child "$PID" 10
	wait_gone "$holder" 10 || die_with_logs "the tracker $holder outlived the tree"
}

@test "a mapping moved with mremap, pages dropped with MADV_DONTNEED, and pages rewritten twice between links" {
	start_prog dirtier 8
	pre_dump 1
	poke USR2 MOVED 1
	poke WINCH DROPPED 1
	poke USR1 DIRTIED 1
	pre_dump 2 --prev-images-dir ../1
	poke USR2 MOVED 2
	poke USR1 DIRTIED 2
	poke USR1 DIRTIED 3
	IMG=$CHAIN/3
	dump_and_kill --track-mem --prev-images-dir ../2
	wait_ids_free 30
	restore_and_check
}

@test "dedup and --auto-dedup punch the pages a newer link holds again out of the older ones; the chain still restores" {
	start_prog dirtier 16
	pre_dump 1
	local before after
	before=$(du -k "$CHAIN"/1/pages-*.img | awk '{ s += $1 } END { print s }')
	poke USR1 DIRTIED 1
	pre_dump 2 --prev-images-dir ../1 --auto-dedup
	poke USR1 DIRTIED 2
	IMG=$CHAIN/3
	dump_and_kill --track-mem --prev-images-dir ../2
	(cd "$BATS_TEST_TMPDIR" && stasis dedup -D "$IMG")
	after=$(du -k "$CHAIN"/1/pages-*.img | awk '{ s += $1 } END { print s }')
	echo "first link: $before KiB of pages before, $after KiB after"
	# two slices of 256 pages (1 MiB each) were written again since
	[ $((before - after)) -ge 2048 ] || die_with_logs "dedup freed $((before - after)) KiB of the first link, not the 2 MiB rewritten"
	# the file keeps its size: only holes
	[ "$(page_bytes "$CHAIN/1")" -ge $((16 << 20)) ]
	wait_ids_free 30
	restore_and_check
}

@test "dirtier's check notices a wrong page (self-test)" {
	STASIS_SABOTAGE=page start_prog dirtier 1
	touch "$GOFILE"
	wait_child "$PID" 20
	[ "$STATUS" -eq 1 ] && grep -q '^FAIL: page' "$LOG" || die_with_logs "no FAIL about the page"
}

@test "a tree that forks and reaps all the time between links is restored whole" {
	start_prog forker
	sleep 0.5
	pre_dump 1
	sleep 0.5
	IMG=$CHAIN/2
	dump_and_kill_tree --track-mem --prev-images-dir ../1
	# tasks that are new since the pre-dump have no parent pages: whole
	[ "$(pages_written "$IMG")" -gt 0 ]
	restore_and_check
}

@test "a missing, foreign or broken parent is a clear error, never a wrong page" {
	start_prog dirtier 4
	pre_dump 1
	poke USR1 DIRTIED 1
	IMG=$CHAIN/2
	dump_and_kill --track-mem --prev-images-dir ../1
	wait_ids_free 30

	mv "$CHAIN/1" "$CHAIN/gone"
	run stasis restore -D "$IMG"
	[ "$status" -ne 0 ]
	[[ $output == *"parent checkpoint"*"missing"* ]] || die_with_logs "no clear error for the missing parent: $output"
	[ "$(grep -c 'error' <<<"$output")" -ge 1 ]
	alive "$PID" && die_with_logs "a restore without its parent ran the task"

	# another pre-dump's images in the parent's place
	mv "$CHAIN/gone" "$CHAIN/1"
	cp "$CHAIN/1/inventory.img" "$BATS_TEST_TMPDIR/inventory.keep"
	rm -f "$LOG" # the next one's READY
	start_prog dirtier 4
	local other=$PID
	mkdir -p "$BATS_TEST_TMPDIR/other"
	stasis pre-dump -t "$other" -D "$BATS_TEST_TMPDIR/other"
	cp "$BATS_TEST_TMPDIR/other/inventory.img" "$CHAIN/1/inventory.img"
	run stasis restore -D "$IMG"
	[ "$status" -ne 0 ]
	[[ $output == *"is not the one it was taken against"* ]] || die_with_logs "no clear error for the foreign parent: $output"

	# the parent's page data cut short
	cp "$BATS_TEST_TMPDIR/inventory.keep" "$CHAIN/1/inventory.img"
	truncate -s 8192 "$CHAIN"/1/pages-1.img
	run stasis restore -D "$IMG"
	[ "$status" -ne 0 ]
	[[ $output == *"missing"* ]] || die_with_logs "no clear error for the parent's missing data: $output"
}

@test "a pre-dump alone is not restored; a parent taken without tracking is refused before the tree is touched" {
	start_prog dirtier 4
	pre_dump 1
	run stasis restore -D "$CHAIN/1"
	[ "$status" -ne 0 ]
	[[ $output == *"is a pre-dump"* ]] || die_with_logs "restoring a pre-dump: $output"

	mkdir -p "$BATS_TEST_TMPDIR/plain"
	stasis dump -R -t "$PID" -D "$BATS_TEST_TMPDIR/plain"
	run stasis dump -t "$PID" -D "$CHAIN/2" --prev-images-dir ../../plain
	[ "$status" -ne 0 ]
	[[ $output == *"was not taken with memory tracking"* ]] || die_with_logs "no clear refusal: $output"
	assert_running_untraced "$PID"
	go_and_check_original
}

@test "a program with a userfaultfd of its own is refused clearly and left running" {
	start_prog dirtier 4 uffd
	run stasis pre-dump -t "$PID" -D "$CHAIN/1"
	[ "$status" -ne 0 ]
	[[ $output == *"task $PID uses userfaultfd itself"* ]] || die_with_logs "no clear refusal: $output"
	[ "$(grep -c 'error' <<<"$output")" -ge 1 ]
	assert_running_untraced "$PID"
	go_and_check_original
}

# ------------------------------------------------- a chain in one stream

# One link of a chain taken with the raw programs into the stream file
# $CHAIN/N.stream: a pre-dump, or with dump the tree killed once written.
link_stream() { # N pre-dump|dump [COLLECT ARGS...]
	local n=$1 kind=$2 rc=0
	shift 2
	mkdir -p "$CHAIN"
	local args=(--track-mem)
	[ "$kind" = pre-dump ] && args+=(--pre-dump)
	[ "$n" -gt 1 ] && args+=(--prev-track-id current)
	{
		stasis-freeze -t "$PID" stasis-collect "${args[@]}" "$@" -v4 \
			-o "$BATS_TEST_TMPDIR/link$n.log" >"$CHAIN/$n.stream" </dev/null 3>&- || rc=$?
	} 2>/dev/null
	[ $rc -eq 0 ] || die_with_logs "link $n ($kind) exited with status $rc" || return 1
}

# "pages_written" of the stats-dump in a stream file.
stream_pages_written() { # FILE
	stasis-serialize show -i "$1" |
		awk -F': ' '/"pages_written"/ { gsub(/[^0-9]/, "", $2); print $2; exit }'
}

# The directories of links that the resolvers logging to LOG... named
# (stasis-serialize chain -v3 and up) and that still exist: other sessions'
# resolvers may hold theirs in /dev/shm at the same time.
links_left() { # LOG...
	grep -aho '/dev/shm/stasis-chain\.[A-Za-z0-9]*' "$@" 2>/dev/null | sort -u |
		while read -r d; do [ ! -e "$d" ] || echo "$d"; done
}

# stasis-serialize chain on the links given, into stasis-inject, in the
# background (RPID), as stasis restore would be.
start_chain_restore() { # FILE...
	(cd "$BATS_TEST_TMPDIR" && cat "$@" | stasis-serialize chain -v4 -o chain.log |
		exec stasis-inject -v4 -o restore.log) \
		</dev/null >"$BATS_TEST_TMPDIR/restore.out" 2>&1 3>&- &
	RPID=$!
	own_pid "$RPID"
}

@test "a chain in one stream (two pre-dumps and the dump, concatenated) is resolved in memory and restored exactly" {
	start_prog dirtier 16
	link_stream 1 pre-dump
	alive "$PID" && assert_running_untraced "$PID"
	poke USR1 DIRTIED 1
	link_stream 2 pre-dump
	poke USR1 DIRTIED 2
	link_stream 3 dump
	wait_child "$PID" 10 || die_with_logs "the dump did not kill $PID"
	cp "$LOG" "$LOG.at-dump"
	local w
	for i in 2 3; do
		w=$(stream_pages_written "$CHAIN/$i.stream")
		echo "link $i: $w pages written"
		[ "$w" -ge 256 ] && [ "$w" -le 400 ] || die_with_logs "link $i wrote $w pages, not the 256 rewritten and a few more"
	done
	[ "$(stream_pages_written "$CHAIN/1.stream")" -ge 4096 ]
	# the resolved stream is whole: no link left to a parent
	(cd "$BATS_TEST_TMPDIR" && cat "$CHAIN"/{1,2,3}.stream | stasis-serialize chain >"$CHAIN/whole")
	run grep -c in_prev <(stasis-serialize show -i "$CHAIN/whole")
	[ "$output" = 0 ]
	start_chain_restore "$CHAIN"/{1,2,3}.stream
	wait_restored
	touch "$GOFILE"
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "the restored program did not finish"
	[ "$STATUS" -eq 0 ] || die_with_logs "the restore exited with $STATUS"
	check_pass_log
	grep -q "chain of 3 links restored as one stream" "$BATS_TEST_TMPDIR/chain.log"
	# the links were kept in memory, and went with the resolver
	grep -q "the links are kept in /dev/shm/stasis-chain" "$BATS_TEST_TMPDIR/chain.log"
	[ -z "$(links_left "$BATS_TEST_TMPDIR/chain.log")" ]
}

@test "a chain in one stream with a link missing, foreign, cut short or short of a page: one clear error, nothing restored" {
	start_prog dirtier 4
	link_stream 1 pre-dump
	poke USR1 DIRTIED 1
	link_stream 2 pre-dump
	poke USR1 DIRTIED 2
	link_stream 3 dump
	wait_child "$PID" 10
	# another chain's first link
	local first=$PID other
	rm -f "$LOG"
	start_prog dirtier 4
	other=$PID
	stasis-freeze -t "$other" stasis-collect --pre-dump --track-mem >"$CHAIN/other.stream" 2>/dev/null
	kill -KILL "$other"
	wait_child "$other" 10 || true
	PID=$first
	chain_refused() { # MESSAGE FILE...
		local msg=$1
		shift
		run bash -c 'cat "${@:2}" | stasis-serialize chain -v3 -o "$1" | stasis-inject' - \
			"$BATS_TEST_TMPDIR/refused.log" "$@"
		[ "$status" -ne 0 ] || die_with_logs "a broken chain ($*) was restored"
		[[ $output == *"$msg"* ]] || die_with_logs "no clear error for $*: $output"
		[ "$(grep -c 'Error\|error' <<<"$output")" -ge 1 ]
		alive "$PID" && die_with_logs "a broken chain ran a task"
		return 0
	}
	chain_refused "link 2 of the chain belongs to another chain" "$CHAIN"/{1,3}.stream
	chain_refused "link 2 of the chain belongs to another chain" "$CHAIN"/{other,2,3}.stream
	chain_refused "link 1 of the chain continues a parent link" "$CHAIN"/{2,3}.stream
	chain_refused "follows a dump" "$CHAIN"/{1,2,3,3}.stream
	head -c -100 "$CHAIN/2.stream" >"$CHAIN/2c.stream"
	chain_refused "link 2 of the chain: corrupted stream" "$CHAIN"/{1,2c,3}.stream
	head -c -100 "$CHAIN/3.stream" >"$CHAIN/3c.stream"
	chain_refused "link 3 of the chain: truncated checkpoint" "$CHAIN"/{1,2,3c}.stream
	# the first link's page data cut short, in a stream that is whole
	stasis-serialize unpack -D "$CHAIN/1.dir" <"$CHAIN/1.stream"
	truncate -s 8192 "$CHAIN"/1.dir/pages-1.img
	stasis-serialize pack -D "$CHAIN/1.dir" >"$CHAIN/1s.stream"
	chain_refused "is missing" "$CHAIN"/{1s,2,3}.stream
	[ "$(grep -c "the links are kept in" "$BATS_TEST_TMPDIR/refused.log")" -ge 7 ]
	[ -z "$(links_left "$BATS_TEST_TMPDIR/refused.log")" ]
}

@test "the links stasis-serialize chain keeps in memory go with it, even when it is killed" {
	start_prog dirtier 4
	link_stream 1 pre-dump
	mkfifo "$CHAIN/in"
	stasis-serialize chain -v3 -o "$BATS_TEST_TMPDIR/chain.log" <"$CHAIN/in" >/dev/null \
		2>"$BATS_TEST_TMPDIR/chain.err" &
	local rp=$! dir='' i
	own_pid "$rp"
	exec 7>"$CHAIN/in"
	cat "$CHAIN/1.stream" >&7
	for i in $(seq 100); do
		dir=$(grep -aho '/dev/shm/stasis-chain\.[A-Za-z0-9]*' "$BATS_TEST_TMPDIR/chain.log" 2>/dev/null | head -n 1)
		[ -n "$dir" ] && [ -s "$dir/1/inventory.img" ] && break
		sleep 0.05
	done
	[ -s "$dir/1/inventory.img" ] || die_with_logs "the first link was not kept in memory"
	[ "$(stat -c %a "$dir")" = 700 ]
	kill -KILL "$rp"
	wait "$rp" 2>/dev/null || true
	exec 7>&-
	for i in $(seq 100); do [ -e "$dir" ] || break; sleep 0.05; done
	[ ! -e "$dir" ] || die_with_logs "$dir outlived the killed resolver"
	go_and_check_original
}
