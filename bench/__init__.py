"""The load benchmark: the service under wrk and hey, next to pgbench baselines (see bench/README.md)."""
