// node_txn.js: many node-postgres clients at once through a pgwarden in
// transaction pooling mode (tests/integration/test_txn_clients.py). Each
// uses named prepared statements ({name, text, values}), in and out of
// transactions; prints one JSON line: {"ok": n, "bad": [...]}.
//
// Usage: node node_txn.js HOST PORT DATABASE USER PASSWORD CLIENTS ROUNDS
const { Client } = require('pg');

async function one(cfg, me, rounds, bad) {
  const c = new Client(cfg);
  await c.connect();
  try {
    for (let r = 0; r < rounds; r++) {
      const tx = r % 2 === 1;
      if (tx) await c.query('BEGIN');
      const a = await c.query({ name: 'twice', text: 'SELECT $1::int * 2 AS twice, $2::text AS who',
                                values: [me * 1000 + r, `client ${me}`] });
      if (a.rows[0].twice !== 2 * (me * 1000 + r) || a.rows[0].who !== `client ${me}`)
        bad.push(`client ${me} round ${r}: ${JSON.stringify(a.rows[0])}`);
      const t = await c.query({ name: 'tenant', text: 'SELECT name FROM tenant_marker WHERE $1::int >= 0',
                                values: [r] });
      if (t.rows[0].name !== cfg.database) bad.push(`client ${me}: tenant ${t.rows[0].name}`);
      if (tx) await c.query('COMMIT');
    }
    return 1;
  } finally {
    await c.end();
  }
}

async function main() {
  const [host, port, database, user, password, clients, rounds] = process.argv.slice(2);
  const cfg = { host, port: Number(port), database, user, password, connectionTimeoutMillis: 60000 };
  const bad = [];
  const results = await Promise.all(Array.from({ length: Number(clients) }, (_, me) =>
    one(cfg, me, Number(rounds), bad).catch((e) => { bad.push(`client ${me}: ${e.code || ''} ${e.message}`); return 0; })));
  console.log(JSON.stringify({ ok: results.reduce((a, b) => a + b, 0), bad }));
}

main().catch((e) => { console.error(e); process.exit(1); });
