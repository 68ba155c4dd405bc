//! Which poller an engine's loops run on: [`Backend`] as asked for in code,
//! `NETLOOM_BACKEND` in place of `Auto`, and a start-up probe of io_uring.

use crate::{Backend, Error, Result};

/// The environment variable that replaces `Backend::Auto`.
pub(crate) const BACKEND_ENV: &str = "NETLOOM_BACKEND";

/// A resolved backend: what `Selector::open` creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PollerKind {
    /// epoll on Linux, kqueue on macOS and FreeBSD.
    Readiness,
    /// io_uring (Linux).
    IoUring,
}

/// Resolves `asked` once per engine or runtime: the environment replaces
/// `Auto`, and io_uring is probed (once per process) before it is used.
///
/// # Errors
/// [`Error::InvalidOption`] for a `NETLOOM_BACKEND` that names no backend;
/// [`Error::BackendUnavailable`] for io_uring asked for where the probe
/// failed.
pub(crate) fn resolve_backend(asked: Backend) -> Result<PollerKind> {
    let env = std::env::var(BACKEND_ENV).ok();
    #[cfg(target_os = "linux")]
    let probe: Option<fn() -> std::result::Result<(), String>> = Some(super::linux::uring::probe);
    #[cfg(not(target_os = "linux"))]
    let probe: Option<fn() -> std::result::Result<(), String>> = None;
    resolve_with(asked, env.as_deref(), probe)
}

/// `resolve_backend` with its inputs passed in: the environment's value and
/// the probe (`None` where the platform has no io_uring).
fn resolve_with(
    asked: Backend,
    env: Option<&str>,
    probe: Option<fn() -> std::result::Result<(), String>>,
) -> Result<PollerKind> {
    let wanted = match (asked, env) {
        (Backend::Auto, Some(value)) if !value.is_empty() => value
            .parse::<Backend>()
            .map_err(|e| Error::InvalidOption(format!("{BACKEND_ENV}: {e}")))?,
        (asked, _) => asked,
    };
    let probed = || match probe {
        Some(probe) => probe(),
        None => Err(format!("io_uring is Linux's; this is {}", super::PLATFORM)),
    };
    match wanted {
        Backend::Epoll => Ok(PollerKind::Readiness),
        Backend::IoUring => match probed() {
            Ok(()) => Ok(PollerKind::IoUring),
            Err(reason) => Err(Error::BackendUnavailable {
                backend: "io-uring",
                reason,
            }),
        },
        Backend::Auto if probe.is_none() => Ok(PollerKind::Readiness),
        Backend::Auto => match probed() {
            Ok(()) => Ok(PollerKind::IoUring),
            Err(reason) => {
                log::info!("netloom: io_uring unavailable ({reason}); using epoll");
                Ok(PollerKind::Readiness)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn works() -> std::result::Result<(), String> {
        Ok(())
    }
    fn refused() -> std::result::Result<(), String> {
        Err("io_uring_setup: Operation not permitted".into())
    }

    #[test]
    fn auto_prefers_io_uring_and_falls_back_to_readiness() {
        let auto = |probe| resolve_with(Backend::Auto, None, probe).unwrap();
        assert_eq!(auto(Some(works)), PollerKind::IoUring);
        assert_eq!(auto(Some(refused)), PollerKind::Readiness);
        assert_eq!(auto(None), PollerKind::Readiness);
    }

    #[test]
    fn the_environment_replaces_auto_only() {
        let with_env = |asked, env| resolve_with(asked, Some(env), Some(works)).unwrap();
        assert_eq!(with_env(Backend::Auto, "epoll"), PollerKind::Readiness);
        assert_eq!(with_env(Backend::Auto, "io-uring"), PollerKind::IoUring);
        assert_eq!(with_env(Backend::Auto, "auto"), PollerKind::IoUring);
        assert_eq!(with_env(Backend::Auto, ""), PollerKind::IoUring);
        assert_eq!(with_env(Backend::IoUring, "epoll"), PollerKind::IoUring);
        assert_eq!(with_env(Backend::Epoll, "io-uring"), PollerKind::Readiness);
        let err = resolve_with(Backend::Auto, Some("poll"), Some(works)).unwrap_err();
        assert!(err.to_string().contains("NETLOOM_BACKEND"), "{err}");
    }

    #[test]
    fn io_uring_where_unavailable_is_a_typed_error() {
        let err = resolve_with(Backend::IoUring, None, Some(refused)).unwrap_err();
        assert!(
            matches!(&err, Error::BackendUnavailable { backend: "io-uring", reason }
                if reason.contains("not permitted")),
            "{err}"
        );
        let err = resolve_with(Backend::Auto, Some("io-uring"), None).unwrap_err();
        assert!(matches!(err, Error::BackendUnavailable { .. }), "{err}");
    }
}
