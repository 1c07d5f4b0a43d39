# shellcheck shell=bash
# Shared set-up for tests/run and tests/demo: install the Debian packages the
# build and the suites need, configure, build and install stasis into
# $STASIS_REPO/build/root, and export the environment the suites expect.
#
# Source it from bash; it defines functions only, plus the variables below.

STASIS_REPO=${STASIS_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
STASIS_BUILD_DIR=${STASIS_BUILD_DIR:-$STASIS_REPO/build}
STASIS_PREFIX=${STASIS_PREFIX:-$STASIS_BUILD_DIR/root}

STASIS_PACKAGES=(
	build-essential cmake pkg-config
	protobuf-c-compiler libprotobuf-c-dev
	libgnutls28-dev gnutls-bin
	libnl-3-dev libnl-route-3-dev libcap-dev
	bats python3 man-db iproute2
	iptables nftables # the network lock (--network-lock), tests/inet.bats
	procps # ps, for tests/demo; not in minimal images
	redis-server redis-tools nginx socat # tests/realnet.bats: real network programs
	iputils-arping # tests/netmigrate.bats: announce a migrated address
	clang # the libFuzzer harnesses (tests/fuzz, tests/fuzz.bats)
	strace # tests/serialize.bats: how page data leaves pack
)

stasis_log() { printf '==> %s\n' "$*" >&2; }

# Run a command as root: directly if we are root, else through sudo.
stasis_as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		stasis_log "need root to run: $*"
		return 1
	fi
}

# Install whatever of STASIS_PACKAGES is missing. A no-op (one dpkg-query)
# when everything is there already.
stasis_install_deps() {
	local missing=() p status
	for p in "${STASIS_PACKAGES[@]}"; do
		status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) || status=
		[ "$status" = installed ] || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	stasis_log "installing missing packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	stasis_as_root apt-get update &&
		stasis_as_root apt-get install -y --no-install-recommends "${missing[@]}"
}

# The fuzz build only (bench/fuzz.sh, tests/fuzz.bats): clang, with
# libFuzzer and the sanitizers (also in STASIS_PACKAGES).
stasis_install_fuzz_deps() {
	local status
	status=$(dpkg-query -W -f='${db:Status-Status}' clang 2>/dev/null) || status=
	[ "$status" = installed ] && return 0
	stasis_log "installing clang for the fuzz build"
	export DEBIAN_FRONTEND=noninteractive
	stasis_as_root apt-get update &&
		stasis_as_root apt-get install -y --no-install-recommends clang
}

# The libFuzzer harnesses of tests/fuzz, instrumented (ASan, UBSan), in
# $STASIS_FUZZ_BUILD_DIR: every source they link is built with clang there,
# apart from the normal build.
STASIS_FUZZ_BUILD_DIR=${STASIS_FUZZ_BUILD_DIR:-$STASIS_REPO/build-fuzz}
stasis_fuzz_harnesses() {
	local c
	for c in "$STASIS_REPO"/tests/fuzz/*.c; do
		printf 'fuzz-%s\n' "$(basename "$c" .c)"
	done
}
stasis_build_fuzz() {
	local jobs harnesses
	jobs=$(nproc 2>/dev/null || echo 2)
	stasis_install_fuzz_deps || return 1
	stasis_log "building the fuzz harnesses in $STASIS_FUZZ_BUILD_DIR"
	CC=clang cmake -S "$STASIS_REPO" -B "$STASIS_FUZZ_BUILD_DIR" -DSTASIS_FUZZ=ON \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || return 1
	mapfile -t harnesses < <(stasis_fuzz_harnesses)
	cmake --build "$STASIS_FUZZ_BUILD_DIR" -j"$jobs" --target "${harnesses[@]}" >/dev/null || return 1
}

# Configure, build and install into $STASIS_PREFIX. Returns non-zero on any
# failure; the compiler's messages are on stdout/stderr.
stasis_build() {
	local jobs
	jobs=$(nproc 2>/dev/null || echo 2)
	stasis_log "configuring in $STASIS_BUILD_DIR"
	cmake -S "$STASIS_REPO" -B "$STASIS_BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo || return 1
	stasis_log "building (-j$jobs)"
	cmake --build "$STASIS_BUILD_DIR" -j"$jobs" || return 1
	stasis_log "installing into $STASIS_PREFIX"
	cmake --install "$STASIS_BUILD_DIR" --prefix "$STASIS_PREFIX" >/dev/null || return 1
}

# The environment the suites, the demo and the benchmark run in.
stasis_env() {
	export STASIS_REPO STASIS_BUILD_DIR STASIS_PREFIX STASIS_FUZZ_BUILD_DIR
	export PATH="$STASIS_PREFIX/bin:$STASIS_PREFIX/sbin:$PATH"
	# Trailing colon: keep the system's man path after ours.
	export MANPATH="$STASIS_PREFIX/share/man:${MANPATH:-}"
}

# Everything: packages, build, environment.
stasis_setup() {
	stasis_install_deps || { stasis_log "package installation failed"; return 1; }
	stasis_build || { stasis_log "build failed"; return 1; }
	stasis_env
}
