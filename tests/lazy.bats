#!/usr/bin/env bats
# Lazy (post-copy) restore from a directory (issue 13, docs/lazy.md):
# stasis lazy-pages -D DIR serves the pages of a normal dump, stasis
# restore --lazy-pages leaves the private anonymous memory to it. The
# memory, tree and thread programs of the other suites are restored lazily
# and check themselves once the daemon has put every page in (it exits 0
# then); lazymm does fork, mremap, munmap, MADV_DONTNEED and faults from
# several threads while its memory is still lazy (the daemon's background
# prefetch slowed down); an iterative chain is restored lazily; a daemon
# that is missing or dies never leaves a tree running without its memory.

load helpers

# Starts stasis lazy-pages on $IMG in the background (LZPID), ARGS added,
# and waits until its socket is there.
start_lazy_daemon() { # [ARGS...]
	rm -f "$IMG/lazy-pages.socket"
	(cd "$BATS_TEST_TMPDIR" && exec stasis lazy-pages -D "$IMG" -v4 -o lazy-pages.log \
		--display-stats "$@") </dev/null >"$BATS_TEST_TMPDIR/lazy.out" 2>&1 3>&- &
	LZPID=$!
	local i
	for i in $(seq 200); do
		if [ -S "$IMG/lazy-pages.socket" ]; then
			own_pid "$LZPID"
			return 0
		fi
		alive "$LZPID" || break
		sleep 0.05
	done
	own_pid "$LZPID"
	die_with_logs "stasis lazy-pages did not make $IMG/lazy-pages.socket"
}

# The daemon must end by itself, with status 0: every page is in.
wait_lazy_done() {
	wait_child "$LZPID" "$STASIS_TEST_WAIT" ||
		die_with_logs "stasis lazy-pages still runs ${STASIS_TEST_WAIT}s after the restore" || return 1
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis lazy-pages exited with status $STATUS" || return 1
	cat "$BATS_TEST_TMPDIR/lazy.out"
}

# Lazy restore of $IMG (daemon ARGS in LAZY_ARGS), the program told to
# check itself once every page is in.
lazy_restore_and_check() {
	start_lazy_daemon "${LAZY_ARGS[@]}" || return 1
	start_restore --lazy-pages "$@"
	wait_restored || return 1
	wait_lazy_done || return 1
	touch "$GOFILE"
	wait_child "$RPID" "$STASIS_TEST_WAIT" ||
		die_with_logs "stasis restore still running ${STASIS_TEST_WAIT}s after GO" || return 1
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis restore exited with status $STATUS" || return 1
	check_pass_log
}

# A number from the daemon's statistics.
lazy_stat() { # NAME
	awk -F': ' -v k="$1" '$1 == k { print $2; exit }' "$BATS_TEST_TMPDIR/lazy.out"
}

@test "heap: 64 MiB malloc, brk heap and sparse memory restored lazily, every page served by the daemon" {
	start_prog heap
	dump_and_kill
	lazy_restore_and_check --display-stats
	local lazy pushed faulted
	lazy=$(lazy_stat "Pages left lazy")
	pushed=$(lazy_stat "Pages pushed")
	faulted=$(lazy_stat "Pages served on fault")
	echo "lazy $lazy, pushed $pushed, on fault $faulted"
	[ "$lazy" -ge 16384 ] || die_with_logs "only $lazy pages were left lazy (64 MiB is 16384)"
	[ $((pushed + faulted)) -eq "$lazy" ] || die_with_logs "$pushed pushed and $faulted faulted pages are not the $lazy lazy ones"
	grep -q "^Pages left lazy: " "$BATS_TEST_TMPDIR/restore.out" ||
		die_with_logs "restore --display-stats does not count the lazy pages"
	grep -q "^Time to first instruction: [0-9]* us" "$BATS_TEST_TMPDIR/lazy.out"
	grep -q "^Time until all pages arrived: [0-9]* us" "$BATS_TEST_TMPDIR/lazy.out"
	# and the daemon's figures are in the restore's statistics image
	stasis-serialize show -i "$IMG/stats-restore.img" | grep -q '"lazy_pages_pushed"' ||
		die_with_logs "stats-restore.img lacks the lazy figures"
}

