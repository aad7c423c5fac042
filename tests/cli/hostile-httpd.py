#!/usr/bin/env python3
"""hostile-httpd.py - a misbehaving HTTP server for tests, on loopback only.

Serves the files under ROOT (Range requests answered 206, like httpd.py)
unless the first path component names a misbehaviour:
  /silent/F        accept, read the request, never answer
  /drip500/F       a 500 whose body comes 1 byte/s, forever
  /headers/F       200 then header lines as fast as they go, forever
  /slowheaders/F   200 then header bytes at 1 byte/s, forever
  /big404/F        a 404 with a 1 GiB body, sent as fast as it goes
  /403/F           403
  /503x3/F         503 to the first 3 requests for the path (with its
                   query), then the file
  /drip206/F       the right 206 answer, at 512 bytes/s
  /silentafter/F   the file for ranges that start at 0, silence for others
  /stall200/F      Range ignored: 200 with a Content-Length of 1 GiB, 1 MiB
                   of zeros, then silence
  /drip200/F       Range ignored: 200 with a Content-Length of 1 GiB, zeros
                   at 512 bytes/s
  /loop/F          302 to itself
  /tofile/F        302 to file:///etc/passwd
  /toftp/F         302 to ftp://127.0.0.1/F
  /toport/F        302 to the same file on the second port
Every request is logged to LOG as "PORT METHOD PATH RANGE STATUS".
Each connection serves one request and is closed.  Nothing runs longer than
LIFETIME seconds per connection.

Usage: hostile-httpd.py ROOT PORTFILE LOG [ADDR...]
Listens on two ports of 127.0.0.1, and on one port of each extra ADDR (a
loopback address such as 127.0.0.2); writes "PORT1 PORT2 [PORT...]" to
PORTFILE, then serves until killed.
"""
import os
import re
import socket
import sys
import threading
import time

ROOT = os.path.realpath(sys.argv[1])
PORTFILE = sys.argv[2]
LOG = sys.argv[3]
EXTRA = sys.argv[4:]
LIFETIME = 120
lock = threading.Lock()
counts = {}
ports = []


def log(port, method, path, rng, status):
    with lock, open(LOG, "a") as f:
        f.write("%d %s %s %s %s\n" % (port, method, path, rng or "-", status))


def read_request(conn):
    data = b""
    conn.settimeout(10)
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk or len(data) > 65536:
            return None
        data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) < 3:
        return None
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return parts[0], parts[1], headers


def simple(conn, status, reason, extra=(), body=b""):
    out = "HTTP/1.1 %d %s\r\n" % (status, reason)
    for k, v in extra:
        out += "%s: %s\r\n" % (k, v)
    out += "Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    conn.sendall(out.encode() + body)


def serve_file(conn, port, method, path, rel, rng, rate=None):
    full = os.path.realpath(os.path.join(ROOT, os.path.normpath(rel.lstrip("/"))))
    if not full.startswith(ROOT + os.sep) or not os.path.isfile(full):
        simple(conn, 404, "Not Found", body=b"not found\n")
        log(port, method, path, rng, 404)
        return
    size = os.path.getsize(full)
    start, end, status = 0, size - 1, 200
    if rng:
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng)
        if m:
            start = int(m.group(1))
            end = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
            status = 206
            if start >= size or end < start:
                simple(conn, 416, "Range Not Satisfiable",
                       [("Content-Range", "bytes */%d" % size)])
                log(port, method, path, rng, 416)
                return
    length = end - start + 1
    out = "HTTP/1.1 %d %s\r\n" % (status, "Partial Content" if status == 206 else "OK")
    out += "Content-Length: %d\r\nConnection: close\r\nAccept-Ranges: bytes\r\n" % length
    if status == 206:
        out += "Content-Range: bytes %d-%d/%d\r\n" % (start, end, size)
    conn.sendall((out + "\r\n").encode())
    log(port, method, path, rng, status)
    if method == "HEAD":
        return
    with open(full, "rb") as f:
        f.seek(start)
        left = length
        t_end = time.time() + LIFETIME
        while left > 0 and time.time() < t_end:
            n = min(left, 64 if rate else 65536)
            chunk = f.read(n)
            if not chunk:
                break
            conn.sendall(chunk)
            left -= len(chunk)
            if rate:
                time.sleep(len(chunk) / rate)


