//! A throwaway PostgreSQL database per test server, dropped afterwards; or a
//! printed skip when PostgreSQL is unreachable and `REQUIRE_POSTGRES` is not 1.

use sqlx::postgres::PgPoolOptions;

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn admin_url() -> String {
    std::env::var("COFFER_TEST_PG_ADMIN_URL").unwrap_or_else(|_| ADMIN_URL.into())
}

/// A database that exists for one test.
pub struct PgDatabase {
    name: String,
    url: String,
}

impl PgDatabase {
    /// Creates it, or returns `None` after printing why PostgreSQL tests are skipped.
    pub async fn create() -> Option<PgDatabase> {
        let admin = match PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin_url())
            .await
        {
            Ok(p) => p,
            Err(e) => {
                assert!(
                    std::env::var("REQUIRE_POSTGRES").map_or(true, |v| v != "1"),
                    "REQUIRE_POSTGRES=1 but PostgreSQL is unreachable: {e}"
                );
                eprintln!(
                    "skipping PostgreSQL test: {e} (set REQUIRE_POSTGRES=1 to make this a failure)"
                );
                return None;
            }
        };
        let name = format!("coffer_e2e_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        let base = admin_url()
            .rsplit_once('/')
            .map(|(b, _)| b.to_owned())
            .unwrap();
        Some(PgDatabase {
            url: format!("{base}/{name}"),
            name,
        })
    }

    /// Connection URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// All stored values of the entries table, raw.
    pub async fn raw_values(&self) -> Vec<u8> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&self.url)
            .await
            .unwrap();
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT key, value FROM coffer_entries")
            .fetch_all(&pool)
            .await
            .unwrap();
        let mut all = Vec::new();
        for (k, v) in rows {
            all.extend(k.into_bytes());
            all.extend(v);
        }
        all
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any runtime guarantee: use a private one on a thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(admin) = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&admin_url())
                    .await
                {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&admin)
                        .await;
                }
            });
        })
        .join();
    }
}
