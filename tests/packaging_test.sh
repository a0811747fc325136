#!/bin/sh
# Packaging test: build the jead .deb from a configured and built CMake
# build directory with cpack, check its contents and dependencies, install
# it with apt-get, run the installed jead, then purge it.
#
# usage: tests/packaging_test.sh BUILD_DIR
#
# It installs a package on this machine, so it needs root and exits 77
# (reported as skipped by CTest) without it. It also skips when a jead
# package is already installed, because the purge at the end would remove
# it. Every step runs under timeout(1), and the test stops before apt-get
# would download a missing dependency.
set -eu

build_dir=${1:-}
if [ -z "$build_dir" ] || [ ! -f "$build_dir/CPackConfig.cmake" ]; then
	echo "usage: tests/packaging_test.sh BUILD_DIR (a CMake build directory with CPackConfig.cmake)" >&2
	exit 2
fi
build_dir=$(cd "$build_dir" && pwd)

if [ "$(id -u)" -ne 0 ]; then
	echo "packaging test skipped: it installs and purges a .deb, which needs root"
	exit 77
fi
for tool in cpack apt-get dpkg-deb dpkg-query objdump flock timeout; do
	if ! command -v "$tool" >/dev/null; then
		echo "packaging test skipped: $tool not found"
		exit 77
	fi
done

# One run at a time on this machine: two runs would purge each other's
# installation.
exec 9>/run/lock/jead-packaging-test.lock
if ! flock -w 600 9; then
	echo "FAIL: another packaging test held /run/lock/jead-packaging-test.lock for 600 s" >&2
	exit 1
fi

if dpkg-query -W -f='${Status}' jead 2>/dev/null | grep -q 'install ok installed'; then
	echo "packaging test skipped: a jead package is already installed, and this test would purge it"
	exit 77
fi

scratch=$(mktemp -d)
installed=false
cleanup() {
	if $installed; then
		DEBIAN_FRONTEND=noninteractive timeout 300 apt-get purge -y -q -o DPkg::Lock::Timeout=120 jead >/dev/null 2>&1 || true
	fi
	rm -rf "$scratch"
}
trap cleanup EXIT

failures=0
check() {
	description=$1
	shift
	if "$@"; then
		echo "ok   $description"
	else
		echo "FAIL $description"
		failures=$((failures + 1))
	fi
}

# --- Build and inspect the package ------------------------------------------

if ! timeout 600 cpack --config "$build_dir/CPackConfig.cmake" -B "$scratch/out" >"$scratch/cpack.log" 2>&1; then
	echo "FAIL cpack:" >&2
	cat "$scratch/cpack.log" >&2
	exit 1
