#!/usr/bin/python3
"""Runs Debian's tooz coordination tests against one etcd gRPC endpoint.

    run_tooz_tests.py HOST:PORT [--timeout SECONDS]

python3-tooz ships its tests inside the package (tooz/tests/); their
test_coordination.py runs against the server named by $TOOZ_TEST_URL. With
etcd3://HOST:PORT it drives tooz's etcd3 driver, which speaks etcd's gRPC API
through python3-etcd3 (a Debian package that ships no tests of its own):
leases kept alive, transactions, prefix reads, watches, and python3-etcd3's
locks. The tests run under pytest, in a temporary directory (no cache or
bytecode left anywhere), and the run is killed if it takes longer than the
timeout.

Prints one line per test, "<outcome> <Class>.<test>" (outcome: passed,
failed, error or skipped; a skip adds ": <reason>"), sorted, then
"summary: P passed, F failed, E errors, S skipped". Exits 0 when every test
that ran passed, 1 when some failed, 2 when the tests could not be run.
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree

TESTS = "tooz.tests.test_coordination"


def run(endpoint, timeout):
    with tempfile.TemporaryDirectory(prefix="kvctl-tooz-") as scratch:
        report = os.path.join(scratch, "report.xml")
        env = dict(os.environ, TOOZ_TEST_URL="etcd3://" + endpoint, PYTHONDONTWRITEBYTECODE="1")
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                   "--junitxml", report, "--pyargs", TESTS]
        # Its own session, so a timeout kills pytest with anything it started.
        child = subprocess.Popen(command, cwd=scratch, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        try:
            output, _ = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            output, _ = child.communicate()
            sys.stdout.write(output.decode(errors="replace"))
            print("error: the tests did not finish within %d s" % timeout)
            return 2
        if not os.path.exists(report):
            sys.stdout.write(output.decode(errors="replace"))
            print("error: pytest wrote no report (exit %d)" % child.returncode)
            return 2
        outcomes = parse(report)
    if not outcomes:
        sys.stdout.write(output.decode(errors="replace"))
        print("error: no tests ran")
        return 2
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for name, (outcome, detail) in sorted(outcomes.items()):
        counts[outcome] += 1
        print("%s %s%s" % (outcome, name, ": " + detail if outcome == "skipped" else ""))
    print("summary: %(passed)d passed, %(failed)d failed, %(error)d errors, %(skipped)d skipped" % counts)
    # What failed, as pytest told it, for whoever reads the run.
    if counts["failed"] or counts["error"]:
        for name, (outcome, detail) in sorted(outcomes.items()):
            if outcome in ("failed", "error"):
                print("--- %s %s\n%s" % (outcome, name, detail))
    return 1 if counts["failed"] or counts["error"] else 0


def parse(report):
    """{"Class.test": (outcome, detail)} from pytest's JUnit XML report."""
    outcomes = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        name = case.get("classname", "").split(".")[-1] + "." + case.get("name", "")
        outcome, detail = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                detail = (child.get("message") or "") if outcome == "skipped" else (child.text or "")
        # A test can fail in its call and error in its teardown: the worse counts.
        if name in outcomes and outcomes[name][0] != "passed":
            continue
        outcomes[name] = (outcome, detail.strip())
    return outcomes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("endpoint", help="HOST:PORT of an etcd gRPC API")
    parser.add_argument("--timeout", type=int, default=90, help="seconds before the run is killed")
    args = parser.parse_args()
    return run(args.endpoint, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
