#!/usr/bin/env bash
# The Debian package, as a new user meets it: cpack builds the .deb from the
# build tree; its control data names the right dependencies and maintainer
# scripts; `dpkg -x` unpacks it into a temporary root, where every file is
# in Debian's place, the man pages render, the completions are the binary's
# own, and the installed binary runs `version`, `--help`, and `serve` (on a
# free loopback port) that answers /healthz and /readyz and serves put/get.
# Usage: package_test.sh KVCTL_BINARY SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$(readlink -f "$2")
build=$3
source "$(dirname "$0")/lib.sh"
require_tools cpack dpkg-deb dpkg-shlibdeps objdump man jq
make_tmp

# ---- build it
if ! cpack --config "$build/CPackConfig.cmake" -B "$tmp/pkg" > "$tmp/cpack.log" 2>&1; then
  cat "$tmp/cpack.log"
  echo "FAIL: cpack could not build the package"
  exit 1
fi
debs=("$tmp"/pkg/kvctl_*.deb)
[ -f "${debs[0]}" ] || { echo "FAIL: cpack made no kvctl_*.deb"; ls "$tmp/pkg"; exit 1; }
deb=${debs[0]}
echo "built $(basename "$deb") ($(stat -c %s "$deb") bytes)"

# ---- control data
version=$(dpkg-deb -f "$deb" Version)
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
check
[ "$(dpkg-deb -f "$deb" Package)" = kvctl ] || fail "Package is not kvctl"
check
[ "$(dpkg-deb -f "$deb" Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture is not this machine's"
check
[ -n "$(dpkg-deb -f "$deb" Maintainer)" ] || fail "no Maintainer"
check
[ -n "$(dpkg-deb -f "$deb" Description)" ] || fail "no Description"
# Every shared library the binary loads comes from a package in Depends.
depends_names=$(sed 's/ ([^)]*)//g; s/, */\n/g' <<< "$depends")
while read -r soname; do
  check
  # awk reads to the end: exiting early would SIGPIPE ldconfig, which
  # pipefail and set -e turn into a silent exit of this test.
  path=$(ldconfig -p | awk -v so="$soname" '$1 == so && !found {print $NF; found = 1}')
  # dpkg knows a library by the path its package ships, which on a
  # merged-/usr system may be the /lib or the /usr/lib spelling.
  pkg=""
  for candidate in "$path" "$(readlink -f "$path")" "/usr$path" "${path#/usr}"; do
    pkg=$(dpkg -S "$candidate" 2> /dev/null | head -1 | cut -d: -f1) && [ -n "$pkg" ] && break
  done
  [ -n "$pkg" ] || { fail "cannot tell which package ships $soname ($path)"; continue; }
  grep -qxF "$pkg" <<< "$depends_names" || fail "Depends lacks $pkg (for $soname)"
done < <(objdump -p "$1" | awk '$1 == "NEEDED" {print $2}')
check
grep -qxF adduser <<< "$depends_names" || fail "Depends lacks adduser (the postinst runs it)"
dpkg-deb -e "$deb" "$tmp/control"
for script in postinst prerm postrm; do
  check
  [ -x "$tmp/control/$script" ] || fail "the package has no executable $script"
done
check
grep -qxF /etc/kvctl/config.toml "$tmp/control/conffiles" || fail "/etc/kvctl/config.toml is not a conffile"

# ---- where the files go
dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's|^\./|/|' > "$tmp/files"
expected=(
  /usr/bin/kvctl
  /usr/share/bash-completion/completions/kvctl
  /usr/share/zsh/vendor-completions/_kvctl
  /usr/share/fish/vendor_completions.d/kvctl.fish
  /lib/systemd/system/kvctl.service
  /etc/kvctl/config.toml
  /usr/share/doc/kvctl/README.md
  /usr/share/doc/kvctl/examples/config.toml
  /usr/share/doc/kvctl/examples/kvctl-compact
)
for page in "$src"/man/*.[1-8]; do
  name=$(basename "$page")
  expected+=("/usr/share/man/man${name##*.}/$name.gz")
done
# The README links to the changelog and to docs/: they come with it.
expected+=(/usr/share/doc/kvctl/CHANGELOG.md)
for page in "$src"/docs/*.md; do
  expected+=("/usr/share/doc/kvctl/docs/$(basename "$page")")
done
for path in "${expected[@]}"; do
  check
  grep -qxF "$path" "$tmp/files" || fail "the package does not install $path"
done

# ---- unpacked into a temporary root
root=$tmp/root
dpkg -x "$deb" "$root"
kvctl=$root/usr/bin/kvctl
check
first=$("$kvctl" version | head -1)
[ "$first" = "kvctl $version" ] || fail "installed kvctl version says \"$first\", the package is $version"
check
"$kvctl" version | grep -q '^commit: ' || fail "kvctl version prints no commit line"
check
help=$("$kvctl" --help) || fail "installed kvctl --help failed"
grep -q '^Server:' <<< "$help" || fail "kvctl --help does not group subcommands"
for gz in "$root"/usr/share/man/man*/*.gz; do
  check
  out=$(MANWIDTH=80 man --warnings -l "$gz" 2>&1 > /dev/null)
  [ -z "$out" ] || fail "installed $(basename "$gz") renders with warnings: $out"
done
declare -A completion_files=(
  [bash]=/usr/share/bash-completion/completions/kvctl
  [zsh]=/usr/share/zsh/vendor-completions/_kvctl
  [fish]=/usr/share/fish/vendor_completions.d/kvctl.fish
)
for shell in bash zsh fish; do
  check
  cmp -s <("$kvctl" completion "$shell") "$root${completion_files[$shell]}" ||
    fail "installed ${completion_files[$shell]} is not what the installed kvctl prints"
done

# ---- the installed binary serves
: > "$tmp/empty.toml"
mkdir "$tmp/work"
cd "$tmp/work"
check
start_server "$tmp/serve.log" env -i PATH=/usr/bin:/bin HOME="$tmp" \
  "$kvctl" serve --config "$tmp/empty.toml" --listen 127.0.0.1:0 --data-dir "$tmp/data" ||
  fail "the installed kvctl serve did not start"
if [ -n "$SERVER_PORT" ]; then
  check
  [ "$(http_status "$SERVER_PORT" /healthz)" = 200 ] || fail "GET /healthz did not answer 200"
  check
  wait_ready "$SERVER_PORT" || fail "the server never became ready"
  check
  printf 'from the package' | "$kvctl" put --config "$tmp/empty.toml" --addr "127.0.0.1:$SERVER_PORT" pkg/key ||
    fail "installed kvctl put failed"
  check
  got=$("$kvctl" get --config "$tmp/empty.toml" --addr "127.0.0.1:$SERVER_PORT" pkg/key) || true
  [ "$got" = "from the package" ] || fail "installed kvctl get returned \"$got\""
  check
  code=0
  stop_server || code=$?
  [ "$code" -eq 0 ] || { fail "kvctl serve exited $code on SIGTERM"; cat "$tmp/serve.log"; }
fi

finish package
