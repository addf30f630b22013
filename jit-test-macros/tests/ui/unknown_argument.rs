#![allow(unused_variables)]
#[path = "../support/fixture.rs"]
mod fixture;
use fixture::MemGrant;
use jit_test::jit_test;

#[jit_test(scope = "mem:read:orders", tll = "30s")]
async fn misspelt(mem: MemGrant) {}

#[jit_test(scope = "mem:read:orders", flavour = "multi_thread", worker_threads = 2)]
async fn also_misspelt(mem: MemGrant) {}

/// Every problem is reported at once.
#[jit_test(scop = "mem:read:orders")]
async fn everything_wrong() {}

fn main() {}
