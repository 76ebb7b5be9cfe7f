//! The storage members of a cluster as one shard store: an entry's shards
//! written to the homes placement gives them, durable on a write quorum of
//! distinct members, and read back from any `k` shards that verify.
//!
//! The members start as a member's file names them and follow the
//! membership the log records (see [`crate::node::storage_members`]),
//! through [`StorageSet::replace_members`]. A *draining* member is being
//! emptied before its removal: placement leaves it out (no new shards,
//! and repair stores its shards at their new homes), while reads still
//! ask it, after every other member, for what it holds.

use crate::node::put_pipe::PutPipe;
use crate::node::services::shards::MAX_CHECK_KEYS;
use crate::node::services::shards::{message_of, shard_of};
use ordo_log::placement::{self, MemberId, PlacementError, place};
use ordo_log::{
    Coder, EncodedEntry, EntryHeader, Geometry, Hash, LogError, Shard, SpreadError, SpreadShards,
    VerifiedPayload, verify_shard,
};
use ordo_proto::cluster::v1::shards_client::ShardsClient;
use ordo_proto::cluster::v1::{
    CheckShardsRequest, IdentifyRequest, ListShardsRequest, PutShardRequest, ShardKey,
    ShardMessage, ShardState,
};
use ordo_raft::PeerTls;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::task::JoinSet;
use tonic::transport::Channel;

/// How long one shard put or get may take before the member counts as
/// failed for that shard.
pub const SHARD_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an entry's shards could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum StorageSetError {
    /// The write quorum is outside `k + 1 ..= k + m`.
    #[error("write quorum {quorum} is outside {min}..={max} for this geometry")]
    BadQuorum {
        /// Asked for.
        quorum: usize,
        /// `k + 1`.
        min: usize,
        /// `k + m`.
        max: usize,
    },
    /// Placement failed (no members, too many).
    #[error(transparent)]
    Placement(#[from] PlacementError),
    /// Fewer shards became durable than the quorum asks.
    #[error("{durable} shards durable, the quorum is {quorum}: {failures}")]
    NoQuorum {
        /// Shards stored.
        durable: usize,
        /// Needed.
        quorum: usize,
        /// What the failed members said.
        failures: String,
    },
    /// Fewer than `k` verified shards could be fetched.
    #[error("{found} verified shards of {needed} needed: {failures}")]
    NotEnoughShards {
        /// Verified shards fetched.
        found: usize,
        /// `k`.
        needed: usize,
        /// What the failed members said.
        failures: String,
    },
    /// Rebuilding from verified shards failed.
    #[error("rebuilding the payload: {0}")]
    Rebuild(#[from] LogError),
    /// Re-encoding the rebuilt payload gave another commitment (a bug, or
    /// a geometry that is not the entry's).
    #[error("the re-encoded entry does not match its commitment")]
    ReencodedDiffers,
    /// Storing a rebuilt shard at its home failed.
    #[error("restoring shard {index} on member {member}: {reason}")]
    Restore {
        /// The shard.
        index: u16,
        /// Its home.
        member: MemberId,
        /// What the member said.
        reason: String,
    },
    /// A task of the operation ended without an answer (the runtime is
    /// shutting down).
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// A member address is not a URI.
    #[error("storage member {id} at {addr}: {reason}")]
    BadAddress {
        /// The member.
        id: MemberId,
        /// Its address.
        addr: String,
        /// Why.
        reason: String,
    },
}

/// The storage members by id and peer address: those shards are placed
/// on, and those being emptied (see the module's documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    /// Members placement uses.
    pub active: BTreeMap<MemberId, String>,
    /// Members still read from, never placed on.
    pub draining: BTreeMap<MemberId, String>,
}

impl Membership {
    /// Every member placement uses, none draining.
    pub fn active(members: BTreeMap<MemberId, String>) -> Self {
        Self {
            active: members,
            draining: BTreeMap::new(),
        }
    }

    /// Whether no member is recorded at all.
    pub fn is_empty(&self) -> bool {
        self.active.is_empty() && self.draining.is_empty()
    }

