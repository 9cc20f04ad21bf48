#!/usr/bin/python3
"""Many etcd watch streams at once against one server, then its stop.

    watch_many.py HOST:PORT STREAMS SERVER_PID

Opens STREAMS Watch streams over one connection (the generated stubs of
Debian's python3-etcd3), each watching the key many/k, and once every one
is created prints {"open": STREAMS, "threads": N} with N the server's
thread count (/proc/SERVER_PID/status). Then puts many/k and prints
{"events": E}, how many streams saw the put. Then waits (at most 30 s) for
the server to end the streams and prints {"ended": {"CODE details": count}}:
whoever runs this stops the server after the second line.

Exits 0 after the third line, 1 when a step timed out (what it saw is
printed), 2 when the server could not be reached.
"""
import json
import queue
import sys
import threading
import time

import grpc
from etcd3 import etcdrpc
from grpc_endpoint import connect


def threads_of(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


def main():
    endpoint, count, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    channel = connect(endpoint)
    watch = etcdrpc.WatchStub(channel)
    kv = etcdrpc.KVStub(channel)
    seen = queue.Queue()  # ("created" | "event" | "ended", detail)
    holds = []

    def follow(index):
        requests = queue.Queue()
        requests.put(etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(key=b"many/k")))
        holds.append(requests)  # the request stream stays open until the server ends the call
        try:
            for answer in watch.Watch(iter(requests.get, None), timeout=120):
                if answer.created:
                    seen.put(("created", index))
                for _ in answer.events:
                    seen.put(("event", index))
        except grpc.RpcError as e:
            seen.put(("ended", "%s %s" % (e.code().name, e.details())))
            return
        seen.put(("ended", "OK"))

    for i in range(count):
        threading.Thread(target=follow, args=(i,), daemon=True).start()

    def collect(kind, want, limit):
        got, ends = [], {}
        deadline = time.monotonic() + limit
        while len(got) < want and time.monotonic() < deadline:
            try:
                what, detail = seen.get(timeout=0.2)
            except queue.Empty:
                continue
            if what == kind:
                got.append(detail)
            if what == "ended":
                ends[detail] = ends.get(detail, 0) + 1
        return got, ends

    created, ends = collect("created", count, 30)
    print(json.dumps({"open": len(created), "threads": threads_of(pid), "ended_early": ends}), flush=True)
    if len(created) < count:
        return 1
    kv.Put(etcdrpc.PutRequest(key=b"many/k", value=b"v"))
    events, ends = collect("event", count, 30)
    print(json.dumps({"events": len(events), "ended_early": ends}), flush=True)
    if len(events) < count:
        return 1
    ended, _ = collect("ended", count, 30)
    tally = {}
    for e in ended:
        tally[e] = tally.get(e, 0) + 1
    print(json.dumps({"ended": tally}), flush=True)
    return 0 if len(ended) == count else 1


if __name__ == "__main__":
    sys.exit(main())
