//! The `OrdoLog` contract's bindings, generated at build time from the
//! compiled artifact, and the mapping between its headers and ordo's.

use ordo_log::{Address, EntryDescriptor, EntryHeader, Geometry, LogError};

alloy::sol!(
    #[allow(missing_docs)]
    #[sol(rpc)]
    OrdoLog,
    "artifacts/OrdoLog.json"
);

/// The contract's form of `entry` (the submitter is not sent: the chain
/// records the sender).
pub fn contract_header(entry: &EntryDescriptor) -> OrdoLog::Header {
    OrdoLog::Header {
        commitment: entry.commitment.into(),
        geometry: entry.geometry.to_bytes().into(),
        tags: entry.tags.iter().map(|tag| (*tag).into()).collect(),
    }
}

/// Header `seq` as ordo sees it: the contract's header, with the submitter
/// the chain authenticated. A geometry the contract let through but ordo's
/// log refuses is an error here; the caller decides what it means.
pub fn ordo_header(
    seq: u64,
    header: &OrdoLog::Header,
    submitter: alloy::primitives::Address,
) -> Result<EntryHeader, LogError> {
    let geometry = Geometry::from_bytes(&header.geometry.0)?;
    let submitter: Address = submitter.into_array();
    let entry = EntryDescriptor {
        commitment: header.commitment.0,
        geometry,
        tags: header.tags.iter().map(|tag| tag.0).collect(),
        submitter,
    };
    entry.validate()?;
    Ok(EntryHeader { seq, entry })
}