    /// Every member's address, draining or not.
    fn addresses(&self) -> impl Iterator<Item = (&MemberId, &String)> {
        self.active.iter().chain(&self.draining)
    }
}

/// The cluster's storage members, each with a client. Cheap to clone:
/// clones share the members, which [`StorageSet::replace_members`] changes
/// for all of them at once.
#[derive(Clone)]
pub struct StorageSet {
    members: Arc<RwLock<Arc<Members>>>,
    tls: PeerTls,
    /// Shards an entry written through [`SpreadShards`] must have durable
    /// before it is ordered; `None` is the default, `k + m - 1`.
    write_quorum: Option<usize>,
    /// How long a read waits for the data shards alone.
    parity_hedge: Duration,
}

/// The members at one moment. Every operation takes one snapshot, so a
/// membership change never splits an operation between two memberships.
#[derive(Default)]
struct Members {
    membership: Membership,
    /// How to reach every member, draining ones included.
    links: BTreeMap<MemberId, Link>,
}

/// How a member is reached: a client for every call but puts, and a put
/// stream on a connection of its own.
#[derive(Clone)]
struct Link {
    client: ShardsClient<Channel>,
    pipe: Arc<PutPipe>,
}

impl Members {
    /// The members placement uses: the homes and spares of every entry.
    fn ids(&self) -> BTreeSet<MemberId> {
        self.membership.active.keys().copied().collect()
    }

    /// The draining members, asked last by reads.
    fn draining(&self) -> impl Iterator<Item = MemberId> + '_ {
        self.membership.draining.keys().copied()
    }

    fn client(&self, id: MemberId) -> ShardsClient<Channel> {
        self.links[&id].client.clone()
    }

    fn pipe(&self, id: MemberId) -> Arc<PutPipe> {
        self.links[&id].pipe.clone()
    }
}

/// The link to the storage member `id` at `addr`, over the cluster's TLS.
fn link_to(id: MemberId, addr: &str, tls: &PeerTls) -> Result<Link, StorageSetError> {
    let bad = |reason: String| StorageSetError::BadAddress {
        id,
        addr: addr.to_string(),
        reason,
    };
    let endpoint = (tls.endpoint(addr)).map_err(|e| bad(e.to_string()))?;
    let limit = crate::node::services::MAX_REQUEST_BYTES;
    let client = |endpoint: tonic::transport::Endpoint| {
        ShardsClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit)
    };
    // The put stream lives as long as the member answers, so its
    // connection times no call out; each put has its own bound.
    let pipe = Arc::new(PutPipe::new(client(endpoint.clone()), SHARD_CALL_TIMEOUT));
    let client = client(endpoint.timeout(SHARD_CALL_TIMEOUT));
    Ok(Link { client, pipe })
}

/// Members for `membership`, keeping the links of `before` whose
/// address did not change.
fn members_of(
    membership: &Membership,
    before: &Members,
    tls: &PeerTls,
) -> Result<Members, StorageSetError> {
    let known: BTreeMap<&MemberId, &String> = before.membership.addresses().collect();
    let mut links = BTreeMap::new();
    for (&id, addr) in membership.addresses() {
        let link = match known.get(&id) == Some(&addr) {
            true => before.links[&id].clone(),
            false => link_to(id, addr, tls)?,
        };
        links.insert(id, link);
    }
    Ok(Members {
        membership: membership.clone(),
        links,
    })
}

/// The default write quorum of a geometry: every shard but one. One
/// storage member may be slow or down without stalling writes, and an
/// entry acknowledged at this quorum still survives `m - 1` further losses
/// before repair runs. Never below `k + 1`, so that one loss after the
/// acknowledgement never makes an entry unreadable. `asked` (a member's
/// `write_quorum`) replaces the default; it is checked against
/// `k + 1 ..= k + m` where it is read and where an entry is stored.
pub fn write_quorum(data_shards: u16, parity_shards: u16, asked: Option<usize>) -> usize {
    let (k, total) = (
        usize::from(data_shards),
        usize::from(data_shards) + usize::from(parity_shards),
    );
    asked.unwrap_or((total - 1).max(k + 1).min(total))
}

