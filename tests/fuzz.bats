#!/usr/bin/env bats
# The libFuzzer harnesses of tests/fuzz (every reader of untrusted bytes),
# each run for a short while (STASIS_FUZZ_SECONDS, default 20) from its
# checked-in corpus, as CI. A test fails on a crash, sanitizer report, leak,
# hang (10 s an input) or allocation over 1 GiB, with libFuzzer's report
# and the input it kept. tests/run builds the harnesses (clang) into
# build-fuzz/ before this suite runs. Longer runs: bench/fuzz.sh.

STASIS_REPO=${STASIS_REPO:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
FUZZ_BIN=${STASIS_FUZZ_BUILD_DIR:-$STASIS_REPO/build-fuzz}/tests/fuzz
FUZZ_SECONDS=${STASIS_FUZZ_SECONDS:-20}

# Runs harness NAME from a copy of its corpus; libFuzzer's output goes to
# $BATS_TEST_TMPDIR/NAME.log, what it finds to $BATS_TEST_TMPDIR/found.
run_harness() { # NAME [SECONDS]
	local name=$1 secs=${2:-$FUZZ_SECONDS} bin=$FUZZ_BIN/fuzz-$1 dir=$BATS_TEST_TMPDIR
	if [ ! -x "$bin" ]; then
		echo "FAILED: $bin is not built (tests/run builds it, with clang)"
		return 1
	fi
	mkdir -p "$dir/corpus-$name" "$dir/found"
	cp "$STASIS_REPO/tests/fuzz/corpus/$name"/* "$dir/corpus-$name"/
	FUZZ_STATUS=0
	(cd "$dir/found" && exec nice -n 10 "$bin" -max_total_time="$secs" -timeout=10 \
		-rss_limit_mb=1024 -malloc_limit_mb=1024 -print_final_stats=1 \
		"$dir/corpus-$name") >"$dir/$name.log" 2>&1 </dev/null || FUZZ_STATUS=$?
	FUZZ_FOUND=$(ls -A "$dir/found")
}

# The harness ran its time and found nothing.
fuzz_clean() { # NAME
	local name=$1 log=$BATS_TEST_TMPDIR/$1.log runs
	run_harness "$name" || return 1
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	if [ "$FUZZ_STATUS" -ne 0 ] || [ -n "$FUZZ_FOUND" ]; then
		grep -E -A30 '^==[0-9]+==|ERROR|SUMMARY|runtime error' "$log" | head -80
		echo "FAILED: fuzz-$name exited $FUZZ_STATUS; found: ${FUZZ_FOUND:-nothing kept}"
		return 1
	fi
	if [ -z "$runs" ] || [ "$runs" -lt 100 ]; then
		tail -n 20 "$log"
		echo "FAILED: fuzz-$name ran ${runs:-no} inputs"
		return 1
	fi
	echo "fuzz-$name: $runs runs, $(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)"
}

@test "fuzz stream: the stream frame reader and every record's decoding" {
	fuzz_clean stream
}

@test "fuzz inject: records loaded and checked as stasis-inject does" {
	fuzz_clean inject
}

@test "fuzz seal: the sealed-stream opener (cipher image, keys, records, pages, tags)" {
	fuzz_clean seal
}

@test "fuzz imgdir: an image directory packed, or opened when sealed" {
	fuzz_clean imgdir
}

@test "fuzz transfer: a receiver's greeting, chunk framing and stream check" {
	fuzz_clean transfer
}

@test "fuzz config: configuration files and the option value parsers" {
	fuzz_clean config
}

@test "fuzz: a leak in a harness fails the run (sabotage fuzz-leak)" {
	STASIS_SABOTAGE=fuzz-leak run_harness config 5 || return 1
	[ "$FUZZ_STATUS" -ne 0 ] || { tail -n 20 "$BATS_TEST_TMPDIR/config.log"; echo "FAILED: the leak went unnoticed"; return 1; }
	grep -q 'LeakSanitizer: detected memory leaks' "$BATS_TEST_TMPDIR/config.log"
	[ -n "$FUZZ_FOUND" ]
}
