"""API schemas, one module per feature: what callers send and receive. Table models never leave
the database layer."""
