"""A pytest plugin that points Debian's etcd3gw functional tests at kvctl.

The tests (etcd3gw/tests/test_etcd3gw.py) talk to localhost:2379 and skip
when nothing answers on 127.0.0.1:2379. This plugin, loaded with
`-p kvctl_etcd_port` before the tests are collected, makes both the client's
default port and that probe use $KVCTL_ETCD_PORT instead, so the tests run
unchanged against a kvctl on any free port. It edits none of Debian's files.
"""
import importlib
import os

import urllib3

# The module, not the client() function etcd3gw's package exports by that name.
etcd3gw_client = importlib.import_module("etcd3gw.client")

_PORT = int(os.environ["KVCTL_ETCD_PORT"])

# Etcd3Client(host='localhost', port=2379, protocol='http', ca_cert=None,
#             cert_key=None, cert_cert=None, timeout=None, api_path='/v3alpha/')
_defaults = list(etcd3gw_client.Etcd3Client.__init__.__defaults__)
_defaults[1] = _PORT
etcd3gw_client.Etcd3Client.__init__.__defaults__ = tuple(_defaults)

_request = urllib3.PoolManager.request


def _request_to_kvctl(self, method, url, *args, **kwargs):
    if url == "127.0.0.1:2379":
        url = "127.0.0.1:%d" % _PORT
    return _request(self, method, url, *args, **kwargs)


urllib3.PoolManager.request = _request_to_kvctl