impl StorageSet {
    /// Clients for `members` (id to peer address, none draining), over the
    /// cluster's TLS.
    pub fn connect(
        members: &BTreeMap<MemberId, String>,
        tls: &PeerTls,
    ) -> Result<Self, StorageSetError> {
        let membership = Membership::active(members.clone());
        let members = members_of(&membership, &Members::default(), tls)?;
        Ok(Self {
            members: Arc::new(RwLock::new(Arc::new(members))),
            tls: tls.clone(),
            write_quorum: None,
            parity_hedge: PARITY_HEDGE,
        })
    }

    /// The members now.
    fn members(&self) -> Arc<Members> {
        self.members
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The members now.
    pub fn membership(&self) -> Membership {
        self.members().membership.clone()
    }

    /// The ids of the members placement uses now.
    pub fn active_ids(&self) -> BTreeSet<MemberId> {
        self.members().ids()
    }

    /// Makes `membership` the members, for every clone of this set
    /// (operations in flight finish with the members they started with).
    /// Returns whether anything changed.
    pub fn replace_members(&self, membership: &Membership) -> Result<bool, StorageSetError> {
        let before = self.members();
        if before.membership == *membership {
            return Ok(false);
        }
        let after = members_of(membership, &before, &self.tls)?;
        *self.members.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(after);
        Ok(true)
    }

    /// This set, writing entries through [`SpreadShards`] at `quorum`
    /// (checked against each entry's geometry when it is written).
    pub fn with_write_quorum(self, quorum: Option<usize>) -> Self {
        Self {
            write_quorum: quorum,
            ..self
        }
    }

    /// This set, asking a read's parity shards after `hedge` without all
    /// its data shards ([`PARITY_HEDGE`] unless changed).
    pub fn with_parity_hedge(self, hedge: Duration) -> Self {
        Self {
            parity_hedge: hedge,
            ..self
        }
    }

    /// Stores each shard of `entry` on its home; returns once shards are
    /// durable on `quorum` distinct members (the rest are still sent, and repair finds any that fail).
    pub async fn put_entry(
        &self,
        entry: &EncodedEntry,
        quorum: usize,
    ) -> Result<usize, StorageSetError> {
        let (k, total) = (
            usize::from(entry.geometry.data_shards),
            usize::from(entry.geometry.total_shards()),
        );
        if quorum <= k || quorum > total {
            return Err(StorageSetError::BadQuorum {
                quorum,
                min: k + 1,
                max: total,
            });
        }
        let snapshot = self.members();
        let members = snapshot.ids();
        let homes = place(&entry.commitment, entry.geometry.total_shards(), &members)?;
        // A shard whose home fails goes to the next spare: distinct members
        // still, and readers ask the spares in the same order.
        let mut spares = placement::spares(&entry.commitment, &homes, &members).into_iter();
        let mut puts = JoinSet::new();
        for (index, &home) in homes.iter().enumerate() {
            puts.spawn(put_shard(snapshot.pipe(home), entry, index, home));
        }
        // The quorum counts distinct members: with fewer members than
        // shards, one member may hold two, and its loss loses both.
        let (mut durable, mut failures) = (BTreeSet::new(), Vec::new());
        while let Some(done) = puts.join_next().await {
            match done {
                Ok(Ok(member)) => {
                    durable.insert(member);
                }
                Ok(Err((index, e))) => {
                    tracing::debug!(error = %e, index, "a shard put failed; trying a spare");
                    failures.push(e);
                    if let Some(spare) = spares.next() {
                        puts.spawn(put_shard(snapshot.pipe(spare), entry, index, spare));
                    }
                }
                Err(e) => failures.push(format!("put task: {e}")),
            }
            if durable.len() >= quorum {
                // The other puts go on in the background.
                puts.detach_all();
                return Ok(durable.len());
            }
        }
        Err(StorageSetError::NoQuorum {
            durable: durable.len(),
            quorum,
            failures: failures.join("; "),
        })
    }

    /// The entry's payload, rebuilt from the first `k` shards that verify.
    pub async fn get_payload(
        &self,
        commitment: &Hash,
        geometry: &Geometry,
    ) -> Result<Vec<u8>, StorageSetError> {
        Ok(self.load(commitment, geometry).await?.payload)
    }

    /// The entry's payload, rebuilt from the first `k` shards that verify,
    /// with the shards that were missing or failed to verify at their
    /// homes. Asks the spares, in order, only when the homes give fewer
    /// than `k`.
    pub async fn load(
        &self,
        commitment: &Hash,
        geometry: &Geometry,
    ) -> Result<VerifiedPayload, StorageSetError> {
        let snapshot = self.members();
        let members = snapshot.ids();
        let homes = place(commitment, geometry.total_shards(), &members)?;
        let needed = usize::from(geometry.data_shards);
        let mut found =
            fetch_from_homes(&snapshot, commitment, geometry, &homes, self.parity_hedge).await;
        if found.shards.len() < needed {
            // The spares first, then the homes again (a shard placed under
            // another membership may sit on a home under another index),
            // then the draining members, which still hold what they held.
            let mut others = placement::spares(commitment, &homes, &members);
            let mut seen = BTreeSet::new();
            others.extend(homes.iter().copied().filter(|home| seen.insert(*home)));
            others.extend(snapshot.draining());
            fetch_from_spares(&snapshot, commitment, geometry, &others, &mut found).await;
        }
        if found.shards.len() < needed {
            return Err(StorageSetError::NotEnoughShards {
                found: found.shards.len(),
                needed,
                failures: found.failures.join("; "),
            });
        }
        let refs: Vec<&Shard> = found.shards.iter().take(needed).collect();
        let payload = Coder::new().rebuild(commitment, geometry, &refs)?;
        found.missing.sort_unstable();
        found.rejected.sort_unstable();
        Ok(VerifiedPayload {
            payload,
            missing: found.missing,
            rejected: found.rejected,
        })
    }
}

/// Stores shard `index` of `entry` on `member`; on failure, the index
/// and what the member said.
fn put_shard(
    pipe: Arc<PutPipe>,
    entry: &EncodedEntry,
    index: usize,
    member: MemberId,
) -> impl std::future::Future<Output = Result<MemberId, (usize, String)>> + use<> {
    let request = PutShardRequest {
        commitment: entry.commitment.to_vec(),
        geometry: entry.geometry.to_bytes().to_vec(),
        shard: Some(message_of(entry.shards[index].clone())),
    };
    async move {
        match pipe.put(request).await {
            Ok(()) => Ok(member),
            Err(e) => Err((index, format!("member {member}: {e}"))),
        }
    }
}

/// How long a read waits for the data shards before it also asks the
/// parity shards' homes. A member that is down refuses at once and its
/// shard's stand-in is asked then; this bound is for a member that takes
/// the request and stalls. A healthy member answers a get from memory or
/// its block cache in well under this, even while it syncs puts, so the
/// hedge does not fire on a healthy cluster and costs a stalled one at
/// most this much per entry.
pub const PARITY_HEDGE: Duration = Duration::from_millis(50);

/// One get in flight: the shard's index and what its home answered.
type Got = (
    u16,
    Result<tonic::Response<ShardMessage>, (tonic::Code, String)>,
);

/// Fetches the entry's shards from their homes until `k` verify. The `k`
/// data shards are asked first: with all of them the payload is their
/// concatenation, while any parity shard in the mix costs a decode whose
/// transform has a fixed size (about 0.1 ms of CPU on the benchmark
/// machine, a fifth of a replica's work per entry, however small the
/// shards). A parity shard is asked for each data shard that fails, and
/// every parity shard once `hedge` passes without `k`.
async fn fetch_from_homes(
    members: &Members,
    commitment: &Hash,
    geometry: &Geometry,
    homes: &[MemberId],
    hedge: Duration,
) -> Fetched {
    let needed = usize::from(geometry.data_shards);
    let mut gets: JoinSet<Got> = JoinSet::new();
    let ask = |gets: &mut JoinSet<Got>, index: usize| {
        let mut client = members.client(homes[index]);
        let key = shard_key(commitment, geometry, index as u16);
        let home = homes[index];
        gets.spawn(async move {
            let fetched = client.get(key).await;
            let fetched = fetched.map_err(|s| (s.code(), format!("member {home}: {s}")));
            (index as u16, fetched)
        });
    };
    let mut asked = needed.min(homes.len());
    (0..asked).for_each(|index| ask(&mut gets, index));
    let hedge = tokio::time::sleep(hedge);
    tokio::pin!(hedge);
    let mut found = Fetched::default();
    while found.shards.len() < needed {
        let done = tokio::select! {
            done = gets.join_next() => done,
            () = &mut hedge, if asked < homes.len() => {
                (asked..homes.len()).for_each(|index| ask(&mut gets, index));
                asked = homes.len();
                continue;
            }
        };
        let Some(done) = done else { break };
        let failed = match done {
            Ok((index, fetched)) => {
                let checked = fetched.and_then(|response| {
                    let shard = verified_shard(response.into_inner(), commitment, geometry);
                    shard.map_err(|e| (tonic::Code::DataLoss, e))
                });
                let failed = checked.is_err();
                found.record(index, checked);
                failed
            }
            Err(_) => {
                found.failures.push("get task failed".into());
                true
            }
        };
        if failed && asked < homes.len() {
            ask(&mut gets, asked);
            asked += 1;
        }
    }
    gets.abort_all();
    found
}

/// Asks each spare, in order, which shards of the entry it holds, and
/// fetches those still missing until `k` verify.
async fn fetch_from_spares(
    members: &Members,
    commitment: &Hash,
    geometry: &Geometry,
    spares: &[MemberId],
    found: &mut Fetched,
) {
    let needed = usize::from(geometry.data_shards);
    for &spare in spares {
        let mut client = members.client(spare);
        let listed = client
            .list(ListShardsRequest {
                commitment: commitment.to_vec(),
            })
            .await;
        let Ok(listed) = listed else { continue };
        for index in listed.into_inner().indices {
            let Ok(index) = u16::try_from(index) else {
                continue;
            };
            if found.shards.len() == needed || found.has(index) {
                continue;
            }
            let fetched = client.get(shard_key(commitment, geometry, index)).await;
            let checked = match fetched {
                Ok(response) => verified_shard(response.into_inner(), commitment, geometry)
                    .map_err(|e| (tonic::Code::DataLoss, e)),
                Err(s) => Err((s.code(), format!("spare {spare}: {s}"))),
            };
            match checked {
                // A spare answering with another index than asked
                // still gave a verified shard; only duplicates are dropped.
                Ok(shard) if !found.has(shard.index) => found.shards.push(shard),
                Ok(_) => {}
                Err((_, e)) => found.failures.push(e),
            }
        }
        if found.shards.len() == needed {
            return;
        }
    }
}

/// Shards fetched for one read, and what failed on the way.
#[derive(Default)]
struct Fetched {
    shards: Vec<Shard>,
    missing: Vec<u16>,
    rejected: Vec<u16>,
    failures: Vec<String>,
}

impl Fetched {
    fn has(&self, index: u16) -> bool {
        self.shards.iter().any(|shard| shard.index == index)
    }

