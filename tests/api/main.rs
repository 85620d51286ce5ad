//! Black-box API tests: the real server on 127.0.0.1:0, a real HTTP client, SQLite and (when
//! `MC_TEST_POSTGRES_URL` is set) PostgreSQL.

mod common;
mod smoke;
