//! The [`Revoke`] fairing and the [`RevokePool`] trait that maps a pool to a store.

use std::marker::PhantomData;
use std::sync::Arc;

use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::http::Status;
use rocket::{Build, Orbit, Request, Response, Rocket};
use rocket_db_pools::Database;
use rocket_revoke_core::store::{PgStore, SqliteStore, Store};
use rocket_revoke_core::{Engine, Issuer, SharedClock};

use crate::config::RevokeConfig;
use crate::error;
use crate::revoker::Revoker;

/// A database pool the revocation store can run on: implemented for `sqlx::SqlitePool` and
/// `sqlx::PgPool`, the pools of `rocket_db_pools`' `sqlx_sqlite` and `sqlx_postgres`
/// drivers.
#[rocket::async_trait]
pub trait RevokePool: Send + Sync + 'static {
    /// A store on (a clone of) this pool.
    async fn revoke_store(&self, clock: SharedClock) -> rocket_revoke_core::Result<Arc<dyn Store>>;
}

/// The clock the [`Revoke`] fairing hands its engine, issuer and guards, when the app
/// manages one before ignite (`rocket.manage(RevokeClock(clock))`); otherwise the system
/// clock. For tests that move past an expiry, a leeway or a retention without sleeping.
///
/// ```
/// use rocket_revoke_core::ManualClock;
/// use rocket_revoke::RevokeClock;
/// let clock = ManualClock::starting_now();
/// let rocket = rocket::build().manage(RevokeClock(clock.shared()));
/// # let _ = rocket;
/// ```
#[derive(Debug, Clone)]
pub struct RevokeClock(pub SharedClock);

#[rocket::async_trait]
impl RevokePool for sqlx::SqlitePool {
    async fn revoke_store(&self, clock: SharedClock) -> rocket_revoke_core::Result<Arc<dyn Store>> {
        Ok(Arc::new(
            SqliteStore::new(self.clone()).await?.with_clock(clock),
        ))
    }
}

#[rocket::async_trait]
impl RevokePool for sqlx::PgPool {
    async fn revoke_store(&self, clock: SharedClock) -> rocket_revoke_core::Result<Arc<dyn Store>> {
        Ok(Arc::new(PgStore::new(self.clone()).with_clock(clock)))
    }
}

/// The fairing: attach it after the app's `rocket_db_pools` database.
///
/// ```rust,no_run
/// # use rocket::launch;
/// use rocket_db_pools::{sqlx, Database};
/// use rocket_revoke::Revoke;
///
/// #[derive(Database)]
/// #[database("revoke")]
/// struct Db(sqlx::SqlitePool);
///
/// #[launch]
/// fn rocket() -> _ {
///     rocket::build().attach(Db::init()).attach(Revoke::<Db>::fairing())
/// }
/// ```
///
/// - **Ignite**: reads the `revoke` table ([`RevokeConfig`]; a bad key or value fails the
///   launch and names the key), fetches the pool of `D` (a missing `D::init()` fails the
///   launch), runs the migrations, loads the revocation set, loads the verification keys
///   and the signing key, and manages a [`Revoker`].
/// - **Liftoff**: starts sync (and the last-seen writer).
/// - **Response**: gives a 401 caused by a guard its RFC 6750 challenge and JSON body, even
///   when the app has its own 401 catcher (and a guard's 503, see
///   [`AuthError::Stale`](crate::AuthError::Stale), its JSON body and `Retry-After`).
/// - **Shutdown**: stops sync and the last-seen writer. They also stop as soon as shutdown
///   is requested, while the pool is still open.
pub struct Revoke<D>(PhantomData<fn() -> D>);

impl<D: Database> Revoke<D>
where
    D::Pool: RevokePool,
{
    /// The fairing for the database `D`.
    pub fn fairing() -> Self {
        Revoke(PhantomData)
    }
}

