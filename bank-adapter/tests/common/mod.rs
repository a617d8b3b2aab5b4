//! Helpers shared by the adapter's integration tests.

#![allow(dead_code)]

pub mod openapi;