    /// Records the outcome of fetching shard `index` from its home.
    fn record(&mut self, index: u16, checked: Result<Shard, (tonic::Code, String)>) {
        match checked {
            Ok(shard) => self.shards.push(shard),
            Err((code, e)) => {
                let absent = code == tonic::Code::NotFound;
                (if absent {
                    &mut self.missing
                } else {
                    &mut self.rejected
                })
                .push(index);
                self.failures.push(e);
            }
        }
    }
}

/// The key the shard service reads shard `index` of an entry under.
fn shard_key(commitment: &Hash, geometry: &Geometry, index: u16) -> ShardKey {
    ShardKey {
        commitment: commitment.to_vec(),
        geometry: geometry.to_bytes().to_vec(),
        index: u32::from(index),
    }
}

/// What repairing one entry did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repaired {
    /// Shards found at their homes, verified.
    pub healthy: usize,
    /// Shards rebuilt and stored at their homes (missing or damaged).
    pub restored: Vec<u16>,
}

/// What asking the homes of a run of entries found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HomeCheck {
    /// For each entry (by its position in the run) with shards missing or
    /// damaged at their homes: those shards' indices, ascending.
    pub broken: BTreeMap<usize, Vec<u16>>,
    /// Members that did not answer: the state of their shards is unknown.
    pub unanswered: BTreeSet<MemberId>,
}