def forever(conn, piece, interval):
    t_end = time.time() + LIFETIME
    i = 0
    while time.time() < t_end:
        conn.sendall(piece(i))
        i += 1
        if interval:
            time.sleep(interval)


def handle(conn, port):
    try:
        req = read_request(conn)
        if not req:
            return
        method, path, headers = req
        rng = headers.get("range")
        bare = path.split("?", 1)[0]
        m = re.match(r"^/([a-z0-9]+)(/.*)$", bare)
        mode, rel = (m.group(1), m.group(2)) if m else ("", bare)
        if mode == "silent":
            log(port, method, path, rng, "silent")
            time.sleep(LIFETIME)
        elif mode == "drip500":
            log(port, method, path, rng, 500)
            conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\n"
                         b"Content-Length: 100000000\r\n\r\n")
            forever(conn, lambda i: b"x", 1)
        elif mode == "headers":
            log(port, method, path, rng, "headers")
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            forever(conn, lambda i: b"X-Pad-%d: yes\r\n" % i, 0)
        elif mode == "slowheaders":
            log(port, method, path, rng, "slowheaders")
            conn.sendall(b"HTTP/1.1 206 Partial Content\r\n")
            forever(conn, lambda i: b"X-Slow: yyyyyyyyyyyyyyyyyyyyyyyyy\r\n"[i % 31:i % 31 + 1], 1)
        elif mode == "big404":
            log(port, method, path, rng, 404)
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 1073741824\r\n\r\n")
            t_end = time.time() + LIFETIME
            sent = 0
            while sent < 1073741824 and time.time() < t_end:
                conn.sendall(b"n" * 65536)
                sent += 65536
        elif mode == "403":
            simple(conn, 403, "Forbidden", body=b"go away\n")
            log(port, method, path, rng, 403)
        elif mode == "503x3":
            with lock:
                counts[path] = counts.get(path, 0) + 1
                n = counts[path]
            if n <= 3:
                simple(conn, 503, "Service Unavailable", [("Retry-After", "0")], b"busy\n")
                log(port, method, path, rng, 503)
            else:
                serve_file(conn, port, method, path, rel, rng)
        elif mode == "silentafter":
            if rng and not rng.startswith("bytes=0-"):
                log(port, method, path, rng, "silent")
                time.sleep(LIFETIME)
            else:
                serve_file(conn, port, method, path, rel, rng)
        elif mode in ("stall200", "drip200"):
            log(port, method, path, rng, 200)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n"
                         b"Connection: close\r\n\r\n")
            if mode == "stall200":
                conn.sendall(b"\0" * (1 << 20))
                time.sleep(LIFETIME)
            else:
                forever(conn, lambda i: b"\0" * 64, 0.125)
        elif mode == "drip206":
            serve_file(conn, port, method, path, rel, rng, rate=512)
        elif mode in ("loop", "tofile", "toftp", "toport"):
            loc = {"loop": path,
                   "tofile": "file:///etc/passwd",
                   "toftp": "ftp://127.0.0.1" + rel,
                   "toport": "http://127.0.0.1:%d%s" % (ports[1], rel)}[mode]
            simple(conn, 302, "Found", [("Location", loc)])
            log(port, method, path, rng, 302)
        else:
            serve_file(conn, port, method, path, bare, rng)
    except (OSError, ValueError):
        pass
    finally:
        try:
            conn.close()
        except OSError:
            pass


def listen(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 0))
    s.listen(64)
    return s


def accept_loop(s):
    port = s.getsockname()[1]
    while True:
        conn, _ = s.accept()
        threading.Thread(target=handle, args=(conn, port), daemon=True).start()


def main():
    socks = [listen("127.0.0.1"), listen("127.0.0.1")] + [listen(a) for a in EXTRA]
    for s in socks:
        ports.append(s.getsockname()[1])
    for s in socks[1:]:
        threading.Thread(target=accept_loop, args=(s,), daemon=True).start()
    tmp = PORTFILE + ".tmp"
    with open(tmp, "w") as f:
        f.write(" ".join(str(p) for p in ports) + "\n")
    os.rename(tmp, PORTFILE)
    accept_loop(socks[0])


if __name__ == "__main__":
    main()
