//! The CLI end to end: a real `tessera server` on a loopback port with a fresh SQLite
//! database, driven by the real `tessera` binary as a user would (login, env commands,
//! open in every format, run with variables, files and masking).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "test-token";

struct Server {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_server() -> Server {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "server",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data.path())
        .env(
            "TESSERA_MASTER_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )
        .env("TESSERA_BOOTSTRAP_TOKEN", TOKEN)
        .env("TESSERA_BOOTSTRAP_ORG", "acme")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tessera server");
    let server = Server {
        child,
        url,
        _data: data,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server did not start listening on {}", server.url);
}

fn write_script(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

struct Cli<'a> {
    config: &'a Path,
}

impl Cli<'_> {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
        c.args(args)
            .env("TESSERA_CONFIG_DIR", self.config)
            .env_remove("TESSERA_URL")
            .env_remove("TESSERA_TOKEN")
            .env_remove("PULUMI_BACKEND_URL")
            .env_remove("PULUMI_ACCESS_TOKEN")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tessera {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

#[test]
fn everyday_commands_end_to_end() {
    let server = start_server();
    let config = tempfile::tempdir().unwrap();
    let cli = Cli {
        config: config.path(),
    };

    // Not logged in: the error says what to do.
    let out = cli.run(&["env", "ls"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tessera login"));
    assert!(!out.stderr.contains(&0x1b), "no colours without a terminal");

    let out = cli.run(&["login", &server.url, "--token", "wrong-token"]);
    assert!(!out.status.success(), "a bad token must not log in");

    cli.ok(&["login", &server.url, "--token", TOKEN]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(config.path().join("credentials.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "credentials must be readable by the user only"
        );
    }
    let who = cli.ok(&["whoami"]);
    assert!(who.contains("admin") && who.contains("acme"), "{who}");

    cli.ok(&["env", "init", "app/base"]);
    cli.ok(&["env", "set", "app/base", "region", "eu-west-1"]);
    let def = "imports:\n  - app/base\nvalues:\n  port: 8080\n  db:\n    password:\n      fn::secret: hunter2-s3cr3t\n  environmentVariables:\n    REGION: ${region}\n    DB_PASSWORD: ${db.password}\n  files:\n    CONFIG_FILE: \"port=${port}\"\n";
    let file = config.path().join("dev.yaml");
    std::fs::write(&file, def).unwrap();
    let out = cli
        .cmd(&["env", "check", "app/base", "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cli.cmd(&["env", "init", "acme/app/dev", "--file"])
        .arg(&file)
        .output()
        .unwrap();
    let current = cli.ok(&["env", "get", "app/dev"]);
    assert!(
        !current.contains("hunter2"),
        "get shows ciphertext only: {current}"
    );
    assert!(current.contains("ciphertext"), "{current}");
    cli.ok(&["env", "set", "app/dev", "api.key", "k3y-value", "--secret"]);
    assert!(!cli.ok(&["env", "get", "app/dev"]).contains("k3y-value"));
    let out = cli.run(&["env", "set", "app/dev", "port[0]", "1"]);
    assert!(!out.status.success(), "setting into a scalar is refused");

    let ls = cli.ok(&["env", "ls"]);
    assert!(
        ls.contains("acme/app/base") && ls.contains("acme/app/dev"),
        "{ls}"
    );

    // Open in every format.
    let json: serde_json::Value =
        serde_json::from_str(&cli.ok(&["env", "open", "app/dev"])).unwrap();
    assert_eq!(json["db"]["password"], "hunter2-s3cr3t");
    assert_eq!(json["region"], "eu-west-1");
    assert_eq!(json["api"]["key"], "k3y-value");
    assert_eq!(
        cli.ok(&["env", "open", "app/dev", "db.password"]),
        "\"hunter2-s3cr3t\"\n"
    );
    assert_eq!(
        cli.ok(&["env", "open", "app/dev", "region", "--format", "string"]),
        "eu-west-1\n"
    );
    let dotenv = cli.ok(&["env", "open", "app/dev", "--format", "dotenv"]);
    assert!(
        dotenv.contains("REGION=\"eu-west-1\"")
            && dotenv.contains("DB_PASSWORD=\"hunter2-s3cr3t\""),
        "{dotenv}"
    );
    let shell = cli.ok(&["env", "open", "app/dev", "--format", "shell"]);
    assert!(shell.contains("export REGION='eu-west-1'"), "{shell}");
    let out = cli.run(&[
        "env",
        "open",
        "app/dev",
        "--format",
        "dotenv",
        "--github-actions",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("::add-mask::hunter2-s3cr3t"));

    // Run: variables, a file that is gone afterwards, masking, exit codes.
    let out = cli.run(&["run", "app/dev", "--", "sh", "-c", "echo region=$REGION pw=$DB_PASSWORD; cat $CONFIG_FILE; echo; echo $CONFIG_FILE >&2; exit 7"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(stdout.contains("region=eu-west-1 pw=[secret]"), "{stdout}");
    assert!(stdout.contains("port=8080"), "{stdout}");
    assert!(!stdout.contains("hunter2"));
    let file_path = stderr.lines().last().unwrap().trim().to_owned();
    assert!(
        !Path::new(&file_path).exists(),
        "{file_path} must be removed after the command"
    );
    let out = cli.run(&[
        "run",
        "app/dev",
        "-i",
        "--",
        "sh",
        "-c",
        "echo $DB_PASSWORD",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hunter2-s3cr3t\n",
        "-i turns masking off"
    );

    // Tags and versions.
    cli.ok(&["env", "tag", "set", "app/dev", "team", "payments"]);
    assert!(cli
        .ok(&["env", "tag", "ls", "app/dev"])
        .contains("team: payments"));
    let versions = cli.ok(&["env", "version", "ls", "app/dev"]);
    assert!(versions.lines().count() >= 2, "{versions}");
    cli.ok(&["env", "version", "tag", "app/dev@stable", "1"]);
    cli.ok(&["env", "get", "app/dev@stable"]);

    // Retracting the latest revision brings back the one before it as a new revision.
    let before: Vec<String> = cli
        .ok(&["env", "version", "ls", "app/dev"])
        .lines()
        .map(str::to_owned)
        .collect();
    let latest: u64 = before[0].split('\t').next().unwrap().parse().unwrap();
    cli.ok(&[
        "env",
        "version",
        "retract",
        &format!("app/dev@{latest}"),
        "--reason",
        "leaked",
    ]);
    let json: serde_json::Value =
        serde_json::from_str(&cli.ok(&["env", "open", "app/dev"])).unwrap();
    assert!(
        json.get("api").is_none(),
        "the retracted change is gone: {json}"
    );
    assert_eq!(json["db"]["password"], "hunter2-s3cr3t");
    let after = cli.ok(&["env", "version", "ls", "app/dev"]);
    assert!(after.starts_with(&format!("{}\t", latest + 1)), "{after}");

    // Pulumi: pulumiConfig goes to `pulumi config set`, values on stdin, never in our output.
    cli.ok(&[
        "env",
        "set",
        "app/dev",
        "pulumiConfig.aws:region",
        "us-west-2",
    ]);
    cli.ok(&[
        "env",
        "set",
        "app/dev",
        "pulumiConfig.app:token",
        "s3cr3t-tok",
        "--secret",
    ]);
    let work = tempfile::tempdir().unwrap();
    let stack = work.path().join("Pulumi.dev.yaml");
    std::fs::write(&stack, "environment:\n  - app/dev\n").unwrap();
    let bin = work.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = work.path().join("pulumi.log");
    write_script(&bin.join("pulumi"), "#!/bin/sh\nif [ \"$1\" = version ]; then echo v3.0.0; exit 0; fi\necho \"ARGS: $*\" >> \"$PULUMI_LOG\"\necho \"STDIN: $(cat)\" >> \"$PULUMI_LOG\"\n");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = cli
        .cmd(&["pulumi", "config", "--stack-file"])
        .arg(&stack)
        .env("PATH", &path)
        .env("PULUMI_LOG", &log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !shown.contains("s3cr3t-tok"),
        "the secret never appears in tessera's output: {shown}"
    );
    let recorded = std::fs::read_to_string(&log).unwrap();
    assert!(
        recorded.contains("ARGS: config set --path aws:region --stack dev\nSTDIN: us-west-2"),
        "{recorded}"
    );
    assert!(
        recorded
            .contains("ARGS: config set --path app:token --stack dev --secret\nSTDIN: s3cr3t-tok"),
        "{recorded}"
    );
    let out = cli
        .cmd(&["pulumi", "config", "--dry-run", "--stack-file"])
        .arg(&stack)
        .output()
        .unwrap();
    let dry = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        dry.starts_with("config:")
            && dry.contains("us-west-2")
            && dry.contains("[secret]")
            && !dry.contains("s3cr3t-tok"),
        "{dry}"
    );

    // Edit: a refused save reopens the editor with the problem inline; the fix then saves.
    cli.ok(&["env", "init", "app/edited"]);
    let editor = work.path().join("editor.sh");
    let state = work.path().join("edited-once");
    write_script(&editor, "#!/bin/sh\nif [ ! -f \"$EDIT_STATE\" ]; then touch \"$EDIT_STATE\"; printf 'values:\\n  x: ${nope}\\n' > \"$1\"; else grep -q '^# tessera: ' \"$1\" && printf 'values:\\n  x: fixed\\n' > \"$1\"; fi\n");
    let out = cli
        .cmd(&["env", "edit", "app/edited"])
        .env("EDITOR", &editor)
        .env_remove("VISUAL")
        .env("EDIT_STATE", &state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused"));
    assert_eq!(
        cli.ok(&["env", "open", "app/edited", "x", "--format", "string"]),
        "fixed\n"
    );

    // Deleting needs --yes without a terminal.
    let out = cli.run(&["env", "rm", "app/base"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    cli.ok(&["env", "rm", "app/base", "--yes"]);
    assert!(!cli.ok(&["env", "ls"]).contains("app/base"));

    // Explaining and reviewing access.
    let explained = cli.ok(&["admin", "explain", "admin", "app/dev"]);
    assert!(
        explained.starts_with("admin has admin on acme/app/dev"),
        "{explained}"
    );
    assert!(explained.contains("admin"), "{explained}");
    let review = cli.ok(&["admin", "access-review", "--unused-days", "0"]);
    assert!(
        review.contains("Tokens unused") && review.contains("First-time opens"),
        "{review}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&cli.ok(&["admin", "access-review", "--json"])).unwrap();
    assert!(json["firstTimeOpens"].is_array(), "{json}");

    cli.ok(&["logout"]);
    assert!(!cli.run(&["whoami"]).status.success());
}
