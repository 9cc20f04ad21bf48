#!/usr/bin/env bash
# ctest takes a test's name from its doctest TEST_CASE name, and CMake's
# lists split on ';': a name holding one becomes two broken ctest entries
# that fail for no reason. Every TEST_CASE name (adjacent string literals
# joined) must be free of ';'. Perl, as perl-base is on every Debian.
set -u
cd "$(dirname "$0")/.."
bad=$(find tests -name '*.cpp' | sort | xargs perl -0777 -ne '
  while (/TEST_CASE\(((?:\s*"(?:[^"\\]|\\.)*")+)/g) {
    my ($literals, $at) = ($1, $-[0]);
    my $name = join "", ($literals =~ /"((?:[^"\\]|\\.)*)"/g);
    my $line = 1 + (substr($_, 0, $at) =~ tr/\n//);
    print "$ARGV:$line: $name\n" if $name =~ /;/;
  }')
if [ -n "$bad" ]; then
  printf 'test names must not hold ";" (ctest splits them):\n%s\n' "$bad"
  exit 1
fi
echo "test names ok"
