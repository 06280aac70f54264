-- Baseline for one partner status read (issue 4): one primary-key select of the balance row.
-- Written once; do not change it to follow the service. :partners is set by bench/run.py.
\set pid random(1, :partners)
SELECT partner_id, points, level, money, updated_at FROM bench_balances WHERE partner_id = :pid;
