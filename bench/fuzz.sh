#!/bin/bash
# Run the libFuzzer harnesses (tests/fuzz) for SECONDS each (default 60),
# from the checked-in corpora (tests/fuzz/corpus/HARNESS, copied: the
# checked-in seeds are not changed). Builds them with clang, ASan and UBSan
# in $FUZZ_BUILD_DIR (default build-fuzz/ beside build/), installing clang
# first if it is missing. Ends with one line per harness: runs, coverage,
# and whether it found anything; exit status 1 if any did.
#
#   bench/fuzz.sh [SECONDS]
#
# A crash, leak, hang (-timeout=10 s) or allocation above 1 GiB leaves its
# input in $FUZZ_OUT (default /tmp/stasis-fuzz.XXXXXX), named by libFuzzer.

set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STASIS_REPO=$repo
# shellcheck source=tests/lib-setup.sh
. "$repo/tests/lib-setup.sh"

secs=${1:-60}
case $secs in '' | *[!0-9]*) echo "usage: bench/fuzz.sh [SECONDS]" >&2; exit 1 ;; esac
build=${FUZZ_BUILD_DIR:-$repo/build-fuzz}
out=${FUZZ_OUT:-$(mktemp -d /tmp/stasis-fuzz.XXXXXX)}

stasis_install_deps && stasis_install_fuzz_deps || exit 1
CC=clang cmake -S "$repo" -B "$build" -DSTASIS_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1

harnesses=()
for c in "$repo"/tests/fuzz/*.c; do
	harnesses+=("fuzz-$(basename "$c" .c)")
done
cmake --build "$build" -j"$(nproc)" --target "${harnesses[@]}" || exit 1

bad=0
summary=()
for h in "${harnesses[@]}"; do
	name=${h#fuzz-}
	corpus=$out/corpus-$name
	mkdir -p "$corpus" "$out/$name"
	cp "$repo/tests/fuzz/corpus/$name"/* "$corpus"/ 2>/dev/null
	log=$out/$name.log
	(cd "$out/$name" && exec "$build/tests/fuzz/$h" -max_total_time="$secs" -timeout=10 \
		-rss_limit_mb=1024 -malloc_limit_mb=1024 -print_final_stats=1 "$corpus") >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1)
	if [ "$rc" -eq 0 ]; then
		summary+=("$name: ${runs:-?} runs in ${secs}s, $cov, nothing found")
	else
		summary+=("$name: FOUND something (exit $rc): see $log and $out/$name")
		bad=1
	fi
done
printf '%s\n' "${summary[@]}"
exit $bad
