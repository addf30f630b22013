//! `#[jit_test]` used as users use it, against the in-process fixture providers.

#[path = "support/fixture.rs"]
mod fixture;

use std::time::Duration;

use fixture::{KvGrant, MemGrant};
use jit_test::jit_test;

#[jit_test(scope = "mem:read:orders")]
async fn async_fn_gets_a_live_credential(mem: MemGrant) {
    assert!(mem.is_live());
    assert_eq!(mem.permissions, ["mem:read:orders"]);
    tokio::task::yield_now().await;
}

#[jit_test(scope = "mem:read:orders")]
fn plain_fn_gets_a_live_credential(mem: MemGrant) {
    assert!(mem.is_live());
    assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "a plain fn runs outside a runtime"
    );
}

/// Parameters in another order than the scope's schemes, each with its own permissions.
#[jit_test(scope = "mem:read:orders, kv:write:cart, mem:write:orders")]
fn each_parameter_gets_its_schemes_permissions(kv: KvGrant, mem: MemGrant) {
    assert_eq!(kv.permissions, ["kv:write:cart"]);
    assert_eq!(mem.permissions, ["mem:read:orders", "mem:write:orders"]);
}

#[jit_test(scope = "mem:read:orders")]
async fn returns_ok(mem: MemGrant) -> Result<(), std::io::Error> {
    assert!(mem.is_live());
    Ok(())
}

#[jit_test(scope = "mem:read:orders")]
#[should_panic(expected = "no such order")]
fn returns_err_and_fails(_mem: MemGrant) -> Result<(), String> {
    Err("no such order".to_owned())
}

#[jit_test(scope = "mem:read:orders")]
#[should_panic(expected = "boom")]
async fn should_panic_sees_the_bodys_panic(_mem: MemGrant) {
    panic!("boom");
}

#[jit_test(scope = "mem:read:orders")]
fn is_named_after_its_module_path(mem: MemGrant) {
    assert_eq!(mem.test, "expansion::is_named_after_its_module_path");
}

#[jit_test(
    scope = "mem:read:orders",
    deny = "mem:write:orders",
    ttl = "1m 30s",
    timeout = "10s"
)]
fn passes_deny_and_ttl(mem: MemGrant) {
    assert_eq!(mem.deny, ["mem:write:orders"]);
    assert_eq!(mem.ttl, Duration::from_secs(90));
}

#[jit_test(scope = "mem:read:orders", timeout = "100ms")]
#[should_panic(expected = "timed out after 100ms")]
async fn timeout_is_passed(_mem: MemGrant) {
    tokio::time::sleep(Duration::from_secs(60)).await;
}

#[jit_test(scope = "mem:read:orders")]
async fn default_flavor_is_current_thread(_mem: MemGrant) {
    use tokio::runtime::{Handle, RuntimeFlavor};
    assert_eq!(
        Handle::current().runtime_flavor(),
        RuntimeFlavor::CurrentThread
    );
}

#[jit_test(scope = "mem:read:orders", flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_flavor(_mem: MemGrant) {
    use tokio::runtime::{Handle, RuntimeFlavor};
    assert_eq!(
        Handle::current().runtime_flavor(),
        RuntimeFlavor::MultiThread
    );
    assert_eq!(Handle::current().metrics().num_workers(), 2);
}

#[jit_test(scope = "mem:read:orders", flavor = "multi_thread")]
async fn multi_thread_flavor_defaults_to_one_worker_per_cpu(_mem: MemGrant) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(
        tokio::runtime::Handle::current().metrics().num_workers(),
        cpus
    );
}

/// A parameter named like the function, and declared `mut`.
#[jit_test(scope = "mem:read:orders")]
fn mem(mut mem: MemGrant) {
    mem.0.permissions.clear();
    assert!(mem.is_live());
}

mod renamed {
    use super::fixture::MemGrant;
    use jit_test as my_jit_test;

    #[my_jit_test::jit_test(scope = "mem:read:orders", crate = "my_jit_test")]
    fn crate_argument_renames_the_path(mem: MemGrant) {
        assert_eq!(
            mem.test,
            "expansion::renamed::crate_argument_renames_the_path"
        );
    }
}

/// The credential is revoked and proven dead once the test is over.
#[test]
#[allow(unnameable_test_items)] // the inner test is called directly, to look afterwards
fn credential_is_dead_after_the_test() {
    use std::sync::Mutex;
    static PRINCIPAL: Mutex<String> = Mutex::new(String::new());

    #[jit_test(scope = "kv:read:cart")]
    fn remembers_its_principal(kv: KvGrant) {
        assert!(kv.is_live());
        *PRINCIPAL.lock().unwrap() = kv.principal.clone();
    }
    remembers_its_principal();
    let principal = PRINCIPAL.lock().unwrap().clone();
    assert!(!principal.is_empty());
    assert!(
        !fixture::is_live(&principal),
        "{principal} outlived its test"
    );
}

static MIGRATED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

async fn migrate() -> Result<(), String> {
    tokio::task::yield_now().await;
    MIGRATED.store(true, std::sync::atomic::Ordering::SeqCst);
    Ok(())
}

async fn broken_migration() -> Result<(), String> {
    Err("relation \"orders\" already exists".into())
}

#[jit_test(scope = "mem:read:orders", setup = "migrate")]
async fn setup_runs_before_the_grant(mem: MemGrant) {
    assert!(MIGRATED.load(std::sync::atomic::Ordering::SeqCst));
    assert!(mem.is_live());
}

#[jit_test(scope = "mem:read:orders", setup = "broken_migration")]
#[should_panic(expected = "setup failed: Error: \"relation \\\"orders\\\" already exists\"")]
async fn a_failing_setup_fails_the_test_before_anything_is_granted(_mem: MemGrant) {
    unreachable!("the body must not run");
}
