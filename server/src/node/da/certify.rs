//! Who signs a blob certificate's statement, and collecting the
//! signatures.
//!
//! A node that orders its own log (`ordo dev`) signs with its node key:
//! it is the sequencer. A cluster member asks the raft voters, each of
//! which checks the statement against its own committed order before it
//! signs (`ordo.cluster.v1.Attest`); a certificate needs a majority of
//! them, the same quorum that commits an entry. On a log a chain orders,
//! the chain's events are the proof: the certificate carries, for the
//! log's first header and each part, the event that ordered it.

use ordo_da::certificate::{Certificate, ChainInclusion, EventRef};
use ordo_log::EntryHeader;
use ordo_proto::cluster::v1::{SignStatementRequest, attest_client::AttestClient};
use ordo_raft::{PeerTls, RaftSequencer};
use ordo_txn::Address;
use std::sync::Arc;
use std::time::Duration;

/// How long one voter has to answer.
pub const VOTER_TIMEOUT: Duration = Duration::from_secs(5);

/// Who signs certificates for this node.
#[derive(Clone)]
pub enum Certifier {
    /// This node orders its log; its key signs.
    Own(ordo_txn::SigningKey),
    /// The raft voters sign: those at `addresses`, or, when this member is
    /// a voter itself, the voters of its current membership.
    Voters {
        /// The voters' peer addresses (from the member's file).
        addresses: Vec<String>,
        /// This member's own voter, if it is one.
        local: Option<Arc<RaftSequencer>>,
        /// The member's peer credentials.
        tls: Arc<PeerTls>,
    },
    /// A chain orders the log: each header's event is its proof.
    Chain(Arc<ordo_evm::EvmSequencer>),
}

impl std::fmt::Debug for Certifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a key.
        match self {
            Certifier::Own(key) => write!(
                f,
                "Certifier::Own(0x{})",
                ordo_log::hex(&ordo_txn::address_of(key))
            ),
            Certifier::Voters { addresses, .. } => write!(f, "Certifier::Voters({addresses:?})"),
            Certifier::Chain(chain) => write!(f, "Certifier::Chain({:?})", chain.contract()),
        }
    }
}

impl Certifier {
    /// Signs `certificate`'s statement, or collects a majority of the
    /// voters' signatures; returns who signed.
    pub async fn sign(&self, certificate: &mut Certificate) -> Result<Vec<Address>, String> {
        match self {
            Certifier::Own(key) => {
                let signature = ordo_txn::sign::sign_hash(certificate.statement(), key)
                    .map_err(|e| e.to_string())?;
                certificate.signatures = vec![signature];
                Ok(vec![ordo_txn::address_of(key)])
            }
            Certifier::Voters {
                addresses,
                local,
                tls,
            } => {
                let voters = match local {
                    Some(voter) => voter_addresses(voter),
                    None => addresses.clone(),
                };
                from_voters(certificate, &voters, tls).await
            }
            Certifier::Chain(chain) => {
                certificate.chain = Some(chain_inclusion(chain, &certificate.headers).await?);
                Ok(Vec::new())
            }
        }
    }
}

/// Where the chain ordered the log's first header and each of `headers`.
async fn chain_inclusion(
    chain: &ordo_evm::EvmSequencer,
    headers: &[Vec<u8>],
) -> Result<ChainInclusion, String> {
    use ordo_log::Sequencer;
    let genesis = (chain.read(0, 1).await)
        .map_err(|e| e.to_string())?
        .first()
        .map(EntryHeader::encode)
        .ok_or("the log has no first header")?;
    let mut seqs = vec![0];
    for bytes in headers {
        seqs.push(EntryHeader::decode(bytes).map_err(|e| e.to_string())?.seq);
    }
    let mut events = Vec::with_capacity(seqs.len());
    for seq in seqs {
        let origin = chain.origin_of(seq).await.map_err(|e| e.to_string())?;
        events.push(EventRef {
            block_number: origin.block_number,
            block_hash: origin.block_hash,
            tx_hash: origin.tx_hash,
            log_index: origin.log_index,
        });
    }
    let (chain_id, contract) = chain.contract();
    Ok(ChainInclusion {
        chain_id,
        contract: contract.into_array(),
        genesis,
        events,
    })
}

/// The peer addresses of `voter`'s current voters.
fn voter_addresses(voter: &RaftSequencer) -> Vec<String> {
    let metrics = voter.raft().metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    membership
        .voter_ids()
        .filter_map(|id| membership.get_node(&id).map(|n| n.addr.clone()))
        .collect()
}

/// Asks every voter at once; keeps each signature that recovers to the
/// key the voter names, and needs a majority.
async fn from_voters(
    certificate: &mut Certificate,
    voters: &[String],
    tls: &Arc<PeerTls>,
) -> Result<Vec<Address>, String> {
    let statement = certificate.signed();
    let (bytes, hash) = (statement.encode(), statement.hash());
    let mut asks = tokio::task::JoinSet::new();
    for (i, addr) in voters.iter().enumerate() {
        let (addr, tls, bytes) = (addr.clone(), tls.clone(), bytes.clone());
        asks.spawn(async move { (i, ask(&addr, &tls, bytes).await) });
    }
    let mut answers: Vec<Result<([u8; 65], Address), String>> =
        vec![Err("no answer".into()); voters.len()];
    while let Some(done) = asks.join_next().await {
        if let Ok((i, answer)) = done {
            answers[i] = answer;
        }
    }
    let mut signed = Vec::new();
    let mut refusals = Vec::new();
    for (addr, answer) in voters.iter().zip(answers) {
        match answer.and_then(|(signature, signer)| {
            match ordo_txn::sign::recover_canonical(&signature, hash) {
                Ok(recovered) if recovered == signer => Ok((signature, signer)),
                _ => Err("its signature does not recover to the key it names".into()),
            }
        }) {
            Ok(found) => signed.push(found),
            Err(why) => refusals.push(format!("{addr}: {why}")),
        }
    }
    let needed = voters.len() / 2 + 1;
    if signed.len() < needed {
        return Err(format!(
            "{} of {} voters signed the certificate, {needed} must ({})",
            signed.len(),
            voters.len(),
            refusals.join("; ")
        ));
    }
    certificate.signatures = signed.iter().map(|(s, _)| *s).collect();
    Ok(signed.into_iter().map(|(_, signer)| signer).collect())
}

/// One voter's signature and the key it names.
async fn ask(addr: &str, tls: &PeerTls, statement: Vec<u8>) -> Result<([u8; 65], Address), String> {
    let endpoint = tls
        .endpoint(addr)
        .map_err(|e| e.to_string())?
        .connect_timeout(VOTER_TIMEOUT)
        .timeout(VOTER_TIMEOUT);
    let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
    let answer = AttestClient::new(channel)
        .sign_statement(SignStatementRequest { statement })
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    let signature = answer
        .signature
        .try_into()
        .map_err(|_| "a signature of the wrong length")?;
    let signer = answer
        .signer
        .try_into()
        .map_err(|_| "a signer of the wrong length")?;
    Ok((signature, signer))
}
