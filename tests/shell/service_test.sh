#!/usr/bin/env bash
# The service files:
#  - packaging/systemd/kvctl.service passes `systemd-analyze verify` and
#    `systemd-analyze security` (exposure at most 2.0 of 10), and runs as a
#    dedicated user with its StateDirectory and the hardening we rely on;
#  - its ExecStart command line, run as written with the packaged
#    /etc/kvctl/config.toml (paths moved into a temp dir, as systemd's
#    StateDirectory would provide), starts a server that becomes ready,
#    serves, and exits 0 on SIGTERM as `systemctl stop` sends it;
#  - the packaged config keeps the data where the unit's StateDirectory is;
#  - the cron example is a valid /etc/cron.d line running a declared
#    subcommand with declared flags;
#  - the Kubernetes manifests pass yamllint, and the Dockerfile and the
#    file-backend manifest set only KVCTL_* variables kvctl knows;
#  - the maintainer scripts pass sh -n and shellcheck.
# Usage: service_test.sh KVCTL_BINARY SOURCE_DIR
set -euo pipefail
kvctl=$(readlink -f "$1")
src=$(readlink -f "$2")
source "$(dirname "$0")/lib.sh"
require_tools systemd-analyze yamllint shellcheck jq
make_tmp
unit=$src/packaging/systemd/kvctl.service
config=$src/packaging/config.toml
value() { sed -n "s/^$1=//p" "$unit" | tail -1; }

# ---- the unit, checked by systemd itself (offline, in a root that has the binary)
mkdir -p "$tmp/root/usr/bin" "$tmp/root/bin" "$tmp/root/lib/systemd/system"
cp "$kvctl" "$tmp/root/usr/bin/kvctl"
cp /bin/kill "$tmp/root/bin/kill"  # ExecReload's; every system has it
cp "$unit" "$tmp/root/lib/systemd/system/"
check
if ! out=$(systemd-analyze verify --man=no --recursive-errors=no --root="$tmp/root" kvctl.service 2>&1) || [ -n "$out" ]; then
  fail "systemd-analyze verify kvctl.service: $out"
fi
check
if ! out=$(systemd-analyze security --offline=yes --threshold=20 --root="$tmp/root" kvctl.service 2>&1); then
  fail "systemd-analyze security: exposure above 2.0:"$'\n'"$(tail -3 <<< "$out")"
fi
for setting in Type=simple User=kvctl Group=kvctl StateDirectory=kvctl NoNewPrivileges=yes \
  ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes Restart=on-failure \
  'RestartPreventExitStatus=2 5' 'ExecReload=/bin/kill -HUP $MAINPID'; do
  check
  grep -qx "$setting" "$unit" || fail "kvctl.service lacks $setting"
done

# ---- the packaged config keeps the data in the unit's StateDirectory
check
data_dir=$("$kvctl" config show --config "$config" -o json | jq -r '.settings[] | select(.key == "storage.data_dir") | .value')
[ "$data_dir" = "/var/lib/$(value StateDirectory)" ] ||
  fail "config.toml's data_dir is $data_dir, the unit's StateDirectory is /var/lib/$(value StateDirectory)"
check
grep -q -- "--config /etc/kvctl/config.toml" <<< "$(value ExecStart)" || fail "ExecStart does not read /etc/kvctl/config.toml"

# ---- ExecStart as written, with the paths moved into $tmp
state=$tmp/var/lib/kvctl
mkdir -p "$state" "$tmp/etc/kvctl"
sed -e "s|^data_dir = .*|data_dir = \"$state\"|" -e 's|^listen = .*|listen = "127.0.0.1:0"|' \
  "$config" > "$tmp/etc/kvctl/config.toml"
check
cmp -s <(grep -v -e '^data_dir' -e '^listen' "$config") <(grep -v -e '^data_dir' -e '^listen' "$tmp/etc/kvctl/config.toml") ||
  fail "moving the config's paths changed more than data_dir and listen"