fi
set -- "$scratch"/out/jead_*_amd64.deb
if [ $# -ne 1 ] || [ ! -f "$1" ]; then
	echo "FAIL cpack produced no single jead_VERSION_amd64.deb in $scratch/out:" >&2
	ls -l "$scratch/out" >&2
	exit 1
fi
deb=$1
echo "ok   built $(basename "$deb")"

dpkg-deb -c "$deb" >"$scratch/contents"
for path in ./usr/bin/jead ./usr/bin/jea-replay ./etc/jead/jead.toml \
	./usr/lib/systemd/system/jead.service ./usr/lib/sysusers.d/jead.conf ./usr/lib/tmpfiles.d/jead.conf \
	./usr/share/man/man8/jead.8 ./usr/share/man/man5/jead.toml.5 ./usr/share/man/man5/jead-roles.5 \
	./usr/share/man/man1/jea-replay.1 ./usr/share/doc/jead/examples/jead.toml; do
	check "package contains $path" grep -q " $path\$" "$scratch/contents"
done
check "package installs no role into /etc/jead/roles" sh -c "! grep -q ' ./etc/jead/roles/.' '$scratch/contents'"
check "/etc/jead/jead.toml is a conffile" sh -c "dpkg-deb -I '$deb' conffiles | grep -qx /etc/jead/jead.toml"

depends=$(dpkg-deb -f "$deb" Depends)
echo "     Depends: $depends"
dpkg-deb -x "$deb" "$scratch/root"

# Returns 0 when Depends names package $1 or a virtual package it provides.
depends_covers() {
	names="$1 $(dpkg-query -W -f='${Provides}' "$1" 2>/dev/null | sed 's/([^)]*)//g; s/,/ /g')"
	for name in $names; do
		if printf '%s\n' "$depends" | tr ',|' '\n\n' | sed 's/(.*//; s/ //g' | grep -qx "$name"; then
			return 0
		fi
	done
	return 1
}

for binary in usr/bin/jead usr/bin/jea-replay; do
	for soname in $(objdump -p "$scratch/root/$binary" | awk '$1 == "NEEDED" { print $2 }'); do
		owner=$(dpkg -S "*/$soname" 2>/dev/null | head -n 1 | cut -d: -f1)
		if [ -z "$owner" ]; then
			check "$binary: $soname belongs to an installed package" false
			continue
		fi
		check "$binary: NEEDED $soname ($owner) is in Depends" depends_covers "$owner"
	done
done

# --- Install and run -----------------------------------------------------------

# The test never downloads: it stops when apt-get would install anything
# besides jead, which means a runtime dependency is missing.
timeout 120 apt-get install --simulate -q "$deb" >"$scratch/simulate.log" 2>&1 || true
others=$(awk '$1 == "Inst" && $2 != "jead" { print $2 }' "$scratch/simulate.log" | tr '\n' ' ')
if [ -n "$others" ]; then
	echo "FAIL installing the package would also install: $others; install the runtime dependencies first" >&2
	exit 1
fi

if ! DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q \
	-o DPkg::Lock::Timeout=120 "$deb" >"$scratch/apt.log" 2>&1; then
	echo "FAIL apt-get install $deb:" >&2
	cat "$scratch/apt.log" >&2
	exit 1
fi
installed=true
echo "ok   apt-get install"

version_output=$(timeout 10 /usr/bin/jead --version 2>&1) || true
check "jead --version prints the version ($version_output)" \
	sh -c "printf '%s\n' \"\$1\" | grep -q '^jead [0-9][0-9.]* (libssh '" _ "$version_output"

check_output=$(timeout 30 /usr/bin/jead check --config /etc/jead/jead.toml 2>&1) || true
check "jead check accepts the packaged config ($check_output)" \
	sh -c "printf '%s\n' \"\$1\" | grep -q '^/etc/jead/jead.toml: ok, 0 roles'" _ "$check_output"

check "the packaged config listens on 127.0.0.1 only" grep -qx 'listen = "127.0.0.1:[0-9]*"' /etc/jead/jead.toml
check "the packaged config grants no role" \
	awk '/^\[grants\]/ { in_grants = 1; next } in_grants && !/^[[:space:]]*(#|$)/ { exit 1 }' /etc/jead/jead.toml
check "postinst created the jead system user" sh -c "id -u jead >/dev/null"
check "postinst created the host key, mode 0600" sh -c '[ "$(stat -c %a /etc/jead/ssh_host_ed25519_key)" = 600 ]'
check "postinst created the placeholder CA key" grep -q 'jead-placeholder-ca-replace-me' /etc/jead/user_ca.pub
check "tmpfiles created /etc/jead/roles" test -d /etc/jead/roles
check "tmpfiles created /var/log/jead/transcripts, mode 0700" \
	sh -c '[ "$(stat -c %a /var/log/jead/transcripts)" = 700 ]'
check "postinst enabled jead.service" test -L /etc/systemd/system/multi-user.target.wants/jead.service
check "jea-replay runs" sh -c 'timeout 10 /usr/bin/jea-replay --help >/dev/null'

# `jead check` does not open the host key, so serve the packaged config on
# a loopback port for a moment and compare the host key a client sees.
# Up to three ports are tried in case one is taken.
served=false
for attempt in 1 2 3; do
	port=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 10000))
	sed "s/^listen = .*/listen = \"127.0.0.1:$port\"/" /etc/jead/jead.toml >"$scratch/serve.toml"
	timeout 20 /usr/bin/jead serve --config "$scratch/serve.toml" 2>"$scratch/serve.log" &
	serve_pid=$!
	for wait in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
		if grep -q 'listening on' "$scratch/serve.log" || ! kill -0 "$serve_pid" 2>/dev/null; then
			break
		fi
		sleep 0.25
	done
	if grep -q 'listening on' "$scratch/serve.log"; then
		timeout 10 ssh-keyscan -t ed25519 -p "$port" 127.0.0.1 >"$scratch/keyscan" 2>/dev/null || true
		served=true
	fi
	kill "$serve_pid" 2>/dev/null || true
	wait "$serve_pid" 2>/dev/null || true
	if $served; then
		break
	fi
done
check "jead serve starts with the packaged config" $served
check "jead serve presents the packaged host key" \
	sh -c "[ -s '$scratch/keyscan' ] && [ \"\$(awk '{ print \$3 }' '$scratch/keyscan')\" = \"\$(awk '{ print \$2 }' /etc/jead/ssh_host_ed25519_key.pub)\" ]"
if ! $served; then
	cat "$scratch/serve.log" >&2
fi

# --- Purge ---------------------------------------------------------------------

if ! DEBIAN_FRONTEND=noninteractive timeout 300 apt-get purge -y -q -o DPkg::Lock::Timeout=120 jead \
	>"$scratch/purge.log" 2>&1; then
	echo "FAIL apt-get purge jead:" >&2
	cat "$scratch/purge.log" >&2
	exit 1
fi
installed=false
echo "ok   apt-get purge"
check "purge removed /usr/bin/jead" test ! -e /usr/bin/jead
check "purge removed /etc/jead" test ! -e /etc/jead
check "purge removed the enable symlink" test ! -e /etc/systemd/system/multi-user.target.wants/jead.service

if [ "$failures" -ne 0 ]; then
	echo "$failures packaging checks failed" >&2
	exit 1
fi
echo "all packaging checks passed"
