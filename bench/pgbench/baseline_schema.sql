-- Tables of the pgbench baselines (issue 4): the least a database must store for the service's
-- requests, apart from the service's own tables. Written once; not changed to follow the service.
CREATE TABLE bench_balances (
    partner_id bigint PRIMARY KEY,
    points bigint NOT NULL DEFAULT 0,
    level text NOT NULL DEFAULT 'affiliate',
    money bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE bench_events (
    id bigserial PRIMARY KEY,
    webhook_id text NOT NULL UNIQUE,
    partner_id bigint NOT NULL,
    body text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE bench_ledger (
    id bigserial PRIMARY KEY,
    partner_id bigint NOT NULL,
    event_id bigint NOT NULL,
    points integer NOT NULL,
    amount bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bench_ledger_partner_id ON bench_ledger (partner_id);
