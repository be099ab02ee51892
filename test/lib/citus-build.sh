#!/usr/bin/env bash
# Builds Citus 13.2.2 from the vendored source once per machine and installs
# it into the PostgreSQL tree the tests use. Nothing is downloaded except the
# Debian build dependencies.
#
#   citus-build.sh          exit 0: citus is installed (in $TFORGE_DESTDIR, or
#                           the system tree when it is unset); exit 3: the
#                           build is impossible here (message on stderr)
#
# Environment:
#   TFORGE_DESTDIR       install with DESTDIR=... (a private PostgreSQL copy)
#   TFORGE_CITUS_CACHE   build directory (default /var/cache/tforge/citus-13.2.2),
#                        reused by every later run: the build is skipped when
#                        it holds a finished build
#   TFORGE_SHARED        the shared/ directory (default: ../shared beside the clone)
set -euo pipefail

VERSION=13.2.2
top=$(cd "$(dirname "$0")/../.." && pwd)
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
cache=${TFORGE_CITUS_CACHE:-/var/cache/tforge/citus-$VERSION}
impossible() { echo "citus-build: $*" >&2; exit 3; }

shared=${TFORGE_SHARED:-}
if [ -z "$shared" ]; then
	for d in "$top/../shared" "$top/../../shared"; do
		if [ -f "$d/vendor/citus/citus-$VERSION.tar.gz" ]; then shared=$d; break; fi
	done
fi
vendor=$shared/vendor/citus
tarball=$vendor/citus-$VERSION.tar.gz
[ -n "$shared" ] && [ -f "$tarball" ] || impossible "no citus-$VERSION.tar.gz in ../shared/vendor/citus"

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
mkdir -p "$(dirname "$cache")" 2>/dev/null || $SUDO mkdir -p "$(dirname "$cache")" ||
	impossible "cannot create $(dirname "$cache")"

# One build at a time per cache directory (several checkouts may ask at once).
exec 9>"$cache.lock"
flock 9

if [ ! -f "$cache/.built" ]; then
	deps="libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev libselinux1-dev libxslt1-dev libssl-dev libpam0g-dev libreadline-dev postgresql-server-dev-15 make gcc patch"
	missing=""
	for p in $deps; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		echo "citus-build: installing$missing" >&2
		apt="$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -qq"
		$apt update >/dev/null || impossible "apt-get update failed"
		$apt install -y --no-install-recommends $missing >/dev/null || impossible "cannot install$missing"
	fi
	echo "citus-build: building Citus $VERSION in $cache (once per machine)" >&2
	rm -rf "$cache"
	mkdir -p "$cache"
	tar -xzf "$tarball" -C "$cache" --strip-components=1
	[ -f "$cache/configure" ] || impossible "unexpected layout of $tarball"
	(cd "$cache" && patch -p1 -s <"$vendor/pg15.20-have_createdb_privilege.patch") ||
		impossible "the PostgreSQL 15.20 patch does not apply"
	(cd "$cache" && nice -n 19 ./configure -q PG_CONFIG=$PG_CONFIG >"$cache/configure.out" 2>&1) ||
		{ tail -20 "$cache/configure.out" >&2; impossible "configure failed"; }
	(cd "$cache" && nice -n 19 make -s -j2 >"$cache/make.out" 2>&1) ||
		{ tail -30 "$cache/make.out" >&2; impossible "make failed"; }
	touch "$cache/.built"
fi

# Install when the target tree lacks this build (make install is cheap).
pkglib=$($PG_CONFIG --pkglibdir)
target=${TFORGE_DESTDIR:-}$pkglib/citus.so
built=$cache/src/backend/distributed/citus.so
if ! cmp -s "$built" "$target"; then
	if [ -n "${TFORGE_DESTDIR:-}" ]; then
		(cd "$cache" && make -s install DESTDIR="$TFORGE_DESTDIR" >"$cache/install.out" 2>&1)
	else
		(cd "$cache" && $SUDO make -s install >"$cache/install.out" 2>&1)
	fi || { tail -20 "$cache/install.out" >&2; impossible "make install failed"; }
fi
exit 0
