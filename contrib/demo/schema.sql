-- Demo data for pgwarden: one shared database holding two tenants, acme and
-- globex, told apart by tenant_id. scripts/demo.sh loads it into a throwaway
-- PostgreSQL as the superuser; pgwarden reads it as pgwarden_reader and adds
-- each tenant's row filter and column masks (see pgwarden.ini next to this).

CREATE ROLE pgwarden_reader LOGIN;

CREATE TABLE customers (
    id integer PRIMARY KEY,
    tenant_id text NOT NULL,
    name text NOT NULL,
    email text NOT NULL,
    ssn text,
    created_at timestamptz NOT NULL
);
COMMENT ON TABLE customers IS 'People and companies who buy from the tenant';
COMMENT ON COLUMN customers.ssn IS 'Social security number (masked by pgwarden)';

CREATE TABLE products (
    id integer PRIMARY KEY,
    name text NOT NULL,
    category text NOT NULL,
    price numeric(10, 2) NOT NULL
);
COMMENT ON TABLE products IS 'Catalogue shared by every tenant';

CREATE TABLE orders (
    id integer PRIMARY KEY,
    tenant_id text NOT NULL,
    customer_id integer NOT NULL REFERENCES customers,
    product_id integer NOT NULL REFERENCES products,
    quantity integer NOT NULL,
    total numeric(10, 2) NOT NULL,
    placed_at timestamptz NOT NULL
);
COMMENT ON TABLE orders IS 'One row per order line';

CREATE TABLE internal_notes (
    id integer PRIMARY KEY,
    tenant_id text NOT NULL,
    note text NOT NULL
);
COMMENT ON TABLE internal_notes IS 'Staff-only notes; hidden from every client by pgwarden';

INSERT INTO products (id, name, category, price) VALUES
    (1, 'Anvil', 'hardware', 49.90),
    (2, 'Rocket skates', 'sport', 129.00),
    (3, 'Giant magnet', 'hardware', 79.50),
    (4, 'Bird seed', 'food', 4.25),
    (5, 'Portable hole', 'novelty', 999.99),
    (6, 'Tornado kit', 'novelty', 349.00);

-- 40 customers per tenant, with deterministic names and fake SSNs.
INSERT INTO customers (id, tenant_id, name, email, ssn, created_at)
SELECT g,
       CASE WHEN g % 2 = 1 THEN 'acme' ELSE 'globex' END,
       (ARRAY['Ada', 'Ben', 'Cleo', 'Dev', 'Eva', 'Finn', 'Gus', 'Hana', 'Ivo', 'Jun'])[1 + g % 10]
           || ' ' ||
       (ARRAY['Lovelace', 'Okafor', 'Nakamura', 'Silva', 'Novak', 'Berg', 'Haddad', 'Kim'])[1 + g % 8],
       'customer' || g || CASE WHEN g % 2 = 1 THEN '@acme.example' ELSE '@globex.example' END,
       lpad((100 + g)::text, 3, '0') || '-' || lpad((g % 90 + 10)::text, 2, '0') || '-'
           || lpad((1000 + g * 37)::text, 4, '0'),
       timestamptz '2023-06-01 09:00+00' + g * interval '3 days'
FROM generate_series(1, 80) AS g;

-- About 1,500 orders spread over 2024.
INSERT INTO orders (id, tenant_id, customer_id, product_id, quantity, total, placed_at)
SELECT g, c.tenant_id, c.id, p.id, q.quantity, q.quantity * p.price,
       timestamptz '2024-01-01 08:00+00' + (g * 5.77) * interval '1 hour'
FROM generate_series(1, 1500) AS g
JOIN customers c ON c.id = 1 + (g * 7) % 80
JOIN products p ON p.id = 1 + (g * 13) % 6
CROSS JOIN LATERAL (SELECT 1 + (g * 3) % 5 AS quantity) AS q;

INSERT INTO internal_notes (id, tenant_id, note) VALUES
    (1, 'acme', 'Acme is late on its invoices again; do not extend credit.'),
    (2, 'globex', 'Globex asked about a volume discount; escalate to sales.');

GRANT USAGE ON SCHEMA public TO pgwarden_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO pgwarden_reader;
ANALYZE;
