-- Baseline for one directory page: one ordered index scan of 20 rows. Issue 4 names no directory
-- baseline; this one was added with the directory scenario and, like the others, is not changed to
-- follow the service. :partners is set by bench/run.py.
\set page random(1, 3)
SELECT partner_id, level, points FROM bench_balances ORDER BY partner_id LIMIT 20 OFFSET (:page - 1) * 20;
