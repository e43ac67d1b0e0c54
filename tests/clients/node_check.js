// node_check.js: a node-postgres client run by tests/integration/test_clients.py
// against a running pgwarden. node-postgres always uses the extended protocol
// for parameterised queries, names statements when asked, and keeps a pool.
//
// Usage: node node_check.js HOST PORT DATABASE USER PASSWORD
// Prints one JSON object; the Python test checks it. Exits non-zero on failure.
'use strict';

const { Client, Pool } = require('pg');

async function main() {
    const [host, port, database, user, password] = process.argv.slice(2);
    const config = { host, port: Number(port), database, user, password,
                     connectionTimeoutMillis: 10000, ssl: false };
    const out = {};

    const client = new Client(config);
    await client.connect();
    out.tenant = (await client.query('SELECT name FROM tenant_marker')).rows[0].name;
    out.customers = (await client.query(
        'SELECT id, name FROM customers WHERE id >= $1 ORDER BY id', [2])).rows;
    const named = { name: 'by_id', text: 'SELECT name FROM customers WHERE id = $1' };
    out.named = [];
    for (const id of [1, 2, 1]) {
        out.named.push((await client.query({ ...named, values: [id] })).rows[0].name);
    }
    out.types = (await client.query(
        'SELECT $1::int + 1 AS n, $2::text AS t, $3::jsonb AS j, NULL::text AS z',
        [41, 'héllo', JSON.stringify({ a: [1, 2] })])).rows[0];
    try {
        await client.query('SELECT 1 / $1::int', [0]);
        out.error = null;
    } catch (e) {
        out.error = e.code;
    }
    out.after_error = (await client.query('SELECT 2 AS two')).rows[0].two;
    out.multi = (await client.query('SELECT 1 AS a; SELECT 2 AS b')).map(r => r.rows[0]);
    await client.end();

    const pool = new Pool({ ...config, max: 5 });
    const jobs = [];
    for (let i = 0; i < 20; i++)
        jobs.push(pool.query('SELECT $1::int AS i, name FROM tenant_marker', [i]));
    out.pooled = (await Promise.all(jobs)).map(r => r.rows[0].i);
    await pool.end();

    console.log(JSON.stringify(out));
}

main().catch(err => {
    console.error(err);
    process.exit(1);
});
