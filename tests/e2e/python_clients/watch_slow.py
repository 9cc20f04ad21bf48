#!/usr/bin/python3
"""A watch stream whose client stops reading while the server writes.

    watch_slow.py HOST:PORT PUTS VALUE_BYTES

Watches the prefix slow/ over one Watch stream (python3-etcd3's generated
stubs), reads the "created", then reads nothing while it puts PUTS keys
under slow/ of VALUE_BYTES each (far more than gRPC's flow-control windows
and the sockets hold). Then reads the stream to its end or for at most 20 s
and prints one JSON line: {"events": n, "first": rel, "contiguous": bool,
"canceled": bool, "cancel_reason": "..."}, where the revisions are
relative to the first put.

Exits 0 after printing, 2 when the server could not be reached.
"""
import json
import queue
import sys
import threading

import grpc
from etcd3 import etcdrpc
from grpc_endpoint import connect


def main():
    endpoint, puts, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    channel = connect(endpoint)
    kv = etcdrpc.KVStub(channel)
    requests = queue.Queue()
    requests.put(etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(key=b"slow/", range_end=b"slow0")))
    answers = etcdrpc.WatchStub(channel).Watch(iter(requests.get, None), timeout=120)
    created = next(answers)
    assert created.created
    value = b"x" * size
    first = None
    for i in range(puts):
        r = kv.Put(etcdrpc.PutRequest(key=b"slow/%06d" % i, value=value))
        if first is None:
            first = r.header.revision
    seen = {"events": 0, "first": None, "contiguous": True, "canceled": False, "cancel_reason": ""}
    last = None
    done = threading.Event()

    def read():
        nonlocal last
        try:
            for a in answers:
                for e in a.events:
                    rev = e.kv.mod_revision - first
                    if seen["first"] is None:
                        seen["first"] = rev
                    elif rev != last + 1:
                        seen["contiguous"] = False
                    last = rev
                    seen["events"] += 1
                if a.canceled:
                    seen["canceled"] = True
                    seen["cancel_reason"] = a.cancel_reason
                    break
        except grpc.RpcError as e:
            seen["ended"] = e.code().name
        done.set()

    threading.Thread(target=read, daemon=True).start()
    done.wait(20)
    print(json.dumps(seen), flush=True)
    requests.put(None)
    channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
