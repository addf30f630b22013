#![allow(unused_variables)]
#[path = "../support/fixture.rs"]
mod fixture;
use fixture::MemGrant;
use jit_test::jit_test;

#[jit_test(ttl = "30s")]
async fn no_scope(mem: MemGrant) {}

#[jit_test]
async fn no_arguments(mem: MemGrant) {}

fn main() {}
