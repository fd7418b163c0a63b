//! The HTTP front door: listeners ([`listen`]), connection limits
//! ([`connection`]), TLS and basic auth ([`web_config`]), content
//! negotiation ([`negotiate`]) and the routes that serve the outputs
//! ([`server`]).

pub mod connection;
pub mod listen;
pub mod negotiate;
pub mod server;
pub mod web_config;
