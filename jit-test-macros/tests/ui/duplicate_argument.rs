#![allow(unused_variables)]
#[path = "../support/fixture.rs"]
mod fixture;
use fixture::MemGrant;
use jit_test::jit_test;

#[jit_test(scope = "mem:read:orders", ttl = "30s", ttl = "1m")]
async fn twice(mem: MemGrant) {}

fn main() {}
