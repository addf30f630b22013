#![allow(unused_variables)]
#[path = "../support/fixture.rs"]
mod fixture;
use fixture::MemGrant;
use jit_test::jit_test;

#[jit_test(scope = "mem:read:orders")]
#[test]
fn plain_test(mem: MemGrant) {}

#[jit_test(scope = "mem:read:orders")]
#[tokio::test]
async fn tokio_test(mem: MemGrant) {}

fn main() {}
