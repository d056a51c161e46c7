//! A throwaway PostgreSQL database per test, or a printed skip when there is no
//! server and `REQUIRE_POSTGRES` is not set.

use sqlx::postgres::PgPoolOptions;

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database created for one test; dropped with [`TestDatabase::drop_now`].
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates a fresh database, or returns `None` (after printing why) when
    /// PostgreSQL is unreachable and not required.
    pub async fn create() -> Option<TestDatabase> {
        let admin_url =
            std::env::var("COFFER_TEST_PG_ADMIN_URL").unwrap_or_else(|_| ADMIN_URL.into());
        let admin = match PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin_url)
            .await
        {
            Ok(pool) => pool,
            Err(e) => {
                if std::env::var("REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                    panic!("REQUIRE_POSTGRES=1 but PostgreSQL is unreachable: {e}");
                }
                eprintln!("skipping: PostgreSQL unreachable at {admin_url} ({e}); set REQUIRE_POSTGRES=1 to fail instead");
                return None;
            }
        };
        let name = format!("coffer_unit_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b.to_owned())
            .unwrap();
        Some(TestDatabase {
            url: format!("{base}/{name}"),
            name,
        })
    }

    /// The connection URL of the test database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops the database (forcing other sessions off).
    pub async fn drop_now(self) {
        let admin_url =
            std::env::var("COFFER_TEST_PG_ADMIN_URL").unwrap_or_else(|_| ADMIN_URL.into());
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin_url)
            .await
            .unwrap();
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&admin)
        .await
        .unwrap();
    }
}
