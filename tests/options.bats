#!/usr/bin/env bats
# Option values are parsed strictly, by one helper (lib/opts.c), in every
# program: junk, trailing characters, blanks, signs, overflow and values
# out of range are refused with one error line and exit status 1 (bad
# usage, as criu); good values are taken. Nothing is frozen or read:
# every refusal happens while the command line is parsed.

setup() {
	command -v stasis >/dev/null || skip "stasis is not in PATH"
}

# COMMAND... (one a line): each must exit 1 with one error line saying
# "invalid".
REFUSED='
stasis-freeze -t x true
stasis-freeze -t 12x true
stasis-freeze -t -3 true
stasis-freeze -t 0 true
stasis-freeze -t +5 true
stasis-freeze -t 99999999999 true
stasis-freeze -vx -t 1 true
stasis-collect --ack-fd x
stasis-collect --ack-fd 3x
stasis-collect --ack-fd -1
stasis-collect --ack-fd 99999999999999999999
stasis-collect -vx
stasis-collect -v5
stasis-collect --verbosity=-1
stasis-collect --ghost-limit 1Q
stasis-collect --ghost-limit -1M
stasis-collect --ghost-limit 99999999999G
stasis-collect --ghost-limit 1KB
stasis-serialize --ack-fd x unpack -D /nonexistent
stasis-serialize -vx show
stasis-serialize --verbosity 9 show
stasis-seal --ack-fd x --encrypt
stasis-seal --threads 257 --encrypt
stasis-seal --threads -1 --encrypt
stasis-seal --threads 2.5 --encrypt
stasis-seal -vx --encrypt
stasis-seal -v9 --encrypt
stasis-transfer --ack-fd x --listen 4000
stasis-transfer --ps-socket -1
stasis-transfer --status-fd 1e3 --listen 4000
stasis-transfer --max-buffer 10 --listen 4000
stasis-transfer --max-buffer 8Mx --listen 4000
stasis-transfer -vx --listen 4000
stasis-inject --wait-pids-free x
stasis-inject --wait-pids-free -1
stasis-inject --wait-pids-free 86401
stasis-inject -vx
stasis dump -t x
stasis dump -t 1x
stasis dump -t -1
stasis dump -t 99999999999
stasis -vx dump -t 1
stasis -v5 dump -t 1
stasis dump -t 1 --ghost-limit 5X
stasis dump -t 1 --remote --address 127.0.0.1 --port 70000
stasis dump -t 1 --remote --address 127.0.0.1 --port 80x
stasis restore --remote --port x
stasis restore --remote --ps-socket x
'

# Good values: parsed, then --help (exit 0) ends the program.
ACCEPTED='
stasis-freeze -t 5 -v2 --help
stasis-collect --ack-fd 7 -vvv --ghost-limit 1K --help
stasis-collect -v0 --ghost-limit 64M --help
stasis-serialize --ack-fd 1 -v4 --help
stasis-serialize --verbosity 3 --help
stasis-seal --ack-fd 0 --threads 256 -v --help
stasis-transfer --max-buffer 2M --ack-fd 1 -v1 --help
stasis-inject --wait-pids-free 86400 -vv --help
stasis -v4 dump -t 5 --ghost-limit 1G --help
'

@test "options: junk, signs, overflow and out-of-range values are refused with one line, status 1" {
	local cmd bad=0 n=0 nerr
	while read -r cmd; do
		[ -n "$cmd" ] || continue
		n=$((n + 1))
		# shellcheck disable=SC2086 # the words of the command
		run $cmd </dev/null
		nerr=$(echo "$output" | grep -c 'error:')
		if [ "$status" -ne 1 ] || [ "$nerr" -ne 1 ] || [[ "${lines[0]}" != *"error: invalid"* ]]; then
			echo "FAILED: $cmd: status $status, output:"
			echo "$output" | sed 's/^/    /'
			bad=$((bad + 1))
		else
			echo "# $cmd: ${lines[0]}"
		fi
	done <<<"$REFUSED"
	echo "$n commands, $bad wrong"
	[ "$bad" -eq 0 ]
}

@test "options: good values are taken" {
	local cmd bad=0
	while read -r cmd; do
		[ -n "$cmd" ] || continue
		# shellcheck disable=SC2086
		run $cmd </dev/null
		if [ "$status" -ne 0 ] || [[ "$output" != *Usage* ]]; then
			echo "FAILED: $cmd: status $status: ${lines[0]}"
			bad=$((bad + 1))
		fi
	done <<<"$ACCEPTED"
	[ "$bad" -eq 0 ]
}
