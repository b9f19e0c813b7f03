//! Writes a stream of revisions to `app/stream` in organization `crash`, printing each
//! revision number on stdout once its transaction (revision and audit entry) committed.
//! Used by the crash-safety test, which kills it with SIGKILL mid-stream.
//!
//! Usage: `tessera-store-writer DATABASE_URL COUNT` with `TESSERA_MASTER_KEY` set.

use std::io::Write;
use std::process::ExitCode;

use tessera_store::audit::AuditContext;
use tessera_store::{Keyring, MasterKey, OrgName, QualifiedEnv, Store, StoreError};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera-store-writer: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, count] = args.as_slice() else {
        return Err("usage: tessera-store-writer DATABASE_URL COUNT".into());
    };
    let count: u64 = count.parse()?;
    let key = MasterKey::from_base64(&std::env::var("TESSERA_MASTER_KEY")?)?;
    let store = Store::connect(url, Keyring::new(key)).await?;
    let org: OrgName = "crash".parse()?;
    let env: QualifiedEnv = "app/stream".parse()?;
    let ctx = AuditContext::new("writer");
    match store.create_org(&org, &ctx).await {
        Ok(_) | Err(StoreError::AlreadyExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    match store.create_environment(&org, &env, "", &ctx).await {
        Ok(_) | Err(StoreError::AlreadyExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let mut out = std::io::stdout().lock();
    for i in 0..count {
        let n = store
            .save_revision(&org, &env, &format!("values:\n  i: {i}\n"), None, &ctx)
            .await?;
        writeln!(out, "{n}")?;
        out.flush()?;
    }
    Ok(())
}
