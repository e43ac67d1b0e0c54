# Red team corpus for test_redteam.py, sent by tenant A (alice, acme_a) on the
# simple and the extended protocol.
# Format: EXPECT | SQL   (a line ending in \ continues on the next line)
# EXPECT: oracle (must succeed through pgwarden and on isoref_a directly,
# and fail on isoshared directly: the predicate is real), ok (must succeed), err (must fail), null (succeeds, every value
# NULL), a SQLSTATE (must fail with it), any (only: no leak, connection ok).
# The text never contains the marker, the secret number or tenant B's id.
#
# Error oracles: a predicate that raises only on tenant B's rows
# (o.tenant_id <> 'acme_a', c.id > 1000) or on hidden catalog rows, in the
# positions the generator of test_isolation does not cover. "ok" means it
# never reached such a row.

# --- window frames, DISTINCT ON, GROUPING SETS, LIMIT/OFFSET expressions
any    | SELECT o.id, sum(o.amount) OVER (ORDER BY o.id ROWS BETWEEN 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) PRECEDING AND CURRENT ROW) FROM orders o ORDER BY o.id LIMIT 3
oracle | SELECT o.id, first_value(o.id) OVER (PARTITION BY 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)) FROM orders o ORDER BY o.id LIMIT 3
oracle | SELECT o.id, row_number() OVER (ORDER BY 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)) FROM orders o ORDER BY o.id LIMIT 3
oracle | SELECT DISTINCT ON (1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)) o.id FROM orders o ORDER BY 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END), o.id
oracle | SELECT DISTINCT 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) FROM orders o
oracle | SELECT o.region, count(*) FROM orders o GROUP BY GROUPING SETS ((o.region), (1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END))) ORDER BY 1, 2
oracle | SELECT count(*) FROM orders o GROUP BY ROLLUP (o.status, 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END))
oracle | SELECT count(*) FROM orders o GROUP BY CUBE (o.status, 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END))
oracle | SELECT o.id FROM orders o ORDER BY o.id LIMIT (SELECT count(*) FROM orders o WHERE 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) = 1)
oracle | SELECT o.id FROM orders o ORDER BY o.id OFFSET (SELECT count(*) FROM orders o WHERE 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) = 1) LIMIT 2
oracle | SELECT o.id FROM orders o ORDER BY o.id FETCH FIRST (SELECT count(*) FROM orders o WHERE 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) = 1) ROWS ONLY
oracle | SELECT string_agg(o.status, ',' ORDER BY 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)) FROM orders o
oracle | SELECT array_agg(DISTINCT 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)) FROM orders o
oracle | SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)) FROM orders o
oracle | SELECT mode() WITHIN GROUP (ORDER BY 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)) FROM orders o
# --- set-returning functions in FROM and in the select list
oracle | SELECT count(*) FROM orders o, generate_series(1, 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)) g
oracle | SELECT count(*) FROM orders o, LATERAL generate_series(1, 2, (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)) g
ok     | SELECT o.id, generate_series(1, 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)) FROM orders o ORDER BY 1 LIMIT 3
ok     | SELECT o.id, unnest(ARRAY[1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)]) FROM orders o ORDER BY 1 LIMIT 3
oracle | SELECT count(*) FROM orders o, LATERAL unnest(ARRAY[1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)]) u
oracle | SELECT count(*) FROM orders o, LATERAL ROWS FROM (generate_series(1, 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END))) g
oracle | SELECT count(*) FROM orders o, LATERAL jsonb_array_elements(CASE WHEN o.tenant_id <> 'acme_a' THEN '{' ELSE '[1]' END::jsonb) j
oracle | SELECT count(*) FROM orders o, LATERAL regexp_matches(o.region, CASE WHEN o.tenant_id <> 'acme_a' THEN '(' ELSE '.' END) m
ok     | SELECT count(*) FROM orders o, LATERAL string_to_table(o.region, CASE WHEN o.tenant_id <> 'acme_a' THEN NULL ELSE 'x' END) s
# --- CTEs: recursive, MATERIALIZED, NOT MATERIALIZED
ok     | WITH RECURSIVE r(id, n) AS (SELECT o.id, 1 FROM orders o WHERE o.id < 3 UNION ALL SELECT o.id, r.n + 1 FROM r JOIN orders o ON o.id = r.id + 1 WHERE r.n < 3 AND 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) = 1) SELECT count(*) FROM r
oracle | WITH x AS NOT MATERIALIZED (SELECT * FROM orders) SELECT count(*) FROM x o WHERE 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) = 1
oracle | WITH x AS MATERIALIZED (SELECT * FROM orders o WHERE 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) = 1) SELECT count(*) FROM x
oracle | WITH x AS (SELECT o.id, 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) AS z FROM orders o) SELECT count(*) FROM x WHERE x.z = 1
oracle | WITH x AS (SELECT * FROM orders) SELECT count(*) FROM x o JOIN x o2 ON o2.id = o.id AND 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) = 1
# --- functions of many kinds, with an argument that errs on B's rows
oracle | SELECT count(*) FROM orders o WHERE int4range(1, CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 2 END) IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE numrange(2, CASE WHEN o.tenant_id <> 'acme_a' THEN 1 ELSE 3 END) @> 2.5
oracle | SELECT count(*) FROM orders o WHERE daterange(o.placed_on, CASE WHEN o.tenant_id <> 'acme_a' THEN o.placed_on - 1 ELSE o.placed_on + 1 END) IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE to_tsquery(CASE WHEN o.tenant_id <> 'acme_a' THEN '&' ELSE 'a' END) IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE to_tsvector('english', o.region) @@ to_tsquery(CASE WHEN o.tenant_id <> 'acme_a' THEN '!!(' ELSE 'north' END)
oracle | SELECT count(*) FROM orders o WHERE o.region LIKE 'n%' ESCAPE CASE WHEN o.tenant_id <> 'acme_a' THEN 'ab' ELSE '\' END
oracle | SELECT count(*) FROM orders o WHERE o.region SIMILAR TO CASE WHEN o.tenant_id <> 'acme_a' THEN '(' ELSE 'n%' END
any    | SELECT count(*) FROM orders o WHERE (o.placed_on, o.placed_on + 1) OVERLAPS (CASE WHEN o.tenant_id <> 'acme_a' THEN 'x' ELSE '2024-01-01' END::date, DATE '2024-12-31')
oracle | SELECT count(*) FROM orders o WHERE o.placed_on::timestamp AT TIME ZONE CASE WHEN o.tenant_id <> 'acme_a' THEN 'No/Such_Zone' ELSE 'UTC' END IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE (o.amount * CASE WHEN o.tenant_id <> 'acme_a' THEN 100000 ELSE 1 END)::int2 IS NOT NULL
ok     | SELECT count(*) FROM orders o WHERE (o.region || CASE WHEN o.tenant_id <> 'acme_a' THEN 'xxxxxxxxxx' ELSE '' END)::varchar(8) IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE CAST(o.amount * CASE WHEN o.tenant_id <> 'acme_a' THEN 1000000 ELSE 1 END AS numeric(4, 0)) IS NOT NULL
any    | SELECT count(*) FROM orders o WHERE (ARRAY[1, 2])[1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)] IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE jsonb_path_query_first('[1]', CASE WHEN o.tenant_id <> 'acme_a' THEN 'strict $.a' ELSE '$[0]' END::jsonpath) IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE jsonb_path_exists('{"a": 1}', '$.a ? (@ > $x)', jsonb_build_object('x', 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)))
oracle | SELECT count(*) FROM orders o WHERE (CASE WHEN o.tenant_id <> 'acme_a' THEN '<a>' ELSE '<a/>' END)::xml IS NOT NULL
any    | SELECT count(*) FROM orders o WHERE xpath(CASE WHEN o.tenant_id <> 'acme_a' THEN '//[' ELSE '/a' END, '<a/>'::xml) IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE regexp_replace(o.region, CASE WHEN o.tenant_id <> 'acme_a' THEN '[' ELSE 'n' END, 'x') IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE format(CASE WHEN o.tenant_id <> 'acme_a' THEN '%s %s' ELSE '%s' END, o.id) IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE to_char(o.placed_on, 'YYYY') = to_char(1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END), '9')
oracle | SELECT count(*) FROM orders o WHERE date_trunc(CASE WHEN o.tenant_id <> 'acme_a' THEN 'fortnight' ELSE 'day' END, o.placed_on::timestamp) IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE extract(epoch FROM o.placed_on) / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) > 0
oracle | SELECT count(*) FROM orders o WHERE decode(CASE WHEN o.tenant_id <> 'acme_a' THEN 'zz' ELSE '00' END, 'hex') IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE encode('x'::bytea, CASE WHEN o.tenant_id <> 'acme_a' THEN 'nope' ELSE 'hex' END) IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE repeat('x', o.amount * CASE WHEN o.tenant_id <> 'acme_a' THEN 1000000 ELSE 0 END) IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE lpad('x', 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)) IS NOT NULL
any    | SELECT count(*) FROM orders o WHERE split_part(o.region, '-', 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) - 1) IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE array_fill(1, ARRAY[1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)]) IS NOT NULL
any    | SELECT count(*) FROM orders o WHERE width_bucket(o.amount, 0, 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) - 1, 5) >= 0
any    | SELECT count(*) FROM orders o WHERE mod(o.amount, 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) - 1) >= 0
any    | SELECT count(*) FROM orders o WHERE o.amount % (1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) - 1) >= 0
ok     | SELECT count(*) FROM orders o WHERE factorial((CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) * 40) > 0
any    | SELECT count(*) FROM orders o WHERE log(0, (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) + 1) > 0
oracle | SELECT count(*) FROM orders o WHERE ln((CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)) > -1
oracle | SELECT count(*) FROM orders o WHERE exp((CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) * -1000 + 1000) > 0
oracle | SELECT count(*) FROM orders o WHERE gcd(o.amount, 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)) > 0
oracle | SELECT count(*) FROM orders o WHERE o.placed_on + (1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)) IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE make_interval(days => 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)) IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE (CASE WHEN o.tenant_id <> 'acme_a' THEN 'nope' ELSE 'on' END)::boolean
oracle | SELECT count(*) FROM orders o WHERE (CASE WHEN o.tenant_id <> 'acme_a' THEN 'x' ELSE '1 day' END)::interval IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE (CASE WHEN o.tenant_id <> 'acme_a' THEN 'x' ELSE '10.0.0.1' END)::inet IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE (CASE WHEN o.tenant_id <> 'acme_a' THEN 'x' ELSE '00000000-0000-0000-0000-000000000000' END)::uuid IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE (CASE WHEN o.tenant_id <> 'acme_a' THEN 'x' ELSE '{1}' END)::int[] IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE (CASE WHEN o.tenant_id <> 'acme_a' THEN '(1' ELSE '[1,2)' END)::int4range IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE (CASE WHEN o.tenant_id <> 'acme_a' THEN 'x' ELSE '1' END)::money IS NOT NULL
ok     | SELECT count(*) FROM orders o WHERE (CASE WHEN o.tenant_id <> 'acme_a' THEN 'x' ELSE 'a' END)::tsquery IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE (CASE WHEN o.tenant_id <> 'acme_a' THEN 'x' ELSE '(1,2)' END)::point IS NOT NULL
ok     | SELECT count(*) FROM orders o WHERE (CASE WHEN o.tenant_id <> 'acme_a' THEN 'x' ELSE 'abc' END)::bytea IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE (CASE WHEN o.tenant_id <> 'acme_a' THEN '12:99' ELSE '12:00' END)::time IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE (CASE WHEN o.tenant_id <> 'acme_a' THEN 'x' ELSE '1' END)::numeric IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE (CASE WHEN o.tenant_id <> 'acme_a' THEN 'x' ELSE '1' END)::float8 IS NOT NULL
oracle | SELECT count(*) FROM orders o WHERE (CASE WHEN o.tenant_id <> 'acme_a' THEN 'x' ELSE '1' END)::oid IS NOT NULL
ok     | SELECT count(*) FROM orders o WHERE (CASE WHEN o.tenant_id <> 'acme_a' THEN 'x' ELSE '1' END)::bit(1) IS NOT NULL
any    | SELECT count(*) FROM orders o WHERE (CASE WHEN o.tenant_id <> 'acme_a' THEN 'x' ELSE '1' END)::macaddr IS NULL
oracle | SELECT count(*) FROM orders o WHERE (CASE WHEN o.tenant_id <> 'acme_a' THEN '{"a":' ELSE '{}' END)::json IS NOT NULL
any    | SELECT count(*) FROM orders o WHERE (CASE WHEN o.tenant_id <> 'acme_a' THEN '-' ELSE 'a' END)::ltree IS NULL OR true
# --- row-level comparisons, IS DISTINCT, NULLIF, CASE with rows/arrays
ok     | SELECT count(*) FROM orders o WHERE ROW(o.id, o.amount) IS DISTINCT FROM ROW(1, 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END))
oracle | SELECT count(*) FROM orders o WHERE NULLIF(ROW(o.id), ROW(1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END))) IS NOT NULL
ok     | SELECT count(*) FROM orders o WHERE ARRAY[o.id] = ARRAY[1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)] OR true
ok     | SELECT count(*) FROM orders o WHERE ARRAY[o.id] && ARRAY[1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)] OR true
ok     | SELECT count(*) FROM orders o WHERE (o.id, o.amount) IN ((1, 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)), (2, 2))
ok     | SELECT count(*) FROM orders o WHERE (o.id, o.amount) < (1, 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)) OR true
ok     | SELECT count(*) FROM orders o WHERE o.id = ANY(ARRAY[1, 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)]) OR true
oracle | SELECT count(*) FROM orders o WHERE o.id <> ALL(ARRAY[1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)])
oracle | SELECT count(*) FROM orders o WHERE o.amount > ALL(SELECT 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END))
oracle | SELECT count(*) FROM orders o WHERE o.amount = SOME(VALUES (1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)))
ok     | SELECT count(*) FROM orders o WHERE COALESCE(o.note, (1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END))::text) IS NOT NULL OR true
oracle | SELECT count(*) FROM orders o WHERE LEAST(o.id, 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)) > 0
ok     | SELECT count(*) FROM orders o WHERE o.amount BETWEEN SYMMETRIC 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) AND 0 OR true
any    | SELECT count(*) FROM orders o WHERE (CASE o.tenant_id WHEN 'acme_a' THEN 1 ELSE 1 / 0 END) = 1
oracle | SELECT count(*) FROM orders o WHERE o.tenant_id = 'acme_a' OR 1 / (o.id - o.id) = 1
oracle | SELECT count(*) FROM orders o WHERE NOT (o.tenant_id <> 'acme_a' AND 1 / (o.id - o.id) = 1)
oracle | SELECT count(*) FROM orders o WHERE o.id = 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)
oracle | SELECT count(*) FROM orders o WHERE o.id IN (1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END))
oracle | SELECT count(*) FROM orders o WHERE o.id IN (SELECT 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END))
oracle | SELECT count(*) FROM orders o WHERE o.id IN (SELECT o2.id FROM orders o2 WHERE o2.id = o.id AND 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) = 1)
ok     | SELECT count(*) FROM orders o WHERE EXISTS (SELECT 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END))
oracle | SELECT count(*) FROM orders o WHERE EXISTS (SELECT 1 FROM products p WHERE p.id = o.product_id AND 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) = 1)
oracle | SELECT count(*) FROM orders o WHERE (SELECT 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)) = 1
ok     | SELECT count(*) FROM orders o WHERE o.id = (SELECT max(p.id) FROM products p WHERE p.id > (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) - 10)
# --- joins: ON conditions on the outer side, FULL JOIN, USING, NATURAL
oracle | SELECT count(*) FROM products p LEFT JOIN orders o ON o.product_id = p.id AND 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM orders o FULL JOIN products p ON o.product_id = p.id AND 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM orders o RIGHT JOIN products p ON o.product_id = p.id AND 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM orders o JOIN customers c ON (c.id, o.amount) = (o.customer_id, 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END)) OR false
oracle | SELECT count(*) FROM orders o JOIN orders o2 USING (id) WHERE 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM orders o NATURAL JOIN (SELECT id, tenant_id FROM orders) o2 WHERE 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id + 1 / (CASE WHEN c.id > 1000 THEN 0 ELSE 1 END) - 1
oracle | SELECT count(*) FROM customers c WHERE c.id + 0 = 1 / (CASE WHEN c.id > 1000 THEN 0 ELSE 1 END)
# --- masked columns in quals (the mask is an expression: fenced or masked first)
oracle | SELECT count(*) FROM customers c WHERE 1 / (CASE WHEN c.ssn IS NOT NULL THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM customers c WHERE 1 / (CASE WHEN c.email LIKE 'Z%' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM customers c WHERE 1 / (CASE WHEN c.phone LIKE 'Z%' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM customers c WHERE 1 / (CASE WHEN c.loyalty_code LIKE 'Z%' THEN 0 ELSE 1 END) = 1
ok | SELECT count(*) FROM customers c WHERE c.email = 'x'
ok | SELECT count(*) FROM customers c WHERE c.phone < 'Z'
ok | SELECT count(*) FROM customers c WHERE c.loyalty_code IN ('a', 'b')
ok | SELECT count(*) FROM customers c WHERE c.ssn IS NULL
# --- the same oracles over catalog rows of hidden objects (the virtual
# catalogs: visible object sets), in views other than pg_class
oracle | SELECT count(*) FROM pg_attribute a WHERE 1 / (CASE WHEN a.attname LIKE 'internal%' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM pg_attribute a WHERE a.attnum > 0 AND 1 / (CASE WHEN a.attname LIKE 'Secr%' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM pg_attribute a WHERE a.attrelid = 'customers'::regclass AND 1 / (CASE WHEN a.attnum = 11 THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM pg_type t WHERE 1 / (CASE WHEN t.typname LIKE '%audit%' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM pg_proc p WHERE 1 / (CASE WHEN p.proname LIKE 'leak%' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM pg_proc p WHERE 1 / (CASE WHEN p.proname = 'spill' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM pg_namespace n WHERE 1 / (CASE WHEN n.nspname IN ('hush', 'trap') THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM pg_constraint c WHERE 1 / (CASE WHEN c.conname LIKE 'audit%' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid AND 1 / (CASE WHEN c.relname LIKE 'audit%' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM pg_depend d WHERE 1 / (CASE WHEN d.objid::regclass::text LIKE 'audit%' THEN 0 ELSE 1 END) = 1
ok     | SELECT count(*) FROM pg_description d WHERE 1 / (CASE WHEN d.objoid > 16490 THEN 0 ELSE 1 END) >= 0
oracle | SELECT count(*) FROM pg_sequence s WHERE 1 / (CASE WHEN s.seqincrement = 1 THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM pg_rewrite r WHERE 1 / (CASE WHEN r.rulename = '_RETURN' AND r.ev_class > 16384 THEN 0 ELSE 1 END) = 1
ok     | SELECT count(*) FROM pg_roles r WHERE 1 / (CASE WHEN r.rolname = 'postgres' THEN 0 ELSE 1 END) = 1
ok     | SELECT count(*) FROM pg_database d WHERE 1 / (CASE WHEN d.datname <> current_database() THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM pg_tables t WHERE 1 / (CASE WHEN t.tablename LIKE 'staff%' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM pg_views v WHERE 1 / (CASE WHEN v.viewname LIKE 'secret%' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM pg_indexes i WHERE 1 / (CASE WHEN i.tablename LIKE 'audit%' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM pg_sequences s WHERE 1 / (CASE WHEN s.sequencename LIKE 'ticket%' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM pg_stat_user_tables s WHERE 1 / (CASE WHEN s.relname LIKE 'audit%' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM pg_statio_user_tables s WHERE 1 / (CASE WHEN s.relname LIKE 'audit%' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM pg_stat_user_indexes s WHERE 1 / (CASE WHEN s.indexrelname LIKE 'audit%' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM information_schema.columns c WHERE 1 / (CASE WHEN c.column_name LIKE 'internal%' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM information_schema.tables t WHERE 1 / (CASE WHEN t.table_name LIKE 'Vau%' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM information_schema.routines r WHERE 1 / (CASE WHEN r.routine_name LIKE 'leak%' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM information_schema.schemata s WHERE 1 / (CASE WHEN s.schema_name = 'hush' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM information_schema.sequences s WHERE 1 / (CASE WHEN s.sequence_name LIKE 'ticket%' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM information_schema.table_privileges p WHERE 1 / (CASE WHEN p.table_name LIKE 'staff%' THEN 0 ELSE 1 END) = 1
oracle | SELECT count(*) FROM information_schema.views v WHERE 1 / (CASE WHEN v.table_name LIKE 'secret%' THEN 0 ELSE 1 END) = 1
any    | SELECT count(*) FROM pg_class c WHERE c.oid IN (SELECT d.objid FROM pg_depend d WHERE 1 / (CASE WHEN d.refobjid > 16493 THEN 0 ELSE 1 END) = 1)
ok     | SELECT count(*) FROM pg_class c, LATERAL (SELECT 1 / (CASE WHEN c.relname LIKE 'audit%' THEN 0 ELSE 1 END)) x
oracle | SELECT (SELECT count(*) FROM pg_class c WHERE 1 / (CASE WHEN c.relname LIKE 'audit%' THEN 0 ELSE 1 END) = 1)
oracle | WITH RECURSIVE r AS (SELECT c.oid FROM pg_class c WHERE 1 / (CASE WHEN c.relname LIKE 'audit%' THEN 0 ELSE 1 END) = 1) SELECT count(*) FROM r
ok     | SELECT count(*) FROM pg_class c WHERE (c.relname, 1) > ('', 1 / (CASE WHEN c.relname LIKE 'audit%' THEN 0 ELSE 1 END))
oracle | SELECT count(*) FROM pg_class c WHERE c.relname = ANY (ARRAY['x', (1 / (CASE WHEN c.relname LIKE 'audit%' THEN 0 ELSE 1 END))::text])
oracle | SELECT count(*) FROM pg_class c GROUP BY 1 / (CASE WHEN c.relname LIKE 'audit%' THEN 0 ELSE 1 END)
oracle | SELECT count(*) OVER (PARTITION BY 1 / (CASE WHEN c.relname LIKE 'audit%' THEN 0 ELSE 1 END)) FROM pg_class c LIMIT 1
oracle | SELECT DISTINCT ON (1 / (CASE WHEN c.relname LIKE 'audit%' THEN 0 ELSE 1 END)) c.relname FROM pg_class c
oracle | SELECT count(*) FROM pg_class c, generate_series(1, 1 / (CASE WHEN c.relname LIKE 'audit%' THEN 0 ELSE 1 END)) g
ok     | SELECT c.relname, generate_series(1, 1 / (CASE WHEN c.relname LIKE 'audit%' THEN 0 ELSE 1 END)) FROM pg_class c LIMIT 1
oracle | COPY (SELECT c.relname FROM pg_class c WHERE 1 / (CASE WHEN c.relname LIKE 'audit%' THEN 0 ELSE 1 END) = 1) TO STDOUT
ok     | COPY (SELECT o.id FROM orders o WHERE 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) = 1 LIMIT 2) TO STDOUT WITH (FORMAT csv, HEADER, FORCE_QUOTE *)
ok     | COPY (SELECT o.id FROM orders o WHERE 1 / (CASE WHEN o.tenant_id <> 'acme_a' THEN 0 ELSE 1 END) = 1 LIMIT 2) TO STDOUT WITH (FORMAT binary)
# --- names of hidden objects via OID scans: a hidden OID answers as a missing one
null | SELECT string_agg(x::oid::regclass::text, ',') FILTER (WHERE x > 16493) FROM generate_series(16384, 17000) x
null | SELECT string_agg(format_type(x::oid, NULL), ',') FILTER (WHERE x > 16493) FROM generate_series(16384, 17000) x
null | SELECT string_agg(pg_describe_object(1259, x::oid, 0), ',') FILTER (WHERE x > 16493) FROM generate_series(16384, 17000) x
null | SELECT string_agg(pg_get_viewdef(x::oid), ',') FROM generate_series(16384, 17000) x
null | SELECT string_agg(pg_get_functiondef(x::oid), ',') FROM generate_series(16384, 17000) x
null | SELECT string_agg(pg_get_triggerdef(x::oid), ',') FROM generate_series(16384, 17000) x
null | SELECT string_agg(obj_description(x::oid), ',') FROM generate_series(16384, 17000) x
null | SELECT string_agg(col_description(x::oid, 1), ',') FROM generate_series(16384, 17000) x
null | SELECT string_agg(pg_get_function_arguments(x::oid), ',') FROM generate_series(16384, 17000) x
null | SELECT string_agg(x::text, ',') FILTER (WHERE has_table_privilege(x::oid, 'select')) FROM generate_series(16494, 17000) x
null | SELECT string_agg(x::text, ',') FILTER (WHERE pg_table_is_visible(x::oid)) FROM generate_series(16494, 17000) x
null | SELECT string_agg(x::text, ',') FILTER (WHERE pg_type_is_visible(x::oid)) FROM generate_series(16494, 17000) x
null | SELECT string_agg(x::text, ',') FILTER (WHERE pg_function_is_visible(x::oid)) FROM generate_series(16384, 17000) x
null | SELECT string_agg(pg_get_userbyid(x::oid)::text, ',') FILTER (WHERE x::oid::regrole IS NULL) FROM generate_series(10, 20000) x
any  | SELECT string_agg(pg_get_indexdef(x::oid), ',') FROM generate_series(16384, 17000) x
any  | SELECT string_agg(pg_get_constraintdef(x::oid), ',') FROM generate_series(16384, 17000) x
any  | SELECT string_agg(pg_identify_object(1259, x::oid, 0)::text, ',') FROM generate_series(16384, 17000) x
any  | SELECT string_agg(pg_identify_object(1247, x::oid, 0)::text, ',') FROM generate_series(16384, 17000) x
any  | SELECT string_agg(pg_identify_object(1255, x::oid, 0)::text, ',') FROM generate_series(16384, 17000) x
any  | SELECT string_agg(pg_identify_object(2615, x::oid, 0)::text, ',') FROM generate_series(2200, 17000) x
any  | SELECT string_agg(pg_identify_object_as_address(1259, x::oid, 0)::text, ',') FROM generate_series(16384, 17000) x
# --- catalogs read through every statement form
any  | COPY (SELECT string_agg(relname, ',') FROM pg_class) TO STDOUT
any  | VALUES ((SELECT string_agg(relname, ',') FROM pg_class))
any  | TABLE pg_class
any  | TABLE pg_attribute
any  | TABLE pg_type
any  | TABLE pg_proc
any  | TABLE pg_depend
any  | SELECT (SELECT string_agg(relname, ',') FROM pg_class) UNION ALL SELECT 'x'
any  | SELECT * FROM (VALUES (1)) v, LATERAL (SELECT string_agg(relname, ',') FROM pg_class) x
any  | WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 2) SELECT (SELECT string_agg(relname, ',') FROM pg_class) FROM r
any  | PREPARE rt_pc AS SELECT string_agg(relname, ',') FROM pg_class; EXECUTE rt_pc; DEALLOCATE rt_pc
any  | BEGIN; DECLARE rt_c2 SCROLL CURSOR FOR SELECT relname FROM pg_class ORDER BY relname; FETCH ABSOLUTE 5 FROM rt_c2; FETCH LAST FROM rt_c2; FETCH BACKWARD ALL FROM rt_c2; COMMIT
any  | SELECT row_to_json(c) FROM pg_class c
any  | SELECT c FROM pg_attribute c
any  | SELECT to_json(t) FROM pg_tables t
any  | SELECT * FROM pg_tables, pg_class LIMIT 50
any  | SELECT string_agg(t.typname, ',') FROM pg_type t WHERE t.typtype = 'c'
any  | SELECT string_agg(attname, ',') FROM pg_attribute WHERE attnum > 0
any  | SELECT string_agg(c.relname, ',') FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
any  | SELECT string_agg(objid::text || ':' || refobjid::text, ',') FROM pg_depend WHERE objid > 16493 OR refobjid > 16493
any  | SELECT string_agg(column_name, ',') FROM information_schema.columns
any  | SELECT string_agg(table_name, ',') FROM information_schema.column_privileges
any  | SELECT string_agg(table_name, ',') FROM information_schema.role_table_grants
any  | SELECT string_agg(table_name, ',') FROM information_schema.view_table_usage
any  | SELECT string_agg(table_name, ',') FROM information_schema.key_column_usage
any  | SELECT string_agg(udt_name, ',') FROM information_schema.column_udt_usage
any  | SELECT string_agg(object_name, ',') FROM information_schema.usage_privileges
any  | SELECT string_agg(specific_name, ',') FROM information_schema.parameters
any  | SELECT string_agg(sequence_name, ',') FROM information_schema.sequences
any  | SELECT string_agg(trigger_name, ',') FROM information_schema.triggers
any  | SELECT string_agg(constraint_name, ',') FROM information_schema.check_constraints
any  | SELECT string_agg(user_defined_type_name, ',') FROM information_schema.user_defined_types
any  | SELECT string_agg(attribute_name, ',') FROM information_schema.attributes
# --- statistics and volume of filtered relations
null | SELECT reltuples, relpages, relallvisible FROM pg_class WHERE relname IN ('customers', 'orders')
null | SELECT n_live_tup, n_dead_tup, seq_tup_read, n_tup_ins FROM pg_stat_user_tables WHERE relname IN ('customers', 'orders')
null | SELECT heap_blks_read, heap_blks_hit FROM pg_statio_user_tables WHERE relname IN ('customers', 'orders')
null | SELECT idx_scan, idx_tup_read FROM pg_stat_user_indexes WHERE relname IN ('customers', 'orders')
null | SELECT pg_relation_size('orders'), pg_table_size('orders'), pg_indexes_size('orders'), pg_total_relation_size('customers')
null | SELECT pg_relation_size('orders_customer_idx'), pg_relation_size('customers_pkey')
null | SELECT pg_stat_get_live_tuples('orders'::regclass), pg_stat_get_numscans('orders'::regclass)
null | SELECT tup_returned, tup_fetched, tup_inserted, xact_commit FROM pg_stat_database
42501 | EXPLAIN SELECT * FROM orders WHERE status < 'x'
42501 | EXPLAIN (ANALYZE, BUFFERS) SELECT count(*) FROM orders
42501 | EXPLAIN (COSTS OFF, GENERIC_PLAN) SELECT * FROM customers WHERE id = $1
42501 | EXPLAIN (FORMAT JSON) SELECT * FROM pg_class
42501 | EXPLAIN SELECT * FROM information_schema.columns
42501 | EXPLAIN (ANALYZE) SELECT * FROM products p JOIN orders o ON o.product_id = p.id
any | EXPLAIN ASK how many orders
42501 | PREPARE rt_ex AS SELECT * FROM orders; EXPLAIN EXECUTE rt_ex
err    | BEGIN; DECLARE rt_c3 CURSOR FOR SELECT * FROM orders; EXPLAIN FETCH rt_c3
42501 | SELECT * FROM pg_stats WHERE tablename = 'orders'
42501 | SELECT * FROM pg_statistic
42501 | SELECT * FROM pg_stats_ext
# --- server-wide state that could count other tenants' activity
any  | SELECT pid, relation, mode FROM pg_locks
any  | SELECT pid, query, state FROM pg_stat_activity
any  | SELECT * FROM pg_prepared_statements
any  | SELECT * FROM pg_cursors
any  | SELECT * FROM pg_prepared_xacts
any  | SELECT * FROM pg_stat_replication
any  | SELECT * FROM pg_replication_slots
any  | SELECT * FROM pg_stat_progress_vacuum
any  | SELECT * FROM pg_stat_slru
err  | SELECT pg_advisory_lock(1)
err  | SELECT pg_try_advisory_lock(1)
err  | SELECT nextval('ticket_seq')
err  | SELECT currval('ticket_seq')
err  | SELECT txid_current()
err  | SELECT pg_current_xact_id()
err  | SELECT pg_notify('x', 'y')
err  | LISTEN rt_chan
err  | NOTIFY rt_chan
any    | SELECT pg_blocking_pids(1)
err  | SELECT * FROM pg_ls_dir('.')
err  | SELECT pg_read_file('postgresql.conf')
err  | SELECT lo_import('/etc/passwd')
err  | SELECT pg_sleep(0.01)
err  | SELECT set_config('search_path', 'hush, public', false)
err  | SET search_path = hush, public
err  | SET ROLE postgres
err  | SET SESSION AUTHORIZATION postgres
err  | RESET ALL; SELECT * FROM keyring
err  | SELECT * FROM hush.keyring
err  | SELECT * FROM trap.spill()
err  | SELECT trap.spill()
err  | SELECT leak_fn()
err  | SELECT public.leak_fn()
err  | SELECT * FROM secret_view
err  | SELECT * FROM ticket_seq
err  | TABLE staff_salaries
# --- whole rows, system columns, star expansion of masked relations
any  | SELECT c::text FROM customers c
any  | SELECT row_to_json(c) FROM customers c
any  | SELECT to_jsonb(c) - 'name' FROM customers c
any  | SELECT json_object_keys(row_to_json(c)) FROM customers c
any  | SELECT (c).* FROM customers c
any  | SELECT c.* FROM customers c, orders o WHERE o.customer_id = c.id LIMIT 3
any  | SELECT * FROM customers NATURAL JOIN orders
any  | SELECT * FROM customers c JOIN orders o USING (tenant_id) LIMIT 3
any  | SELECT pg_column_size(c.*) FROM customers c
any  | SELECT count(*) FROM customers c1, customers c2 WHERE c1 = c2
any  | SELECT count(*) FROM customers c1 WHERE c1 IN (SELECT c2 FROM customers c2)
any  | SELECT c.tableoid::regclass, count(*) FROM customers c GROUP BY 1
err  | SELECT ctid, xmin, xmax, cmin, cmax FROM customers
err  | SELECT max(ctid) FROM orders
err  | SELECT (NULL::customers).*
err  | SELECT * FROM json_populate_record(NULL::customers, '{}')
any    | SELECT * FROM jsonb_populate_recordset(NULL::orders, '[{}]')
err  | SELECT NULL::_customers
err  | SELECT 'audit_secrets'::text::regclass
err  | SELECT 'audit_secrets'::regtype
err  | SELECT '_audit_secrets'::regtype
any    | SELECT 'hush'::regnamespace
err  | SELECT 'leak_fn'::regproc
err  | SELECT 'leak_fn()'::regprocedure
# --- masked values: functions over the masked expression, orderings, counts
any  | SELECT id, email FROM customers ORDER BY email, id
any  | SELECT id FROM customers ORDER BY phone, id
any  | SELECT id FROM customers ORDER BY ssn NULLS FIRST, id
any  | SELECT count(DISTINCT email), count(DISTINCT phone), count(DISTINCT ssn) FROM customers
any  | SELECT length(email), length(phone), length(loyalty_code) FROM customers
any  | SELECT min(email), max(email), min(phone), max(phone) FROM customers
any  | SELECT email, count(*) FROM customers GROUP BY email
any  | SELECT count(*) FROM customers c1 JOIN customers c2 ON c1.email = c2.email
any  | SELECT id, rank() OVER (ORDER BY email) FROM customers
# --- operators and other catalogs without a visible set of their own
any  | SELECT string_agg(oprcode::text, ',') FROM pg_operator WHERE oprnamespace <> 'pg_catalog'::regnamespace
any  | SELECT string_agg(oprcode::text, ',') FROM pg_operator WHERE oid > 16384
any  | TABLE pg_operator
any  | SELECT o.oprcode FROM pg_operator o WHERE o.oprleft = 'integer'::regtype AND o.oprright = 'text'::regtype
any  | SELECT string_agg(DISTINCT oprnamespace::regnamespace::text, ',') FROM pg_operator
any  | SELECT count(*) FROM pg_amop WHERE amopopr > 16384
any  | SELECT count(*) FROM pg_opclass WHERE oid > 16384
any  | SELECT count(*) FROM pg_cast WHERE oid > 16384
any  | SELECT count(*) FROM pg_aggregate WHERE aggfnoid > 16384
any  | SELECT count(*) FROM pg_collation WHERE oid > 16384
any  | SELECT count(*) FROM pg_ts_config WHERE oid > 16384
any  | SELECT count(*) FROM pg_conversion WHERE oid > 16384
any  | SELECT count(*) FROM pg_enum
any  | SELECT count(*) FROM pg_range WHERE rngtypid > 16384
any  | SELECT count(*) FROM pg_inherits
any  | SELECT count(*) FROM pg_policy
any  | SELECT count(*) FROM pg_init_privs WHERE objoid > 16384
any  | SELECT count(*) FROM pg_largeobject_metadata
any  | SELECT count(*) FROM pg_seclabels
any  | SELECT count(*) FROM pg_statistic_ext
any  | SELECT count(*) FROM pg_attrdef
any  | SELECT string_agg(rolname, ',') FROM pg_roles
any  | SELECT string_agg(usename, ',') FROM pg_user
any  | SELECT string_agg(datname, ',') FROM pg_database
any  | SELECT pg_database_size('isoshared')
any  | SELECT has_database_privilege('isoshared', 'connect')
any  | SELECT pg_has_role('postgres', 'member')
any  | SELECT string_agg(nspname || ':' || nspacl::text, ',') FROM pg_namespace
any  | SELECT 1 OPERATOR(trap.=) 'x'
# --- row locks and lock waits (an oracle of other sessions' activity)
err  | SELECT * FROM orders FOR UPDATE
err  | SELECT * FROM orders FOR SHARE SKIP LOCKED
err  | SELECT * FROM orders FOR KEY SHARE NOWAIT
err  | SELECT * FROM products FOR UPDATE
err  | BEGIN; DECLARE rt_c4 CURSOR FOR SELECT * FROM orders FOR UPDATE; FETCH 1 FROM rt_c4; COMMIT
err  | LOCK TABLE orders IN ACCESS SHARE MODE
err  | BEGIN; LOCK TABLE products; COMMIT
err  | SELECT pg_try_advisory_xact_lock(1)
err  | SELECT pg_advisory_unlock_all()
any  | BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE; SELECT count(*) FROM orders; COMMIT
any  | BEGIN; SET TRANSACTION SNAPSHOT '00000003-00000002-1'; COMMIT
err  | SELECT pg_export_snapshot()
err  | SELECT * FROM pg_logical_slot_peek_changes('x', NULL, NULL)
err  | SELECT pg_cancel_backend(1)
err  | SELECT pg_terminate_backend(1)
err  | SELECT pg_reload_conf()
err  | SELECT dblink('dbname=isoshared', 'SELECT 1')
err  | SELECT query_to_xml('SELECT * FROM audit_secrets', true, true, '')
err  | SELECT table_to_xml('orders', true, true, '')
err  | SELECT cursor_to_xml('rt_none', 1, true, true, '')
err  | SELECT database_to_xml(true, true, '')
err  | SELECT schema_to_xml('public', true, true, '')
err  | SELECT xpath_table('id', 'x', 'orders', '/a', 'true')
err  | DO $$ BEGIN PERFORM 1; END $$
err  | CALL pg_catalog.pg_sleep(0)
err  | CREATE TEMP TABLE rt_t AS SELECT * FROM orders
err  | SELECT * INTO TEMP rt_t2 FROM orders
err  | WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d
err  | WITH u AS (UPDATE orders SET note = 'x' RETURNING *) SELECT count(*) FROM u
any  | COPY orders TO STDOUT
err  | COPY orders FROM STDIN
err  | COPY (SELECT 1) TO '/tmp/rt_out'
err  | COPY (SELECT 1) TO PROGRAM 'id'
err  | PREPARE rt_w AS DELETE FROM orders
err  | EXECUTE rt_never_prepared
err  | DEALLOCATE ALL; EXECUTE rt_bobs
err  | DISCARD ALL; SELECT * FROM audit_secrets
err  | VACUUM orders
err  | ANALYZE orders
err  | REFRESH MATERIALIZED VIEW secret_view
err  | SECURITY LABEL ON TABLE orders IS 'x'
err  | COMMENT ON TABLE orders IS 'x'
err  | ALTER SYSTEM SET work_mem = '1GB'
err  | LOAD 'plpgsql'
err  | CHECKPOINT
err  | IMPORT FOREIGN SCHEMA public FROM SERVER s INTO public
