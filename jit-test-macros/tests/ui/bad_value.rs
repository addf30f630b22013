#![allow(unused_variables)]
#[path = "../support/fixture.rs"]
mod fixture;
use fixture::MemGrant;
use jit_test::jit_test;

#[jit_test(scope = "mem:read:orders", ttl = "30 parsecs", timeout = "0s")]
async fn bad_durations(mem: MemGrant) {}

#[jit_test(scope = "mem:read:orders", ttl = 30)]
async fn not_a_string(mem: MemGrant) {}

#[jit_test(scope = "mem:read:orders", flavor = "many_threads")]
async fn unknown_flavor(mem: MemGrant) {}

#[jit_test(scope = "mem:read:orders", worker_threads = 2)]
async fn workers_without_multi_thread(mem: MemGrant) {}

#[jit_test(scope = "mem:read:orders", flavor = "multi_thread")]
fn flavor_on_a_plain_fn(mem: MemGrant) {}

#[jit_test(scope = "mem:read:orders", deny = "kv:write:cart, mem:read:orders")]
async fn deny_contradicts_scope(mem: MemGrant) {}

fn main() {}
