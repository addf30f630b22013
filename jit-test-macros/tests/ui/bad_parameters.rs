#![allow(unused_variables)]
#[path = "../support/fixture.rs"]
mod fixture;
use fixture::{KvGrant, MemGrant};
use jit_test::jit_test;

#[jit_test(scope = "mem:read:orders, kv:read:cart")]
async fn tuple_pattern((mem, kv): (MemGrant, KvGrant)) {}

#[jit_test(scope = "mem:read:orders")]
async fn wildcard(_: MemGrant) {}

#[jit_test(scope = "mem:read:orders")]
async fn generic<T>(mem: MemGrant) {}

struct Suite;
impl Suite {
    #[jit_test(scope = "mem:read:orders")]
    async fn method(&self, mem: MemGrant) {}
}

fn main() {}
