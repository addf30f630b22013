use jit_test::jit_test;

#[jit_test(scope = "mem:read:orders")]
struct Orders;

fn main() {}
