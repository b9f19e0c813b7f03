//! Storage benchmarks on SQLite and PostgreSQL: revision save latency, audit append
//! throughput, open-session insert and read. PostgreSQL is skipped when it does not answer.
//!
//! `cargo bench -p tessera-store --bench store` (figures in `docs/benchmarks.md`).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sqlx::Connection;
use tessera_store::access::Principal;
use tessera_store::audit::{AuditContext, AuditRecord};
use tessera_store::members::OrgRole;
use tessera_store::{Keyring, MasterKey, OrgName, QualifiedEnv, SecretBytes, Store};

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test";

async fn prepare(url: &str) -> Store {
    let store = Store::connect(url, Keyring::new(MasterKey::generate().unwrap()))
        .await
        .unwrap();
    let ctx = AuditContext::system();
    let org: OrgName = "bench".parse().unwrap();
    store.create_org(&org, &ctx).await.unwrap();
    store
        .add_member(&org, "root", OrgRole::Admin, &ctx)
        .await
        .unwrap();
    store
        .create_environment(&org, &"app/dev".parse().unwrap(), "", &ctx)
        .await
        .unwrap();
    store
}

fn bench_backend(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, store: &Store) {
    let org: OrgName = "bench".parse().unwrap();
    let env: QualifiedEnv = "app/dev".parse().unwrap();
    let ctx = AuditContext::new("bench").with_source("127.0.0.1");
    let yaml = "values:\n  db:\n    host: db.internal\n    password:\n      fn::secret:\n        ciphertext: AQAAAAHsZ2V0dGluZyBzb21lIGJ5dGVzIGhlcmUgZm9yIHRoZSBiZW5jaG1hcms=\n".repeat(4);
    let mut g = c.benchmark_group(name);
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(1));

    g.bench_function("revision_save", |b| {
        b.iter(|| {
            rt.block_on(store.save_revision(&org, &env, &yaml, None, &ctx))
                .unwrap()
        })
    });
    let rec = AuditRecord::new(&org, "environment.read").env(&env);
    g.bench_function("audit_append", |b| {
        b.iter(|| rt.block_on(store.record_audit(&ctx, &rec)).unwrap())
    });

    let grant = rt
        .block_on(store.authorize_open(
            &Principal::Member {
                login: "root".into(),
            },
            &org,
            std::slice::from_ref(&env),
            &ctx,
        ))
        .unwrap();
    let result = SecretBytes::new(vec![b'x'; 2048]);
    g.bench_function("session_insert_2KiB", |b| {
        b.iter(|| {
            rt.block_on(store.create_session(&grant, &env, &result, 3600))
                .unwrap()
        })
    });
    let session = rt
        .block_on(store.create_session(&grant, &env, &result, 3600))
        .unwrap();
    g.bench_function("session_read_2KiB", |b| {
        b.iter(|| {
            rt.block_on(store.read_session(&grant, &env, &session.id))
                .unwrap()
        })
    });
    g.finish();
}

fn storage(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = rt.block_on(prepare(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    )));
    bench_backend(c, &rt, "sqlite", &sqlite);
    rt.block_on(sqlite.close());

    let name = format!("tessera_bench_{}", std::process::id());
    let created = rt.block_on(async {
        let mut admin = sqlx::PgConnection::connect(PG_ADMIN).await.ok()?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .ok()
    });
    if created.is_none() {
        eprintln!("SKIPPED PostgreSQL benchmarks: {PG_ADMIN} does not answer");
        return;
    }
    let pg = rt.block_on(prepare(&format!(
        "postgres://postgres@127.0.0.1:5432/{name}"
    )));
    bench_backend(c, &rt, "postgres", &pg);
    rt.block_on(async {
        pg.close().await;
        if let Ok(mut admin) = sqlx::PgConnection::connect(PG_ADMIN).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await;
        }
    });
}

criterion_group!(benches, storage);
criterion_main!(benches);
