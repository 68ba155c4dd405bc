//! What each platform's kernel offers of the features netloom's options ask
//! for, in one table that every platform compiles (so Linux CI tests the
//! macOS and FreeBSD rows too), and the start-up error for what is missing.

use crate::{Error, Result};

/// The platforms netloom builds for.
// A build constructs only its own variant; the others are rows of the table,
// kept so that every build (and Linux CI's tests) sees the whole table.
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Platform {
    Linux,
    MacOs,
    FreeBsd,
}

/// Kernel features that exist on some platforms only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Feature {
    /// Pinning a thread to one CPU (`sched_setaffinity`, `cpuset_setaffinity`).
    CpuPinning,
    /// Binding a socket to a network interface (`SO_BINDTODEVICE`, `IP_BOUND_IF`).
    BindDevice,
    /// Holding an accepted connection until data arrives (`TCP_DEFER_ACCEPT`).
    DeferAccept,
    /// Unix socket names outside the file system (`unix://@name`).
    AbstractUnixSockets,
    /// `SO_REUSEPORT` listeners among which the kernel balances connections
    /// (Linux's `SO_REUSEPORT`, FreeBSD's `SO_REUSEPORT_LB`).
    BalancedReuseport,
}

impl Platform {
    /// The platform this build is for.
    #[cfg(target_os = "linux")]
    pub(crate) const CURRENT: Platform = Platform::Linux;
    /// The platform this build is for.
    #[cfg(target_os = "macos")]
    pub(crate) const CURRENT: Platform = Platform::MacOs;
    /// The platform this build is for.
    #[cfg(target_os = "freebsd")]
    pub(crate) const CURRENT: Platform = Platform::FreeBsd;

    /// The name error messages show.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Platform::Linux => "Linux",
            Platform::MacOs => "macOS",
            Platform::FreeBsd => "FreeBSD",
        }
    }

    /// Whether this platform's kernel has `feature`.
    pub(crate) const fn supports(self, feature: Feature) -> bool {
        match (self, feature) {
            (Platform::Linux, _) => true,
            // FreeBSD: cpuset_setaffinity, SO_REUSEPORT_LB. macOS has neither.
            (Platform::FreeBsd, Feature::CpuPinning | Feature::BalancedReuseport) => true,
            // macOS: IP_BOUND_IF. FreeBSD has no per-socket interface binding.
            (Platform::MacOs, Feature::BindDevice) => true,
            // FreeBSD's accept filters have no timeout; abstract names are Linux's.
            _ => false,
        }
    }

    /// Refuses the first option asked for (`(asked, feature, option name)`)
    /// whose feature this platform lacks, as [`Error::InvalidOption`]
    /// naming the option and the platform.
    pub(crate) fn refuse_missing(self, options: &[(bool, Feature, &str)]) -> Result<()> {
        match options
            .iter()
            .find(|(asked, feature, _)| *asked && !self.supports(*feature))
        {
            Some((_, _, option)) => Err(Error::InvalidOption(format!(
                "{option}: not supported on {}",
                self.name()
            ))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY_FEATURE: [Feature; 5] = [
        Feature::CpuPinning,
        Feature::BindDevice,
        Feature::DeferAccept,
        Feature::AbstractUnixSockets,
        Feature::BalancedReuseport,
    ];

    #[test]
    fn each_platform_has_what_its_kernel_offers() {
        let has = |platform: Platform| {
            EVERY_FEATURE
                .into_iter()
                .filter(|f| platform.supports(*f))
                .collect::<Vec<_>>()
        };
        assert_eq!(has(Platform::Linux), EVERY_FEATURE);
        assert_eq!(has(Platform::MacOs), [Feature::BindDevice]);
        assert_eq!(
            has(Platform::FreeBsd),
            [Feature::CpuPinning, Feature::BalancedReuseport]
        );
    }

    #[test]
    fn missing_features_are_refused_naming_option_and_platform() {
        let asked = [
            (false, Feature::DeferAccept, "tcp_defer_accept"),
            (true, Feature::BindDevice, "bind_device"),
            (true, Feature::CpuPinning, "pin_loops"),
        ];
        assert!(Platform::Linux.refuse_missing(&asked).is_ok());
        let err = Platform::MacOs.refuse_missing(&asked).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid option: pin_loops: not supported on macOS"
        );
        let err = Platform::FreeBsd.refuse_missing(&asked).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid option: bind_device: not supported on FreeBSD"
        );
        assert!(
            Platform::FreeBsd.refuse_missing(&asked[..1]).is_ok(),
            "not asked"
        );
    }
}
