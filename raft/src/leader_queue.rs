//! The queue behind a voter's `Append` RPC: groups of descriptors sent by
//! followers and remote members, proposed on this voter together, so that
//! concurrent appends from many members share one raft entry (one quorum
//! round, one flush per voter) instead of costing one each.
//!
//! Unlike the voter's own batcher, this one never forwards: a voter that
//! is not the leader refuses, naming the leader, and the sender goes there.
//! A group's descriptors stay together and in order, so the reply's first
//! seq names them all.

use crate::types::MAX_BATCH_DESCRIPTORS;
use crate::types::{HeaderBatch, Node, NodeId, TypeConfig};
use openraft::Raft;
use openraft::TryAsRef;
use openraft::error::{ForwardToLeader, RaftError};
use ordo_log::EntryDescriptor;
use tokio::sync::{mpsc, oneshot};

/// Groups waiting for the queue beyond this make the RPC wait for room.
pub const MAX_QUEUED_GROUPS: usize = 4096;

/// Why raft did not take a proposal or a membership change, as the
/// voter's callers need it.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// This voter is not the leader; the leader's address, if known.
    NotLeader(Option<String>),
    /// Raft stopped on this voter (a failed write).
    Stopped(String),
    /// Raft refused for another reason; the group may not be ordered.
    Failed(String),
}

/// Descriptors to order together, and where to send the first seq.
pub struct Group {
    /// The descriptors, in order.
    pub descriptors: Vec<EntryDescriptor>,
    /// The answer.
    pub reply: oneshot::Sender<Result<u64, Refusal>>,
}

/// Starts the queue for `raft`; the sender side goes to the `Append` RPC.
pub fn spawn(raft: Raft<TypeConfig>, id: NodeId) -> mpsc::Sender<Group> {
    let (sender, queue) = mpsc::channel(MAX_QUEUED_GROUPS);
    tokio::spawn(run(raft, id, queue));
    sender
}

async fn run(raft: Raft<TypeConfig>, id: NodeId, mut queue: mpsc::Receiver<Group>) {
    let mut carried: Option<Group> = None;
    loop {
        let first = match carried.take() {
            Some(group) => group,
            None => match queue.recv().await {
                Some(group) => group,
                None => return,
            },
        };
        let mut groups = vec![first];
        let mut count = groups[0].descriptors.len();
        while let Ok(next) = queue.try_recv() {
            if count + next.descriptors.len() > MAX_BATCH_DESCRIPTORS {
                carried = Some(next);
                break;
            }
            count += next.descriptors.len();
            groups.push(next);
        }
        propose_groups(&raft, id, groups).await;
    }
}

/// Proposes `groups` as one raft entry and answers each.
async fn propose_groups(raft: &Raft<TypeConfig>, id: NodeId, groups: Vec<Group>) {
    let descriptors = groups
        .iter()
        .flat_map(|g| g.descriptors.iter().cloned())
        .collect();
    let result = match raft.client_write(HeaderBatch { descriptors }).await {
        Ok(written) => Ok(written.data.first),
        Err(e) => Err(Refusal::of(&e, Some(id))),
    };
    let mut offset = 0u64;
    for group in groups {
        let _ = group.reply.send(result.clone().map(|first| first + offset));
        offset += group.descriptors.len() as u64;
    }
}

impl Refusal {
    /// What raft's refusal `e` means to whoever asked `id` (when given, a
    /// leader hint naming `id` itself counts as no hint: an election is on).
    pub fn of<E>(e: &RaftError<NodeId, E>, id: Option<NodeId>) -> Self
    where
        E: std::error::Error + TryAsRef<ForwardToLeader<NodeId, Node>>,
    {
        if let RaftError::Fatal(fatal) = e {
            return Refusal::Stopped(fatal.to_string());
        }
        match e.forward_to_leader() {
            Some(forward) if id.is_none() || forward.leader_id != id => {
                Refusal::NotLeader(forward.leader_node.as_ref().map(|n| n.addr.clone()))
            }
            Some(_) => Refusal::NotLeader(None),
            None => Refusal::Failed(e.to_string()),
        }
    }
}
