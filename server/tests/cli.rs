//! The `cofferd` command line itself (and, as a side effect, makes `cargo test`
//! build the real binary that the end-to-end tests start).

use std::process::Command;

#[test]
fn help_names_dev_and_config_modes() {
    let out = Command::new(env!("CARGO_BIN_EXE_cofferd"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--dev") && text.contains("--config") && text.contains("migrate"),
        "{text}"
    );
}

#[test]
fn no_mode_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_cofferd"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("either --dev or --config FILE is required")
    );
}
