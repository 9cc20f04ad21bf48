#!/usr/bin/env bash
# The man pages: each renders without a warning (mandoc -T lint, man -l
# through groff), and each stays true to the binary:
#  - every top-level subcommand has kvctl-SUB(1), and kvctl(1) points to it;
#  - a subcommand's page documents every flag it (and each of its own
#    subcommands) declares, and names those subcommands;
#  - kvctl.toml(5) has an entry for every setting, with its environment
#    variable, its flags and its default.
# What the binary declares comes from `kvctl completion json` and
# `kvctl config show -o json`, so new subcommands, flags and settings are
# checked without editing this test.
# Usage: man_test.sh KVCTL_BINARY SOURCE_DIR
set -euo pipefail
kvctl=$1
man_dir=$2/man
source "$(dirname "$0")/lib.sh"
require_tools jq mandoc man
# How a literal appears in roff source: '-' written as '\-' (so it renders
# as a hyphen-minus, and a copied flag works).
roff() { sed 's/\\/\\e/g; s/-/\\-/g' <<< "$1"; }
has() { grep -qF -- "$(roff "$2")" "$1"; }

shopt -s nullglob
pages=("$man_dir"/*.[1-8])
[ ${#pages[@]} -ge 2 ] || fail "no man pages in $man_dir"
for page in "${pages[@]}"; do
  check
  check
  lint=$(mandoc -T lint "$page" 2>&1) || true
  [ -z "$lint" ] || fail "mandoc -T lint $(basename "$page"):"$'\n'"$lint"
  rendered=$(MANWIDTH=80 man --warnings -l "$page" 2> /tmp/man-test-stderr.$$) || fail "man -l $(basename "$page") failed"
  warnings=$(cat /tmp/man-test-stderr.$$)
  rm -f /tmp/man-test-stderr.$$
  [ -z "$warnings" ] || fail "man --warnings -l $(basename "$page"):"$'\n'"$warnings"
  [ "$(wc -l <<< "$rendered")" -gt 10 ] || fail "man -l $(basename "$page") rendered almost nothing"
done

tree=$("$kvctl" completion json)
main_page=$man_dir/kvctl.1
[ -f "$main_page" ] || fail "man/kvctl.1 is missing"
# kvctl(1): the global options.
while read -r name; do
  check
  has "$main_page" "$name" || fail "kvctl.1 does not document $name"
done < <(jq -r '.options[].names[]' <<< "$tree")

while read -r sub; do
  page=$man_dir/kvctl-$sub.1
  check
  if [ ! -f "$page" ]; then
    fail "kvctl $sub has no man page: write man/kvctl-$sub.1"
    continue
  fi
  has "$main_page" "kvctl-$sub" || fail "kvctl.1 does not point to kvctl-$sub(1)"
  # Every flag of this subcommand and of its subcommands, at any depth.
  while read -r name; do
    check
    has "$page" "$name" || fail "kvctl-$sub.1 does not document $name (declared by kvctl $sub)"
  done < <(jq -r --arg sub "$sub" '.subcommands[] | select(.name == $sub) | .. | objects | select(has("options")) | .options[].names[]' <<< "$tree" | sort -u)
  while read -r nested; do
    check
    has "$page" "$sub $nested" || fail "kvctl-$sub.1 does not mention \"kvctl $sub $nested\""
  done < <(jq -r --arg sub "$sub" '.subcommands[] | select(.name == $sub) | .subcommands[].name' <<< "$tree")
done < <(jq -r '.subcommands[].name' <<< "$tree")

# kvctl.toml(5): one entry per setting, from ".TP" ".B key" to the next entry.
toml_page=$man_dir/kvctl.toml.5
settings=$(env -i HOME=/nonexistent "$kvctl" config show -o json)
# Fields are split at \x1f, not at tabs: IFS whitespace would run an empty
# default (tls.cert has none) into the next field.
while IFS=$'\x1f' read -r key env default flags; do
  check
  entry=$(awk -v key=".B $key" 'prev == ".TP" && $0 == key {on = 1; next} on && /^\.(TP|SS|SH)/ {exit} on; {prev = $0}' "$toml_page")
  if [ -z "$entry" ]; then
    fail "kvctl.toml.5 has no entry \".B $key\""
    continue
  fi
  for want in "$env" "$default" $flags; do
    grep -qF -- "$(roff "$want")" <<< "$entry" || fail "kvctl.toml.5: the entry for $key does not show $want"
  done
done < <(jq -r '.settings[] | [.key, (.env // ""), .default, (.flags | join(" "))] | join("\u001f")' <<< "$settings")

finish man
