//! The node's own key and its gateway role.
//!
//! Every node has a key (`DATA_DIR/node.key`, made on first start). It
//! signs the entries in which the node vouches for the senders of session
//! transactions (`ordo_txn::attest`), and session challenges name its
//! address. Replay applies those transactions only while the address holds
//! the gateway role. A node that creates a log (`ordo dev` on an empty data
//! directory) writes the genesis record first, making its key the log's
//! admin and first gateway; a node over a log made before gateways existed
//! is no gateway, so it takes only signed commits.

use ordo_txn::attest::{Genesis, Ordering, SYSTEM_STREAM};
use ordo_txn::{Address, Fact, SigningKey};
use std::path::Path;

/// The node's key and address.
#[derive(Clone)]
pub struct NodeKey {
    /// Signs attested entries.
    pub key: SigningKey,
    /// The key's address.
    pub address: Address,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("NodeKey")
            .field("address", &ordo_log::hex(&self.address))
            .finish()
    }
}

impl NodeKey {
    /// Loads `DATA_DIR/node.key`, creating it on first start.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join("node.key");
        let key = ordo_client::keyfile::load_or_create(&path)?;
        let address = ordo_txn::address_of(&key);
        Ok(Self { key, address })
    }

    /// Whether this node holds the gateway role in `state` at `version`.
    pub fn is_gateway<E: ordo_kv::Engine>(
        &self,
        state: &ordo_kv::MvccStore<E>,
        version: u64,
    ) -> Result<bool, ordo_kv::MvccError> {
        let fact = Fact::Gateway(self.address);
        ordo_txn::replay::fact_holds(state, &SYSTEM_STREAM, &fact, version)
    }

    /// The genesis record of a log this node founds, ordered by
    /// `ordering`: the node is its admin and first gateway.
    pub fn genesis(&self, ordering: Ordering) -> Genesis {
        Genesis {
            admin: self.address,
            gateways: vec![self.address],
            ordering,
        }
    }
}
