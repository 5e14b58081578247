//! Connections to MCP tool servers.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An MCP server connected and listed its tools (`mcp.server_connected`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct McpServerConnected {
    /// Server name from the configuration.
    pub server: String,
    /// Transport used, `stdio` or `streamable_http`.
    pub transport: String,
    /// Names of the tools the server offers.
    pub tools: Vec<String>,
}

/// An MCP server went away (`mcp.server_disconnected`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct McpServerDisconnected {
    /// Server name.
    pub server: String,
    /// Redacted reason, e.g. `process exited`.
    pub reason: String,
}
