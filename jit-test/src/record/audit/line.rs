//! One line of the log: `{"v":1,"prev":"<hash of the line before>",<event>,"hash":"<hash>"}`,
//! where `hash` is the SHA-256 (or, for a line naming an HMAC key in `key`, the
//! HMAC-SHA-256) of the line's text without its `,"hash":…` tail.

use std::io;

use serde::{Deserialize, Serialize};

use super::event::{Event, EventKind, FORMAT};
use super::key::{Authentication, HmacKey};
use super::legacy::Unversioned;
use super::problem::Finding;
use crate::hex::to_hex as hex;

/// The `prev` of the first line.
pub(super) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const TAIL_OPEN: &[u8] = b",\"hash\":\"";
const TAIL_CLOSE: &[u8] = b"\"}";
/// `,"hash":"` + 64 hex digits + `"}`.
pub(super) const HASH_TAIL: usize = TAIL_OPEN.len() + 64 + TAIL_CLOSE.len();

#[derive(Serialize)]
struct Record<'a> {
    v: u32,
    prev: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(flatten)]
    event: &'a Event,
}

#[derive(Deserialize)]
struct Version {
    #[serde(default)]
    v: u32,
}

#[derive(Deserialize)]
struct Stored<E> {
    prev: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(flatten)]
    event: E,
}

fn sha256_hex(data: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

/// Appends `event`'s line, chained to `prev` and authenticated by `auth`, to `out`, and
/// returns the line's hash.
pub(super) fn encode(
    prev: &str,
    event: &Event,
    auth: &Authentication,
    out: &mut Vec<u8>,
) -> io::Result<String> {
    let start = out.len();
    let record = Record {
        v: FORMAT,
        prev,
        key: auth.key_id(),
        event,
    };
    serde_json::to_writer(&mut *out, &record)?;
    let hash = match auth {
        Authentication::Keyed(key) => key.mac(&out[start..]),
        _ => sha256_hex(&out[start..]),
    };
    out.pop();
    out.extend_from_slice(TAIL_OPEN);
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(TAIL_CLOSE);
    out.push(b'\n');
    Ok(hash)
}

/// Appends the lines of one append of `events`, chained from `prev`, to `out`: each
/// event's line, then, when `auth` signs, a `sealed` line signing the new head. Returns
/// the hash of the last line (`prev` when there is nothing to write).
pub(super) fn encode_append(
    prev: &str,
    events: &[Event],
    auth: &Authentication,
    out: &mut Vec<u8>,
) -> io::Result<String> {
    let mut prev = prev.to_owned();
    for event in events {
        prev = encode(&prev, event, auth, out)?;
    }
    if let (Authentication::Signed(signer), Some(first)) = (auth, events.first()) {
        let seal = EventKind::Sealed {
            public_key: signer.public_hex().to_owned(),
            signature: signer.sign_head(&prev),
        };
        let seal = Event::new(&first.run, "audit", seal);
        prev = encode(&prev, &seal, auth, out)?;
    }
    Ok(prev)
}

/// The hash stated by the last [`HASH_TAIL`] bytes of `bytes`, if they are a hash tail.
pub(super) fn tail_hash(bytes: &[u8]) -> Option<&str> {
    let tail = &bytes[bytes.len().checked_sub(HASH_TAIL)?..];
    let hash = tail.strip_prefix(TAIL_OPEN)?.strip_suffix(TAIL_CLOSE)?;
    let hash = std::str::from_utf8(hash).ok()?;
    hash.bytes().all(|b| b.is_ascii_hexdigit()).then_some(hash)
}

/// What a line says.
pub(super) struct Read {
    /// The hash of the line before.
    pub prev: String,
    /// The key or signer that authenticates it, if any.
    pub key: Option<String>,
    /// Its event.
    pub event: Event,
}

/// A line whose hash is where it belongs.
pub(super) struct Sealed {
    /// The line's text without its hash tail, closed with `}`: what was hashed.
    pub body: Vec<u8>,
    /// The hash it states.
    pub hash: String,
}

impl Sealed {
    /// Splits `line` (without its newline) into its body and its stated hash.
    pub fn open(line: &[u8]) -> Result<Sealed, Finding> {
        let hash = tail_hash(line)
            .filter(|_| line.first() == Some(&b'{'))
            .ok_or(Finding::Unsealed)?
            .to_owned();
        let mut body = line[..line.len() - HASH_TAIL].to_vec();
        body.push(b'}');
        Ok(Sealed { body, hash })
    }

    /// Whether the stated hash is the body's SHA-256, or its HMAC under `key`.
    pub fn hash_matches(&self, key: Option<&HmacKey>) -> bool {
        let expected = match key {
            Some(key) => key.mac(&self.body),
            None => sha256_hex(&self.body),
        };
        expected == self.hash
    }

    /// The line, in any format this crate reads.
    pub fn read(&self) -> Result<Read, Finding> {
        let unreadable = |e: serde_json::Error| Finding::Unreadable {
            error: e.to_string(),
        };
        let version = serde_json::from_slice::<Version>(&self.body)
            .map_err(unreadable)?
            .v;
        match version {
            0 => {
                let stored: Stored<Unversioned> =
                    serde_json::from_slice(&self.body).map_err(unreadable)?;
                Ok(Read {
                    prev: stored.prev,
                    key: stored.key,
                    event: stored.event.into(),
                })
            }
            FORMAT => {
                let stored: Stored<Event> =
                    serde_json::from_slice(&self.body).map_err(unreadable)?;
                Ok(Read {
                    prev: stored.prev,
                    key: stored.key,
                    event: stored.event,
                })
            }
            version => Err(Finding::NewerFormat { version }),
        }
    }
}
