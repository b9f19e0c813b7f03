//! The official Python ESC SDK's whole journey against the real server.
//!
//! Needs a Python with `pulumi-esc-sdk`: `TESSERA_ESC_SDK_PYTHON` (a python executable or a
//! virtual environment directory), else `/tmp/escsdk`. Without one the test prints SKIPPED,
//! except under `CI=true`, where it fails.

use std::path::PathBuf;

use crate::helpers::{TestApp, ADMIN_TOKEN, ORG};

fn sdk_python() -> Option<PathBuf> {
    let given = std::env::var_os("TESSERA_ESC_SDK_PYTHON").map(PathBuf::from);
    let candidate = given.unwrap_or_else(|| PathBuf::from("/tmp/escsdk"));
    let python = if candidate.is_dir() {
        candidate.join("bin").join("python")
    } else {
        candidate
    };
    python.exists().then_some(python)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_sdk_journey() {
    let Some(python) = sdk_python() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("the ESC SDK journey needs TESSERA_ESC_SDK_PYTHON (a venv with pulumi-esc-sdk) under CI=true");
        }
        eprintln!("SKIPPED: no Python with pulumi-esc-sdk (set TESSERA_ESC_SDK_PYTHON)");
        return;
    };
    let app = TestApp::spawn().await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/esc_sdk_journey.py");
    let addr = app.addr.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .env("PULUMI_BACKEND_URL", addr)
            .env("PULUMI_ACCESS_TOKEN", ADMIN_TOKEN)
            .env("TESSERA_ORG", ORG)
            .output()
    })
    .await
    .unwrap()
    .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the SDK journey failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("SDK journey: ok"), "{stdout}");
    assert!(stdout.contains("step: delete"), "{stdout}");
}
