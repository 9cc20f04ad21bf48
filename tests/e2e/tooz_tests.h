// Debian's tooz coordination tests (python3-tooz ships them in the
// package), run by tests/e2e/python_clients/run_tooz_tests.py through
// tooz's etcd3 driver, that is python3-etcd3 over etcd's gRPC API, and
// checked test by test against what they do on Debian's etcd 3.4.
#pragma once

namespace kvctl::e2e {

// Runs the tests against 127.0.0.1:`port` (bounded in time) and checks
// that each one ends as it does against Debian's etcd 3.4: the same
// passes, the one failure that is the client's own, the same skips.
void CheckToozCoordinationTests(int port);

}  // namespace kvctl::e2e
