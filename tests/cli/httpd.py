#!/usr/bin/env python3
"""httpd.py - a small HTTP/1.1 file server for the tests, on loopback only.

Serves the files under ROOT with Range support (one range per request,
206 + Content-Range, 416 past the end) and an ETag.  python3 -m http.server
does not do Range, hence this script.

Paths select behaviours, so that one server covers every test:
  /PATH             the file ROOT/PATH
  /drop/PATH        the first answer to each range (by its end) is cut off
                    after half of its body (the connection is closed); the
                    retry is answered in full
  /fail500/PATH     the first request for each distinct range gets a 500
  /norange/PATH     Range is ignored: 200 with the whole file
  /nrdrop/PATH      as norange, and the first GET without Range of each
                    file is cut off after half of its body
  /nrshort/PATH     as norange, and every body is cut off after half of it
                    (the Content-Length is the file's)
  /nrnolen/PATH     as norange, without Content-Length (the body ends when
                    the connection is closed)
  /nrchange/PATH    as norange, with a new ETag for every request
  /nrmutate/PATH    as norange, without ETag, and the last byte of the file
                    inverted in every GET without Range but the first
Missing files give 404.  A request log (method, path, range, status) goes
to LOG when given.

Usage: httpd.py ROOT PORTFILE [LOG]
Writes the port it listens on to PORTFILE, then serves until killed.
"""
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.realpath(sys.argv[1])
PORTFILE = sys.argv[2]
LOG = sys.argv[3] if len(sys.argv) > 3 else None
seen = set()
counts = {}
lock = threading.Lock()


def first_time(key):
    with lock:
        if key in seen:
            return False
        seen.add(key)
        return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def log(self, status, rng):
        if LOG:
            with lock, open(LOG, "a") as f:
                f.write("%s %s %s %d\n" % (self.command, self.path, rng or "-", status))

    def do_HEAD(self):
        self.handle_get(head=True)

    def do_GET(self):
        self.handle_get(head=False)

    def send_simple(self, status, text, rng=None):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.log(status, rng)

    def handle_get(self, head):
        path = self.path.split("?", 1)[0]
        mode = None
        for m in ("drop", "fail500", "norange", "nrdrop", "nrshort", "nrnolen",
                  "nrchange", "nrmutate"):
            if path.startswith("/" + m + "/"):
                mode = m
                path = path[len(m) + 1:]
                break
        rel = os.path.normpath(path.lstrip("/"))
        full = os.path.realpath(os.path.join(ROOT, rel))
        if not full.startswith(ROOT + os.sep) or not os.path.isfile(full):
            self.send_simple(404, "not found\n")
            return
        size = os.path.getsize(full)
        st = os.stat(full)
        etag = '"%x-%x"' % (st.st_mtime_ns, size)
        rng = self.headers.get("Range")
        start, end = 0, size - 1
        partial = False
        if rng and not (mode or "").startswith(("norange", "nr")):
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if not m or (m.group(1) == "" and m.group(2) == ""):
                self.send_simple(400, "bad range\n", rng)
                return
            if m.group(1) == "":
                n = int(m.group(2))
                start, end = max(0, size - n), size - 1
            else:
                start = int(m.group(1))
                end = int(m.group(2)) if m.group(2) else size - 1
                end = min(end, size - 1)
            if start >= size or end < start:
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % size)
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.log(416, rng)
                return
            partial = True
        if mode == "fail500" and first_time((path, rng)):
            self.send_simple(500, "try again\n", rng)
            return
        length = end - start + 1 if size else 0
        self.send_response(206 if partial else 200)
        self.send_header("Accept-Ranges", "bytes")
        if mode == "nrchange":
            with lock:
                counts[path] = counts.get(path, 0) + 1
                etag = '"v%d"' % counts[path]
        mutate = mode == "nrmutate" and not rng and not first_time((path, "nrmutate"))
        if mode != "nrmutate":
            self.send_header("ETag", etag)
        self.send_header("Content-Type", "application/octet-stream")
        if mode == "nrnolen":
            self.close_connection = True
            self.send_header("Connection", "close")
        else:
            self.send_header("Content-Length", str(length))
        if partial:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        self.end_headers()
        status = 206 if partial else 200
        if head:
            self.log(status, rng)
            return
        cut = None
        # keyed on the range's end: a client resuming after the cut asks
        # for the rest of the same range
        if mode == "drop" and length > 1 and first_time((path, end)):
            cut = length // 2
        if mode == "nrdrop" and not rng and length > 1 and first_time((path, "nrdrop")):
            cut = length // 2
        if mode == "nrshort" and length > 1:
            cut = length // 2
        with open(full, "rb") as f:
            f.seek(start)
            left = length if cut is None else cut
            while left > 0:
                chunk = f.read(min(left, 1 << 16))
                if not chunk:
                    break
                if mutate and len(chunk) == left and start + length == size:
                    chunk = chunk[:-1] + bytes([chunk[-1] ^ 0xff])
                try:
                    self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    return
                left -= len(chunk)
        if cut is not None:
            self.log(-status, rng)
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        self.log(status, rng)


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    tmp = PORTFILE + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, PORTFILE)
    srv.serve_forever()


if __name__ == "__main__":
    main()
