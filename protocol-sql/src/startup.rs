//! Connection startup: the parameters clients expect, and trust or
//! SCRAM-SHA-256 authentication.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::Sink;
use pgwire::api::auth::sasl::scram::{gen_salted_password, ScramAuth};
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::{AuthDriver, AuthSource, LoginInfo, Password, ServerParameterProvider, StartupHandler};
use pgwire::api::ClientInfo;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

/// The version clients see: PostgreSQL 15's protocol and SQL, by Seshat.
pub const SERVER_VERSION: &str = concat!("15.0 (Seshat ", env!("CARGO_PKG_VERSION"), ")");

/// The ParameterStatus values sent after authentication.
pub struct Parameters;

impl ServerParameterProvider for Parameters {
    fn server_parameters<C: ClientInfo>(&self, client: &C) -> Option<HashMap<String, String>> {
        let mut params: HashMap<String, String> = [
            ("server_version", SERVER_VERSION),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("IntervalStyle", "postgres"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
            ("TimeZone", "UTC"),
            ("is_superuser", "on"),
            ("default_transaction_read_only", "off"),
            ("in_hot_standby", "off"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let metadata = client.metadata();
        params.insert("application_name".into(), metadata.get("application_name").cloned().unwrap_or_default());
        if let Some(user) = metadata.get("user") {
            params.insert("session_authorization".into(), user.clone());
        }
        Some(params)
    }
}

/// The one password, whatever the user name, kept as PostgreSQL keeps a
/// role's: salted and hashed once (4096 PBKDF2 rounds), not per login.
#[derive(Debug)]
struct Requirepass(Password);

impl Requirepass {
    fn new(password: &str) -> Self {
        let salt = rand::random::<[u8; 16]>().to_vec();
        let salted = gen_salted_password(password, &salt, pgwire::api::auth::sasl::scram::SCRAM_ITERATIONS);
        Requirepass(Password::new(Some(salt), salted))
    }
}

#[async_trait]
impl AuthSource for Requirepass {
    async fn get_password(&self, _login: &LoginInfo) -> PgWireResult<Password> {
        Ok(self.0.clone())
    }
}

/// Trust when no password is set, SCRAM-SHA-256 otherwise.
pub enum Startup {
    Trust(AuthDriver<Arc<Parameters>>),
    Scram(SASLAuthStartupHandler<Parameters>),
}

impl Startup {
    pub fn new(password: Option<String>) -> Startup {
        match password {
            None => Startup::Trust(AuthDriver::new(Arc::new(Parameters))),
            Some(password) => Startup::Scram(
                SASLAuthStartupHandler::new(Arc::new(Parameters))
                    .with_scram(ScramAuth::new(Arc::new(Requirepass::new(&password)))),
            ),
        }
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match self {
            Startup::Scram(handler) => handler.on_startup(client, message).await,
            Startup::Trust(driver) => {
                if let PgWireFrontendMessage::Startup(startup) = &message {
                    pgwire::api::auth::protocol_negotiation(client, startup).await?;
                    pgwire::api::auth::save_startup_parameters_to_metadata(client, startup);
                    driver.complete_authentication(client, None).await?;
                }
                Ok(())
            }
        }
    }
}
