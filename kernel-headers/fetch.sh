#!/usr/bin/env bash
# fetch.sh RELEASE — download a distribution's linux-headers for RELEASE into
# kernel-headers/RELEASE/, unpacked with dpkg-deb, never installed:
#
#   bookworm  Debian 12,    6.1   linux-headers-6.1.0-<abi>-amd64 + -common
#   bullseye  Debian 11,    5.10  linux-headers-5.10.0-<abi>-amd64 + -common
#   bionic    Ubuntu 18.04, 4.15  linux-headers-4.15.0-<abi>-generic + linux-headers-4.15.0-<abi>
#   focal     Ubuntu 20.04, 5.4   linux-headers-5.4.0-<abi>-generic + linux-headers-5.4.0-<abi>
#
# Result: kernel-headers/RELEASE/{build,source} (arch and common trees, relative links into
# kernel-headers/.cache), kernel-headers/RELEASE/version and version_code, usable as
# KERNEL_SOURCE=kernel-headers/RELEASE. `version` is Debian's UTS release (6.1.0-57-amd64)
# or Ubuntu's upstream version (4.15.18, from the headers' Makefile); `version_code` is
# LINUX_VERSION_CODE from include/generated/uapi/linux/version.h.
# Idempotent: a complete tree is left alone.
#
# Ubuntu's archive is reached on the host's Debian mirror, with /ubuntu in place of /debian.
# The mirror is the first .../debian URI of the host's apt sources (one-line sources.list
# and sources.list.d/*.list, deb822 sources.list.d/*.sources) under $FETCH_APT_ETC
# (default /etc/apt), else http://deb.debian.org/debian. `fetch.sh --mirror` prints it.
set -euo pipefail

usage="usage: fetch.sh bookworm|bullseye|bionic|focal, or fetch.sh --mirror"
apt_etc=${FETCH_APT_ETC:-/etc/apt}

# The URIs of apt's deb (not deb-src) entries under $apt_etc, in apt's reading order.
apt_uris() {
    local f
    for f in "$apt_etc/sources.list" "$apt_etc"/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        # deb [opt=val ...] URI suite components
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" { print $2 }'
    done
    for f in "$apt_etc"/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # Stanzas separated by blank lines; Types must include deb, Enabled: no skips one.
        awk 'BEGIN { RS = ""; FS = "\n" }
             {
                 types = ""; uris = ""; enabled = "yes"; key = ""
                 for (i = 1; i <= NF; i++) {
                     line = $i
                     if (line ~ /^[ \t]*#/) continue
                     if (line ~ /^[ \t]/) {           # a folded field goes on
                         if (key == "uris") uris = uris " " line
                         else if (key == "types") types = types " " line
                         continue
                     }
                     if (match(line, /^[A-Za-z-]+:/)) {
                         key = tolower(substr(line, 1, RLENGTH - 1))
                         val = substr(line, RLENGTH + 1)
                         if (key == "types") types = val
                         else if (key == "uris") uris = val
                         else if (key == "enabled") enabled = tolower(val)
                     }
                 }
                 gsub(/[ \t]/, "", enabled)
                 if (enabled == "no" || enabled == "false") next
                 if ((" " types " ") !~ /[ \t]deb[ \t]/) next
                 n = split(uris, u, /[ \t]+/)
                 for (j = 1; j <= n; j++) if (u[j] != "") print u[j]
             }' "$f"
    done
}

# The host's Debian archive mirror (a URI ending in /debian), or deb.debian.org's.
debian_mirror() {
    local m
    m=$(apt_uris | sed 's:/*$::' | grep -m1 -E '^[a-z+]+://.*/debian$' || true)
    echo "${m:-http://deb.debian.org/debian}"
}

release=${1:?$usage}
if [ "$release" = --mirror ]; then
    debian_mirror
    exit 0
fi

here=$(cd "$(dirname "$0")" && pwd)
cache=$here/.cache
out=$here/$release

case $release in
    bookworm) distro=debian series=6.1 ;;
    bullseye) distro=debian series=5.10 ;;
    bionic)   distro=ubuntu series=4.15 suites="bionic-updates bionic-security bionic" ;;
    focal)    distro=ubuntu series=5.4  suites="focal-updates focal" ;;
    *) echo "fetch.sh: unknown release '$release' ($usage)" >&2; exit 2 ;;
esac

if [ -f "$out/version" ] && [ -e "$out/build/include/generated/autoconf.h" ] &&
   [ -d "$out/build/arch/x86/include/generated" ] && [ -d "$out/source/include/linux" ]; then
    exit 0
fi

# apt for RELEASE without touching /etc/apt: the host's own configuration for the host's
# Debian release, a private one (own sources, lists and archives) otherwise.
host_release=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
apt_env=()
apt_update() {
    # trusted=yes: the archive keys are not needed, and apt's warnings about them are noise.
    local log
    log=$(mktemp)
    if ! "${apt_env[@]}" apt-get -qq update 2>"$log" >&2; then
        cat "$log" >&2; rm -f "$log"; return 1
    fi
    grep -v -e 'GPG error' -e NO_PUBKEY -e 'is not signed' "$log" >&2 || true
    rm -f "$log"
}
if [ "$distro" = ubuntu ] || [ "$release" != "$host_release" ]; then
    conf=$cache/apt-$release
    mirror=$(debian_mirror)
    mkdir -p "$conf/lists/partial" "$conf/archives/partial" "$conf/parts"
    if [ "$distro" = debian ]; then
        cat > "$conf/sources.list" <<SRC
