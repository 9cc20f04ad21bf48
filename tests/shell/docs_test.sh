#!/usr/bin/env bash
# The documents (README.md, CHANGELOG.md, docs/*.md) stay true to what is
# there:
#  - every relative link resolves, to a file and to a heading in it, and
#    stays inside those documents (the package installs them together, so a
#    link to a source file would break there);
#  - the README reads in the order a newcomer needs it, stays under 450
#    lines, shows the two commands with their port and data dir and a put
#    and a get on its first screen, maps every page of docs/, and names
#    every man page;
#  - no document names a file a user does not have (the project's SPEC);
#  - every `kvctl SUBCOMMAND --flag` in a shell example is one the binary
#    declares (from `kvctl completion json`).
# Usage: docs_test.sh KVCTL_BINARY SOURCE_DIR
set -euo pipefail
kvctl=$(realpath "$1")
src=$2
source "$(dirname "$0")/lib.sh"
require_tools jq perl

cd "$src"
docs=(README.md CHANGELOG.md docs/*.md)

# ---- links: "FILE<TAB>TARGET" for every [text](target) outside code.
links=$(perl -ne '
  $code = !$code if /^\s*```/;
  next if $code;
  s/`[^`]*`//g;
  while (/\]\(([^)\s]+)\)/g) { print "$ARGV\t$1\n" }
' "${docs[@]}")
# The anchors of a Markdown file, as GitHub makes them from its headings.
anchors() {
  perl -ne '
    $code = !$code if /^\s*```/;
    next if $code || !/^#+\s+(.*?)\s*$/;
    $s = lc $1; $s =~ s/[^\w\- ]//g; $s =~ s/ /-/g;
    print $seen{$s}++ ? "$s-" . ($seen{$s} - 1) . "\n" : "$s\n";
  ' "$1"
}
while IFS=$'\t' read -r file target; do
  [ -n "$file" ] || continue
  case "$target" in http://* | https://* | mailto:*) continue ;; esac
  check
  path=${target%%#*}
  anchor=""
  [[ "$target" == *#* ]] && anchor=${target#*#}
  if [ -z "$path" ]; then
    resolved=$file
  else
    resolved=$(realpath -m --relative-to=. "$(dirname "$file")/$path")
  fi
  if [ ! -f "$resolved" ]; then
    fail "$file links to $target, which does not exist"
    continue
  fi
  case "$resolved" in
    README.md | CHANGELOG.md | docs/*.md) ;;
    *) fail "$file links to $target: link only to README.md, CHANGELOG.md and docs/ (they are installed together); name other files as \`code\`" ;;
  esac
  if [ -n "$anchor" ] && ! anchors "$resolved" | grep -qxF -- "$anchor"; then
    fail "$file links to $target, but $resolved has no heading #$anchor"
  fi
done <<< "$links"

# ---- what no document may name
for file in "${docs[@]}"; do
  check
  if grep -nE 'SPEC\.md|\.\./shared|SPEC §' "$file"; then
    fail "$file names the project's SPEC, which a user does not have"
  fi
done

# ---- the README as a front door
lines=$(wc -l < README.md)
check
[ "$lines" -le 450 ] || fail "README.md has $lines lines; keep it under 450 and move the rest to docs/"
first_screen=$(head -40 README.md)
for want in scripts/run.sh scripts/test.sh 127.0.0.1:7070 ./kvctl-data "kvctl put" "kvctl get" "Debian package"; do
  check
  grep -qF -- "$want" <<< "$first_screen" || fail "the README's first screen (40 lines) does not show $want"
done
# Its sections in the order a newcomer needs them.
order=("Get it" "tour" "Command line" "Configuration" "HTTP API" "Durability" "Security" "service"
       "Observability" "PostgreSQL")
headings=$(grep -n '^## ' README.md)
last=0
for section in "${order[@]}"; do
  check
  at=$(grep -iF -- "$section" <<< "$headings" | head -1 | cut -d: -f1)
  if [ -z "$at" ]; then
    fail "README.md has no section about \"$section\""
  elif [ "$at" -le "$last" ]; then
    fail "README.md: the section about \"$section\" (line $at) comes before the one above it in the order"
  else
    last=$at
  fi
done
for page in docs/*.md; do
  check
  grep -qF "($page" README.md || fail "README.md does not link to $page"
done
for page in man/*.[1-8]; do
  name=$(basename "$page")
  ref="${name%.*}(${name##*.})"
  check
  grep -qF -- "$ref" README.md || fail "README.md does not name the man page $ref"
done
# Every man page a document names exists.
while IFS=$'\t' read -r file ref; do
  [ -n "$file" ] || continue
  check
  page=${ref%(*}
  section=${ref##*(}
  section=${section%)}
  [ -f "man/$page.$section" ] || fail "$file names the man page $ref, but there is no man/$page.$section"
done < <(perl -ne 'while (/\b(kvctl(?:[-.][a-z]+)*\([1-8]\))/g) { print "$ARGV\t$1\n" }' "${docs[@]}" | sort -u)

# ---- flags in the shell examples exist
tree=$("$kvctl" completion json)
declare -A known
while read -r sub name; do known["$sub $name"]=1; done < <(jq -r '
  (.options[].names[]) as $root | .subcommands[].name | "\(.) \($root)"' <<< "$tree")
while read -r sub name; do known["$sub $name"]=1; done < <(jq -r '
  .subcommands[] | .name as $sub | .. | objects | select(has("options")) | .options[].names[] | "\($sub) \(.)"' <<< "$tree")
declare -A subcommands
while read -r sub; do subcommands[$sub]=1; done < <(jq -r '.subcommands[].name' <<< "$tree")
# "FILE<TAB>SUBCOMMAND<TAB>--flag ..." for each `kvctl SUB ...` in a sh block.
uses=$(perl -ne '
  if (/^\s*```(\w*)/) { $code = !$code; $sh = $1 eq "sh"; next }
  next unless $code && $sh;
  # kvctl where a command starts: at the line start, after ; & | or $(,
  # maybe after VAR=value assignments.
  while (/(?:^|[;&|(])\s*(?:[A-Z_][A-Z0-9_]*=(?:\$\([^)]*\)|\S)*\s+)*kvctl\s+([a-z][a-z-]*)([^#|;&<>)]*)/g) {
    my ($sub, $rest) = ($1, $2);
    my @flags = $rest =~ /(?:^|\s)(--[a-z0-9][a-z0-9-]*)/g;
    print "$ARGV\t$sub\t@flags\n";
  }
' "${docs[@]}")
while IFS=$'\t' read -r file sub flags; do
  [ -n "$file" ] || continue
  check
  if [ -z "${subcommands[$sub]:-}" ]; then
    fail "$file runs kvctl $sub, which is not a kvctl command"
    continue
  fi
  for flag in $flags; do
    check
    [ -n "${known["$sub $flag"]:-}" ] || fail "$file: kvctl $sub has no flag $flag"
  done
done <<< "$uses"

finish docs
