//! What can be wrong with an audit log or a run, as types: [`ProblemKind`] orders them
//! worst first, for the report as for [`verify`](super::verify).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kind of a problem, worst first: the order in which the report lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A credential still worked after revocation.
    Leak,
    /// The audit log itself is damaged: a line edited, removed or unreadable.
    Chain,
    /// An append was cut short by a crash; its bytes were set aside.
    Torn,
    /// A revocation gave up.
    RevokeFailed,
    /// A lease was neither revoked nor reaped.
    Unrevoked,
    /// A lease was revoked but never proven dead.
    Unproven,
    /// A principal held privileges beyond its scope.
    BeyondScope,
    /// A provider failed to grant.
    GrantFailed,
    /// An approver refused a request.
    ApprovalDenied,
}

/// One thing [`verify`](super::verify) found wrong, at a line of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The line (1-based) it was found at; for a lease, the line of its grant.
    pub line: usize,
    /// What was found.
    #[serde(flatten)]
    pub finding: Finding,
}

/// What [`verify`](super::verify) can find.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum Finding {
    /// The line does not end in `,"hash":"<64 hex digits>"}`.
    Unsealed,
    /// The line's hash does not match its content: it was edited.
    HashMismatch,
    /// A row of a writer's chain in the PostgreSQL sink names another key than the
    /// writer's first row: someone else added it.
    ForeignRow {
        /// The writer.
        writer: String,
        /// The key (or none) the row names.
        key: String,
    },
    /// A writer's chain in the PostgreSQL sink skips sequence numbers: rows were removed.
    Gap {
        /// The writer.
        writer: String,
        /// The sequence number expected.
        expected: u64,
        /// The one found instead.
        found: u64,
    },
    /// The line is not an audit record.
    Unreadable {
        /// Why it could not be read.
        error: String,
    },
    /// The line was written by a later version of this crate, in a format it cannot read.
    NewerFormat {
        /// The line's format version.
        version: u32,
    },
    /// The line does not follow the one before it: a line was removed or changed.
    ChainBroken,
    /// The line is keyed with an HMAC key other than the one configured (or none is).
    UnknownKey {
        /// The key's id.
        key: String,
    },
    /// The line is neither keyed nor signed, after lines that were: forged?
    Unauthenticated,
    /// Lines of a signer after its last seal (or with none): it is still appending, or
    /// crashed mid-append, or they were forged.
    Unsigned {
        /// The signer's id.
        signer: String,
        /// How many of its lines are not sealed.
        lines: usize,
    },
    /// A signer's last seal does not sign the chain as it is: lines before it were changed,
    /// or the seal was forged.
    BadSignature {
        /// The signer's id.
        signer: String,
    },
    /// The log ends in an incomplete line: a crash mid-append, or an append under way
    /// by a writer that ignores the lock.
    Unterminated {
        /// Where the line begins, in bytes from the start of the log.
        offset: u64,
    },
    /// A writer found the log ending in an incomplete append and set it aside.
    Torn {
        /// Where the incomplete append began, in bytes from the start of the log.
        offset: u64,
        /// How many bytes it had.
        bytes: u64,
        /// The file they were copied to.
        kept: String,
    },
    /// The old credential still worked after revocation.
    Leaked {
        /// The test.
        test: String,
        /// The principal.
        principal: String,
    },
    /// A grant was never revoked nor reaped.
    NeverRevoked {
        /// The test.
        test: String,
        /// The principal.
        principal: String,
    },
    /// A grant was revoked but never proven dead.
    NeverProven {
        /// The test.
        test: String,
        /// The principal.
        principal: String,
    },
}

impl ProblemKind {
    /// How people read it: `leak`, `audit chain`, `revoke failed`, ...
    pub fn label(self) -> &'static str {
        match self {
            ProblemKind::Leak => "leak",
            ProblemKind::Chain => "audit chain",
            ProblemKind::Torn => "torn audit log",
            ProblemKind::RevokeFailed => "revoke failed",
            ProblemKind::Unrevoked => "unrevoked",
            ProblemKind::Unproven => "unproven",
            ProblemKind::BeyondScope => "beyond scope",
            ProblemKind::GrantFailed => "grant failed",
            ProblemKind::ApprovalDenied => "approval denied",
        }
    }
}

impl Finding {
    /// Its kind.
    pub fn kind(&self) -> ProblemKind {
        match self {
            Finding::Leaked { .. } => ProblemKind::Leak,
            Finding::NeverRevoked { .. } => ProblemKind::Unrevoked,
            Finding::NeverProven { .. } => ProblemKind::Unproven,
            Finding::Torn { .. } => ProblemKind::Torn,
            _ => ProblemKind::Chain,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: ", self.line)?;
        match &self.finding {
            Finding::Unsealed => write!(f, "too short to be an audit record"),
            Finding::HashMismatch => write!(f, "hash does not match its content (edited?)"),
            Finding::ForeignRow { writer, key } => write!(
                f,
                "a row of writer {writer} names key {key}, not the writer's own: someone \
                 else added it"
            ),
            Finding::Gap {
                writer,
                expected,
                found,
            } => write!(
                f,
                "the chain of writer {writer} goes on at row {found} where row {expected} \
                 belongs: rows were removed"
            ),
            Finding::Unreadable { error } => write!(f, "not an audit record: {error}"),
            Finding::NewerFormat { version } => write!(
                f,
                "written in format {version} by a later jit-test; this one reads up to {}",
                super::event::FORMAT
            ),
            Finding::ChainBroken => {
                write!(f, "chain broken (a line before it was removed or changed)")
            }
            Finding::UnknownKey { key } => write!(
                f,
                "keyed with {key}, which is not the configured key; set JIT_TEST_AUDIT_KEY \
                 or JIT_TEST_AUDIT_KEY_FILE to the key it was written with"
            ),
            Finding::Unauthenticated => write!(
                f,
                "neither keyed nor signed, after lines that were (forged?)"
            ),
            Finding::Unsigned { signer, lines } => write!(
                f,
                "{lines} lines of {signer} from here on are not sealed: its process is still \
                 appending or crashed mid-append, or they were forged"
            ),
            Finding::BadSignature { signer } => write!(
                f,
                "the seal of {signer} does not sign the chain as it is: lines before it were \
                 changed, or the seal was forged"
            ),
            Finding::Unterminated { offset } => write!(
                f,
                "incomplete last line at byte {offset} (a crash mid-append?); \
                 the next test run sets it aside"
            ),
            Finding::Torn {
                offset,
                bytes,
                kept,
            } => write!(
                f,
                "an append cut short by a crash ({bytes} bytes at byte {offset}) was set \
                 aside in {kept}"
            ),
            Finding::Leaked { test, principal } => write!(
                f,
                "{principal} of test {test} still worked after revocation"
            ),
            Finding::NeverRevoked { test, principal } => write!(
                f,
                "{principal} granted to {test} was never revoked or reaped"
            ),
            Finding::NeverProven { test, principal } => write!(
                f,
                "{principal} granted to {test} was revoked but never proven dead"
            ),
        }
    }
}
