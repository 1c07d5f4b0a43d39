#!/usr/bin/env bats
# The test suites themselves: no assertion that can never fail, no skip
# that hides a regression (tests/lint-bats).

LINT=$BATS_TEST_DIRNAME/lint-bats

@test "lint-bats: every tests/*.bats is clean" {
	run "$LINT" "$BATS_TEST_DIRNAME"/*.bats
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "lint-bats: it finds a bare ! that is not last, a continued !, and a stray skip" {
	local f=$BATS_TEST_DIRNAME/lint/bad.sample
	run "$LINT" "$f"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 4 ]
	[[ "${lines[0]}" == "$f:4: skip outside"* ]]
	[[ "${lines[1]}" == "$f:8: bare ! is not the last"* ]]
	[[ "${lines[2]}" == "$f:13: bare ! continued"* ]]
	[[ "${lines[3]}" == "$f:18: skip outside"* ]]
}

@test "lint-bats: a bare ! last in a file that ends without } is reported" {
	local f=$BATS_TEST_TMPDIR/cut.bats
	printf '@test "x" {\n\t! true\n' >"$f"
	run "$LINT" "$f" "$f"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 2 ]
}
