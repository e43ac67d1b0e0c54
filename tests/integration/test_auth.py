"""Who may log in, and which tenant a login reaches.

Login failures are checked with the raw protocol client (pgwire) because the
SQLSTATE is the contract and libpq does not hand it back for start-up errors.
"""

import base64

import psycopg
import pytest

import pgwire
from conftest import DEFAULT_USERS, HOST


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
    # dave has a valid password in the userlist but no [users] entry: told
    # so only once his password is proven
    err = gw.login_error("dave", "acme")
    assert err is not None and err.sqlstate == "28000", err


# Old behaviour: an unknown user was told so (28000 "no tenant is configured
# for user") before any password was asked, which let anyone enumerate the
# user names. Now the exchange runs to the end and fails like a wrong
# password.
def test_user_unknown_everywhere_is_refused(gw):
    err = gw.login_error("mallory", "acme", password="whatever")
    assert err is not None and err.sqlstate == "28P01", err
    assert err.message == 'password authentication failed for user "mallory"'


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


# -- login probing: nothing is told before the password is proven ----------


class Probe:
    """One login attempt seen from the wire: the authentication requests the
    server made (codes), what they carried, and the ErrorResponse."""

    def __init__(self, gw, user, dbname, password):
        session = pgwire.Session(HOST, gw.port)
        self.codes, self.salt, self.iterations, self.md5_salt = [], None, None, None
        original = session._authenticate

        def spy(payload, *args):
            code = int.from_bytes(payload[:4], "big")
            self.codes.append(code)
            if code == 11:
                attrs = dict(a.split("=", 1) for a in payload[4:].decode().split(","))
                self.salt, self.iterations = attrs["s"], int(attrs["i"])
            if code == 5:
                self.md5_salt = payload[4:8]
            return original(payload, *args)

        session._authenticate = spy
        self.error = None
        try:
            session.startup(user, dbname, password)
        except pgwire.ServerError as err:
            self.error = err
        finally:
            session.close()

    def shape(self):
        """What may not differ between one refused name and another."""
        e = self.error
        return (tuple(self.codes), self.iterations, e.sqlstate, e.severity,
                tuple(sorted(e.fields)), e.message.rsplit('"', 2)[0])


# Before authentication, these must be indistinguishable: an unknown user, a
# user with a tenant but no secret, a known user with a wrong password, a user
# without a tenant, a non-admin (or an unknown name) asking for the admin
# console, an admin with a wrong password, a database that is no tenant of
# the user. Old behaviour: the first, the second, the fourth and the fifth
# were refused with 28000 before any password was asked, naming the reason.
BEFORE_AUTH = [
    ("mallory", "acme"),
    ("erin", "acme"),
    ("alice", "acme"),
    ("dave", "acme"),
    ("alice", "pgwarden"),
    ("mallory", "pgwarden"),
    ("admin", "pgwarden"),
    ("alice", "initech"),
]


@pytest.mark.parametrize("secret_format", ["plain", "scram"])
def test_before_authentication_every_failure_looks_the_same(pgwarden, secret_format):
    gw = pgwarden(users={**DEFAULT_USERS, "erin": "acme"}, secret_format=secret_format)
    shapes = set()
    for user, dbname in BEFORE_AUTH:
        first = Probe(gw, user, dbname, "not-the-password")
        again = Probe(gw, user, dbname, "not-the-password")
        case = f"{user}@{dbname}"
        assert first.error is not None, case
        assert first.error.sqlstate == "28P01", (case, first.error)
        assert first.error.message == f'password authentication failed for user "{user}"', case
        # SASL, then SASLContinue with a salt; the failure follows the proof
        assert first.codes == [10, 11], (case, first.codes)
        assert first.iterations == 4096, case
        assert len(base64.b64decode(first.salt)) == 16, case
        # the salt a name gets is the same on every attempt, as for a real user
        assert first.salt == again.salt, case
        shapes.add(first.shape())
    assert len(shapes) == 1, shapes


# After authentication the client is told why it cannot go on: only those who
# know the password learn who is an admin or which tenants a user has.
@pytest.mark.parametrize("user,dbname,sqlstate,words", [
    ("alice", "pgwarden", "28000", "may not use the admin console"),
    ("dave", "acme", "28000", "no tenant is configured"),
    ("alice", "globex", "3D000", "does not exist"),
])
def test_routing_refusals_come_after_authentication(gw, user, dbname, sqlstate, words):
    probe = Probe(gw, user, dbname, gw.passwords[user])
    assert probe.codes == [10, 11, 12, 0], probe.codes  # ... SASLFinal, AuthenticationOk
    assert probe.error is not None and probe.error.sqlstate == sqlstate, probe.error
    assert words in probe.error.message


def test_md5_unknown_user_gets_a_challenge_like_everyone(pgwarden):
    gw = pgwarden(settings={"auth_type": "md5"})
    shapes = set()
    for user in ("mallory", "alice", "dave"):
        first = Probe(gw, user, "acme", "not-the-password")
        again = Probe(gw, user, "acme", "not-the-password")
        assert first.codes == [5] and again.codes == [5], (user, first.codes)
        # md5 salts are random for everyone
        assert first.md5_salt != again.md5_salt, user
        assert first.error.sqlstate == "28P01", (user, first.error)
        shapes.add(first.shape())
    assert len(shapes) == 1, shapes


# Instances behind one address read the same auth_file: an unknown name must
# get the same salt from each, as a real user does, or connecting twice would
# tell them apart.
def test_every_instance_shows_a_name_the_same_salt(pgwarden):
    one, two = pgwarden(), pgwarden()
    for user in ("mallory", "alice"):
        a = Probe(one, user, "acme", "x")
        b = Probe(two, user, "acme", "x")
        assert a.salt == b.salt, user


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
