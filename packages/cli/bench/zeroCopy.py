# The zero-copy sender of the loader's benchmark (packages/cli/bench/loader.ts): the same PUTs as
# `curl --parallel 2` of a file's two halves (`Expect: 100-continue`, then the body), but each body sent by the
# kernel from the page cache with sendfile(2), never copied into the process: a sender that costs a fraction of
# curl's CPU (curl reads each 64 KiB into its buffer and sends it from there). Node has no sendfile for a socket;
# this script exists to measure what the endpoint and the machine allow when the sender costs almost nothing.
#
# `python3 packages/cli/bench/zeroCopy.py PORT FILE...`: one connection per file, all at once (threads), to
# `PUT /api/db/t/_stream_load` on 127.0.0.1:PORT; prints one JSON line {"bytes":…,"seconds":…} (seconds: from the
# first connection to the last answer); exits 1 when an answer is not a success.
import base64
import json
import os
import socket
import sys
import threading
import time

port = int(sys.argv[1])
files = sys.argv[2:]
auth = base64.b64encode(b"root:").decode()
failures = []


def put(index, path):
    with open(path, "rb") as body, socket.create_connection(("127.0.0.1", port)) as s:
        size = os.fstat(body.fileno()).st_size
        s.settimeout(120)  # a deadline on every wait of this socket
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall((
            "PUT /api/db/t/_stream_load HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Length: {size}\r\nExpect: 100-continue\r\nConnection: close\r\nAuthorization: Basic {auth}\r\n"
            f"label: zero-copy-{os.getpid()}-{index}-{time.monotonic_ns()}\r\nformat: csv\r\n\r\n"
        ).encode())
        head = s.recv(4096)
        if not head.startswith(b"HTTP/1.1 100"):
            failures.append(f"{path}: no 100 Continue: {head[:80]!r}")
            return
        # socket.sendfile: os.sendfile(2) in a loop, waiting for the socket within its timeout
        sent = s.sendfile(body)
        if sent != size:
            failures.append(f"{path}: sent {sent} of {size} bytes")
            return
        # the answer, to the end of the connection (`Connection: close`: the endpoint closes after it)
        answer = b""
        while True:
            part = s.recv(65536)
            if not part:
                break
            answer += part
        if b'"Success"' not in answer:
            failures.append(f"{path}: {answer[:200]!r}")


started = time.monotonic()
threads = [threading.Thread(target=put, args=(i, f)) for i, f in enumerate(files)]
for t in threads:
    t.start()
for t in threads:
    t.join()
seconds = time.monotonic() - started
if failures:
    print("\n".join(failures), file=sys.stderr)
    sys.exit(1)
print(json.dumps({"bytes": sum(os.stat(f).st_size for f in files), "seconds": seconds}))
