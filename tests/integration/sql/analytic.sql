# Realistic analytic queries for test_differential.py, run as tenant A through
# pgwarden and directly on isoref_a (A's rows only, masks applied).
# Format: ordered|bag | SQL   (bag: compared regardless of row order)

bag     | SELECT id, name, city FROM customers
ordered | SELECT * FROM customers ORDER BY id
bag     | TABLE customers
ordered | TABLE products ORDER BY id
ordered | SELECT c.name, count(o.id) AS n, sum(o.amount) AS total FROM customers c \
          JOIN orders o ON o.customer_id = c.id GROUP BY c.name ORDER BY total DESC, c.name
bag     | SELECT c.city, p.category, sum(o.amount) FROM orders o \
          JOIN customers c ON c.id = o.customer_id JOIN products p ON p.id = o.product_id \
          GROUP BY c.city, p.category
ordered | SELECT c.id, c.name, o.id AS order_id FROM customers c \
          LEFT JOIN orders o ON o.customer_id = c.id AND o.amount > 495 ORDER BY c.id, o.id
bag     | SELECT status, count(*), avg(amount), min(placed_on), max(placed_on) FROM orders GROUP BY status
ordered | WITH monthly AS (SELECT date_trunc('month', placed_on) AS m, sum(amount) AS total \
          FROM orders GROUP BY 1) \
          SELECT m, total, total - lag(total) OVER (ORDER BY m) AS delta FROM monthly ORDER BY m
ordered | WITH RECURSIVE days(d) AS (SELECT date '2024-01-01' UNION ALL \
          SELECT d + 1 FROM days WHERE d < date '2024-01-31') \
          SELECT d, count(o.id) FROM days LEFT JOIN orders o ON o.placed_on = d GROUP BY d ORDER BY d
ordered | WITH RECURSIVE chain(id, depth) AS (SELECT 1, 0 UNION ALL \
          SELECT c.id + 1, depth + 1 FROM chain JOIN customers c ON c.id = chain.id WHERE depth < 10) \
          SELECT * FROM chain ORDER BY depth
ordered | SELECT id, customer_id, amount, \
          rank() OVER (PARTITION BY customer_id ORDER BY amount DESC, id) AS r \
          FROM orders ORDER BY customer_id, r LIMIT 100
ordered | SELECT customer_id, id, sum(amount) OVER (PARTITION BY customer_id ORDER BY placed_on, id \
          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running \
          FROM orders WHERE customer_id <= 3 ORDER BY customer_id, placed_on, id
ordered | SELECT id, amount, ntile(4) OVER (ORDER BY amount, id) AS quartile FROM orders ORDER BY id LIMIT 50
bag     | SELECT customer_id, amount, lead(amount) OVER (PARTITION BY customer_id ORDER BY id), \
          first_value(id) OVER (PARTITION BY customer_id ORDER BY id) FROM orders WHERE customer_id IN (1, 2)
bag     | SELECT id, count(*) OVER () FROM customers
ordered | WITH ranked AS (SELECT o.*, dense_rank() OVER (PARTITION BY region ORDER BY amount DESC) AS dr \
          FROM orders o) SELECT region, id, amount FROM ranked WHERE dr <= 2 ORDER BY region, amount DESC, id
bag     | SELECT region, status, sum(amount) FROM orders GROUP BY GROUPING SETS ((region), (status), ())
bag     | SELECT region, status, count(*), grouping(region, status) FROM orders GROUP BY ROLLUP (region, status)
bag     | SELECT region, product_id, sum(amount) FROM orders GROUP BY CUBE (region, product_id)
ordered | SELECT c.id, c.name, last.id, last.placed_on FROM customers c CROSS JOIN LATERAL \
          (SELECT o.id, o.placed_on FROM orders o WHERE o.customer_id = c.id \
          ORDER BY o.placed_on DESC, o.id DESC LIMIT 1) last ORDER BY c.id
ordered | SELECT c.id, o.cnt FROM customers c, LATERAL (SELECT count(*) AS cnt FROM orders o \
          WHERE o.customer_id = c.id AND o.status = 'paid') o ORDER BY 1
ordered | SELECT DISTINCT ON (customer_id) customer_id, id, amount FROM orders \
          ORDER BY customer_id, amount DESC, id
bag     | SELECT region, count(*) FILTER (WHERE status = 'paid') AS paid, \
          count(*) FILTER (WHERE status = 'cancelled') AS cancelled, \
          sum(amount) FILTER (WHERE amount > 250) FROM orders GROUP BY region
ordered | SELECT c.id, c.name, (SELECT max(o.amount) FROM orders o WHERE o.customer_id = c.id) AS biggest \
          FROM customers c ORDER BY c.id
bag     | SELECT c.id FROM customers c WHERE EXISTS \
          (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.amount > 490)
bag     | SELECT c.id FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o \
          WHERE o.customer_id = c.id AND o.status = 'cancelled' AND o.region = 'north')
bag     | SELECT o.id FROM orders o WHERE o.amount > \
          (SELECT avg(amount) FROM orders o2 WHERE o2.region = o.region) AND o.id < 300
bag     | SELECT customer_id FROM orders WHERE status = 'paid' UNION SELECT id FROM customers WHERE city = 'Oslo'
bag     | SELECT customer_id FROM orders WHERE region = 'north' \
          INTERSECT SELECT customer_id FROM orders WHERE region = 'south'
