#![allow(unused_variables)]
#[path = "../support/fixture.rs"]
mod fixture;
use fixture::{KvGrant, MemGrant};
use jit_test::jit_test;

#[jit_test(scope = "mem:read:orders, kv:read:cart")]
async fn no_kv_parameter(mem: MemGrant) {}

#[jit_test(scope = "mem:read:orders")]
async fn kv_parameter_without_permissions(mem: MemGrant, kv: KvGrant) {}

#[jit_test(scope = "mem:read:orders")]
async fn two_of_one_scheme(first: MemGrant, second: MemGrant) {}

#[jit_test(scope = "kv:read:cart")]
async fn parameter_of_another_scheme(mem: MemGrant) {}

#[jit_test(scope = "mem:read:orders, kv:read:cart")]
async fn two_parameters_of_one_scheme(mem: MemGrant, cart: MemGrant) {}

#[jit_test(scope = "mem:read:orders")]
async fn not_a_credential(mem: String) {}

fn main() {}
