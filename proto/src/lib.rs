//! # ordo-proto: the wire protocol
//!
//! ordo's gRPC protocol, generated once from the `.proto` files in `proto/`
//! so that the server and every client speak exactly the same messages.
//! Clients in other languages use those files directly.
//!
//! ## Layout
//!
//! - [`v1`]: the generated messages, clients and servers of `ordo.v1`.
//! - [`cluster`]: `ordo.cluster.v1`, what nodes of a cluster say to each
//!   other (raft between sequencer voters); not a client API.
//! - [`pipe`]: many calls on one bidirectional stream, as cluster members
//!   send shards and raft messages to each other.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, served by gRPC
//!   reflection so tools such as grpcurl work without the files.

/// Generated code of package `ordo.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("ordo.v1");
}

/// Generated code of the cluster's internal packages.
pub mod cluster {
    /// Generated code of package `ordo.cluster.v1`.
    #[allow(missing_docs, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("ordo.cluster.v1");
    }
}

pub mod pipe;

/// Metadata key of an `OUT_OF_RANGE` refusal of a read, or a watch, below
/// the log's retention horizon: the oldest version still read (decimal).
/// Clients turn such a refusal into a typed "compacted" error with it.
pub const OLDEST_VERSION_METADATA: &str = "ordo-oldest-version";

/// Encoded `FileDescriptorSet` of every ordo service, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/ordo_descriptor.bin"));

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn descriptor_set_names_the_status_service() {
        let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET)
            .expect("valid descriptor set");
        let services: Vec<String> = set
            .file
            .iter()
            .filter(|f| f.package() == "ordo.v1")
            .flat_map(|f| f.service.iter().map(|s| s.name().to_string()))
            .collect();
        for service in ["Status", "Log", "Kv", "Txn", "Acl", "Da"] {
            assert!(
                services.contains(&service.to_string()),
                "services: {services:?}"
            );
        }
    }

    #[test]
    fn status_response_round_trips_on_the_wire() {
        let status = v1::GetStatusResponse {
            version: "0.1.0".into(),
            role: "dev".into(),
            log_tail: 42,
            data_shards: 4,
            parity_shards: 2,
            applied_version: 7,
            applied_seq: 40,
            replay_lag: 2,
            state_digest: vec![9; 32],
            node_address: vec![3; 20],
            log_id: vec![4; 32],
            write_quorum: 5,
            chain: Some(v1::ChainStatus {
                head_block: 12,
                confirmed_block: 11,
                pending_appends: 1,
                transactions: 3,
                gas_used: 99_000,
            }),
            mining: Some(v1::MiningStatus {
                epoch_entries: 16,
                target_proofs: 8,
                reward_per_proof: 5,
                epoch: 3,
                target: vec![0x0f; 32],
                accepted: 2,
                mineable_chunks: 1_234,
            }),
            miner: Some(v1::MinerStatus {
                account: vec![3; 20],
                attempts: 10_000,
                held: 5_000,
                hits: 3,
                accepted: 2,
                refused: 1,
                sealed_chunks: 600,
                attempts_per_second: 1_250.5,
            }),
            retention: Some(v1::RetentionStatus {
                horizon: 900,
                keep_versions: u64::MAX,
                keep_secs: 3_600,
                collected_rows: 12,
                stored_versions: 3_400,
                swept_deletes: 5,
            }),
        };
        let bytes = status.encode_to_vec();
        assert_eq!(
            v1::GetStatusResponse::decode(bytes.as_slice()).expect("decodes"),
            status
        );
    }
}
