#!/usr/bin/python3
"""One scripted session of etcd's gRPC Watch stream, for comparing servers.

    watch_exchange.py HOST:PORT

Speaks etcd's Watch service with the generated messages that Debian's
python3-etcd3 ships (etcd3.etcdrpc, from etcd 3.3's protos; the two fields
3.4 added and this uses, a create's watch_id and the progress request, are
written by hand), over one bidirectional stream: watches
created (by key, prefix, from-key-on, with prev_kv, filters, given ids, from
a past revision), refused (a duplicate id, an empty range), cancelled (open
and unknown ids), a progress request, and the puts and deletes they see.

Prints what the server answered, as JSON lines a second server's can be
compared with: the control answers (created, canceled, progress) in the
order they came, then each watch's events in order. Headers keep only the
revision; every revision is written relative to the session's first put
(two servers start at different revisions); message boundaries are not
kept (a server may send one watch's events in one message or several).

Exits 0 after printing, 2 when the server could not be reached.
"""
import json
import queue
import sys
import threading
import time

import grpc
from etcd3 import etcdrpc
from grpc_endpoint import connect

QUIET = 0.4      # s without an answer: the server has said all it will
DEADLINE = 10.0  # s at most for one step


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number, wire_type):
    return varint(number << 3 | wire_type)


class Session:
    def __init__(self, endpoint):
        self.channel = connect(endpoint)
        self.kv = etcdrpc.KVStub(self.channel)
        self.requests = queue.Queue()
        self.answers = queue.Queue()
        # Requests go out as bytes (see create and progress).
        watch = self.channel.stream_stream("/etcdserverpb.Watch/Watch",
                                           response_deserializer=etcdrpc.WatchResponse.FromString)
        self.stream = watch(iter(self.requests.get, None), timeout=120)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.base = None
        self.control = []
        self.events = {}

    def _read(self):
        try:
            for answer in self.stream:
                self.answers.put(answer)
        except grpc.RpcError as e:
            self.answers.put(e)

    def rel(self, revision):
        return revision - self.base if revision else 0

    def put(self, key, value):
        r = self.kv.Put(etcdrpc.PutRequest(key=key.encode(), value=value.encode()))
        if self.base is None:
            self.base = r.header.revision
        return r.header.revision

    def delete(self, key):
        return self.kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=key.encode())).header.revision

    def create(self, key, range_end=b"", watch_id=0, **fields):
        create = etcdrpc.WatchCreateRequest(key=key, range_end=range_end, **fields).SerializeToString()
        if watch_id:
            create += field(7, 0) + varint(watch_id)  # WatchCreateRequest.watch_id (3.4)
        self.requests.put(field(1, 2) + varint(len(create)) + create)  # WatchRequest.create_request

    def cancel(self, watch_id):
        request = etcdrpc.WatchRequest(cancel_request=etcdrpc.WatchCancelRequest(watch_id=watch_id))
        self.requests.put(request.SerializeToString())

    def progress(self):
        self.requests.put(field(3, 2) + varint(0))  # WatchRequest.progress_request (3.4), empty

    def settle(self, step):
        """Takes answers until the server has been quiet for QUIET."""
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            try:
                answer = self.answers.get(timeout=QUIET)
            except queue.Empty:
                return
            if isinstance(answer, grpc.RpcError):
                self.control.append({"step": step, "stream_ended": answer.code().name,
                                     "details": answer.details()})
                return
            self.take(step, answer)

    def take(self, step, a):
        if a.events:
            for e in a.events:
                event = {"type": "DELETE" if e.type == 1 else "PUT", "key": e.kv.key.decode(),
                         "mod": self.rel(e.kv.mod_revision)}
                if e.type == 0:
                    event.update(value=e.kv.value.decode(), create=self.rel(e.kv.create_revision),
                                 version=e.kv.version)
                if e.HasField("prev_kv"):
                    event["prev"] = {"value": e.prev_kv.value.decode(), "mod": self.rel(e.prev_kv.mod_revision)}
                self.events.setdefault(a.watch_id, []).append(event)
            return
        entry = {"step": step, "watch_id": a.watch_id, "revision": self.rel(a.header.revision)}
        for field in ("created", "canceled"):
            if getattr(a, field):
                entry[field] = True
        if a.cancel_reason:
            entry["cancel_reason"] = a.cancel_reason
        if a.compact_revision:
            entry["compacted"] = True
        self.control.append(entry)

    def close(self):
        self.requests.put(None)
        self.channel.close()


def main():
    s = Session(sys.argv[1])
    s.put("wx/base", "0")
    s.put("wx/a", "before")

    s.create(b"wx/a")                                     # watch 0: one key
    s.create(b"wx/", b"wx0", watch_id=7, prev_kv=True)    # a prefix, an id of its own
    s.settle("create")
    s.create(b"wx/", b"wx0", watch_id=7)                  # the same id again
    s.create(b"wx/b", b"wx/a")                            # an empty range
    s.create(b"wx/m", b"\0", filters=[etcdrpc.WatchCreateRequest.NODELETE])  # from wx/m on, no deletes
    s.create(b"wx/", b"wx0", filters=[etcdrpc.WatchCreateRequest.NOPUT])     # deletes only
    s.settle("refusals")

    s.put("wx/a", "1")
    s.put("wx/b", "2")
    s.put("wx/n", "3")
    s.delete("wx/a")
    s.put("wx/a", "4")
    s.delete("wx/n")
    s.settle("changes")

    s.progress()
    s.settle("progress")

    s.cancel(0)
    s.cancel(99)  # not open: no answer
    s.settle("cancel")
    s.put("wx/a", "5")  # watch 0 is gone; 7 sees it
    s.settle("after cancel")

    # From the past: the session's changes again, with prev_kv.
    s.create(b"wx/", b"wx0", start_revision=s.base + 1, prev_kv=True, watch_id=20)
    s.settle("past")
    s.close()

    for entry in s.control:
        print(json.dumps(entry, sort_keys=True))
    for watch_id in sorted(s.events):
        for event in s.events[watch_id]:
            print(json.dumps({"watch_id": watch_id, **event}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