/// What a storage member says of itself (its `Identify` answer): repair
/// looks again at a member whose answer changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberLook {
    /// Drawn when its process started: a new one means a restart.
    pub boot_id: Vec<u8>,
    /// Stored shards it has found damaged since it started.
    pub damaged: u64,
}

/// How long a member may take to say who it is before it counts as not
/// answering.
pub const IDENTIFY_TIMEOUT: Duration = Duration::from_secs(2);

/// One `Check` call: a member, the (entry position, shard index) pairs it
/// is asked about, and its answer.
type CheckCall = (MemberId, Vec<(usize, u16)>, Result<Vec<i32>, tonic::Status>);

impl StorageSet {
    /// Asks the homes in `asked` of each entry's shards whether they hold
    /// them (verified against the commitment, when `verify`): one `Check`
    /// per member per [`MAX_CHECK_KEYS`] shards, all members at once.
    /// Shards held by spares do not count: repair stores them at home.
    pub async fn check_homes(
        &self,
        headers: &[EntryHeader],
        asked: &BTreeSet<MemberId>,
        verify: bool,
    ) -> Result<HomeCheck, StorageSetError> {
        let snapshot = self.members();
        let mut wanted: BTreeMap<MemberId, Vec<(usize, u16)>> = BTreeMap::new();
        for (position, header) in headers.iter().enumerate() {
            let entry = &header.entry;
            let homes = place(
                &entry.commitment,
                entry.geometry.total_shards(),
                &snapshot.ids(),
            )?;
            for (index, home) in homes.into_iter().enumerate() {
                if asked.contains(&home) {
                    wanted
                        .entry(home)
                        .or_default()
                        .push((position, index as u16));
                }
            }
        }
        let mut calls = JoinSet::new();
        for (member, shards) in wanted {
            for run in shards.chunks(MAX_CHECK_KEYS) {
                let keys = (run.iter())
                    .map(|&(p, i)| {
                        shard_key(&headers[p].entry.commitment, &headers[p].entry.geometry, i)
                    })
                    .collect();
                let mut client = snapshot.client(member);
                let run = run.to_vec();
                calls.spawn(async move {
                    let answer = client.check(CheckShardsRequest { keys, verify }).await;
                    (member, run, answer.map(|r| r.into_inner().states))
                });
            }
        }
        let mut found = HomeCheck::default();
        while let Some(call) = calls.join_next().await {
            let call = call.map_err(|e| StorageSetError::Interrupted(e.to_string()))?;
            record_check(&mut found, call);
        }
        found
            .broken
            .values_mut()
            .for_each(|indices| indices.sort_unstable());
        Ok(found)
    }

