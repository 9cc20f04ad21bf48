#!/usr/bin/python3
"""Probes an etcd gRPC endpoint's admission with Debian's python3-etcd3.

    etcd3_admission.py HOST:PORT [--cacert FILE] login USER PASSWORD
    etcd3_admission.py HOST:PORT [--cacert FILE] ranges N

--cacert: speak TLS, trusting that CA (python3-etcd3 sends its login's
token only over TLS: gRPC's Python refuses call credentials on a plain
channel, so without it the login line says so).

login: logs in as python3-etcd3 does (etcd3.client(user=, password=): Auth's
Authenticate, then the token answered sent as "token" metadata), puts and
reads back app/python, then sends a Range of app/python with each kind of
credentials through python3-etcd3's own gRPC stubs. One line per probe:

    login: <the value read back>
    no token: <outcome>
    invalid token: <outcome>
    token: <outcome>                 (the token Authenticate answered)
    same token twice: <outcome>      (as python3-etcd3 sends it: metadata and call credentials)
    two tokens: <outcome>            (that token, then an invalid one)
    bearer: <outcome>                (authorization: Bearer PASSWORD, kvctl's form)

ranges: N Ranges of app/python with no credentials, as fast as they go; a
line each.

An outcome is "OK" or "<gRPC code name> <message>". Exits 0 once every
probe has its line, 2 when the endpoint cannot be reached at all.
"""
import argparse
import sys

import etcd3
import grpc
from etcd3.etcdrpc import rpc_pb2, rpc_pb2_grpc

TIMEOUT = 5  # seconds, for each call


def outcome(call):
    try:
        call()
        return "OK"
    except grpc.RpcError as e:
        return "%s %s" % (e.code().name, e.details())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("--cacert")
    parser.add_argument("mode", choices=["login", "ranges"])
    parser.add_argument("args", nargs="+")
    a = parser.parse_args()
    host, port = a.endpoint.rsplit(":", 1)
    if a.cacert:
        with open(a.cacert, "rb") as f:
            channel = grpc.secure_channel(a.endpoint, grpc.ssl_channel_credentials(f.read()))
    else:
        channel = grpc.insecure_channel(a.endpoint)
    kv = rpc_pb2_grpc.KVStub(channel)
    probe = rpc_pb2.RangeRequest(key=b"app/python")

    def rng(metadata):
        return lambda: kv.Range(probe, metadata=metadata, timeout=TIMEOUT)

    if a.mode == "ranges":
        for _ in range(int(a.args[0])):
            print(outcome(rng([])), flush=True)
        return 0

    user, password = a.args[0], a.args[1]
    try:
        client = etcd3.client(host=host, port=int(port), ca_cert=a.cacert, user=user, password=password,
                              timeout=TIMEOUT)
        client.put("app/python", "from python3-etcd3")
        value, _ = client.get("app/python")
        print("login: %s" % (value.decode() if value is not None else None), flush=True)
    except Exception as e:  # the probes below still say what the server does
        print("login: failed: %s" % str(e).splitlines()[0], flush=True)
    auth = rpc_pb2_grpc.AuthStub(channel)
    token = auth.Authenticate(rpc_pb2.AuthenticateRequest(name=user, password=password), timeout=TIMEOUT).token
    print("no token: %s" % outcome(rng([])))
    print("invalid token: %s" % outcome(rng([("token", "not-a-token")])))
    print("token: %s" % outcome(rng([("token", token)])))
    print("same token twice: %s" % outcome(rng([("token", token), ("token", token)])))
    print("two tokens: %s" % outcome(rng([("token", token), ("token", "not-a-token")])))
    print("bearer: %s" % outcome(rng([("authorization", "Bearer " + password)])))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except grpc.RpcError as e:
        print("unreachable: %s %s" % (e.code().name, e.details()))
        sys.exit(2)
