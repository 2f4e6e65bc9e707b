//! Says, once, that a plain `cargo test` ran without the emulator tier and how to run it.

#[cfg(not(feature = "emulators"))]
#[test]
#[ignore = "emulator tier skipped: `bash scripts/test.sh` installs the local servers and runs it"]
fn emulator_tier() {}
