#!/usr/bin/env bash
# Installs, from Debian's packages, whatever kvctl needs and the machine
# lacks. `deps.sh build` for building kvctl, `deps.sh package` adds what
# cpack needs for the .deb, `deps.sh test` adds the test tools. Installs
# nothing when everything is there already.
set -euo pipefail

build_packages=(
  g++ cmake make pkg-config
  libcli11-dev libtomlplusplus-dev libfmt-dev libcpp-httplib-dev
  nlohmann-json3-dev libxxhash-dev libpqxx-dev libssl-dev libabsl-dev libjemalloc-dev
  # etcd's gRPC API: gRPC and protobuf, and etcd's .proto files with those
  # they import (generated at build time, cmake/etcd_grpc.cmake).
  libgrpc++-dev protobuf-compiler protobuf-compiler-grpc
  golang-etcd-server-dev golang-github-gogo-protobuf-dev golang-github-gogo-googleapis-dev
)
# dpkg-shlibdeps (dpkg-dev) computes the .deb's Depends; gzip compresses
# the man pages; CPack's DEB generator runs `file` on what it packs.
package_packages=(dpkg-dev gzip file)
# The shell tests run the tools a user would: the three shells completing,
# mandoc and man-db (groff) rendering the man pages, systemd-analyze checking
# the unit, yamllint the Kubernetes manifests, shellcheck the maintainer
# scripts, jq reading `kvctl completion json`, binutils' objdump the binary.
# postgresql-15: the end-to-end tests start throwaway PostgreSQL clusters;
# openssl makes the security tests' certificates; promtool (prometheus)
# checks /metrics. The etcd face is proven by others' software: Debian's
# etcd 3.4 (etcd-server) answers the same requests, and python3-etcd3gw's
# functional tests run under pytest (they import oslotest and testtools).
# etcd's gRPC API is proven by etcd-client's etcdctl driven through a
# user's session, and by python3-tooz's coordination tests (shipped in the
# package; they import testtools and fixtures) over tooz's etcd3 driver,
# which is python3-etcd3 (it ships no tests of its own) on gRPC.
test_packages=(doctest-dev clang libclang-rt-14-dev "${package_packages[@]}"
               bash zsh fish mandoc man-db systemd yamllint shellcheck jq binutils
               postgresql-15 openssl prometheus
               etcd-server python3-etcd3gw python3-pytest python3-oslotest python3-testtools
               etcd-client python3-etcd3 python3-tooz python3-fixtures)

wanted=("${build_packages[@]}")
case "${1:-build}" in
  build) ;;
  package) wanted+=("${package_packages[@]}") ;;
  test) wanted+=("${test_packages[@]}") ;;
  *) echo "usage: $0 [build|package|test]" >&2; exit 2 ;;
esac

missing=()
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 2; }
  sudo=(sudo)
fi
echo "installing from Debian: ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
