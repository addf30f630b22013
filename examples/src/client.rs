//! A small typed client for the orders API, for tests.
//!
//! Built on hyper's HTTP/1.1 client, which the server side already compiles (axum runs on
//! hyper): a real HTTP stack without a second one. A non-2xx answer is an
//! [`ApiError::Status`] whose `source()` is a [`jit_test::HttpStatus`], so that
//! `assert_denied!` recognises a 403 and `assert_unauthenticated!` a 401.

use std::net::SocketAddr;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use jit_test::{HttpStatus, Secret};
use tokio::net::TcpStream;

use crate::{NewOrder, Order};

/// Calls the orders API at one address, as one caller.
#[derive(Clone, Debug)]
pub struct Client {
    addr: SocketAddr,
    token: Option<Secret>,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The service answered with a status other than 2xx. The [`HttpStatus`] is the
    /// error's source; `challenge` is the `WWW-Authenticate` header, if any.
    #[error("{request} answered {status}{}", challenge_note(.challenge.as_deref()))]
    Status {
        /// The method and path, e.g. `POST /orders`.
        request: String,
        /// The status code.
        #[source]
        status: HttpStatus,
        /// Why, for a 401 or 403: e.g. `Bearer error="insufficient_scope", scope="write:orders"`.
        challenge: Option<String>,
    },
    /// The service could not be reached.
    #[error("cannot connect to the service: {0}")]
    Connect(#[from] std::io::Error),
    /// The request could not be built (e.g. a token that is not a valid header value).
    #[error("cannot build the request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The exchange failed midway.
    #[error("HTTP exchange failed: {0}")]
    Http(#[from] hyper::Error),
    /// The answer's body is not what the API promises.
    #[error("unexpected response body: {0}")]
    Body(#[from] serde_json::Error),
}

/// ` (WWW-Authenticate: ...)`, to show with a status that came with a challenge.
fn challenge_note(challenge: Option<&str>) -> String {
    challenge
        .map(|c| format!(" (WWW-Authenticate: {c})"))
        .unwrap_or_default()
}

impl Client {
    /// A client that sends `token` as its bearer token: `Client::new(addr, grant.token())`.
    pub fn new(addr: SocketAddr, token: &Secret) -> Client {
        Client {
            addr,
            token: Some(token.clone()),
        }
    }

    /// A client that sends no token.
    pub fn anonymous(addr: SocketAddr) -> Client {
        Client { addr, token: None }
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<(), ApiError> {
        self.send(Method::GET, "/health", None).await.map(drop)
    }

    /// `GET /orders`: all orders.
    pub async fn list_orders(&self) -> Result<Vec<Order>, ApiError> {
        let body = self.send(Method::GET, "/orders", None).await?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// `POST /orders`: places an order for `sku` and returns it.
    pub async fn place_order(&self, sku: &str) -> Result<Order, ApiError> {
        let new = serde_json::to_vec(&NewOrder { sku: sku.into() })?;
        let body = self.send(Method::POST, "/orders", Some(new)).await?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// `DELETE /orders/{id}`.
    pub async fn delete_order(&self, id: u64) -> Result<(), ApiError> {
        let path = format!("/orders/{id}");
        self.send(Method::DELETE, &path, None).await.map(drop)
    }

    /// Sends one request on a connection of its own and returns the body of a 2xx answer.
    async fn send(
        &self,
        method: Method,
        path: &str,
        json: Option<Vec<u8>>,
    ) -> Result<Bytes, ApiError> {
        let mut request = Request::builder()
            .method(&method)
            .uri(path)
            .header(header::HOST, self.addr.to_string());
        if let Some(token) = &self.token {
            let mut bearer = HeaderValue::try_from(format!("Bearer {}", token.expose()))
                .map_err(hyper::http::Error::from)?;
            bearer.set_sensitive(true);
            request = request.header(header::AUTHORIZATION, bearer);
        }
        if json.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request.body(Full::new(Bytes::from(json.unwrap_or_default())))?;

        let stream = TcpStream::connect(self.addr).await?;
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection); // drives the connection; it closes when `sender` is dropped
        let response = sender.send_request(request).await?;

        HttpStatus::check(response.status().as_u16()).map_err(|status| ApiError::Status {
            request: format!("{method} {path}"),
            status,
            challenge: response
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
        })?;
        Ok(response.into_body().collect().await?.to_bytes())
    }
}
