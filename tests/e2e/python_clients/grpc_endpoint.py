"""The gRPC channel the watch scripts share (watch_exchange.py,
watch_many.py, watch_slow.py): an endpoint reached, or the script's exit
code 2 and a line on stderr."""
import sys

import grpc


def connect(endpoint):
    """A ready channel to HOST:PORT; exits 2 when none is ready in 10 s."""
    channel = grpc.insecure_channel(endpoint)
    try:
        grpc.channel_ready_future(channel).result(timeout=10)
    except grpc.FutureTimeoutError:
        print("cannot reach " + endpoint, file=sys.stderr)
        sys.exit(2)
    return channel
