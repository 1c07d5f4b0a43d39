#!/usr/bin/env bats
# The man pages: every long option a program shows in --help is documented
# in its page and the other way round, and every page renders without a
# warning. Programs are found in PATH, the pages in the repository's man/.

MANDIR=$BATS_TEST_DIRNAME/../man

# Long options (--xyz) in a program's --help output, one a line, sorted.
opts_from_help() {
	"$1" --help 2>&1 | grep -oE -- '--[a-z0-9][a-z0-9-]*' | sed 's/-*$//' | sort -u
}

# Long options in a man page's source: comments dropped, "\-" made a plain
# hyphen, font changes removed.
opts_from_man() {
	sed -e '/^\.\\"/d' -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\f([A-Z][A-Z]//g' \
		-e 's/\\f\[[A-Z]*\]//g' -e 's/\\&//g' -e 's/\\c//g' "$1" |
		grep -oE -- '--[a-z0-9][a-z0-9-]*' | sed 's/-*$//' | sort -u
}

# Compare the options of program $1 with those of its man page.
check_program() {
	local prog=$1 page=$MANDIR/$1.8 help man only_help only_man

	command -v "$prog" >/dev/null || {
		echo "$prog not found in PATH"
		return 1
	}
	[ -f "$page" ] || {
		echo "$prog has no man page: $page is missing"
		return 1
	}
	run "$prog" --help
	[ "$status" -eq 0 ] || {
		echo "$prog --help exited with status $status"
		return 1
	}
	help=$(opts_from_help "$prog")
	man=$(opts_from_man "$page")
	[ -n "$help" ] || {
		echo "$prog --help shows no long option"
		return 1
	}
	only_help=$(comm -23 <(echo "$help") <(echo "$man"))
	only_man=$(comm -13 <(echo "$help") <(echo "$man"))
	if [ -n "$only_help" ] || [ -n "$only_man" ]; then
		[ -n "$only_help" ] && echo "in '$prog --help' but not in $1.8:" $only_help
		[ -n "$only_man" ] && echo "in $1.8 but not in '$prog --help':" $only_man
		return 1
	fi
}

optional_program() {
	command -v "$1" >/dev/null || { echo "FAILED: $1 is not built"; return 1; }
	check_program "$1"
}

@test "stasis: --help and stasis.8 have the same options" {
	check_program stasis
}

@test "stasis-freeze: --help and stasis-freeze.8 have the same options" {
	check_program stasis-freeze
}

@test "stasis-collect: --help and stasis-collect.8 have the same options" {
	check_program stasis-collect
}

@test "stasis-serialize: --help and stasis-serialize.8 have the same options" {
	check_program stasis-serialize
}

@test "stasis-inject: --help and stasis-inject.8 have the same options" {
	check_program stasis-inject
}

@test "stasis-lazy-pages: --help and stasis-lazy-pages.8 have the same options" {
	check_program stasis-lazy-pages
}

@test "stasis-seal: --help and stasis-seal.8 have the same options" {
	optional_program stasis-seal
}

@test "stasis-transfer: --help and stasis-transfer.8 have the same options" {
	optional_program stasis-transfer
}

@test "every man page renders without warnings" {
	local page err n=0 bad=0
	command -v man >/dev/null || { echo "FAILED: man is not installed"; return 1; }
	for page in "$MANDIR"/*.8; do
		n=$((n + 1))
		err=$(MANWIDTH=80 MANPAGER=cat man --warnings -l "$page" 2>&1 >/dev/null)
		if [ -n "$err" ]; then
			echo "${page##*/}: $err"
			bad=1
		fi
	done
	[ "$n" -ge 4 ]
	[ "$bad" -eq 0 ]
}
