#!/usr/bin/env zsh
# Usage: zsh -f zsh_capture.zsh FPATH_DIR 'kvctl co'
# Prints, one per line, the candidates zsh's completion system (compinit,
# with _kvctl autoloaded from FPATH_DIR) offers for the line after a TAB.
# It runs an interactive zsh in a pseudo-terminal (zpty), types the line and
# a TAB, and records every match through a wrapper around compadd; the inner
# shell exits after that one completion.
zmodload zsh/zpty
dir=$1 line=$2
init=$(mktemp)
cat > $init <<INIT
PROMPT= RPROMPT=
unsetopt zle_bracketed_paste 2>/dev/null
fpath=($dir \$fpath)
autoload -U compinit && compinit -u -D
zstyle ':completion:*' list-grouped false
zstyle ':completion:*' insert-tab false
bindkey '^I' complete-word
comppostfuncs=(exit)
compadd() {
  # Calls that only collect matches (-O, -A, -D) are the completion system's own.
  if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "\$@"; return \$?; fi
  typeset -a __hits
  builtin compadd -A __hits "\$@"
  # Starts on a fresh line: ZLE leaves the cursor after the typed text.
  (( \$#__hits )) && print -rl -- "" "KVCTL_CANDIDATE:"\${^__hits}
  # Add them for real too, or the completion system, seeing no matches,
  # would go on to its fallbacks (all files, say) and we would record those.
  builtin compadd "\$@"
}
echo init-done
INIT
zpty z zsh -f -i
zpty -w z "source $init"
local out
repeat 200; do
  zpty -r -t z out 2>/dev/null && [[ $out == *init-done* ]] && break
  sleep 0.05
done
zpty -w -n z "$line"$'\t'
while zpty -r z out; do print -rn -- $out; done | tr -d '\r' | grep -ao 'KVCTL_CANDIDATE:[^[:space:]]*' |
  sed 's/^KVCTL_CANDIDATE://' | sort -u
zpty -d z
rm -f $init
