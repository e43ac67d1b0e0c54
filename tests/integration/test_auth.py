"""Who may log in, and which tenant a login reaches.

Login failures are checked with the raw protocol client (pgwire) because the
SQLSTATE is the contract and libpq does not hand it back for start-up errors.
"""

import subprocess

import psycopg
import pytest

import pgwire
from conftest import HOST


@pytest.fixture(scope="module")
def gw(pgwarden):
    return pgwarden()


def tenant_of(conn):
    return conn.execute("SELECT name FROM tenant_marker").fetchone()[0]


# -- routing ---------------------------------------------------------------


def test_each_user_reaches_only_their_tenant(gw):
    with gw.connect("alice", "acme") as alice, gw.connect("bob", "globex") as bob:
        assert tenant_of(alice) == "acme"
        assert tenant_of(bob) == "globex"
        names = [r[0] for r in alice.execute("SELECT name FROM customers ORDER BY id")]
        assert names == ["Ada Acme", "Abe Acme", "Amy Acme"]
        names = [r[0] for r in bob.execute("SELECT name FROM customers ORDER BY id")]
        assert names == ["Gus Globex", "Gia Globex"]


@pytest.mark.parametrize("dbname", ["acme", "globex"])
def test_user_with_two_tenants_picks_by_dbname(gw, dbname):
    with gw.connect("carol", dbname) as conn:
        assert tenant_of(conn) == dbname


@pytest.mark.parametrize("user,dbname", [
    ("alice", "globex"),
    ("bob", "acme"),
    ("carol", "initech"),
    ("alice", "postgres"),
])
def test_dbname_outside_the_users_tenants_is_refused(gw, user, dbname):
    err = gw.login_error(user, dbname)
    assert err is not None, f"{user} logged in to {dbname}"
    assert err.sqlstate == "3D000", err
    assert err.severity == "FATAL"


def test_user_without_a_tenant_is_refused(gw):
    # dave has a valid password in the userlist but no [users] entry
    err = gw.login_error("dave", "acme")
    assert err is not None and err.sqlstate == "28000", err


def test_user_unknown_everywhere_is_refused(gw):
    err = gw.login_error("mallory", "acme", password="whatever")
    assert err is not None and err.sqlstate == "28000", err


def test_wrong_password_is_refused(gw):
    err = gw.login_error("alice", "acme", password="not-alice-secret")
    assert err is not None and err.sqlstate == "28P01", err
    with pytest.raises(psycopg.OperationalError, match="password"):
        gw.connect("alice", "acme", password="not-alice-secret")


def test_refused_login_leaves_the_gateway_serving(gw):
    for _ in range(20):
        assert gw.login_error("alice", "acme", password="bad") is not None
    with gw.connect("alice", "acme") as conn:
        assert tenant_of(conn) == "acme"


# -- auth modes ------------------------------------------------------------

MODES = [
    # (auth_type, userlist secret format)
    ("scram-sha-256", "plain"),
    ("scram-sha-256", "scram"),
    ("md5", "plain"),
    ("md5", "md5"),
]


@pytest.mark.parametrize("auth_type,secret_format", MODES)
def test_password_modes_accept_the_right_password(pgwarden, auth_type, secret_format):
    gw = pgwarden(settings={"auth_type": auth_type}, secret_format=secret_format)
    # libpq's implementation of the exchange...
    with gw.connect("bob", "globex") as conn:
        assert tenant_of(conn) == "globex"
    # ...and an independent one, which also checks the SCRAM server signature
    session = pgwire.Session(HOST, gw.port)
    session.startup("bob", "globex", gw.passwords["bob"])
    rows, error = session.simple_query("SELECT name FROM tenant_marker")
    session.close()
    assert error is None and rows == [["globex"]]
    err = gw.login_error("bob", "globex", password="wrong")
    assert err is not None and err.sqlstate == "28P01", err


def test_scram_mode_asks_for_scram(pgwarden):
    gw = pgwarden(settings={"auth_type": "scram-sha-256"})
    session = pgwire.Session(HOST, gw.port)
    seen = []
    original = session._authenticate

    def spy(payload, *args):
        seen.append(int.from_bytes(payload[:4], "big"))
        return original(payload, *args)

    session._authenticate = spy
    session.startup("alice", "acme", gw.passwords["alice"])
    session.close()
    assert seen[0] == 10, f"expected AuthenticationSASL first, got codes {seen}"


def test_trust_mode_needs_no_password_but_still_routes(pgwarden):
    gw = pgwarden(settings={"auth_type": "trust"})
    with gw.connect("alice", "acme", password="anything at all") as conn:
        assert tenant_of(conn) == "acme"
    session = pgwire.Session(HOST, gw.port)
    session.startup("carol", "globex", password=None)  # no password exchange at all
    session.close()
    assert gw.login_error("dave", "acme").sqlstate == "28000"
    assert gw.login_error("alice", "globex").sqlstate == "3D000"


# -- TLS -------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def tls_settings(certificate, mode):
    cert, key = certificate
    return {"client_tls": mode, "tls_cert_file": str(cert), "tls_key_file": str(key)}


def test_tls_allow_serves_both_tls_and_plaintext(pgwarden, certificate):
    gw = pgwarden(settings=tls_settings(certificate, "allow"))
    with gw.connect("alice", "acme", sslmode="require") as conn:
        assert conn.pgconn.ssl_in_use
        assert tenant_of(conn) == "acme"
    with gw.connect("alice", "acme", sslmode="disable") as conn:
        assert not conn.pgconn.ssl_in_use
        assert tenant_of(conn) == "acme"


def test_tls_require_refuses_plaintext(pgwarden, certificate):
    gw = pgwarden(settings=tls_settings(certificate, "require"))
    with gw.connect("bob", "globex", sslmode="require") as conn:
        assert conn.pgconn.ssl_in_use
        assert tenant_of(conn) == "globex"
    err = gw.login_error("bob", "globex")  # no SSLRequest
    assert err is not None and err.sqlstate == "28000", err
    with pytest.raises(psycopg.OperationalError):
        gw.connect("bob", "globex", sslmode="disable")


def test_tls_disable_declines_ssl_request(pgwarden):
    gw = pgwarden(settings={"client_tls": "disable"})
    session = pgwire.Session(HOST, gw.port)
    assert session.request_ssl() == b"N"
    session.startup("alice", "acme", gw.passwords["alice"])
    session.close()
    with pytest.raises(psycopg.OperationalError):
        gw.connect("alice", "acme", sslmode="require")
