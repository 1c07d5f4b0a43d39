#!/usr/bin/env bats
# Checker self-test: every sabotage mode of every test program
# (tests/progs/*.c, tp_sabotaged("MODE")) makes its checker print FAIL, and
# the same program with the same arguments prints PASS without it, so the
# FAIL is the checker noticing the damage. No round trip: the sabotage is
# done after GO, before the check, so the original process shows it.
#
# The table lists PROGRAM MODE ARGS...; in ARGS, @DIR is a fresh directory
# of the run and @GO the go file (first argument when absent); @SLEEP=S
# is not passed on: it waits S seconds between READY and GO (for a checker
# that expects time to have passed), nor is @NOBASELINE: the program's PASS
# needs a restore (its suite shows it), only the FAIL is checked here.
# @IN=SUITE names the suite that runs the mode itself, because the program
# needs a peer outside it (a streaming client): here the suite is only
# checked to do so. A mode that
# appears in a program's source and not here (or the reverse) fails the
# first test: add the new mode to the table.

load helpers

setup_file() {
	ping_sockets_allow
	hugepages_reserve 2048 12 # tests/progs/hugetlb.c
}

teardown_file() {
	ping_sockets_restore
	hugepages_restore
}

TABLE='
aio       reap            @DIR
bgwriter  page            2 64
bgwriter  stale           2 64
bgwriter  moved           2 64 remap
bgwriter  dropped         2 64 dontneed
bigmem    mem             16 @GO
creds     creds
creds     seccomp
ctty      ctty
ctty      owner
ctty      hangup
daemon    session
dirtier   page            1
dirtier   moved           1
events    eventfd         eventfd
events    epoll           epoll
events    signalfd        signalfd
events    timerfd         timerfd @SLEEP=1.5
events    inotify         inotify @DIR
events    inotify-relinked inotify-relinked @DIR
events    inotify-deleted inotify-deleted @DIR
fanotify  fanotify        @DIR
fdtable   unshare
files     offset          @DIR
files     append          @DIR
files     cloexec         @DIR
files     fdnum           @DIR
files     devnull         @DIR
files     leak            @DIR
forker    status
forker    lose
fown      fown
fpu       ymm
fpu       mxcsr
fsobj     cwd             @DIR cwd
fsobj     root            @DIR root
fsobj     rmdir           @DIR rmdir
fsobj     fifo            @DIR fifo
fsobj     dev             @DIR dev
fsobj     gonedir         @DIR gonedir
fsobj     opath           @DIR opath
fsobj     tmpfile         @DIR tmpfile
fsobj     proc            @DIR proc
fsobj     ns              @DIR ns
fsobj     deadproc        @DIR deadproc
fsobj     foreignns       @DIR foreignns
fsobj     console         @DIR console
ghost     ghost           @DIR basic
heap      big
heap      small
heap      sparse
heap      brk
inet      queue           tcp v4
inet      opts            opts
inet      dgram           dgram
inet      fin             halfclosed
inet      connecting      connecting @NOBASELINE
inet      reuseport       reuseport
inet      reset           reset
ipcns     ipc-shm
ipcns     ipc-sem
ipcns     ipc-msg
ipcns     ipc-sysctl
ipcns     ipc-attach
netns     net-link
netns     net-addr
netns     net-route
netns     net-sysctl
netns     net-tcp
netns     net-listen
netns     net-udp
netns     net-unix
lazymm    fork            64
lazymm    remap           64
lazymm    unmap           64
lazymm    dontneed        64
lazymm    threads         64
lease     lease           @DIR
locks     locks           @DIR
hugetlb   child           --fork 2048
hugetlb   data            2048
hugetlb   pagesize        2048
hugetlb   unshared        2048
hugetlb   memfd           2048
mappings  private         @DIR
mappings  shared-private  @DIR
mappings  ro              @DIR
mappings  none            @DIR
mappings  shanon          @DIR
mappings  maywrite        @DIR
memfd     seals
memfd     shared
memfdexec writer
mmstate   advice
mmstate   mlock
mmstate   guard
mmstate   membarrier
mmstate   seal
mntns     data
mntns     owner
mntns     umount
mntns     ro
mntns     hostmnt
mntns     cwd
mntns     offset
mntns     shared
mntns     peer
netecho   echo            @IN=netmigrate.bats
netlinksk groups          all
netoob    oob
novdso    vdso
packetsk  ring            all
packetsk  child-ring      tree
pidfd     pidfd
pidfd     pidfd-reaped    reaped
pipes     pipes           @DIR
prefork   mem             32 4
procattrs oom
procattrs loginuid
cgroups   cgroup          @DIR
cgroups   cgroup-empty    @DIR
cgroups   cgroup-perms    @DIR
cgroups   cgroup-props    @DIR
namespaces hostname
namespaces child-hostname
namespaces clock
namespaces cgroup        cgroup
pidns     root
pidns     ids
pidns     kill
pidns     pidfd
pidns     reap
pidns     procfs          mountproc
pty       queued
pty       winsize
sched     sched
sched     affinity
secret    secret          s3cr3t @DIR
sharedfd  offset          @DIR
shmcount  unshare
shmcount  overshare
shmwin    unshare
shmwin    data
signals   flags
signals   ignore
signals   blocked
signals   pending
signals   private
sigtrap   trap
sigtrap   handler
sleeper   errno
sleeper   timer           pause
sleeper   timer           blocked
stopped   stopsig
threads   name
threads   sigmask
threads   rounding
threads   ring
threads   arith
timers    itimer
timers    posix
tree      pgid
tree      name
tree      counter
tree      zombie
unixscm   rights          rights stream @DIR
unixscm   creds           creds dgram
unixscm   peercred        creds stream
unixscm   epoll           epoll
unixsk    queue           kinds @DIR
unixsk    peercred        tree
unixsk    unconn          unconn @DIR
unixsk    extdgram        external dgram @DIR
unixsk    peercred        tree
zombies   zombie
'