    /// Each member's answer to `Identify`, or `None` when it did not
    /// answer within [`IDENTIFY_TIMEOUT`]; all members at once.
    pub async fn identify(&self) -> BTreeMap<MemberId, Option<MemberLook>> {
        let snapshot = self.members();
        let mut calls = JoinSet::new();
        for id in snapshot.ids() {
            let mut client = snapshot.client(id);
            calls.spawn(async move {
                let asked = client.identify(IdentifyRequest {});
                let answer = tokio::time::timeout(IDENTIFY_TIMEOUT, asked).await;
                let look = answer.ok().and_then(Result::ok).map(|answer| {
                    let answer = answer.into_inner();
                    MemberLook {
                        boot_id: answer.boot_id,
                        damaged: answer.damaged,
                    }
                });
                (id, look)
            });
        }
        let mut looks: BTreeMap<MemberId, Option<MemberLook>> =
            snapshot.ids().into_iter().map(|id| (id, None)).collect();
        while let Some(Ok((id, look))) = calls.join_next().await {
            looks.insert(id, look);
        }
        looks
    }

    /// The indices of the entry's shards that are missing from, or do not
    /// verify at, their homes, every home asked.
    pub async fn broken_homes(
        &self,
        commitment: &Hash,
        geometry: &Geometry,
    ) -> Result<Vec<u16>, StorageSetError> {
        let header = EntryHeader {
            seq: 0,
            entry: ordo_log::EntryDescriptor {
                commitment: *commitment,
                geometry: *geometry,
                tags: Vec::new(),
                submitter: [0; 20],
            },
        };
        let found = self
            .check_homes(&[header], &self.members().ids(), true)
            .await?;
        if let Some(&member) = found.unanswered.first() {
            return Err(StorageSetError::NoQuorum {
                durable: 0,
                quorum: 1,
                failures: format!("storage member {member} did not answer a check"),
            });
        }
        Ok(found.broken.into_values().next().unwrap_or_default())
    }

