#!/usr/bin/python3
"""idle_clients.py — open N PostgreSQL client connections and hold them idle.

Used by contrib/bench/run to measure what one idle client costs a pooler.
Each connection sends a protocol 3.0 startup packet over a raw socket and
reads until the first ReadyForQuery, so the pooler has fully admitted the
client; then the connection just sits there. Only trust authentication is
supported: any other request is reported and the program exits 1.

Prints "ready N" on stdout once all N are connected, then waits until it is
killed (closing every socket at once), which is when the caller has taken
its measurement.

Usage: idle_clients.py HOST PORT USER DBNAME N
"""
import signal
import socket
import struct
import sys


def startup_packet(user, dbname):
    body = struct.pack("!I", 3 << 16)
    for name, value in (("user", user), ("database", dbname),
                        ("application_name", "pgw-bench-idle")):
        body += name.encode() + b"\0" + value.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise RuntimeError("server closed the connection during startup")
        data += chunk
    return data


def error_message(body):
    """The M field of an ErrorResponse body, for the report."""
    for field in body.split(b"\0"):
        if field[:1] == b"M":
            return field[1:].decode(errors="replace")
    return "(no message)"


def handshake(sock, user, dbname):
    sock.sendall(startup_packet(user, dbname))
    while True:
        header = read_exact(sock, 5)
        kind = header[:1]
        (length,) = struct.unpack("!I", header[1:])
        if length < 4:
            raise RuntimeError("bad message length from server")
        body = read_exact(sock, length - 4)
        if kind == b"R":
            (code,) = struct.unpack("!I", body[:4])
            if code != 0:
                raise RuntimeError(
                    "server asked for authentication (code %d); the benchmark needs trust" % code)
        elif kind == b"E":
            raise RuntimeError("server refused: " + error_message(body))
        elif kind == b"Z":
            return
        # ParameterStatus, BackendKeyData, NoticeResponse: nothing to do.


def main():
    if len(sys.argv) != 6:
        sys.exit("usage: idle_clients.py HOST PORT USER DBNAME N")
    host, port, user, dbname, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], \
        int(sys.argv[5])
    held = []
    try:
        for _ in range(n):
            sock = socket.create_connection((host, port), timeout=30)
            handshake(sock, user, dbname)
            held.append(sock)
    except (OSError, RuntimeError) as e:
        print("error after %d connections: %s" % (len(held), e), flush=True)
        sys.exit(1)
    print("ready %d" % len(held), flush=True)
    # Hold the connections until the caller kills us.
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
