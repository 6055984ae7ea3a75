//! The errors of cairn-core's public functions: typed, so that a front end can act on what
//! failed (and on which object) without reading messages, and mapped to restic's exit codes
//! through [`ErrorKind`].
//!
//! Internally the engine builds anyhow chains with `.context(...)`; at each public function
//! the chain becomes an [`Error`] (see its `From<anyhow::Error>`): the first typed cause in
//! the chain decides the variant, and the context above it is kept, so the message a user
//! reads is the same text the chain printed with `{:#}` (`outer: inner: cause`).

use crate::lock::LockError;
use crate::{FileType, Id};
use cairn_backend::BackendError;
use std::fmt;
use std::path::PathBuf;

/// `anyhow::bail!` that also fits functions returning [`Result`]: the message becomes an
/// [`Error::Other`] there (it names no typed cause).
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err(anyhow::anyhow!($($arg)*).into())
    };
}
pub(crate) use bail;

/// Returns [`Error::Invalid`]: the caller gave a bad option or argument.
macro_rules! invalid {
    ($($arg:tt)*) => {
        return Err($crate::Error::Invalid(format!($($arg)*)).into())
    };
}
pub(crate) use invalid;

/// `Result` with cairn-core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What failed, for a front end to act on.
///
/// An error reads as the anyhow chain it replaces: `{}` is the outermost message, `{:#}` the
/// whole chain (`outer: inner: cause`, what the CLI prints after `Fatal: `), and
/// [`source`](std::error::Error::source) walks the same links, so wrapping it in a front
/// end's own anyhow context prints exactly what users read before errors were typed.
#[derive(Debug)]
pub enum Error {
    /// No repository at the location (no config file).
    NoRepository { location: String },
    /// No key opens the repository with this password.
    WrongPassword,
    /// The repository is locked by someone else.
    Locked(LockError),
    /// Ctrl-C, SIGTERM or a caller's stop flag. Reads the same wherever it happened.
    Interrupted,
    /// An object the repository should hold is missing (a blob the index does not know, …).
    NotFound {
        object: Object,
        detail: String,
        context: Context,
    },
    /// An object's stored bytes are damaged: MAC failure, wrong hash, undecodable, or
    /// declared beyond a ceiling.
    Corrupt {
        object: Object,
        detail: String,
        context: Context,
    },
    /// The storage failed (or answered "does not exist", see the cause's variant); `object`
    /// when the operation knew what it was reading or writing.
    Backend {
        object: Option<Object>,
        context: Context,
        cause: BackendError,
    },
    /// A local file system operation failed; `path` when the operation knew it.
    Io {
        path: Option<PathBuf>,
        context: Context,
        cause: std::io::Error,
    },
    /// A bad option or argument from the caller.
    Invalid(String),
    /// No snapshot matches what the caller asked for (the message says what was asked).
    NoSnapshot(String),
    /// The remainder: a failure with no typed cause in its chain (or a typed one whose
    /// variant cannot keep the context above it, as `Locked` under context). The chain is
    /// kept whole; [`Error::kind`] still finds a typed cause inside it.
    Other(anyhow::Error),
}

impl Error {
    /// The message of the failure itself, without the context above it.
    fn own_message(&self) -> String {
        match self {
            Error::NoRepository { location } => {
                format!("repository does not exist: unable to open config file: {location}")
            }
            Error::WrongPassword => "wrong password or no key found".into(),
            Error::Locked(e) => e.to_string(),
            Error::Interrupted => "interrupted".into(),
            Error::NotFound { detail, .. } | Error::Corrupt { detail, .. } => detail.clone(),
            Error::Backend { cause, .. } => cause.to_string(),
            Error::Io { cause, .. } => cause.to_string(),
            Error::Invalid(m) | Error::NoSnapshot(m) => m.clone(),
            Error::Other(chain) => chain.root_cause().to_string(),
        }
    }

