//! Least privilege: a `revoke-demo` process whose PostgreSQL role holds only the grants the
//! migrations document (no `CREATE`, no ownership) launches on a schema migrated by another
//! role, serves, revokes and syncs.

mod common;

use common::{demo_binary, Db};
use revoke_tests::{free_port, login, me_status, workspace_root, Demo};
use rocket_revoke_core::store::{PgStore, Store};

/// The documented grants (see the header of the first PostgreSQL migration).
fn grants(schema: &str, role: &str) -> Vec<String> {
    vec![
        format!("GRANT USAGE ON SCHEMA {schema} TO {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"),
        format!("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}"),
    ]
}

#[tokio::test]
async fn the_demo_runs_with_only_the_documented_grants() {
    let Some(db) = Db::postgres().await else {
        return;
    };
    let Db::Postgres { base, schema } = &db else {
        unreachable!("postgres() returns a PostgreSQL database")
    };
    let role = format!("revoke_app_{}", &schema[2..14]);

    // A migration job (the schema's owner) migrates; the app role only gets DML.
    let owner = PgStore::connect(&db.url()).await.expect("connect as owner");
    owner.migrate().await.expect("migrate as owner");
    let pool = owner.pool().clone();
    sqlx::query(&format!("CREATE ROLE {role} LOGIN"))
        .execute(&pool)
        .await
        .expect("create role");
    for grant in grants(schema, &role) {
        sqlx::query(&grant).execute(&pool).await.expect("grant");
    }

    let sep = if base.contains('?') { '&' } else { '?' };
    let app_base = match base.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://{role}@{host}")
        }
        None => panic!("unexpected test URL {base}"),
    };
    let app_url = format!("{app_base}{sep}options=-csearch_path%3D{schema}");

    // The role really is unprivileged: it cannot create anything in the schema.
    let app_pool = sqlx::PgPool::connect(&app_url)
        .await
        .expect("connect as app");
    let denied = sqlx::query("CREATE TABLE revoke_probe (x INT)")
        .execute(&app_pool)
        .await
        .expect_err("the app role must not be able to CREATE");
    assert!(denied.to_string().contains("permission denied"), "{denied}");
    app_pool.close().await;

    let result = async {
        let demo = Demo::start(&demo_binary(), &workspace_root(), free_port()?, &app_url).await?;
        let http = reqwest::Client::new();
        let (access, _refresh) = login(&http, &demo.base, "alice").await?;
        anyhow::ensure!(me_status(&http, &demo.base, &access).await? == 200);
        let r = http
            .delete(format!("{}/auth/token", demo.base))
            .bearer_auth(&access)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "revoke: {}", r.status());
        anyhow::ensure!(me_status(&http, &demo.base, &access).await? == 401);
        Ok(())
    }
    .await;

    // Clean up the role whatever happened (roles are cluster-wide).
    for sql in [format!("DROP OWNED BY {role}"), format!("DROP ROLE {role}")] {
        let _ = sqlx::query(&sql).execute(&pool).await;
    }
    owner.close().await;
    db.cleanup().await;
    result.expect("demo with the least-privileged role");
}
