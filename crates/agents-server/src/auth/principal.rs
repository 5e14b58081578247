//! Who is calling, and what they may do.

use std::fmt;

use serde::{Deserialize, Serialize};
use tonic::Status;

/// The tenant of every call when auth is off.
pub const ANONYMOUS_TENANT: &str = "anonymous";

/// What a key may do. Roles nest: `admin` allows everything `execute` allows, which allows
/// everything `read` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Role {
    /// ListAgents, DescribeAgent, GetTask.
    Read,
    /// Execute, ExecuteStream, SubmitTask, CancelTask, and everything `read` allows.
    Execute,
    /// Everything.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::Read, Role::Execute, Role::Admin];

    /// The role's name in the config and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Execute => "execute",
            Self::Admin => "admin",
        }
    }

    /// Whether holding `self` allows what `needed` allows.
    pub fn grants(self, needed: Role) -> bool {
        self >= needed
    }

    /// The role an `AgentService` RPC needs. `rpc` is the method name (`Execute`) or the gRPC
    /// path (`/agents.v1.AgentService/Execute`). Unknown methods need `admin`: a method added
    /// to the proto is closed until someone decides who may call it.
    pub fn required_for_rpc(rpc: &str) -> Role {
        let method = rpc.rsplit('/').next().unwrap_or(rpc);
        match method {
            "ListAgents" | "DescribeAgent" | "GetTask" => Self::Read,
            "Execute" | "ExecuteStream" | "SubmitTask" | "CancelTask" => Self::Execute,
            _ => Self::Admin,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller: the configured key's id (a label, never the key), its tenant and
/// its roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    key_id: String,
    tenant: String,
    roles: Vec<Role>,
}

impl Principal {
    /// A principal. The server gets them from [`Authenticator::authenticate`]; building one by
    /// hand is for tests and embedding programs that authenticate their own way.
    ///
    /// [`Authenticator::authenticate`]: crate::auth::Authenticator::authenticate
    pub fn new(key_id: impl Into<String>, tenant: impl Into<String>, roles: Vec<Role>) -> Self {
        Self {
            key_id: key_id.into(),
            tenant: tenant.into(),
            roles,
        }
    }

    /// The caller when auth is off: tenant [`ANONYMOUS_TENANT`], every role.
    pub fn anonymous() -> Self {
        Self::new(ANONYMOUS_TENANT, ANONYMOUS_TENANT, Role::ALL.to_vec())
    }

    /// The configured key's `id`.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The tenant the key belongs to: the unit of limits and of the audit trail.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The key's roles, as configured.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// Whether one of the key's roles allows what `role` allows.
    pub fn has(&self, role: Role) -> bool {
        self.roles.iter().any(|held| held.grants(role))
    }

    /// `Ok` when the key may do what `role` allows.
    ///
    /// # Errors
    /// `PERMISSION_DENIED`, naming the key's id and the missing role.
    pub fn require(&self, role: Role) -> Result<(), Status> {
        if self.has(role) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "key `{}` lacks the `{role}` role; ask an operator to grant it in `auth.keys`",
                self.key_id
            )))
        }
    }
}