    fn context(&self) -> Option<&Context> {
        match self {
            Error::NotFound { context, .. }
            | Error::Corrupt { context, .. }
            | Error::Backend { context, .. }
            | Error::Io { context, .. } => Some(context),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Error::Other(chain) = self {
            // anyhow's own rule: `{}` the outermost message, `{:#}` the chain.
            return fmt::Display::fmt(chain, f);
        }
        let links = self.context().map(Context::messages).unwrap_or_default();
        if f.alternate() {
            for l in links {
                write!(f, "{l}: ")?;
            }
            return f.write_str(&self.own_message());
        }
        match links.first() {
            Some(outermost) => f.write_str(outermost),
            None => f.write_str(&self.own_message()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        if let Error::Other(chain) = self {
            let top: &(dyn std::error::Error + 'static) = chain.as_ref();
            return top.source();
        }
        let context = self.context()?;
        let rest = context.rest.get_or_init(|| {
            // The links below the outermost one: the inner context, then the cause.
            let mut below: Vec<String> = context.messages.iter().skip(1).cloned().collect();
            if context.messages.is_empty() {
                return None;
            }
            below.push(self.own_message());
            Link::chain(below)
        });
        rest.as_deref()
            .map(|l| l as &(dyn std::error::Error + 'static))
    }
}

/// One message of a chain below an [`Error`]'s outermost one.
#[derive(Debug)]
struct Link {
    message: String,
    next: Option<Box<Link>>,
}

impl Link {
    fn chain(messages: Vec<String>) -> Option<Box<Link>> {
        messages
            .into_iter()
            .rev()
            .fold(None, |next, message| Some(Box::new(Link { message, next })))
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Link {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.next
            .as_deref()
            .map(|l| l as &(dyn std::error::Error + 'static))
    }
}

/// What an [`Error`] is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    Pack(Id),
    Blob(Id),
    Tree(Id),
    Snapshot(Id),
    Index(Id),
    /// A key file, by name.
    Key(String),
    Config,
    Lock(Id),
    /// A file of the local file system (a backup source or restore target).
    File(PathBuf),
}

impl Object {
    /// The object a repository file of this type and id is.
    pub fn file(kind: FileType, id: &Id) -> Object {
        match kind {
            FileType::Data => Object::Pack(*id),
            FileType::Snapshot => Object::Snapshot(*id),
            FileType::Index => Object::Index(*id),
            FileType::Key => Object::Key(id.to_hex()),
            FileType::Lock => Object::Lock(*id),
            FileType::Config => Object::Config,
        }
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Pack(id) => write!(f, "pack {id}"),
            Object::Blob(id) => write!(f, "blob {id}"),
            Object::Tree(id) => write!(f, "tree {id}"),
            Object::Snapshot(id) => write!(f, "snapshot {id}"),
            Object::Index(id) => write!(f, "index {id}"),
            Object::Key(name) => write!(f, "key {name}"),
            Object::Config => write!(f, "config"),
            Object::Lock(id) => write!(f, "lock {id}"),
            Object::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// What the operation was doing when the cause failed, outermost first: the links of the
/// chain above the cause (see [`Error`]).
#[derive(Debug, Default)]
pub struct Context {
    messages: Vec<String>,
    /// The links below the outermost one, made the first time a caller walks the chain.
    rest: std::sync::OnceLock<Option<Box<Link>>>,
}

impl Context {
    /// Context of these messages, outermost first.
    pub fn new(messages: Vec<String>) -> Context {
        Context {
            messages,
            rest: Default::default(),
        }
    }

    /// The messages, outermost first.
    pub fn messages(&self) -> &[String] {
        &self.messages
    }

    fn prepend(&mut self, mut outer: Vec<String>) {
        outer.append(&mut self.messages);
        *self = Context::new(outer);
    }
}

impl PartialEq for Context {
    fn eq(&self, other: &Context) -> bool {
        self.messages == other.messages
    }
}

/// A decryption whose MAC did not verify (damaged data or the wrong key).
#[derive(Debug, thiserror::Error)]
#[error("ciphertext verification failed (invalid data or wrong key)")]
pub struct MacError;

impl Error {
    /// A missing object, with the message users read.
    pub fn not_found(object: Object, detail: impl Into<String>) -> Error {
        Error::NotFound {
            object,
            detail: detail.into(),
            context: Context::default(),
        }
    }

    /// A damaged object, with the message users read.
    pub fn corrupt(object: Object, detail: impl Into<String>) -> Error {
        Error::Corrupt {
            object,
            detail: detail.into(),
            context: Context::default(),
        }
    }

    /// What kind of failure this is (for exit codes).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NoRepository { .. } => ErrorKind::NoRepository,
            Error::WrongPassword => ErrorKind::WrongPassword,
            Error::Locked(_) => ErrorKind::Locked,
            Error::Interrupted => ErrorKind::Interrupted,
            Error::Other(chain) => ErrorKind::of(chain),
            Error::NotFound { .. }
            | Error::Corrupt { .. }
            | Error::Backend { .. }
            | Error::Io { .. }
            | Error::Invalid(_)
            | Error::NoSnapshot(_) => ErrorKind::Other,
        }
    }

    /// Whether this is an interruption (the operation was asked to stop).
    pub fn is_interrupted(&self) -> bool {
        self.kind() == ErrorKind::Interrupted
    }

    /// The error of loading `object`: a failure that is not typed already is damage to it
    /// (what fails after the bytes arrived is their decryption, decoding or checks), and a
    /// storage failure learns what it was reading. Typed failures keep their own object.
    pub(crate) fn loading<E: Into<Error>>(object: Object) -> impl FnOnce(E) -> Error {
        move |e| match e.into() {
            Error::Other(chain) if ErrorKind::of(&chain) == ErrorKind::Other => {
                let mut links: Vec<String> = chain.chain().map(|c| c.to_string()).collect();
                let detail = links.pop().unwrap_or_default();
                Error::Corrupt {
                    object,
                    detail,
                    context: Context::new(links),
                }
            }
            Error::Backend {
                object: None,
                context,
                cause,
            } => Error::Backend {
                object: Some(object),
                context,
                cause,
            },
            e => e,
        }
    }

    /// The innermost cause's message, without the context above it (as
    /// `anyhow::Error::root_cause` prints).
    pub fn root_cause(&self) -> String {
        match self {
            Error::NotFound { detail, .. } | Error::Corrupt { detail, .. } => detail.clone(),
            Error::Backend { cause, .. } => cause.to_string(),
            Error::Io { cause, .. } => cause.to_string(),
            Error::Other(chain) => chain.root_cause().to_string(),
            e => e.to_string(),
        }
    }

    /// The storage's own error, when a storage failure is the cause (directly or in the
    /// chain of an [`Error::Other`]).
    pub fn backend_error(&self) -> Option<&BackendError> {
        match self {
            Error::Backend { cause, .. } => Some(cause),
            Error::Other(chain) => backend_error_in(chain),
            _ => None,
        }
    }
}

/// The storage error in an anyhow chain, whether it is a link itself or inside an [`Error`].
pub fn backend_error_in(chain: &anyhow::Error) -> Option<&BackendError> {
    chain.chain().find_map(|c| {
        c.downcast_ref::<BackendError>()
            .or_else(|| match c.downcast_ref::<Error>() {
                Some(Error::Backend { cause, .. }) => Some(cause),
                _ => None,
            })
    })
}

/// Finds the first typed cause in the chain and keeps the context above it (see the module
/// documentation); a chain without one, or whose typed cause cannot be taken out of it,
/// stays whole as [`Error::Other`].
impl From<anyhow::Error> for Error {
    fn from(chain: anyhow::Error) -> Error {
        let mut above = Vec::new();
        for link in chain.chain() {
            if let Some(e) = link.downcast_ref::<Error>() {
                // An interruption is one whatever it interrupted: callers test for it.
                let keeps_context = matches!(
                    e,
                    Error::NotFound { .. }
                        | Error::Corrupt { .. }
                        | Error::Backend { .. }
                        | Error::Io { .. }
                        | Error::Interrupted
                );
                if !above.is_empty() && !keeps_context {
                    return Error::Other(chain);
                }
                return match chain.downcast::<Error>() {
                    Ok(typed) => typed.under(above),
                    Err(chain) => Error::Other(chain),
                };
            }
            if link.is::<BackendError>() {
                return match chain.downcast::<BackendError>() {
                    Ok(cause) => Error::Backend {
                        object: None,
                        context: Context::new(above),
                        cause,
                    },
                    Err(chain) => Error::Other(chain),
                };
            }
            if link.is::<std::io::Error>() {
                return match chain.downcast::<std::io::Error>() {
                    Ok(cause) => Error::Io {
                        path: None,
                        context: Context::new(above),
                        cause,
                    },
                    Err(chain) => Error::Other(chain),
                };
            }
            if link.is::<LockError>() {
                if !above.is_empty() {
                    return Error::Other(chain);
                }
                return match chain.downcast::<LockError>() {
                    Ok(e) => Error::Locked(e),
                    Err(chain) => Error::Other(chain),
                };
            }
            above.push(link.to_string());
        }
        Error::Other(chain)
    }
}

impl Error {
    /// This error with `outer` context before its own (only called for variants that
    /// keep context).
    fn under(mut self, outer: Vec<String>) -> Error {
        if outer.is_empty() {
            return self;
        }
        match &mut self {
            Error::NotFound { context, .. }
            | Error::Corrupt { context, .. }
            | Error::Backend { context, .. }
            | Error::Io { context, .. } => context.prepend(outer),
            _ => {}
        }
        self
    }
}

impl From<BackendError> for Error {
    fn from(cause: BackendError) -> Error {
        Error::Backend {
            object: None,
            context: Context::default(),
            cause,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(cause: std::io::Error) -> Error {
        Error::Io {
            path: None,
            context: Context::default(),
            cause,
        }
    }
}

impl From<LockError> for Error {
    fn from(e: LockError) -> Error {
        Error::Locked(e)
    }
}

// Damage without a known object: the function that knew what it loaded turns these into
// `Corrupt` (see `Error::loading`).
impl From<MacError> for Error {
    fn from(e: MacError) -> Error {
        Error::Other(e.into())
    }
}

impl From<crate::format::limits::LimitError> for Error {
    fn from(e: crate::format::limits::LimitError) -> Error {
        Error::Other(e.into())
    }
}

/// A bad exclude or include pattern is the caller's.
impl From<crate::archiver::filter::BadPattern> for Error {
    fn from(e: crate::archiver::filter::BadPattern) -> Error {
        Error::Invalid(e.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Error {
        Error::Other(e.into())
    }
}

/// What kind of failure an error is, for front ends that must tell them apart (the
/// CLI maps these to restic's exit codes; a server or scheduler reports them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// No repository at the location (no config file).
    NoRepository,
    /// No key opens the repository with this password.
    WrongPassword,
    /// The repository is locked by someone else.
    Locked,
    /// Ctrl-C, SIGTERM or a caller's stop flag.
    Interrupted,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// The kind of the first cause in an anyhow chain that has one (a front end's own
    /// errors wrap cairn-core's [`Error`]s with context).
    pub fn of(e: &anyhow::Error) -> ErrorKind {
        for cause in e.chain() {
            if cause.is::<LockError>() {
                return ErrorKind::Locked;
            }
            match cause.downcast_ref::<Error>() {
                // Its links follow in this same chain.
                Some(Error::Other(_)) | None => {}
                Some(typed) => return typed.kind(),
            }
        }
        ErrorKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::LockInfo;

    fn id(n: u8) -> Id {
        Id([n; 32])
    }

    fn lock_error() -> LockError {
        let info: LockInfo = serde_json::from_str(
            r#"{"time":"2024-01-02T03:04:05Z","exclusive":true,"hostname":"h","username":"u","pid":7}"#,
        )
        .expect("a lock");
        LockError::Conflict { id: id(9), info }
    }

    fn not_found(path: &str) -> BackendError {
        BackendError::NotFound(path.to_string())
    }

    #[test]
    fn each_variant_has_its_kind() {
        let kinds = [
            (
                Error::NoRepository {
                    location: "/r".into(),
                },
                ErrorKind::NoRepository,
            ),
            (Error::WrongPassword, ErrorKind::WrongPassword),
            (Error::Locked(lock_error()), ErrorKind::Locked),
            (Error::Interrupted, ErrorKind::Interrupted),
            (Error::not_found(Object::Blob(id(1)), "x"), ErrorKind::Other),
            (Error::corrupt(Object::Pack(id(1)), "x"), ErrorKind::Other),
            (Error::from(not_found("data/ab")), ErrorKind::Other),
            (
                Error::from(std::io::Error::other("disk on fire")),
                ErrorKind::Other,
            ),
            (Error::Invalid("bad".into()), ErrorKind::Other),
            (Error::NoSnapshot("latest".into()), ErrorKind::Other),
            (Error::Other(anyhow::anyhow!("plain")), ErrorKind::Other),
            // The remainder still finds a typed cause inside its chain.
            (
                Error::Other(anyhow::Error::new(Error::WrongPassword).context("opening")),
                ErrorKind::WrongPassword,
            ),
            (
                Error::Other(anyhow::Error::new(lock_error()).context("locking")),
                ErrorKind::Locked,
            ),
        ];
        for (e, want) in kinds {
            assert_eq!(e.kind(), want, "{e:?}");
        }
    }

    #[test]
    fn typed_causes_are_found_under_context() {
        let e = Error::from(
            anyhow::Error::new(Error::corrupt(Object::Pack(id(3)), "decryption failed"))
                .context("loading tree 5")
                .context("restoring"),
        );
        match &e {
            Error::Corrupt {
                object, context, ..
            } => {
                assert_eq!(*object, Object::Pack(id(3)));
                assert_eq!(context.messages(), ["restoring", "loading tree 5"]);
            }
            other => panic!("not corrupt: {other:?}"),
        }
        assert_eq!(
            format!("{e:#}"),
            "restoring: loading tree 5: decryption failed"
        );
        assert_eq!(e.to_string(), "restoring");

        let e = Error::from(anyhow::Error::new(not_found("data/ab")).context("reading pack"));
        assert!(matches!(
            &e,
            Error::Backend { cause: BackendError::NotFound(p), .. } if p == "data/ab"
        ));
        assert_eq!(
            format!("{e:#}"),
            "reading pack: data/ab: file does not exist"
        );

        let e = Error::from(
            anyhow::Error::new(Error::Interrupted)
                .context("a")
                .context("b"),
        );
        assert!(matches!(e, Error::Interrupted));

        // A typed cause whose variant keeps no context stays in the chain, still found.
        let e = Error::from(anyhow::Error::new(Error::WrongPassword).context("opening"));
        assert!(matches!(e, Error::Other(_)));
        assert_eq!(e.kind(), ErrorKind::WrongPassword);
        assert_eq!(
            format!("{:#}", anyhow::Error::new(e)),
            "opening: wrong password or no key found"
        );

        let e = Error::from(anyhow::Error::new(lock_error()));
        assert!(matches!(e, Error::Locked(_)));

        let e = Error::from(anyhow::anyhow!("plain").context("outer"));
        assert!(matches!(e, Error::Other(_)));
        assert_eq!(e.kind(), ErrorKind::Other);
    }

    #[test]
    fn messages_read_as_the_chain_did() {
        // What users read is the `{:#}` text of the chain, whatever variant it became, and
        // the same once a front end wraps it in its own context again.
        let chains = [
            anyhow::Error::new(MacError)
                .context("pack 1234")
                .context("loading blob"),
            anyhow::Error::new(not_found("snapshots/ab")).context("listing"),
            anyhow::Error::new(std::io::Error::other("disk on fire")).context("/src/a"),
            anyhow::Error::new(Error::Interrupted),
            anyhow::Error::new(Error::NoRepository {
                location: "/srv/r".into(),
            }),
            anyhow::Error::new(Error::WrongPassword).context("source repository"),
            anyhow::anyhow!("root").context("middle").context("top"),
        ];
        for chain in chains {
            let before = format!("{chain:#}");
            let typed = Error::from(chain);
            let wrapped = anyhow::Error::new(typed);
            assert_eq!(format!("{wrapped:#}"), before);
            let outer = wrapped.context("cli");
            assert_eq!(format!("{outer:#}"), format!("cli: {before}"));
        }
    }

    #[test]
    fn loading_names_the_object() {
        let chain = anyhow::Error::new(MacError).context("pack 12: tree blob 34");
        let e = Error::loading::<anyhow::Error>(Object::Pack(id(7)))(chain);
        assert!(matches!(
            &e,
            Error::Corrupt { object: Object::Pack(p), .. } if *p == id(7)
        ));
        assert_eq!(
            format!("{e:#}"),
            "pack 12: tree blob 34: ciphertext verification failed (invalid data or wrong key)"
        );
        let e = Error::loading::<anyhow::Error>(Object::Snapshot(id(2)))(anyhow::Error::new(
            not_found("s"),
        ));
        assert!(matches!(
            e,
            Error::Backend {
                object: Some(Object::Snapshot(_)),
                ..
            }
        ));
        let e = Error::loading::<anyhow::Error>(Object::Snapshot(id(2)))(anyhow::Error::new(
            Error::Interrupted,
        ));
        assert!(matches!(e, Error::Interrupted));
    }
}
