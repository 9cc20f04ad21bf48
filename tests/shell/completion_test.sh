#!/usr/bin/env bash
# Shell completion, in real shells (bash, zsh, fish):
#  - completions/ holds exactly what `kvctl completion SHELL` prints;
#  - every subcommand (at every level) is offered, and `kvctl co` offers
#    completion (and compact, once it exists);
#  - every option of every subcommand is offered after "--";
#  - value choices (--backend, -o, --fsync, ...) and file/directory values
#    are completed.
# What "every" means comes from `kvctl completion json`, the tree the binary
# declares, so a new subcommand or flag is covered without editing this test.
# Usage: completion_test.sh KVCTL_BINARY SOURCE_DIR
set -euo pipefail
kvctl=$1
src=$2
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
require_tools jq zsh fish
make_tmp

# ---- the checked-in scripts are the binary's output
declare -A files=([bash]=completions/kvctl.bash [zsh]=completions/_kvctl [fish]=completions/kvctl.fish)
for shell in bash zsh fish; do
  check
  "$kvctl" completion "$shell" > "$tmp/generated.$shell"
  if ! diff -u "$src/${files[$shell]}" "$tmp/generated.$shell" > "$tmp/diff"; then
    fail "${files[$shell]} differs from \`kvctl completion $shell\`; run scripts/gen-completions.sh"
    head -40 "$tmp/diff"
  fi
done
mkdir -p "$tmp/zfunc"
cp "$tmp/generated.zsh" "$tmp/zfunc/_kvctl"

# ---- one completion in each shell: prints the candidates, one per line
complete_bash() {
  bash --norc --noprofile -c '
    source "$1"
    line=$2
    read -ra COMP_WORDS <<< "$line"
    [[ $line == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMP_LINE=$line; COMP_POINT=${#line}
    _kvctl
    printf "%s\n" "${COMPREPLY[@]}"' _ "$tmp/generated.bash" "$1" | sed '/^$/d' | sort -u
}
complete_zsh() { timeout 30 zsh -f "$here/zsh_capture.zsh" "$tmp/zfunc" "$1"; }
complete_fish() {
  timeout 30 fish --no-config -c 'source $argv[1]; complete --do-complete=$argv[2]' "$tmp/generated.fish" "$1" |
    cut -f1 | sort -u
}

# candidates SHELL LINE: what SHELL offers for LINE, run in $tmp/cwd,
# directories without their trailing slash.
candidates() { (cd "$tmp/cwd" && "complete_$1" "$2" | sed "s:/\$::"); }

# expect SHELL LINE WORD...: each WORD is among the candidates for LINE
expect() {
  local shell=$1 line=$2
  shift 2
  check
  local got
  got=$(candidates "$shell" "$line")
  local missing=()
  for word in "$@"; do
    grep -qxF -- "$word" <<< "$got" || missing+=("$word")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    fail "$shell: completing '$line' does not offer: ${missing[*]} (offered: $(tr '\n' ' ' <<< "$got"))"
  fi
}
# refuse SHELL LINE WORD...: no WORD is among the candidates
refuse() {
  local shell=$1 line=$2
  shift 2
  check
  local got
  got=$(candidates "$shell" "$line")
  for word in "$@"; do
    grep -qxF -- "$word" <<< "$got" && fail "$shell: completing '$line' offers $word"
  done
  return 0
}

mkdir -p "$tmp/cwd/some-dir"
touch "$tmp/cwd/some-file.toml"
tree=$("$kvctl" completion json)
# Every command path below the root: "serve", "config show", ...
mapfile -t paths < <(jq -r 'def walk_paths(p): .subcommands[] | (p + [.name]) as $q | ($q | join(" ")), walk_paths($q); walk_paths([])' <<< "$tree")
mapfile -t top < <(jq -r '.subcommands[].name' <<< "$tree")
[ ${#paths[@]} -ge 7 ] || fail "completion json lists only ${#paths[@]} commands"

for shell in bash zsh fish; do
  mapfile -t co < <(printf '%s\n' "${top[@]}" | grep '^co')
  expect "$shell" "kvctl co" completion "${co[@]}"
  refuse "$shell" "kvctl co" serve put
  expect "$shell" "kvctl " "${top[@]}"
  for path in "${paths[@]}"; do
    # This command's own subcommands, and every long option.
    filter=".subcommands[]"
    for name in $path; do filter+=" | select(.name == \"$name\")"; done
    mapfile -t subs < <(jq -r "$filter | .subcommands[].name" <<< "$tree")
    [ ${#subs[@]} -gt 0 ] && expect "$shell" "kvctl $path " "${subs[@]}"
    mapfile -t longs < <(jq -r "$filter | .options[].names[] | select(startswith(\"--\"))" <<< "$tree")
    expect "$shell" "kvctl $path --" "${longs[@]}"
    # Value choices: all of them in bash and fish; zsh (a pty per line) checks a few below.
    if [ "$shell" != zsh ]; then
      while IFS=$'\t' read -r opt words; do
        # shellcheck disable=SC2086
        expect "$shell" "kvctl $path $opt " $words
      done < <(jq -r "$filter | .options[] | select(.value.kind == \"words\") | [.names[-1], (.value.words | join(\" \"))] | @tsv" <<< "$tree")
    fi
  done
  expect "$shell" "kvctl get -o " text json
  expect "$shell" "kvctl serve --fsync " always interval never
  expect "$shell" "kvctl serve --backend " file
  expect "$shell" "kvctl completion " bash zsh fish
  expect "$shell" "kvctl --config some-" some-file.toml
  expect "$shell" "kvctl serve --data-dir some-" some-dir
  refuse "$shell" "kvctl serve --data-dir some-" some-file.toml
done

finish completion
