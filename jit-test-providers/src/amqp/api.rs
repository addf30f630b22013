//! The management HTTP API: requests as the administrator over kept-alive HTTP/1.1
//! connections, each bounded by `connect_timeout`.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use jit_test::{ProviderError, Secret};

use super::settings::{ADMIN_URL_VAR, AmqpSettings};

/// Requests in flight at most, per process: the broker answers a few at a time anyway,
/// and more would only make each wait longer than the timeout.
const IN_FLIGHT: usize = 8;

/// Idle connections kept at most.
const KEEP: usize = IN_FLIGHT;

/// What the API answered.
pub(crate) struct Response {
    /// The status.
    pub(crate) status: StatusCode,
    /// The body.
    pub(crate) body: Bytes,
    /// The server's clock (`Date` header), if it sent one.
    pub(crate) date: Option<SystemTime>,
}

/// A client of the management API.
pub(crate) struct Api {
    address: String,
    prefix: String,
    authorization: Secret,
    timeout: Duration,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
    in_flight: tokio::sync::Semaphore,
}

/// A path segment, percent-encoded (vhost `/` is `%2F`).
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Api {
    pub(crate) fn new(settings: &AmqpSettings) -> Api {
        let admin = &settings.admin;
        let basic = format!("{}:{}", admin.user, admin.password.expose());
        Api {
            address: admin.address.to_string(),
            prefix: admin.prefix.clone(),
            authorization: Secret::new(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(basic)
            )),
            timeout: settings.connect_timeout,
            idle: Mutex::new(Vec::new()),
            in_flight: tokio::sync::Semaphore::new(IN_FLIGHT),
        }
    }

    fn unreachable(&self, reason: impl std::fmt::Display) -> ProviderError {
        ProviderError::Unreachable {
            system: "the RabbitMQ management API",
            address: self.address.clone(),
            setting: ADMIN_URL_VAR,
            reason: reason.to_string(),
        }
    }

    /// Sends one request (`path` below `/api`) and reads the whole answer, within the
    /// timeout (counted from when the request leaves: requests wait their turn first). A refused administrator is a [`ProviderError::Misconfigured`].
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, ProviderError> {
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let request = || {
            Request::builder()
                .method(method.clone())
                .uri(format!("{}/api{path}", self.prefix))
                .header(header::HOST, &self.address)
                .header(header::AUTHORIZATION, self.authorization.expose())
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(body.clone()))
                .expect("a valid request")
        };
        let _turn = self.in_flight.acquire().await.expect("never closed");
        let response = tokio::time::timeout(self.timeout, self.exchange(request))
            .await
            .map_err(|_| {
                self.unreachable(format!(
                    "no answer within {:?} (connect_timeout)",
                    self.timeout
                ))
            })??;
        if response.status == StatusCode::UNAUTHORIZED {
            return Err(ProviderError::Misconfigured(format!(
                "the management API at {} refused the administrator: set {ADMIN_URL_VAR} to \
                 http://user:password@host:port of a user tagged `administrator`",
                self.address
            )));
        }
        Ok(response)
    }

    async fn exchange(
        &self,
        request: impl Fn() -> Request<Full<Bytes>>,
    ) -> Result<Response, ProviderError> {
        let (mut sender, reused) = self.connection().await?;
        // A kept-alive connection the server closed meanwhile (it closes them after a
        // number of requests) fails before any answer. The requests are idempotent (PUT,
        // GET, DELETE): they are sent again on a fresh connection.
        let response = match sender.send_request(request()).await {
            Err(e) if reused && (e.is_canceled() || e.is_closed() || e.is_incomplete_message()) => {
                sender = self.connect().await?;
                sender.send_request(request()).await
            }
            other => other,
        }
        .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let date = response
            .headers()
            .get(header::DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(|d| humantime::parse_rfc3339_weak(&rfc1123_to_rfc3339(d)?).ok());
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.unreachable(e))?
            .to_bytes();
        let mut idle = self.idle.lock().unwrap();
        if idle.len() < KEEP {
            idle.push(sender);
        }
        Ok(Response { status, body, date })
    }

    /// An idle connection that is still open (and `true`), else a new one.
    async fn connection(&self) -> Result<(SendRequest<Full<Bytes>>, bool), ProviderError> {
        loop {
            let Some(mut sender) = self.idle.lock().unwrap().pop() else {
                break;
            };
            if sender.ready().await.is_ok() {
                return Ok((sender, true));
            }
        }
        Ok((self.connect().await?, false))
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ProviderError> {
        let stream = tokio::net::TcpStream::connect(&self.address)
            .await
            .map_err(|e| self.unreachable(e))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.unreachable(e))?;
        tokio::spawn(connection);
        Ok(sender)
    }
}

/// `Mon, 30 Nov 2026 17:11:27 GMT` as `2026-11-30 17:11:27Z`.
fn rfc1123_to_rfc3339(date: &str) -> Option<String> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = date.split_whitespace().skip(1);
    let day: u8 = parts.next()?.parse().ok()?;
    let month_name = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)? + 1;
    let year: u16 = parts.next()?.parse().ok()?;
    let time = parts.next()?;
    Some(format!("{year:04}-{month:02}-{day:02} {time}Z"))
}

/// The server's `reason` of an error answer, else its status.
pub(crate) fn reason(response: &Response) -> String {
    let reason = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|v| v.get("reason").map(|r| r.to_string()));
    match reason {
        Some(reason) => format!("HTTP {}: {reason}", response.status.as_u16()),
        None => format!("HTTP {}", response.status.as_u16()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("/"), "%2F");
        assert_eq!(segment("jit_ab1"), "jit_ab1");
        assert_eq!(segment("a b?"), "a%20b%3F");
    }

    #[test]
    fn http_dates_parse() {
        let date = rfc1123_to_rfc3339("Mon, 30 Nov 2026 17:11:27 GMT").unwrap();
        assert_eq!(date, "2026-11-30 17:11:27Z");
        let t = humantime::parse_rfc3339_weak(&date).unwrap();
        assert_eq!(jit_test::unix_seconds(t), 1_796_058_687);
    }
}
