//! `cfg(allot_pg)`: PostgreSQL tests run (a server is named, or this is CI,
//! where they must). Without it `postgres_test!` marks them ignored. Only
//! this crate is rebuilt when the variables change, and the test binaries
//! that use it; no library of the workspace is.

fn main() {
    println!("cargo:rustc-check-cfg=cfg(allot_pg)");
    println!("cargo:rerun-if-env-changed=ALLOT_TEST_DATABASE_URL");
    println!("cargo:rerun-if-env-changed=CI");
    println!("cargo:rerun-if-changed=build.rs");
    let named = std::env::var("ALLOT_TEST_DATABASE_URL").is_ok_and(|url| !url.is_empty());
    let ci = std::env::var("CI").is_ok_and(|ci| ci == "true");
    if named || ci {
        println!("cargo:rustc-cfg=allot_pg");
    }
}
