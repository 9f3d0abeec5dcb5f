//! Where webhooks may go: public addresses only (unless the operator allows private ones), so
//! that an endpoint's URL cannot make the server call its own network (SSRF). A URL is checked
//! when an endpoint is made or changed, and every address its host resolves to is checked again
//! when a delivery connects: the HTTP client resolves names through [`Guard`] only, so the
//! address it connects to is one that was checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use reqwest::Url;

/// Longest endpoint URL.
pub const URL_LEN_MAX: usize = 2048;

/// Whether `ip` is on the public internet: not loopback, private, link-local, unspecified,
/// shared (CGNAT), multicast, broadcast, documentation or reserved; IPv4 inside IPv6 (mapped,
/// NAT64) is judged as the IPv4 address it carries.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let reserved = a == 0                           // "this network"
        || (a == 100 && (64..128).contains(&b))     // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0)           // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19))       // benchmarking
        || a >= 240; // reserved and broadcast
    !(reserved
        || ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation())
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [_, _, _, _, _, _, high, low] = segments;
        let v4 = Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
        return is_public_v4(v4);
    }
    let unique_local = segments[0] & 0xfe00 == 0xfc00;
    let link_local = segments[0] & 0xffc0 == 0xfe80;
    let documentation = segments[0] == 0x2001 && segments[1] == 0x0db8;
    // IPv4-compatible (deprecated) ::a.b.c.d, and the discard prefix 100::/64.
    let compatible = segments[..6] == [0, 0, 0, 0, 0, 0];
    let discard = segments[..4] == [0x100, 0, 0, 0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || unique_local
        || link_local
        || documentation
        || compatible
        || discard)
}

/// Why a URL is refused: malformed ([`UrlProblem::Invalid`]) or pointing where webhooks may
/// not go ([`UrlProblem::NotAllowed`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UrlProblem {
    Invalid(String),
    NotAllowed(String),
}

/// Checks an endpoint's URL: `https://` (or `http://` only where private addresses are
/// allowed, for local receivers), no user or password, a host, at most [`URL_LEN_MAX`]
/// characters, no fragment; an IP literal or `localhost` must be public unless
/// `allow_private`. Returns the URL as parsed.
pub fn check_url(text: &str, allow_private: bool) -> Result<Url, UrlProblem> {
    let invalid = |why: &str| UrlProblem::Invalid(why.to_owned());
    if text.len() > URL_LEN_MAX || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("a webhook URL has at most 2048 characters and no spaces"));
    }
    let url =
        Url::parse(text).map_err(|error| UrlProblem::Invalid(format!("not a URL: {error}")))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => {
            return Err(UrlProblem::NotAllowed(
                "a webhook URL is https:// (http:// only where private addresses are allowed)"
                    .to_owned(),
            ));
        }
        _ => return Err(invalid("a webhook URL is an https:// address")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("a webhook URL carries no user name or password"));
    }
    if url.fragment().is_some() {
        return Err(invalid("a webhook URL has no fragment"));
    }
    if !allow_private {
        check_host(&url)?;
    }
    Ok(url)
}

/// The URL's host as an IP address, when it is an IP literal (`[…]` for IPv6).
fn literal(url: &Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// Refuses a URL whose host is an IP literal that is not public, or a local name.
fn check_host(url: &Url) -> Result<(), UrlProblem> {
    let refused = || {
        UrlProblem::NotAllowed(
            "a webhook URL must point to a public address (not loopback, private or \
             link-local)"
                .to_owned(),
        )
    };
    let Some(host) = url.host_str().filter(|host| !host.is_empty()) else {
        return Err(UrlProblem::Invalid("a webhook URL names a host".to_owned()));
    };
    if let Some(ip) = literal(url) {
        return if is_public(ip) { Ok(()) } else { Err(refused()) };
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") || !name.contains('.') {
        return Err(refused());
    }
    Ok(())
}

/// Resolves names for the webhook client and refuses any name with an address that is not
/// public (unless allowed): every address is checked, not only the first, so that a name
/// cannot pair a public address with a private one. The connector calls it for names only
/// (its resolver is in `transport.rs`); an IP literal is checked by [`literal_allowed`] before
/// the request is made.
#[derive(Clone, Debug, Default)]
pub struct Guard {
    pub allow_private: Arc<AtomicBool>,
}

/// Whether the URL's host, if an IP literal, may be called (names are checked by [`Guard`]).
pub fn literal_allowed(url: &Url, allow_private: bool) -> bool {
    allow_private || literal(url).is_none_or(is_public)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        let private = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2001:db8::1",
        ];
        for text in private {
            let ip: IpAddr = text.parse().unwrap();
            assert!(!is_public(ip), "{text} is not public");
        }
        for text in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            let ip: IpAddr = text.parse().unwrap();
            assert!(is_public(ip), "{text} is public");
        }
    }

    #[test]
    fn urls_to_private_places_are_refused_unless_allowed() {
        let refused = [
            "http://127.0.0.1/hook",
            "https://127.0.0.1/hook",
            "https://[::1]/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://localhost/hook",
            "https://10.0.0.7:8443/hook",
            "https://0x7f000001/hook",
            "https://2130706433/hook",
            "https://[::ffff:127.0.0.1]/hook",
            "https://intranet/hook",
            "http://example.com/hook",
        ];
        for url in refused {
            assert!(
                matches!(check_url(url, false), Err(UrlProblem::NotAllowed(_))),
                "{url} must be refused"
            );
            assert!(check_url(url, true).is_ok(), "{url} is allowed with the flag");
        }
        for url in ["ftp://example.com/", "https://user:pw@example.com/", "not a url", "https://"] {
            assert!(matches!(check_url(url, true), Err(UrlProblem::Invalid(_))), "{url}");
        }
        assert!(check_url("https://hooks.example.com/in?x=1", false).is_ok());
        let url = Url::parse("http://127.0.0.1:9/").unwrap();
        assert!(!literal_allowed(&url, false));
        assert!(literal_allowed(&url, true));
    }
}