exec_start=$(value ExecStart)
exec_start=${exec_start//\/usr\/bin\/kvctl/$kvctl}
exec_start=${exec_start//\/etc\/kvctl\/config.toml/$tmp/etc/kvctl/config.toml}
read -ra argv <<< "$exec_start"
echo "running ExecStart: ${argv[*]}"
check
# systemd starts services with an empty environment and / as the working directory.
cd /
if start_server "$tmp/serve.log" env -i PATH=/usr/bin:/bin "${argv[@]}"; then
  check
  wait_ready "$SERVER_PORT" || fail "the unit's command never became ready"
  check
  "$kvctl" put --config "$tmp/etc/kvctl/config.toml" --addr "127.0.0.1:$SERVER_PORT" svc/key value ||
    fail "put to the unit's server failed"
  check
  [ "$("$kvctl" get --config "$tmp/etc/kvctl/config.toml" --addr "127.0.0.1:$SERVER_PORT" svc/key)" = value ] ||
    fail "get from the unit's server failed"
  check
  ls "$state"/*.log > /dev/null 2>&1 || fail "no log segment in the StateDirectory $state"
  check
  code=0
  stop_server || code=$?
  [ "$code" -eq 0 ] || { fail "the unit's command exited $code on SIGTERM"; cat "$tmp/serve.log"; }
else
  fail "the unit's ExecStart did not start a server"
fi

# ---- cron: minute hour day month weekday user command
cron=$src/packaging/cron/kvctl-compact
check
jobs=$(grep -vE '^[[:space:]]*(#|$|[A-Z_]+=)' "$cron")
[ "$(wc -l <<< "$jobs")" -eq 1 ] || fail "the cron example should have exactly one job line"
read -r m h dom mon dow user command rest <<< "$jobs"
check
for field in "$m" "$h" "$dom" "$mon" "$dow"; do
  [[ $field =~ ^[0-9*/,-]+$ ]] || fail "cron time field \"$field\" is not valid"
done
[ "$user" = kvctl ] || fail "the cron job should run as user kvctl, not $user"
[ "$command" = /usr/bin/kvctl ] || fail "the cron job should run /usr/bin/kvctl, not $command"
# Its subcommand and flags are ones the binary declares.
read -ra cron_args <<< "$rest"
options=$("$kvctl" completion json |
  jq -r --arg sub "${cron_args[0]}" '.subcommands[] | select(.name == $sub) | .options[].names[]')
check
[ -n "$options" ] || fail "the cron job runs \"kvctl ${cron_args[0]}\", which kvctl does not declare"
for arg in "${cron_args[@]:1}"; do
  [[ $arg == -* ]] || continue
  check
  grep -qxF -- "${arg%%=*}" <<< "$options" || fail "the cron job passes ${arg%%=*}, which kvctl ${cron_args[0]} does not take"
done

# ---- containers
check
yamllint -s "$src"/packaging/kubernetes/*.yaml || fail "yamllint found problems in packaging/kubernetes"
# Every KVCTL_* variable the Dockerfile and the file-backend manifest set is
# a setting kvctl knows (an unknown one would stop kvctl with exit 2).
mapfile -t vars < <(sed -nE 's/^(ENV)?[[:space:]]+(KVCTL_[A-Z_]+=[^ \\]*).*/\2/p' "$src/packaging/docker/Dockerfile"
                    grep -A1 -E 'name: KVCTL_' "$src/packaging/kubernetes/kvctl-file-statefulset.yaml" |
                      paste -d' ' - - | sed -nE 's/.*name: (KVCTL_[A-Z_]+).*value: "?([^"]*)"?/\1=\2/p')
check
[ ${#vars[@]} -ge 3 ] || fail "found only ${#vars[@]} KVCTL_* variables in the Dockerfile and manifest"
check
out=$(env -i HOME="$tmp" "${vars[@]}" "$kvctl" config show 2>&1) || fail "kvctl rejects the container's environment: $out"
check
grep -q '^FROM debian:bookworm' "$src/packaging/docker/Dockerfile" || fail "the Dockerfile is not based on Debian bookworm"
check
grep -qE '^USER [a-z]' "$src/packaging/docker/Dockerfile" || fail "the Dockerfile runs as root"

# ---- maintainer scripts
for script in postinst prerm postrm; do
  check
  sh -n "$src/packaging/debian/$script" || fail "$script: sh -n"
  shellcheck -s sh "$src/packaging/debian/$script" || fail "$script: shellcheck"
done

finish service