bag     | SELECT id FROM customers EXCEPT SELECT customer_id FROM orders WHERE id < 20
bag     | SELECT city FROM customers UNION ALL SELECT region FROM orders WHERE id < 20
ordered | SELECT id, amount FROM orders ORDER BY amount DESC, id LIMIT 10 OFFSET 5
bag     | SELECT id, CASE WHEN amount < 100 THEN 'small' WHEN amount < 300 THEN 'medium' \
          ELSE 'large' END AS size FROM orders WHERE id <= 200
ordered | SELECT date_trunc('week', placed_on)::date AS week, count(*) FROM orders GROUP BY 1 ORDER BY 1
bag     | SELECT extract(dow FROM placed_on) AS dow, to_char(placed_on, 'Mon') AS mon, count(*) \
          FROM orders GROUP BY 1, 2
ordered | SELECT id, name, signup_date, age(date '2025-01-01', signup_date) FROM customers ORDER BY id
bag     | SELECT upper(name), lower(city), length(name), substr(name, 1, 3), \
          replace(name, 'Customer', 'C'), concat_ws('/', city, name), left(email, 3), right(email, 6) \
          FROM customers
bag     | SELECT split_part(email, '@', 2), position('@' IN email), trim(both 'x' FROM email), \
          lpad(id::text, 5, '0'), email || '!' FROM customers
ordered | SELECT json_agg(json_build_object('id', id, 'name', name, 'email', email) ORDER BY id) \
          FROM customers WHERE id <= 5
bag     | SELECT c.city, jsonb_object_agg(c.id, c.loyalty_code) FROM customers c GROUP BY c.city
ordered | SELECT row_to_json(c) FROM customers c ORDER BY id
ordered | SELECT c::text FROM customers c ORDER BY c.id
bag     | SELECT * FROM (VALUES (1, 'one'), (2, 'two')) AS v(n, word) JOIN customers c ON c.id = v.n
ordered | VALUES (1, 'a'), (2, 'b') ORDER BY 1 DESC
ordered | SELECT p.name, sum(o.amount) AS revenue, \
          round(100.0 * sum(o.amount) / sum(sum(o.amount)) OVER (), 2) AS pct \
          FROM orders o JOIN products p ON p.id = o.product_id GROUP BY p.name ORDER BY revenue DESC, p.name
bag     | SELECT loyalty_code, count(*) FROM customers c JOIN orders o ON o.customer_id = c.id \
          GROUP BY loyalty_code
bag     | SELECT ssn, phone, count(*) FROM customers GROUP BY ssn, phone
bag     | SELECT c1.id, c2.id FROM customers c1 JOIN customers c2 ON c1.city = c2.city AND c1.id < c2.id
ordered | SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id HAVING count(*) > 74 \
          ORDER BY n DESC, customer_id
ordered | SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY amount), \
          percentile_disc(0.9) WITHIN GROUP (ORDER BY amount), mode() WITHIN GROUP (ORDER BY status) \
          FROM orders
bag     | SELECT region, string_agg(DISTINCT status, ',' ORDER BY status) FROM orders GROUP BY region
bag     | SELECT region, array_agg(DISTINCT product_id ORDER BY product_id) FROM orders GROUP BY region
ordered | SELECT count(*), count(DISTINCT customer_id), sum(amount), min(amount), max(amount), \
          avg(amount)::numeric(10,2), stddev(amount)::numeric(10,4) FROM orders
bag     | SELECT c.id, coalesce(sum(o.amount), 0) FROM customers c \
          LEFT JOIN orders o ON o.customer_id = c.id AND o.status = 'new' GROUP BY c.id
bag     | SELECT * FROM customers c FULL JOIN (SELECT customer_id, count(*) FROM orders \
          WHERE region = 'east' AND amount > 480 GROUP BY customer_id) e ON e.customer_id = c.id
ordered | SELECT n, (SELECT count(*) FROM customers) FROM generate_series(1, 5) AS g(n) ORDER BY n
bag     | SELECT count(*) FROM orders o JOIN customers c USING (tenant_id)
bag     | SELECT count(*) FROM customers, orders WHERE customers.id = orders.customer_id \
          AND customers.signup_date < orders.placed_on
bag     | SELECT * FROM orders WHERE placed_on BETWEEN '2024-03-01' AND '2024-03-07' \
          AND region IN ('north', 'east')
bag     | SELECT * FROM orders WHERE note IS NOT NULL AND note LIKE 'note 1%'
bag     | SELECT c.name, p.name FROM customers c CROSS JOIN products p WHERE c.id <= 3
ordered | SELECT * FROM products WHERE price > (SELECT avg(price) FROM products) ORDER BY price
bag     | SELECT * FROM orders WHERE id = 42
bag     | SELECT * FROM orders WHERE id > 2990 OR id > 100000
bag     | SELECT DISTINCT tenant_id FROM orders
bag     | SELECT email, md5(email), loyalty_code = md5('x') FROM customers
ordered | SELECT region, sum(amount) AS total, \
          sum(amount) * 100 / sum(sum(amount)) OVER () AS share FROM orders GROUP BY region ORDER BY region