    /// Checks every shard of the entry at its home and stores again each
    /// one that is missing or damaged there (see [`StorageSet::restore`]).
    pub async fn repair_entry(
        &self,
        commitment: &Hash,
        geometry: &Geometry,
    ) -> Result<Repaired, StorageSetError> {
        let broken = self.broken_homes(commitment, geometry).await?;
        let healthy = usize::from(geometry.total_shards()) - broken.len();
        if !broken.is_empty() {
            self.restore(commitment, geometry, &broken).await?;
        }
        Ok(Repaired {
            healthy,
            restored: broken,
        })
    }

    /// Stores the entry's shards `indices` at their homes again, rebuilt
    /// from the payload out of any `k` verified shards (a wiped, replaced
    /// or damaged member, or a put that met the quorum but not every home).
    pub async fn restore(
        &self,
        commitment: &Hash,
        geometry: &Geometry,
        indices: &[u16],
    ) -> Result<(), StorageSetError> {
        let snapshot = self.members();
        let homes = place(commitment, geometry.total_shards(), &snapshot.ids())?;
        let payload = self.get_payload(commitment, geometry).await?;
        let entry = Coder::new().encode(
            &payload,
            geometry.chunk_size,
            geometry.data_shards,
            geometry.parity_shards,
        )?;
        if entry.commitment != *commitment {
            return Err(StorageSetError::ReencodedDiffers);
        }
        for &index in indices {
            let member = homes[usize::from(index)];
            let request = PutShardRequest {
                commitment: commitment.to_vec(),
                geometry: geometry.to_bytes().to_vec(),
                shard: Some(message_of(entry.shards[usize::from(index)].clone())),
            };
            (snapshot.client(member).put(request).await).map_err(|status| {
                StorageSetError::Restore {
                    index,
                    member,
                    reason: status.to_string(),
                }
            })?;
        }
        Ok(())
    }
}

/// Adds one `Check` call's answer to `found`: every shard not held (and
/// verified) is broken; a member that did not answer, or answered the
/// wrong number of states, is unanswered.
fn record_check(found: &mut HomeCheck, (member, run, answer): CheckCall) {
    match answer {
        Ok(states) if states.len() == run.len() => {
            for (&(position, index), state) in run.iter().zip(states) {
                if state != ShardState::Held as i32 {
                    found.broken.entry(position).or_default().push(index);
                }
            }
        }
        _ => {
            found.unanswered.insert(member);
        }
    }
}

/// A fetched shard, if it verifies (the member verified it too, but a
/// reader trusts only its own check).
fn verified_shard(
    message: ShardMessage,
    commitment: &Hash,
    geometry: &Geometry,
) -> Result<Shard, String> {
    let shard = shard_of(message).map_err(|status| status.message().to_string())?;
    verify_shard(commitment, geometry, &shard)
        .map_err(|e| format!("shard {}: {e}", shard.index))?;
    Ok(shard)
}

#[async_trait::async_trait]
impl SpreadShards for StorageSet {
    async fn store_entry(&self, entry: &EncodedEntry) -> Result<(), SpreadError> {
        let geometry = &entry.geometry;
        let quorum = write_quorum(
            geometry.data_shards,
            geometry.parity_shards,
            self.write_quorum,
        );
        self.put_entry(entry, quorum).await?;
        Ok(())
    }

    async fn load_entry(&self, header: &EntryHeader) -> Result<VerifiedPayload, SpreadError> {
        let entry = &header.entry;
        Ok(self.load(&entry.commitment, &entry.geometry).await?)
    }
}