deb [trusted=yes] $mirror $release main
deb [trusted=yes] ${mirror%/debian}/debian-security $release-security main
SRC
    else
        for suite in $suites; do
            echo "deb [trusted=yes arch=amd64] ${mirror%/debian}/ubuntu $suite main"
        done > "$conf/sources.list"
    fi
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
    updated=
    if ! ls "$conf/lists" | grep -q Packages; then
        apt_update; updated=1
    fi
else
    updated=
    if ! apt-cache show linux-headers-amd64 >/dev/null 2>&1; then
        apt-get -qq update >&2; updated=1
    fi
fi

# Arch headers packages for the series, newest first.
candidates() {
    if [ "$distro" = debian ]; then
        # linux-headers-amd64 -> linux-headers-<abi>-amd64 -> linux-headers-<abi>-common
        "${apt_env[@]}" apt-cache depends linux-headers-amd64 |
            sed -n "s/^ *Depends: \(linux-headers-$series\.[0-9]*-[0-9]*-amd64\)$/\1/p" | head -1
    else
        # linux-headers-<series>.0-<abi>-generic -> linux-headers-<series>.0-<abi>; the newest
        # ABI by number (focal-updates also has HWE kernels of other series: not these).
        "${apt_env[@]}" apt-cache pkgnames "linux-headers-$series.0-" |
            grep -E "^linux-headers-$series\.0-[0-9]+-generic$" |
            sort -t- -k4,4nr | head -4
    fi
}
common_of() {
    case $distro in
        debian) local abi=${1#linux-headers-}; echo "linux-headers-${abi%-amd64}-common" ;;
        ubuntu) echo "${1%-generic}" ;;
    esac
}

debs=$cache/debs
mkdir -p "$debs"
download() { # PKG: into $debs unless already there
    ls "$debs/${1}_"*.deb >/dev/null 2>&1 && return 0
    (cd "$debs" && "${apt_env[@]}" apt-get -qq -o APT::Sandbox::User=root \
        -o "Dir::Cache::archives=$debs" download "$1" >&2)
}
arch_pkg=
for attempt in 1 2; do
    tried=()
    for pkg in $(candidates); do
        tried+=("$pkg")
        if download "$pkg" && download "$(common_of "$pkg")"; then
            arch_pkg=$pkg; break 2
        fi
        echo "fetch.sh: $pkg (or its common package) did not download, trying an older one" >&2
    done
    # Stale lists name ABIs the mirror has dropped: refresh them once and try again.
    [ -z "$updated" ] || break
    if [ ${#apt_env[@]} -gt 0 ]; then apt_update; else apt-get -qq update >&2; fi
    updated=1
done
if [ -z "$arch_pkg" ]; then
    echo "fetch.sh: cannot get linux-headers-$series.* for $release from apt (tried: ${tried[*]:-none})" >&2
    exit 1
fi
common_pkg=$(common_of "$arch_pkg")

root=$cache/root-$release
rm -rf "$root" "$out"
mkdir -p "$root" "$out"
for pkg in "$arch_pkg" "$common_pkg"; do
    dpkg-deb -x "$debs/${pkg}_"*.deb "$root"
done
# Both trees sit side by side in $root/usr/src; Ubuntu's arch tree links into the common one
# with relative links (../linux-headers-<series>.0-<abi>/...), which resolve there too.
ln -s "../.cache/root-$release/usr/src/$arch_pkg" "$out/build"
ln -s "../.cache/root-$release/usr/src/$common_pkg" "$out/source"
for f in build/include/generated/autoconf.h build/arch/x86/include/generated source/include/linux; do
    if [ ! -e "$out/$f" ]; then
        echo "fetch.sh: $arch_pkg + $common_pkg unpacked without $f" >&2
        exit 1
    fi
done
code=$(sed -n 's/^#define LINUX_VERSION_CODE \([0-9]*\)$/\1/p' \
       "$out/build/include/generated/uapi/linux/version.h" 2>/dev/null || true)
if [ "$distro" = debian ]; then
    ver=$(sed -n 's/^#define UTS_RELEASE "\(.*\)"/\1/p' "$out/build/include/generated/utsrelease.h" 2>/dev/null || true)
    ver=${ver:-${arch_pkg#linux-headers-}}
else
    ver=$(awk -F' *= *' '$1 == "VERSION" { v = $2 } $1 == "PATCHLEVEL" { p = $2 }
                        $1 == "SUBLEVEL" { s = $2 }
                        END { if (v != "" && p != "") print v "." p "." (s == "" ? 0 : s) }' \
          "$out/source/Makefile" 2>/dev/null || true)
    if [ -z "$ver" ] && [ -n "$code" ]; then
        ver=$((code >> 16)).$(((code >> 8) & 255)).$((code & 255))
    fi
fi
if [ -z "$ver" ]; then
    echo "fetch.sh: no version found in $arch_pkg / $common_pkg" >&2
    exit 1
fi
echo "$ver" > "$out/version"
[ -z "$code" ] || echo "$code" > "$out/version_code"
echo "kernel-headers: $release -> $arch_pkg + $common_pkg in $out (version $ver${code:+, LINUX_VERSION_CODE $code})" >&2
