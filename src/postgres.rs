//! A pool [`Manager`] for `tokio-postgres` (feature `postgres`).
//!
//! The pool wraps [`create`](Manager::create) in its `create_timeout`, so the deadline covers
//! the whole handshake (TCP connect, startup and authentication), not only the TCP part that
//! `connect_timeout` covers: a half-open network cannot hang a create for ever.

use seawall_core::pool::Manager;
use tokio_postgres::{Client, Config, NoTls};

/// Opens plain-TCP (`NoTls`) PostgreSQL connections from a `tokio_postgres::Config`.
#[derive(Debug, Clone)]
pub struct PostgresManager {
    config: Config,
}

impl PostgresManager {
    /// A manager for `config`.
    pub fn new(config: Config) -> Self {
        PostgresManager { config }
    }

    /// A manager from a connection string (`host=127.0.0.1 user=postgres dbname=test` or a
    /// `postgres://` URL).
    pub fn from_url(url: &str) -> Result<Self, tokio_postgres::Error> {
        Ok(PostgresManager {
            config: url.parse()?,
        })
    }
}

impl Manager for PostgresManager {
    type Connection = Client;
    type Error = tokio_postgres::Error;

    async fn create(&self) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = self.config.connect(NoTls).await?;
        // The connection future drives the socket; it ends when the client is dropped or the
        // server goes away, which `validate` then sees as a closed client.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    async fn validate(&self, client: &mut Client) -> bool {
        !client.is_closed() && client.simple_query("").await.is_ok()
    }
}
