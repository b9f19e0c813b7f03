//! `tessera eval` as a user runs it: over every golden case of the language, the binary's
//! stdout (redacted and revealed), stderr diagnostics and exit status match the expected
//! files, with `FILE` in `FILE:LINE:COL` being the path under `--dir`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn tessera() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
}

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tessera-lang/testdata");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("env.yaml").exists())
        .collect();
    cases.sort();
    cases
}

fn context_args(case: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(case.join("context.json")) else {
        return Vec::new();
    };
    let map: std::collections::BTreeMap<String, String> = serde_json::from_str(&text).unwrap();
    map.iter()
        .flat_map(|(k, v)| ["--context".to_owned(), format!("{k}={v}")])
        .collect()
}

#[test]
fn eval_matches_every_golden_case() {
    let cases = cases();
    assert!(cases.len() >= 30);
    for case in cases {
        let dir = case.to_str().unwrap();
        for (flag, expected_file) in [
            (None, "redacted.json"),
            (Some("--show-secrets"), "revealed.json"),
        ] {
            let mut cmd = tessera();
            cmd.args(["eval", "--dir", dir, "env"])
                .args(context_args(&case));
            cmd.args(flag);
            let out = cmd.output().unwrap();
            let stdout = String::from_utf8(out.stdout).unwrap();
            let stderr = String::from_utf8(out.stderr).unwrap();
            let expected_diags = std::fs::read_to_string(case.join("diagnostics.txt")).unwrap();
            let shown: String = expected_diags
                .lines()
                .map(|l| format!("{dir}/{l}\n"))
                .collect();
            assert_eq!(stderr, shown, "stderr of {}", case.display());
            match std::fs::read_to_string(case.join(expected_file)) {
                Ok(expected) => {
                    assert!(out.status.success(), "{} should succeed", case.display());
                    assert_eq!(stdout, expected, "stdout of {}", case.display());
                }
                Err(_) => {
                    assert_eq!(
                        out.status.code(),
                        Some(1),
                        "{} should fail with 1",
                        case.display()
                    );
                    assert_eq!(stdout, "", "nothing on stdout for {}", case.display());
                }
            }
        }
    }
}

#[test]
fn default_dir_and_project_env_names() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("app")).unwrap();
    std::fs::write(
        tmp.path().join("app/base.yaml"),
        "values:\n  region: eu-west-1\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("app/dev.yaml"),
        "imports: [app/base]\nvalues:\n  bad: ${nope}\n",
    )
    .unwrap();
    let out = tessera()
        .current_dir(tmp.path())
        .args(["eval", "app/dev"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "app/dev.yaml:3:10: error: unknown property \"nope\"\n"
    );
}

#[test]
fn output_formats() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("e.yaml"),
        "values:\n  pw:\n    fn::secret: s'q\n  environmentVariables:\n    PW: ${pw}\n    N: 3\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = tessera()
            .args(["eval", "--dir", tmp.path().to_str().unwrap(), "e"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run(&["--format", "dotenv"]), "N=\"3\"\nPW=\"[secret]\"\n");
    assert_eq!(
        run(&["--format", "dotenv", "--show-secrets"]),
        "N=\"3\"\nPW=\"s'q\"\n"
    );
    assert_eq!(
        run(&["--format", "shell", "--show-secrets"]),
        "export N='3'\nexport PW='s'\\''q'\n"
    );
    assert!(run(&["--format", "yaml"]).contains("pw: '[secret]'"));
    assert_eq!(run(&["--format", "string"]).lines().count(), 1);
}

#[test]
fn bad_invocations_are_clear() {
    let out = tessera()
        .args(["eval", "--dir", "/nonexistent", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("environment \"x\" not found"));
    let out = tessera()
        .args(["eval", "x", "--context", "novalue"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected KEY=VALUE"));
    let out = tessera()
        .args(["eval", "x", "--context", "rootEnvironment.name=y"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("forbidden context key"));
}
