//! The migrations of each backend, embedded in the binary and applied at start-up.
//!
//! Files live in `migrations/<backend>/NNNN_description.sql`; sqlx records applied versions
//! and checksums in `_sqlx_migrations`, so re-running is a no-op and a new file upgrades an
//! existing database in place. Add a migration by appending to both lists below.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::db::Pool;
use crate::StoreError;

const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "builtin roles",
        include_str!("../migrations/sqlite/0002_builtin_roles.sql"),
    ),
    (
        3,
        "role projects",
        include_str!("../migrations/sqlite/0003_role_projects.sql"),
    ),
];
const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "builtin roles",
        include_str!("../migrations/postgres/0002_builtin_roles.sql"),
    ),
    (
        3,
        "role projects",
        include_str!("../migrations/postgres/0003_role_projects.sql"),
    ),
    (
        4,
        "change counter",
        include_str!("../migrations/postgres/0004_change_counter.sql"),
    ),
];

fn migrator(files: &[(i64, &'static str, &'static str)]) -> Migrator {
    let migrations = files
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

pub(crate) async fn run(pool: &Pool) -> Result<(), StoreError> {
    match pool {
        Pool::S(p, _) => migrator(SQLITE).run(p).await?,
        Pool::P(p) => migrator(POSTGRES).run(p).await?,
    }
    Ok(())
}
