//! HTTP API (filled in below).
