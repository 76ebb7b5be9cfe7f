//! Questions about roles (see docs/ACL.md), answered by the node as of a
//! version.

use crate::{Client, ClientError};
use ordo_proto::v1::{AclQuery, acl_client::AclClient};
use ordo_txn::{Address, StreamId};

/// What can be asked of `ordo.v1.Acl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclQuestion {
    /// Does the stream exist?
    StreamExists,
    /// Is the account an admin of the stream?
    IsAdmin,
    /// Is the account a writer of the stream?
    IsWriter,
    /// Is the key special (writable only by its special writers and admins)?
    IsSpecialKey,
    /// Is the account a special writer of the key?
    IsSpecialWriter,
    /// May the account write the key, all roles considered?
    CanWrite,
}

impl Client {
    /// Asks `question` about `account` (and `key`, for the per-key
    /// questions) in `stream`, at the latest applied version.
    pub async fn ask_acl(
        &self,
        question: AclQuestion,
        stream: StreamId,
        account: Address,
        key: &[u8],
    ) -> Result<bool, ClientError> {
        let mut acl = AclClient::new(self.channel.clone());
        let query = AclQuery {
            stream: stream.to_vec(),
            account: account.to_vec(),
            key: key.to_vec(),
            ..Default::default()
        };
        let answer = match question {
            AclQuestion::StreamExists => acl.stream_exists(query).await?,
            AclQuestion::IsAdmin => acl.is_admin(query).await?,
            AclQuestion::IsWriter => acl.is_writer(query).await?,
            AclQuestion::IsSpecialKey => acl.is_special_key(query).await?,
            AclQuestion::IsSpecialWriter => acl.is_special_writer(query).await?,
            AclQuestion::CanWrite => acl.can_write(query).await?,
        };
        Ok(answer.into_inner().holds)
    }
}
