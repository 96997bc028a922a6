#!/usr/bin/env bash
# test.sh — tests for fetch.sh: mirror discovery on made-up apt directories (no network),
# then the real fetch of Ubuntu 18.04's headers (bionic) into kernel-headers/bionic, run
# twice (the second run must do nothing). A failed download is a failure, not a skip.
# Ends with a line "N passed, M failed"; exits non-zero when anything failed.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fetch=$here/fetch.sh
passed=0 failed=0
pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# mirror NAME EXPECTED: fetch.sh --mirror on $tmp/NAME prints EXPECTED, quietly, exit 0.
mirror() {
    local got err rc
    got=$(FETCH_APT_ETC=$tmp/$1 "$fetch" --mirror 2>"$tmp/err"); rc=$?
    err=$(cat "$tmp/err")
    if [ $rc -eq 0 ] && [ "$got" = "$2" ] && [ -z "$err" ]; then
        pass "mirror: $1 -> $2"
    else
        fail "mirror: $1" "exit $rc, printed '$got', stderr '$err', expected '$2'"
    fi
}

# deb822 only, as on Debian 12+ (no sources.list at all: the original bug).
d=$tmp/deb822/sources.list.d; mkdir -p "$d"
cat > "$d/debian.sources" <<'EOF'
Types: deb-src
URIs: http://src-only.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb
# URIs: http://commented.example/debian
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main

Types: deb deb-src
URIs: http://deb822.example/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
cat > "$d/other.sources.disabled" <<'EOF'
Types: deb
URIs: http://ignored.example/debian
Suites: bookworm
Components: main
EOF
mirror deb822 http://deb822.example/debian

# deb822 with a folded URIs field and several URIs.
d=$tmp/folded/sources.list.d; mkdir -p "$d"
cat > "$d/x.sources" <<'EOF'
Types: deb
URIs: https://nodesource.example/node_20.x
 https://folded.example/debian
Suites: bookworm
Components: main
EOF
mirror folded https://folded.example/debian

# one-line only, as on Debian 11 and before.
d=$tmp/oneline; mkdir -p "$d/sources.list.d"
cat > "$d/sources.list" <<'EOF'
# deb http://commented.example/debian bookworm main
deb-src http://src-only.example/debian bookworm main
deb http://security.example/debian-security bookworm-security main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://oneline.example/debian bookworm main
EOF
echo 'deb https://packages.example/apt cloud-sdk main' > "$d/sources.list.d/sdk.list"
mirror oneline http://oneline.example/debian

# one-line in sources.list.d/*.list only.
d=$tmp/listd/sources.list.d; mkdir -p "$d"
echo 'deb http://listd.example/debian bookworm main' > "$d/a.list"
mirror listd http://listd.example/debian

# both: sources.list comes first, as apt reads it.
d=$tmp/both; mkdir -p "$d/sources.list.d"
echo 'deb http://list.example/debian bookworm main' > "$d/sources.list"
printf 'Types: deb\nURIs: http://sources.example/debian\nSuites: bookworm\nComponents: main\n' \
    > "$d/sources.list.d/debian.sources"
mirror both http://list.example/debian

# both, the one-line files without a Debian mirror: the deb822 one is found.
d=$tmp/both2; mkdir -p "$d/sources.list.d"
echo 'deb http://security.example/debian-security bookworm-security main' > "$d/sources.list"
echo 'deb https://nodesource.example/node_20.x nodistro main' > "$d/sources.list.d/node.list"
printf 'Types: deb\nURIs: http://sources.example/debian\nSuites: bookworm\nComponents: main\n' \
    > "$d/sources.list.d/debian.sources"
mirror both2 http://sources.example/debian

# nothing usable: deb.debian.org.
mkdir -p "$tmp/empty"
mirror empty http://deb.debian.org/debian
mirror missing http://deb.debian.org/debian

# usage errors.
"$fetch" jessie >/dev/null 2>"$tmp/err"; rc=$?
if [ $rc -eq 2 ] && grep -q 'unknown release' "$tmp/err"; then pass "unknown release: exit 2"
else fail "unknown release" "exit $rc, stderr '$(cat "$tmp/err")'"; fi

# The real fetch (network unless already there), then a second run that must do nothing.
out=$here/bionic
t0=$(date +%s)
if "$fetch" bionic; then pass "fetch bionic ($(( $(date +%s) - t0 )) s)"
else fail "fetch bionic" "exit $?"; fi
before=$(stat -c %Y "$out/version" 2>/dev/null; readlink "$out/build" "$out/source" 2>/dev/null)
t0=$(date +%s%N)
second=$("$fetch" bionic 2>&1); rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
after=$(stat -c %Y "$out/version" 2>/dev/null; readlink "$out/build" "$out/source" 2>/dev/null)
if [ $rc -eq 0 ] && [ -z "$second" ] && [ "$before" = "$after" ] && [ $ms -lt 2000 ]; then
    pass "second fetch bionic is a no-op (${ms} ms)"
else
    fail "second fetch bionic" "exit $rc in ${ms} ms, printed '$second', tree changed: $([ "$before" = "$after" ] && echo no || echo yes)"
fi

has() { # has PATH...: each exists under $out (through the links)
    local p
    for p in "$@"; do
        if [ -e "$out/$p" ]; then pass "bionic: $p"; else fail "bionic: $p" "missing"; fi
    done
}
has build/include/generated/autoconf.h build/include/generated/uapi/linux/version.h \
    build/arch/x86/include/generated/asm build/arch/x86/include/generated/uapi \
    source/include/linux/kconfig.h source/include/uapi/linux/bpf.h \
    build/include/linux/bpf.h build/arch/x86/include/asm build/arch/x86/include/uapi
for p in build source; do
    case $(readlink "$out/$p") in
        ../.cache/*) pass "bionic: $p is a link inside kernel-headers/" ;;
        *) fail "bionic: $p" "links to '$(readlink "$out/$p")'" ;;
    esac
done
dangling=$(cd "$out" 2>/dev/null && find -L build/include build/arch/x86/include source/include \
           source/arch/x86/include -type l 2>/dev/null | head -5)
if [ -d "$out/build/include" ] && [ -z "$dangling" ]; then pass "bionic: no dangling links in include dirs"
else fail "bionic: dangling links" "${dangling:-no include dir}"; fi

ver=$(head -1 "$out/version" 2>/dev/null)
case $ver in
    4.15.*) pass "bionic: version $ver" ;;
    *) fail "bionic: version" "'$ver'" ;;
esac
code=$(cat "$out/version_code" 2>/dev/null)
if [[ $code =~ ^[0-9]+$ ]] && [ $((code >> 16)).$(((code >> 8) & 255)) = 4.15 ]; then
    pass "bionic: version_code $code"
else
    fail "bionic: version_code" "'$code'"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
