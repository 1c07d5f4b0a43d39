#!/bin/bash
# Run the libFuzzer harnesses (tests/fuzz) for SECONDS each (default 60),
# from the checked-in corpora (tests/fuzz/corpus/HARNESS, copied: the
# checked-in seeds are not changed), one after the other. Builds them with
# clang, ASan and UBSan in $STASIS_FUZZ_BUILD_DIR (default build-fuzz/
# beside build/), installing clang first if it is missing. Ends with one
# line per harness: runs, coverage (libFuzzer's cov and ft) and what it
# found; exit status 1 if any found something.
#
#   bench/fuzz.sh [SECONDS] [HARNESS...]     (default: all of tests/fuzz/*.c)
#
# A crash, leak, hang (-timeout=10 s) or allocation above 1 GiB stops that
# harness and leaves its input in $FUZZ_OUT/HARNESS (default FUZZ_OUT is
# /tmp/stasis-fuzz.XXXXXX), named by libFuzzer; its log is $FUZZ_OUT/HARNESS.log.

set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STASIS_REPO=$repo
# shellcheck source=tests/lib-setup.sh
. "$repo/tests/lib-setup.sh"

secs=${1:-60}
case $secs in '' | *[!0-9]*) echo "usage: bench/fuzz.sh [SECONDS] [HARNESS...]" >&2; exit 1 ;; esac
shift $(($# > 0 ? 1 : 0))
out=${FUZZ_OUT:-$(mktemp -d /tmp/stasis-fuzz.XXXXXX)}

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for c in "$repo"/tests/fuzz/*.c; do
		names+=("$(basename "$c" .c)")
	done
fi
for name in "${names[@]}"; do
	[ -f "$repo/tests/fuzz/$name.c" ] || { echo "bench/fuzz.sh: no harness $name" >&2; exit 1; }
done

stasis_install_deps && stasis_build_fuzz || exit 1

bad=0
summary=()
for name in "${names[@]}"; do
	corpus=$out/corpus-$name
	mkdir -p "$corpus" "$out/$name"
	cp "$repo/tests/fuzz/corpus/$name"/* "$corpus"/ 2>/dev/null
	log=$out/$name.log
	(cd "$out/$name" && exec "$STASIS_FUZZ_BUILD_DIR/tests/fuzz/fuzz-$name" \
		-max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=1024 \
		-print_final_stats=1 "$corpus") >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
	found=$(ls -A "$out/$name")
	if [ "$rc" -eq 0 ] && [ -z "$found" ]; then
		summary+=("$name: ${runs:-?} runs in ${secs}s, ${cov:-no coverage}, 0 crashes")
	else
		summary+=("$name: ${runs:-?} runs, ${cov:-no coverage}, FOUND (exit $rc): ${found:-see the log} in $out/$name, log $log")
		bad=1
	fi
done
printf '%s\n' "${summary[@]}"
exit $bad
