//! Listen addresses as the flags spell them, parsed once by the config and
//! bound by the server; and the file that says where the listeners are.

/// A listen address: how it was spelled (for messages) and its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddress {
    pub spelled: String,
    /// Empty: every interface.
    pub host: String,
    pub port: u16,
}

impl ListenAddress {
    pub fn parse(address: &str) -> Result<ListenAddress, String> {
        let (host, port) = split_listen_address(address)?;
        Ok(ListenAddress {
            spelled: address.to_string(),
            host,
            port,
        })
    }
}

/// `:9781` (every interface), `host:port`, `[v6]:port`.
pub fn split_listen_address(address: &str) -> std::result::Result<(String, u16), String> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("{address:?} has no port; use host:port or :port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{address:?} has an invalid port {port:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_string(), port))
}

/// Writes `addresses`, one a line, to `path` through a temporary file and a
/// rename, so that a reader polling for the file never sees half of it.
pub fn write_bound_addresses(path: &std::path::Path, addresses: &[std::net::SocketAddr]) -> std::io::Result<()> {
    let text: String = addresses.iter().map(|a| format!("{a}\n")).collect();
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}
