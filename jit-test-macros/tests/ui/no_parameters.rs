use jit_test::jit_test;

#[jit_test(scope = "mem:read:orders")]
async fn takes_nothing() {}

fn main() {}
