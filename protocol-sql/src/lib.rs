//! The PostgreSQL frontend (not built yet): nothing here runs.
//!
//! It will implement `raft::Frontend` for the PostgreSQL v3 wire protocol
//! with `pgwire`, so that `psql`, `pgbench` and drivers connect unchanged:
//! startup and authentication (SCRAM-SHA-256, later TLS), the simple and
//! extended query protocols (parse, bind, describe, execute, sync), and
//! errors as SQLSTATE codes. Like `protocol-resp` it will hold no database
//! logic: it turns messages into calls on the `sql` service and results
//! into row descriptions and data rows.
