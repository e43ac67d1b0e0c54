"""A minimal PostgreSQL frontend speaking the wire protocol directly.

libpq (and so psycopg) turns a failed login into a message string and drops
the SQLSTATE, but which SQLSTATE pgwarden sends (28000, 28P01, 3D000, 53300)
is part of its contract. This module logs in by hand -- SSLRequest,
StartupMessage, cleartext/md5/SCRAM-SHA-256 -- and reports exactly what the
server answered. It also lets a test walk away from a half-read result, which
no well-behaved driver does on purpose.

It is written from the protocol documentation for the tests only; nothing in
pgwarden uses it.
"""

import base64
import hashlib
import hmac
import os
import socket
import ssl
import struct


class ServerError(Exception):
    """An ErrorResponse: fields by their one-letter protocol codes."""

    def __init__(self, fields):
        self.fields = fields
        self.sqlstate = fields.get("C")
        self.severity = fields.get("V") or fields.get("S")
        self.message = fields.get("M", "")
        super().__init__(f"{self.severity} {self.sqlstate}: {self.message}")


def md5_secret(user, password):
    """The userlist form of an md5 password: "md5" + md5(password || user)."""
    return "md5" + hashlib.md5((password + user).encode()).hexdigest()


def scram_verifier(password, iterations=4096, salt=None):
    """A SCRAM-SHA-256 verifier as PostgreSQL stores it in pg_authid."""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = lambda b: base64.b64encode(b).decode()
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


class Session:
    """One connection. connect() logs in; raises ServerError on an ErrorResponse."""

    def __init__(self, host, port, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.host = host
        self.params = {}
        self.backend_key = None
        self.notices = []

    # -- framing ---------------------------------------------------------

    def _send(self, kind, payload):
        header = kind + struct.pack("!I", len(payload) + 4)
        self.sock.sendall(header + payload)

    def _recv_exact(self, n):
        chunks = []
        while n:
            chunk = self.sock.recv(n)
            if not chunk:
                raise ConnectionError("server closed the connection")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def read_message(self):
        kind = self._recv_exact(1)
        (length,) = struct.unpack("!I", self._recv_exact(4))
        return kind, self._recv_exact(length - 4)

    @staticmethod
    def _fields(payload):
        fields = {}
        for part in payload.split(b"\0"):
            if part:
                fields[chr(part[0])] = part[1:].decode(errors="replace")
        return fields

    # -- start-up --------------------------------------------------------

    def request_ssl(self, server_hostname="localhost"):
        """Send SSLRequest; returns the one-byte answer (b'S' or b'N').
        On b'S' the socket is wrapped in TLS without certificate checks."""
        self.sock.sendall(struct.pack("!II", 8, 80877103))
        answer = self._recv_exact(1)
        if answer == b"S":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        return answer

    def startup(self, user, database, password=None, **options):
        """Log in; returns once ReadyForQuery arrives. Raises ServerError."""
        body = struct.pack("!I", 196608)
        for key, value in dict(user=user, database=database, **options).items():
            body += key.encode() + b"\0" + value.encode() + b"\0"
        body += b"\0"
        self.sock.sendall(struct.pack("!I", len(body) + 4) + body)
        scram = None
        while True:
            kind, payload = self.read_message()
            if kind == b"E":
                raise ServerError(self._fields(payload))
            if kind == b"N":
                self.notices.append(self._fields(payload))
            elif kind == b"S":
                key, value, _ = payload.split(b"\0", 2)
                self.params[key.decode()] = value.decode()
            elif kind == b"K":
                self.backend_key = struct.unpack("!II", payload)
            elif kind == b"Z":
                return self
            elif kind == b"R":
                scram = self._authenticate(payload, user, password, scram)
            else:
                raise AssertionError(f"unexpected message {kind!r} during start-up")

    def _authenticate(self, payload, user, password, scram):
        (code,) = struct.unpack("!I", payload[:4])
        if code == 0:  # AuthenticationOk
            return scram
        if password is None:
            raise AssertionError(f"server asked for a password (auth code {code})")
        if code == 3:  # cleartext
            self._send(b"p", password.encode() + b"\0")
        elif code == 5:  # md5 with a 4-byte salt
            inner = hashlib.md5((password + user).encode()).hexdigest().encode()
            outer = hashlib.md5(inner + payload[4:8]).hexdigest()
            self._send(b"p", b"md5" + outer.encode() + b"\0")
        elif code == 10:  # SASL: list of mechanisms
            mechanisms = [m for m in payload[4:].split(b"\0") if m]
            assert b"SCRAM-SHA-256" in mechanisms, mechanisms
            scram = {"nonce": base64.b64encode(os.urandom(18)).decode()}
            scram["first_bare"] = "n=,r=" + scram["nonce"]
            first = ("n,," + scram["first_bare"]).encode()
            self._send(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first)
        elif code == 11:  # SASLContinue: server-first-message
            server_first = payload[4:].decode()
            attrs = dict(item.split("=", 1) for item in server_first.split(","))
            assert attrs["r"].startswith(scram["nonce"]), "server nonce must extend ours"
            salted = hashlib.pbkdf2_hmac(
                "sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"])
            )
            client_key = hmac.digest(salted, b"Client Key", "sha256")
            stored_key = hashlib.sha256(client_key).digest()
            without_proof = "c=biws,r=" + attrs["r"]
            auth_message = ",".join([scram["first_bare"], server_first, without_proof])
            signature = hmac.digest(stored_key, auth_message.encode(), "sha256")
            proof = bytes(a ^ b for a, b in zip(client_key, signature))
            scram["server_key"] = hmac.digest(salted, b"Server Key", "sha256")
            scram["auth_message"] = auth_message
            final = without_proof + ",p=" + base64.b64encode(proof).decode()
            self._send(b"p", final.encode())
        elif code == 12:  # SASLFinal: the server proves it knew the verifier
            expected = hmac.digest(scram["server_key"], scram["auth_message"].encode(), "sha256")
            got = payload[4:].decode()
            assert got == "v=" + base64.b64encode(expected).decode(), "bad server signature"
        else:
            raise AssertionError(f"unsupported authentication request {code}")
        return scram

    # -- queries ---------------------------------------------------------

    def send_query(self, sql):
        self._send(b"Q", sql.encode() + b"\0")

    def simple_query(self, sql):
        """Run sql; returns (rows as lists of str/None, error fields or None)."""
        self.send_query(sql)
        rows, error = [], None
        while True:
            kind, payload = self.read_message()
            if kind == b"D":
                (ncols,) = struct.unpack("!H", payload[:2])
                pos, row = 2, []
                for _ in range(ncols):
                    (n,) = struct.unpack("!i", payload[pos : pos + 4])
                    pos += 4
                    if n < 0:
                        row.append(None)
                    else:
                        row.append(payload[pos : pos + n].decode())
                        pos += n
                rows.append(row)
            elif kind == b"E":
                error = self._fields(payload)
            elif kind == b"N":
                self.notices.append(self._fields(payload))
            elif kind == b"Z":
                return rows, error

    def close(self, graceful=True):
        try:
            if graceful:
                self._send(b"X", b"")
        except OSError:
            pass
        self.sock.close()


def login_error(host, port, user, database, password=None, ssl_request=False):
    """Try to log in; return the ServerError (or None when login succeeded)."""
    session = Session(host, port)
    try:
        if ssl_request:
            session.request_ssl()
        session.startup(user, database, password)
    except ServerError as err:
        return err
    finally:
        session.close()
    return None
