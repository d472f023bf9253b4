//! Seawall's demo: the circuit breaker and the connection pool, each facing a dependency that
//! goes down and comes back. Both run in simulated time (a minute each, in milliseconds) with no
//! external service. With `DATABASE_URL` set, a third part runs the pool against that real
//! PostgreSQL, through an in-process fault proxy that cuts it off for a few seconds.
//!
//! Run it with `cargo run --example demo`.

mod breaker;
mod pool;
#[cfg(feature = "postgres")]
mod real_database;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    breaker::run()?;
    pool::run()?;
    match std::env::var("DATABASE_URL") {
        #[cfg(feature = "postgres")]
        Ok(url) => real_database::run(&url)?,
        #[cfg(not(feature = "postgres"))]
        Ok(_) => println!(
            "\nDATABASE_URL is set: run `cargo run --example demo --features postgres` to use it"
        ),
        Err(_) => println!(
            "\nSet DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test) and add \
             `--features postgres` to run the pool against a real PostgreSQL."
        ),
    }
    Ok(())
}
