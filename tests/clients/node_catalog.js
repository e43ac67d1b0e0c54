// node-postgres through pgwarden: the metadata statements knex and
// Node.js admin tools send (information_schema with bound values, which
// node-postgres sends as Parse/Bind/Execute with untyped parameters), and
// the catalog queries an ORM's introspection uses.
// Usage: node node_catalog.js HOST PORT DATABASE USER PASSWORD -> one JSON line.
const { Client } = require('pg');

async function main() {
  const [host, port, database, user, password] = process.argv.slice(2);
  const c = new Client({ host, port: Number(port), database, user, password });
  await c.connect();
  const out = {};
  const q = async (sql, values) => (await c.query(sql, values)).rows;
  out.version = (await q('select version()'))[0].version.split(' ')[0];
  out.database = (await q('select current_database() as d'))[0].d;
  out.hasCustomers = (await q('select * from information_schema.tables where table_name = $1 and table_schema = current_schema()', ['customers'])).length;
  out.hasHidden = (await q('select * from information_schema.tables where table_name = $1 and table_schema = current_schema()', ['internal_notes'])).length;
  out.columns = (await q('select column_name, data_type from information_schema.columns where table_name = $1 and table_catalog = current_database() and table_schema = current_schema() order by ordinal_position', ['orders'])).map(r => r.column_name);
  out.regclass = (await q('select $1::regclass::oid > 0 as ok', ['public.customers']))[0].ok;
  try {
    await q('select $1::regclass', ['internal_notes']);
    out.hiddenRegclass = 'found';
  } catch (e) {
    out.hiddenRegclass = e.code + ' ' + e.message;
  }
  try {
    await q('select $1::regclass', ['zz_missing_rel']);
    out.missingRegclass = 'found';
  } catch (e) {
    out.missingRegclass = e.code + ' ' + e.message;
  }
  out.fks = (await q(`select conname, pg_get_constraintdef(oid) as def from pg_constraint
                      where conrelid = $1::regclass and contype = 'f'`, ['orders'])).map(r => r.conname);
  out.sizes = (await q(`select relname, pg_relation_size(oid) as s from pg_class
                        where relname = any($1) order by relname`, [['products', 'big_facts']]))
    .map(r => [r.relname, r.s]);
  await c.end();
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
