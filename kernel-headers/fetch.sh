#!/usr/bin/env bash
# fetch.sh RELEASE — download Debian's linux-headers for RELEASE (bookworm: 6.1, bullseye: 5.10)
# into kernel-headers/RELEASE/, unpacked with dpkg-deb, never installed.
#
# Result: kernel-headers/RELEASE/{build,source} (arch and common trees) and
# kernel-headers/RELEASE/version, usable as KERNEL_SOURCE=kernel-headers/RELEASE.
# Idempotent: a complete tree is left alone.
set -euo pipefail

release=${1:?usage: fetch.sh bookworm|bullseye}
here=$(cd "$(dirname "$0")" && pwd)
cache=$here/.cache
out=$here/$release

case $release in
    bookworm) series=6.1 ;;
    bullseye) series=5.10 ;;
    *) echo "fetch.sh: unknown release '$release' (expected bookworm or bullseye)" >&2; exit 2 ;;
esac

if [ -f "$out/version" ] && [ -e "$out/build/include/generated/autoconf.h" ] && [ -d "$out/source/include/linux" ]; then
    exit 0
fi

# apt for RELEASE without touching /etc/apt: the host's own configuration for the host's
# release, a private one (own sources, lists and archives) otherwise.
host_release=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
apt_env=()
if [ "$release" != "$host_release" ]; then
    conf=$cache/apt-$release
    mirror=$( (sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null;
               awk '$1=="deb"{print $2}' /etc/apt/sources.list 2>/dev/null) |
             grep -v -e security -e nodesource -e google | head -1)
    mirror=${mirror:-http://deb.debian.org/debian}
    mkdir -p "$conf/lists/partial" "$conf/archives/partial" "$conf/parts"
    cat > "$conf/sources.list" <<SRC
deb [trusted=yes] $mirror $release main
deb [trusted=yes] ${mirror%/debian}/debian-security $release-security main
SRC
    cat > "$conf/apt.conf" <<CONF
Dir::Etc::parts "$conf/parts";
Dir::Etc::sourcelist "$conf/sources.list";
Dir::Etc::sourceparts "-";
Dir::State::Lists "$conf/lists";
Dir::State::status "$conf/status";
Dir::Cache::archives "$conf/archives";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
CONF
    touch "$conf/status"
    apt_env=(env "APT_CONFIG=$conf/apt.conf")
    if ! ls "$conf/lists" | grep -q Packages; then
        "${apt_env[@]}" apt-get -qq update >&2
    fi
elif ! apt-cache show linux-headers-amd64 >/dev/null 2>&1; then
    apt-get -qq update >&2
fi

# linux-headers-amd64 -> linux-headers-<abi>-amd64 -> linux-headers-<abi>-common
arch_pkg=$("${apt_env[@]}" apt-cache depends linux-headers-amd64 |
           sed -n "s/^ *Depends: \(linux-headers-$series\.[0-9]*-[0-9]*-amd64\)$/\1/p" | head -1)
if [ -z "$arch_pkg" ]; then
    echo "fetch.sh: cannot resolve linux-headers-$series.*-amd64 for $release from apt" >&2
    exit 1
fi
abi=${arch_pkg#linux-headers-}; abi=${abi%-amd64}
common_pkg=linux-headers-$abi-common

debs=$cache/debs
mkdir -p "$debs"
for pkg in "$arch_pkg" "$common_pkg"; do
    if ! ls "$debs/${pkg}_"*.deb >/dev/null 2>&1; then
        (cd "$debs" && "${apt_env[@]}" apt-get -qq -o APT::Sandbox::User=root -o "Dir::Cache::archives=$debs" download "$pkg" >&2)
    fi
done

root=$cache/root-$release
rm -rf "$root" "$out"
mkdir -p "$root" "$out"
for pkg in "$arch_pkg" "$common_pkg"; do
    dpkg-deb -x "$debs/${pkg}_"*.deb "$root"
done
ln -s "../.cache/root-$release/usr/src/linux-headers-$abi-amd64" "$out/build"
ln -s "../.cache/root-$release/usr/src/linux-headers-$abi-common" "$out/source"
ver=$(sed -n 's/^#define UTS_RELEASE "\(.*\)"/\1/p' "$out/build/include/generated/utsrelease.h" 2>/dev/null || true)
echo "${ver:-$abi-amd64}" > "$out/version"
echo "kernel-headers: $release -> $arch_pkg + $common_pkg in $out" >&2