# The runs of pagemap-PID marked lazy in the stream STREAM.
lazy_runs_in() { # STREAM PID
	stasis-serialize show -i "$1" |
		awk -v img="\"pagemap-$2\"," '$1 == "\"image\":" { cur = ($2 == img) }
			cur && /"lazy": true/ { n++ } END { print n + 0 }'
}

@test "restore --lazy-pages streams only what stasis-inject writes: pack --lazy-pages leaves the 64 MiB heap out, marked lazy, and the daemon fills it from the directory" {
	start_prog heap
	dump_and_kill
	local s=$BATS_TEST_TMPDIR full lazy
	stasis-serialize pack -D "$IMG" >"$s/full.stream"
	stasis-serialize pack -D "$IMG" --lazy-pages >"$s/lazy.stream"
	full=$(stat -c %s "$s/full.stream")
	lazy=$(stat -c %s "$s/lazy.stream")
	echo "stream: $full bytes whole, $lazy bytes for a lazy restore"
	[ $((full - lazy)) -ge $((64 << 20)) ] ||
		die_with_logs "pack --lazy-pages streamed $lazy of $full bytes: the lazy pages went too"
	[ "$(lazy_runs_in "$s/full.stream" "$PID")" -eq 0 ]
	[ "$(lazy_runs_in "$s/lazy.stream" "$PID")" -gt 0 ]
	# the stream without its lazy pages is refused by a restore that is not lazy
	run stasis-inject <"$s/lazy.stream"
	[ "$status" -ne 0 ]
	[[ "$output" == *"restore it with --lazy-pages"* ]]
	lazy_restore_and_check
	[ "$(lazy_stat "Pages left lazy")" -ge 16384 ]
	# pack's options: --lazy-pages is pack's, and not with --chain
	run stasis-serialize show -D "$IMG" --lazy-pages
	[ "$status" -eq 1 ]
	[[ "$output" == *"--lazy-pages is an option of pack and chain only"* ]]
	run stasis-serialize pack -D "$IMG" --lazy-pages --chain
	[ "$status" -eq 1 ]
}

@test "pack --lazy-pages streams a parent's pages, which its children share copy-on-write, and leaves out the children's own" {
	start_prog prefork 32 4
	dump_and_kill_tree
	local s=$BATS_TEST_TMPDIR/lazy.stream pid kids=0 own=0
	stasis-serialize pack -D "$IMG" --lazy-pages >"$s"
	[ "$(lazy_runs_in "$s" "$PID")" -eq 0 ] ||
		die_with_logs "the parent's runs were left out of the stream"
	while read -r pid _; do
		[ "$pid" = "$PID" ] && continue
		kids=$((kids + 1))
		[ "$(lazy_runs_in "$s" "$pid")" -eq 0 ] || own=$((own + 1))
	done < <(image_tasks)
	echo "$kids children, $own with runs left lazy"
	[ "$kids" -eq 4 ]
	[ "$own" -eq 4 ]
}

@test "mappings: private and shared file and anonymous mappings, PROT_NONE and read-only ones, restored lazily" {
	start_prog mappings "$BATS_TEST_TMPDIR"
	dump_and_kill
	lazy_restore_and_check
}

@test "threads: 8 threads restored lazily keep their TIDs, masks, signals and futex hand-offs" {
	start_prog threads
	dump_and_kill_tree
	lazy_restore_and_check
}

@test "tree: three levels, sessions, an orphaned group, zombies, a subreaper, restored lazily" {
	start_prog tree
	dump_and_kill_tree
	lazy_restore_and_check
}