async fn ignite<D: Database>(rocket: &Rocket<Build>) -> Result<Revoker, String>
where
    D::Pool: RevokePool,
{
    let config = RevokeConfig::from_figment(rocket.figment()).map_err(|e| e.to_string())?;
    let clock = rocket
        .state::<RevokeClock>()
        .map_or_else(rocket_revoke_core::system_clock, |c| c.0.clone());
    // Every accepted token must end before the revocations covering it do.
    let verifier = config
        .verifier_with_clock(clock.clone())
        .await
        .map_err(|e| e.to_string())?
        .with_max_lifetime(config.engine.max_token_ttl_secs);
    let db = rocket.state::<D>().ok_or_else(|| {
        format!(
            "database `{}` is unavailable: `{}::init()` failed or is not attached before the rocket-revoke fairing",
            D::NAME,
            std::any::type_name::<D>()
        )
    })?;
    let pool: &D::Pool = db;
    let store = pool
        .revoke_store(clock)
        .await
        .map_err(|e| format!("database `{}`: {e}", D::NAME))?;
    store
        .migrate()
        .await
        .map_err(|e| format!("database `{}`: {e}", D::NAME))?;
    let engine = Engine::new(store, config.engine_config())
        .await
        .map_err(|e| format!("database `{}`: cannot load revocations: {e}", D::NAME))?;
    let bounds = engine.bounds();
    if bounds.max_token_ttl_secs > config.engine.max_token_ttl_secs {
        tracing::info!(
            recorded = bounds.max_token_ttl_secs,
            mine = config.engine.max_token_ttl_secs,
            "another app on this database accepts longer-lived tokens; revocations are sized for the longest"
        );
    }
    let issuer = match config.issuer_config() {
        Some(ic) => Some(
            Issuer::new(ic, engine.clone())
                .map_err(|e| format!("invalid `revoke.{}`: {e}", e.key()))?,
        ),
        None => {
            tracing::info!("rocket-revoke: no signing key configured; tokens are verified only");
            None
        }
    };
    tracing::info!(
        backend = %engine.store().backend(),
        revocations = ?engine.set().len(),
        "rocket-revoke ready"
    );
    Ok(Revoker::new(engine, verifier, issuer, config))
}

#[rocket::async_trait]
impl<D: Database> Fairing for Revoke<D>
where
    D::Pool: RevokePool,
{
    fn info(&self) -> Info {
        Info {
            name: "rocket-revoke",
            kind: Kind::Ignite | Kind::Liftoff | Kind::Response | Kind::Shutdown,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        match ignite::<D>(&rocket).await {
            Ok(revoker) => Ok(rocket.manage(revoker)),
            Err(e) => {
                tracing::error!("rocket-revoke: {e}");
                Err(rocket)
            }
        }
    }

    async fn on_liftoff(&self, rocket: &Rocket<Orbit>) {
        let Some(revoker) = Revoker::fetch(rocket) else {
            return;
        };
        revoker.start();
        // Stop the background tasks when shutdown is requested, before other fairings
        // (such as the database's) close the pool.
        let revoker = revoker.clone();
        let shutdown = rocket.shutdown();
        rocket::tokio::spawn(async move {
            shutdown.await;
            revoker.stop().await;
        });
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        if !matches!(
            res.status(),
            Status::Unauthorized
                | Status::BadRequest
                | Status::InternalServerError
                | Status::ServiceUnavailable
        ) {
            return;
        }
        // A response that already carries a challenge was built on purpose (by the app, or
        // by `AuthError`'s own responder): leave it alone.
        if res.headers().contains("WWW-Authenticate") {
            return;
        }
        if let Some(rejection) = error::rejection(req) {
            if rejection.status() == res.status() {
                let realm = Revoker::fetch(req.rocket()).map_or("api", |r| r.realm());
                rejection.apply(realm, res);
            }
        }
    }

    async fn on_shutdown(&self, rocket: &Rocket<Orbit>) {
        if let Some(revoker) = Revoker::fetch(rocket) {
            revoker.stop().await;
        }
    }
}
