#![allow(unused_variables)]
#[path = "../support/fixture.rs"]
mod fixture;
use fixture::MemGrant;
use jit_test::jit_test;

#[jit_test(scope = "mem:read:orders, mem:read:order items")]
async fn space_in_resource(mem: MemGrant) {}

#[jit_test(scope = "mem:read")]
async fn missing_resource(mem: MemGrant) {}

#[jit_test(scope = "")]
async fn empty(mem: MemGrant) {}

fn main() {}