# Total PSS (kB) of PID and its children.
tree_pss() { # PID
	local p sum=0 v
	for p in "$1" $(ps -o pid= --ppid "$1"); do
		v=$(awk '$1 == "Pss:" { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null)
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

@test "prefork: 4 children whose 32 MiB are shared with their parent read them intact after a lazy restore, still shared (total PSS within 10%)" {
	start_prog prefork 32 4
	local before after
	before=$(tree_pss "$PID")
	dump_and_kill_tree
	start_lazy_daemon
	start_restore --lazy-pages
	wait_restored
	wait_lazy_done
	after=$(tree_pss "$PID")
	echo "# lazy prefork 32 MiB x 4 children: total PSS $before kB before, $after kB restored" >&3
	[ $((after * 100)) -le $((before * 110)) ] ||
		die_with_logs "the lazily restored tree's PSS is $after kB, more than 10% above $before kB (copy-on-write sharing lost)"
	touch "$GOFILE"
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "no verdict after GO" || return 1
	check_pass_log
	[ "$STATUS" -eq 0 ]
}

@test "forker: a process forking and reaping thousands of children a second while its memory is lazy" {
	start_prog forker
	sleep 1
	dump_and_kill_tree
	LAZY_ARGS=(--prefetch-delay 20)
	lazy_restore_and_check
	grep '^INFO' "$LOG" || true
}

@test "lazymm: fork, mremap, munmap, MADV_DONTNEED and 6 threads faulting at once, while the memory is still lazy" {
	start_prog lazymm 128
	dump_and_kill
	# 1 MiB every 40 ms: the 128 MiB take seconds to come in the background
	start_lazy_daemon --prefetch-delay 40
	start_restore --lazy-pages
	wait_restored
	echo expect-lazy >"$GOFILE"
	wait_child "$RPID" "$STASIS_TEST_WAIT" ||
		die_with_logs "stasis restore still running ${STASIS_TEST_WAIT}s after GO" || return 1
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis restore exited with status $STATUS" || return 1
	check_pass_log
	grep "^missing at GO" "$LOG"
	wait_lazy_done
}

@test "checker self-test: lazymm notices a child that saw later data, a moved window changed, old data in unmapped or dropped memory, a thread's wrong page (STASIS_SABOTAGE)" {
	local what
	for what in fork remap unmap dontneed threads; do
		rm -f "$BATS_TEST_TMPDIR/lazymm.log"
		export STASIS_SABOTAGE=$what
		start_prog lazymm 64
		unset STASIS_SABOTAGE
		touch "$GOFILE"
		wait_child "$PID" 60 || die_with_logs "$what: no verdict" || return 1
		grep -q '^FAIL' "$LOG" || die_with_logs "$what: sabotage not noticed" || return 1
	done
	# and a restore that is not lazy (here: none) is noticed
	rm -f "$BATS_TEST_TMPDIR/lazymm.log"
	start_prog lazymm 64
	echo expect-lazy >"$GOFILE"
	wait_child "$PID" 60
	grep -q '^FAIL: .*no page was missing at GO' "$LOG" || die_with_logs "a restore that was not lazy was not noticed"
}

@test "an iterative chain (pre-dump, then dump against it) restored lazily: pages left to the parent link come from it" {
	local chain=$BATS_TEST_TMPDIR/chain
	start_prog dirtier 32
	mkdir -p "$chain"
	(cd "$BATS_TEST_TMPDIR" && exec stasis pre-dump -t "$PID" -D "$chain/1" -v4 -o pre-dump.log) \
		</dev/null >"$BATS_TEST_TMPDIR/dump.out" 2>&1 3>&- || die_with_logs "pre-dump failed" || return 1
	kill -USR1 "$PID"
	local i
	for i in $(seq 100); do
		grep -q '^DIRTIED' "$LOG" && break
		sleep 0.05
	done
	IMG=$chain/2
	dump_and_kill --track-mem --prev-images-dir ../1
	wait_ids_free 30
	lazy_restore_and_check
}

@test "a page source behind descriptors: stasis lazy-pages --page-source of the directory through two FIFOs, asked for every page (it pushes nothing)" {
	start_prog heap
	dump_and_kill
	local req=$BATS_TEST_TMPDIR/req resp=$BATS_TEST_TMPDIR/resp
	mkfifo "$req" "$resp"
	(exec stasis-lazy-pages --page-source -D "$IMG" -v4 -o "$BATS_TEST_TMPDIR/source.log" \
		<"$req" >"$resp" 2>&1 3>&-) &
	local src=$!
	rm -f "$IMG/lazy-pages.socket"
	(cd "$BATS_TEST_TMPDIR" && exec stasis lazy-pages -W "$IMG" --request-fd 3 --response-fd 4 \
		-v4 -o lazy-pages.log --display-stats 3>"$req" 4<"$resp") </dev/null \
		>"$BATS_TEST_TMPDIR/lazy.out" 2>&1 &
	LZPID=$!
	local i
	for i in $(seq 200); do
		[ -S "$IMG/lazy-pages.socket" ] && break
		sleep 0.05
	done
	own_pid "$LZPID"
	own_pid "$src"
	start_restore --lazy-pages
	wait_restored
	wait_lazy_done
	wait_child "$src" 10 || die_with_logs "the page source did not end after the daemon" || return 1
	[ "$STATUS" -eq 0 ] || die_with_logs "the page source exited with status $STATUS" || return 1
	touch "$GOFILE"
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "no verdict after GO" || return 1
	check_pass_log
	[ "$STATUS" -eq 0 ]
	[ "$(lazy_stat "Pages left lazy")" -ge 16384 ]
}

@test "restore --lazy-pages without a daemon fails with one clear line and leaves nothing running" {
	start_prog heap 8
	dump_and_kill
	run stasis restore -D "$IMG" --lazy-pages -o restore.log
	[ "$status" -ne 0 ]
	[[ "$output" == *"cannot reach the lazy-pages daemon"* ]] || die_with_logs "unclear error: $output"
	if alive "$PID"; then die_with_logs "PID $PID runs after the failed restore"; return 1; fi
}

@test "stasis lazy-pages -D of a sealed directory refuses at once: its pages cannot be read from there" {
	start_prog heap 8
	dump_and_kill
	# what makes a directory sealed: its cipher.img
	: >"$IMG/cipher.img"
	run timeout 20 stasis lazy-pages -D "$IMG"
	[ "$status" -eq 1 ]
	[[ "$output" == *"is sealed: its pages cannot be read from the directory"* ]] ||
		die_with_logs "unclear error: $output"
	[ ! -e "$IMG/lazy-pages.socket" ]
}

@test "the daemon killed during the restore: the tree being restored is killed, not left with zeros" {
	start_prog heap 64
	dump_and_kill
	start_lazy_daemon --prefetch-delay 200
	start_restore --lazy-pages
	wait_restored
	kill -KILL "$LZPID"
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "stasis restore still runs after the daemon died" || return 1
	[ "$STATUS" -ne 0 ]
	wait_gone "$PID" 10 || die_with_logs "the restored task $PID still runs without its memory" || return 1
	grep -q "lazy-pages daemon went away" "$IMG/restore.log" ||
		die_with_logs "no clear message"
}

@test "the daemon killed once the tree runs, pages still missing: the tree and its forks are killed" {
	start_prog lazymm 128
	dump_and_kill
	start_lazy_daemon --prefetch-delay 200
	start_restore --lazy-pages
	wait_restored
	local i
	for i in $(seq 200); do
		[ "$(proc_status "$PID" TracerPid)" = 0 ] && break
		sleep 0.05
	done
	[ "$(proc_status "$PID" TracerPid)" = 0 ] || die_with_logs "the restored tree was not released" || return 1
	kill -KILL "$LZPID"
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "stasis restore still runs after the daemon died" || return 1
	[ "$STATUS" -ne 0 ]
	wait_gone "$PID" 10 || die_with_logs "the restored task $PID still runs without its memory" || return 1
	grep -q "lazy-pages daemon went away before every page was in" "$IMG/restore.log" ||
		die_with_logs "no clear message"
}

# The PID, as seen from here, of the process that is NSPID in a PID
# namespace below ours (empty if none).
pid_below() { # NSPID
	local f
	for f in /proc/[0-9]*/status; do
		awk -v want="$1" '$1 == "NSpid:" && NF > 2 && $NF == want { found = 1 }
			END { exit !found }' "$f" 2>/dev/null && { f=${f#/proc/}; echo "${f%/status}"; return 0; }
	done
	return 0
}

@test "the daemon fails while the restore runs in a PID namespace of its own: it kills the copy by pidfd, not the process holding the same PID out here" {
	start_prog lazymm 64
	dump_and_kill
	# out here, PID $PID is taken again by a process of ours
	local decoy= i
	for i in $(seq 50); do
		echo $((PID - 1)) >/proc/sys/kernel/ns_last_pid
		sleep 600 </dev/null >/dev/null 2>&1 3>&- &
		own_pid $!
		[ $! -eq "$PID" ] && { decoy=$!; break; }
		kill -KILL $!
	done
	[ -n "$decoy" ] || { echo "FAILED: PID $PID could not be taken again for the decoy"; return 1; }
	start_lazy_daemon --prefetch-delay 200
	(cd "$BATS_TEST_TMPDIR" && exec unshare --pid --fork --mount-proc \
		stasis restore -D "$IMG" --lazy-pages -v4 -o restore.log) \
		</dev/null >"$BATS_TEST_TMPDIR/restore.out" 2>&1 3>&- &
	RPID=$!
	own_pid "$RPID"
	# the copy runs (PID $PID down there), its memory still coming
	local copy=
	for i in $(seq 400); do
		copy=$(pid_below "$PID")
		[ -n "$copy" ] && [ "$(proc_status "$copy" TracerPid)" = 0 ] &&
			grep -q "task $PID: lazy" "$BATS_TEST_TMPDIR/lazy-pages.log" && break
		copy=
		sleep 0.05
	done
	[ -n "$copy" ] || die_with_logs "the copy did not run in its PID namespace" || return 1
	own_pid "$copy"
	# the daemon's page source dies: the daemon fails and kills the copy
	local src
	src=$(cat /proc/"$LZPID"/task/*/children 2>/dev/null | awk '{ print $1; exit }')
	[ -n "$src" ] || die_with_logs "no page source under the daemon" || return 1
	kill -KILL "$src"
	wait_child "$LZPID" "$STASIS_TEST_WAIT" || die_with_logs "the daemon still runs" || return 1
	[ "$STATUS" -ne 0 ]
	grep -q "the restored tree was killed" "$BATS_TEST_TMPDIR/lazy-pages.log" ||
		die_with_logs "the daemon did not say it killed the copy" || return 1
	wait_gone "$copy" 10 || die_with_logs "the copy $copy still runs without its memory" || return 1
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "stasis restore still runs" || return 1
	alive "$decoy" || die_with_logs "the daemon killed PID $decoy out here, not the copy"
}

@test "restored detached (-d) lazily: the restore returns at once, a watcher of its own waits for the daemon's word that every page is in" {
	start_prog heap
	dump_and_kill
	start_lazy_daemon
	start_restore --lazy-pages -d
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "stasis restore -d did not return" || return 1
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis restore -d exited with status $STATUS" || return 1
	wait_restored
	wait_lazy_done
	local i
	for i in $(seq 100); do
		grep -q "the watcher of the detached tree ends" "$IMG/restore.log" && break
		sleep 0.05
	done
	grep -q "the watcher of the detached tree ends" "$IMG/restore.log" ||
		die_with_logs "the watcher did not see the daemon's last word"
	touch "$GOFILE"
	wait_gone "$PID" "$STASIS_TEST_WAIT" || die_with_logs "the restored program did not finish after GO"
	check_pass_log
}

@test "restored detached (-d) lazily, the daemon killed once the tree runs, pages still missing: the watcher kills the tree, no zeros" {
	start_prog lazymm 128
	dump_and_kill
	start_lazy_daemon --prefetch-delay 200
	start_restore --lazy-pages -d
	wait_child "$RPID" "$STASIS_TEST_WAIT" || die_with_logs "stasis restore -d did not return" || return 1
	[ "$STATUS" -eq 0 ] || die_with_logs "stasis restore -d exited with status $STATUS" || return 1
	wait_restored
	kill -KILL "$LZPID"
	wait_gone "$PID" 10 || die_with_logs "the restored task $PID still runs without its memory" || return 1
	local i
	for i in $(seq 100); do
		grep -q "the restored tree (detached) was killed" "$IMG/restore.log" && break
		sleep 0.05
	done
	grep -q "lazy-pages daemon went away before every page was in; the restored tree (detached) was killed" \
		"$IMG/restore.log" || die_with_logs "no clear message"
	if grep -q '^PASS' "$LOG"; then die_with_logs "the program passed without its memory"; fi
}

@test "bad command lines of stasis lazy-pages are refused; the raw programs document the lazy options" {
	run stasis-inject --help
	[[ "$output" == *"--lazy-pages"* ]]
	run stasis lazy-pages
	[ "$status" -eq 1 ]
	[[ "$output" == *"-D DIR"* ]]
	run stasis lazy-pages -D "$BATS_TEST_TMPDIR" --prefetch-delay x
	[ "$status" -eq 1 ]
	[[ "$output" == *"invalid --prefetch-delay"* ]]
	run stasis lazy-pages -D "$BATS_TEST_TMPDIR" --request-fd 5
	[ "$status" -eq 1 ]
}
