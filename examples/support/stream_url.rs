//! The `--addr` flag of an example that serves a byte stream. Included with
//! `#[path]`.

/// The listen URL for `--addr given`: a bare `HOST:PORT` is taken as
/// `tcp://HOST:PORT`. A datagram URL (`udp://`, `udp4://`, `udp6://`) is an
/// error: a request split over datagrams, or two in one, cannot be framed, so
/// the example refuses to start rather than serve it badly.
pub fn stream_url(given: &str) -> Result<String, String> {
    match given.split_once("://") {
        None => Ok(format!("tcp://{given}")),
        Some((scheme, _)) if scheme.starts_with("udp") => Err(format!(
            "{scheme}:// is not served: this example needs a byte stream (tcp:// or unix://)"
        )),
        Some(_) => Ok(given.to_string()),
    }
}