# Programs in tests/progs that are not checkers (no GOFILE, no verdict).
NOT_CHECKERS='counter mkstream lazysink'

PROGS_SRC=$BATS_TEST_DIRNAME/progs

# "PROG MODE" for every tp_sabotaged("MODE") in the sources.
modes_in_sources() {
	local f
	for f in "$PROGS_SRC"/*.c; do
		grep -o 'tp_sabotaged("[^"]*")' "$f" | sed "s/^tp_sabotaged(\"\\(.*\\)\")\$/$(basename "$f" .c) \\1/"
	done | sort -u
}

modes_in_table() {
	echo "$TABLE" | awk 'NF >= 2 { print $1, $2 }' | sort -u
}

# Run PROG with ARGS (placeholders expanded) and STASIS_SABOTAGE=MODE (none
# when MODE is empty): READY, GO, verdict. Sets VERDICT to the PASS/FAIL
# line, or to what went wrong.
NRUN=0
run_checker() { # MODE PROG ARGS...
	local mode=$1 prog=$2 d go exe a args=() has_go=0 pid pause=0 outside
	shift 2
	NRUN=$((NRUN + 1))
	d=$BATS_TEST_TMPDIR/run$NRUN
	mkdir -p "$d"
	go=$d/go
	for a in "$@"; do
		a=${a//@DIR/$d}
		case $a in
		@SLEEP=*) pause=${a#@SLEEP=}; continue ;;
		@NOBASELINE) continue ;;
		esac
		if [ "$a" = @GO ]; then
			a=$go
			has_go=1
		fi
		args+=("$a")
	done
	[ "$has_go" = 1 ] || args=("$go" "${args[@]}")
	exe=$(readlink -f "$TESTPROGS/$prog")
	[ -x "$exe" ] || { VERDICT="not built"; return 0; }
	RUNLOG=$d/log
	(
		close_extra_fds
		if [ -n "$mode" ]; then export STASIS_SABOTAGE=$mode; else unset STASIS_SABOTAGE; fi
		exec setsid "$exe" "${args[@]}" </dev/null >"$RUNLOG" 2>&1
	) &
	pid=$!
	own_pid "$pid" "$exe"
	wait_ready "$RUNLOG" "$pid" 30 >/dev/null ||
		{ VERDICT="no READY: $(tail -n 3 "$RUNLOG" | tr '\n' ' ')"; return 0; }
	# a checker's peer outside its tree (unixsk external) is ours to end
	outside=$(awk '$1 == "OUTSIDE" { print $2; exit }' "$RUNLOG")
	[ -z "$outside" ] || own_pid "$outside"
	sleep "$pause"
	touch "$go"
	wait_child "$pid" 60 || { VERDICT="no verdict within 60 s"; return 0; }
	VERDICT=$(grep -m 1 -E '^(PASS|FAIL)' "$RUNLOG") || VERDICT="no PASS or FAIL line (exit $STATUS)"
}

@test "sabotage table: lists exactly the modes of tests/progs, every checker has one" {
	local src tab p missing=0
	src=$(modes_in_sources)
	tab=$(modes_in_table)
	echo "modes in tests/progs/*.c: $(echo "$src" | wc -l), in the table: $(echo "$tab" | wc -l)"
	if [ "$src" != "$tab" ]; then
		echo "in the sources, not in the table (add a row to TABLE in tests/sabotage.bats):"
		comm -23 <(echo "$src") <(echo "$tab") | sed 's/^/  /'
		echo "in the table, not in the sources:"
		comm -13 <(echo "$src") <(echo "$tab") | sed 's/^/  /'
		return 1
	fi
	for p in "$PROGS_SRC"/*.c; do
		p=$(basename "$p" .c)
		[[ " $NOT_CHECKERS " == *" $p "* ]] && continue
		echo "$src" | grep -q "^$p " || { echo "checker $p has no sabotage mode"; missing=1; }
	done
	[ "$missing" -eq 0 ]
}

@test "sabotage: every mode makes its checker print FAIL, and PASS without it" {
	local prog mode args seen=' ' bad=0 n=0
	while read -r prog mode args; do
		[ -n "$prog" ] || continue
		if [[ "$args" == @IN=* ]]; then
			# Shown in another suite: that suite must switch the mode on
			# and expect FAIL.
			if grep -q "STASIS_SABOTAGE=$mode" "$BATS_TEST_DIRNAME/${args#@IN=}" 2>/dev/null; then
				echo "# $prog $mode: run by ${args#@IN=}"
			else
				echo "$prog $mode: ${args#@IN=} does not run STASIS_SABOTAGE=$mode"
				bad=$((bad + 1))
			fi
			n=$((n + 1))
			continue
		fi
		# shellcheck disable=SC2086 # ARGS are words
		set -- $args
		if [[ "$seen" != *" $prog|$args "* ]] && [[ " $args " != *" @NOBASELINE "* ]]; then
			seen+="$prog|$args "
			run_checker "" "$prog" "$@"
			if [ "$VERDICT" != PASS ]; then
				echo "$prog $args: without sabotage: $VERDICT"
				bad=$((bad + 1))
			fi
		fi
		run_checker "$mode" "$prog" "$@"
		n=$((n + 1))
		if [[ "$VERDICT" != FAIL* ]]; then
			echo "$prog $args: STASIS_SABOTAGE=$mode not noticed: $VERDICT"
			bad=$((bad + 1))
		else
			echo "# $prog $mode: $VERDICT"
		fi
	done <<<"$TABLE"
	echo "$n modes run, $bad wrong"
	[ "$bad" -eq 0 ]
}
