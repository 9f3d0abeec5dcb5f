-- Storage of amounts: BIGINT minor units against NUMERIC, side by side on one server.
-- Run: psql "$DATABASE_URL" -q -f docs/measurements/numeric-vs-bigint.sql
SET client_min_messages = warning;
CREATE UNLOGGED TABLE src AS SELECT i % 1000 AS account, i::bigint AS version, (i::bigint * 7919) % 100000000 AS amount, i::bigint * 50000 AS dp, i::bigint * 40000 AS cp FROM generate_series(1, 2000000) i;
CREATE UNLOGGED TABLE e_big (account int, version bigint, amount bigint, dp bigint, cp bigint, dpe bigint, cpe bigint, PRIMARY KEY (account, version));
CREATE UNLOGGED TABLE e_num (account int, version bigint, amount numeric, dp numeric, cp numeric, dpe numeric, cpe numeric, PRIMARY KEY (account, version));
\timing on
\echo insert bigint
INSERT INTO e_big SELECT account, version, amount, dp, cp, 0, 0 FROM src;
\echo insert numeric
INSERT INTO e_num SELECT account, version, amount / 100.0, dp / 100.0, cp / 100.0, 0.00, 0.00 FROM src;
\echo sum bigint
SELECT sum(amount), sum(dp - cp) FROM e_big;
\echo sum numeric
SELECT sum(amount), sum(dp - cp) FROM e_num;
\echo sum bigint
SELECT sum(amount), sum(dp - cp) FROM e_big;
\echo sum numeric
SELECT sum(amount), sum(dp - cp) FROM e_num;
\timing off
SELECT pg_size_pretty(pg_relation_size('e_big')) AS bigint_heap, pg_size_pretty(pg_relation_size('e_num')) AS numeric_heap;
DROP TABLE e_big, e_num, src;
