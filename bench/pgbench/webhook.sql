-- Baseline for one order.paid webhook (issue 4): one transaction that locks the partner's row,
-- inserts the event row, inserts two ledger entries and updates the balance. Written once; do not
-- change it to follow the service. :partners is set by bench/run.py (-D partners=N).
\set pid random(1, :partners)
BEGIN;
SELECT points FROM bench_balances WHERE partner_id = :pid FOR UPDATE;
INSERT INTO bench_events (webhook_id, partner_id, body) VALUES (gen_random_uuid()::text, :pid, repeat('x', 900));
INSERT INTO bench_ledger (partner_id, event_id, points, amount) VALUES (:pid, currval('bench_events_id_seq'), 2, 19200);
INSERT INTO bench_ledger (partner_id, event_id, points, amount) VALUES (:pid, currval('bench_events_id_seq'), 4, 50000);
UPDATE bench_balances SET points = points + 6, money = money + 69200, updated_at = now() WHERE partner_id = :pid;
END;
